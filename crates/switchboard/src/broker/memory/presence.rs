//! Presence for the in-memory broker: every instance on a bus shares one
//! table. Channels are sharded; held leaves have a table of their own.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::broker::ConnectionAddr;
use crate::broker::presence::{JoinLeave, Member, Presence, PresenceStats};
use crate::hub::{Room, UserId};

const SHARDS: usize = 16;

#[derive(Debug)]
pub(super) struct PresenceTable {
    shards: Vec<Mutex<HashMap<Room, Channel>>>,
    /// Leaves waiting for their grace to end. Lock order: a shard, then this.
    pending: Mutex<HashMap<(Room, UserId), (Instant, Member)>>,
}

#[derive(Debug, Default)]
struct Channel {
    members: HashMap<ConnectionAddr, Member>,
    /// Connections per authenticated user.
    users: HashMap<UserId, u32>,
}

impl Default for PresenceTable {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            pending: Mutex::default(),
        }
    }
}

impl PresenceTable {
    fn shard(&self, room: &Room) -> &Mutex<HashMap<Room, Channel>> {
        let mut h = DefaultHasher::new();
        room.hash(&mut h);
        &self.shards[(h.finish() as usize) % SHARDS]
    }

    pub(super) fn add(&self, room: &Room, member: &Member, mode: JoinLeave) -> bool {
        let mut shard = self.shard(room).lock();
        let channel = shard.entry(room.clone()).or_default();
        if channel
            .members
            .insert(member.connection.clone(), member.clone())
            .is_some()
        {
            return false;
        }
        let Some(user) = &member.user else {
            return true;
        };
        let count = channel.users.entry(user.clone()).or_default();
        *count += 1;
        if mode != JoinLeave::User {
            return true;
        }
        if *count > 1 {
            return false;
        }
        // Back within a held leave's grace: neither is sent.
        self.pending
            .lock()
            .remove(&(room.clone(), user.clone()))
            .is_none()
    }

    pub(super) fn remove(
        &self,
        room: &Room,
        addr: &ConnectionAddr,
        mode: JoinLeave,
        grace: Duration,
    ) -> Option<Member> {
        let mut shard = self.shard(room).lock();
        let channel = shard.get_mut(room)?;
        let member = channel.members.remove(addr)?;
        let mut last = false;
        if let Some(user) = &member.user
            && let Some(count) = channel.users.get_mut(user)
        {
            *count -= 1;
            if *count == 0 {
                channel.users.remove(user);
                last = true;
            }
        }
        if channel.members.is_empty() {
            shard.remove(room);
        }
        let Some(user) = member.user.clone() else {
            return Some(member);
        };
        match mode {
            JoinLeave::User if !last => None,
            JoinLeave::User if !grace.is_zero() => {
                let due = Instant::now() + grace;
                self.pending
                    .lock()
                    .insert((room.clone(), user), (due, member));
                None
            }
            _ => Some(member),
        }
    }

    /// Takes the held leaves whose grace ended.
    pub(super) fn due(&self) -> Vec<(Room, Member)> {
        let now = Instant::now();
        let mut pending = self.pending.lock();
        let keys: Vec<(Room, UserId)> = pending
            .iter()
            .filter(|(_, (due, _))| *due <= now)
            .map(|(k, _)| k.clone())
            .collect();
        keys.into_iter()
            .filter_map(|k| pending.remove(&k).map(|(_, m)| (k.0, m)))
            .collect()
    }

    pub(super) fn presence(&self, room: &Room, max: usize) -> Presence {
        let shard = self.shard(room).lock();
        let Some(channel) = shard.get(room) else {
            return Presence::default();
        };
        let members = channel.members.values().take(max).cloned().collect();
        Presence::new(members, stats(channel))
    }

    pub(super) fn stats(&self, room: &Room) -> PresenceStats {
        self.shard(room)
            .lock()
            .get(room)
            .map(stats)
            .unwrap_or_default()
    }
}

fn stats(channel: &Channel) -> PresenceStats {
    PresenceStats::new(channel.members.len() as u64, channel.users.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::InstanceId;
    use crate::hub::ConnectionId;

    fn member(id: u64, user: Option<&str>) -> Member {
        let addr = ConnectionAddr::new(InstanceId::new("a").unwrap(), ConnectionId(id));
        Member::new(addr, user.map(UserId::from))
    }

    #[test]
    fn a_user_joins_with_the_first_connection_and_leaves_with_the_last() {
        let t = PresenceTable::default();
        let room = Room::from("chat");
        assert!(t.add(&room, &member(1, Some("alice")), JoinLeave::User));
        assert!(!t.add(&room, &member(2, Some("alice")), JoinLeave::User));
        assert!(
            !t.add(&room, &member(2, Some("alice")), JoinLeave::User),
            "again: no-op"
        );
        assert!(
            t.add(&room, &member(3, None), JoinLeave::User),
            "anonymous: per connection"
        );
        assert_eq!(t.stats(&room), PresenceStats::new(3, 1));
        let zero = Duration::ZERO;
        assert_eq!(
            t.remove(&room, &member(1, None).connection, JoinLeave::User, zero),
            None
        );
        let left = t.remove(&room, &member(2, None).connection, JoinLeave::User, zero);
        assert_eq!(left.unwrap().user, Some(UserId::from("alice")));
        assert_eq!(t.stats(&room), PresenceStats::new(1, 0));
        assert!(
            t.remove(&room, &member(9, None).connection, JoinLeave::User, zero)
                .is_none()
        );
    }

    #[test]
    fn a_user_back_within_the_grace_sends_neither_and_one_who_is_not_leaves_once() {
        let t = PresenceTable::default();
        let room = Room::from("chat");
        let grace = Duration::from_millis(30);
        assert!(t.add(&room, &member(1, Some("bob")), JoinLeave::User));
        assert_eq!(
            t.remove(&room, &member(1, None).connection, JoinLeave::User, grace),
            None
        );
        assert_eq!(
            t.stats(&room),
            PresenceStats::new(0, 0),
            "counts change at once"
        );
        assert!(
            !t.add(&room, &member(2, Some("bob")), JoinLeave::User),
            "a reload"
        );
        assert_eq!(
            t.remove(&room, &member(2, None).connection, JoinLeave::User, grace),
            None
        );
        assert!(t.due().is_empty());
        std::thread::sleep(grace * 2);
        let due = t.due();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].1.connection, member(2, None).connection);
        assert!(t.due().is_empty(), "handed out once");
    }

    #[test]
    fn connection_mode_announces_every_connection_at_once() {
        let t = PresenceTable::default();
        let room = Room::from("doc");
        let grace = Duration::from_secs(60);
        assert!(t.add(&room, &member(1, Some("carol")), JoinLeave::Connection));
        assert!(t.add(&room, &member(2, Some("carol")), JoinLeave::Connection));
        let c = JoinLeave::Connection;
        assert!(
            t.remove(&room, &member(1, None).connection, c, grace)
                .is_some()
        );
        assert!(
            t.remove(&room, &member(2, None).connection, c, grace)
                .is_some()
        );
        assert!(t.due().is_empty());
    }
}
