//! The framework's error type.

use http::StatusCode;
use switchboard_ws::{CloseCode, CloseFrame, ProtocolError};

/// Everything a Switchboard socket operation can fail with.
///
/// A handler can return any of these; the connection is then closed with
/// [`Error::close_code`]. To end a connection with a code of your choice,
/// return [`Error::close`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer closed the connection with a code other than 1000 or 1001,
    /// or dropped it without a close frame (1006). Nothing more can be sent.
    #[error("peer disconnected with {} {:?}", .0.code, .0.reason)]
    Disconnected(CloseFrame),
    /// The connection is closed (by us, or the peer finished closing it);
    /// nothing more can be sent.
    #[error("connection closed")]
    Closed,
    /// The peer broke RFC 6455; the connection was closed with the error's code.
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    /// The handler asked to end the connection with this code and reason.
    #[error("closing with {} {:?}", .0.code, .0.reason)]
    Close(CloseFrame),
    /// A message had the wrong type for the call (`recv_text` got binary).
    #[error("expected a {expected} message")]
    UnexpectedMessage {
        /// What the call wanted.
        expected: &'static str,
    },
    /// A message was not valid JSON for the requested type.
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The handshake was refused before the handler ran.
    #[error("handshake rejected: {0}")]
    Rejected(#[from] Rejection),
    /// A socket error.
    #[error("io error: {0}")]
    Io(#[from] std::io::Error),
    /// A setting is invalid (a key that does not parse, a network that is
    /// not CIDR); fix the configuration.
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl Error {
    /// An error that closes the connection with `code` and `reason`.
    pub fn close(code: CloseCode, reason: impl Into<String>) -> Self {
        Self::Close(CloseFrame::new(code, reason))
    }

    /// The close frame the server sends when a handler fails with this error.
    pub fn close_frame(&self) -> CloseFrame {
        match self {
            Self::Close(frame) => frame.clone(),
            Self::Protocol(e) => CloseFrame::new(e.close_code(), e.to_string()),
            Self::UnexpectedMessage { .. } => {
                CloseFrame::new(CloseCode::Unsupported, self.to_string())
            }
            Self::Json(_) => CloseFrame::new(CloseCode::InvalidPayload, "invalid JSON"),
            _ => CloseFrame::new(CloseCode::InternalError, "internal error"),
        }
    }

    /// The close code the server sends when a handler fails with this error.
    pub fn close_code(&self) -> CloseCode {
        self.close_frame().code
    }
}

/// An HTTP refusal of the opening handshake: the status, a plain-text reason
/// for the body, and extra headers (such as `Retry-After`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {reason}")]
pub struct Rejection {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body, in plain text.
    pub reason: String,
    /// Headers to add to the response.
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
}

impl Rejection {
    /// A rejection with `status` and `reason`.
    pub fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        Self {
            status,
            reason: reason.into(),
            headers: Vec::new(),
        }
    }

    /// Adds a header to the response.
    pub fn with_header(mut self, name: http::HeaderName, value: http::HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
}

impl From<switchboard_ws::HandshakeError> for Rejection {
    fn from(e: switchboard_ws::HandshakeError) -> Self {
        let rejection = Self::new(e.status(), e.to_string());
        match e {
            switchboard_ws::HandshakeError::UnsupportedVersion => rejection.with_header(
                http::header::SEC_WEBSOCKET_VERSION,
                http::HeaderValue::from_static("13"),
            ),
            switchboard_ws::HandshakeError::UpgradeRequired => rejection.with_header(
                http::header::UPGRADE,
                http::HeaderValue::from_static("websocket"),
            ),
            _ => rejection,
        }
    }
}
