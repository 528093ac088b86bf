//! Counters for the gateway's metrics, striped so that two cores counting at
//! once do not fight over one cache line.

use std::sync::atomic::{AtomicU64, Ordering};

const STRIPES: usize = 16;

#[derive(Debug, Default)]
#[repr(align(64))]
struct Stripe {
    messages_in: AtomicU64,
    bytes_in: AtomicU64,
    messages_out: AtomicU64,
    bytes_out: AtomicU64,
    deliveries: AtomicU64,
    drops: AtomicU64,
    slow_evictions: AtomicU64,
}

/// Live counters of a hub. Read a consistent-enough copy with [`Stats::snapshot`].
#[derive(Debug, Default)]
pub struct Stats {
    stripes: [Stripe; STRIPES],
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// Data messages received from clients.
    pub messages_in: u64,
    /// Payload bytes received from clients.
    pub bytes_in: u64,
    /// Frames written to clients (data and control).
    pub messages_out: u64,
    /// Bytes written to clients, headers included.
    pub bytes_out: u64,
    /// Messages the hub queued for a connection (one per recipient).
    pub deliveries: u64,
    /// Messages the hub could not queue (the connection was closing or full).
    pub drops: u64,
    /// Connections closed with 4002 because their outbound queue overflowed.
    pub slow_consumer_evictions: u64,
}

impl Stats {
    fn stripe(&self, key: u64) -> &Stripe {
        &self.stripes[key as usize % STRIPES]
    }

    pub(crate) fn received(&self, key: u64, bytes: usize) {
        let s = self.stripe(key);
        s.messages_in.fetch_add(1, Ordering::Relaxed);
        s.bytes_in.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn written(&self, key: u64, frames: usize, bytes: usize) {
        let s = self.stripe(key);
        s.messages_out.fetch_add(frames as u64, Ordering::Relaxed);
        s.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn delivered(&self, key: u64, delivered: usize, dropped: usize, evicted: usize) {
        let s = self.stripe(key);
        s.deliveries.fetch_add(delivered as u64, Ordering::Relaxed);
        if dropped > 0 {
            s.drops.fetch_add(dropped as u64, Ordering::Relaxed);
        }
        if evicted > 0 {
            s.slow_evictions
                .fetch_add(evicted as u64, Ordering::Relaxed);
        }
    }

    /// Sums the stripes.
    pub fn snapshot(&self) -> StatsSnapshot {
        let mut out = StatsSnapshot::default();
        for s in &self.stripes {
            out.messages_in += s.messages_in.load(Ordering::Relaxed);
            out.bytes_in += s.bytes_in.load(Ordering::Relaxed);
            out.messages_out += s.messages_out.load(Ordering::Relaxed);
            out.bytes_out += s.bytes_out.load(Ordering::Relaxed);
            out.deliveries += s.deliveries.load(Ordering::Relaxed);
            out.drops += s.drops.load(Ordering::Relaxed);
            out.slow_consumer_evictions += s.slow_evictions.load(Ordering::Relaxed);
        }
        out
    }
}
