//! What a pair needs only until its upstream is established: its connect policy, the
//! servers it tried, whether a PROXY header is still awaited, and the header it sends. The
//! records live in a box taken from the loop's [`Spares`] and given back once streaming, so
//! an idle pair does not carry them and accepting a client allocates nothing once warm.

use super::ConnectPolicy;
use crate::client_hello::HelloScan;
use crate::proxy_protocol::Version;
use crate::upstream::UpstreamId;

/// How many of the servers a client tried it remembers, to be offered others: nginx keeps
/// all; with more attempts than this the earliest may be offered again (passive health has
/// usually marked them by then).
pub const RECENT_TRIES: usize = 8;

/// The servers a client tried: how many, and the last [`RECENT_TRIES`] of them, in a fixed
/// array (no allocation per connection).
#[derive(Debug, Default)]
pub(super) struct Tried {
    recent: [UpstreamId; RECENT_TRIES],
    len: usize,
    total: u32,
}

impl Tried {
    pub(super) fn push(&mut self, server: UpstreamId) {
        if self.len == RECENT_TRIES {
            self.recent.rotate_left(1);
            self.len -= 1;
        }
        self.recent[self.len] = server;
        self.len += 1;
        self.total = self.total.saturating_add(1);
    }

    pub(super) fn recent(&self) -> &[UpstreamId] {
        &self.recent[..self.len]
    }

    pub(super) fn total(&self) -> u32 {
        self.total
    }
}

/// What only a pair without an established upstream needs (freed once streaming and its
/// PROXY header is sent, so an idle established pair does not carry it).
#[derive(Debug)]
pub(super) struct Attempts {
    pub(super) policy: ConnectPolicy,
    /// Servers tried, the last in flight while there is an upstream socket.
    pub(super) tried: Tried,
    /// Still waiting for the client's PROXY header.
    pub(super) awaiting_header: bool,
    /// Still waiting for the client's ClientHello (after the header, if one is awaited).
    pub(super) awaiting_hello: bool,
    /// How far the ClientHello's records were framed.
    pub(super) hello: HelloScan,
    /// The PROXY header the attempt in flight sends once connected.
    pub(super) send_proxy: Version,
    /// Header bytes not yet written to the connected upstream (before any client byte).
    pub(super) prefix: Vec<u8>,
    /// Nothing is left to do with these records: give the box back.
    pub(super) done: bool,
}

impl Attempts {
    fn reset(&mut self, policy: ConnectPolicy) {
        self.policy = policy;
        self.tried = Tried::default();
        self.awaiting_header = policy.preread.proxy_header.is_some();
        self.awaiting_hello = policy.preread.client_hello.is_some();
        self.hello = HelloScan::default();
        self.send_proxy = Version::Off;
        self.prefix.clear();
        self.done = false;
    }
}

/// A box of attempt records the pair no longer needs, for the loop's [`Spares`].
#[derive(Debug)]
pub struct Spare(pub(super) Box<Attempts>);

/// Boxes of attempt records kept for new pairs, so that accepting a client allocates
/// nothing once the loop has warmed up (at most [`Spares::KEEP`] are kept).
#[derive(Debug, Default)]
pub struct Spares {
    // The boxes themselves are what is recycled: a pair holds one, not the records inline.
    #[allow(clippy::vec_box)]
    pub(super) free: Vec<Box<Attempts>>,
}

impl Spares {
    /// Most boxes kept.
    pub const KEEP: usize = 1024;

    /// A box for a new pair's attempts under `policy`.
    pub(super) fn take(&mut self, policy: ConnectPolicy) -> Box<Attempts> {
        match self.free.pop() {
            Some(mut attempts) => {
                attempts.reset(policy);
                attempts
            }
            None => {
                let mut attempts = Box::new(Attempts {
                    policy,
                    tried: Tried::default(),
                    awaiting_header: false,
                    awaiting_hello: false,
                    hello: HelloScan::default(),
                    send_proxy: Version::Off,
                    prefix: Vec::new(),
                    done: false,
                });
                attempts.reset(policy);
                attempts
            }
        }
    }

    /// Keeps `spare` for a later pair (or frees it past [`Spares::KEEP`]).
    pub fn give(&mut self, spare: Spare) {
        if self.free.len() < Spares::KEEP {
            self.free.push(spare.0);
        }
    }
}
