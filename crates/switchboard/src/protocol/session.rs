//! One structured-protocol connection's state: its deadlines (auth,
//! heartbeat, session warning), subscriptions, recent errors and running
//! actions.

use std::collections::{HashSet, VecDeque};
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use switchboard_protocol::Channel;
use switchboard_protocol::payload::ClientInfo;
use tokio::time::{Instant, Sleep};

use super::actions::{BoxFuture, Outcome};
use super::config::ProtocolConfig;

/// A handler run that finished: what to send, in answer to what.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) outcome: Outcome,
    pub(crate) correlation: String,
    /// The action's name (for `ACTION_RESULT`).
    pub(crate) action: String,
}

/// The structured protocol's per-connection state (see
/// [`super::Protocol::Session`]). Opaque.
pub struct Session {
    pub(crate) requires_auth: bool,
    pub(crate) failures: u32,
    pub(crate) auth_deadline: Option<Instant>,
    pub(crate) next_ping: Instant,
    pub(crate) pong_deadline: Option<Instant>,
    /// When to warn that the credentials expire, and when they do.
    pub(crate) warning: Option<(Instant, SystemTime)>,
    pub(crate) subscriptions: HashSet<Channel>,
    pub(crate) errors: ErrorWindow,
    pub(crate) tasks: FuturesUnordered<BoxFuture<Finished>>,
    pub(crate) client: Option<ClientInfo>,
    /// One timer for the connection's life, moved rather than recreated.
    timer: Pin<Box<Sleep>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("requires_auth", &self.requires_auth)
            .field("failures", &self.failures)
            .field("subscriptions", &self.subscriptions.len())
            .field("running", &self.tasks.len())
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

/// What woke the structured protocol up (see [`super::Protocol::Wake`]). Opaque.
#[derive(Debug)]
pub struct Wake(pub(crate) WakeKind);

#[derive(Debug)]
pub(crate) enum WakeKind {
    Timer,
    Finished(Finished),
}

impl Session {
    pub(crate) fn new(config: &ProtocolConfig, requires_auth: bool) -> Self {
        let now = Instant::now();
        let next_ping = now + config.heartbeat_interval;
        Self {
            requires_auth,
            failures: 0,
            auth_deadline: requires_auth.then(|| now + config.auth_deadline),
            next_ping,
            pong_deadline: None,
            warning: None,
            subscriptions: HashSet::new(),
            errors: ErrorWindow::default(),
            tasks: FuturesUnordered::new(),
            client: None,
            timer: Box::pin(tokio::time::sleep_until(next_ping)),
        }
    }

    /// Plans the `session_expiring` warning for credentials expiring at
    /// `expires_at` (`None`: never).
    pub(crate) fn schedule_warning(&mut self, expires_at: Option<SystemTime>, before: Duration) {
        self.warning = expires_at.map(|at| {
            let left = at.duration_since(SystemTime::now()).unwrap_or_default();
            (Instant::now() + left.saturating_sub(before), at)
        });
    }

    fn next_deadline(&self) -> Instant {
        [
            self.auth_deadline,
            self.pong_deadline,
            self.warning.map(|(at, _)| at),
        ]
        .into_iter()
        .flatten()
        .fold(self.next_ping, Instant::min)
    }

    /// Waits for the next deadline or finished task. Cancel-safe.
    pub(crate) async fn wait(&mut self) -> Wake {
        let deadline = self.next_deadline();
        if self.timer.deadline() != deadline {
            self.timer.as_mut().reset(deadline);
        }
        if self.tasks.is_empty() {
            self.timer.as_mut().await;
            return Wake(WakeKind::Timer);
        }
        tokio::select! {
            Some(finished) = self.tasks.next() => Wake(WakeKind::Finished(finished)),
            () = self.timer.as_mut() => Wake(WakeKind::Timer),
        }
    }
}

/// The times of recent `ERROR` replies.
#[derive(Debug, Default)]
pub(crate) struct ErrorWindow(VecDeque<Instant>);

impl ErrorWindow {
    /// Records an error at `now`; true once `max` fell within `window`.
    pub(crate) fn record(&mut self, now: Instant, max: usize, window: Duration) -> bool {
        while self
            .0
            .front()
            .is_some_and(|&t| now.duration_since(t) >= window)
        {
            self.0.pop_front();
        }
        self.0.push_back(now);
        if self.0.len() > max {
            self.0.pop_front();
        }
        self.0.len() >= max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_count_within_the_window() {
        let mut w = ErrorWindow::default();
        let t0 = Instant::now();
        let minute = Duration::from_secs(60);
        for i in 0..9 {
            assert!(!w.record(t0 + Duration::from_secs(i), 10, minute));
        }
        // The first errors fall out of the window before the tenth.
        assert!(!w.record(t0 + Duration::from_secs(61), 10, minute));
        assert!(!w.record(t0 + Duration::from_secs(62), 10, minute));
        assert!(!w.record(t0 + Duration::from_secs(62), 10, minute));
        assert!(w.record(t0 + Duration::from_secs(62), 10, minute));
    }
}
