//! Caps on the connections open at once per client address and per user.

use std::hash::Hash;
use std::sync::Arc;

use super::sharded::Sharded;

/// Open connections per key, refused past `limit`. Entries exist only while
/// their key has a connection open, so memory follows the live connections.
#[derive(Debug)]
pub(crate) struct Caps<K> {
    limit: usize,
    counts: Sharded<K, usize>,
}

impl<K: Hash + Eq + Clone> Caps<K> {
    pub(crate) fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            counts: Sharded::new(),
        })
    }

    /// Counts one more connection for `key`, released when the guard drops;
    /// `None` when `key` is at the limit.
    pub(crate) fn acquire(self: &Arc<Self>, key: K) -> Option<CapGuard<K>> {
        let mut shard = self.counts.lock(&key);
        let count = shard.entry(key.clone()).or_insert(0);
        if *count >= self.limit {
            if *count == 0 {
                shard.remove(&key);
            }
            return None;
        }
        *count += 1;
        drop(shard);
        Some(CapGuard {
            caps: Arc::clone(self),
            key,
        })
    }
}

/// One connection counted against a cap, for as long as it lives.
#[derive(Debug)]
pub(crate) struct CapGuard<K: Hash + Eq + Clone> {
    caps: Arc<Caps<K>>,
    key: K,
}

impl<K: Hash + Eq + Clone> Drop for CapGuard<K> {
    fn drop(&mut self) {
        let mut shard = self.caps.counts.lock(&self.key);
        if let Some(count) = shard.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                shard.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_up_to_the_limit_and_forgets_keys_without_connections() {
        let caps = Caps::new(2);
        let a1 = caps.acquire("a").unwrap();
        let a2 = caps.acquire("a").unwrap();
        assert!(caps.acquire("a").is_none());
        let b = caps.acquire("b").unwrap();
        drop(a1);
        let a3 = caps.acquire("a").unwrap();
        drop((a2, a3, b));
        assert_eq!(caps.counts.len(), 0);
        assert!(Caps::new(0).acquire("a").is_none());
    }
}
