//! The presence worker: one task per instance that applies the hub's
//! changes to the broker in order, announces joins and leaves, sends the
//! leaves whose grace ran out, and puts the broker's entries right again
//! after a failure.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use switchboard_protocol::payload::Event;
use switchboard_protocol::{JOIN_EVENT, LEAVE_EVENT, Message};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::MissedTickBehavior;

use super::config::{JoinLeave, PresenceConfig};
use super::hooks::{Op, local_member};
use super::types::{Member, PresenceChange, PresenceEvent};
use crate::broker::{Body, Broker, BrokerError, Envelope, LocalNode, Payload, Target};
use crate::hub::Room;
use crate::stamp::stamp;

/// How often a failed broker is asked to take this instance's entries
/// again.
const RESYNC_EVERY: Duration = Duration::from_secs(1);

pub(crate) async fn run(
    node: LocalNode,
    broker: Arc<dyn Broker>,
    config: Arc<PresenceConfig>,
    mut ops: UnboundedReceiver<Op>,
) {
    let w = Worker {
        node,
        broker,
        config,
    };
    let mut sweep = tokio::time::interval(w.sweep_every());
    sweep.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut resync = tokio::time::interval(RESYNC_EVERY);
    resync.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let sweeps = w.has_grace();
    // Entries this instance left in the broker before (a restart with the
    // same instance id) go, with their leaves.
    let mut dirty = w.resync().await.is_err();
    loop {
        let result = tokio::select! {
            op = ops.recv() => match op {
                Some(Op::Resync) => w.resync().await,
                Some(op) => w.apply(op).await,
                None => return,
            },
            _ = sweep.tick(), if sweeps => w.sweep().await,
            _ = resync.tick(), if dirty => w.resync().await,
        };
        match result {
            Ok(Progress::Resynced) => {
                if dirty {
                    tracing::info!("presence entries of this instance are in the broker again");
                }
                dirty = false;
            }
            Ok(Progress::Done) => {}
            Err(e) => {
                if !dirty {
                    tracing::warn!(error = %e, "presence could not be updated; retrying until the broker takes it");
                }
                dirty = true;
            }
        }
    }
}

enum Progress {
    Done,
    Resynced,
}

struct Worker {
    node: LocalNode,
    broker: Arc<dyn Broker>,
    config: Arc<PresenceConfig>,
}

impl Worker {
    fn mode(&self, room: &Room) -> JoinLeave {
        self.config
            .rule_for(room.as_str())
            .map_or(JoinLeave::Off, |r| r.join_leave)
    }

    fn has_grace(&self) -> bool {
        !self.config.grace.is_zero()
            && self
                .config
                .rules
                .iter()
                .any(|r| r.join_leave == JoinLeave::User)
    }

    /// Leaves are sent within about a fifth of the grace of its end.
    fn sweep_every(&self) -> Duration {
        (self.config.grace / 5).clamp(Duration::from_millis(50), Duration::from_secs(1))
    }

    async fn apply(&self, op: Op) -> Result<Progress, BrokerError> {
        match op {
            Op::Add(room, id) => {
                let (hub, instance) = (self.node.hub(), self.node.instance());
                let Some(member) = local_member(hub, instance, id, &room) else {
                    return Ok(Progress::Done);
                };
                let mode = self.mode(&room);
                if self.broker.presence_add(&room, &member, mode).await? && mode != JoinLeave::Off {
                    self.announce(PresenceEvent::new(room, PresenceChange::Join, member))
                        .await;
                }
            }
            Op::Remove(room, addr) => {
                let mode = self.mode(&room);
                let left = self
                    .broker
                    .presence_remove(&room, &addr, mode, self.config.grace)
                    .await?;
                if let Some(member) = left
                    && mode != JoinLeave::Off
                {
                    self.announce(PresenceEvent::new(room, PresenceChange::Leave, member))
                        .await;
                }
            }
            Op::Announce(events) => self.announce_all(events).await,
            Op::Resync => return self.resync().await,
        }
        Ok(Progress::Done)
    }

    async fn sweep(&self) -> Result<Progress, BrokerError> {
        for (room, member) in self.broker.presence_due().await? {
            if self.mode(&room) == JoinLeave::User {
                self.announce(PresenceEvent::new(room, PresenceChange::Leave, member))
                    .await;
            }
        }
        Ok(Progress::Done)
    }

    /// Hands the broker every local member of a channel with presence; it
    /// drops this instance's other entries, with their leaves.
    async fn resync(&self) -> Result<Progress, BrokerError> {
        let (hub, instance) = (self.node.hub(), self.node.instance());
        let mut local: Vec<(Room, Member)> = Vec::new();
        for (room, _) in hub.rooms() {
            if !self.config.keeps(room.as_str()) {
                continue;
            }
            for id in hub.room_members(room.clone()) {
                if let Some(member) = local_member(hub, instance, id, &room) {
                    local.push((room.clone(), member));
                }
            }
        }
        let events = self.broker.presence_resync(&local).await?;
        self.announce_all(events).await;
        Ok(Progress::Resynced)
    }

    async fn announce_all(&self, events: Vec<PresenceEvent>) {
        for event in events {
            if self.mode(&event.channel) != JoinLeave::Off {
                self.announce(event).await;
            }
        }
    }

    /// Sends a join or leave to the channel's subscribers that asked for
    /// them, on every instance. Not kept in the channel's history; lost (and logged) when
    /// the broker is down at that moment.
    async fn announce(&self, event: PresenceEvent) {
        let except = match event.change {
            PresenceChange::Join => Some(event.member.connection.clone()),
            PresenceChange::Leave => None,
        };
        let envelope = Envelope::new(
            Target::Room(super::events_room(&event.channel)),
            Body::Message(Payload::text(event_frame(&event))),
        )
        .with_origin(self.node.instance().clone())
        .with_except(except);
        self.node.apply(&envelope);
        if let Err(e) = self.broker.publish(&envelope).await {
            tracing::warn!(channel = %event.channel, error = %e, "a presence event reached this instance only");
        }
    }
}

/// `EVENT` `switchboard.join` / `switchboard.leave` on the channel, with
/// the member as its data.
pub(crate) fn event_frame(event: &PresenceEvent) -> String {
    let name = match event.change {
        PresenceChange::Join => JOIN_EVENT,
        PresenceChange::Leave => LEAVE_EVENT,
    };
    let data = serde_json::to_value(&event.member).unwrap_or_else(|_| json!({}));
    let mut message = Message::from(Event::new(name, data));
    message.set_channel(event.channel.as_str());
    // An envelope of strings and JSON values always serialises.
    serde_json::to_string(&stamp(message, None)).unwrap_or_else(|_| "{}".to_owned())
}
