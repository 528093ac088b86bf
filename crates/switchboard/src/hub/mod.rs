//! The hub: every live connection, its user and its rooms, and sending to
//! any of them from anywhere.
//!
//! Connections are registered when a handler accepts its upgrade and removed
//! when the connection ends, with all their memberships. The registry is
//! sharded: an operation locks one shard briefly and never across an
//! `.await`. A message for many recipients is encoded once ([`Outgoing`]);
//! each recipient's queue gets the same shared bytes. A recipient whose
//! queue is full is evicted with [`crate::codes::SLOW_CONSUMER`] (4002)
//! rather than slowing anyone else down.
//!
//! # Layout
//! - this file: [`Hub`], the sharded registry (register, identify, join,
//!   leave, look-ups).
//! - `fanout`: sending to connections, users, rooms and everyone.
//! - `hooks`: [`HubHooks`]; `info`: [`ConnectionInfo`]; `id`: the names.
//! - `members`: the member sets of rooms and users.
//!
//! Below the hub is `delivery` (queues, writers); the hub knows nothing of
//! handshakes, security or brokers.

mod fanout;
mod hooks;
mod id;
mod info;
mod members;

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use switchboard_ws::CloseFrame;

pub use crate::delivery::{Outgoing, Stats, StatsSnapshot};
pub use hooks::HubHooks;
pub use id::{ConnectionId, Room, UserId};
pub use info::ConnectionInfo;

use crate::delivery::Sender;
use members::{Members, insert_member, remove_member};

const SHARDS: usize = 32;

#[derive(Debug)]
struct Entry {
    sender: Sender,
    info: ConnectionInfo,
    rooms: HashSet<Room>,
    state: http::Extensions,
}

struct Inner {
    next_id: AtomicU64,
    conns: Box<[Mutex<HashMap<ConnectionId, Entry>>]>,
    rooms: Box<[Mutex<HashMap<Room, Members>>]>,
    users: Box<[Mutex<HashMap<UserId, Members>>]>,
    hasher: std::collections::hash_map::RandomState,
    stats: Arc<Stats>,
    hooks: Mutex<Vec<Arc<dyn HubHooks>>>,
    /// Set once shutdown starts: connections registered later are closed at once.
    closing: Mutex<Option<CloseFrame>>,
}

/// The connection registry. Cheap to clone; every clone is the same hub.
#[derive(Clone)]
pub struct Hub(Arc<Inner>);

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("connections", &self.connection_count())
            .finish_non_exhaustive()
    }
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

fn shards<T: Default>() -> Box<[Mutex<T>]> {
    (0..SHARDS).map(|_| Mutex::new(T::default())).collect()
}

impl Hub {
    /// An empty hub.
    pub fn new() -> Self {
        Self(Arc::new(Inner {
            next_id: AtomicU64::new(1),
            conns: shards(),
            rooms: shards(),
            users: shards(),
            hasher: Default::default(),
            stats: Arc::new(Stats::default()),
            hooks: Mutex::new(Vec::new()),
            closing: Mutex::new(None),
        }))
    }

    /// Adds lifecycle hooks.
    pub fn add_hooks(&self, hooks: impl HubHooks) {
        self.0.hooks.lock().push(Arc::new(hooks));
    }

    fn hooks(&self) -> Vec<Arc<dyn HubHooks>> {
        self.0.hooks.lock().clone()
    }

    fn conn_shard(&self, id: ConnectionId) -> &Mutex<HashMap<ConnectionId, Entry>> {
        &self.0.conns[id.0 as usize % SHARDS]
    }

    fn room_shard(&self, room: &Room) -> &Mutex<HashMap<Room, Members>> {
        &self.0.rooms[self.0.hasher.hash_one(room) as usize % SHARDS]
    }

    fn user_shard(&self, user: &UserId) -> &Mutex<HashMap<UserId, Members>> {
        &self.0.users[self.0.hasher.hash_one(user) as usize % SHARDS]
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.0.stats
    }

    pub(crate) fn stats_handle(&self) -> Arc<Stats> {
        Arc::clone(&self.0.stats)
    }

    pub(crate) fn next_id(&self) -> ConnectionId {
        ConnectionId(self.0.next_id.fetch_add(1, Ordering::Relaxed))
    }

    pub(crate) fn register(&self, sender: Sender, info: ConnectionInfo) {
        let id = info.id;
        if let Some(user) = &info.user {
            insert_member(self.user_shard(user), user.clone(), id, sender.clone());
        }
        let shared = Arc::clone(&sender.shared);
        let hooks = self.hooks();
        let seen = if hooks.is_empty() {
            None
        } else {
            Some(info.clone())
        };
        let entry = Entry {
            sender,
            info,
            rooms: HashSet::new(),
            state: http::Extensions::new(),
        };
        // Insert before looking at `closing`: a shutdown that starts meanwhile
        // either finds this entry or is seen here.
        self.conn_shard(id).lock().insert(id, entry);
        let closing = self.0.closing.lock().clone();
        if let Some(frame) = closing {
            shared.push_close(frame);
        }
        if let Some(info) = seen {
            for hook in &hooks {
                hook.on_connect(self, &info);
            }
        }
    }

