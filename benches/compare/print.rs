//! What the harness prints at the end: the header lines, the tables and the notes.

use crate::args::{Cpus, format_size};
use crate::plan::Workload;
use crate::quiet::FOREIGN_NOTE;
use crate::report::{Metric, format_ratio, main_ratios, table};
use crate::targets::Kind;
use crate::{Bench, HARNESS_CPU, SWEEP_BUFFERS, sweep_kinds};
use crate::{bandwidth, goals, rate, report, workloads};
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
        self.print_tables(buffer);
        if self.opts.sweep {
            let mut metrics = Vec::new();
            for w in self.workloads(&Workload::SWEEP) {
                metrics.extend_from_slice(w.sweep_metrics());
            }
            println!("### Buffer-size sweep (workloads 1 and 2, medians)");
            println!();
            println!(
                "{}",
                report::sweep_table(
                    &self.results,
                    &sweep_kinds(&self.kinds),
                    &SWEEP_BUFFERS,
                    &metrics
                )
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

    /// The tables of the main buffer size, section by section (a section without figures
    /// is left out), then the targets' PASS/FAIL lines.
    fn print_tables(&self, buffer: usize) {
        use Kind::*;
        let r = &self.results;
        let measured = |set: &[Kind]| -> Vec<Kind> {
            set.iter()
                .copied()
                .filter(|k| self.kinds.contains(k))
                .collect()
        };
        let section = |title: &str, text: Option<String>, after: Vec<String>| {
            if let Some(text) = text {
                println!("### {title}\n\n{text}");
                for line in &after {
                    println!("- {line}");
                }
                if !after.is_empty() {
                    println!();
                }
            }
        };
        let main = measured(&[Direct, Ringproxy, Baseline, Nginx, Haproxy]);
        let t = table(r, &Metric::MAIN, &main, &main_ratios(&main), buffer);
        section("Workloads 1–5", t, Vec::new());
        let engines = measured(&[
            Direct,
            Ringproxy,
            RingproxySplice,
            RingproxyAuto,
            Nginx,
            Haproxy,
            HaproxySplice,
            Go,
        ]);
        let ratios = [
            (RingproxySplice, Nginx),
            (RingproxySplice, Go),
            (RingproxySplice, HaproxySplice),
            (RingproxySplice, Ringproxy),
            (RingproxyAuto, Ringproxy),
            (RingproxyAuto, RingproxySplice),
            (HaproxySplice, Nginx),
            (Go, Nginx),
        ];
        let t = table(r, &Metric::MAIN, &engines, &ratios, buffer);
        section(
            "Engines: ring, splice, auto beside the splicing proxies (HAProxy splice-request/response, Go io.Copy: splices TCP to TCP)",
            t,
            Vec::new(),
        );
        let access = measured(&[Ringproxy, Baseline, Nginx, Haproxy]);
        let ratios = [
            (Ringproxy, Nginx),
            (Ringproxy, Haproxy),
            (Ringproxy, Baseline),
        ];
        let t = table(r, &Metric::ACCESS, &access, &ratios, buffer);
        let per = |m: Metric, k: Kind| r.median(m, k, buffer);
        let after = ratio_lines(
            &access,
            per,
            (
                "refused ÷ accepted-and-proxied connections per second",
                Metric::RefusedRate,
                Metric::ConnRate,
            ),
            (
                "CPU per refused ÷ per accepted connection",
                Metric::RefusedCpu,
                Metric::ConnCpu,
            ),
        );
        section(
            "Refused connections (deny) against accepted and proxied ones",
            t,
            after,
        );
        let allow = measured(&[Ringproxy, RingproxyAllow]);
        let t = table(
            r,
            &Metric::ALLOW,
            &allow,
            &[(RingproxyAllow, Ringproxy)],
            buffer,
        );
        section(
            "Allow list on (`--allow 127.0.0.0/8`, every client matches) against off",
            t,
            Vec::new(),
        );
        let tls = measured(&[Direct, Ringproxy, Baseline, Nginx, Haproxy]);
        let ratios = [
            (Ringproxy, Nginx),
            (Ringproxy, Haproxy),
            (Ringproxy, Direct),
        ];
        let t = table(r, &Metric::TLS, &tls, &ratios, buffer);
        let after = ratio_lines(
            &tls,
            per,
            (
                "SNI ÷ plain route, setups per second",
                Metric::SniRate,
                Metric::TlsRate,
            ),
            ("proxy CPU per connection", Metric::SniCpu, Metric::TlsCpu),
        );
        section(
            "TLS connection setups: SNI route against plain route (nginx ssl_preread + map, HAProxy req.ssl_sni)",
            t,
            after,
        );
        let ceiling = per(Metric::DownGbit, Ringproxy)
            .map(|g| {
                format!(
                    "ceiling: one unlimited ringproxy connection moved {:.0} MiB/s upstream → \
                     client in the same run (workload 1)",
                    g * 1e9 / 8.0 / f64::from(1 << 20)
                )
            })
            .into_iter()
            .collect();
        section(
            "Bandwidth accuracy (ringproxy --download-rate)",
            self.bandwidth_table(buffer),
            ceiling,
        );
        println!("### Targets\n");
        for line in goals::check(r, buffer) {
            println!("- {line}");
        }
        println!();
    }

    /// One row per rate of [`bandwidth::RATES`] measured: long-run rate ÷ setting.
    fn bandwidth_table(&self, buffer: usize) -> Option<String> {
        let header: Vec<String> = [
            "setting",
            "connections at once",
            "rate ÷ setting, mean of the connections",
            "farthest connection",
        ]
        .map(String::from)
        .to_vec();
        let rows: Vec<Vec<String>> = bandwidth::RATES
            .iter()
            .enumerate()
            .filter_map(|(i, (_, conns, label))| {
                let cell = |m| self.results.median(m, Kind::Ringproxy, buffer);
                let (mean, worst) = (cell(Metric::BwMean(i))?, cell(Metric::BwWorst(i))?);
                let spread = self
                    .results
                    .spread(Metric::BwMean(i), Kind::Ringproxy, buffer)
                    .map_or_else(String::new, |s| format!(" ±{s:.1}%"));
                Some(vec![
                    label.to_string(),
                    conns.to_string(),
                    format!("{mean:.3}×{spread}"),
                    format!("{worst:.3}×"),
                ])
            })
            .collect();
        (!rows.is_empty()).then(|| report::markdown(&header, &rows))
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
                "{} (mode tcp, nbthread 1, tune.bufsize = buffer; haproxy-splice adds option \
                 splice-request, option splice-response, tune.pipesize = pipe size)",
                h.version
            ));
        }
        if let Some(g) = &self.tools.go {
            versions.push(format!(
                "go: benches/compare/goproxy/main.go built with {} (GOMAXPROCS=1; io.Copy \
                 between TCP connections splices, through pipes of the kernel's default 64 KiB)",
                g.version
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
                 HAProxy tune.bufsize); pipe size of the splicing proxies: {} (ringproxy \
                 --pipe-size for splice and auto, HAProxy tune.pipesize; the Go proxy's pipes \
                 are the kernel's default 64 KiB)",
                format_size(self.opts.buffer_size),
                format_size(self.opts.pipe_size)
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
                 sends {} MiB, then drains it; peak = VmHWM after clear_refs; 6 the same \
                 client threads connect and wait to be closed without a byte (ringproxy \
                 --deny 127.0.0.0/8, nginx deny all, HAProxy tcp-request connection reject), \
                 CPU per connection = proxy utime+stime over the run ÷ connections; 7 the same \
                 threads, full TLS 1.3 handshakes (rustls client and servers in the harness, \
                 X25519, ECDSA P-256 certificate from openssl req, no resumption) + 1 byte from \
                 the server, to a plain route or to one of two routes sharing the address by \
                 server name; 8 connections read an endless stream through --download-rate, \
                 rate over {} s after the first second's burst ÷ the setting",
                workloads::MESSAGE,
                rate::RATE_THREADS,
                self.mem_conns,
                workloads::SLOW_STALL.as_secs(),
                workloads::SLOW_TOTAL >> 20,
                bandwidth::WINDOW.as_secs(),
            ),
        ]
    }
}

/// One line per proxy of `kinds` that has the first figure of `a`: `NAME: WHAT ratio, WHAT
/// ratio`, each ratio the first metric's median ÷ the second's.
fn ratio_lines(
    kinds: &[Kind],
    per: impl Fn(Metric, Kind) -> Option<f64>,
    a: (&str, Metric, Metric),
    b: (&str, Metric, Metric),
) -> Vec<String> {
    kinds
        .iter()
        .filter(|&&k| per(a.1, k).is_some())
        .map(|&k| {
            format!(
                "{}: {} {}, {} {}",
                k.name(),
                a.0,
                format_ratio(per(a.1, k), per(a.2, k)),
                b.0,
                format_ratio(per(b.1, k), per(b.2, k)),
            )
        })
        .collect()
}
