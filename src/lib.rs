//! ringproxy: a single-threaded Layer-4 (TCP) reverse proxy with bounded ring buffers.
//!
//! A tour, outside in:
//! - [`proxy`] owns one `mio::Poll` (edge-triggered), the listeners, a `Slab` of pairs, the
//!   [`timers`] and the upstream [`upstream::Pool`]. Each turn: poll, dispatch, fire timers,
//!   accept while below `max_conns`.
//! - [`pair`] is one client and its upstream, with one [`ring::Ring`] per direction. A full
//!   ring stops reads from its source (backpressure), so memory per connection is bounded by
//!   twice the buffer size. FINs are passed on once a ring drains (half-close).
//! - [`io`] holds the read/write pumps (vectored across the ring's wrap); [`connect`] the
//!   non-blocking connect; [`balance`] picks servers; [`token`] maps mio tokens to pairs.
//! - [`balance`], [`health`], [`upstream`] and [`checks`] choose servers and track their
//!   health (pure state machines, time passed in).
//! - [`cli`], [`file`](mod@file) and [`config`] turn a command line or a TOML file into validated
//!   settings: global ones plus routes; [`error`] holds the start/usage errors and the
//!   reasons a pair closes.
//! - [`workers`] runs N independent loops and turns signals into commands (drain, reload,
//!   reopen the log); [`stats`], [`metrics`] and [`access_log`] report what the loops do.

#![warn(missing_docs)]

pub mod access_log;
pub mod balance;
pub mod buffer;
pub mod checks;
pub mod cli;
pub mod config;
pub mod connect;
pub mod error;
pub mod file;
pub mod health;
pub mod io;
pub mod metrics;
pub mod pair;
pub mod proxy;
pub mod resolve;
pub mod ring;
pub mod settings;
pub mod stats;
pub mod timers;
pub mod token;
pub mod upstream;
pub mod workers;
