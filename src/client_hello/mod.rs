//! Reading a TLS ClientHello from the first bytes a client sends, without terminating TLS:
//! its server name (SNI) and ALPN protocols, to choose a route by (nginx `ssl_preread`,
//! HAProxy `req.ssl_sni`, Envoy `tls_inspector`).
//!
//! Pure code without sockets. A [`HelloScan`] is fed the growing prefix of what the client
//! sent (always from its first byte) and looks only at the records it has not framed yet, so
//! a hello that arrives a byte at a time costs linear time. It frames TLS records until the
//! whole ClientHello handshake message is there, over any number of records and segments,
//! and then parses the message once. It never reads past the hello's last record; nothing is
//! allocated until the names are returned. Invariants: every record is a handshake record of
//! version 3.x and 1 to [`MAX_RECORD`] bytes long; the records the hello needs fit within
//! the caller's maximum; every length inside the message adds up exactly.
//!
//! With Encrypted Client Hello the name read is the outer (public) one, as in every proxy
//! that does not hold the ECH keys.

mod payload;
#[cfg(test)]
mod tests;

use payload::Payload;
use std::fmt;

/// Longest record accepted: 2^14 bytes of plaintext plus the 2048 the specification allows
/// for expansion.
pub const MAX_RECORD: usize = (1 << 14) + 2048;
/// Longest server name (RFC 6066: a DNS host name, at most 255 bytes).
pub const MAX_NAME: usize = 255;

const HANDSHAKE_RECORD: u8 = 22;
const CLIENT_HELLO: u8 = 1;
const RECORD_HEADER: usize = 5;
const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;

/// What the first bytes of a connection turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scanned {
    /// Not a whole ClientHello yet: feed more bytes.
    Incomplete,
    /// The first byte is not a TLS handshake record: not TLS at all.
    NotTls,
    /// A whole ClientHello.
    Done(ClientHello),
}

/// What a ClientHello says about where the client wants to go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientHello {
    /// The `host_name` of the server_name extension, lowercased, without a trailing dot.
    pub server_name: Option<String>,
    /// The ALPN protocols in the client's order, joined with `,` (`h2,http/1.1`); bytes that
    /// are not UTF-8 are replaced.
    pub alpn: Option<String>,
}

/// Why the bytes cannot be a ClientHello (the connection started as a TLS handshake).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelloError {
    /// A record of another content type before the hello was whole.
    RecordType(u8),
    /// A record version other than 3.0 to 3.4.
    RecordVersion(u8, u8),
    /// A record of length 0 or over [`MAX_RECORD`].
    RecordLength(usize),
    /// The first handshake message is not a ClientHello.
    NotClientHello(u8),
    /// The hello needs more bytes than allowed (`preread_max`).
    TooLarge {
        /// Bytes it needs at least.
        needed: usize,
        /// Bytes allowed.
        max: usize,
    },
    /// A length inside the message that does not add up, or a field out of range.
    Malformed(&'static str),
}

impl fmt::Display for HelloError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HelloError::RecordType(t) => write!(f, "a record of type {t} inside the ClientHello"),
            HelloError::RecordVersion(major, minor) => {
                write!(f, "record version {major}.{minor}, expected 3.x")
            }
            HelloError::RecordLength(n) => {
                write!(f, "a record of {n} bytes, expected 1 to {MAX_RECORD}")
            }
            HelloError::NotClientHello(t) => {
                write!(f, "handshake message type {t}, expected a ClientHello")
            }
            HelloError::TooLarge { needed, max } => write!(
                f,
                "a ClientHello of at least {needed} bytes, more than preread_max ({max})"
            ),
            HelloError::Malformed(what) => write!(f, "malformed ClientHello: {what}"),
        }
    }
}

impl std::error::Error for HelloError {}

/// The framing state of one connection's first bytes: how far the records were followed,
/// and the handshake message's length once its header is seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HelloScan {
    /// Bytes of the whole records framed so far: where the next record header starts.
    framed: u32,
    /// Handshake bytes in those records.
    payload: u32,
    /// The 4-byte handshake header, gathered across records.
    header: [u8; 4],
    header_len: u8,
}

