//! This instance's streams: a cursor for each channel with history that
//! has local subscribers (or a connection joining), and the queue of
//! channels whose cursor must read the stream back.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{Notify, OnceCell};
use tokio::time::Instant;

use super::config::HistoryConfig;
use super::cursor::{Cursor, Held, Offered};
use super::types::StreamPosition;
use crate::hub::{Hub, Room};

const SHARDS: usize = 32;

/// One shard of the registry: channels and their cursors.
type Shard = Mutex<HashMap<Room, Arc<Cell>>>;

/// A cursor, and its one-time start (reading where the stream stands).
#[derive(Debug)]
pub(crate) struct Cell {
    pub(crate) cursor: Mutex<Cursor>,
    pub(crate) started: OnceCell<()>,
}

/// The cursors of one instance.
#[derive(Debug)]
pub(crate) struct Streams {
    config: HistoryConfig,
    shards: Box<[Shard]>,
    hasher: std::collections::hash_map::RandomState,
    repairs: Repairs,
}

/// Channels to read back, each with the time it is due.
#[derive(Debug, Default)]
struct Repairs {
    due: Mutex<HashMap<Room, Instant>>,
    notify: Notify,
}

impl Streams {
    pub(crate) fn new(config: HistoryConfig) -> Self {
        Self {
            config,
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: Default::default(),
            repairs: Repairs::default(),
        }
    }

    pub(crate) fn config(&self) -> &HistoryConfig {
        &self.config
    }

    fn shard(&self, room: &Room) -> &Shard {
        &self.shards[self.hasher.hash_one(room) as usize % SHARDS]
    }

    /// The cursor of `room`, if it has one.
    pub(crate) fn get(&self, room: &Room) -> Option<Arc<Cell>> {
        self.shard(room).lock().get(room).cloned()
    }

    /// The cursor of `room`, made (not started) if it has none; true when made.
    pub(crate) fn get_or_create(&self, room: &Room) -> (Arc<Cell>, bool) {
        let mut shard = self.shard(room).lock();
        if let Some(cell) = shard.get(room) {
            return (Arc::clone(cell), false);
        }
        let cell = Arc::new(Cell {
            cursor: Mutex::new(Cursor::new(room.clone())),
            started: OnceCell::new(),
        });
        shard.insert(room.clone(), Arc::clone(&cell));
        (cell, true)
    }

    /// Whether `room` has a cursor (its broker topic is needed).
    pub(crate) fn contains(&self, room: &Room) -> bool {
        self.shard(room).lock().contains_key(room)
    }

    /// Every room with a cursor.
    pub(crate) fn rooms(&self) -> Vec<Room> {
        self.shards
            .iter()
            .flat_map(|s| s.lock().keys().cloned().collect::<Vec<_>>())
            .collect()
    }

    /// Hands a publication to its channel's cursor; returns the local
    /// connections it is for. Without a cursor (no connection subscribed
    /// through [`crate::broker::Cluster::join_stream`]), members that joined
    /// the hub room directly get it at once, as it arrives: no order across
    /// publishers and no recovery for them.
    pub(crate) fn offer(&self, hub: &Hub, room: &Room, at: &StreamPosition, held: Held) -> usize {
        let Some(cell) = self.get(room) else {
            return hub.send_to_room(room.clone(), &held.frame, held.except);
        };
        let (offered, gap) = {
            let mut cursor = cell.cursor.lock();
            let offered = cursor.offer(hub, at, held);
            (offered, gap_due(&cursor, self.config.repair_after))
        };
        if let Some(due) = gap {
            self.schedule(room, due);
        }
        match offered {
            Offered::Delivered(n) => n,
            Offered::Held => hub.room_size(room.clone()),
            Offered::Duplicate | Offered::Dropped => 0,
        }
    }

    /// Drops `room`'s cursor once nothing local needs it (no member, no
    /// connection joining). True when dropped.
    pub(crate) fn release_if_unused(&self, hub: &Hub, room: &Room) -> bool {
        let mut shard = self.shard(room).lock();
        let Some(cell) = shard.get(room) else {
            return false;
        };
        {
            let mut cursor = cell.cursor.lock();
            if cursor.has_joiners() || hub.room_size(room.clone()) > 0 {
                return false;
            }
            cursor.close();
        }
        shard.remove(room);
        drop(shard);
        self.repairs.due.lock().remove(room);
        true
    }

    /// Reads `room` back at `due` (or earlier, if it was due earlier).
    pub(crate) fn schedule(&self, room: &Room, due: Instant) {
        {
            let mut pending = self.repairs.due.lock();
            match pending.get_mut(room) {
                Some(at) if *at <= due => return,
                Some(at) => *at = due,
                None => {
                    pending.insert(room.clone(), due);
                }
            }
        }
        self.repairs.notify.notify_one();
    }

    /// Reads every channel back now: after the broker lost messages (a
    /// reconnection), so that what was missed is delivered.
    pub(crate) fn resync(&self) {
        let now = Instant::now();
        for room in self.rooms() {
            self.schedule(&room, now);
        }
    }

    /// Waits until a repair is due, and takes the rooms due.
    pub(crate) async fn due(&self) -> Vec<Room> {
        loop {
            let notified = self.repairs.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let next = {
                let mut pending = self.repairs.due.lock();
                let now = Instant::now();
                let ready: Vec<Room> = pending
                    .iter()
                    .filter(|(_, at)| **at <= now)
                    .map(|(room, _)| room.clone())
                    .collect();
                if !ready.is_empty() {
                    for room in &ready {
                        pending.remove(room);
                    }
                    return ready;
                }
                pending.values().min().copied()
            };
            match next {
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = &mut notified => {}
                    }
                }
                None => notified.await,
            }
        }
    }
}

/// When `cursor`'s open gap is due for a read back: after the wait for
/// stragglers, or at once when it holds too much.
pub(crate) fn gap_due(cursor: &Cursor, wait: Duration) -> Option<Instant> {
    let since = cursor.gap_since()?;
    Some(if cursor.overflowing() {
        Instant::now()
    } else {
        since + wait
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_scheduled_repair_comes_due_at_its_time_and_not_before() {
        let streams = Streams::new(HistoryConfig::default());
        let room = Room::from("public:a");
        streams.schedule(&room, Instant::now());
        let due = tokio::time::timeout(Duration::from_secs(1), streams.due()).await;
        assert_eq!(due.expect("due at once"), vec![room.clone()]);

        // Later, then earlier: the earlier time wins.
        streams.schedule(&room, Instant::now() + Duration::from_secs(60));
        streams.schedule(&room, Instant::now() + Duration::from_millis(50));
        let started = Instant::now();
        let due = tokio::time::timeout(Duration::from_secs(1), streams.due()).await;
        assert_eq!(due.expect("due soon"), vec![room]);
        assert!(started.elapsed() >= Duration::from_millis(40));

        // Nothing scheduled: nothing comes due.
        let none = tokio::time::timeout(Duration::from_millis(100), streams.due()).await;
        assert!(none.is_err());
    }
}
