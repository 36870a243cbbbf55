//! Following upstream names in DNS at run time (nginx `server … resolve`, HAProxy
//! `resolvers`): servers with `resolve = true` (A and AAAA) and SRV names, asked again as
//! their answers' TTLs expire, through `resolvers` or the nameservers of `/etc/resolv.conf`.
//!
//! A [`Discovery`] owns the state of every name it follows ([`Lookup`]s, with their
//! schedules) and builds the loops' [`ResolvedConfig`] from it: [`Discovery::resolve`] at
//! start and on reload (every name asked at once), [`Discovery::refresh`] when names fall
//! due, returning a configuration only when some address set changed. It blocks on DNS, so
//! it runs on the signal thread (reload) and on its own thread ([`spawn`]), never on a loop.
//!
//! SRV: the records with the lowest priority are primaries, the others backups; a record's
//! weight is the server's (0 counts as 1, at most 1000); a target's addresses come from the
//! answer's additional section, else from the target's own A/AAAA lookups, followed like
//! any name. Invariant: a name's addresses change only on an answer (or the end of an
//! NXDOMAIN hold, see [`crate::dns::schedule`]); a failing DNS never empties a pool.

use crate::config::{UpstreamSpec, ValidConfig};
use crate::dns::client::{Client, TIMEOUT};
use crate::dns::message::{Answer, Kind, SrvRecord};
use crate::dns::schedule::{Bounds, Lookup, Outcome};
use crate::endpoint::Endpoint;
use crate::error::StartError;
use crate::resolve::{ResolvedConfig, ResolvedServer, fixed_endpoints, push_unique};
use crate::settings::Global;
use log::{info, warn};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// What `/metrics` shows of one name (without trailing dot or port).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameStats {
    /// Good answers (positive, or empty).
    pub answers: u64,
    /// Failed queries, by reason (`servfail`, `refused`, `timeout`, `nxdomain`, `malformed`).
    pub failures: BTreeMap<&'static str, u64>,
    /// Addresses (or SRV records) the name has now.
    pub addresses: u64,
}

/// Every followed name's counters, shared with the metrics endpoint.
pub type DnsStats = Arc<Mutex<BTreeMap<String, NameStats>>>;

/// The A and AAAA lookups of one host name.
#[derive(Debug, Clone)]
struct Host {
    v4: Lookup<Vec<IpAddr>>,
    v6: Lookup<Vec<IpAddr>>,
}

impl Host {
    fn new(now: Instant) -> Host {
        Host {
            v4: Lookup::new(now),
            v6: Lookup::new(now),
        }
    }

    fn addrs(&self) -> Vec<IpAddr> {
        let mut addrs = self.v4.records();
        addrs.extend(self.v6.records());
        addrs
    }

    fn next(&self) -> Instant {
        self.v4.next().min(self.v6.next())
    }
}

/// The names of a configuration and what DNS says of them.
pub struct Discovery {
    client: Client,
    /// `resolvers` is set: every name goes through it, followed or not.
    all_names: bool,
    bounds: Bounds,
    hosts: BTreeMap<String, Host>,
    srvs: BTreeMap<String, Lookup<Vec<SrvRecord>>>,
    /// Addresses of names that are not followed, as of the last start or reload.
    fixed: BTreeMap<String, Vec<Endpoint>>,
    config: Option<ValidConfig>,
    stats: DnsStats,
}

impl Discovery {
    /// A discovery asking `global.resolvers`, or the system's nameservers.
    pub fn new(global: &Global) -> Discovery {
        let client = if global.resolvers.is_empty() {
            Client::system()
        } else {
            Client::new(global.resolvers.clone(), TIMEOUT)
        };
        Discovery {
            client,
            all_names: !global.resolvers.is_empty(),
            bounds: bounds(global),
            hosts: BTreeMap::new(),
            srvs: BTreeMap::new(),
            fixed: BTreeMap::new(),
            config: None,
            stats: DnsStats::default(),
        }
    }

    /// The counters of every followed name.
    pub fn stats(&self) -> DnsStats {
        Arc::clone(&self.stats)
    }

