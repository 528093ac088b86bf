//! Hub hooks that turn joins, leaves and identifications of channels with
//! presence into operations for the presence worker, in the order the hub
//! made them.

use std::sync::Arc;

use tokio::sync::mpsc::UnboundedSender;

use super::config::PresenceConfig;
use super::types::{Member, PresenceInfo};
use crate::broker::{ConnectionAddr, InstanceId};
use crate::hub::{ConnectionId, Hub, HubHooks, Room, UserId};

/// One change for the worker.
#[derive(Debug)]
pub(crate) enum Op {
    /// A connection joined a channel with presence.
    Add(Room, ConnectionId),
    /// A connection left one (or disconnected).
    Remove(Room, ConnectionAddr),
    /// Join and leave events found by the broker (a reaped instance).
    Announce(Vec<super::PresenceEvent>),
    /// Make the broker's entries for this instance match the hub again
    /// (after the broker lost some, or could not take them).
    Resync,
}

#[derive(Debug)]
pub(crate) struct PresenceHooks {
    pub(crate) config: Arc<PresenceConfig>,
    pub(crate) instance: InstanceId,
    pub(crate) ops: UnboundedSender<Op>,
}

impl PresenceHooks {
    fn send(&self, op: Op) {
        // The worker is gone only when the cluster is: nothing to keep.
        let _ = self.ops.send(op);
    }
}

impl HubHooks for PresenceHooks {
    fn on_join(&self, _hub: &Hub, id: ConnectionId, room: &Room) {
        if self.config.keeps(room.as_str()) {
            self.send(Op::Add(room.clone(), id));
        }
    }

    fn on_leave(&self, _hub: &Hub, id: ConnectionId, room: &Room) {
        if self.config.keeps(room.as_str()) {
            let addr = ConnectionAddr::new(self.instance.clone(), id);
            self.send(Op::Remove(room.clone(), addr));
        }
    }

    fn on_identify(&self, hub: &Hub, id: ConnectionId, _old: Option<&UserId>, _new: &UserId) {
        // The member's user changed: its entries go and come back.
        for room in hub.rooms_of(id) {
            if self.config.keeps(room.as_str()) {
                let addr = ConnectionAddr::new(self.instance.clone(), id);
                self.send(Op::Remove(room.clone(), addr));
                self.send(Op::Add(room, id));
            }
        }
    }
}

/// The member a local connection is, as the hub knows it now; `None` when
/// it is no longer in `room` (it left before the worker got to it).
pub(crate) fn local_member(
    hub: &Hub,
    instance: &InstanceId,
    id: ConnectionId,
    room: &Room,
) -> Option<Member> {
    if !hub.rooms_of(id).contains(room) {
        return None;
    }
    let info = hub.info(id)?;
    let extra = hub.state::<PresenceInfo>(id).map(|i| (*i.0).clone());
    Some(Member::new(ConnectionAddr::new(instance.clone(), id), info.user).with_info(extra))
}
