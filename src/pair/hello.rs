//! Choosing the route by the TLS server name (`sni`): the preread phase reads the client's
//! ClientHello (after its PROXY header, when one is required) and asks the loop for the
//! route, which then supplies the policy every later step follows.
//!
//! The hello is framed from the bytes already read into the client → upstream buffer, which
//! was never drained (a PROXY header taken out before it leaves it at the front), so they
//! are one contiguous slice; it stays there and is forwarded unchanged once an upstream is
//! connected. Until the route is chosen the pair counts on its listen address's first route
//! (`Pair::route`) and has no bandwidth limit or lifetime of its own.

use super::{Action, Actions, ConnectPolicy, Flow, Pair, Phase, Stream, rates};
use crate::buffer::Buffer;
use crate::client_hello::{ClientHello, Scanned};
use crate::error::CloseReason;
use log::debug;
use std::net::SocketAddr;
use std::time::Instant;

impl<S: Stream, B: Buffer> Pair<S, B> {
    /// The server name the ClientHello asked for (lowercase, no trailing dot).
    pub fn server_name(&self) -> Option<&str> {
        self.hello()?.server_name.as_deref()
    }

    /// The ALPN protocols the ClientHello offered, joined with `,`.
    pub fn alpn(&self) -> Option<&str> {
        self.hello()?.alpn.as_deref()
    }

    /// The listen address whose routes choose this client's, while its route is not chosen.
    pub fn listener(&self) -> Option<SocketAddr> {
        let attempts = self.attempts.as_ref()?;
        Some(attempts.policy.preread.client_hello?.listener)
    }

    /// True until the route is chosen by the server name (the pair counts on its listen
    /// address's first route until then).
    pub fn awaiting_route(&self) -> bool {
        self.listener().is_some()
    }

    /// The route that takes the server name: from now on `policy` (the route's) applies —
    /// idle timeout, attempts, lifetime and bandwidth limits. Asks for a server.
    pub fn routed(
        &mut self,
        route: usize,
        policy: ConnectPolicy,
        now: Instant,
        out: &mut Actions<S>,
    ) {
        self.route = route as u32;
        let idle_ms = policy.idle_timeout.as_millis();
        self.idle_timeout_ms = idle_ms.min(u128::from(u32::MAX)) as u32;
        if let Some(attempts) = self.attempts.as_mut() {
            attempts.policy = policy;
        }
        let rates = rates::Rates::new(&policy, now);
        if rates.is_some() || self.extra.is_some() {
            self.extra_mut().rates = rates;
        }
        out.push_back(Action::Wake(self.idle_deadline(), super::PairTimer::Idle));
        if let Some(lifetime) = policy.max_lifetime {
            let at = self.started + lifetime;
            out.push_back(Action::Wake(at, super::PairTimer::Lifetime));
        }
        out.push_back(Action::Connect);
    }

    /// No route of the listen address takes the server name (and none has `*`).
    pub fn no_route(&mut self, out: &mut Actions<S>) {
        debug!(
            "{}: no route for server name {:?}",
            self.client_addr,
            self.server_name()
        );
        out.push_back(Action::Close(CloseReason::NoRoute));
    }

    /// True while the client's ClientHello has not been read.
    pub(super) fn awaiting_hello(&self) -> bool {
        self.phase == Phase::Preread && self.attempts.as_ref().is_some_and(|a| a.awaiting_hello)
    }

    /// True while a PROXY header or a ClientHello is awaited.
    pub(super) fn awaiting_preread(&self) -> bool {
        self.awaiting_header() || self.awaiting_hello()
    }

    /// The preread phase with what the client sent so far: the PROXY header, then the
    /// ClientHello, as the policy asks; once all is read, asks for the route or a server.
    pub(super) fn preread(&mut self, out: &mut Actions<S>) -> Result<(), CloseReason> {
        if self.awaiting_header() && !self.read_proxy_header()? {
            return Ok(());
        }
        if self.awaiting_hello() {
            if self.read_client_hello()? {
                out.push_back(Action::Route);
            }
            return Ok(());
        }
        out.push_back(Action::Connect);
        Ok(())
    }

    /// Frames the ClientHello in what the client sent so far: `Ok(true)` once it is whole
    /// (or the client is not speaking TLS: then there is no name); a broken hello, one over
    /// `preread_max`, or none where the client ended or the buffer filled, is the reason to
    /// close.
    fn read_client_hello(&mut self) -> Result<bool, CloseReason> {
        let Some(attempts) = self.attempts.as_mut() else {
            return Ok(false);
        };
        let max = attempts.policy.preread.client_hello.map_or(0, |h| h.max);
        let buffer = self.to_upstream.buffer();
        let (bytes, ended) = (buffer.front(), self.to_upstream.flow() != Flow::Open);
        let full = buffer.has_storage() && buffer.is_full();
        let hello = match attempts.hello.advance(bytes, max) {
            Ok(Scanned::Done(hello)) => hello,
            Ok(Scanned::NotTls) => {
                debug!("{}: not TLS, routed as without a name", self.client_addr);
                ClientHello::default()
            }
            Ok(Scanned::Incomplete) if ended && bytes.is_empty() => {
                debug!("{} closed before sending a byte", self.client_addr);
                return Err(CloseReason::Probe);
            }
            Ok(Scanned::Incomplete) if ended || full => {
                debug!("{}: incomplete ClientHello", self.client_addr);
                return Err(CloseReason::BadClientHello);
            }
            Ok(Scanned::Incomplete) => return Ok(false),
            Err(e) => {
                debug!("{}: {e}", self.client_addr);
                return Err(CloseReason::BadClientHello);
            }
        };
        attempts.awaiting_hello = false;
        if hello.server_name.is_some() || hello.alpn.is_some() {
            self.extra_mut().hello = Some(hello);
        }
        Ok(true)
    }

    /// What the ClientHello said, if one was read.
    fn hello(&self) -> Option<&ClientHello> {
        self.extra.as_ref()?.hello.as_ref()
    }
}
