//! A small network of two namespaces for the fault tests (`tests/faults.rs`): `front`, where
//! the proxy (the built binary) and the clients live, and `back`, where the backends live,
//! joined by a veth pair with TEST-NET-1 addresses ([`FRONT_IP`], [`BACK_IP`]). Faults are
//! applied to the backend's end of the link: random loss, dropped SYNs, total silence with
//! nftables, queueing delay with `tc tbf`, and delay and reordering with `tc netem` where the
//! kernel has it.
//!
//! Both namespaces are created by this module (`unshare --net` for a holder process, whose
//! namespace is kept by an open descriptor and the holder killed at once), so nothing is
//! named, mounted or left behind: a namespace vanishes, with its end of the veth pair, when
//! its last descriptor, socket and process are gone, also when the test panics or is killed.
//! The host's own network namespace is never configured. Threads enter a namespace with
//! `setns(2)` ([`Netns::run`] spawns one for the purpose); a socket keeps the namespace it was
//! created in, and a child process inherits its thread's.
//!
//! [`Lab::new`] returns `None`, after one `skipped …` line, when the machine cannot create
//! namespaces or a veth pair (not root) or nftables does not work in a namespace; a missing
//! `ip`, `tc` or `nft` program is a missing peer ([`have`]), a failure under
//! `RINGPROXY_REQUIRE_PEERS=1`.

use super::peers::{Peer, have};
use super::{Accepted, Backend, BinProxy, IO_TIMEOUT, wait_until};
use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};
use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::ops::{Deref, DerefMut};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::thread;

/// The front (proxy) end of the veth pair: TEST-NET-1 (RFC 5737), never routed.
pub const FRONT_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The back (backend) end of the veth pair.
pub const BACK_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// Interface names of the two ends.
const FRONT_LINK: &str = "vfront";
const BACK_LINK: &str = "vback";

/// The nftables table of the faults, in the backend's namespace: one chain per direction,
/// empty (everything passes) until a fault adds a rule.
const RULESET: &str = "table inet fault {
  chain input { type filter hook input priority filter; policy accept; }
  chain output { type filter hook output priority filter; policy accept; }
}
";

/// Prints the one line of a skipped test (straight to the descriptor: the harness captures
/// `eprintln!` of passing tests).
pub fn skip(why: &str) {
    let current = thread::current();
    let test = current.name().unwrap_or("a test");
    let _ = writeln!(std::io::stderr(), "skipped {test}: {why}");
}

/// A network namespace, kept alive by an open descriptor of it.
pub struct Netns {
    fd: Arc<File>,
}

impl Netns {
    /// A new, empty namespace (only a `lo`, down), or why none can be made.
    fn new() -> Result<Netns, String> {
        let mut holder = Command::new("unshare")
            .args(["--net", "--", "cat"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run unshare (util-linux): {e}"))?;
        let host = std::fs::read_link("/proc/self/ns/net").map_err(|e| e.to_string())?;
        let path = format!("/proc/{}/ns/net", holder.id());
        let mut exited = None;
        // `unshare` moves itself, then execs `cat`, which waits on its stdin.
        wait_until(IO_TIMEOUT, || {
            exited = holder.try_wait().ok().flatten();
            exited.is_some() || std::fs::read_link(&path).is_ok_and(|l| l != host)
        });
        let opened = match exited {
            None => File::open(&path).map_err(|e| format!("open {path}: {e}")),
            Some(_) => Err(String::new()),
        };
        let _ = holder.kill();
        let _ = holder.wait();
        let fd = opened.map_err(|why| {
            let mut stderr = String::new();
            if let Some(mut s) = holder.stderr.take() {
                let _ = s.read_to_string(&mut stderr);
            }
            format!(
                "cannot create a network namespace (it needs root): {}{why}",
                stderr.trim()
            )
        })?;
        Ok(Netns { fd: Arc::new(fd) })
    }

    /// Runs `f` on a thread of its own inside the namespace and returns what it returns
    /// (a panic in `f` is passed on). Sockets `f` creates stay in the namespace wherever
    /// they are used afterwards; processes it spawns run in it.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        within(&self.fd, f).unwrap_or_else(|e| panic!("setns: {e}"))
    }

    /// `value`, dropped inside the namespace (for a backend, whose drop connects to itself).
    pub fn hold<T: Send>(&self, value: T) -> InNs<T> {
        InNs {
            value: Some(value),
            ns: Arc::clone(&self.fd),
        }
    }

    /// Runs `program` with `args` inside the namespace, `stdin` on its standard input; its
    /// standard output, or an error with its standard error. Killed after [`IO_TIMEOUT`].
    pub fn exec(&self, program: &Path, args: &[&str], stdin: &str) -> Result<String, String> {
        let shown = format!("{} {}", program.display(), args.join(" "));
        let mut child = self
            .run(|| {
                Command::new(program)
                    .args(args)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
            })
            .map_err(|e| format!("{shown}: {e}"))?;
        // Small inputs and outputs: they fit in the pipes, so writing first cannot block.
        let mut input = child.stdin.take().unwrap();
        let _ = input.write_all(stdin.as_bytes());
        drop(input);
        let mut status = None;
        wait_until(IO_TIMEOUT, || {
            status = child.try_wait().ok().flatten();
            status.is_some()
        });
        let Some(status) = status else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{shown} did not finish within {IO_TIMEOUT:?}"));
        };
        let (mut out, mut err) = (String::new(), String::new());
        let _ = child.stdout.take().unwrap().read_to_string(&mut out);
        let _ = child.stderr.take().unwrap().read_to_string(&mut err);
        if status.success() {
            Ok(out)
        } else {
            Err(format!("{shown}: {status}: {}", err.trim()))
        }
    }

