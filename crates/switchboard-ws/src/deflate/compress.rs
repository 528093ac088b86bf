//! Compressing outgoing messages.

use std::cell::RefCell;

use bytes::Bytes;
use flate2::{Compress, Compression, FlushCompress};

use super::DeflateParams;

/// A raw-deflate compressor with its own context (for context takeover).
pub struct Compressor {
    inner: Compress,
}

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compressor")
            .field("total_in", &self.inner.total_in())
            .finish()
    }
}

impl Compressor {
    /// A compressor with `level` and `window_bits` (9–15).
    pub fn new(level: u32, window_bits: u8) -> Self {
        Self {
            inner: Compress::new_with_window_bits(Compression::new(level), false, window_bits),
        }
    }

    /// Compresses one message, ending with a sync flush whose 4-byte tail is
    /// stripped (RFC 7692 §7.2.1). Keeps the context unless `reset`.
    pub fn compress(&mut self, input: &[u8], reset: bool) -> Bytes {
        let mut out = Vec::with_capacity(input.len() / 2 + 64);
        let mut consumed = 0;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(1024));
            }
            let before = self.inner.total_in();
            // Compressing into a Vec with room cannot fail.
            let _ = self
                .inner
                .compress_vec(&input[consumed..], &mut out, FlushCompress::Sync);
            consumed += (self.inner.total_in() - before) as usize;
            if consumed >= input.len() && out.len() < out.capacity() {
                break;
            }
        }
        if out.ends_with(&super::TAIL) {
            out.truncate(out.len() - 4);
        }
        if reset {
            self.inner.reset();
        }
        Bytes::from(out)
    }
}

thread_local! {
    /// One compressor per (level, window) per thread, shared by every
    /// connection without context takeover: no connection holds one while idle.
    static SHARED: RefCell<Vec<((u32, u8), Compressor)>> = const { RefCell::new(Vec::new()) };
}

/// Compresses a message for connections that negotiated `params` without
/// server context takeover, with this thread's shared compressor. `None` if
/// these parameters do not compress.
pub fn compress_message(input: &[u8], params: &DeflateParams) -> Option<Bytes> {
    let bits = params.server_window_bits?;
    let key = (params.level, bits);
    Some(SHARED.with(|pool| {
        let mut pool = pool.borrow_mut();
        let index = match pool.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                pool.push((key, Compressor::new(params.level, bits)));
                pool.len() - 1
            }
        };
        pool[index].1.compress(input, true)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deflate::Inflater;

    #[test]
    fn compress_then_inflate_round_trips() {
        let text = "hello hello hello switchboard ".repeat(200);
        let mut c = Compressor::new(1, 15);
        let packed = c.compress(text.as_bytes(), true);
        assert!(packed.len() < text.len() / 4);
        let mut inf = Inflater::new();
        let mut out = Vec::new();
        inf.inflate(&packed, &mut out, 1 << 20).unwrap();
        inf.finish(&mut out, 1 << 20).unwrap();
        assert_eq!(out, text.as_bytes());
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        let zeros = vec![0u8; 10 << 20];
        let packed = Compressor::new(9, 15).compress(&zeros, true);
        assert!(packed.len() < 20_000, "{}", packed.len());
        let mut out = Vec::new();
        let err = Inflater::new()
            .inflate(&packed, &mut out, 1 << 20)
            .unwrap_err();
        assert!(matches!(err, crate::ProtocolError::MessageTooLarge { .. }));
        assert!(
            out.capacity() <= (1 << 20) + 64 * 1024,
            "{}",
            out.capacity()
        );
    }
}
