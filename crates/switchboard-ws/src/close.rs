//! Close codes and close frames (RFC 6455 §7.4).

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::ProtocolError;

/// A close status code.
///
/// Every code registered by RFC 6455 and IANA has a variant; the ranges set
/// aside for libraries (3000–3999) and applications (4000–4999) carry their
/// number. `From<u16>` never fails: numbers that mean nothing land in
/// [`CloseCode::Reserved`], and [`CloseCode::is_sendable`] tells whether a code
/// may appear in a close frame on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// 1000: the purpose of the connection has been fulfilled.
    Normal,
    /// 1001: the endpoint is going away (server shutdown, page navigation).
    Away,
    /// 1002: the peer broke the protocol.
    Protocol,
    /// 1003: the endpoint received a kind of data it cannot accept.
    Unsupported,
    /// 1005: no status code was present. Never sent on the wire.
    NoStatus,
    /// 1006: the connection dropped without a close frame. Never sent on the wire.
    Abnormal,
    /// 1007: a message's data was not consistent with its type (invalid UTF-8 text).
    InvalidPayload,
    /// 1008: the message violates a policy (generic).
    Policy,
    /// 1009: a message or frame is too big to process.
    TooBig,
    /// 1010: the client expected an extension the server did not negotiate.
    MandatoryExtension,
    /// 1011: the server hit an unexpected condition.
    InternalError,
    /// 1012: the server is restarting; reconnect later.
    Restart,
    /// 1013: try again later (overload).
    TryAgainLater,
    /// 1014: a gateway got a bad response from upstream.
    BadGateway,
    /// 1015: the TLS handshake failed. Never sent on the wire.
    Tls,
    /// 3000–3999: registered for libraries and frameworks.
    Library(u16),
    /// 4000–4999: private use by applications.
    Application(u16),
    /// Any other number: reserved or invalid, never sent on the wire.
    Reserved(u16),
}

impl CloseCode {
    /// Whether this code may be sent in a close frame (RFC 6455 §7.4.1).
    ///
    /// A close frame that arrives with a code for which this is false is a
    /// protocol error (1002).
    pub fn is_sendable(self) -> bool {
        !matches!(
            self,
            Self::NoStatus | Self::Abnormal | Self::Tls | Self::Reserved(_)
        )
    }

    /// The numeric code.
    pub fn as_u16(self) -> u16 {
        u16::from(self)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        match code {
            1000 => Self::Normal,
            1001 => Self::Away,
            1002 => Self::Protocol,
            1003 => Self::Unsupported,
            1005 => Self::NoStatus,
            1006 => Self::Abnormal,
            1007 => Self::InvalidPayload,
            1008 => Self::Policy,
            1009 => Self::TooBig,
            1010 => Self::MandatoryExtension,
            1011 => Self::InternalError,
            1012 => Self::Restart,
            1013 => Self::TryAgainLater,
            1014 => Self::BadGateway,
            1015 => Self::Tls,
            3000..=3999 => Self::Library(code),
            4000..=4999 => Self::Application(code),
            other => Self::Reserved(other),
        }
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> u16 {
        match code {
            CloseCode::Normal => 1000,
            CloseCode::Away => 1001,
            CloseCode::Protocol => 1002,
            CloseCode::Unsupported => 1003,
            CloseCode::NoStatus => 1005,
            CloseCode::Abnormal => 1006,
            CloseCode::InvalidPayload => 1007,
            CloseCode::Policy => 1008,
            CloseCode::TooBig => 1009,
            CloseCode::MandatoryExtension => 1010,
            CloseCode::InternalError => 1011,
            CloseCode::Restart => 1012,
            CloseCode::TryAgainLater => 1013,
            CloseCode::BadGateway => 1014,
            CloseCode::Tls => 1015,
            CloseCode::Library(n) | CloseCode::Application(n) | CloseCode::Reserved(n) => n,
        }
    }
}

impl std::fmt::Display for CloseCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.as_u16())
    }
}

/// The largest close reason that fits in a control frame (125 − 2 bytes of code).
pub const MAX_CLOSE_REASON: usize = 123;

/// The body of a close frame: a code and a UTF-8 reason of at most 123 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code.
    pub code: CloseCode,
    /// The reason, at most [`MAX_CLOSE_REASON`] bytes.
    pub reason: String,
}

impl CloseFrame {
    /// A close frame; a reason longer than 123 bytes is cut at a character boundary.
    pub fn new(code: CloseCode, reason: impl Into<String>) -> Self {
        let mut reason = reason.into();
        if reason.len() > MAX_CLOSE_REASON {
            let mut end = MAX_CLOSE_REASON;
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason.truncate(end);
        }
        Self { code, reason }
    }

    /// Parses a close frame's payload: empty (no status), or a sendable code
    /// followed by a UTF-8 reason.
    pub fn parse(payload: &[u8]) -> Result<Option<Self>, ProtocolError> {
        match payload.len() {
            0 => return Ok(None),
            1 => return Err(ProtocolError::InvalidClosePayload),
            _ => {}
        }
        let code = CloseCode::from(u16::from_be_bytes([payload[0], payload[1]]));
        if !code.is_sendable() {
            return Err(ProtocolError::InvalidCloseCode(code.as_u16()));
        }
        let reason = simdutf8::basic::from_utf8(&payload[2..])
            .map_err(|_| ProtocolError::InvalidUtf8)?
            .to_owned();
        Ok(Some(Self { code, reason }))
    }

    /// The frame payload: the code in network order, then the reason.
    pub fn to_payload(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(2 + self.reason.len());
        out.put_u16(self.code.as_u16());
        out.put_slice(self.reason.as_bytes());
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_number_round_trips() {
        for n in 0..=u16::MAX {
            assert_eq!(CloseCode::from(n).as_u16(), n);
        }
    }

    #[test]
    fn wire_validity_follows_rfc_6455() {
        for ok in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
            4000, 4999,
        ] {
            assert!(CloseCode::from(ok).is_sendable(), "{ok}");
        }
        for bad in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert!(!CloseCode::from(bad).is_sendable(), "{bad}");
        }
    }

    #[test]
    fn one_byte_close_payload_is_a_protocol_error() {
        assert_eq!(
            CloseFrame::parse(&[3]),
            Err(ProtocolError::InvalidClosePayload)
        );
    }

    #[test]
    fn close_reason_must_be_utf8() {
        assert_eq!(
            CloseFrame::parse(&[3, 232, 0xff]),
            Err(ProtocolError::InvalidUtf8)
        );
    }

    #[test]
    fn long_reasons_are_cut_on_a_char_boundary() {
        let frame = CloseFrame::new(CloseCode::Normal, "é".repeat(100));
        assert!(frame.reason.len() <= MAX_CLOSE_REASON);
        assert!(frame.to_payload().len() <= 125);
    }
}