    /// Takes `config` (start, reload): asks about every name now and returns it resolved. A
    /// name that is not followed and does not resolve is an error (nothing changes); a
    /// followed one starts empty, with a warning, and keeps being asked.
    pub fn resolve(
        &mut self,
        config: ValidConfig,
        now: Instant,
    ) -> Result<ResolvedConfig, StartError> {
        if !config.global.resolvers.is_empty() {
            self.client = Client::new(config.global.resolvers.clone(), TIMEOUT);
        }
        self.all_names = !config.global.resolvers.is_empty();
        self.bounds = bounds(&config.global);
        let mut fixed = BTreeMap::new();
        for spec in specs(&config).filter(|s| !s.follows_dns()) {
            if !fixed.contains_key(&spec.addr) {
                fixed.insert(spec.addr.clone(), self.fixed_addrs(spec)?);
            }
        }
        self.fixed = fixed;
        self.track(&config, now);
        for host in self.hosts.values_mut() {
            host.v4.refresh(now);
            host.v6.refresh(now);
        }
        for srv in self.srvs.values_mut() {
            srv.refresh(now);
        }
        self.ask_due(now);
        // SRV targets seen for the first time are asked too.
        self.track(&config, now);
        self.ask_due(now);
        for (name, host) in &self.hosts {
            if host.addrs().is_empty() {
                warn!("upstream name {name} has no address yet; asking again as it falls due");
            }
        }
        for (name, srv) in &self.srvs {
            if srv.records().is_empty() {
                warn!("SRV name {name} has no record yet; asking again as it falls due");
            }
        }
        let resolved = self.build(&config);
        self.config = Some(config);
        Ok(resolved)
    }

    /// The loops bound `bound` (in route order) for the configuration taken last: later
    /// configurations built from it keep those addresses (a port given as 0 stays the
    /// port the kernel picked, instead of a new one on each change).
    pub fn listening_on(&mut self, bound: &[SocketAddr]) {
        if let Some(config) = self.config.take() {
            self.config = Some(config.with_bound(bound));
        }
    }

    /// Asks every followed name again at once (SIGHUP re-resolves them all).
    pub fn refresh_all(&mut self, now: Instant) {
        for host in self.hosts.values_mut() {
            host.v4.refresh(now);
            host.v6.refresh(now);
        }
        for srv in self.srvs.values_mut() {
            srv.refresh(now);
        }
    }

    /// When the next followed name falls due, if any is followed.
    pub fn next_due(&self) -> Option<Instant> {
        let hosts = self.hosts.values().map(Host::next);
        hosts.chain(self.srvs.values().map(Lookup::next)).min()
    }

    /// Asks the names that are due at `now`: the configuration with the new address sets
    /// when one changed.
    pub fn refresh(&mut self, now: Instant) -> Option<ResolvedConfig> {
        let config = self.config.clone()?;
        let mut changed = self.ask_due(now);
        if changed {
            self.track(&config, now);
            changed |= self.ask_due(now);
        }
        changed.then(|| self.build(&config))
    }

    /// The addresses of a name that is not followed: once, through `resolvers` when set,
    /// else from the system resolver.
    fn fixed_addrs(&mut self, spec: &UpstreamSpec) -> Result<Vec<Endpoint>, StartError> {
        let Some((name, port)) = spec.host_name().filter(|_| self.all_names) else {
            return fixed_endpoints(&spec.addr);
        };
        let mut addrs = Vec::new();
        let mut failure = None;
        for kind in [Kind::A, Kind::Aaaa] {
            match self.client.ask(name, kind) {
                Answer::Addrs { addrs: found, .. } => {
                    let found = found.into_iter().map(|ip| SocketAddr::new(ip, port).into());
                    addrs.extend(found);
                }
                other => failure = Some(other),
            }
        }
        if addrs.is_empty() {
            let why = match failure {
                Some(Answer::NxDomain { .. }) => "no such name (NXDOMAIN)".to_string(),
                Some(Answer::Failure(f)) => format!("DNS failure ({})", f.as_str()),
                _ => "no address found".to_string(),
            };
            return Err(StartError::Resolve {
                host: spec.addr.clone(),
                source: io::Error::new(io::ErrorKind::NotFound, why),
            });
        }
        Ok(addrs)
    }

