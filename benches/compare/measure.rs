//! One workload's measurement through an already started target: calls the load
//! generator and turns its result into figures, adding notes for anomalies.

use crate::plan::Workload;
use crate::rate::{self, ConnRate};
use crate::report::Metric;
use crate::running::Running;
use crate::sys::{self, Pid};
use crate::{Bench, Figures, bandwidth, workloads};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// TIME_WAIT sockets at the start of a connection-rate run above which it gets a note
/// (many of them make every `connect()` search longer for a free port).
const TIME_WAIT_NOTE: u64 = 1000;

impl Bench {
    /// Runs `workload` against `addr` and returns its figures; `None` values (such as proxy
    /// CPU for direct) are left out of the report.
    pub(crate) fn run_workload(
        &mut self,
        workload: Workload,
        addr: SocketAddr,
        proxy: Option<&Running>,
    ) -> Result<Figures, String> {
        use Metric::*;
        let run = Duration::from_secs_f64(self.opts.seconds);
        let pids: &[Pid] = proxy.map_or(&[], |p| &p.pids);
        let need_pids = || {
            proxy
                .map(|p| p.pids.as_slice())
                .ok_or_else(|| "this workload needs a proxy".to_string())
        };
        let via = proxy.map_or("direct", |p| p.kind.name());
        Ok(match workload {
            Workload::BulkUp => {
                let b = workloads::bulk_upload(addr, run, pids)?;
                vec![(UpGbit, Some(b.gbit)), (UpCpu, b.cpu_per_gib)]
            }
            Workload::BulkDown => {
                let b = workloads::bulk_download(addr, run, pids)?;
                vec![(DownGbit, Some(b.gbit)), (DownCpu, b.cpu_per_gib)]
            }
            Workload::PingPong1 => {
                let p = workloads::ping_pong(addr, 1, run, pids)?;
                vec![
                    (Pp1Rps, Some(p.rps)),
                    (Pp1P50, Some(p.latency.p50)),
                    (Pp1P99, Some(p.latency.p99)),
                    (Pp1P999, Some(p.latency.p999)),
                    (Pp1ProxyCpu, p.busy.proxy),
                    (Pp1HarnessCpu, Some(p.busy.harness)),
                ]
            }
            Workload::PingPong64 => {
                let p = workloads::ping_pong(addr, 64, run, pids)?;
                vec![
                    (Pp64Rps, Some(p.rps)),
                    (Pp64P50, Some(p.latency.p50)),
                    (Pp64P99, Some(p.latency.p99)),
                    (Pp64P999, Some(p.latency.p999)),
                    (Pp64ProxyCpu, p.busy.proxy),
                    (Pp64HarnessCpu, Some(p.busy.harness)),
                ]
            }
            Workload::ConnRate => {
                let c = self.rate(workload, via, addr, run, pids, Arc::new(rate::echo_cycle))?;
                vec![
                    (ConnRate, Some(c.per_sec)),
                    (ConnP99, Some(c.latency.p99)),
                    (ConnProxyCpu, c.busy.proxy),
                    (ConnHarnessCpu, Some(c.busy.harness)),
                    (ConnCpu, c.cpu_us),
                ]
            }
            Workload::Refused => {
                let c = self.rate(
                    workload,
                    via,
                    addr,
                    run,
                    pids,
                    Arc::new(rate::refused_cycle),
                )?;
                vec![
                    (RefusedRate, Some(c.per_sec)),
                    (RefusedP99, Some(c.latency.p99)),
                    (RefusedCpu, c.cpu_us),
                ]
            }
            Workload::TlsPlain | Workload::TlsSni => {
                let tls = self
                    .tls
                    .as_ref()
                    .ok_or("the TLS backends are not running")?;
                let c = tls.setup_rate(addr, run, pids)?;
                self.note_errors(workload, via, &c);
                let [r, p, cpu] = if workload == Workload::TlsPlain {
                    [TlsRate, TlsP99, TlsCpu]
                } else {
                    [SniRate, SniP99, SniCpu]
                };
                vec![
                    (r, Some(c.per_sec)),
                    (p, Some(c.latency.p99)),
                    (cpu, c.cpu_us),
                ]
            }
            Workload::Bandwidth(i) => {
                let (rate, conns, _) = bandwidth::RATES[i];
                let a = bandwidth::accuracy(addr, rate, conns)?;
                vec![(BwMean(i), Some(a.mean)), (BwWorst(i), Some(a.worst))]
            }
            Workload::IdleMemory => {
                let kib = workloads::idle_memory(addr, need_pids()?, self.mem_conns)?;
                vec![(MemPerConn, Some(kib))]
            }
            Workload::SlowReader => {
                let s = workloads::slow_reader(addr, need_pids()?)?;
                vec![
                    (SlowPeak, Some(s.peak_mib)),
                    (SlowGrowth, Some(s.growth_kib)),
                ]
            }
        })
    }

    /// A connection-rate run of `cycle`, with a note about TIME_WAIT sockets at its start
    /// and about failed cycles.
    fn rate(
        &mut self,
        workload: Workload,
        via: &str,
        addr: SocketAddr,
        run: Duration,
        pids: &[Pid],
        cycle: rate::Cycle,
    ) -> Result<ConnRate, String> {
        let tw = sys::time_wait_sockets().unwrap_or(0);
        if tw > TIME_WAIT_NOTE {
            self.notes.push(format!(
                "{} via {via}: {tw} sockets in TIME_WAIT at the start",
                workload.name()
            ));
        }
        let c = rate::run(addr, run, pids, cycle)?;
        self.note_errors(workload, via, &c);
        Ok(c)
    }

    /// A note when cycles of a connection-rate run failed.
    fn note_errors(&mut self, workload: Workload, via: &str, c: &ConnRate) {
        if c.errors > 0 {
            self.notes.push(format!(
                "{} via {via}: {} failed connections (first: {})",
                workload.name(),
                c.errors,
                c.first_error.clone().unwrap_or_default()
            ));
        }
    }
}
