//! Presence on the wire: asking who is subscribed to a channel, and the
//! join and leave events its subscribers may get. `docs/protocol.md`,
//! "Presence", is the contract.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The event name of a member's arrival (`EVENT` with the member as data:
/// `{"connection", "user", "info"?}`).
pub const JOIN_EVENT: &str = "switchboard.join";

/// The event name of a member's departure (same data as [`JOIN_EVENT`]).
pub const LEAVE_EVENT: &str = "switchboard.leave";

/// `PRESENCE` and `PRESENCE_STATS`: `{"channel"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceRequest {
    /// A channel the connection is subscribed to.
    pub channel: String,
}

/// One subscribed connection: `{"connection", "user", "info"?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresenceMember {
    /// Its cluster address, `instance/id`.
    pub connection: String,
    /// Its authenticated user; `null` when anonymous.
    pub user: Option<String>,
    /// What it told about itself (`{"client": {...}}`, a connect proxy's
    /// `meta`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<Value>,
}

/// `PRESENCE_RESULT`: the counts, and for `PRESENCE` the members.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresenceResult {
    /// The channel.
    pub channel: String,
    /// Subscribed connections, cluster-wide.
    pub connections: u64,
    /// Distinct authenticated users among them.
    pub users: u64,
    /// The members (at most the server's limit); absent in the answer to
    /// `PRESENCE_STATS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<PresenceMember>>,
}