    /// A path to the namespace that any process of this user can open while it lives.
    fn path(&self) -> String {
        format!("/proc/{}/fd/{}", std::process::id(), self.fd.as_raw_fd())
    }
}

/// Runs `f` on a new thread that first enters the namespace `ns`; if it cannot, `f` is
/// forgotten, neither run nor dropped.
fn within<T: Send>(ns: &File, f: impl FnOnce() -> T + Send) -> rustix::io::Result<T> {
    let ns = ns.as_fd();
    thread::scope(|scope| {
        let entered = thread::Builder::new()
            .name("in a test namespace".into())
            .spawn_scoped(scope, move || {
                match move_into_link_name_space(ns, Some(LinkNameSpaceType::Network)) {
                    Ok(()) => Ok(f()),
                    Err(e) => {
                        // Whatever `f` holds must not be dropped outside the namespace.
                        std::mem::forget(f);
                        Err(e)
                    }
                }
            })
            .expect("spawn a thread");
        entered
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// A value that must be dropped inside its namespace (see [`Netns::hold`]).
pub struct InNs<T: Send> {
    value: Option<T>,
    ns: Arc<File>,
}

impl<T: Send> Deref for InNs<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.value.as_ref().unwrap()
    }
}

impl<T: Send> DerefMut for InNs<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.value.as_mut().unwrap()
    }
}

impl<T: Send> Drop for InNs<T> {
    fn drop(&mut self) {
        if let Some(value) = self.value.take() {
            // Never outside (`within` forgets it then): a backend's drop connects to its
            // own address, which outside the namespace would leave the machine.
            let _ = within(&self.ns, move || drop(value));
        }
    }
}

/// The two namespaces, their link, and the faults on it. Dropped (after everything the test
/// opened in them, declared later), it lifts the faults, so that sockets still closing (a
/// FIN or data a silenced link held back) finish in moments, not after minutes of
/// retransmissions that would keep the namespaces alive.
pub struct Lab {
    /// Where the proxy and the clients run.
    pub front: Netns,
    /// Where the backends run, behind the faults.
    pub back: Netns,
    /// True when the link carries one TCP segment per packet (no GSO super-packets), so
    /// that a loss rate is a rate of segments.
    pub per_segment: bool,
    ip: PathBuf,
    nft: PathBuf,
}

impl Lab {
    /// The network, or `None` (after a `skipped` line) when the machine cannot build it.
    pub fn new() -> Option<Lab> {
        if !have(&[Peer::Ip, Peer::Tc, Peer::Nft]) {
            return None;
        }
        Lab::build().map_err(|why| skip(&why)).ok()
    }

    fn build() -> Result<Lab, String> {
        let mut lab = Lab {
            front: Netns::new()?,
            back: Netns::new()?,
            ip: Peer::Ip.path()?,
            nft: Peer::Nft.path()?,
            per_segment: false,
        };
        let front = format!(
            "link set lo up\n\
             link add {FRONT_LINK} type veth peer name {BACK_LINK} netns {back}\n\
             addr add {FRONT_IP}/24 dev {FRONT_LINK}\nlink set {FRONT_LINK} up\n",
            back = lab.back.path()
        );
        let back = format!(
            "link set lo up\naddr add {BACK_IP}/24 dev {BACK_LINK}\nlink set {BACK_LINK} up\n"
        );
        lab.front
            .exec(&lab.ip, &["-batch", "-"], &front)
            .and_then(|_| lab.back.exec(&lab.ip, &["-batch", "-"], &back))
            .map_err(|e| format!("cannot create a veth pair: {e}"))?;
        // veth hands whole TSO/GSO super-packets (up to 64 KiB) to the filters; one segment
        // per packet makes "1% loss" mean 1% of the segments on the wire. Best effort: a
        // kernel that cannot change it (before 5.19) still runs the tests, with coarser loss.
        let mut per_segment = true;
        for (ns, link) in [(&lab.front, FRONT_LINK), (&lab.back, BACK_LINK)] {
            let capped = ns.exec(&lab.ip, &["link", "set", link, "gso_max_segs", "1"], "");
            per_segment &= capped.is_ok();
        }
        lab.per_segment = per_segment;
        for (ns, link) in [(&lab.front, FRONT_LINK), (&lab.back, BACK_LINK)] {
            let up = wait_until(IO_TIMEOUT, || {
                ns.exec(&lab.ip, &["-o", "link", "show", link], "")
                    .is_ok_and(|l| l.contains("LOWER_UP"))
            });
            if !up {
                return Err(format!("{link} never came up"));
            }
        }
        lab.back
            .exec(&lab.nft, &["-f", "-"], RULESET)
            .map_err(|e| format!("nftables does not work in a network namespace: {e}"))?;
        Ok(lab)
    }

