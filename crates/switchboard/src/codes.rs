//! The close codes Switchboard itself sends, beyond those of RFC 6455.
//!
//! One table holds them all: [`switchboard_protocol::CloseCode`] (the
//! `switchboard-protocol` crate, mirrored by the TypeScript client), with
//! each code's number, reason and whether a client should reconnect. The
//! constants here are that table's entries as the codec's
//! [`CloseCode`](switchboard_ws::CloseCode), for sending.
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

use switchboard_protocol::CloseCode as Table;
use switchboard_ws::CloseCode;

/// The table's entry as a code to send.
const fn send(code: Table) -> CloseCode {
    CloseCode::Application(code.code())
}

/// 4001: the client sent nothing (not even a pong) within the keepalive timeout.
pub const KEEPALIVE_TIMEOUT: CloseCode = send(Table::KeepaliveTimeout);

/// 4002: the client read too slowly and its outbound queue overflowed.
pub const SLOW_CONSUMER: CloseCode = send(Table::SlowConsumer);

/// 4003: the credentials the connection authenticated with expired (a JWT's
/// `exp`, plus the leeway) and were not refreshed
/// ([`crate::security::refresh`]). Reconnect with a fresh token.
pub const TOKEN_EXPIRED: CloseCode = send(Table::TokenExpired);

/// 4004: the client failed `AUTHENTICATE` too many times (structured
/// protocol, [`crate::protocol::ProtocolConfig::max_auth_failures`]). Do not
/// reconnect with the same credentials.
pub const AUTH_FAILED: CloseCode = send(Table::AuthFailed);

/// 4005: the client did not authenticate before the deadline (structured
/// protocol, [`crate::protocol::ProtocolConfig::auth_deadline`]).
pub const AUTH_TIMEOUT: CloseCode = send(Table::AuthTimeout);

/// 4006: the client did not answer the server's `PING` with a `PONG` in
/// time (structured protocol,
/// [`crate::protocol::ProtocolConfig::heartbeat_timeout`]). Reconnect.
pub const HEARTBEAT_TIMEOUT: CloseCode = send(Table::HeartbeatTimeout);

/// 4007: the client caused too many `ERROR` replies in a short time
/// (structured protocol, [`crate::protocol::ProtocolConfig::max_errors`]).
pub const TOO_MANY_ERRORS: CloseCode = send(Table::TooManyErrors);

/// The table's entry for a code, if it has one: every code Switchboard
/// sends, RFC 6455's included (1005 and 1010, which only peers send, have
/// none).
pub fn entry(code: CloseCode) -> Option<Table> {
    Table::from_code(u16::from(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_application_code_of_the_table_has_its_constant() {
        let constants = [
            KEEPALIVE_TIMEOUT,
            SLOW_CONSUMER,
            TOKEN_EXPIRED,
            AUTH_FAILED,
            AUTH_TIMEOUT,
            HEARTBEAT_TIMEOUT,
            TOO_MANY_ERRORS,
        ];
        let table: Vec<u16> = Table::ALL
            .iter()
            .map(|c| c.code())
            .filter(|n| (4000..5000).contains(n))
            .collect();
        let ours: Vec<u16> = constants.iter().map(|c| u16::from(*c)).collect();
        assert_eq!(ours, table);
        assert_eq!(entry(CloseCode::Away), Some(Table::GoingAway));
        assert_eq!(entry(CloseCode::NoStatus), None);
    }
}