impl HelloScan {
    /// Looks at `bytes`, everything the client sent so far (the same prefix as last time,
    /// grown), allowing the hello's records at most `max` bytes in all.
    pub fn advance(&mut self, bytes: &[u8], max: usize) -> Result<Scanned, HelloError> {
        match bytes.first() {
            None => return Ok(Scanned::Incomplete),
            Some(&first) if first != HANDSHAKE_RECORD => return Ok(Scanned::NotTls),
            Some(_) => {}
        }
        loop {
            let start = self.framed as usize;
            let rest = bytes.get(start..).unwrap_or_default();
            let len = record_len(rest)?;
            let Some(len) = len else {
                return Ok(Scanned::Incomplete);
            };
            let end = start + RECORD_HEADER + len;
            if end > max {
                return Err(HelloError::TooLarge { needed: end, max });
            }
            let Some(fragment) = bytes.get(start + RECORD_HEADER..end) else {
                // Check the handshake header early if this partial record holds it.
                let partial = bytes.get(start + RECORD_HEADER..).unwrap_or_default();
                let mut peek = *self;
                peek.gather_header(partial, max)?;
                return Ok(Scanned::Incomplete);
            };
            self.gather_header(fragment, max)?;
            self.framed = end as u32;
            self.payload += len as u32;
            if let Some(message_len) = self.message_len()
                && self.payload as usize >= 4 + message_len
            {
                let framed = &bytes[..end];
                return parse_message(Payload::new(framed, message_len)?).map(Scanned::Done);
            }
        }
    }

    /// Takes the handshake header's bytes from the front of a record's fragment, and checks
    /// it once whole.
    fn gather_header(&mut self, fragment: &[u8], max: usize) -> Result<(), HelloError> {
        let have = usize::from(self.header_len);
        if have == 4 {
            return Ok(());
        }
        let take = (4 - have).min(fragment.len());
        self.header[have..have + take].copy_from_slice(&fragment[..take]);
        self.header_len += take as u8;
        if self.header_len < 4 {
            return Ok(());
        }
        if self.header[0] != CLIENT_HELLO {
            return Err(HelloError::NotClientHello(self.header[0]));
        }
        // Each record adds a 5-byte header: the message alone already needs this much.
        let needed = RECORD_HEADER + 4 + self.message_len().unwrap_or(0);
        if needed > max {
            return Err(HelloError::TooLarge { needed, max });
        }
        Ok(())
    }

    /// The ClientHello body's length, once the handshake header is whole.
    fn message_len(&self) -> Option<usize> {
        (self.header_len == 4).then(|| {
            let [_, a, b, c] = self.header;
            usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c)
        })
    }
}

/// The length of the record starting at `rest`, `None` until its header is whole; what can
/// be checked of a partial header is checked at once.
fn record_len(rest: &[u8]) -> Result<Option<usize>, HelloError> {
    if let Some(&kind) = rest.first()
        && kind != HANDSHAKE_RECORD
    {
        return Err(HelloError::RecordType(kind));
    }
    let (major, minor) = (rest.get(1).copied(), rest.get(2).copied());
    if major.is_some_and(|major| major != 3) || minor.is_some_and(|minor| minor > 4) {
        return Err(HelloError::RecordVersion(
            major.unwrap_or(0),
            minor.unwrap_or(0),
        ));
    }
    let [_, _, _, high, low, ..] = *rest else {
        return Ok(None);
    };
    let len = usize::from(u16::from_be_bytes([high, low]));
    if len == 0 || len > MAX_RECORD {
        return Err(HelloError::RecordLength(len));
    }
    Ok(Some(len))
}

