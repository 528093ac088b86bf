//! Turns bytes into messages: frame parsing, unmasking, reassembly of
//! fragments, incremental UTF-8 validation and every size limit. No IO.

use bytes::{Buf, BytesMut};

use crate::close::CloseFrame;
use crate::deflate::Inflater;
use crate::error::ProtocolError;
use crate::frame::FrameHeader;
use crate::mask::apply_mask;
use crate::message::{Message, Utf8Bytes};
use crate::opcode::OpCode;

/// The most the decoder reserves at once for a frame still arriving.
pub const RESERVE_STEP: usize = 64 * 1024;

/// Which side of the connection this decoder reads for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A server reads client frames, which must be masked.
    Server,
    /// A client reads server frames, which must not be masked.
    Client,
}

/// Limits on what the peer may send. All are checked on the frame header,
/// before the payload is buffered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The largest payload one frame may announce. Default 1 MiB: browsers
    /// send every message as one frame, so this is also the largest message a
    /// browser can send. Exceeding it closes with 1009.
    pub max_frame_size: usize,
    /// The largest reassembled message. Default 1 MiB. Exceeding it closes with 1009.
    pub max_message_size: usize,
    /// The most frames one message may be split into. Default 128; a message
    /// of many tiny or empty fragments pins memory for nothing. Exceeding it
    /// closes with 1008.
    pub max_fragments: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_size: 1 << 20,
            max_message_size: 1 << 20,
            max_fragments: 128,
        }
    }
}

impl Limits {
    /// Sets the frame and message limits together.
    pub fn with_max_message_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes;
        self.max_message_size = bytes;
        self
    }

    /// Sets the frame limit.
    pub fn with_max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes;
        self
    }

    /// Sets the fragment limit.
    pub fn with_max_fragments(mut self, count: usize) -> Self {
        self.max_fragments = count;
        self
    }
}

#[derive(Debug)]
struct Partial {
    text: bool,
    /// RSV1 was set on the first frame: the fragments are deflated.
    compressed: bool,
    /// The message so far (uncompressed messages).
    buf: BytesMut,
    /// The message so far, inflated (compressed messages).
    inflated: Vec<u8>,
    fragments: usize,
    /// Bytes of the message already known to be valid UTF-8 (text only).
    utf8_checked: usize,
}

/// permessage-deflate state for incoming messages.
#[derive(Debug)]
struct Inflate {
    inflater: Option<Inflater>,
    /// The client resets its context per message, so ours is dropped after
    /// each one: an idle connection holds no decompressor.
    no_context_takeover: bool,
}

/// The message decoder: feed it the bytes read from the socket, take messages out.
#[derive(Debug)]
pub struct Decoder {
    role: Role,
    limits: Limits,
    /// A fragmented message being reassembled (boxed: most of the time
    /// there is none, and the decoder is part of every connection).
    partial: Option<Box<Partial>>,
    /// permessage-deflate, when agreed (boxed, like `partial`).
    deflate: Option<Box<Inflate>>,
}

impl Decoder {
    /// A decoder for the given role and limits.
    pub fn new(role: Role, limits: Limits) -> Self {
        Self {
            role,
            limits,
            partial: None,
            deflate: None,
        }
    }

