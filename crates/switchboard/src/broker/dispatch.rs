//! Where a [`Target`] is on this instance: the one place a target becomes
//! sends (or closes) through the hub.

use crate::hub::{ConnectionId, Hub, Outgoing};

use super::envelope::Target;
use super::instance::InstanceId;

impl Target {
    /// Sends `message` to this target's connections in `hub`, except
    /// `except`; returns how many it was queued for. `here` is this
    /// instance: a connection address of another instance has no recipient
    /// here. With `None` the hub is the whole system, and every connection
    /// address is local.
    pub(crate) fn send_local(
        &self,
        hub: &Hub,
        here: Option<&InstanceId>,
        message: &Outgoing,
        except: Option<ConnectionId>,
    ) -> usize {
        match self {
            Self::Room(room) => hub.send_to_room(room.clone(), message, except),
            Self::User(user) => hub.send_to_user(user.clone(), message, except),
            Self::Connection(_) => match self.local_connection(here) {
                Some(id) if Some(id) != except => hub.send_to(id, message),
                _ => 0,
            },
            Self::All => hub.broadcast(message, except),
        }
    }

    /// This target's connections in `hub` (see [`Target::send_local`] for `here`).
    pub(crate) fn members_local(&self, hub: &Hub, here: Option<&InstanceId>) -> Vec<ConnectionId> {
        match self {
            Self::Room(room) => hub.room_members(room.clone()),
            Self::User(user) => hub.user_connections(user.clone()),
            Self::Connection(_) => self.local_connection(here).into_iter().collect(),
            Self::All => hub.connections().iter().map(|c| c.id).collect(),
        }
    }

    fn local_connection(&self, here: Option<&InstanceId>) -> Option<ConnectionId> {
        let Self::Connection(addr) = self else {
            return None;
        };
        match here {
            Some(instance) if addr.instance != *instance => None,
            _ => Some(addr.id),
        }
    }
}