    /// Lifts every nftables fault (qdiscs stay).
    pub fn heal(&self) -> Result<(), String> {
        self.back
            .exec(&self.nft, &["flush", "table", "inet", "fault"], "")
            .map(drop)
    }

    /// `BACK_IP:port`, as the proxy's `--upstream`.
    pub fn upstream(port: u16) -> String {
        SocketAddr::from((BACK_IP, port)).to_string()
    }

    /// The built binary in the front namespace, listening on its `127.0.0.1`, with `args`
    /// (and the running test's engine, as [`BinProxy::start`]).
    pub fn proxy(&self, args: &[&str]) -> BinProxy {
        let engine = super::engine();
        self.front.run(move || {
            super::ENGINE.set(engine);
            BinProxy::start(args)
        })
    }

    /// A client connection from the front namespace (see [`super::connect`]).
    pub fn connect(&self, addr: SocketAddr) -> TcpStream {
        self.front.run(|| super::connect(addr))
    }

    /// An echo backend on `BACK_IP:port`.
    pub fn echo(&self, port: u16) -> InNs<Backend> {
        self.back
            .hold(self.back.run(|| Backend::echo_on((BACK_IP, port).into())))
    }

    /// A backend on `BACK_IP:port` that hands each connection to the test.
    pub fn channel(&self, port: u16) -> (InNs<Backend>, Accepted) {
        let (backend, accepted) = self
            .back
            .run(|| Backend::channel_on((BACK_IP, port).into()));
        (self.back.hold(backend), accepted)
    }

    /// Drops `per_mille` of the packets on the link, each way, at random.
    pub fn lose(&self, per_mille: u32) {
        let pick = format!("numgen random mod 1000 lt {per_mille} counter drop");
        self.rule(&format!("input iifname {BACK_LINK} {pick}"));
        self.rule(&format!("output oifname {BACK_LINK} {pick}"));
    }

    /// Drops every SYN (connection request) to the backend's `port`.
    pub fn drop_syns_to(&self, port: u16) {
        self.rule(&format!(
            "input iifname {BACK_LINK} tcp dport {port} tcp flags & (syn | ack) == syn \
             counter drop"
        ));
    }

    /// Drops every other SYN to `port`, starting with the first: each connect succeeds on
    /// the kernel's first retransmission (after about 1 s).
    pub fn drop_first_syns_to(&self, port: u16) {
        self.rule(&format!(
            "input iifname {BACK_LINK} tcp dport {port} tcp flags & (syn | ack) == syn \
             numgen inc mod 2 eq 0 counter drop"
        ));
    }

    /// Drops everything on the link, both ways: the backends fall silent.
    pub fn silence(&self) {
        self.rule(&format!("input iifname {BACK_LINK} counter drop"));
        self.rule(&format!("output oifname {BACK_LINK} counter drop"));
    }

    /// Packets the fault rules have dropped so far.
    pub fn dropped(&self) -> u64 {
        let listing = self
            .back
            .exec(&self.nft, &["list", "table", "inet", "fault"], "")
            .unwrap_or_else(|e| panic!("{e}"));
        let words: Vec<&str> = listing.split_whitespace().collect();
        words
            .windows(3)
            .filter(|w| w[0] == "counter" && w[1] == "packets")
            .map(|w| w[2].parse::<u64>().expect("a packet count"))
            .sum()
    }

    fn rule(&self, rule: &str) {
        let script = format!("add rule inet fault {rule}\n");
        self.back
            .exec(&self.nft, &["-f", "-"], &script)
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Puts `qdisc` (for example `tbf rate 200mbit burst 64kb latency 100ms`, or `netem
    /// delay 10ms`) on both ends of the link, or says why the kernel refused it.
    pub fn qdisc(&self, qdisc: &str) -> Result<(), String> {
        let tc = Peer::Tc.path()?;
        for (ns, link) in [(&self.front, FRONT_LINK), (&self.back, BACK_LINK)] {
            let mut args = vec!["qdisc", "add", "dev", link, "root"];
            args.extend(qdisc.split_whitespace());
            ns.exec(&tc, &args, "")?;
        }
        Ok(())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.heal();
    }
}
