//! Server-side keepalive: ping a silent client, close one that stays silent.

use std::time::Duration;

use tokio::time::Instant;

/// Server-side keepalive: a ping after `interval` of silence from the
/// client, and a close with [`crate::codes::KEEPALIVE_TIMEOUT`] (4001) once
/// nothing at all has arrived for `timeout`.
///
/// Every frame the client sends counts, whether or not the handler reads
/// it: a handler that only sends keeps its clients as long as they answer
/// pings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Keepalive {
    /// Silence before a ping. Default 25 s (below the 60 s idle timeout of common proxies).
    pub interval: Duration,
    /// Silence before the connection is closed. Default 60 s.
    pub timeout: Duration,
}

impl Default for Keepalive {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(25),
            timeout: Duration::from_secs(60),
        }
    }
}

impl Keepalive {
    /// A keepalive with the given ping interval and silence timeout.
    pub fn new(interval: Duration, timeout: Duration) -> Self {
        Self { interval, timeout }
    }
}

/// What the keepalive wants done at a tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Beat {
    /// The client spoke since the last tick, or is not silent for long yet
    /// and was pinged already: nothing.
    Quiet,
    /// Ping the client.
    Ping,
    /// The client has been silent past the timeout: close with 4001.
    Close,
}

/// One connection's keepalive timing, run by its writer.
#[derive(Debug)]
pub(crate) struct Clock {
    keepalive: Keepalive,
    next: Instant,
    silent_since: Instant,
}

impl Clock {
    pub(crate) fn start(keepalive: Keepalive, now: Instant) -> Self {
        Self {
            keepalive,
            next: now + keepalive.interval,
            silent_since: now,
        }
    }

    /// When the next tick is due.
    pub(crate) fn next(&self) -> Instant {
        self.next
    }

    /// Runs the tick due at `now`, if it is due; `heard` says whether the
    /// client sent anything since the last tick.
    pub(crate) fn tick(&mut self, now: Instant, heard: impl FnOnce() -> bool) -> Option<Beat> {
        if now < self.next {
            return None;
        }
        self.next = now + self.keepalive.interval;
        Some(if heard() {
            self.silent_since = now;
            Beat::Quiet
        } else if now.duration_since(self.silent_since) >= self.keepalive.timeout {
            Beat::Close
        } else {
            Beat::Ping
        })
    }
}
