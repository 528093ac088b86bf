//! A wake-up for the one task that waits on it (a connection's writer),
//! kept when that task is not waiting yet.

use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;

/// Like `tokio::sync::Notify` with one waiter and `notify_one`: a wake-up
/// given while nobody waits is kept for the next wait. Two words and a flag
/// instead of a lock and a waiter list, and its wait is a `poll_fn` of one
/// pointer, which the writer task keeps for the connection's life.
#[derive(Debug, Default)]
pub(super) struct Wake {
    waker: AtomicWaker,
    /// A wake-up was given and not yet taken.
    given: AtomicBool,
}

impl Wake {
    /// Wakes the waiting task, or the next one to wait.
    pub(super) fn wake(&self) {
        self.given.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Ready once a wake-up was given since the last one was taken (and takes it).
    pub(super) fn poll_wait(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.given.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        // A wake-up given between the check and the registration woke
        // nobody: check again now that the waker is in place.
        if self.given.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        Poll::Pending
    }

    /// Drops the waiting task's waker (it waits no more).
    pub(super) fn forget(&self) {
        drop(self.waker.take());
    }

    /// Waits for a wake-up (see [`Wake::poll_wait`]).
    pub(super) async fn wait(&self) {
        std::future::poll_fn(|cx| self.poll_wait(cx)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    /// A waker that counts its wake-ups.
    struct Counter(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_registered_waiter_is_woken_once_and_the_wake_up_taken_once() {
        let wake = Wake::default();
        let counter = Arc::new(Counter(std::sync::atomic::AtomicUsize::new(0)));
        let waker = std::task::Waker::from(Arc::clone(&counter));
        let mut cx = Context::from_waker(&waker);
        assert!(wake.poll_wait(&mut cx).is_pending());
        wake.wake();
        assert_eq!(counter.0.load(Ordering::SeqCst), 1, "the waiter was woken");
        assert!(wake.poll_wait(&mut cx).is_ready(), "the wake-up is there");
        assert!(wake.poll_wait(&mut cx).is_pending(), "and taken once");
        // After `forget` a wake-up wakes nobody but is still kept.
        wake.forget();
        wake.wake();
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        assert!(wake.poll_wait(&mut cx).is_ready());
    }

    #[tokio::test]
    async fn a_wake_up_given_before_the_wait_is_kept() {
        let wake = Wake::default();
        wake.wake();
        tokio::time::timeout(Duration::from_secs(1), wake.wait())
            .await
            .expect("the kept wake-up");
        // Taken: the next wait waits.
        let again = tokio::time::timeout(Duration::from_millis(20), wake.wait()).await;
        assert!(again.is_err(), "a wake-up is taken once");
    }

    #[tokio::test]
    async fn a_wake_up_reaches_a_task_already_waiting() {
        let wake = Arc::new(Wake::default());
        let waiter = tokio::spawn({
            let wake = Arc::clone(&wake);
            async move { wake.wait().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        wake.wake();
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("woken")
            .unwrap();
    }
}
