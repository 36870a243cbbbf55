//! Operating-system helpers: CPU affinity, the descriptor limit, `/proc` readings and free
//! loopback ports. Linux only, like the proxy.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;

/// A process id as the kernel sees it.
pub type Pid = i32;

/// Online CPUs of the machine (what `nproc` prints before any pinning).
pub fn nproc() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).unwrap_or(1).max(1)
}

/// Kernel clock ticks per second, the unit of `utime`/`stime` in `/proc/PID/stat`.
pub fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if n > 0 { n as f64 } else { 100.0 }
}

/// Restricts the calling thread (pid 0) to `cpu`. Threads it creates later, and processes
/// forked from it, inherit the mask. Async-signal-safe: usable between fork and exec.
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data; CPU_SET only writes inside the set (it bounds-checks
    // the index), and sched_setaffinity reads `size_of::<cpu_set_t>()` bytes of it.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Asks the kernel to SIGKILL the calling process when the thread that forked it exits, so a
/// proxy never outlives a harness that was killed outright. Async-signal-safe.
pub fn die_with_parent() -> io::Result<()> {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number and touches no memory.
    let rc = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Raises the soft descriptor limit to the hard limit; returns the new soft limit.
pub fn raise_fd_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read or write exactly one rlimit struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(io::Error::last_os_error());
        }
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(lim.rlim_cur)
}

/// Sends `signal` to every process of process group `pgid`; errors (e.g. none left) ignored.
pub fn kill_group(pgid: Pid, signal: libc::c_int) {
    // SAFETY: kill has no memory preconditions; a negative pid addresses a process group.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

/// A free TCP port on 127.0.0.1 (bound, read, released: another process could take it in
/// between, which is unlikely on a quiet machine).
pub fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
    Ok(listener.local_addr()?.port())
}

/// CPU time (user + system) that process `pid` has used, in seconds.
pub fn cpu_seconds(pid: Pid) -> io::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces; fields after the last ')' are plain.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| bad_proc("stat", pid))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); utime and stime are fields 14 and 15.
    let ticks = |i: usize| -> io::Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| bad_proc("stat", pid))
    };
    Ok((ticks(11)? + ticks(12)?) as f64 / clock_ticks())
}

/// Busy CPU seconds of the whole machine since boot, over all CPUs: user, nice, system,
/// irq, softirq and steal from the first line of `/proc/stat` (idle and iowait excluded).
pub fn machine_busy_seconds() -> io::Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat.lines().next().unwrap_or_default();
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    if fields.len() < 8 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "cannot parse /proc/stat",
        ));
    }
    // user nice system idle iowait irq softirq steal ...
    let busy = fields[0] + fields[1] + fields[2] + fields[5] + fields[6] + fields[7];
    Ok(busy as f64 / clock_ticks())
}

/// TCP sockets in TIME_WAIT on the machine (`tw` in `/proc/net/sockstat`).
pub fn time_wait_sockets() -> io::Result<u64> {
    let stat = std::fs::read_to_string("/proc/net/sockstat")?;
    stat.lines()
        .filter(|l| l.starts_with("TCP:"))
        .flat_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words
                .windows(2)
                .filter(|w| w[0] == "tw")
                .filter_map(|w| w[1].parse().ok())
                .collect::<Vec<u64>>()
        })
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no tw in /proc/net/sockstat"))
}

/// The parent pid of `pid`, from `/proc/PID/stat` (field 4).
fn parent_of(pid: Pid) -> Option<Pid> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// (process group, command name) of `pid`, from `/proc/PID/stat` (fields 5 and 2).
pub fn group_and_name(pid: Pid) -> Option<(Pid, String)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, rest) = stat.rsplit_once(')')?;
    let name = head.split_once('(')?.1.to_string();
    let pgrp = rest.split_whitespace().nth(2)?.parse().ok()?;
    Some((pgrp, name))
}

/// Every process id in `/proc`.
pub fn all_pids() -> Vec<Pid> {
    std::fs::read_dir("/proc")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether process `pid` exists.
pub fn alive(pid: Pid) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Sends `signal` to process `pid`; errors ignored.
pub fn kill_one(pid: Pid, signal: libc::c_int) {
    // SAFETY: kill has no memory preconditions.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// Processes whose parent is `pid` (scans `/proc`; works without CONFIG_PROC_CHILDREN).
pub fn children_of(pid: Pid) -> Vec<Pid> {
    all_pids()
        .into_iter()
        .filter(|&child| parent_of(child) == Some(pid))
        .collect()
}

/// One `kB` field of `/proc/PID/status` (`VmRSS`, `VmHWM`), in KiB.
fn status_kib(pid: Pid, field: &str) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| {
            let value = line.strip_prefix(field)?.strip_prefix(':')?;
            value.trim().trim_end_matches("kB").trim().parse().ok()
        })
        .ok_or_else(|| bad_proc(field, pid))
}

/// Resident memory of `pid`, in KiB (`VmRSS`).
pub fn rss_kib(pid: Pid) -> io::Result<u64> {
    status_kib(pid, "VmRSS")
}

/// Peak resident memory of `pid`, in KiB (`VmHWM`).
pub fn peak_rss_kib(pid: Pid) -> io::Result<u64> {
    status_kib(pid, "VmHWM")
}

/// Resets `VmHWM` of `pid` to its current RSS (writes 5 to `/proc/PID/clear_refs`; needs
/// Linux 4.0+ and permission over the process).
pub fn reset_peak_rss(pid: Pid) -> io::Result<()> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
}

/// The CPUs `pid` may run on, as the kernel prints them (`Cpus_allowed_list`).
pub fn allowed_cpus(pid: Pid) -> io::Result<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|v| v.trim().to_string())
        .ok_or_else(|| bad_proc("Cpus_allowed_list", pid))
}

fn bad_proc(what: &str, pid: Pid) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("cannot parse {what} of /proc/{pid}"),
    )
}

/// Adds a description of what was being done to an error, for one-line messages.
pub trait Context<T> {
    /// Maps the error to `"{what}: {error}"`.
    fn context(self, what: impl FnOnce() -> String) -> Result<T, String>;
}

impl<T, E: std::fmt::Display> Context<T> for Result<T, E> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, String> {
        self.map_err(|e| format!("{}: {e}", what()))
    }
}
