//! The `type` field: every message type, and who may send it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Who sends a message type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Only clients send it.
    ClientToServer,
    /// Only the server sends it.
    ServerToClient,
    /// Either side.
    Both,
}

impl Direction {
    /// As written in the message type table of `docs/protocol.md`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ClientToServer => "client → server",
            Self::ServerToClient => "server → client",
            Self::Both => "both",
        }
    }
}

/// The `type` of a message, as on the wire (upper case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MessageType {
    /// Client hello; answered with `CONNECT_ACK`.
    Connect,
    /// The server's hello: connection id, whether authentication is needed.
    ConnectAck,
    /// Either side ends the session.
    Disconnect,
    /// The client presents a token.
    Authenticate,
    /// The token was accepted.
    AuthenticateSuccess,
    /// The token was refused.
    AuthenticateFailure,
    /// The client subscribes to channels.
    Subscribe,
    /// One channel was subscribed.
    SubscribeSuccess,
    /// One channel was refused.
    SubscribeFailure,
    /// The client leaves channels.
    Unsubscribe,
    /// The channels were left.
    UnsubscribeAck,
    /// A named application event.
    Event,
    /// A resource's data.
    Data,
    /// A notification for the user.
    Notification,
    /// The client asks the server to do something.
    Action,
    /// What an action returned.
    ActionResult,
    /// The client asks who is subscribed to a channel.
    Presence,
    /// The client asks how many are subscribed to a channel.
    PresenceStats,
    /// The answer to `PRESENCE` or `PRESENCE_STATS`.
    PresenceResult,
    /// Heartbeat request.
    Ping,
    /// Heartbeat answer.
    Pong,
    /// Something went wrong with a request.
    Error,
}

impl MessageType {
    /// Every message type, in the order of the table in `docs/protocol.md`.
    pub const ALL: [Self; 22] = [
        Self::Connect,
        Self::ConnectAck,
        Self::Disconnect,
        Self::Authenticate,
        Self::AuthenticateSuccess,
        Self::AuthenticateFailure,
        Self::Subscribe,
        Self::SubscribeSuccess,
        Self::SubscribeFailure,
        Self::Unsubscribe,
        Self::UnsubscribeAck,
        Self::Event,
        Self::Data,
        Self::Notification,
        Self::Action,
        Self::ActionResult,
        Self::Presence,
        Self::PresenceStats,
        Self::PresenceResult,
        Self::Ping,
        Self::Pong,
        Self::Error,
    ];

    /// The name on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "CONNECT",
            Self::ConnectAck => "CONNECT_ACK",
            Self::Disconnect => "DISCONNECT",
            Self::Authenticate => "AUTHENTICATE",
            Self::AuthenticateSuccess => "AUTHENTICATE_SUCCESS",
            Self::AuthenticateFailure => "AUTHENTICATE_FAILURE",
            Self::Subscribe => "SUBSCRIBE",
            Self::SubscribeSuccess => "SUBSCRIBE_SUCCESS",
            Self::SubscribeFailure => "SUBSCRIBE_FAILURE",
            Self::Unsubscribe => "UNSUBSCRIBE",
            Self::UnsubscribeAck => "UNSUBSCRIBE_ACK",
            Self::Event => "EVENT",
            Self::Data => "DATA",
            Self::Notification => "NOTIFICATION",
            Self::Action => "ACTION",
            Self::ActionResult => "ACTION_RESULT",
            Self::Presence => "PRESENCE",
            Self::PresenceStats => "PRESENCE_STATS",
            Self::PresenceResult => "PRESENCE_RESULT",
            Self::Ping => "PING",
            Self::Pong => "PONG",
            Self::Error => "ERROR",
        }
    }

    /// Who sends it, per the protocol. (A server may still accept a
    /// server-to-client type from clients when the application registers a
    /// handler for it; see the `switchboard` crate.)
    pub const fn direction(self) -> Direction {
        match self {
            Self::Connect
            | Self::Authenticate
            | Self::Subscribe
            | Self::Unsubscribe
            | Self::Action
            | Self::Presence
            | Self::PresenceStats => Direction::ClientToServer,
            Self::Disconnect | Self::Ping | Self::Pong => Direction::Both,
            Self::ConnectAck
            | Self::AuthenticateSuccess
            | Self::AuthenticateFailure
            | Self::SubscribeSuccess
            | Self::SubscribeFailure
            | Self::UnsubscribeAck
            | Self::Event
            | Self::Data
            | Self::Notification
            | Self::ActionResult
            | Self::PresenceResult
            | Self::Error => Direction::ServerToClient,
        }
    }

    /// Whether clients send this type.
    pub const fn sent_by_clients(self) -> bool {
        matches!(
            self.direction(),
            Direction::ClientToServer | Direction::Both
        )
    }

    /// Whether a client may send this before it has authenticated (on an
    /// endpoint that requires authentication).
    pub const fn allowed_before_auth(self) -> bool {
        matches!(
            self,
            Self::Authenticate | Self::Connect | Self::Ping | Self::Pong | Self::Disconnect
        )
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_serde() {
        for kind in MessageType::ALL {
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, kind.as_str());
            let back: MessageType = serde_json::from_value(json).unwrap();
            assert_eq!(back, kind);
        }
    }
}
