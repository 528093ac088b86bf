//! Error codes (in `ERROR` and the `*_FAILURE` payloads) and the close
//! codes a client may see, with what it should do about each.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a request failed: the `code` of `ERROR`, `SUBSCRIBE_FAILURE` and
/// `AUTHENTICATE_FAILURE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame was not JSON, or not an object.
    InvalidJson,
    /// `type` is missing or not a known message type.
    UnknownType,
    /// A required field is missing or has the wrong type; a binary frame;
    /// a type the server does not accept from clients.
    InvalidMessage,
    /// A message other than `AUTHENTICATE`/`CONNECT`/`PING`/`PONG`/`DISCONNECT`
    /// before authentication.
    NotAuthenticated,
    /// (In `AUTHENTICATE_FAILURE`) the token was refused.
    AuthFailed,
    /// (In `SUBSCRIBE_FAILURE`) the channel is not allowed for this client.
    Forbidden,
    /// (In `SUBSCRIBE_FAILURE`) the channel name is not valid.
    InvalidChannel,
    /// (In `SUBSCRIBE_FAILURE`) the connection is at its channel limit.
    TooManySubscriptions,
    /// No handler for the action.
    UnknownAction,
    /// The action's handler failed.
    ActionFailed,
    /// A service the server needs is not reachable just now (the broker,
    /// for a channel with history): retry with backoff.
    Unavailable,
    /// The client sent this kind of message too often (`chat.send` past its
    /// rate): wait before sending again.
    RateLimited,
    /// The application's backend behind an action (the gateway's rpc
    /// proxy) did not answer usably: refused, timed out, failed or answered
    /// nonsense. Sent with `temporary: true`: retry with backoff.
    BackendUnavailable,
    /// (For `PRESENCE` and `PRESENCE_STATS`) the channel keeps no presence.
    NoPresence,
    /// A server fault.
    Internal,
}

impl ErrorCode {
    /// Every code, in the order of the table in `docs/protocol.md`.
    pub const ALL: [Self; 15] = [
        Self::InvalidJson,
        Self::UnknownType,
        Self::InvalidMessage,
        Self::NotAuthenticated,
        Self::AuthFailed,
        Self::Forbidden,
        Self::InvalidChannel,
        Self::TooManySubscriptions,
        Self::UnknownAction,
        Self::ActionFailed,
        Self::Unavailable,
        Self::RateLimited,
        Self::BackendUnavailable,
        Self::NoPresence,
        Self::Internal,
    ];

    /// The code on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::UnknownType => "unknown_type",
            Self::InvalidMessage => "invalid_message",
            Self::NotAuthenticated => "not_authenticated",
            Self::AuthFailed => "auth_failed",
            Self::Forbidden => "forbidden",
            Self::InvalidChannel => "invalid_channel",
            Self::TooManySubscriptions => "too_many_subscriptions",
            Self::UnknownAction => "unknown_action",
            Self::ActionFailed => "action_failed",
            Self::Unavailable => "unavailable",
            Self::RateLimited => "rate_limited",
            Self::BackendUnavailable => "backend_unavailable",
            Self::NoPresence => "no_presence",
            Self::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `code` of an `ERROR`: one of the protocol's [`ErrorCode`]s, or an
/// application's own ([`ApplicationCode`], from an action handler or the
/// backend behind the gateway's rpc proxy, such as `out_of_stock`).
///
/// On the wire both are a string; a string that names a protocol code
/// reads as [`Code::Protocol`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Code {
    /// A code of the protocol's table.
    Protocol(ErrorCode),
    /// An application's code.
    Application(ApplicationCode),
}

impl Code {
    /// The code on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Protocol(code) => code.as_str(),
            Self::Application(code) => code.as_str(),
        }
    }

    /// Reads a code from the wire: a protocol code, else an application
    /// code when it is valid.
    pub fn parse(s: &str) -> Result<Self, InvalidCode> {
        match ErrorCode::ALL.iter().find(|c| c.as_str() == s) {
            Some(code) => Ok(Self::Protocol(*code)),
            None => ApplicationCode::new(s).map(Self::Application),
        }
    }
}

impl From<ErrorCode> for Code {
    fn from(code: ErrorCode) -> Self {
        Self::Protocol(code)
    }
}

