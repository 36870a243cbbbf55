//! The kernel-pipe engine beyond the scenarios every engine runs (see `each_engine!` in the
//! other files): the tail of a response written in MSS-sized pieces with pauses is never
//! stuck behind a pipe whose page slots filled first; with no pipe to be had every direction
//! falls back to a ring and still delivers every byte (counted); an idle connection holds no
//! pipe, so it costs its two sockets whatever it moved before; `pipe_size` sizes pipes apart
//! from the rings.

mod common;

use common::admin::{Admin, file, listen_of, route};
use common::logs::scrape;
use common::*;
use ringproxy::engine::EngineMode;
use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::Duration;

/// A backend that answers every connection with `total` bytes of `Pattern(seed)`, written
/// `piece` bytes at a time with a pause after each `pause_every` pieces, then FIN.
fn trickling(total: u64, piece: usize, pause_every: usize, seed: u64) -> Backend {
    Backend::spawn(listen_on(v4_any_port()), move |mut s: TcpStream| {
        let _ = s.set_nodelay(true);
        let pattern = Pattern::new(seed);
        let mut pos = 0u64;
        let mut pieces = 0;
        while pos < total {
            let chunk = pattern.chunk(pos, piece.min((total - pos) as usize));
            if s.write_all(chunk).is_err() {
                return;
            }
            pos += chunk.len() as u64;
            pieces += 1;
            if pieces % pause_every == 0 {
                // The sender's own pacing (what is tested), not synchronisation.
                thread::sleep(Duration::from_millis(1));
            }
        }
        let _ = s.shutdown(Shutdown::Write);
    })
}

#[test]
fn the_tail_behind_small_segments_and_pauses_is_never_stuck() {
    // 1448-byte pieces (an Ethernet MSS) fill a 4 KiB pipe's single page slot long before its
    // byte capacity; an odd total leaves a short last piece.
    let total = 3 * 1024 * 1024 + 777;
    let backend = trickling(total, 1448, 8, 11);
    for engine in [EngineMode::Splice, EngineMode::Auto] {
        for buffer in [4096, 16 * 1024] {
            let proxy = Settings::to(&[backend.addr])
                .buffer_size(buffer)
                .route(|s| {
                    s.engine = engine;
                    s.pipe_size = Some(buffer);
                })
                .start();
            let mut client = connect(proxy.addr);
            client.shutdown(Shutdown::Write).unwrap();
            let (got, end) = Pattern::new(11).read_from(&mut client, total, IO_TIMEOUT);
            assert_eq!(got, total, "{engine:?} with {buffer}-byte buffers: {end:?}");
            assert_eq!(end, Ending::Eof, "{engine:?} with {buffer}-byte buffers");
        }
    }
}

#[test]
fn with_no_pipe_to_be_had_every_direction_falls_back_to_a_ring() {
    setup();
    let echo = Backend::echo();
    // Connections that take every descriptor leave none for pipes.
    let fd_limit = rlimit::Resource::NOFILE.get().unwrap().0 as usize;
    let proxy = Settings::to(&[echo.addr])
        .route(|s| s.engine = EngineMode::Splice)
        .max_conns((fd_limit - 32) / 2)
        .metrics()
        .start();
    let total = 4 * 1024 * 1024;
    let mut client = connect(proxy.addr);
    let mut writer = client.try_clone().unwrap();
    let sender = thread::spawn(move || {
        Pattern::new(5).write_to(&mut writer, total).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let (got, end) = Pattern::new(5).read_from(&mut client, total, IO_TIMEOUT);
    sender.join().unwrap();
    assert_eq!((got, end), (total, Ending::Eof));
    let page = scrape(proxy.metrics.unwrap());
    let fallbacks = page
        .lines()
        .find(|l| l.starts_with("ringproxy_pipe_fallbacks_total{"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok());
    assert_eq!(
        fallbacks,
        Some(2),
        "both directions fell back once:\n{page}"
    );
}

/// Descriptors of `pid` that are pipes and sockets.
fn pipes_and_sockets(pid: u32) -> (usize, usize) {
    let mut counts = (0, 0);
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        let link = std::fs::read_link(entry.path()).unwrap_or_default();
        let link = link.to_string_lossy();
        if link.starts_with("pipe:") {
            counts.0 += 1;
        } else if link.starts_with("socket:") {
            counts.1 += 1;
        }
    }
    counts
}

#[test]
fn an_idle_connection_holds_no_pipe() {
    let echo = Backend::echo();
    let proxy = BinProxy::start(&["-u", &echo.addr.to_string(), "--engine", "splice"]);
    let (pipes_before, sockets_before) = pipes_and_sockets(proxy.pid());
    let n = 150;
    let clients: Vec<TcpStream> = (0..n)
        .map(|i| {
            let mut s = connect(proxy.addr);
            round_trip(&mut s, &vec![i as u8; 20_000]);
            s
        })
        .collect();
    let (pipes, sockets) = pipes_and_sockets(proxy.pid());
    assert_eq!(
        sockets - sockets_before,
        2 * n,
        "two sockets per connection"
    );
    // Each connection moved its bytes through pipes; idle, it holds none. Empty pipes are
    // kept for reuse, at most 64 per route (two descriptors each).
    assert!(
        pipes - pipes_before <= 2 * 64,
        "{} pipe descriptors for {n} idle connections",
        pipes - pipes_before
    );
    assert!(pipes > pipes_before, "the pipes were used");
    drop(clients);
}

#[test]
fn pipes_take_their_own_size_beside_the_rings() {
    setup();
    // 4 KiB rings, 64 KiB pipes. A client with a small receive buffer that stops reading
    // stalls the chain: the upstream → client pipe fills past the ring's 4 KiB (the admin
    // shows it), and every byte still arrives once the client reads.
    let total = 32 << 20;
    let backend = trickling(total, 64 << 10, usize::MAX, 3);
    let keys = "buffer_size = 4096\nengine = \"splice\"\npipe_size = \"64k\"";
    let admin = Admin::start(
        "pipe-size",
        &file("", &route("bulk", &[backend.addr], keys)),
        &[],
    );
    let start = admin.proxy.log().join("\n");
    assert!(
        start.contains("buffer-size 4096 bytes") && start.contains("pipes of 65536 bytes"),
        "{start}"
    );
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket
        .connect_timeout(&listen_of(&admin, "bulk").into(), IO_TIMEOUT)
        .unwrap();
    let mut client: TcpStream = socket.into();
    client.shutdown(Shutdown::Write).unwrap();
    let mut fill = 0;
    let filled = wait_until(IO_TIMEOUT, || {
        fill = admin
            .connections("")
            .first()
            .map_or(0, |c| c["fill_down"].as_u64().unwrap());
        fill > 4096
    });
    assert!(filled, "the pipe held at most {fill} bytes");
    let (got, end) = Pattern::new(3).read_from(&mut client, total, IO_TIMEOUT);
    assert_eq!((got, end), (total, Ending::Eof));
}
