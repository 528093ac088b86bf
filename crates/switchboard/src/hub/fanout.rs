//! Sending from the hub: to one connection, a user, rooms, everyone. Each
//! recipient's queue gets the same encoded frame, and queueing never waits:
//! a recipient whose queue is full is evicted with
//! [`crate::codes::SLOW_CONSUMER`] (4002).

use std::collections::HashSet;

use switchboard_ws::CloseCode;

use super::Hub;
use super::id::{ConnectionId, Room, UserId};
use super::members::snapshot;
use crate::codes;
use crate::delivery::{Outgoing, Sender, TrySendError};

/// Rooms up to this size are served while holding their shard lock (a few
/// microseconds); larger ones are copied out first so that joins and leaves
/// on the shard never wait for a long fan-out.
const LOCKED_FANOUT_MAX: usize = 1024;

impl Hub {
    /// Sends to one connection. Returns 1 if it was queued, 0 otherwise.
    pub fn send_to(&self, id: ConnectionId, message: &Outgoing) -> usize {
        match self.sender(id) {
            Some(sender) => self.deliver(id.0, [(id, &sender)], message, None),
            None => 0,
        }
    }

    /// Sends to every connection of a user, except `except`. Returns how many were reached.
    pub fn send_to_user(
        &self,
        user: impl Into<UserId>,
        message: &Outgoing,
        except: Option<ConnectionId>,
    ) -> usize {
        let user = user.into();
        let members = snapshot(self.user_shard(&user), &user);
        self.deliver(0, members.iter().map(|(id, s)| (*id, s)), message, except)
    }

    /// Sends to the members of one room, except `except`.
    pub fn send_to_room(
        &self,
        room: impl Into<Room>,
        message: &Outgoing,
        except: Option<ConnectionId>,
    ) -> usize {
        let room = room.into();
        let shard = self.room_shard(&room).lock();
        let Some(members) = shard.get(&room) else {
            return 0;
        };
        if members.len() <= LOCKED_FANOUT_MAX {
            // Queueing never waits, so a room of this size is served under
            // its shard lock: no copy of the member list per message.
            return self.deliver(0, members.iter().map(|(id, s)| (*id, s)), message, except);
        }
        let members: Vec<(ConnectionId, Sender)> =
            members.iter().map(|(id, s)| (*id, s.clone())).collect();
        drop(shard);
        self.deliver(0, members.iter().map(|(id, s)| (*id, s)), message, except)
    }

    /// Sends to the members of several rooms; a connection in more than one
    /// of them gets the message once.
    pub fn send_to_rooms<R: Into<Room>>(
        &self,
        rooms: impl IntoIterator<Item = R>,
        message: &Outgoing,
        except: Option<ConnectionId>,
    ) -> usize {
        let mut seen = HashSet::new();
        let mut members = Vec::new();
        for room in rooms {
            let room = room.into();
            for (id, sender) in snapshot(self.room_shard(&room), &room) {
                if seen.insert(id) {
                    members.push((id, sender));
                }
            }
        }
        self.deliver(0, members.iter().map(|(id, s)| (*id, s)), message, except)
    }

    /// Sends to every connection, except `except`.
    pub fn broadcast(&self, message: &Outgoing, except: Option<ConnectionId>) -> usize {
        let mut total = 0;
        for shard in self.0.conns.iter() {
            // Queueing never waits: each shard (a 32nd of the connections) is
            // served under its lock, with no copy of its member list.
            let shard = shard.lock();
            let members = shard.iter().map(|(id, e)| (*id, &e.sender));
            total += self.deliver(0, members, message, except);
        }
        total
    }

    /// Closes one connection with `code` and `reason`.
    pub fn close(&self, id: ConnectionId, code: CloseCode, reason: &str) -> bool {
        match self.sender(id) {
            Some(sender) => {
                sender.close(code, reason);
                true
            }
            None => false,
        }
    }

    /// Closes every connection of a user; returns how many.
    pub fn close_user(&self, user: impl Into<UserId>, code: CloseCode, reason: &str) -> usize {
        let user = user.into();
        let members = snapshot(self.user_shard(&user), &user);
        for (_, sender) in &members {
            sender.close(code, reason);
        }
        members.len()
    }

    /// Queues `message` for each recipient without waiting on any of them.
    fn deliver<'a>(
        &self,
        stripe: u64,
        recipients: impl IntoIterator<Item = (ConnectionId, &'a Sender)>,
        message: &Outgoing,
        except: Option<ConnectionId>,
    ) -> usize {
        let (mut delivered, mut dropped, mut evicted) = (0, 0, 0);
        let mut recipients = recipients.into_iter().peekable();
        while let Some((id, sender)) = recipients.next() {
            if let Some((_, next)) = recipients.peek() {
                next.prefetch();
            }
            if Some(id) == except {
                continue;
            }
            match sender.try_send_corked(message.for_recipient(&sender.shared.compression)) {
                Ok(()) => delivered += 1,
                Err(TrySendError::Full) => {
                    sender.evict(codes::SLOW_CONSUMER, "slow consumer");
                    dropped += 1;
                    evicted += 1;
                }
                Err(TrySendError::Closed) => dropped += 1,
            }
        }
        self.0.stats.delivered(stripe, delivered, dropped, evicted);
        delivered
    }
}
