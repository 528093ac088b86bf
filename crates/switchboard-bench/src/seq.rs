//! Sequence accounting: missing, duplicated and out-of-order deliveries.
//!
//! Each receiver keeps one [`SeqTracker`] per publisher. Definitions:
//!
//! * **duplicate**: a sequence number that this receiver has already seen;
//! * **out of order**: a first arrival whose sequence number is lower than the highest one
//!   already seen (it arrived after a later message);
//! * **missing**: of the `published` messages (sequence numbers `0..published`), those never
//!   seen, counted at the end of the run.

use std::collections::HashMap;

/// Sequence numbers at or above this are treated as garbage (they would need a huge bitmap).
/// 2^24 messages per publisher is far more than any bounded run sends.
pub const MAX_SEQ: u64 = 1 << 24;

/// What happened to one observed sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// First arrival, in order.
    InOrder,
    /// First arrival, but a higher sequence number came earlier.
    OutOfOrder,
    /// Seen before.
    Duplicate,
    /// Sequence number out of range (counted as invalid, not tracked).
    Invalid,
}

/// Per-publisher tracker for one receiver.
#[derive(Debug, Clone, Default)]
pub struct SeqTracker {
    seen: Vec<u64>,
    distinct: u64,
    max_seen: Option<u64>,
    duplicates: u64,
    out_of_order: u64,
    invalid: u64,
}

impl SeqTracker {
    /// A new tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one arrival.
    pub fn observe(&mut self, seq: u64) -> Observed {
        if seq >= MAX_SEQ {
            self.invalid += 1;
            return Observed::Invalid;
        }
        let word = (seq / 64) as usize;
        let bit = 1u64 << (seq % 64);
        if word >= self.seen.len() {
            self.seen.resize((word + 1).next_power_of_two(), 0);
        }
        if self.seen[word] & bit != 0 {
            self.duplicates += 1;
            return Observed::Duplicate;
        }
        self.seen[word] |= bit;
        self.distinct += 1;
        let result = match self.max_seen {
            Some(m) if seq < m => {
                self.out_of_order += 1;
                Observed::OutOfOrder
            }
            _ => Observed::InOrder,
        };
        self.max_seen = Some(self.max_seen.map_or(seq, |m| m.max(seq)));
        result
    }

    /// Whether `seq` has been seen.
    pub fn has(&self, seq: u64) -> bool {
        let word = (seq / 64) as usize;
        word < self.seen.len() && self.seen[word] & (1u64 << (seq % 64)) != 0
    }

    /// Distinct sequence numbers seen.
    pub fn distinct(&self) -> u64 {
        self.distinct
    }

    /// Duplicate arrivals.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Out-of-order first arrivals.
    pub fn out_of_order(&self) -> u64 {
        self.out_of_order
    }

    /// Arrivals with an out-of-range sequence number.
    pub fn invalid(&self) -> u64 {
        self.invalid
    }

    /// Of sequence numbers `0..published`, how many were never seen.
    pub fn missing(&self, published: u64) -> u64 {
        let full_words = (published / 64) as usize;
        let mut seen_below = 0u64;
        for w in self.seen.iter().take(full_words) {
            seen_below += u64::from(w.count_ones());
        }
        let rem = published % 64;
        if rem > 0
            && let Some(w) = self.seen.get(full_words)
        {
            seen_below += u64::from((w & ((1u64 << rem) - 1)).count_ones());
        }
        published - seen_below
    }
}

/// Totals over many trackers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SeqTotals {
    /// Expected deliveries that never arrived.
    pub missing: u64,
    /// Deliveries of a message the receiver already had.
    pub duplicated: u64,
    /// First deliveries that arrived after a later message of the same publisher.
    pub out_of_order: u64,
    /// Deliveries with an unusable sequence number.
    pub invalid: u64,
}