    pub(crate) fn unregister(
        &self,
        id: ConnectionId,
        close: &CloseFrame,
        error: Option<&crate::error::Error>,
    ) {
        // Lock order everywhere: connection shard, then room or user shard.
        // Holding the connection shard while the memberships go means no
        // join or identify can slip in between and leave one behind.
        let entry = {
            let mut conns = self.conn_shard(id).lock();
            let Some(entry) = conns.remove(&id) else {
                return;
            };
            for room in &entry.rooms {
                remove_member(self.room_shard(room), room, id);
            }
            if let Some(user) = &entry.info.user {
                remove_member(self.user_shard(user), user, id);
            }
            entry
        };
        let hooks = self.hooks();
        for hook in &hooks {
            if let Some(error) = error {
                hook.on_error(self, &entry.info, error);
            }
            for room in &entry.rooms {
                hook.on_leave(self, id, room);
            }
            hook.on_disconnect(self, &entry.info, close);
        }
    }

    /// Starts closing every connection with `frame`, and every connection
    /// registered from now on.
    pub(crate) fn close_all(&self, frame: &CloseFrame) {
        *self.0.closing.lock() = Some(frame.clone());
        for shard in self.0.conns.iter() {
            let senders: Vec<Sender> = shard.lock().values().map(|e| e.sender.clone()).collect();
            for sender in senders {
                sender.shared.push_close(frame.clone());
            }
        }
    }

    /// Attaches a user to a connection (after authentication).
    pub fn identify(&self, id: ConnectionId, user: impl Into<UserId>) -> bool {
        let user: UserId = user.into();
        let old = {
            let mut conns = self.conn_shard(id).lock();
            let Some(entry) = conns.get_mut(&id) else {
                return false;
            };
            let old = entry.info.user.replace(user.clone());
            if let Some(old) = &old {
                remove_member(self.user_shard(old), old, id);
            }
            insert_member(
                self.user_shard(&user),
                user.clone(),
                id,
                entry.sender.clone(),
            );
            old
        };
        for hook in self.hooks() {
            hook.on_identify(self, id, old.as_ref(), &user);
        }
        true
    }

    /// Live connections.
    pub fn connection_count(&self) -> usize {
        self.0.conns.iter().map(|s| s.lock().len()).sum()
    }

    /// Every live connection's info.
    pub fn connections(&self) -> Vec<ConnectionInfo> {
        self.0
            .conns
            .iter()
            .flat_map(|s| {
                s.lock()
                    .values()
                    .map(|e| e.info.clone())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// One connection's info.
    pub fn info(&self, id: ConnectionId) -> Option<ConnectionInfo> {
        self.conn_shard(id).lock().get(&id).map(|e| e.info.clone())
    }

    /// A sender for one connection.
    pub fn sender(&self, id: ConnectionId) -> Option<Sender> {
        self.conn_shard(id)
            .lock()
            .get(&id)
            .map(|e| e.sender.clone())
    }

    /// Attaches typed state to a connection (replacing any of the same type).
    pub fn set_state<T: Clone + Send + Sync + 'static>(&self, id: ConnectionId, value: T) -> bool {
        match self.conn_shard(id).lock().get_mut(&id) {
            Some(entry) => {
                entry.state.insert(value);
                true
            }
            None => false,
        }
    }

    /// A copy of a connection's typed state.
    pub fn state<T: Clone + Send + Sync + 'static>(&self, id: ConnectionId) -> Option<T> {
        self.conn_shard(id)
            .lock()
            .get(&id)
            .and_then(|e| e.state.get::<T>().cloned())
    }

    /// Adds a connection to a room; `false` if it was already a member or is gone.
    pub fn join(&self, id: ConnectionId, room: impl Into<Room>) -> bool {
        let room = room.into();
        {
            let mut conns = self.conn_shard(id).lock();
            let Some(entry) = conns.get_mut(&id) else {
                return false;
            };
            if !entry.rooms.insert(room.clone()) {
                return false;
            }
            insert_member(
                self.room_shard(&room),
                room.clone(),
                id,
                entry.sender.clone(),
            );
        }
        for hook in self.hooks() {
            hook.on_join(self, id, &room);
        }
        true
    }

    /// Removes a connection from a room; `false` if it was not a member.
    pub fn leave(&self, id: ConnectionId, room: impl Into<Room>) -> bool {
        let room = room.into();
        {
            let mut conns = self.conn_shard(id).lock();
            let Some(entry) = conns.get_mut(&id) else {
                return false;
            };
            if !entry.rooms.remove(&room) {
                return false;
            }
            remove_member(self.room_shard(&room), &room, id);
        }
        for hook in self.hooks() {
            hook.on_leave(self, id, &room);
        }
        true
    }

    /// The members of a room.
    pub fn room_members(&self, room: impl Into<Room>) -> Vec<ConnectionId> {
        let room = room.into();
        self.room_shard(&room)
            .lock()
            .get(&room)
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default()
    }

    /// How many connections are in a room.
    pub fn room_size(&self, room: impl Into<Room>) -> usize {
        let room = room.into();
        self.room_shard(&room)
            .lock()
            .get(&room)
            .map_or(0, HashMap::len)
    }

    /// The rooms a connection is in.
    pub fn rooms_of(&self, id: ConnectionId) -> Vec<Room> {
        self.conn_shard(id)
            .lock()
            .get(&id)
            .map(|e| e.rooms.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Every room with at least one member, with its size.
    pub fn rooms(&self) -> Vec<(Room, usize)> {
        self.0
            .rooms
            .iter()
            .flat_map(|s| {
                s.lock()
                    .iter()
                    .map(|(r, m)| (r.clone(), m.len()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The connections of a user.
    pub fn user_connections(&self, user: impl Into<UserId>) -> Vec<ConnectionId> {
        let user = user.into();
        self.user_shard(&user)
            .lock()
            .get(&user)
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default()
    }
}