    /// Accepts compressed messages (RSV1), as negotiated by permessage-deflate.
    /// With `no_context_takeover` the decompressor is dropped after every
    /// message. The message limit applies to the *inflated* size, checked
    /// while inflating.
    pub fn with_deflate(mut self, no_context_takeover: bool) -> Self {
        self.deflate = Some(Box::new(Inflate {
            inflater: None,
            no_context_takeover,
        }));
        self
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Takes the next complete message out of `src`.
    ///
    /// Returns `Ok(None)` when `src` holds no complete message yet; the
    /// decoder then has reserved room in `src` for (part of) the frame it is
    /// waiting for: at most [`RESERVE_STEP`] bytes at a time, so memory grows
    /// with the bytes that actually arrive, never with what a header announces. Fragments of a message in
    /// progress are consumed from `src` as they complete. On an error the
    /// connection must be closed with [`ProtocolError::close_code`].
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, ProtocolError> {
        loop {
            let Some((header, header_len)) = FrameHeader::parse(src)? else {
                return Ok(None);
            };
            self.check(&header)?;
            let payload_len = header.payload_len as usize;
            let total = header_len + payload_len;
            if src.len() < total {
                // Room for what is missing, in steps: a header alone never
                // makes us allocate the whole frame it announces.
                src.reserve((total - src.len()).min(RESERVE_STEP));
                return Ok(None);
            }
            src.advance(header_len);
            let mut payload = src.split_to(payload_len);
            if let Some(mask) = header.mask {
                apply_mask(&mut payload, mask);
            }
            if let Some(message) = self.accept(header, payload)? {
                return Ok(Some(message));
            }
        }
    }

    /// Everything that can be checked before the payload is read.
    fn check(&self, header: &FrameHeader) -> Result<(), ProtocolError> {
        match (self.role, header.mask.is_some()) {
            (Role::Server, false) => return Err(ProtocolError::UnmaskedFrame),
            (Role::Client, true) => return Err(ProtocolError::MaskedFrame),
            _ => {}
        }
        if header.rsv1
            && (self.deflate.is_none() || !matches!(header.opcode, OpCode::Text | OpCode::Binary))
        {
            return Err(ProtocolError::ReservedBits);
        }
        if header.opcode.is_control() {
            return Ok(());
        }
        if header.payload_len > self.limits.max_frame_size as u64 {
            return Err(ProtocolError::FrameTooLarge {
                len: header.payload_len,
                max: self.limits.max_frame_size,
            });
        }
        let buffered = match (&self.partial, header.opcode) {
            (None, OpCode::Continuation) => return Err(ProtocolError::UnexpectedContinuation),
            (Some(_), OpCode::Text | OpCode::Binary) => {
                return Err(ProtocolError::ExpectedContinuation);
            }
            (Some(partial), _) => {
                if partial.fragments >= self.limits.max_fragments {
                    return Err(ProtocolError::TooManyFragments {
                        max: self.limits.max_fragments,
                    });
                }
                if partial.compressed {
                    // Compressed sizes say nothing of inflated ones; the
                    // message limit is enforced while inflating.
                    return Ok(());
                }
                partial.buf.len() as u64
            }
            (None, _) if header.rsv1 => return Ok(()),
            (None, _) => 0,
        };
        let len = buffered + header.payload_len;
        if len > self.limits.max_message_size as u64 {
            return Err(ProtocolError::MessageTooLarge {
                len,
                max: self.limits.max_message_size,
            });
        }
        Ok(())
    }

    /// Handles one complete, unmasked frame; returns a message when one is complete.
    fn accept(
        &mut self,
        header: FrameHeader,
        payload: BytesMut,
    ) -> Result<Option<Message>, ProtocolError> {
        let message = match header.opcode {
            OpCode::Ping => Message::Ping(payload.freeze()),
            OpCode::Pong => Message::Pong(payload.freeze()),
            OpCode::Close => Message::Close(CloseFrame::parse(&payload)?),
            OpCode::Text | OpCode::Binary if header.rsv1 => {
                let mut partial = Partial {
                    text: header.opcode == OpCode::Text,
                    compressed: true,
                    buf: BytesMut::new(),
                    inflated: Vec::new(),
                    fragments: 1,
                    utf8_checked: 0,
                };
                self.inflate_into(&mut partial, &payload, header.fin)?;
                if !header.fin {
                    self.partial = Some(Box::new(partial));
                    return Ok(None);
                }
                partial.into_message()
            }
            OpCode::Text | OpCode::Binary if header.fin => {
                let bytes = payload.freeze();
                if header.opcode == OpCode::Text {
                    simdutf8::basic::from_utf8(&bytes).map_err(|_| ProtocolError::InvalidUtf8)?;
                    Message::Text(Utf8Bytes::from_validated(bytes))
                } else {
                    Message::Binary(bytes)
                }
            }
            OpCode::Text | OpCode::Binary => {
                let mut partial = Partial {
                    text: header.opcode == OpCode::Text,
                    compressed: false,
                    buf: payload,
                    inflated: Vec::new(),
                    fragments: 1,
                    utf8_checked: 0,
                };
                partial.check_utf8(false)?;
                self.partial = Some(Box::new(partial));
                return Ok(None);
            }
            OpCode::Continuation => {
                let Some(mut partial) = self.partial.take() else {
                    return Err(ProtocolError::UnexpectedContinuation);
                };
                partial.fragments += 1;
                if partial.compressed {
                    self.inflate_into(&mut partial, &payload, header.fin)?;
                } else {
                    partial.buf.extend_from_slice(&payload);
                    partial.check_utf8(header.fin)?;
                }
                if !header.fin {
                    self.partial = Some(partial);
                    return Ok(None);
                }
                (*partial).into_message()
            }
        };
        Ok(Some(message))
    }
}

impl Decoder {
    /// Inflates one frame of a compressed message into `partial`, ending the
    /// message (and, without context takeover, dropping the decompressor) at FIN.
    fn inflate_into(
        &mut self,
        partial: &mut Partial,
        payload: &[u8],
        fin: bool,
    ) -> Result<(), ProtocolError> {
        let limit = self.limits.max_message_size;
        let Some(state) = self.deflate.as_mut() else {
            return Err(ProtocolError::ReservedBits);
        };
        let inflater = state.inflater.get_or_insert_with(Inflater::new);
        let result = inflater
            .inflate(payload, &mut partial.inflated, limit)
            .and_then(|()| {
                if fin {
                    inflater.finish(&mut partial.inflated, limit)
                } else {
                    Ok(())
                }
            });
        if result.is_err() || (fin && state.no_context_takeover) {
            state.inflater = None;
        }
        result?;
        partial.check_utf8(fin)
    }
}

impl Partial {
    fn data(&self) -> &[u8] {
        if self.compressed {
            &self.inflated
        } else {
            &self.buf
        }
    }

    fn into_message(self) -> Message {
        let bytes = if self.compressed {
            bytes::Bytes::from(self.inflated)
        } else {
            self.buf.freeze()
        };
        if self.text {
            Message::Text(Utf8Bytes::from_validated(bytes))
        } else {
            Message::Binary(bytes)
        }
    }

    /// Validates the bytes added since the last check. A code point cut at the
    /// end of a fragment waits for the next one; anything else invalid fails
    /// at once, on the fragment where it appears.
    fn check_utf8(&mut self, fin: bool) -> Result<(), ProtocolError> {
        if !self.text {
            return Ok(());
        }
        let data = self.data();
        let len = data.len();
        match simdutf8::compat::from_utf8(&data[self.utf8_checked..]) {
            Ok(_) => {
                self.utf8_checked = len;
                Ok(())
            }
            Err(e) if e.error_len().is_none() && !fin => {
                self.utf8_checked += e.valid_up_to();
                Ok(())
            }
            Err(_) => Err(ProtocolError::InvalidUtf8),
        }
    }
}
