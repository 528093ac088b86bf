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

/// Why a handshake was refused: a fixed set, for metrics and logs (never
/// match on [`Rejection::reason`], whose text is for people).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum RejectionKind {
    /// The `Host` is not one the server answers to (421).
    Host,
    /// The `Origin` is not allowed (403).
    Origin,
    /// The client address is over a rate limit (429).
    RateLimit,
    /// The client address has too many connections open (503).
    IpCap,
    /// The user has too many connections open (503).
    UserCap,
    /// The server is at [`crate::ServerConfig::max_connections`] (503).
    Capacity,
    /// The client did not send its request head in time (408).
    HandshakeTimeout,
    /// A token was presented and refused (401).
    InvalidToken,
    /// Authentication could not run: an identity service failed or timed out (503).
    AuthUnavailable,
    /// A guard needs an authenticated client (401).
    AuthRequired,
    /// A guard refused the authenticated client (403).
    PermissionDenied,
    /// Any other 400: a malformed request, a bad path parameter, no
    /// supported subprotocol.
    BadRequest,
    /// Any other 401.
    Unauthorized,
    /// Any other 403.
    Forbidden,
    /// No route for the path (404).
    NotFound,
    /// Not a `GET` (405).
    MethodNotAllowed,
    /// Not an upgrade request, or not WebSocket version 13 (426).
    UpgradeRequired,
    /// The request head was over the limits (431).
    HeadersTooLarge,
    /// Any other 503.
    Unavailable,
    /// Anything else (a handler that refused with a status of its own, or
    /// did not accept: 500).
    Other,
}

impl RejectionKind {
    /// Every kind, in declaration order.
    pub const ALL: [Self; 20] = [
        Self::Host,
        Self::Origin,
        Self::RateLimit,
        Self::IpCap,
        Self::UserCap,
        Self::Capacity,
        Self::HandshakeTimeout,
        Self::InvalidToken,
        Self::AuthUnavailable,
        Self::AuthRequired,
        Self::PermissionDenied,
        Self::BadRequest,
        Self::Unauthorized,
        Self::Forbidden,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::UpgradeRequired,
        Self::HeadersTooLarge,
        Self::Unavailable,
        Self::Other,
    ];

    /// A short snake_case name (the gateway's metric label).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Host => "host",
            Self::Origin => "origin",
            Self::RateLimit => "rate_limit",
            Self::IpCap => "ip_cap",
            Self::UserCap => "user_cap",
            Self::Capacity => "capacity",
            Self::HandshakeTimeout => "handshake_timeout",
            Self::InvalidToken => "invalid_token",
            Self::AuthUnavailable => "auth_unavailable",
            Self::AuthRequired => "auth_required",
            Self::PermissionDenied => "permission_denied",
            Self::BadRequest => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::UpgradeRequired => "upgrade_required",
            Self::HeadersTooLarge => "headers_too_large",
            Self::Unavailable => "unavailable",
            Self::Other => "other",
        }
    }

    /// The kind a rejection with `status` and nothing more specific has.
    pub fn from_status(status: StatusCode) -> Self {
        match status {
            StatusCode::BAD_REQUEST => Self::BadRequest,
            StatusCode::UNAUTHORIZED => Self::Unauthorized,
            StatusCode::FORBIDDEN => Self::Forbidden,
            StatusCode::NOT_FOUND => Self::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => Self::MethodNotAllowed,
            StatusCode::REQUEST_TIMEOUT => Self::HandshakeTimeout,
            StatusCode::UPGRADE_REQUIRED => Self::UpgradeRequired,
            StatusCode::TOO_MANY_REQUESTS => Self::RateLimit,
            StatusCode::MISDIRECTED_REQUEST => Self::Host,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => Self::HeadersTooLarge,
            StatusCode::SERVICE_UNAVAILABLE => Self::Unavailable,
            _ => Self::Other,
        }
    }
}

impl std::fmt::Display for RejectionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An HTTP refusal of the opening handshake: the status, a plain-text reason
/// for the body, extra headers (such as `Retry-After`), and its
/// [`RejectionKind`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {reason}")]
pub struct Rejection {
    /// Why, as a fixed kind.
    pub kind: RejectionKind,
    /// The HTTP status.
    pub status: StatusCode,
    /// The body, in plain text.
    pub reason: String,
    /// Headers to add to the response.
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// Refuse after the upgrade instead ([`Rejection::with_close`]).
    pub close: Option<CloseFrame>,
}

impl Rejection {
    /// A rejection with `status` and `reason`, of the kind the status
    /// implies ([`RejectionKind::from_status`]).
    pub fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        Self {
            kind: RejectionKind::from_status(status),
            status,
            reason: reason.into(),
            headers: Vec::new(),
            close: None,
        }
    }

    /// Refuses *after* the upgrade: the client gets `101 Switching
    /// Protocols`, then at once a close frame with `code` and `reason`,
    /// and the route's handler never runs. Browsers cannot read the status
    /// or body of a refused handshake (their socket only says 1006), but
    /// they do see a close code and reason, so use this for refusals a web
    /// page should show. The refusal hooks still see the rejection; status
    /// and headers are unused.
    pub fn with_close(mut self, code: CloseCode, reason: impl Into<String>) -> Self {
        self.close = Some(CloseFrame::new(code, reason));
        self
    }

    /// Sets the kind.
    pub fn with_kind(mut self, kind: RejectionKind) -> Self {
        self.kind = kind;
        self
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
