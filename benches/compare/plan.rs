//! What a run consists of: the workloads, which targets each runs on, how the proxy is
//! set up for it, and the figures of the sweep table.

use crate::bandwidth;
use crate::report::Metric;
use crate::running::Probe;
use crate::targets::Kind;

/// One workload run: a fresh proxy, one measurement, figures recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    BulkUp,
    BulkDown,
    PingPong1,
    PingPong64,
    ConnRate,
    IdleMemory,
    SlowReader,
    /// Connections refused by the proxy's deny rule.
    Refused,
    /// Download rate accuracy at [`bandwidth::RATES`]`[i]`.
    Bandwidth(usize),
    /// TLS setups through a plain route (to the TLS backend).
    TlsPlain,
    /// TLS setups through a route chosen by server name.
    TlsSni,
}

/// What a workload needs from the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Forward to the plain backend.
    Forward,
    /// Refuse every client.
    Deny,
    /// Forward with the download rate of [`bandwidth::RATES`]`[i]`.
    Rate(usize),
    /// Forward to the TLS backend `a`.
    Tls,
    /// Route by server name between the two TLS backends.
    Sni,
}

impl Need {
    /// How a proxy set up for this shows it is ready: an echo through the plain backend,
    /// or (refusing, or in front of TLS servers) an accepted connection.
    pub fn probe(self) -> Probe {
        match self {
            Need::Forward | Need::Rate(_) => Probe::Echo,
            Need::Deny | Need::Tls | Need::Sni => Probe::Connect,
        }
    }
}

impl Workload {
    /// Every workload, in run order.
    pub const ALL: [Workload; 14] = [
        Workload::BulkUp,
        Workload::BulkDown,
        Workload::PingPong1,
        Workload::PingPong64,
        Workload::ConnRate,
        Workload::Refused,
        Workload::IdleMemory,
        Workload::SlowReader,
        Workload::TlsPlain,
        Workload::TlsSni,
        Workload::Bandwidth(0),
        Workload::Bandwidth(1),
        Workload::Bandwidth(2),
        Workload::Bandwidth(3),
    ];
    /// Workloads repeated by `--sweep`.
    pub const SWEEP: [Workload; 4] = [
        Workload::BulkUp,
        Workload::BulkDown,
        Workload::PingPong1,
        Workload::PingPong64,
    ];

    /// The name in progress lines and notes.
    pub fn name(self) -> &'static str {
        match self {
            Workload::BulkUp => "bulk client→upstream",
            Workload::BulkDown => "bulk upstream→client",
            Workload::PingPong1 => "ping-pong 1 conn",
            Workload::PingPong64 => "ping-pong 64 conns",
            Workload::ConnRate => "connection rate",
            Workload::IdleMemory => "idle memory",
            Workload::SlowReader => "slow reader",
            Workload::Refused => "refused connections",
            Workload::Bandwidth(i) => bandwidth::RATES[i].2,
            Workload::TlsPlain => "TLS setups, plain",
            Workload::TlsSni => "TLS setups, SNI",
        }
    }

    /// The `--workloads` name this workload belongs to.
    pub fn group(self) -> &'static str {
        match self {
            Workload::BulkUp | Workload::BulkDown => "bulk",
            Workload::PingPong1 | Workload::PingPong64 => "pingpong",
            Workload::ConnRate => "connrate",
            Workload::IdleMemory => "memory",
            Workload::SlowReader => "slowreader",
            Workload::Refused => "refused",
            Workload::Bandwidth(_) => "bandwidth",
            Workload::TlsPlain | Workload::TlsSni => "tls",
        }
    }

    /// Whether this workload runs on `kind`. The engines and the Go proxy run the plain
    /// workloads; the allow list only bulk and ping-pong (what it must not change);
    /// refusals, TLS and bandwidth run where the feature exists (bandwidth: ringproxy only,
    /// as the accuracy is against its own setting).
    pub fn runs_on(self, kind: Kind) -> bool {
        use Kind::*;
        match self {
            Workload::BulkUp | Workload::BulkDown | Workload::PingPong1 | Workload::PingPong64 => {
                true
            }
            Workload::ConnRate => kind != RingproxyAllow,
            Workload::IdleMemory | Workload::SlowReader => !matches!(kind, Direct | RingproxyAllow),
            Workload::Refused | Workload::TlsSni => {
                matches!(kind, Ringproxy | Baseline | Nginx | Haproxy)
            }
            Workload::TlsPlain => matches!(kind, Direct | Ringproxy | Baseline | Nginx | Haproxy),
            Workload::Bandwidth(_) => kind == Ringproxy,
        }
    }

    /// How the proxy is set up for this workload.
    pub fn need(self) -> Need {
        match self {
            Workload::Refused => Need::Deny,
            Workload::Bandwidth(i) => Need::Rate(i),
            Workload::TlsPlain => Need::Tls,
            Workload::TlsSni => Need::Sni,
            _ => Need::Forward,
        }
    }

    /// The figures of the sweep table this workload fills.
    pub fn sweep_metrics(self) -> &'static [Metric] {
        use Metric::*;
        match self {
            Workload::BulkUp => &[UpGbit, UpCpu],
            Workload::BulkDown => &[DownGbit, DownCpu],
            Workload::PingPong1 => &[Pp1Rps, Pp1P50, Pp1P99, Pp1P999],
            Workload::PingPong64 => &[Pp64Rps, Pp64P50, Pp64P99, Pp64P999],
            _ => &[],
        }
    }
}
