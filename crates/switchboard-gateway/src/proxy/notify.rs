//! Lifecycle notifications (`disconnect`, `unsubscribe`): a bounded queue
//! per proxy, drained by one task that sends batches and retries a failed
//! batch with backoff for a bounded time.
//!
//! What is lost, by design: events that find the queue full (counted as
//! `queue_full`), batches the backend did not take within `retry_for`
//! (`retries_exhausted`), and everything still queued when the gateway
//! process dies (a crash, `kill -9`; a graceful shutdown drains the queue
//! for a few seconds first).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::client::Backend;
use super::metrics::{QUEUE_FULL, RETRIES_EXHAUSTED};
use super::wire::Batch;

/// First wait before resending a failed batch; doubles up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub(crate) struct Notifier {
    tx: mpsc::Sender<Value>,
    /// Events queued or in a batch not yet done with.
    pending: Arc<AtomicUsize>,
    backend: Arc<Backend>,
}

impl Notifier {
    /// Starts the task that sends what [`Notifier::push`] queues.
    pub(crate) fn start(
        backend: Arc<Backend>,
        queue: usize,
        batch: usize,
        retry_for: Duration,
    ) -> Self {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let pending = Arc::new(AtomicUsize::new(0));
        tokio::spawn(run(
            rx,
            Arc::clone(&backend),
            Arc::clone(&pending),
            batch.max(1),
            retry_for,
        ));
        Self {
            tx,
            pending,
            backend,
        }
    }

    /// Queues one event; never waits. A full queue drops it (counted).
    pub(crate) fn push(&self, event: Value) {
        self.pending.fetch_add(1, Ordering::AcqRel);
        if self.tx.try_send(event).is_err() {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            self.backend
                .metrics()
                .dropped(self.backend.kind(), QUEUE_FULL, 1);
            tracing::warn!(
                proxy = self.backend.kind().as_str(),
                "notification queue full: event dropped"
            );
        }
    }

    /// Waits until nothing is pending, or `deadline`.
    pub(crate) async fn drain(&self, deadline: Instant) {
        while self.pending.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn run(
    mut rx: mpsc::Receiver<Value>,
    backend: Arc<Backend>,
    pending: Arc<AtomicUsize>,
    max_batch: usize,
    retry_for: Duration,
) {
    let mut events = Vec::with_capacity(max_batch);
    // Whatever queued up while the last batch was sent goes in the next:
    // batches grow with the load, and an idle gateway sends at once.
    while rx.recv_many(&mut events, max_batch).await > 0 {
        let n = events.len();
        if !send(&backend, &events, retry_for).await {
            backend
                .metrics()
                .dropped(backend.kind(), RETRIES_EXHAUSTED, n as u64);
            tracing::warn!(
                proxy = backend.kind().as_str(),
                events = n,
                "notifications dropped: the backend did not take them in time"
            );
        }
        events.clear();
        pending.fetch_sub(n, Ordering::AcqRel);
    }
}

/// Sends one batch, retrying with exponential backoff (with jitter) while
/// `retry_for` lasts; true once the backend took it.
async fn send(backend: &Backend, events: &[Value], retry_for: Duration) -> bool {
    let give_up = Instant::now() + retry_for;
    let mut backoff = FIRST_BACKOFF;
    loop {
        if backend.call(&Batch { events }).await.is_ok() {
            return true;
        }
        let jitter = backoff.mul_f64(0.5 + fastrand_half());
        if Instant::now() + jitter >= give_up {
            return false;
        }
        tokio::time::sleep(jitter).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// A number in [0, 0.5), good enough to spread retries.
fn fastrand_half() -> f64 {
    f64::from(uuid::Uuid::new_v4().as_bytes()[0]) / 512.0
}
