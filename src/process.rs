//! The process's own resource use, as Prometheus's standard `process_*` metrics report it:
//! resident memory, CPU time and start time from `/proc/self/stat`, open descriptors from
//! `/proc/self/fd`, the boot time from `/proc/stat`. Read when `/metrics` is scraped, never
//! on the data path; `None` where `/proc` cannot be read.

/// What the process uses now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resources {
    /// Resident memory, bytes.
    pub resident_bytes: u64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// Start time, seconds since the Unix epoch.
    pub start_time_seconds: f64,
    /// User and system CPU time of all threads, seconds.
    pub cpu_seconds: f64,
}

/// The fields of `/proc/PID/stat` used here, in clock ticks and pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    utime: u64,
    stime: u64,
    starttime: u64,
    rss_pages: u64,
}

/// Reads the process's resources now.
pub fn read() -> Option<Resources> {
    let stat = parse_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
    let boot = parse_boot_time(&std::fs::read_to_string("/proc/stat").ok()?)?;
    let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    let ticks = rustix::param::clock_ticks_per_second().max(1) as f64;
    let page = rustix::param::page_size() as u64;
    Some(Resources {
        resident_bytes: stat.rss_pages * page,
        open_fds,
        start_time_seconds: boot as f64 + stat.starttime as f64 / ticks,
        cpu_seconds: (stat.utime + stat.stime) as f64 / ticks,
    })
}

/// Parses `/proc/PID/stat`: the command name (field 2) is in parentheses and may hold
/// spaces or parentheses, so fields are counted from after the last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    // After `)`, field 3 (state) is at index 0, so field N is at index N - 3.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        utime: field(14)?,
        stime: field(15)?,
        starttime: field(22)?,
        rss_pages: field(24)?,
    })
}

/// The `btime` line of `/proc/stat`: the boot time in seconds since the epoch.
fn parse_boot_time(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|value| value.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_count_from_the_last_parenthesis() {
        let line = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 3 0 \
                    555 12345678 321 18446744073709551615";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                utime: 7,
                stime: 3,
                starttime: 555,
                rss_pages: 321
            })
        );
        assert_eq!(parse_stat("42 (x) S 1"), None);
        assert_eq!(parse_stat("no parenthesis"), None);
    }

    #[test]
    fn boot_time_from_proc_stat() {
        assert_eq!(
            parse_boot_time("cpu 1 2 3\nbtime 1700000000\n"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_boot_time("cpu 1 2 3\n"), None);
    }

    #[test]
    fn this_process_reads() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let r = read().expect("/proc is readable here");
        assert!(r.resident_bytes > 0 && r.open_fds >= 3);
        assert!(r.start_time_seconds > now - 86_400.0 * 30.0 && r.start_time_seconds <= now + 1.0);
    }
}
