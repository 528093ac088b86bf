//! Helpers shared by the integration tests: frame builders (masked client
//! frames, unmasked server frames, raw first bytes for what `FrameHeader`
//! cannot express) and decoder drivers that feed bytes whole, frame by frame
//! or in chunks.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use bytes::BytesMut;
use switchboard_ws::mask::apply_mask;
use switchboard_ws::{Decoder, FrameHeader, Message, OpCode, ProtocolError};

/// A masking key with no zero byte, so that masking always changes the payload.
pub(crate) const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A frame with the given FIN bit, opcode and optional mask. The length is
/// encoded minimally; the payload is masked when a mask is given.
pub(crate) fn frame(fin: bool, opcode: OpCode, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let header = FrameHeader {
        fin,
        rsv1: false,
        opcode,
        mask,
        payload_len: payload.len() as u64,
    }
    .encode();
    let mut out = header.as_slice().to_vec();
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(mask) = mask {
        apply_mask(&mut out[start..], mask);
    }
    out
}

/// A masked frame, as a client sends it.
pub(crate) fn client_frame(fin: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    frame(fin, opcode, payload, Some(MASK))
}

/// An unmasked frame, as a server sends it.
pub(crate) fn server_frame(fin: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    frame(fin, opcode, payload, None)
}

/// A frame whose first byte (FIN, RSV1-3, opcode) is given raw, for reserved
/// bits and opcodes that `FrameHeader` cannot express. Length encoded minimally.
pub(crate) fn raw_frame(first_byte: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let mut out = vec![first_byte];
    let len = payload.len();
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if len <= usize::from(u16::MAX) {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    if let Some(mask) = mask {
        out.extend_from_slice(&mask);
    }
    let payload_start = out.len();
    out.extend_from_slice(payload);
    if let Some(mask) = mask {
        apply_mask(&mut out[payload_start..], mask);
    }
    out
}

/// A masked header (2 + 8 + 4 bytes) announcing `len` bytes with the 64-bit
/// length form, written raw so that any `len` (even with the top bit set) can
/// be sent. `first_byte` is FIN/RSV/opcode.
pub(crate) fn raw_header_64(first_byte: u8, len: u64, mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![first_byte, if mask.is_some() { 0x80 | 127 } else { 127 }];
    out.extend_from_slice(&len.to_be_bytes());
    if let Some(mask) = mask {
        out.extend_from_slice(&mask);
    }
    out
}

/// Decodes every complete message in `src`, appending them to `out`; stops at
/// `Ok(None)` (more bytes needed) or at the first error.
pub(crate) fn drain(
    decoder: &mut Decoder,
    src: &mut BytesMut,
    out: &mut Vec<Message>,
) -> Result<(), ProtocolError> {
    while let Some(message) = decoder.decode(src)? {
        out.push(message);
    }
    Ok(())
}

/// What a decoder made of a byte stream: the messages before the first
/// error, and the error if there was one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub(crate) messages: Vec<Message>,
    pub(crate) error: Option<ProtocolError>,
}

/// Feeds `bytes` in chunks of the given sizes (cycled; a size of 0 is taken
/// as 1), draining after each chunk, until the input ends or an error occurs.
pub(crate) fn feed_chunked(decoder: &mut Decoder, bytes: &[u8], sizes: &[usize]) -> Outcome {
    let mut src = BytesMut::new();
    let mut messages = Vec::new();
    let mut rest = bytes;
    let mut i = 0;
    while !rest.is_empty() {
        let size = sizes
            .get(i % sizes.len().max(1))
            .copied()
            .unwrap_or(rest.len());
        let (chunk, tail) = rest.split_at(size.clamp(1, rest.len()));
        rest = tail;
        i += 1;
        src.extend_from_slice(chunk);
        if let Err(e) = drain(decoder, &mut src, &mut messages) {
            return Outcome {
                messages,
                error: Some(e),
            };
        }
    }
    Outcome {
        messages,
        error: None,
    }
}

/// Feeds `bytes` in one piece.
pub(crate) fn feed_whole(decoder: &mut Decoder, bytes: &[u8]) -> Outcome {
    feed_chunked(decoder, bytes, &[bytes.len()])
}

/// Feeds `bytes` one byte at a time.
pub(crate) fn feed_bytewise(decoder: &mut Decoder, bytes: &[u8]) -> Outcome {
    feed_chunked(decoder, bytes, &[1])
}

/// Feeds the frames one after the other, draining after each, and returns
/// the index of the frame after which the first error appeared, with the
/// messages decoded before it.
pub(crate) fn feed_frames(decoder: &mut Decoder, frames: &[Vec<u8>]) -> (Outcome, Option<usize>) {
    let mut src = BytesMut::new();
    let mut messages = Vec::new();
    for (index, frame) in frames.iter().enumerate() {
        src.extend_from_slice(frame);
        if let Err(e) = drain(decoder, &mut src, &mut messages) {
            return (
                Outcome {
                    messages,
                    error: Some(e),
                },
                Some(index),
            );
        }
    }
    (
        Outcome {
            messages,
            error: None,
        },
        None,
    )
}

/// Asserts the exact error and its close code.
#[track_caller]
pub(crate) fn assert_error(actual: Option<&ProtocolError>, expected: &ProtocolError, code: u16) {
    let Some(actual) = actual else {
        panic!("expected {expected:?} (close {code}), got no error");
    };
    assert_eq!(actual, expected);
    assert_eq!(
        actual.close_code().as_u16(),
        code,
        "close code of {actual:?}"
    );
}