    /// Makes the lookups `config` needs (names followed, SRV targets without addresses in
    /// their answer) and drops the others.
    fn track(&mut self, config: &ValidConfig, now: Instant) {
        let mut hosts = BTreeSet::new();
        let mut srvs = BTreeSet::new();
        for spec in specs(config).filter(|s| s.follows_dns()) {
            if let Some(name) = spec.srv() {
                let name = crate::dns::message::normalize(name);
                if let Some(srv) = self.srvs.get(&name) {
                    for record in srv.records().iter().filter(|r| r.addrs.is_empty()) {
                        hosts.insert(record.target.clone());
                    }
                }
                srvs.insert(name);
            } else if let Some((host, _)) = spec.host_name() {
                hosts.insert(crate::dns::message::normalize(host));
            }
        }
        self.hosts.retain(|name, _| hosts.contains(name));
        self.srvs.retain(|name, _| srvs.contains(name));
        for name in hosts {
            self.hosts.entry(name).or_insert_with(|| Host::new(now));
        }
        for name in srvs {
            self.srvs.entry(name).or_insert_with(|| Lookup::new(now));
        }
        if let Ok(mut stats) = self.stats.lock() {
            stats.retain(|name, _| self.hosts.contains_key(name) || self.srvs.contains_key(name));
        }
    }

    /// Asks every lookup due at `now`; true when some record set changed.
    fn ask_due(&mut self, now: Instant) -> bool {
        let mut changed = false;
        let due: Vec<String> = self
            .hosts
            .iter()
            .filter(|(_, h)| h.next() <= now)
            .map(|(n, _)| n.clone())
            .collect();
        for name in due {
            let before = self.hosts[&name].addrs();
            for kind in [Kind::A, Kind::Aaaa] {
                let due = self.hosts.get(&name).is_some_and(|h| match kind {
                    Kind::Aaaa => h.v6.next() <= now,
                    _ => h.v4.next() <= now,
                });
                if !due {
                    continue;
                }
                let answer = self.client.ask(&name, kind);
                let bounds = self.bounds;
                let Some(host) = self.hosts.get_mut(&name) else {
                    continue;
                };
                let lookup = if kind == Kind::Aaaa {
                    &mut host.v6
                } else {
                    &mut host.v4
                };
                let outcome = lookup.on_answer(&answer, now, &bounds);
                self.count(&name, &outcome);
            }
            let after = self.hosts[&name].addrs();
            self.set_addresses(&name, after.len());
            if before != after {
                changed = true;
                log_change(&name, &before, &after);
            }
        }
        let due: Vec<String> = self
            .srvs
            .iter()
            .filter(|(_, l)| l.next() <= now)
            .map(|(n, _)| n.clone())
            .collect();
        for name in due {
            let answer = self.client.ask(&name, Kind::Srv);
            let bounds = self.bounds;
            let Some(lookup) = self.srvs.get_mut(&name) else {
                continue;
            };
            let before = lookup.records();
            let outcome = lookup.on_answer(&answer, now, &bounds);
            let after = lookup.records();
            self.count(&name, &outcome);
            self.set_addresses(&name, after.len());
            if outcome == Outcome::Changed {
                changed = true;
                let show = |records: &[SrvRecord]| {
                    let shown: Vec<String> = records
                        .iter()
                        .map(|r| {
                            format!(
                                "{}:{} (priority {}, weight {})",
                                r.target, r.port, r.priority, r.weight
                            )
                        })
                        .collect();
                    if shown.is_empty() {
                        "none".to_string()
                    } else {
                        shown.join(", ")
                    }
                };
                info!(
                    "SRV name {name}: now {} (was {})",
                    show(&after),
                    show(&before)
                );
            }
        }
        changed
    }

    fn count(&self, name: &str, outcome: &Outcome) {
        let Ok(mut stats) = self.stats.lock() else {
            return;
        };
        let entry = stats.entry(name.to_string()).or_default();
        match outcome {
            Outcome::Failed(reason) => *entry.failures.entry(reason).or_default() += 1,
            Outcome::Changed | Outcome::Same => entry.answers += 1,
        }
    }

    fn set_addresses(&self, name: &str, n: usize) {
        if let Ok(mut stats) = self.stats.lock() {
            stats.entry(name.to_string()).or_default().addresses = n as u64;
        }
    }

    /// The pools of `config` from what is known now.
    fn build(&self, config: &ValidConfig) -> ResolvedConfig {
        let pools = config
            .routes
            .iter()
            .map(|route| {
                let mut servers = Vec::new();
                for spec in &route.upstreams {
                    for server in self.servers_of(spec) {
                        push_unique(&mut servers, server);
                    }
                }
                servers
            })
            .collect();
        ResolvedConfig::from_pools(config.clone(), pools)
    }