impl SeqTotals {
    /// Adds one receiver's accounting for all publishers; `published[p]` is how many messages
    /// publisher `p` sent, and every receiver is expected to get all of them.
    pub fn add_receiver(
        &mut self,
        trackers: &HashMap<u32, SeqTracker>,
        published: &HashMap<u32, u64>,
    ) {
        for (p, &count) in published {
            match trackers.get(p) {
                Some(t) => self.missing += t.missing(count),
                None => self.missing += count,
            }
        }
        for t in trackers.values() {
            self.duplicated += t.duplicates();
            self.out_of_order += t.out_of_order();
            self.invalid += t.invalid();
        }
    }

    /// Sum of two totals.
    pub fn merge(&mut self, other: &SeqTotals) {
        self.missing += other.missing;
        self.duplicated += other.duplicated;
        self.out_of_order += other.out_of_order;
        self.invalid += other.invalid;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order() {
        let mut t = SeqTracker::new();
        for s in 0..1000 {
            assert_eq!(t.observe(s), Observed::InOrder);
        }
        assert_eq!(t.missing(1000), 0);
        assert_eq!(t.duplicates(), 0);
        assert_eq!(t.out_of_order(), 0);
        assert_eq!(t.distinct(), 1000);
    }

    #[test]
    fn missing_dup_out_of_order() {
        let mut t = SeqTracker::new();
        assert_eq!(t.observe(0), Observed::InOrder);
        assert_eq!(t.observe(2), Observed::InOrder); // 1 skipped
        assert_eq!(t.observe(2), Observed::Duplicate);
        assert_eq!(t.observe(5), Observed::InOrder);
        assert_eq!(t.observe(1), Observed::OutOfOrder); // late arrival fills the gap
        assert_eq!(t.observe(1), Observed::Duplicate);
        assert_eq!(t.observe(0), Observed::Duplicate);
        // Published 0..7: seen 0,1,2,5 => missing 3,4,6 = 3.
        assert_eq!(t.missing(7), 3);
        assert_eq!(t.duplicates(), 3);
        assert_eq!(t.out_of_order(), 1);
        assert_eq!(t.distinct(), 4);
        assert!(t.has(5));
        assert!(!t.has(4));
        assert!(!t.has(100_000));
    }

    #[test]
    fn missing_counts_only_published_range() {
        let mut t = SeqTracker::new();
        for s in [0u64, 63, 64, 65, 127, 128, 200] {
            t.observe(s);
        }
        assert_eq!(t.missing(0), 0);
        assert_eq!(t.missing(1), 0);
        assert_eq!(t.missing(64), 62);
        assert_eq!(t.missing(66), 62);
        assert_eq!(t.missing(129), 129 - 6);
        // Nothing seen at all.
        assert_eq!(SeqTracker::new().missing(10), 10);
    }

    #[test]
    fn invalid_seq() {
        let mut t = SeqTracker::new();
        assert_eq!(t.observe(MAX_SEQ), Observed::Invalid);
        assert_eq!(t.invalid(), 1);
        assert_eq!(t.distinct(), 0);
    }

    #[test]
    fn totals_over_receivers() {
        let mut published = HashMap::new();
        published.insert(0u32, 10u64);
        published.insert(1u32, 5u64);
        let mut a = HashMap::new();
        let mut t0 = SeqTracker::new();
        for s in 0..10 {
            t0.observe(s);
        }
        t0.observe(3);
        a.insert(0u32, t0);
        // Receiver `a` never heard from publisher 1: 5 missing.
        let mut totals = SeqTotals::default();
        totals.add_receiver(&a, &published);
        assert_eq!(totals.missing, 5);
        assert_eq!(totals.duplicated, 1);
        let mut b = HashMap::new();
        let mut t1 = SeqTracker::new();
        t1.observe(4);
        t1.observe(0);
        b.insert(1u32, t1);
        let mut tb = SeqTotals::default();
        tb.add_receiver(&b, &published);
        assert_eq!(tb.missing, 10 + 3);
        assert_eq!(tb.out_of_order, 1);
        totals.merge(&tb);
        assert_eq!(totals.missing, 18);
    }
}
