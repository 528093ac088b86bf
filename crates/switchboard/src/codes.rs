//! The close codes Switchboard itself sends, beyond those of RFC 6455.
//!
//! | code | constant | when |
//! |------|----------|------|
//! | 1000 | `CloseCode::Normal` | the handler returned `Ok` |
//! | 1001 | `CloseCode::Away` | graceful shutdown |
//! | 1002 | `CloseCode::Protocol` | the client broke RFC 6455 framing |
//! | 1003 | `CloseCode::Unsupported` | the handler wanted text and got binary, or the reverse |
//! | 1007 | `CloseCode::InvalidPayload` | invalid UTF-8, or JSON the handler could not parse |
//! | 1008 | `CloseCode::Policy` | a message split into more fragments than allowed |
//! | 1009 | `CloseCode::TooBig` | a frame or message over the size limit |
//! | 1011 | `CloseCode::InternalError` | the handler returned an error |
//! | 1012 | `CloseCode::Restart` | shutdown announced as a restart |
//! | 4001 | [`KEEPALIVE_TIMEOUT`] | nothing received within the keepalive timeout |
//! | 4002 | [`SLOW_CONSUMER`] | the outbound queue overflowed |
//! | 4003 | [`TOKEN_EXPIRED`] | the credentials the client authenticated with expired (and were not refreshed) |
//! | 4004 | [`AUTH_FAILED`] | structured protocol: `AUTHENTICATE` failed too many times (3 by default) |
//! | 4005 | [`AUTH_TIMEOUT`] | structured protocol: no successful `AUTHENTICATE` before the deadline (10 s by default) |
//! | 4006 | [`HEARTBEAT_TIMEOUT`] | structured protocol: no `PONG` to the server's `PING` in time (10 s by default) |
//! | 4007 | [`TOO_MANY_ERRORS`] | structured protocol: too many `ERROR` replies (10 within 60 s by default) |

use switchboard_ws::CloseCode;

/// 4001: the client sent nothing (not even a pong) within the keepalive timeout.
pub const KEEPALIVE_TIMEOUT: CloseCode = CloseCode::Application(4001);

/// 4002: the client read too slowly and its outbound queue overflowed.
pub const SLOW_CONSUMER: CloseCode = CloseCode::Application(4002);

/// 4003: the credentials the connection authenticated with expired (a JWT's
/// `exp`, plus the leeway) and were not refreshed
/// ([`crate::security::refresh`]). Reconnect with a fresh token.
pub const TOKEN_EXPIRED: CloseCode = CloseCode::Application(4003);

/// 4004: the client failed `AUTHENTICATE` too many times (structured
/// protocol, [`crate::protocol::ProtocolConfig::max_auth_failures`]). Do not
/// reconnect with the same credentials.
pub const AUTH_FAILED: CloseCode = CloseCode::Application(4004);

/// 4005: the client did not authenticate before the deadline (structured
/// protocol, [`crate::protocol::ProtocolConfig::auth_deadline`]).
pub const AUTH_TIMEOUT: CloseCode = CloseCode::Application(4005);

/// 4006: the client did not answer the server's `PING` with a `PONG` in
/// time (structured protocol,
/// [`crate::protocol::ProtocolConfig::heartbeat_timeout`]). Reconnect.
pub const HEARTBEAT_TIMEOUT: CloseCode = CloseCode::Application(4006);

/// 4007: the client caused too many `ERROR` replies in a short time
/// (structured protocol, [`crate::protocol::ProtocolConfig::max_errors`]).
pub const TOO_MANY_ERRORS: CloseCode = CloseCode::Application(4007);
