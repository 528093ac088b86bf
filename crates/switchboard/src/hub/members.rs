//! Member sets of rooms and users, each under its shard lock.

use std::collections::HashMap;
use std::hash::Hash;

use parking_lot::Mutex;

use super::id::ConnectionId;
use crate::delivery::Sender;

/// The connections of one room or user, with their senders.
pub(super) type Members = HashMap<ConnectionId, Sender>;

pub(super) fn insert_member<K: Hash + Eq>(
    shard: &Mutex<HashMap<K, Members>>,
    key: K,
    id: ConnectionId,
    sender: Sender,
) {
    shard.lock().entry(key).or_default().insert(id, sender);
}

pub(super) fn remove_member<K: Hash + Eq>(
    shard: &Mutex<HashMap<K, Members>>,
    key: &K,
    id: ConnectionId,
) {
    let mut shard = shard.lock();
    if let Some(members) = shard.get_mut(key) {
        members.remove(&id);
        if members.is_empty() {
            shard.remove(key);
        }
    }
}

pub(super) fn snapshot<K: Hash + Eq>(
    shard: &Mutex<HashMap<K, Members>>,
    key: &K,
) -> Vec<(ConnectionId, Sender)> {
    shard
        .lock()
        .get(key)
        .map(|m| m.iter().map(|(id, s)| (*id, s.clone())).collect())
        .unwrap_or_default()
}