impl From<ApplicationCode> for Code {
    fn from(code: ApplicationCode) -> Self {
        Code::parse(code.as_str()).unwrap_or(Self::Application(code))
    }
}

impl PartialEq<ErrorCode> for Code {
    fn eq(&self, other: &ErrorCode) -> bool {
        matches!(self, Self::Protocol(code) if code == other)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An application's error code: 1 to 64 characters of `A-Z a-z 0-9 _ . : -`,
/// starting with a letter (`out_of_stock`, `orders.limit_reached`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ApplicationCode(String);

impl ApplicationCode {
    /// Longest code accepted.
    pub const MAX_LEN: usize = 64;

    /// Checks `code`.
    pub fn new(code: impl Into<String>) -> Result<Self, InvalidCode> {
        let code = code.into();
        let valid = !code.is_empty()
            && code.len() <= Self::MAX_LEN
            && code.starts_with(|c: char| c.is_ascii_alphabetic())
            && code
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
        if valid {
            Ok(Self(code))
        } else {
            Err(InvalidCode(code.chars().take(80).collect()))
        }
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ApplicationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A string that is no error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not an error code: use 1 to 64 characters of A-Z a-z 0-9 _ . : -, starting with a letter"
)]
pub struct InvalidCode(String);

/// Whether a client should reconnect after a close code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reconnect {
    /// Do not reconnect: the same connection would end the same way.
    No,
    /// Reconnect, with backoff (full jitter is recommended).
    Yes,
    /// Reconnect only after fetching a fresh token.
    WithNewToken,
}

impl Reconnect {
    /// Whether to reconnect at all.
    pub const fn should_reconnect(self) -> bool {
        !matches!(self, Self::No)
    }
}

/// A close code a client of this protocol may see: RFC 6455's and
/// Switchboard's 4001–4007.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CloseCode {
    /// 1000: normal close (`DISCONNECT`, or the server ended the session).
    Normal,
    /// 1001: the server is going away (shutdown).
    GoingAway,
    /// 1002: WebSocket framing violation.
    ProtocolError,
    /// 1003: unsupported data.
    Unsupported,
    /// 1006: the connection was lost without a close frame (never sent).
    Abnormal,
    /// 1007: invalid payload (bad UTF-8).
    InvalidPayload,
    /// 1008: policy violation.
    PolicyViolation,
    /// 1009: a message was too big.
    TooBig,
    /// 1011: server error.
    InternalError,
    /// 1012: the server is restarting.
    Restart,
    /// 1013: try again later.
    TryAgainLater,
    /// 4001: no WebSocket-level traffic within the keepalive timeout.
    KeepaliveTimeout,
    /// 4002: the client read too slowly.
    SlowConsumer,
    /// 4003: the token expired and was not refreshed.
    TokenExpired,
    /// 4004: authentication failed too many times.
    AuthFailed,
    /// 4005: no successful `AUTHENTICATE` before the deadline.
    AuthTimeout,
    /// 4006: no `PONG` to the server's `PING` in time.
    HeartbeatTimeout,
    /// 4007: too many `ERROR` replies in a short time.
    TooManyErrors,
}

impl CloseCode {
    /// Every code, in the order of the table in `docs/protocol.md`.
    pub const ALL: [Self; 18] = [
        Self::Normal,
        Self::GoingAway,
        Self::ProtocolError,
        Self::Unsupported,
        Self::Abnormal,
        Self::InvalidPayload,
        Self::PolicyViolation,
        Self::TooBig,
        Self::InternalError,
        Self::Restart,
        Self::TryAgainLater,
        Self::KeepaliveTimeout,
        Self::SlowConsumer,
        Self::TokenExpired,
        Self::AuthFailed,
        Self::AuthTimeout,
        Self::HeartbeatTimeout,
        Self::TooManyErrors,
    ];

