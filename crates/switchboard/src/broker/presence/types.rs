//! Members, counts and the events of a channel's presence.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::broker::ConnectionAddr;
use crate::hub::{Room, UserId};

/// One subscribed connection, as presence lists it.
///
/// Serialised as `{"connection": "gw-1/42", "user": "alice" | null,
/// "info"?: {...}}`: the same in presence answers, join and leave events,
/// and the Redis hash that holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Member {
    /// The connection's cluster address.
    #[serde(with = "addr_text")]
    pub connection: ConnectionAddr,
    /// The authenticated user; `None` for an anonymous connection.
    pub user: Option<UserId>,
    /// What the connection told about itself ([`PresenceInfo`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<Value>,
}

impl Member {
    /// A member without info.
    pub fn new(connection: ConnectionAddr, user: Option<UserId>) -> Self {
        Self {
            connection,
            user,
            info: None,
        }
    }

    /// Sets [`Member::info`].
    pub fn with_info(mut self, info: Option<Value>) -> Self {
        self.info = info;
        self
    }

    /// The JSON a broker stores.
    pub fn to_json(&self) -> String {
        // A struct of strings and a JSON value always serialises.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }
}

/// A connection's presence info: what it told about itself (the protocol
/// sets the `client` it sent in `CONNECT`, a connect proxy its metadata).
/// Kept in the hub's per-connection state
/// ([`Hub::set_state`](crate::Hub::set_state)) before the connection joins
/// a channel with presence; later changes show from its next join.
#[derive(Debug, Clone, PartialEq)]
pub struct PresenceInfo(pub Arc<Value>);

/// Counts of a channel's presence, cluster-wide, read in O(1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[non_exhaustive]
pub struct PresenceStats {
    /// Subscribed connections.
    pub connections: u64,
    /// Distinct authenticated users among them.
    pub users: u64,
}

impl PresenceStats {
    /// Counts of `connections` and `users`.
    pub fn new(connections: u64, users: u64) -> Self {
        Self { connections, users }
    }
}

/// A channel's members, up to the configured maximum, and its counts.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct Presence {
    /// The members (at most `PresenceConfig::max_members`), in no order.
    pub members: Vec<Member>,
    /// The counts, whatever the size.
    pub stats: PresenceStats,
}

impl Presence {
    /// Members and counts.
    pub fn new(members: Vec<Member>, stats: PresenceStats) -> Self {
        Self { members, stats }
    }
}

/// Whether a member arrived or left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresenceChange {
    /// `switchboard.join`.
    Join,
    /// `switchboard.leave`.
    Leave,
}

/// A join or leave to announce to a channel's subscribers.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PresenceEvent {
    /// The channel.
    pub channel: Room,
    /// Join or leave.
    pub change: PresenceChange,
    /// Who.
    pub member: Member,
}

impl PresenceEvent {
    /// An event for `member` in `channel`.
    pub fn new(channel: Room, change: PresenceChange, member: Member) -> Self {
        Self {
            channel,
            change,
            member,
        }
    }
}

/// `instance/id` as text.
mod addr_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::broker::ConnectionAddr;

    pub(super) fn serialize<S: Serializer>(addr: &ConnectionAddr, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(addr)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ConnectionAddr, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::InstanceId;
    use crate::hub::ConnectionId;
    use serde_json::json;

    #[test]
    fn members_serialise_with_a_text_address() {
        let addr = ConnectionAddr::new(InstanceId::new("gw-1").unwrap(), ConnectionId(42));
        let member = Member::new(addr, Some(UserId::from("alice")))
            .with_info(Some(json!({"client": {"name": "web"}})));
        let text = member.to_json();
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            json!({"connection": "gw-1/42", "user": "alice", "info": {"client": {"name": "web"}}})
        );
        assert_eq!(serde_json::from_str::<Member>(&text).unwrap(), member);
        let anonymous: Member =
            serde_json::from_str(r#"{"connection": "gw-1/7", "user": null}"#).unwrap();
        assert_eq!(anonymous.user, None);
        assert!(serde_json::from_str::<Member>(r#"{"connection": "x", "user": null}"#).is_err());
    }
}
