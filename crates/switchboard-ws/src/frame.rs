//! Frame headers: parsing (no IO, limits checked before any payload is
//! buffered) and encoding into a stack buffer.

use bytes::{Bytes, BytesMut};

use crate::error::ProtocolError;
use crate::opcode::OpCode;

/// The longest possible frame header: 2 bytes, 8 bytes of length, 4 of mask.
pub const MAX_HEADER_LEN: usize = 14;

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN: this is the last frame of its message.
    pub fin: bool,
    /// RSV1 (used by permessage-deflate); RSV2 and RSV3 are always rejected.
    pub rsv1: bool,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, present on every client-to-server frame.
    pub mask: Option<[u8; 4]>,
    /// The payload length the header announces.
    pub payload_len: u64,
}

impl FrameHeader {
    /// Parses a header from the start of `buf`.
    ///
    /// Returns `Ok(None)` when more bytes are needed, or the header and its
    /// length in bytes. Checks everything the header alone can tell: reserved
    /// bits and opcodes, control frame rules and the length encoding. It never
    /// looks at the payload.
    pub fn parse(buf: &[u8]) -> Result<Option<(Self, usize)>, ProtocolError> {
        let [b0, b1, ..] = *buf else {
            return Ok(None);
        };
        if b0 & 0x30 != 0 {
            return Err(ProtocolError::ReservedBits);
        }
        let opcode = OpCode::from_u8(b0 & 0x0F).ok_or(ProtocolError::ReservedOpcode(b0 & 0x0F))?;
        let fin = b0 & 0x80 != 0;
        let rsv1 = b0 & 0x40 != 0;
        let masked = b1 & 0x80 != 0;
        let len7 = b1 & 0x7F;
        if opcode.is_control() {
            if !fin {
                return Err(ProtocolError::FragmentedControlFrame);
            }
            if len7 > 125 {
                return Err(ProtocolError::ControlFrameTooLarge);
            }
        }
        let (payload_len, mut offset) = match len7 {
            126 => {
                let Some(bytes) = buf.get(2..4) else {
                    return Ok(None);
                };
                let len = u16::from_be_bytes([bytes[0], bytes[1]]);
                if len < 126 {
                    return Err(ProtocolError::InvalidLength);
                }
                (u64::from(len), 4)
            }
            127 => {
                let Some(bytes) = buf.get(2..10) else {
                    return Ok(None);
                };
                let mut raw = [0u8; 8];
                raw.copy_from_slice(bytes);
                let len = u64::from_be_bytes(raw);
                if len >> 63 != 0 || len <= u64::from(u16::MAX) {
                    return Err(ProtocolError::InvalidLength);
                }
                (len, 10)
            }
            n => (u64::from(n), 2),
        };
        let mask = if masked {
            let Some(bytes) = buf.get(offset..offset + 4) else {
                return Ok(None);
            };
            offset += 4;
            Some([bytes[0], bytes[1], bytes[2], bytes[3]])
        } else {
            None
        };
        Ok(Some((
            Self {
                fin,
                rsv1,
                opcode,
                mask,
                payload_len,
            },
            offset,
        )))
    }

    /// Encodes this header into a stack buffer.
    pub fn encode(&self) -> HeaderBuf {
        let mut out = HeaderBuf {
            bytes: [0; MAX_HEADER_LEN],
            len: 0,
        };
        out.bytes[0] = (u8::from(self.fin) << 7) | (u8::from(self.rsv1) << 6) | self.opcode.as_u8();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut at = if self.payload_len < 126 {
            out.bytes[1] = mask_bit | self.payload_len as u8;
            2
        } else if self.payload_len <= u64::from(u16::MAX) {
            out.bytes[1] = mask_bit | 126;
            out.bytes[2..4].copy_from_slice(&(self.payload_len as u16).to_be_bytes());
            4
        } else {
            out.bytes[1] = mask_bit | 127;
            out.bytes[2..10].copy_from_slice(&self.payload_len.to_be_bytes());
            10
        };
        if let Some(mask) = self.mask {
            out.bytes[at..at + 4].copy_from_slice(&mask);
            at += 4;
        }
        out.len = at as u8;
        out
    }
}

/// An encoded frame header, kept on the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderBuf {
    bytes: [u8; MAX_HEADER_LEN],
    len: u8,
}

impl HeaderBuf {
    /// The header bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl AsRef<[u8]> for HeaderBuf {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

/// A server-to-client frame as the writer sends it: the header on the stack
/// and the payload shared, so that one payload can go to many connections
/// without a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutFrame {
    /// The encoded header.
    pub header: HeaderBuf,
    /// The payload, unmasked.
    pub payload: Bytes,
}

impl OutFrame {
    /// A final, unmasked frame (what a server sends).
    pub fn new(opcode: OpCode, payload: Bytes) -> Self {
        Self::with_rsv1(opcode, payload, false)
    }

