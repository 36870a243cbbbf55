//! What the harness prints at the end: the header lines, the tables and the notes.

use crate::args::{Cpus, format_size};
use crate::targets::Kind;
use crate::{Bench, FOREIGN_NOTE, HARNESS_CPU, SWEEP_BUFFERS, Workload};
use crate::{report, workloads};
use std::time::Duration;

impl Bench {
    /// Prints the header, the tables and the notes to stdout.
    pub(crate) fn print_report(
        &mut self,
        nproc: usize,
        fd_limit: u64,
        elapsed: Duration,
        phases: &[(&str, Duration)],
    ) {
        let buffer = self.opts.buffer_size;
        println!();
        println!("## ringproxy vs nginx vs HAProxy — benches/compare.rs");
        println!();
        for line in self.header(nproc, fd_limit) {
            println!("- {line}");
        }
        println!();
        println!("{}", report::main_table(&self.results, &self.kinds, buffer));
        if self.opts.sweep {
            let mut metrics = Vec::new();
            for w in self.workloads(&Workload::SWEEP) {
                metrics.extend_from_slice(w.sweep_metrics());
            }
            println!("### Buffer-size sweep (workloads 1 and 2, medians)");
            println!();
            println!(
                "{}",
                report::sweep_table(&self.results, &self.kinds, &SWEEP_BUFFERS, &metrics)
            );
        }
        for (kind, log) in &self.proxy_logs {
            let mut text = format!(
                "{} logged {} lines about resets or broken pipes (expected: the harness \
                 closes with RST)",
                kind.name(),
                log.expected
            );
            if log.other > 0 {
                text.push_str(&format!(
                    " and {} other lines; first: {}",
                    log.other,
                    log.first.join(" / ")
                ));
            }
            self.notes.push(text);
        }
        if !self.waited.is_zero() {
            self.notes.push(format!(
                "waited {:.0} s in all for other processes to leave the CPUs idle",
                self.waited.as_secs_f64()
            ));
        }
        if !self.notes.is_empty() {
            println!("### Notes");
            println!();
            for note in &self.notes {
                println!("- {note}");
            }
            println!();
        }
        let phases: Vec<String> = phases
            .iter()
            .map(|(name, d)| format!("{name} {:.0} s", d.as_secs_f64()))
            .collect();
        println!(
            "Total run time: {:.0} s ({:.1} min; {}).",
            elapsed.as_secs_f64(),
            elapsed.as_secs_f64() / 60.0,
            phases.join(", ")
        );
    }

    /// The header lines: command, buffer, CPUs and pinning, versions, method.
    fn header(&self, nproc: usize, fd_limit: u64) -> Vec<String> {
        let mut command = String::new();
        if let Ok(dir) = std::env::var("CARGO_TARGET_DIR") {
            command.push_str(&format!("CARGO_TARGET_DIR={dir} "));
        }
        command.push_str("cargo bench --bench compare");
        if !self.opts.given.is_empty() {
            command.push_str(" -- ");
            command.push_str(&self.opts.given.join(" "));
        }
        let seen: Vec<String> = std::iter::once(format!("harness={}", self.harness_cpus))
            .chain(
                self.observed_cpus
                    .iter()
                    .map(|(k, c)| format!("{}={c}", k.name())),
            )
            .collect();
        let pinning = match (self.opts.cpus, self.tools.proxy_cpu) {
            (Cpus::Shared, _) => format!(
                "none (--cpus shared): proxy, backend and load generator all run on any of \
                 the {nproc} CPUs, as the kernel schedules them, and compete for them; \
                 Cpus_allowed_list seen: {}",
                seen.join(", ")
            ),
            (Cpus::Pinned, Some(cpu)) => {
                format!(
                    "proxy under test on CPU {cpu} (sched_setaffinity in the child before exec, \
                     as `taskset -c {cpu}`; Cpus_allowed_list seen: {}); backend and load \
                     generator threads on CPU {HARNESS_CPU} (the bench process pins itself, as \
                     `taskset -c {HARNESS_CPU}`); direct: client and backend on CPU {HARNESS_CPU}",
                    seen.join(", ")
                )
            }
            (Cpus::Pinned, None) => "none (one CPU)".into(),
        };
        let mut versions = vec![format!(
            "{} ({}){}",
            self.tools.ringproxy.version,
            self.tools.ringproxy.source,
            self.tools
                .ringproxy
                .workers
                .map_or_else(String::new, |n| format!(" (--workers {n})"))
        )];
        if let Some(b) = &self.tools.baseline
            && self.kinds.contains(&Kind::Baseline)
        {
            versions.push(format!(
                "baseline: {} ({}){}",
                b.version,
                b.source,
                b.workers
                    .map_or_else(String::new, |n| format!(" (--workers {n})"))
            ));
        }
        if let Some(n) = &self.tools.nginx {
            versions.push(format!(
                "{} (stream, worker_processes {}{}, proxy_buffer_size = buffer)",
                n.version,
                self.tools.nginx_workers,
                if self.tools.nginx_workers > 1 {
                    ", listen reuseport"
                } else {
                    ""
                }
            ));
        }
        if let Some(h) = &self.tools.haproxy {
            versions.push(format!(
                "{} (mode tcp, nbthread 1, tune.bufsize = buffer)",
                h.version
            ));
        }
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let foreign = match (
            report::median(&self.foreign_load),
            self.foreign_load.iter().copied().reduce(f64::max),
        ) {
            (Some(median), Some(max)) => format!(
                "CPU used by other processes during the runs: median {median:.0}%, max \
                 {max:.0}% of a core (runs above {FOREIGN_NOTE:.0}% are listed in the notes)"
            ),
            _ => "CPU used by other processes: not measured".into(),
        };
        vec![
            format!("command: `{command}`"),
            format!(
                "buffer size: {} per direction (ringproxy --buffer-size, nginx proxy_buffer_size, \
                 HAProxy tune.bufsize)",
                format_size(self.opts.buffer_size)
            ),
            format!("nproc: {nproc}; kernel {}", kernel.trim()),
            foreign,
            format!("pinning: {pinning}"),
            format!("versions: {}", versions.join("; ")),
            format!(
                "method: every proxy started afresh for every run on 127.0.0.1; {} s per timed run \
                 (first {:.1} s not recorded), {} repeats, medians shown with ±half the range of the \
                 repeats; connection limit {} in \
                 every proxy; descriptor limit {fd_limit}",
                self.opts.seconds,
                (self.opts.seconds / 10.0).min(0.5),
                self.opts.repeat,
                self.tools.max_conns,
            ),
            format!(
                "workloads: 1 one connection, 256 KiB writes, CPU = proxy utime+stime; \
                 2 {} B echo, one request in flight per connection; 3 {} client threads, \
                 connect + 16 B echo + close with RST; 4 {} idle connections (1 B echoed on \
                 each), VmRSS delta / connections; 5 client stalls {} s while the backend \
                 sends {} MiB, then drains it; peak = VmHWM after clear_refs",
                workloads::MESSAGE,
                workloads::RATE_THREADS,
                self.mem_conns,
                workloads::SLOW_STALL.as_secs(),
                workloads::SLOW_TOTAL >> 20,
            ),
        ]
    }
}
