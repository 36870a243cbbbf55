//! How busy the machine is with other processes: measured during each run (reported, and
//! noted above a threshold) and before each run, to wait for a quiet moment.

use crate::running::Running;
use crate::sys::{self, Context};
use crate::{Bench, workloads};
use std::time::{Duration, Instant};

/// Foreign CPU load (% of one core) above which a run gets a note.
pub const FOREIGN_NOTE: f64 = 10.0;

/// Measures the CPU that processes other than the harness and the proxy under test used
/// during a run: machine busy time minus ours. Kernel work done outside our processes'
/// context (e.g. in ksoftirqd) also counts as foreign.
pub struct ForeignMeter {
    machine: f64,
    harness: f64,
    /// The proxy's processes (none for direct) and their CPU seconds at the start.
    proxy: (Vec<sys::Pid>, f64),
    start: Instant,
}

impl ForeignMeter {
    /// Reads the counters now.
    pub fn start(proxy: Option<&Running>) -> Result<ForeignMeter, String> {
        let pids = proxy.map_or_else(Vec::new, |p| p.pids.clone());
        let proxy_seconds = workloads::cpu_seconds_of(&pids)?;
        Ok(ForeignMeter {
            machine: sys::machine_busy_seconds().context(|| "read /proc/stat".into())?,
            harness: workloads::own_cpu_seconds()?,
            proxy: (pids, proxy_seconds),
            start: Instant::now(),
        })
    }

    /// Foreign CPU since `start`, in % of one core (clamped at 0: the counters tick at
    /// different moments).
    pub fn finish(&self) -> Result<f64, String> {
        let machine = sys::machine_busy_seconds().context(|| "read /proc/stat".into())?;
        let harness = workloads::own_cpu_seconds()?;
        let (pids, start) = &self.proxy;
        let proxy = workloads::cpu_seconds_of(pids)? - start;
        let foreign = (machine - self.machine) - (harness - self.harness) - proxy;
        Ok((foreign / self.start.elapsed().as_secs_f64() * 100.0).max(0.0))
    }
}

/// Foreign CPU load (% of one core) under which the machine counts as quiet.
const QUIET: f64 = 25.0;

/// CPU used by processes other than the harness over `window`, % of one core (no proxy
/// runs while this is called).
fn foreign_load_now(window: Duration) -> Result<f64, String> {
    let machine = sys::machine_busy_seconds().context(|| "read /proc/stat".into())?;
    let own = workloads::own_cpu_seconds()?;
    std::thread::sleep(window);
    let machine = sys::machine_busy_seconds().context(|| "read /proc/stat".into())? - machine;
    let own = workloads::own_cpu_seconds()? - own;
    Ok(((machine - own) / window.as_secs_f64() * 100.0).max(0.0))
}

impl Bench {
    /// Waits (up to `--max-wait` seconds) until other processes leave the CPUs mostly
    /// idle, so a compile or a test suite running next to the benchmark does not land in
    /// the figures; the time waited is reported.
    pub(crate) fn wait_for_quiet(&mut self) {
        let start = Instant::now();
        let deadline = start + Duration::from_secs_f64(self.opts.max_wait);
        loop {
            let busy = foreign_load_now(Duration::from_millis(200)).unwrap_or(0.0);
            if busy <= QUIET || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        if start.elapsed() > Duration::from_millis(500) {
            self.waited += start.elapsed();
        }
    }
}
