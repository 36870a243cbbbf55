//! Reading one handshake message out of the TLS records that carry it: a cursor that skips
//! the record headers, so fields split across records read as if contiguous.

use super::{HelloError, RECORD_HEADER};

/// A cursor over the handshake bytes of framed records, bounded by the message's length.
/// Invariant: it never reads past the message, so every read either succeeds or reports the
/// field that does not fit.
pub(super) struct Payload<'a> {
    bytes: &'a [u8],
    pos: usize,
    record_left: usize,
    left: usize,
}

impl<'a> Payload<'a> {
    /// The body of the message of `message_len` bytes at the start of the records in
    /// `framed` (past its 4-byte handshake header).
    pub(super) fn new(framed: &'a [u8], message_len: usize) -> Result<Self, HelloError> {
        let mut payload = Payload {
            bytes: framed,
            pos: 0,
            record_left: 0,
            left: 4 + message_len,
        };
        payload.skip(4, "handshake header")?;
        Ok(payload)
    }

    /// Bytes of the message not read yet.
    pub(super) fn left(&self) -> usize {
        self.left
    }

    /// Up to `n` contiguous bytes: what is left of `n` in the current record.
    fn chunk(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], HelloError> {
        if n > self.left {
            return Err(HelloError::Malformed(what));
        }
        while self.record_left == 0 {
            let header = self.bytes.get(self.pos..self.pos + RECORD_HEADER);
            let Some(&[_, _, _, high, low]) = header else {
                return Err(HelloError::Malformed(what));
            };
            self.record_left = usize::from(u16::from_be_bytes([high, low]));
            self.pos += RECORD_HEADER;
        }
        let take = n.min(self.record_left);
        let chunk = self
            .bytes
            .get(self.pos..self.pos + take)
            .ok_or(HelloError::Malformed(what))?;
        self.pos += take;
        self.record_left -= take;
        self.left -= take;
        Ok(chunk)
    }

    /// Skips `n` bytes of field `what`.
    pub(super) fn skip(&mut self, mut n: usize, what: &'static str) -> Result<(), HelloError> {
        while n > 0 {
            n -= self.chunk(n, what)?.len();
        }
        Ok(())
    }

    /// Appends `n` bytes of field `what` to `out`.
    pub(super) fn copy(
        &mut self,
        mut n: usize,
        out: &mut Vec<u8>,
        what: &'static str,
    ) -> Result<(), HelloError> {
        while n > 0 {
            let chunk = self.chunk(n, what)?;
            out.extend_from_slice(chunk);
            n -= chunk.len();
        }
        Ok(())
    }

    /// One byte of field `what`.
    pub(super) fn u8(&mut self, what: &'static str) -> Result<u8, HelloError> {
        Ok(self.chunk(1, what)?[0])
    }

    /// A big-endian 16-bit field `what`.
    pub(super) fn u16(&mut self, what: &'static str) -> Result<u16, HelloError> {
        let high = self.u8(what)?;
        let low = self.u8(what)?;
        Ok(u16::from_be_bytes([high, low]))
    }
}