    /// The servers one spec stands for now.
    fn servers_of(&self, spec: &UpstreamSpec) -> Vec<ResolvedServer> {
        let with = |addr, options| ResolvedServer { addr, options };
        if let Some(name) = spec.srv() {
            let name = crate::dns::message::normalize(name);
            let records = self
                .srvs
                .get(&name)
                .map(Lookup::records)
                .unwrap_or_default();
            let primary = records.iter().map(|r| r.priority).min();
            let mut servers = Vec::new();
            for record in &records {
                let mut options = spec.options.clone();
                options.weight = u32::from(record.weight).clamp(1, 1000);
                options.backup |= Some(record.priority) != primary;
                let addrs = if record.addrs.is_empty() {
                    self.hosts
                        .get(&record.target)
                        .map(Host::addrs)
                        .unwrap_or_default()
                } else {
                    record.addrs.clone()
                };
                for ip in addrs {
                    let addr = SocketAddr::new(ip, record.port).into();
                    servers.push(with(addr, options.clone()));
                }
            }
            return servers;
        }
        if spec.options.resolve
            && let Some((host, port)) = spec.host_name()
        {
            let name = crate::dns::message::normalize(host);
            let addrs = self.hosts.get(&name).map(Host::addrs).unwrap_or_default();
            return addrs
                .into_iter()
                .map(|ip| with(SocketAddr::new(ip, port).into(), spec.options.clone()))
                .collect();
        }
        let addrs = self.fixed.get(&spec.addr).cloned().unwrap_or_default();
        addrs
            .into_iter()
            .map(|addr| with(addr, spec.options.clone()))
            .collect()
    }
}

/// Every server spec of `config`.
fn specs(config: &ValidConfig) -> impl Iterator<Item = &UpstreamSpec> {
    config.routes.iter().flat_map(|r| r.upstreams.iter())
}

fn bounds(global: &Global) -> Bounds {
    Bounds {
        interval: global.resolve_interval,
        max_ttl: global.resolve_max_ttl,
        hold: global.resolve_hold,
    }
}

/// One info line per change of a name's address set.
fn log_change(name: &str, before: &[IpAddr], after: &[IpAddr]) {
    let list = |ips: Vec<&IpAddr>| {
        if ips.is_empty() {
            "none".to_string()
        } else {
            ips.iter()
                .map(|ip| ip.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let added = list(after.iter().filter(|ip| !before.contains(ip)).collect());
    let removed = list(before.iter().filter(|ip| !after.contains(ip)).collect());
    info!("upstream name {name}: added {added}; removed {removed}");
}

/// The counters of the process's discovery, once it runs (for `/metrics`).
static PUBLISHED: std::sync::OnceLock<DnsStats> = std::sync::OnceLock::new();

/// The counters [`spawn`] published, if discovery runs in this process.
pub fn published() -> Option<&'static DnsStats> {
    PUBLISHED.get()
}

/// What the discovery thread is told.
pub enum Message {
    /// Ask every name again now (SIGHUP).
    RefreshAll,
    /// Stop the thread.
    Stop,
}

/// Runs `discovery` on a thread of its own: it sleeps until a name falls due (or a
/// message), asks, and hands `apply` every configuration whose address sets changed.
/// Returns the sender of messages and the thread.
pub fn spawn(
    discovery: Arc<Mutex<Discovery>>,
    apply: impl Fn(ResolvedConfig) + Send + 'static,
) -> io::Result<(mpsc::Sender<Message>, std::thread::JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel();
    if let Ok(d) = discovery.lock() {
        let _ = PUBLISHED.set(d.stats());
    }
    let thread = std::thread::Builder::new()
        .name("discovery".into())
        .spawn(move || {
            loop {
                let next = discovery.lock().ok().and_then(|d| d.next_due());
                let wait = next.map_or(Duration::from_secs(3600), |at| {
                    at.saturating_duration_since(Instant::now())
                });
                match rx.recv_timeout(wait) {
                    Ok(Message::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    Ok(Message::RefreshAll) => {
                        if let Ok(mut d) = discovery.lock() {
                            d.refresh_all(Instant::now());
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                }
                // The lock is held while asking, so a reload never interleaves with it.
                let Ok(mut d) = discovery.lock() else {
                    return;
                };
                if let Some(config) = d.refresh(Instant::now()) {
                    apply(config);
                }
            }
        })?;
    Ok((tx, thread))
}
