//! Reconnect delays: exponential, with jitter.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Delays between reconnect attempts. The cap doubles per failure from
/// `min` to `max`; each delay is drawn uniformly between `min` and the cap,
/// so that instances that lost Redis together do not come back in step.
#[derive(Debug)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max,
            failures: 0,
        }
    }

    /// The delay before the next attempt.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let cap = self
            .min
            .saturating_mul(1u32 << self.failures.min(16))
            .min(self.max);
        self.failures = self.failures.saturating_add(1);
        self.min + (cap - self.min).mul_f64(unit_random())
    }

    /// Back to the shortest delay (after a successful connection).
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }
}

/// A number in [0, 1). Not for cryptography: the std hasher's random keys
/// are enough to spread reconnects, without a dependency for it.
fn unit_random() -> f64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_and_stay_within_bounds() {
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(2));
        let mut backoff = Backoff::new(min, max);
        let mut caps = Vec::new();
        for attempt in 0..12u32 {
            let delay = backoff.next_delay();
            let cap = (min * 2u32.pow(attempt.min(16))).min(max);
            assert!(delay >= min && delay <= cap, "attempt {attempt}: {delay:?}");
            caps.push(cap);
        }
        assert_eq!(*caps.last().unwrap(), max);
        backoff.reset();
        assert!(backoff.next_delay() <= min);
    }

    #[test]
    fn delays_are_jittered() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..20 {
            let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
            backoff.next_delay();
            backoff.next_delay();
            seen.insert(backoff.next_delay());
        }
        assert!(seen.len() > 10, "{seen:?}");
    }
}
