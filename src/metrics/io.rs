//! The data-path cost families: syscalls, bytes and would-blocks per worker.

use super::text::Out;
use crate::stats::Snapshot;

/// The data-path cost families.
pub(super) fn io_families(out: &mut Out, snapshots: &[Snapshot]) {
    type IoFamily = (&'static str, &'static str, fn(&Snapshot) -> u64);
    let io: [IoFamily; 4] = [
        (
            "ringproxy_io_reads_total",
            "Socket reads that returned data.",
            |s| s.io.reads,
        ),
        (
            "ringproxy_io_read_bytes_total",
            "Bytes socket reads returned.",
            |s| s.io.read_bytes,
        ),
        (
            "ringproxy_io_writes_total",
            "Socket writes that accepted data.",
            |s| s.io.writes,
        ),
        (
            "ringproxy_io_write_bytes_total",
            "Bytes socket writes accepted.",
            |s| s.io.write_bytes,
        ),
    ];
    for (name, help, value) in io {
        out.header(name, help, "counter");
        for s in snapshots {
            out.sample(name, s.worker, &[], value(s));
        }
    }
    let name = "ringproxy_io_would_block_total";
    out.header(name, "Socket reads and writes that would block.", "counter");
    for s in snapshots {
        out.sample(name, s.worker, &[("op", "read")], s.io.read_would_block);
        out.sample(name, s.worker, &[("op", "write")], s.io.write_would_block);
    }
    let name = "ringproxy_io_partial_writes_total";
    out.header(
        name,
        "Socket writes that accepted only part of what was offered.",
        "counter",
    );
    for s in snapshots {
        out.sample(name, s.worker, &[], s.io.partial_writes);
    }
}