    /// The number on the wire.
    pub const fn code(self) -> u16 {
        match self {
            Self::Normal => 1000,
            Self::GoingAway => 1001,
            Self::ProtocolError => 1002,
            Self::Unsupported => 1003,
            Self::Abnormal => 1006,
            Self::InvalidPayload => 1007,
            Self::PolicyViolation => 1008,
            Self::TooBig => 1009,
            Self::InternalError => 1011,
            Self::Restart => 1012,
            Self::TryAgainLater => 1013,
            Self::KeepaliveTimeout => 4001,
            Self::SlowConsumer => 4002,
            Self::TokenExpired => 4003,
            Self::AuthFailed => 4004,
            Self::AuthTimeout => 4005,
            Self::HeartbeatTimeout => 4006,
            Self::TooManyErrors => 4007,
        }
    }

    /// The code for a number, if it is one of these.
    pub fn from_code(code: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }

    /// What a client should do after this close.
    pub const fn reconnect(self) -> Reconnect {
        match self {
            Self::GoingAway
            | Self::Abnormal
            | Self::InternalError
            | Self::Restart
            | Self::TryAgainLater
            | Self::KeepaliveTimeout
            | Self::SlowConsumer
            | Self::HeartbeatTimeout => Reconnect::Yes,
            Self::TokenExpired => Reconnect::WithNewToken,
            Self::Normal
            | Self::ProtocolError
            | Self::Unsupported
            | Self::InvalidPayload
            | Self::PolicyViolation
            | Self::TooBig
            | Self::AuthFailed
            | Self::AuthTimeout
            | Self::TooManyErrors => Reconnect::No,
        }
    }

    /// A short reason, as the server puts in its close frames.
    pub const fn reason(self) -> &'static str {
        match self {
            Self::Normal => "normal close",
            Self::GoingAway => "server going away",
            Self::ProtocolError => "protocol violation",
            Self::Unsupported => "unsupported data",
            Self::Abnormal => "connection lost",
            Self::InvalidPayload => "invalid payload",
            Self::PolicyViolation => "policy violation",
            Self::TooBig => "message too big",
            Self::InternalError => "server error",
            Self::Restart => "server restarting",
            Self::TryAgainLater => "try again later",
            Self::KeepaliveTimeout => "keepalive timeout",
            Self::SlowConsumer => "slow consumer",
            Self::TokenExpired => "token expired",
            Self::AuthFailed => "authentication failed",
            Self::AuthTimeout => "authentication timeout",
            Self::HeartbeatTimeout => "heartbeat timeout",
            Self::TooManyErrors => "too many errors",
        }
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> Self {
        code.code()
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code(), self.reason())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_code_names_match_serde() {
        for code in ErrorCode::ALL {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
    }

    #[test]
    fn error_message_codes_are_the_protocols_or_an_applications() {
        use crate::payload::ErrorMessage;
        let app = ErrorMessage::new(ApplicationCode::new("out_of_stock").unwrap(), "Only 2 left");
        assert_eq!(
            serde_json::to_string(&app).unwrap(),
            r#"{"code":"out_of_stock","message":"Only 2 left"}"#
        );
        let temporary = ErrorMessage::new(ErrorCode::BackendUnavailable, "down").temporary(true);
        assert_eq!(
            serde_json::to_string(&temporary).unwrap(),
            r#"{"code":"backend_unavailable","message":"down","temporary":true}"#
        );
        let read: ErrorMessage =
            serde_json::from_str(r#"{"code":"unknown_action","message":"x"}"#).unwrap();
        assert_eq!(read.code, ErrorCode::UnknownAction);
        assert!(!read.temporary);
        let read: ErrorMessage =
            serde_json::from_str(r#"{"code":"orders.limit","message":"x","temporary":true}"#)
                .unwrap();
        assert_eq!(read.code.as_str(), "orders.limit");
        assert!(read.temporary);
        // A code spelled like a protocol code is that code.
        assert_eq!(
            Code::from(ApplicationCode::new("forbidden").unwrap()),
            ErrorCode::Forbidden
        );
        for bad in ["", "9lives", "has space", "é", &"x".repeat(65)] {
            assert!(ApplicationCode::new(bad).is_err(), "{bad:?}");
        }
        assert!(
            serde_json::from_str::<ErrorMessage>(r#"{"code":"no way","message":"x"}"#).is_err()
        );
    }

    #[test]
    fn close_codes_round_trip() {
        for code in CloseCode::ALL {
            assert_eq!(CloseCode::from_code(code.code()), Some(code));
        }
        assert_eq!(CloseCode::from_code(4999), None);
    }
}
