//! The codec's error type: one enum, nested by concern.

use crate::close::CloseCode;

/// Anything the codec can reject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The peer broke RFC 6455 framing; close the connection with [`ProtocolError::close_code`].
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The opening handshake was refused; answer with [`HandshakeError::status`].
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
}

/// A framing or message error. Each one maps to the close code the endpoint
/// must send before closing the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A client sent a frame without a mask (RFC 6455 §5.1).
    #[error("client frame is not masked")]
    UnmaskedFrame,
    /// A server sent a masked frame (RFC 6455 §5.1).
    #[error("server frame is masked")]
    MaskedFrame,
    /// RSV1, RSV2 or RSV3 was set and no extension gives it a meaning.
    #[error("reserved bits set without a negotiated extension")]
    ReservedBits,
    /// An opcode in 0x3–0x7 or 0xB–0xF.
    #[error("reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    /// A control frame carried more than 125 bytes.
    #[error("control frame payload over 125 bytes")]
    ControlFrameTooLarge,
    /// A control frame had FIN clear.
    #[error("fragmented control frame")]
    FragmentedControlFrame,
    /// A continuation frame arrived with no message in progress.
    #[error("continuation frame without a message to continue")]
    UnexpectedContinuation,
    /// A new text or binary frame arrived while a fragmented message was open.
    #[error("new data frame while a fragmented message is open")]
    ExpectedContinuation,
    /// The payload length was not minimally encoded, or had its top bit set.
    #[error("invalid payload length encoding")]
    InvalidLength,
    /// A close frame with a one-byte payload.
    #[error("close frame payload of one byte")]
    InvalidClosePayload,
    /// A close frame with a code that may not be sent on the wire.
    #[error("invalid close code {0}")]
    InvalidCloseCode(u16),
    /// A compressed message that does not inflate (permessage-deflate).
    #[error("invalid compressed data")]
    InvalidCompressedData,
    /// Text (or a close reason) that is not valid UTF-8.
    #[error("invalid UTF-8 in text")]
    InvalidUtf8,
    /// A frame header announced more payload than the frame limit allows.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    FrameTooLarge {
        /// The length the header announced.
        len: u64,
        /// The configured limit.
        max: usize,
    },
    /// A message grew past the message limit.
    #[error("message of {len} bytes exceeds the limit of {max}")]
    MessageTooLarge {
        /// The size the message would have reached.
        len: u64,
        /// The configured limit.
        max: usize,
    },
    /// A fragmented message used more frames than the fragment limit allows.
    #[error("message split into more than {max} fragments")]
    TooManyFragments {
        /// The configured limit.
        max: usize,
    },
}

impl ProtocolError {
    /// The close code to send for this error: 1007 for bad UTF-8, 1009 for
    /// size limits, 1008 for the fragment limit, 1002 for everything else.
    pub fn close_code(&self) -> CloseCode {
        match self {
            Self::InvalidUtf8 | Self::InvalidCompressedData => CloseCode::InvalidPayload,
            Self::FrameTooLarge { .. } | Self::MessageTooLarge { .. } => CloseCode::TooBig,
            Self::TooManyFragments { .. } => CloseCode::Policy,
            _ => CloseCode::Protocol,
        }
    }
}

/// Why an opening handshake was refused, with the HTTP status to answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The request line and headers were not valid HTTP/1.1.
    #[error("malformed HTTP request")]
    Malformed,
    /// The request head was larger than the header byte limit.
    #[error("request header too large")]
    HeaderTooLarge,
    /// The request had more headers than the header count limit.
    #[error("too many request headers")]
    TooManyHeaders,
    /// The method was not GET.
    #[error("method must be GET")]
    MethodNotAllowed,
    /// A plain HTTP request (no `Upgrade: websocket`) reached a WebSocket route.
    #[error("this endpoint speaks WebSocket only")]
    UpgradeRequired,
    /// `Connection` did not carry the `upgrade` token.
    #[error("Connection header must include 'upgrade'")]
    MissingConnectionUpgrade,
    /// `Sec-WebSocket-Version` was missing or not 13.
    #[error("unsupported WebSocket version; this server speaks 13")]
    UnsupportedVersion,
    /// `Sec-WebSocket-Key` was missing or not 16 bytes of base64.
    #[error("missing or invalid Sec-WebSocket-Key")]
    InvalidKey,
}

impl HandshakeError {
    /// The HTTP status to answer with.
    pub fn status(&self) -> http::StatusCode {
        use http::StatusCode;
        match self {
            Self::Malformed | Self::MissingConnectionUpgrade | Self::InvalidKey => {
                StatusCode::BAD_REQUEST
            }
            Self::HeaderTooLarge | Self::TooManyHeaders => {
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
            }
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::UpgradeRequired | Self::UnsupportedVersion => StatusCode::UPGRADE_REQUIRED,
        }
    }
}
