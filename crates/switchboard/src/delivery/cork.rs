//! Corking: a fan-out queues its frames without waking each recipient's
//! writer task, and one flush task writes every corked socket once, after
//! the publishing task yields.
//!
//! Waking a writer task per recipient costs a schedule and a poll per
//! delivery. Instead, the first frame queued for an idle connection marks
//! its queue *corked* and adds the connection to the calling thread's open
//! batch; the first connection of a batch spawns the task that flushes it.
//! The runtime runs that task once the publishing task yields (a
//! multi-thread worker runs it next), so the frames of a burst of
//! publications (a publisher's pipelined messages, read without yielding)
//! go out together: one `send` per recipient per burst. A task that
//! publishes and then computes without yielding holds the flush until it
//! yields, as it holds its worker anyway.
//!
//! The flush writes each connection's queue with one non-blocking attempt,
//! exactly as a direct send does; whatever the socket did not take, and any
//! queue that needs the writer (a close frame, owed pongs, a compression
//! context, a write already in progress), is handed to the writer task.
//! Nothing else changes: the queue's byte bound is checked when a frame is
//! queued, frames go out in queue order under the same `writing` claim,
//! and an eviction still goes through the writer. A flush task dropped
//! unrun (its runtime shut down) flushes as it is dropped, and a thread
//! with no runtime wakes the writers at once, as before.

use std::cell::RefCell;
use std::sync::Arc;

use parking_lot::Mutex;

/// What a cork batch holds: a connection's queue, flushed once.
pub(super) trait Corked: Send + Sync {
    /// One non-blocking write of what is queued; the rest to the writer.
    fn flush_corked(&self);
    /// Starts loading the state [`Corked::flush_corked`] touches.
    fn prefetch(&self);
}

/// The connections corked on one thread since its last flush task was
/// spawned; `None` once that task has taken them.
#[derive(Default)]
struct Batch {
    corked: Mutex<Option<Vec<Arc<dyn Corked>>>>,
}

thread_local! {
    /// The batch this thread is filling.
    static OPEN: RefCell<Option<Arc<Batch>>> = const { RefCell::new(None) };
}

/// Adds `shared` (whose queue was just marked corked) to this thread's open
/// batch. False when there is no runtime to run a flush on: the caller then
/// wakes the writer itself.
pub(super) fn add(shared: Arc<dyn Corked>) -> bool {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return false;
    };
    OPEN.with(|open| {
        let mut open = open.borrow_mut();
        if let Some(batch) = open.as_ref()
            && let Some(list) = batch.corked.lock().as_mut()
        {
            list.push(shared);
            return;
        }
        let batch = Arc::new(Batch {
            corked: Mutex::new(Some(vec![shared])),
        });
        *open = Some(batch.clone());
        drop(open);
        // The flush runs when the task is dropped, run or not: a runtime
        // shut down before running it (a short-lived `block_on`) still
        // flushes, so no connection is left corked with no flush to come.
        // Unconstrained: a stream other than TCP is polled for each write,
        // and past the task's cooperative budget (128 polls) every poll
        // would read as "not writable" and go to the writer task instead.
        let flush = Flush(batch);
        runtime.spawn(tokio::task::unconstrained(async move { drop(flush) }));
    });
    true
}

/// Flushes its batch when dropped.
struct Flush(Arc<Batch>);

impl Drop for Flush {
    fn drop(&mut self) {
        flush(&self.0);
    }
}

/// Writes every connection of `batch` once.
fn flush(batch: &Batch) {
    let Some(mut list) = batch.corked.lock().take() else {
        return;
    };
    // In address order: connections accepted one after another sit next to
    // each other in memory (and so do their sockets in the kernel), so the
    // flush walks memory forwards instead of at random, as the room's hash
    // order would. With 10,000 recipients this took the last delivery from
    // 72 to 63 ms (bench/analysis.md).
    list.sort_unstable_by_key(|shared| Arc::as_ptr(shared).cast::<()>() as usize);
    // Each connection is dropped from the list right after its flush,
    // while its state is still in the cache.
    let mut list = list.into_iter().peekable();
    while let Some(shared) = list.next() {
        if let Some(next) = list.peek() {
            next.prefetch();
        }
        shared.flush_corked();
    }
}
