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

mod id;
mod stats;

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use bytes::Bytes;
use parking_lot::Mutex;
use serde::Serialize;
use switchboard_ws::{CloseCode, CloseFrame, OpCode, OutFrame, Utf8Bytes};

pub use id::{ConnectionId, Room, UserId};
pub use stats::{Stats, StatsSnapshot};

use crate::codes;
use crate::outbound::{Sender, Shared, TrySendError};
use switchboard_ws::deflate::compress_message;

const SHARDS: usize = 32;

/// Rooms up to this size are served while holding their shard lock (a few
/// microseconds); larger ones are copied out first so that joins and leaves
/// on the shard never wait for a long fan-out.
const LOCKED_FANOUT_MAX: usize = 1024;

/// A message encoded once for any number of recipients.
///
/// The plain frame is built once; the compressed frame (for recipients
/// that negotiated permessage-deflate without server context takeover) is
/// built the first time such a recipient needs it, and shared from then on.
#[derive(Debug, Clone)]
pub struct Outgoing {
    frame: OutFrame,
    compressed: Arc<OnceLock<Compressed>>,
}

/// A compressed frame and the parameters it was compressed with.
#[derive(Debug)]
struct Compressed {
    key: (u32, u8),
    frame: Option<OutFrame>,
}

impl PartialEq for Outgoing {
    fn eq(&self, other: &Self) -> bool {
        self.frame == other.frame
    }
}

impl Eq for Outgoing {}

impl Outgoing {
    fn new(frame: OutFrame) -> Self {
        Self {
            frame,
            compressed: Arc::new(OnceLock::new()),
        }
    }

    /// A text message.
    pub fn text(text: impl Into<Utf8Bytes>) -> Self {
        Self::new(OutFrame::new(OpCode::Text, text.into().into_bytes()))
    }

    /// A binary message.
    pub fn binary(data: impl Into<Bytes>) -> Self {
        Self::new(OutFrame::new(OpCode::Binary, data.into()))
    }

    /// `value` serialised as JSON text.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        Ok(Self::text(serde_json::to_string(value)?))
    }

    /// The encoded (uncompressed) frame.
    pub fn frame(&self) -> &OutFrame {
        &self.frame
    }

    /// The frame for one recipient: the shared compressed frame when its
    /// compression parameters allow sharing, else the plain frame (the
    /// recipient's writer compresses it if it keeps a context of its own).
    pub(crate) fn for_connection(&self, shared: &Shared) -> OutFrame {
        let Some(params) = shared.deflate else {
            return self.frame.clone();
        };
        let (Some(opcode), Some(bits)) = (self.frame.opcode(), params.server_window_bits) else {
            return self.frame.clone();
        };
        if !params.server_no_context_takeover || !params.compresses(self.frame.payload.len()) {
            return self.frame.clone();
        }
        let key = (params.level, bits);
        let cached = self.compressed.get_or_init(|| Compressed {
            key,
            frame: compress_message(&self.frame.payload, &params)
                .map(|packed| OutFrame::with_rsv1(opcode, packed, true)),
        });
        match &cached.frame {
            Some(frame) if cached.key == key => frame.clone(),
            _ => shared.encode(opcode, self.frame.payload.clone()),
        }
    }
}

/// What the hub knows about a connection.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// The connection's id.
    pub id: ConnectionId,
    /// The authenticated user, if any.
    pub user: Option<UserId>,
    /// The peer's address.
    pub client_addr: SocketAddr,
    /// The request path.
    pub path: String,
    /// When the connection was accepted.
    #[serde(serialize_with = "as_unix_seconds")]
    pub connected_at: SystemTime,
}

fn as_unix_seconds<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    s.serialize_f64(secs)
}

/// Lifecycle hooks. Every method has an empty default; they run inline on
/// the task that caused the event, so keep them short (spawn for real work).
pub trait HubHooks: Send + Sync + 'static {
    /// A connection was accepted and registered.
    fn on_connect(&self, _hub: &Hub, _info: &ConnectionInfo) {}
    /// A connection ended, with the close code and reason it ended with
    /// (1006 when it dropped without a close frame).
    fn on_disconnect(&self, _hub: &Hub, _info: &ConnectionInfo, _close: &CloseFrame) {}
    /// A handler ended with an error.
    fn on_error(&self, _hub: &Hub, _info: &ConnectionInfo, _error: &crate::Error) {}
    /// A connection joined a room.
    fn on_join(&self, _hub: &Hub, _id: ConnectionId, _room: &Room) {}
    /// A connection was attached to a user with [`Hub::identify`] (`old` is
    /// the user it had before, if any).
    fn on_identify(&self, _hub: &Hub, _id: ConnectionId, _old: Option<&UserId>, _new: &UserId) {}
    /// A connection left a room (explicitly or by disconnecting).
    fn on_leave(&self, _hub: &Hub, _id: ConnectionId, _room: &Room) {}
}

#[derive(Debug)]
struct Entry {
    sender: Sender,
    info: ConnectionInfo,
    rooms: HashSet<Room>,
    state: http::Extensions,
}

type Members = HashMap<ConnectionId, Sender>;

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
        error: Option<&crate::Error>,
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
        for (id, sender) in recipients {
            if Some(id) == except {
                continue;
            }
            match sender.try_send_frame(message.for_connection(&sender.shared)) {
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

fn insert_member<K: Hash + Eq>(
    shard: &Mutex<HashMap<K, Members>>,
    key: K,
    id: ConnectionId,
    sender: Sender,
) {
    shard.lock().entry(key).or_default().insert(id, sender);
}

fn remove_member<K: Hash + Eq>(shard: &Mutex<HashMap<K, Members>>, key: &K, id: ConnectionId) {
    let mut shard = shard.lock();
    if let Some(members) = shard.get_mut(key) {
        members.remove(&id);
        if members.is_empty() {
            shard.remove(key);
        }
    }
}

fn snapshot<K: Hash + Eq>(
    shard: &Mutex<HashMap<K, Members>>,
    key: &K,
) -> Vec<(ConnectionId, Sender)> {
    shard
        .lock()
        .get(key)
        .map(|m| m.iter().map(|(id, s)| (*id, s.clone())).collect())
        .unwrap_or_default()
}
