//! The in-memory broker's streams: a ring of publications per channel,
//! bounded by the channel's rule (count and age) and by a byte cap across
//! all channels.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::broker::Payload;
use crate::broker::stream::{
    Appended, Epoch, History, HistoryQuery, IdempotencyKey, Publication, StreamLimits,
    StreamPosition,
};
use crate::hub::Room;

const SHARDS: usize = 32;

/// What one kept publication costs besides its payload (the entry, its
/// share of the ring, the allocator's rounding): counted against the byte
/// cap. Measured: 127 B of VmRSS per 200-byte publication beyond the
/// payload (`bench/run --scenarios histmem`, docs/benchmarks.md).
const ENTRY_OVERHEAD: usize = 128;

/// What one remembered idempotency key costs besides its text.
const KEY_OVERHEAD: usize = 48;

/// Every channel's stream, shared by the brokers of one bus.
#[derive(Debug)]
pub(super) struct Store {
    shards: Box<[Mutex<HashMap<Room, Channel>>]>,
    hasher: std::collections::hash_map::RandomState,
    /// Bytes held now, entries and keys.
    bytes: AtomicUsize,
    max_bytes: usize,
    /// Idempotency keys of publishes without a stream, with their expiry.
    once: Mutex<HashMap<IdempotencyKey, Instant>>,
}

#[derive(Debug)]
struct Channel {
    epoch: Epoch,
    top: u64,
    entries: VecDeque<Entry>,
    /// Idempotency keys of appends, with the offset they got and their expiry.
    keys: HashMap<IdempotencyKey, (u64, Instant)>,
    ttl: Duration,
    /// The channel (its epoch, its offset) is forgotten after this.
    forget_at: Instant,
    /// The latest append.
    last: Instant,
}

#[derive(Debug)]
struct Entry {
    offset: u64,
    payload: Payload,
    at: Instant,
}

impl Entry {
    fn cost(&self) -> usize {
        self.payload.as_bytes().len() + ENTRY_OVERHEAD
    }
}

impl Channel {
    fn new(now: Instant, meta_ttl: Duration) -> Self {
        Self {
            epoch: Epoch::random(),
            top: 0,
            entries: VecDeque::new(),
            keys: HashMap::new(),
            ttl: Duration::MAX,
            forget_at: now + meta_ttl,
            last: now,
        }
    }

    /// Drops entries past their age and keys past their window; returns
    /// the bytes freed.
    fn expire(&mut self, now: Instant) -> usize {
        let mut freed = 0;
        while let Some(entry) = self.entries.front() {
            if now.saturating_duration_since(entry.at) < self.ttl {
                break;
            }
            freed += entry.cost();
            self.entries.pop_front();
        }
        self.keys.retain(|key, (_, until)| {
            let keep = *until > now;
            if !keep {
                freed += key.as_str().len() + KEY_OVERHEAD;
            }
            keep
        });
        freed
    }

    fn cost(&self) -> usize {
        let entries: usize = self.entries.iter().map(Entry::cost).sum();
        let keys: usize = self
            .keys
            .keys()
            .map(|k| k.as_str().len() + KEY_OVERHEAD)
            .sum();
        entries + keys
    }
}

