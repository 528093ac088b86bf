//! The one compression policy for what a connection sends: what the
//! permessage-deflate handshake negotiated decides whether a message is
//! compressed alone (and shared by every recipient with the same settings),
//! compressed by the connection's writer in queue order (context takeover),
//! or sent as it is.

use bytes::Bytes;
use switchboard_ws::deflate::{Compressor, DeflateParams, compress_message};
use switchboard_ws::{OpCode, OutFrame};

/// How one connection's data frames are compressed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Compression {
    /// Not negotiated, or negotiated with a window zlib cannot produce
    /// (8 bits): frames go out as they are, which RFC 7692 allows.
    Off,
    /// Every message is compressed alone (`server_no_context_takeover`):
    /// anyone may compress for this connection, and a broadcast's
    /// compressed frame is shared by every recipient with the same key.
    PerMessage(DeflateParams),
    /// The connection keeps its compression context: only its writer may
    /// compress, in queue order, so frames may not bypass the writer.
    Context(DeflateParams),
}

/// What a compressed frame depends on besides the payload: recipients with
/// the same key can share it.
pub(crate) type ShareKey = (u32, u8);

impl Compression {
    /// The policy for what the handshake negotiated.
    pub(crate) fn negotiated(params: Option<DeflateParams>) -> Self {
        match params {
            Some(p) if p.server_window_bits.is_none() => Self::Off,
            Some(p) if p.server_no_context_takeover => Self::PerMessage(p),
            Some(p) => Self::Context(p),
            None => Self::Off,
        }
    }

    /// Frames a data message for this connection: compressed now when
    /// messages are compressed alone, plain otherwise (the writer compresses
    /// it if it keeps a context).
    pub(crate) fn encode(&self, opcode: OpCode, payload: Bytes) -> OutFrame {
        match self {
            Self::PerMessage(params) if params.compresses(payload.len()) => {
                match compress_message(&payload, params) {
                    Some(packed) => OutFrame::with_rsv1(opcode, packed, true),
                    None => OutFrame::new(opcode, payload),
                }
            }
            _ => OutFrame::new(opcode, payload),
        }
    }

    /// The key under which a compressed frame of `len` payload bytes may be
    /// shared with other recipients; `None` when this connection takes the
    /// plain frame.
    pub(crate) fn share_key(&self, len: usize) -> Option<ShareKey> {
        match self {
            Self::PerMessage(params) if params.compresses(len) => {
                params.server_window_bits.map(|bits| (params.level, bits))
            }
            _ => None,
        }
    }

    /// Compresses a shared message once, for every recipient with this
    /// connection's key.
    pub(crate) fn compress_shared(&self, opcode: OpCode, payload: &[u8]) -> Option<OutFrame> {
        match self {
            Self::PerMessage(params) => compress_message(payload, params)
                .map(|packed| OutFrame::with_rsv1(opcode, packed, true)),
            _ => None,
        }
    }

    /// Whether only the writer may put frames on the wire (context
    /// takeover: compression must follow queue order).
    pub(crate) fn needs_writer(&self) -> bool {
        matches!(self, Self::Context(_))
    }

    /// The writer's own compressor, with context takeover.
    pub(crate) fn context(&self) -> Option<ContextCompressor> {
        match self {
            Self::Context(params) => params.server_window_bits.map(|bits| ContextCompressor {
                params: *params,
                compressor: Compressor::new(params.level, bits),
            }),
            _ => None,
        }
    }
}

/// A connection's compressor when it keeps its context between messages
/// (about 300 KB at 15 bits): owned by its writer.
pub(crate) struct ContextCompressor {
    params: DeflateParams,
    compressor: Compressor,
}

impl std::fmt::Debug for ContextCompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContextCompressor")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl ContextCompressor {
    /// Compresses the data frames of a batch in place, in order; control
    /// frames and frames already compressed are left alone.
    pub(crate) fn compress<'a>(&mut self, frames: impl IntoIterator<Item = &'a mut OutFrame>) {
        for frame in frames {
            let Some(opcode @ (OpCode::Text | OpCode::Binary)) = frame.opcode() else {
                continue;
            };
            // A frame's remainder (no header left) or a compressed frame is
            // not touched.
            let plain = frame
                .header
                .as_slice()
                .first()
                .is_some_and(|b| b & 0x40 == 0);
            if !plain || !self.params.compresses(frame.payload.len()) {
                continue;
            }
            let packed = self.compressor.compress(&frame.payload, false);
            *frame = OutFrame::with_rsv1(opcode, packed, true);
        }
    }
}
