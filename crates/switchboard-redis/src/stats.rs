//! Counters of the Redis broker.

use std::sync::atomic::{AtomicU64, Ordering};

/// A copy of the broker's counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisStats {
    /// Envelopes Redis accepted (one PUBLISH each).
    pub published: u64,
    /// Publishes that failed (Redis down, slow, or refusing).
    pub publish_failures: u64,
    /// Messages that arrived on the subscriber connection.
    pub received: u64,
    /// Local deliveries made from received messages (one per recipient).
    pub delivered: u64,
    /// Received messages this instance had published itself (delivered
    /// locally at publish time, so ignored on arrival).
    pub own_skipped: u64,
    /// Received messages dropped because their channel or envelope was invalid.
    pub malformed: u64,
    /// Successful connections of the subscriber (1 + reconnects).
    pub subscriber_connects: u64,
    /// Successful connections of the publisher (1 + reconnects).
    pub publisher_connects: u64,
    /// Channels the subscriber is subscribed to now.
    pub subscriptions: u64,
    /// Other instances this one declared dead (their lease ran out).
    pub reaped: u64,
    /// Times this instance found it had been declared dead.
    pub declared_dead: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) published: AtomicU64,
    pub(crate) publish_failures: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) delivered: AtomicU64,
    pub(crate) own_skipped: AtomicU64,
    pub(crate) malformed: AtomicU64,
    pub(crate) subscriber_connects: AtomicU64,
    pub(crate) publisher_connects: AtomicU64,
    pub(crate) subscriptions: AtomicU64,
    pub(crate) reaped: AtomicU64,
    pub(crate) declared_dead: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn snapshot(&self) -> RedisStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RedisStats {
            published: get(&self.published),
            publish_failures: get(&self.publish_failures),
            received: get(&self.received),
            delivered: get(&self.delivered),
            own_skipped: get(&self.own_skipped),
            malformed: get(&self.malformed),
            subscriber_connects: get(&self.subscriber_connects),
            publisher_connects: get(&self.publisher_connects),
            subscriptions: get(&self.subscriptions),
            reaped: get(&self.reaped),
            declared_dead: get(&self.declared_dead),
        }
    }
}
