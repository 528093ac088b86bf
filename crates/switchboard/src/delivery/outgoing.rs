//! A message encoded once for any number of recipients.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use serde::Serialize;
use switchboard_ws::{OpCode, OutFrame, Utf8Bytes};

use super::compression::{Compression, ShareKey};

/// A message encoded once for any number of recipients.
///
/// The plain frame is built once; the compressed frame (for recipients
/// that negotiated permessage-deflate without server context takeover) is
/// built the first time such a recipient needs it, and shared from then on.
#[derive(Debug, Clone)]
pub struct Outgoing {
    frame: OutFrame,
    compressed: Arc<OnceLock<Compressed>>,
}

/// A compressed frame and the key it was compressed with.
#[derive(Debug)]
struct Compressed {
    key: ShareKey,
    frame: Option<OutFrame>,
}

impl PartialEq for Outgoing {
    fn eq(&self, other: &Self) -> bool {
        self.frame == other.frame
    }
}

impl Eq for Outgoing {}

impl Outgoing {
    fn new(frame: OutFrame) -> Self {
        Self {
            frame,
            compressed: Arc::new(OnceLock::new()),
        }
    }

    /// A text message.
    pub fn text(text: impl Into<Utf8Bytes>) -> Self {
        Self::new(OutFrame::new(OpCode::Text, text.into().into_bytes()))
    }

    /// A binary message.
    pub fn binary(data: impl Into<Bytes>) -> Self {
        Self::new(OutFrame::new(OpCode::Binary, data.into()))
    }

    /// `value` serialised as JSON text.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        Ok(Self::text(serde_json::to_string(value)?))
    }

    /// The encoded (uncompressed) frame.
    pub fn frame(&self) -> &OutFrame {
        &self.frame
    }

    /// The frame for a recipient that compresses with `compression`: the
    /// shared compressed frame when its key allows sharing, else the plain
    /// frame (which the recipient's writer compresses if it keeps a
    /// context of its own).
    pub(crate) fn for_recipient(&self, compression: &Compression) -> OutFrame {
        let (Some(opcode), Some(key)) = (
            self.frame.opcode(),
            compression.share_key(self.frame.payload.len()),
        ) else {
            return self.frame.clone();
        };
        let cached = self.compressed.get_or_init(|| Compressed {
            key,
            frame: compression.compress_shared(opcode, &self.frame.payload),
        });
        match &cached.frame {
            Some(frame) if cached.key == key => frame.clone(),
            // Compressed for other settings first: this recipient's own.
            _ => compression.encode(opcode, self.frame.payload.clone()),
        }
    }
}