    /// A final, unmasked frame with RSV1 as given (set for a compressed message).
    pub fn with_rsv1(opcode: OpCode, payload: Bytes, rsv1: bool) -> Self {
        let header = FrameHeader {
            fin: true,
            rsv1,
            opcode,
            mask: None,
            payload_len: payload.len() as u64,
        }
        .encode();
        Self { header, payload }
    }

    /// Bytes sent as they are, with no header of their own: the rest of a
    /// frame whose start was already written.
    pub fn raw(bytes: Bytes) -> Self {
        Self {
            header: HeaderBuf {
                bytes: [0; MAX_HEADER_LEN],
                len: 0,
            },
            payload: bytes,
        }
    }

    /// The opcode, or `None` for a [`OutFrame::raw`] remainder.
    pub fn opcode(&self) -> Option<OpCode> {
        self.header
            .as_slice()
            .first()
            .and_then(|b| OpCode::from_u8(b & 0x0F))
    }

    /// What is left to send after the first `written` bytes.
    pub fn remainder(&self, written: usize) -> Self {
        let header = self.header.as_slice();
        if written >= header.len() {
            return Self::raw(self.payload.slice(written - header.len()..));
        }
        let mut rest = BytesMut::with_capacity(self.len() - written);
        rest.extend_from_slice(&header[written..]);
        rest.extend_from_slice(&self.payload);
        Self::raw(rest.freeze())
    }

    /// Bytes on the wire.
    pub fn len(&self) -> usize {
        self.header.as_slice().len() + self.payload.len()
    }

    /// True only for a [`OutFrame::raw`] remainder with nothing left.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Header and payload in one contiguous buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.len());
        out.extend_from_slice(self.header.as_slice());
        out.extend_from_slice(&self.payload);
        out.freeze()
    }
}

/// Encodes a masked, final frame, as a client sends it.
pub fn encode_client_frame(opcode: OpCode, payload: &[u8], mask: [u8; 4]) -> BytesMut {
    let header = FrameHeader {
        fin: true,
        rsv1: false,
        opcode,
        mask: Some(mask),
        payload_len: payload.len() as u64,
    }
    .encode();
    let mut out = BytesMut::with_capacity(header.as_slice().len() + payload.len());
    out.extend_from_slice(header.as_slice());
    let start = out.len();
    out.extend_from_slice(payload);
    crate::mask::apply_mask(&mut out[start..], mask);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(len: u64, mask: Option<[u8; 4]>) -> FrameHeader {
        FrameHeader {
            fin: true,
            rsv1: false,
            opcode: OpCode::Binary,
            mask,
            payload_len: len,
        }
    }

    #[test]
    fn encode_then_parse_is_identity_for_every_length_class() {
        for len in [0, 1, 125, 126, 65535, 65536, 1 << 40] {
            for mask in [None, Some([1, 2, 3, 4])] {
                let h = header(len, mask);
                let enc = h.encode();
                let (parsed, used) = FrameHeader::parse(enc.as_slice()).unwrap().unwrap();
                assert_eq!(parsed, h);
                assert_eq!(used, enc.as_slice().len());
            }
        }
    }

    #[test]
    fn every_strict_prefix_asks_for_more() {
        let enc = header(70000, Some([9, 9, 9, 9])).encode();
        for cut in 0..enc.as_slice().len() {
            assert_eq!(
                FrameHeader::parse(&enc.as_slice()[..cut]),
                Ok(None),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn non_minimal_lengths_are_rejected() {
        assert_eq!(
            FrameHeader::parse(&[0x82, 126, 0, 5]),
            Err(ProtocolError::InvalidLength)
        );
        let mut long = vec![0x82, 127];
        long.extend_from_slice(&100u64.to_be_bytes());
        assert_eq!(FrameHeader::parse(&long), Err(ProtocolError::InvalidLength));
        let mut huge = vec![0x82, 127];
        huge.extend_from_slice(&(1u64 << 63).to_be_bytes());
        assert_eq!(FrameHeader::parse(&huge), Err(ProtocolError::InvalidLength));
    }

    #[test]
    fn reserved_opcodes_and_bits_are_rejected() {
        for op in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            assert_eq!(
                FrameHeader::parse(&[0x80 | op, 0]),
                Err(ProtocolError::ReservedOpcode(op))
            );
        }
        assert_eq!(
            FrameHeader::parse(&[0xA2, 0]),
            Err(ProtocolError::ReservedBits)
        );
        assert_eq!(
            FrameHeader::parse(&[0x92, 0]),
            Err(ProtocolError::ReservedBits)
        );
    }

    #[test]
    fn control_frame_rules_are_checked_on_the_header() {
        assert_eq!(
            FrameHeader::parse(&[0x89, 126]),
            Err(ProtocolError::ControlFrameTooLarge)
        );
        assert_eq!(
            FrameHeader::parse(&[0x09, 0]),
            Err(ProtocolError::FragmentedControlFrame)
        );
    }
}
