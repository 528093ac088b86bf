//! `PRESENCE` and `PRESENCE_STATS`: who is subscribed to a channel the
//! connection is subscribed to; and the presence info a connection shows.

use std::sync::Arc;

use serde_json::{Map, Value};
use switchboard_protocol::{Channel, ErrorCode, PresenceMember, PresenceRequest, PresenceResult};

use super::engine::{Connection, Flow};
use super::session::Session;
use super::structured::StructuredProtocol;
use crate::broker::presence::{Member, PresenceInfo};
use crate::hub::Room;

impl StructuredProtocol {
    /// Answers `PRESENCE` (`members`) or `PRESENCE_STATS`.
    pub(super) async fn presence(
        &self,
        conn: &Connection,
        s: &mut Session,
        request: &PresenceRequest,
        members: bool,
        id: Option<&str>,
    ) -> Flow {
        let name = &request.channel;
        let subscribed = Channel::new(name).is_ok_and(|c| s.subscriptions.contains(&c));
        if !subscribed {
            let message = format!("subscribe to {name} before asking who is there");
            return self.error(conn, s, ErrorCode::Forbidden, message, id).await;
        }
        let room = Room::from(name.as_str());
        let Some(cluster) = self.cluster.as_ref().filter(|c| c.keeps_presence(&room)) else {
            let message = format!("{name} keeps no presence");
            return self
                .error(conn, s, ErrorCode::NoPresence, message, id)
                .await;
        };
        let answer = if members {
            cluster
                .presence(&room)
                .await
                .map(|p| (p.stats, Some(p.members)))
        } else {
            cluster
                .presence_stats(&room)
                .await
                .map(|stats| (stats, None))
        };
        match answer {
            Ok((stats, members)) => {
                let result = PresenceResult {
                    channel: name.clone(),
                    connections: stats.connections,
                    users: stats.users,
                    members: members.map(|m| m.into_iter().map(wire_member).collect()),
                };
                self.send(conn, result, id).await;
                Flow::Continue
            }
            Err(e) => {
                let (code, message) = if e.is_transient() {
                    (
                        ErrorCode::Unavailable,
                        format!("presence of {name} cannot be read just now ({e}); retry"),
                    )
                } else {
                    tracing::warn!(channel = %name, error = %e, "presence read failed");
                    (ErrorCode::Internal, "presence could not be read".to_owned())
                };
                self.error(conn, s, code, message, id).await
            }
        }
    }

    /// Keeps what the connection shows in presence up to date: the client
    /// it named in `CONNECT`, and its identity's `meta` (a connect proxy's).
    pub(super) fn update_presence_info(&self, conn: &Connection, s: &Session) {
        let mut info = Map::new();
        if let Some(client) = &s.client
            && let Ok(client) = serde_json::to_value(client)
        {
            info.insert("client".to_owned(), client);
        }
        if let Some(identity) = conn.identity()
            && !identity.meta().is_null()
        {
            info.insert("meta".to_owned(), identity.meta().clone());
        }
        if !info.is_empty() {
            conn.hub()
                .set_state(conn.id(), PresenceInfo(Arc::new(Value::Object(info))));
        }
    }
}

fn wire_member(member: Member) -> PresenceMember {
    PresenceMember {
        connection: member.connection.to_string(),
        user: member.user.map(|u| u.as_str().to_owned()),
        info: member.info,
    }
}
