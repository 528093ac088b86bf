//! Fresh protocol envelopes: every message the server sends gets a new id
//! and the current time, here and nowhere else.

use std::time::SystemTime;

use switchboard_protocol::{Envelope, Message};

/// `message` in an envelope with a fresh UUID and the current time,
/// answering `correlation` (the `id` of the message it replies to).
pub fn stamp(message: Message, correlation: Option<&str>) -> Envelope {
    Envelope::new(message)
        .with_id(uuid::Uuid::new_v4().to_string())
        .with_timestamp(now())
        .correlated_with(correlation)
}

/// Seconds since the Unix epoch, with a fraction.
pub(crate) fn now() -> f64 {
    unix_seconds(SystemTime::now())
}

/// `t` in seconds since the Unix epoch (0 before it).
pub(crate) fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
