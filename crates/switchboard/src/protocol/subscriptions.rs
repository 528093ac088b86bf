//! `SUBSCRIBE` and `UNSUBSCRIBE`: channel names, the limit, the rules, hub
//! rooms, and on channels with history the stream's position and recovery.

use switchboard_protocol::payload::{SubscribeFailure, SubscribeSuccess};
use switchboard_protocol::stream::SubscribeOptions;
use switchboard_protocol::{
    Channel, ErrorCode, Message as Wire, NotRecovered, SubscriptionRequest,
};

use super::channels::ChannelDecision;
use super::engine::{Connection, Flow};
use super::session::Session;
use super::structured::StructuredProtocol;
use crate::broker::presence::events_room;
use crate::broker::stream::{Epoch, Joined, StreamPosition, Want};
use crate::delivery::Outgoing;
use crate::hub::Room;
use crate::stamp::stamp;

impl StructuredProtocol {
    pub(super) async fn subscribe(
        &self,
        conn: &Connection,
        s: &mut Session,
        requests: Vec<SubscriptionRequest>,
        id: Option<&str>,
    ) -> Flow {
        self.subscribe_checked(conn, s, requests, id, true).await
    }

    /// Subscribes the channels the connection's identity names
    /// ([`crate::security::Identity::channels`]): chosen by the
    /// application, so no rule is checked; each answer has no
    /// `correlation_id`.
    pub(super) async fn subscribe_server_side(&self, conn: &Connection, s: &mut Session) {
        let Some(identity) = conn.identity() else {
            return;
        };
        if identity.channels().is_empty() {
            return;
        }
        let requests = identity
            .channels()
            .iter()
            .map(|c| SubscriptionRequest::from(c.as_str()))
            .collect();
        let _ = self.subscribe_checked(conn, s, requests, None, false).await;
    }

    async fn subscribe_checked(
        &self,
        conn: &Connection,
        s: &mut Session,
        requests: Vec<SubscriptionRequest>,
        id: Option<&str>,
        check: bool,
    ) -> Flow {
        // Options are checked first: a malformed request subscribes nothing.
        let mut wants = Vec::with_capacity(requests.len());
        for request in &requests {
            match self.want(request.options()) {
                Ok(want) => wants.push(want),
                Err(message) => {
                    return self
                        .error(conn, s, ErrorCode::InvalidMessage, message, id)
                        .await;
                }
            }
        }
        let mut replies: Vec<Wire> = Vec::with_capacity(requests.len());
        let mut joined = false;
        for (request, want) in requests.into_iter().zip(wants) {
            let name = request.channel().to_owned();
            let wants_events = request.options().is_some_and(|o| o.join_leave);
            let failure = |code, reason: String| {
                Wire::from(SubscribeFailure {
                    channel: name.clone(),
                    code,
                    reason,
                })
            };
            let channel = match Channel::new(&name) {
                Err(e) => {
                    replies.push(failure(ErrorCode::InvalidChannel, e.to_string()));
                    continue;
                }
                Ok(channel) => channel,
            };
            if s.subscriptions.contains(&channel) {
                replies.push(SubscribeSuccess::new(name).into());
                continue;
            }
            if s.subscriptions.len() >= self.config.max_subscriptions {
                let max = self.config.max_subscriptions;
                let reason = format!("At most {max} channels per connection");
                replies.push(failure(ErrorCode::TooManySubscriptions, reason));
                continue;
            }
            let data = if check {
                match self.channels.decide(conn, &channel).await {
                    ChannelDecision::Allow { data } => data,
                    ChannelDecision::Deny { reason } => {
                        let reason = reason.unwrap_or_else(|| {
                            "Not allowed to subscribe to this channel".to_owned()
                        });
                        replies.push(failure(ErrorCode::Forbidden, reason));
                        continue;
                    }
                    ChannelDecision::Unavailable { reason } => {
                        let reason =
                            format!("The channel cannot be checked just now ({reason}); retry");
                        replies.push(failure(ErrorCode::Unavailable, reason));
                        continue;
                    }
                }
            } else {
                None
            };
            let room = Room::from(channel.as_str());
            // Join and leave events go to the channel's events room: join
            // it first, so that none is missed once the channel is joined.
            let events = wants_events
                && self
                    .cluster
                    .as_ref()
                    .is_some_and(|c| c.announces_presence(&room));
            if events {
                conn.hub().join(conn.id(), events_room(&room));
            }
            let mut base = SubscribeSuccess::new(name.clone());
            base.data = data;
            base.join_leave = events.then_some(true);
            match &self.cluster {
                Some(cluster) if cluster.keeps_history(&room) => {
                    // The join queues SUBSCRIBE_SUCCESS itself, in order
                    // with the replay and the live publications.
                    let last = match want {
                        Want::Last(n) => u32::try_from(n).ok(),
                        _ => None,
                    };
                    base.last = last;
                    let ack = |joined: &Joined| success_frame(base.clone(), joined, id);
                    match cluster.join_stream(conn.id(), &room, want, ack).await {
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(channel = %name, error = %e, "could not read the channel's stream");
                            let reason =
                                format!("The channel's history is unavailable ({e}); retry");
                            replies.push(failure(ErrorCode::Unavailable, reason));
                            conn.hub().leave(conn.id(), events_room(&room));
                            continue;
                        }
                    }
                }
                _ => {
                    conn.hub().join(conn.id(), room);
                    joined = true;
                    let mut success = base;
                    if matches!(want, Want::Recover(_)) {
                        success.recovered = Some(false);
                        success.reason = Some(NotRecovered::NoHistory);
                    }
                    replies.push(success.into());
                }
            }
            for hook in &self.hooks {
                hook.on_subscribe(conn, &channel);
            }
            s.subscriptions.insert(channel);
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
        Flow::Continue
    }

