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

use switchboard_ws::CloseCode;

/// 4001: the client sent nothing (not even a pong) within the keepalive timeout.
pub const KEEPALIVE_TIMEOUT: CloseCode = CloseCode::Application(4001);

/// 4002: the client read too slowly and its outbound queue overflowed.
pub const SLOW_CONSUMER: CloseCode = CloseCode::Application(4002);

/// 4003: the credentials the connection authenticated with expired (a JWT's
/// `exp`, plus the leeway) and were not refreshed
/// ([`crate::security::refresh`]). Reconnect with a fresh token.
pub const TOKEN_EXPIRED: CloseCode = CloseCode::Application(4003);
