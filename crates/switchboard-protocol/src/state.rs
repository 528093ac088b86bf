//! The states a connection goes through, on both sides.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a connection is in its life.
///
/// `initializing` → `connecting` → `connected` → (`authenticating` →
/// `authenticated`) → `disconnecting` → `disconnected`; `error` when the
/// connection fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum ConnectionState {
    /// Being set up; nothing sent yet.
    Initializing,
    /// The WebSocket is open; `CONNECT_ACK` not yet sent (server) or
    /// received (client).
    Connecting,
    /// `CONNECT_ACK` exchanged; not authenticated.
    Connected,
    /// An `AUTHENTICATE` is being checked.
    Authenticating,
    /// Authenticated (in the handshake or with `AUTHENTICATE`).
    Authenticated,
    /// The close handshake has started.
    Disconnecting,
    /// Closed.
    Disconnected,
    /// The connection failed (a protocol violation, the peer vanished).
    Error,
}

impl ConnectionState {
    /// Every state, in the order of `docs/protocol.md`.
    pub const ALL: [Self; 8] = [
        Self::Initializing,
        Self::Connecting,
        Self::Connected,
        Self::Authenticating,
        Self::Authenticated,
        Self::Disconnecting,
        Self::Disconnected,
        Self::Error,
    ];

    /// The state's name, as the TypeScript client spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Initializing => "initializing",
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::Authenticating => "authenticating",
            Self::Authenticated => "authenticated",
            Self::Disconnecting => "disconnecting",
            Self::Disconnected => "disconnected",
            Self::Error => "error",
        }
    }

    /// The state for its index in [`ConnectionState::ALL`] (for storing it
    /// in an atomic).
    pub const fn from_index(index: u8) -> Option<Self> {
        if (index as usize) < Self::ALL.len() {
            Some(Self::ALL[index as usize])
        } else {
            None
        }
    }

    /// Whether the connection is over (`disconnected` or `error`).
    pub const fn is_final(self) -> bool {
        matches!(self, Self::Disconnected | Self::Error)
    }
}

impl fmt::Display for ConnectionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_round_trip() {
        for state in ConnectionState::ALL {
            assert_eq!(ConnectionState::from_index(state as u8), Some(state));
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
        assert_eq!(ConnectionState::from_index(8), None);
    }
}
