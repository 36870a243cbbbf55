//! ringproxy: a Layer-4 (TCP) reverse proxy with bounded per-direction buffers, one
//! edge-triggered `mio` loop per worker.
//!
//! A tour, outside in:
//! - **Settings** ([`settings`](mod@settings)): every setting is declared once, with its type, default,
//!   [`settings::Kind`] of value and help; [`cli`] (flags, `--help`), [`file`](mod@file) (TOML,
//!   `[defaults]`, `--check`) and the range checks are all driven from those declarations.
//! - **Configuration** ([`config`], [`resolve`]): flags or a file give a [`config::Config`];
//!   [`config::Config::validate`] checks every rule once and gives a [`config::ValidConfig`]
//!   (errors name the place, [`config::Location`]); resolving names, off the loops, gives the
//!   [`resolve::ResolvedConfig`] a loop accepts at start and on reload.
//! - **The loop** ([`proxy`]) owns one `mio::Poll` and its parts: listeners, routes with one
//!   struct per server ([`upstream::Upstream`]), the `Slab` of pairs, the [`timers`], health
//!   checks ([`checks`]) and the operator's side. Each turn: poll, hand events to their part,
//!   fire timers, accept while below `max_conns`.
//! - **The pair** ([`pair`]) is one client and its upstream as a state machine with its own
//!   lifecycle (preread, connecting, streaming) but no sockets or clocks of its own: the loop
//!   feeds it events and `now`, and carries out the [`pair::Action`]s it returns (connect,
//!   abandon an attempt, wake me, pump me again, close).
//! - **Buffers** ([`buffer`]): what a direction needs from its buffer; [`ring::Ring`] with its
//!   pool is the user-space implementation. A full buffer stops reads from its source
//!   (backpressure), so memory per connection is bounded by twice the buffer size; FINs are
//!   passed on once a buffer drains (half-close). [`io`] holds the vectored read/write pumps,
//!   [`connect`] the non-blocking connect, [`conn`] the socket a pair carries (TCP or Unix,
//!   one enum), [`endpoint`] where a server is and who a client is.
//! - **Choosing servers** ([`balance`], [`health`], [`upstream`]): pure state machines, time
//!   passed in. [`token`] maps mio tokens to pairs, listeners and probes.
//! - **Running and reporting**: [`workers`] runs N independent loops and turns signals into
//!   commands (drain, reload, reopen the log), printing process-wide lines once and telling
//!   systemd ([`systemd`]; the watchdog reads each loop's [`heartbeat`]); [`stats`],
//!   [`metrics`] and [`access_log`] report what the loops do; [`admin`] serves the admin API
//!   and status page from a thread of its own, asking every loop through its command queue;
//!   [`error`] holds the start/usage errors and why a pair closed.

#![warn(missing_docs)]

pub mod access_log;
pub mod admin;
pub mod balance;
pub mod buffer;
pub mod checks;
pub mod cli;
pub mod client_hello;
pub mod config;
pub mod conn;
pub mod connect;
pub mod discovery;
pub mod display;
pub mod dns;
pub mod endpoint;
pub mod engine;
pub mod error;
pub mod file;
pub mod health;
pub mod heartbeat;
pub mod histogram;
pub mod io;
pub mod limits;
pub mod log_queue;
pub mod metrics;
pub mod pair;
pub mod pipe;
pub mod process;
pub mod proxy;
pub mod proxy_protocol;
pub mod resolve;
pub mod ring;
pub mod server_names;
pub mod settings;
pub mod stats;
pub mod systemd;
#[cfg(test)]
mod test_rng;
pub mod timers;
pub mod token;
pub mod upstream;
pub mod workers;