impl Store {
    pub(super) fn new(max_bytes: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: Default::default(),
            bytes: AtomicUsize::new(0),
            max_bytes,
            once: Mutex::default(),
        }
    }

    fn shard(&self, room: &Room) -> &Mutex<HashMap<Room, Channel>> {
        &self.shards[self.hasher.hash_one(room) as usize % SHARDS]
    }

    /// Bytes held now.
    pub(super) fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Appends `payload` to `room`'s stream (or recognises `key`), then
    /// calls `deliver` with the result while the channel is still locked,
    /// so that every instance sees the channel's publications in order.
    pub(super) fn append(
        &self,
        room: &Room,
        payload: &Payload,
        limits: &StreamLimits,
        key: Option<&IdempotencyKey>,
        deliver: impl FnOnce(&Appended),
    ) -> Appended {
        let now = Instant::now();
        let appended = {
            let mut shard = self.shard(room).lock();
            let channel = self.live_channel(&mut shard, room, now, limits.meta_ttl);
            let freed = channel.expire(now);
            self.release(freed);
            let seen = key
                .and_then(|k| channel.keys.get(k))
                .map(|(offset, _)| *offset);
            let appended = match seen {
                Some(offset) => {
                    Appended::duplicate(StreamPosition::new(channel.epoch.clone(), offset))
                }
                None => {
                    channel.top += 1;
                    channel.ttl = limits.ttl;
                    channel.last = now;
                    channel.forget_at = now + limits.meta_ttl;
                    let entry = Entry {
                        offset: channel.top,
                        payload: payload.clone(),
                        at: now,
                    };
                    let mut added = entry.cost();
                    channel.entries.push_back(entry);
                    while channel.entries.len() > limits.size {
                        if let Some(old) = channel.entries.pop_front() {
                            self.release(old.cost());
                        }
                    }
                    if let Some(key) = key {
                        added += key.as_str().len() + KEY_OVERHEAD;
                        let until = now + limits.idempotency_window;
                        channel.keys.insert(key.clone(), (channel.top, until));
                    }
                    self.bytes.fetch_add(added, Ordering::Relaxed);
                    Appended::new(StreamPosition::new(channel.epoch.clone(), channel.top))
                }
            };
            if !appended.duplicate {
                deliver(&appended);
            }
            appended
        };
        if self.bytes() > self.max_bytes {
            self.shed();
        }
        appended
    }

    /// Reads `room`'s stream. A channel never published to gets its epoch
    /// here.
    pub(super) fn read(&self, room: &Room, query: &HistoryQuery, limits: &StreamLimits) -> History {
        let now = Instant::now();
        let mut shard = self.shard(room).lock();
        let channel = self.live_channel(&mut shard, room, now, limits.meta_ttl);
        let freed = channel.expire(now);
        self.release(freed);
        let position = StreamPosition::new(channel.epoch.clone(), channel.top);
        let after = match &query.since {
            Some(since) if since.epoch == channel.epoch => since.offset,
            _ => 0,
        };
        let kept = channel.entries.iter().filter(|e| e.offset > after);
        let publication = |e: &Entry| Publication {
            offset: e.offset,
            payload: e.payload.clone(),
        };
        let publications = if query.newest_first {
            kept.rev().take(query.limit).map(publication).collect()
        } else {
            kept.take(query.limit).map(publication).collect()
        };
        History::new(position, publications)
    }

    /// Whether a publish without a stream with `key` is new (and remembers
    /// it for `window`).
    pub(super) fn first_time(&self, key: &IdempotencyKey, window: Duration) -> bool {
        let now = Instant::now();
        let mut once = self.once.lock();
        if once.get(key).is_some_and(|until| *until > now) {
            return false;
        }
        if once.insert(key.clone(), now + window).is_none() {
            self.bytes
                .fetch_add(key.as_str().len() + KEY_OVERHEAD, Ordering::Relaxed);
        }
        true
    }

    /// Frees what has expired: old entries and keys, and channels whose
    /// epoch has outlived its time.
    pub(super) fn sweep(&self) {
        let now = Instant::now();
        for shard in self.shards.iter() {
            let mut shard = shard.lock();
            let mut freed = 0;
            shard.retain(|_, channel| {
                freed += channel.expire(now);
                let keep = channel.forget_at > now;
                if !keep {
                    freed += channel.cost();
                }
                keep
            });
            self.release(freed);
        }
        let mut freed = 0;
        self.once.lock().retain(|key, until| {
            let keep = *until > now;
            if !keep {
                freed += key.as_str().len() + KEY_OVERHEAD;
            }
            keep
        });
        self.release(freed);
    }

    /// Over the byte cap: frees expired entries, then the entries of the
    /// channels published to longest ago, until under it. Their epochs and
    /// offsets stay, so a recovery into them fails with "history gone"
    /// rather than a wrong replay.
    fn shed(&self) {
        self.sweep();
        if self.bytes() <= self.max_bytes {
            return;
        }
        let mut by_age: Vec<(Instant, Room)> = self
            .shards
            .iter()
            .flat_map(|shard| {
                shard
                    .lock()
                    .iter()
                    .filter(|(_, c)| !c.entries.is_empty())
                    .map(|(room, c)| (c.last, room.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        by_age.sort();
        for (_, room) in by_age {
            if self.bytes() <= self.max_bytes {
                break;
            }
            let mut shard = self.shard(&room).lock();
            if let Some(channel) = shard.get_mut(&room) {
                let freed: usize = channel.entries.drain(..).map(|e| e.cost()).sum();
                self.release(freed);
            }
        }
    }

    /// `room`'s channel, made afresh (a new epoch) when it is unknown or
    /// its epoch has outlived its time.
    fn live_channel<'a>(
        &self,
        shard: &'a mut HashMap<Room, Channel>,
        room: &Room,
        now: Instant,
        meta_ttl: Duration,
    ) -> &'a mut Channel {
        let forgotten = shard.get(room).is_some_and(|c| c.forget_at <= now);
        if forgotten && let Some(old) = shard.remove(room) {
            self.release(old.cost());
        }
        shard
            .entry(room.clone())
            .or_insert_with(|| Channel::new(now, meta_ttl))
    }

    fn release(&self, bytes: usize) {
        if bytes > 0 {
            self.bytes.fetch_sub(bytes, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::stream::{HistoryConfig, HistoryRule};
    use crate::protocol::ChannelPattern;

    fn limits(size: usize, ttl: Duration) -> StreamLimits {
        let rule = HistoryRule::new(ChannelPattern::new("*").unwrap())
            .with_size(size)
            .with_ttl(ttl);
        StreamLimits::new(&rule, &HistoryConfig::default())
    }

    fn append(store: &Store, room: &str, bytes: usize, limits: &StreamLimits) -> Appended {
        let payload = Payload::text("x".repeat(bytes));
        store.append(&Room::from(room), &payload, limits, None, |_| {})
    }

    fn kept(store: &Store, room: &str, limits: &StreamLimits) -> Vec<u64> {
        let read = store.read(&Room::from(room), &HistoryQuery::after(None, 1000), limits);
        read.publications.iter().map(|p| p.offset).collect()
    }

    #[test]
    fn a_channel_keeps_its_latest_size_publications() {
        let store = Store::new(1 << 20);
        let l = limits(3, Duration::from_secs(60));
        for _ in 0..5 {
            append(&store, "a", 10, &l);
        }
        assert_eq!(kept(&store, "a", &l), [3, 4, 5]);
        assert_eq!(store.bytes(), 3 * (10 + ENTRY_OVERHEAD));
    }

    #[tokio::test(start_paused = true)]
    async fn publications_expire_and_forgotten_channels_are_freed() {
        let store = Store::new(1 << 20);
        let l = limits(100, Duration::from_secs(10));
        let first = append(&store, "a", 10, &l).position;
        tokio::time::advance(Duration::from_secs(11)).await;
        // Expired: not returned, and freed by a sweep; the epoch goes on.
        assert!(kept(&store, "a", &l).is_empty());
        store.sweep();
        assert_eq!(store.bytes(), 0);
        let second = append(&store, "a", 10, &l).position;
        assert_eq!(
            (second.epoch.clone(), second.offset),
            (first.epoch.clone(), 2)
        );
        // Quiet past the meta time: the channel is forgotten, a new epoch.
        tokio::time::advance(l.meta_ttl + Duration::from_secs(1)).await;
        store.sweep();
        assert_eq!(store.bytes(), 0);
        let third = append(&store, "a", 10, &l).position;
        assert_ne!(third.epoch, second.epoch);
        assert_eq!(third.offset, 1);
    }

    #[test]
    fn past_the_byte_cap_the_oldest_channels_lose_their_history_first() {
        let per = 1000 + ENTRY_OVERHEAD;
        let store = Store::new(10 * per);
        let l = limits(100, Duration::from_secs(60));
        for room in ["old", "mid"] {
            for _ in 0..4 {
                append(&store, room, 1000, &l);
            }
        }
        assert_eq!(store.bytes(), 8 * per);
        // Three more on a third channel: over the cap, the oldest goes.
        for _ in 0..3 {
            append(&store, "new", 1000, &l);
        }
        assert!(store.bytes() <= 10 * per, "{}", store.bytes());
        assert!(kept(&store, "old", &l).is_empty());
        assert_eq!(kept(&store, "mid", &l).len(), 4);
        assert_eq!(kept(&store, "new", &l).len(), 3);
        // Its offsets go on: a recovery into it fails rather than replays wrongly.
        assert_eq!(append(&store, "old", 10, &l).position.offset, 5);
    }
}