    /// What a subscription's options ask for; a message naming the problem
    /// when they are malformed. A `last` over the recovery limit is lowered
    /// to it (`SUBSCRIBE_SUCCESS` says how many with its own `last`).
    fn want(&self, options: Option<&SubscribeOptions>) -> Result<Want, String> {
        let Some(options) = options else {
            return Ok(Want::Live);
        };
        let limit = self.config_recovery_limit();
        match (&options.recover, options.last) {
            (Some(_), Some(_)) => Err(format!(
                "{}: set recover or last, not both",
                options.channel
            )),
            (Some(recover), None) => {
                if recover.epoch.is_empty() || recover.epoch.len() > 64 {
                    return Err(format!(
                        "{}: recover.epoch must be 1 to 64 characters",
                        options.channel
                    ));
                }
                let epoch = Epoch::new(recover.epoch.as_str());
                Ok(Want::Recover(StreamPosition::new(epoch, recover.offset)))
            }
            (None, Some(0)) => Err(format!("{}: last must be at least 1", options.channel)),
            (None, Some(last)) => Ok(Want::Last((last as usize).min(limit))),
            (None, None) => Ok(Want::Live),
        }
    }

    /// The most one recovery (or `last`) replays.
    fn config_recovery_limit(&self) -> usize {
        self.cluster.as_ref().map_or(0, |cluster| {
            cluster.node().streams().config().recovery_limit
        })
    }

    pub(super) async fn unsubscribe(&self, conn: &Connection, s: &mut Session, names: &[String]) {
        for name in names {
            let Ok(channel) = Channel::new(name) else {
                continue;
            };
            if s.subscriptions.remove(&channel) {
                let room = Room::from(channel.as_str());
                conn.hub().leave(conn.id(), events_room(&room));
                conn.hub().leave(conn.id(), room);
                for hook in &self.hooks {
                    hook.on_unsubscribe(conn, &channel);
                }
            }
        }
    }
}

/// `SUBSCRIBE_SUCCESS` for a channel with history, answering `correlation`:
/// `success` (its data, `last`, `join_leave`) with the stream's position.
fn success_frame(
    mut success: SubscribeSuccess,
    joined: &Joined,
    correlation: Option<&str>,
) -> Option<Outgoing> {
    success.epoch = Some(joined.position.epoch.to_string());
    success.offset = Some(joined.position.offset);
    if let Some(recovered) = &joined.recovered {
        success.recovered = Some(recovered.is_ok());
        success.reason = recovered.err();
    }
    let envelope = stamp(Wire::from(success), correlation);
    Outgoing::json(&envelope).ok()
}
