//! What the hub knows about a connection.

use std::net::SocketAddr;
use std::time::SystemTime;

use serde::Serialize;

use super::id::{ConnectionId, UserId};

/// What the hub knows about a connection.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// The connection's id.
    pub id: ConnectionId,
    /// The authenticated user, if any.
    pub user: Option<UserId>,
    /// The peer's address.
    pub client_addr: SocketAddr,
    /// The request path.
    pub path: String,
    /// When the connection was accepted.
    #[serde(serialize_with = "as_unix_seconds")]
    pub connected_at: SystemTime,
}

fn as_unix_seconds<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    s.serialize_f64(secs)
}
