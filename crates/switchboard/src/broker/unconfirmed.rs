//! Keyed publications whose broker call failed without saying whether the
//! broker ran it.
//!
//! A keyed publish to a target without history asks the broker first (it
//! refuses a key it has seen) and delivers locally only once the broker
//! has published it to the other instances. When that call times out, the
//! broker may still have run it: a frozen Redis runs the queued command
//! when it wakes. The other instances then get the message, and a retry
//! with the same key is answered as a duplicate, so this instance's own
//! recipients would never get it. So the envelope is held here until one
//! of three things settles it:
//!
//! - the broker echoes it back (it ran): it is delivered locally then;
//! - a retry with the same key is a duplicate (it ran): delivered then;
//! - a retry publishes (it did not run): dropped, the retry delivers.
//!
//! Entries expire after the idempotency window; the table is bounded.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::Envelope;

/// Most keys held at once; past it the oldest is dropped.
const MAX_HELD: usize = 4096;

#[derive(Debug, Default)]
pub(crate) struct Unconfirmed {
    /// How many keys are held: the echo path reads it without the lock.
    len: AtomicUsize,
    held: Mutex<HashMap<String, Attempts>>,
}

#[derive(Debug)]
struct Attempts {
    /// Every failed attempt under the key (at most one of them ran).
    envelopes: Vec<Envelope>,
    until: Instant,
}

impl Unconfirmed {
    /// Holds the failed attempts under `key` for `window`.
    pub(crate) fn hold(&self, key: &str, envelopes: Vec<Envelope>, window: Duration) {
        let now = Instant::now();
        let mut held = self.held.lock();
        held.retain(|_, a| a.until > now);
        if held.len() >= MAX_HELD
            && let Some(oldest) = held
                .iter()
                .min_by_key(|(_, a)| a.until)
                .map(|(k, _)| k.clone())
        {
            held.remove(&oldest);
        }
        held.insert(
            key.to_owned(),
            Attempts {
                envelopes,
                until: now + window,
            },
        );
        self.len.store(held.len(), Ordering::Release);
    }

    /// Whether any attempt is held (without the lock).
    pub(crate) fn is_waiting(&self) -> bool {
        self.len.load(Ordering::Acquire) > 0
    }

    /// Takes the attempts held under `key` (before retrying it).
    pub(crate) fn take(&self, key: &str) -> Vec<Envelope> {
        if self.len.load(Ordering::Acquire) == 0 {
            return Vec::new();
        }
        let mut held = self.held.lock();
        let taken = held.remove(key);
        self.len.store(held.len(), Ordering::Release);
        taken
            .filter(|a| a.until > Instant::now())
            .map(|a| a.envelopes)
            .unwrap_or_default()
    }

    /// Whether `echo`, one of this instance's own envelopes coming back
    /// from the broker, is a held attempt: then it ran, and is released.
    pub(crate) fn claim(&self, echo: &Envelope) -> bool {
        if self.len.load(Ordering::Acquire) == 0 {
            return false;
        }
        let mut held = self.held.lock();
        let found = held
            .iter()
            .find(|(_, a)| a.envelopes.contains(echo))
            .map(|(k, _)| k.clone());
        if let Some(key) = &found {
            held.remove(key);
        }
        self.len.store(held.len(), Ordering::Release);
        found.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::{Body, Payload, Target};
    use crate::hub::Room;

    fn text(s: &str) -> Envelope {
        Envelope::new(
            Target::Room(Room::from("r")),
            Body::Message(Payload::text(s.to_owned())),
        )
    }

    #[test]
    fn an_echo_releases_its_key_once() {
        let u = Unconfirmed::default();
        u.hold("k", vec![text("a")], Duration::from_secs(60));
        assert!(!u.claim(&text("b")));
        assert!(u.claim(&text("a")));
        assert!(!u.claim(&text("a")), "released once");
        assert!(u.take("k").is_empty());
    }

    #[test]
    fn a_retry_takes_what_is_held_and_expired_entries_are_gone() {
        let u = Unconfirmed::default();
        u.hold("k", vec![text("a")], Duration::from_secs(60));
        assert_eq!(u.take("k"), vec![text("a")]);
        assert!(!u.claim(&text("a")));
        u.hold("old", vec![text("x")], Duration::ZERO);
        assert!(u.take("old").is_empty());
    }
}
