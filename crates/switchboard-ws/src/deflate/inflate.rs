//! Inflating a message with its size limit enforced while inflating, so a
//! small compressed frame can never make us hold more than the limit.

use flate2::{Decompress, FlushDecompress, Status};

use crate::error::ProtocolError;

/// Output is produced in steps of at most this many bytes.
const STEP: usize = 32 * 1024;

/// A raw-deflate decompressor for one connection's incoming messages.
pub struct Inflater {
    inner: Decompress,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater")
            .field("total_out", &self.inner.total_out())
            .finish()
    }
}

impl Default for Inflater {
    fn default() -> Self {
        Self::new()
    }
}

impl Inflater {
    /// A decompressor that accepts any window up to 15 bits.
    pub fn new() -> Self {
        Self {
            inner: Decompress::new(false),
        }
    }

    /// Inflates `input` onto the end of `out`. Fails with
    /// [`ProtocolError::MessageTooLarge`] as soon as `out` would pass `limit`
    /// (the buffer never grows more than one step past it), and with
    /// [`ProtocolError::InvalidCompressedData`] on corrupt input.
    pub fn inflate(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), ProtocolError> {
        let mut consumed = 0;
        loop {
            let room = (limit + 1).saturating_sub(out.len()).clamp(1, STEP);
            if out.capacity() - out.len() < room {
                out.reserve_exact(room);
            }
            let (in_before, out_before) = (self.inner.total_in(), out.len());
            let status = self
                .inner
                .decompress_vec(&input[consumed..], out, FlushDecompress::Sync)
                .map_err(|_| ProtocolError::InvalidCompressedData)?;
            consumed += (self.inner.total_in() - in_before) as usize;
            if out.len() > limit {
                return Err(ProtocolError::MessageTooLarge {
                    len: out.len() as u64,
                    max: limit,
                });
            }
            let progressed = out.len() > out_before || self.inner.total_in() > in_before;
            let output_full = out.len() == out.capacity();
            match status {
                Status::StreamEnd => return Ok(()),
                _ if consumed >= input.len() && !output_full => return Ok(()),
                _ if !progressed => return Err(ProtocolError::InvalidCompressedData),
                _ => {}
            }
        }
    }

    /// Ends a message: feeds the stripped sync-flush tail.
    pub fn finish(&mut self, out: &mut Vec<u8>, limit: usize) -> Result<(), ProtocolError> {
        self.inflate(&super::TAIL, out, limit)
    }
}
