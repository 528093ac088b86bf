//! `SUBSCRIBE` and `UNSUBSCRIBE`: channel names, the limit, the rules, and
//! hub rooms.

use switchboard_protocol::payload::{SubscribeFailure, SubscribeSuccess};
use switchboard_protocol::{Channel, ErrorCode, Message as Wire};

use super::engine::Connection;
use super::session::Session;
use super::structured::StructuredProtocol;
use crate::hub::Room;

impl StructuredProtocol {
    pub(super) async fn subscribe(
        &self,
        conn: &Connection,
        s: &mut Session,
        names: Vec<String>,
        id: Option<&str>,
    ) {
        let mut replies: Vec<Wire> = Vec::with_capacity(names.len());
        let mut joined = false;
        for name in names {
            let failure = |code, reason: String| {
                Wire::from(SubscribeFailure {
                    channel: name.clone(),
                    code,
                    reason,
                })
            };
            let reply = match Channel::new(&name) {
                Err(e) => failure(ErrorCode::InvalidChannel, e.to_string()),
                Ok(channel) if s.subscriptions.contains(&channel) => {
                    SubscribeSuccess { channel: name }.into()
                }
                Ok(_) if s.subscriptions.len() >= self.config.max_subscriptions => {
                    let max = self.config.max_subscriptions;
                    failure(
                        ErrorCode::TooManySubscriptions,
                        format!("At most {max} channels per connection"),
                    )
                }
                Ok(channel) => {
                    if self.channels.authorize(conn, &channel).await {
                        conn.hub().join(conn.id(), Room::from(channel.as_str()));
                        for hook in &self.hooks {
                            hook.on_subscribe(conn, &channel);
                        }
                        s.subscriptions.insert(channel);
                        joined = true;
                        SubscribeSuccess { channel: name }.into()
                    } else {
                        let reason = "Not allowed to subscribe to this channel".to_owned();
                        failure(ErrorCode::Forbidden, reason)
                    }
                }
            };
            replies.push(reply);
        }
        if joined
            && let Some(cluster) = &self.cluster
            && let Err(e) = cluster.sync().await
        {
            // Local delivery works already; the broker catches up on its own.
            tracing::warn!(error = %e, "broker did not confirm the subscription");
        }
        for reply in replies {
            self.send(conn, reply, id).await;
        }
    }

    pub(super) async fn unsubscribe(&self, conn: &Connection, s: &mut Session, names: &[String]) {
        for name in names {
            let Ok(channel) = Channel::new(name) else {
                continue;
            };
            if s.subscriptions.remove(&channel) {
                conn.hub().leave(conn.id(), Room::from(channel.as_str()));
                for hook in &self.hooks {
                    hook.on_unsubscribe(conn, &channel);
                }
            }
        }
    }
}