/// Parses the ClientHello body (RFC 8446 §4.1.2): version, random, session id, cipher
/// suites, compression methods, then the extensions, which must fill the message exactly.
fn parse_message(mut r: Payload<'_>) -> Result<ClientHello, HelloError> {
    let version = r.u16("client version")?;
    if version >> 8 != 3 {
        return Err(HelloError::Malformed("client version is not 3.x"));
    }
    r.skip(32, "random")?;
    let session_id = usize::from(r.u8("session id")?);
    if session_id > 32 {
        return Err(HelloError::Malformed("session id longer than 32 bytes"));
    }
    r.skip(session_id, "session id")?;
    let suites = usize::from(r.u16("cipher suites")?);
    if suites < 2 || suites % 2 != 0 {
        return Err(HelloError::Malformed("cipher suites length"));
    }
    r.skip(suites, "cipher suites")?;
    let methods = usize::from(r.u8("compression methods")?);
    if methods == 0 {
        return Err(HelloError::Malformed("no compression method"));
    }
    r.skip(methods, "compression methods")?;
    let mut hello = ClientHello::default();
    if r.left() == 0 {
        return Ok(hello);
    }
    if usize::from(r.u16("extensions")?) != r.left() {
        return Err(HelloError::Malformed("extensions length"));
    }
    let (mut seen_name, mut seen_alpn) = (false, false);
    while r.left() > 0 {
        let kind = r.u16("extension type")?;
        let len = usize::from(r.u16("extension length")?);
        if len > r.left() {
            return Err(HelloError::Malformed("extension length"));
        }
        let after = r.left() - len;
        match kind {
            EXT_SERVER_NAME if seen_name => {
                return Err(HelloError::Malformed("two server_name extensions"));
            }
            EXT_SERVER_NAME => {
                seen_name = true;
                hello.server_name = server_name(&mut r, len)?;
            }
            EXT_ALPN if seen_alpn => return Err(HelloError::Malformed("two ALPN extensions")),
            EXT_ALPN => {
                seen_alpn = true;
                hello.alpn = Some(alpn(&mut r, len)?);
            }
            _ => r.skip(len, "extension")?,
        }
        if r.left() != after {
            return Err(HelloError::Malformed("extension length"));
        }
    }
    Ok(hello)
}

/// The server_name extension (RFC 6066 §3): its first `host_name`, if it has one.
fn server_name(r: &mut Payload<'_>, len: usize) -> Result<Option<String>, HelloError> {
    let list = usize::from(r.u16("server name list")?);
    if list + 2 != len || list == 0 {
        return Err(HelloError::Malformed("server name list length"));
    }
    let end = r.left() - list;
    let mut host = None;
    while r.left() > end {
        let kind = r.u8("server name type")?;
        let n = usize::from(r.u16("server name length")?);
        // The entry's own header may already run past the list.
        if end + n > r.left() {
            return Err(HelloError::Malformed("server name length"));
        }
        // Other name types, and host names after the first, are skipped (as nginx and
        // HAProxy read the first host name).
        if kind != 0 || host.is_some() {
            r.skip(n, "server name")?;
            continue;
        }
        if n == 0 || n > MAX_NAME {
            return Err(HelloError::Malformed("host name length"));
        }
        let mut name = Vec::with_capacity(n);
        r.copy(n, &mut name, "host name")?;
        if !name.iter().all(u8::is_ascii_graphic) {
            return Err(HelloError::Malformed("host name is not printable ASCII"));
        }
        name.make_ascii_lowercase();
        if name.last() == Some(&b'.') {
            name.pop();
        }
        // Printable ASCII is UTF-8.
        host = Some(String::from_utf8_lossy(&name).into_owned());
    }
    Ok(host)
}

/// The ALPN extension (RFC 7301 §3.1): the protocols, joined with `,`.
fn alpn(r: &mut Payload<'_>, len: usize) -> Result<String, HelloError> {
    let list = usize::from(r.u16("ALPN list")?);
    if list + 2 != len || list < 2 {
        return Err(HelloError::Malformed("ALPN list length"));
    }
    let end = r.left() - list;
    let mut joined = Vec::with_capacity(list);
    while r.left() > end {
        let n = usize::from(r.u8("ALPN protocol length")?);
        if n == 0 || end + n > r.left() {
            return Err(HelloError::Malformed("ALPN protocol length"));
        }
        if !joined.is_empty() {
            joined.push(b',');
        }
        r.copy(n, &mut joined, "ALPN protocol")?;
    }
    Ok(String::from_utf8_lossy(&joined).into_owned())
}
