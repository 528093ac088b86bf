//! Hooks into the structured protocol's life: every inbound envelope,
//! state changes, authentication, subscriptions, the end.

use switchboard_protocol::{Channel, ConnectionState, Envelope, ErrorCode};
use switchboard_ws::CloseFrame;

use super::engine::Connection;
use crate::error::Error;
use crate::identity::Identity;

/// What to do with an inbound envelope ([`ProtocolHooks::on_envelope`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Inbound {
    /// Handle it as usual.
    Accept,
    /// Answer `ERROR` with this code and message instead (counts towards
    /// the 4007 limit like any `ERROR`).
    Reject(ErrorCode, String),
    /// Drop it silently (the hook handled it).
    Handled,
}

/// Observers of a structured-protocol connection. Every method has an
/// empty default; they run inline on the connection's task, so keep them
/// short (spawn for real work). Add them with
/// [`super::StructuredProtocol::hooks`].
///
/// ```
/// use switchboard::protocol::{Connection, ConnectionState, ProtocolHooks};
///
/// struct LogStates;
///
/// impl ProtocolHooks for LogStates {
///     fn on_state_change(&self, conn: &Connection, from: ConnectionState, to: ConnectionState) {
///         tracing::info!(connection = %conn.id(), %from, %to, "state");
///     }
/// }
/// ```
pub trait ProtocolHooks: Send + Sync + 'static {
    /// The connection was accepted; `CONNECT_ACK` is about to be sent.
    fn on_open(&self, _conn: &Connection) {}

    /// Every envelope a client sends, parsed, before the server handles
    /// it (and before the authentication check).
    fn on_envelope(&self, _conn: &Connection, _envelope: &Envelope) -> Inbound {
        Inbound::Accept
    }

    /// The state changed.
    fn on_state_change(&self, _conn: &Connection, _from: ConnectionState, _to: ConnectionState) {}

    /// An `AUTHENTICATE` succeeded (`refreshed`: the connection was already
    /// authenticated and its session was extended).
    fn on_authenticated(&self, _conn: &Connection, _identity: &Identity, _refreshed: bool) {}

    /// A channel was subscribed.
    fn on_subscribe(&self, _conn: &Connection, _channel: &Channel) {}

    /// A channel was unsubscribed (not called when the connection ends).
    fn on_unsubscribe(&self, _conn: &Connection, _channel: &Channel) {}

    /// The connection failed (see [`super::Protocol::error`]).
    fn on_error(&self, _conn: &Connection, _error: &Error) {}

    /// The connection ended with this close code and reason.
    fn on_close(&self, _conn: &Connection, _close: &CloseFrame) {}
}
