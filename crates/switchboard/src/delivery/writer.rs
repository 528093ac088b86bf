//! The writer task: drains a connection's queue into its socket, runs the
//! keepalive and the close deadline, and shuts the socket down at the end.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Duration;

use switchboard_ws::{CloseFrame, OpCode, OutFrame};
use tokio::io::AsyncWriteExt;
use tokio::time::{Instant, Sleep};

use super::compression::ContextCompressor;
use super::keepalive::{Beat, Clock, Keepalive};
use super::queue::Shared;
use super::write::write_or_abort;
use crate::codes;
use crate::transport::WriteHalf;

/// Most frames the writer gathers into one vectored write.
const MAX_BATCH: usize = 64;

/// Tells the keepalive whether the peer sent something that no one has
/// read yet (the handler is not reading): such a peer is alive.
pub(crate) trait PeerProbe: Send + Sync + 'static {
    /// Whether bytes arrived from the peer since the last call.
    fn peer_spoke(&self) -> bool;
}

/// What the writer needs besides the socket.
pub(crate) struct WriterOptions {
    pub(crate) keepalive: Option<Keepalive>,
    pub(crate) close_timeout: Duration,
    /// Asked at a keepalive tick when the reader heard nothing.
    pub(crate) probe: Option<Arc<dyn PeerProbe>>,
}

impl std::fmt::Debug for WriterOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterOptions")
            .field("keepalive", &self.keepalive)
            .field("close_timeout", &self.close_timeout)
            .field("probe", &self.probe.is_some())
            .finish()
    }
}

/// Drains the queue into the socket until the close handshake is done or the
/// connection dies, then shuts the socket down and marks the connection dead.
///
/// The returned future is what the writer task holds for the connection's
/// life, so it is kept small: no arguments kept beside the writer (an `async
/// fn`'s arguments stay in its future to the end), and the rare states (a
/// write waiting for room, the shutdown) in allocations of their own.
pub(crate) fn run_writer(
    shared: Arc<Shared>,
    io: WriteHalf,
    opts: WriterOptions,
) -> impl Future<Output = ()> + Send + 'static {
    *shared.io.lock() = Some(io);
    Writer::new(shared, opts).live()
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Nothing waits any more (the writer ended, or its task was aborted
        // or panicked): do not keep the task's allocation alive through its
        // waker for as long as a `Sender` keeps the connection's state.
        self.shared.writer_wake.forget();
    }
}

/// The socket failed or went away: the connection is dead already.
struct Dead;

struct Writer {
    shared: Arc<Shared>,
    close_timeout: Duration,
    probe: Option<Arc<dyn PeerProbe>>,
    /// The batch being written, taken from the queue.
    pending: VecDeque<OutFrame>,
    clock: Option<Clock>,
    /// Set once our close frame is on the wire: the peer has until then.
    close_deadline: Option<Instant>,
    /// One timer for the connection's life, moved rather than recreated: a
    /// new timer per message would hit the runtime's timer wheel every time.
    timer: Option<Pin<Box<Sleep>>>,
    /// With server context takeover the writer owns the connection's
    /// compressor and compresses in queue order (boxed: most connections
    /// have none, and the writer is part of every connection's task).
    compressor: Option<Box<ContextCompressor>>,
}

impl Writer {
    fn new(shared: Arc<Shared>, opts: WriterOptions) -> Self {
        let now = Instant::now();
        Self {
            clock: opts.keepalive.map(|k| Clock::start(k, now)),
            compressor: shared.compression.context().map(Box::new),
            shared,
            close_timeout: opts.close_timeout,
            probe: opts.probe,
            pending: VecDeque::new(),
            close_deadline: None,
            timer: None,
        }
    }

    /// The writer's whole life: [`Writer::run`], then the shutdown. (An
    /// `async fn` would keep its argument twice, as the argument and as the
    /// local it is moved into; an `async` block keeps what it captures once.)
    #[allow(
        clippy::manual_async_fn,
        reason = "an async fn keeps its arguments twice in its future"
    )]
    fn live(mut self) -> impl Future<Output = ()> + Send + 'static {
        async move {
            if self.run().await.is_ok() {
                Box::pin(self.shut_down()).await;
            }
        }
    }

    /// Writes what is queued, and waits for more, until the close handshake
    /// is done (or timed out) or the connection dies.
    async fn run(&mut self) -> Result<(), Dead> {
        loop {
            if self.take_queued() {
                self.flush().await?;
                continue;
            }
            let closed =
                self.close_deadline.is_some() && self.shared.peer_closed.load(Ordering::Acquire);
            if closed || self.shared.is_dead() {
                return Ok(());
            }
            if self.wait().await && self.on_timer() {
                return Ok(());
            }
        }
    }

    /// Moves what is queued (owed pongs first) into the batch and claims the
    /// socket; false when there is nothing, or a direct send holds the
    /// socket (it holds the claim only for one non-blocking write, and
    /// wakes the writer afterwards if frames are waiting).
    fn take_queued(&mut self) -> bool {
        let room_wanted = {
            let mut q = self.shared.queue.lock();
            if q.writing || (q.frames.is_empty() && q.pongs.is_empty()) {
                return false;
            }
            std::mem::swap(&mut q.frames, &mut self.pending);
            while let Some(pong) = q.pongs.pop_back() {
                self.pending.push_front(pong);
            }
            q.bytes = 0;
            q.writing = true;
            std::mem::take(&mut q.room_wanted)
        };
        if room_wanted {
            self.shared.room.notify_waiters();
        }
        true
    }

    /// Writes the batch, in vectored writes of up to [`MAX_BATCH`] frames,
    /// then gives the socket back.
    async fn flush(&mut self) -> Result<(), Dead> {
        if let Some(compressor) = &mut self.compressor {
            compressor.compress(self.pending.iter_mut());
        }
        let shared = &self.shared;
        let Some(mut io) = shared.io.lock().take() else {
            shared.kill();
            return Err(Dead);
        };
        let mut wrote_close = false;
        while !self.pending.is_empty() {
            let take = self.pending.len().min(MAX_BATCH);
            let batch = &self.pending.make_contiguous()[..take];
            wrote_close |= batch.iter().any(|f| f.opcode() == Some(OpCode::Close));
            let bytes: usize = batch.iter().map(OutFrame::len).sum();
            let written = match write_or_abort(&shared.abort, &mut io, batch, self.close_timeout) {
                Ok(None) => Ok(()),
                Ok(Some(waiting)) => waiting.await,
                Err(e) => Err(e),
            };
            if written.is_err() {
                shared.kill();
                return Err(Dead);
            }
            shared.stats.written(shared.id, take, bytes);
            self.pending.drain(..take);
            if shared.abort.started() && !wrote_close {
                // Evicted: what is left here was queued before the close.
                self.pending.clear();
            }
        }
        *shared.io.lock() = Some(io);
        shared.queue.lock().writing = false;
        if self.pending.capacity() > 4 * MAX_BATCH {
            self.pending = VecDeque::new();
        }
        if wrote_close && self.close_deadline.is_none() {
            self.close_deadline = Some(Instant::now() + self.close_timeout);
        }
        Ok(())
    }

    /// Waits for frames, or for the close deadline or the next keepalive
    /// tick; true when it was the timer.
    async fn wait(&mut self) -> bool {
        let wake_at = self.close_deadline.or(self.clock.as_ref().map(Clock::next));
        let Some(at) = wake_at else {
            self.shared.writer_wake.wait().await;
            return false;
        };
        let timer = match &mut self.timer {
            Some(t) => {
                if t.deadline() != at {
                    t.as_mut().reset(at);
                }
                t
            }
            None => self.timer.insert(Box::pin(tokio::time::sleep_until(at))),
        };
        let shared = &self.shared;
        std::future::poll_fn(|cx| {
            if shared.writer_wake.poll_wait(cx).is_ready() {
                return Poll::Ready(false);
            }
            timer.as_mut().poll(cx).map(|()| true)
        })
        .await
    }

    /// The close deadline passed (true: stop), or a keepalive tick is due.
    fn on_timer(&mut self) -> bool {
        let now = Instant::now();
        if self.close_deadline.is_some_and(|d| now >= d) {
            return true;
        }
        let shared = &self.shared;
        let probe = self.probe.as_deref();
        let heard = || {
            shared.heard.swap(false, Ordering::AcqRel) || probe.is_some_and(PeerProbe::peer_spoke)
        };
        match self.clock.as_mut().and_then(|c| c.tick(now, heard)) {
            Some(Beat::Ping) => shared.push_ping(),
            Some(Beat::Close) => {
                shared.push_close(CloseFrame::new(
                    codes::KEEPALIVE_TIMEOUT,
                    "keepalive timeout",
                ));
            }
            Some(Beat::Quiet) | None => {}
        }
        false
    }

    /// Claims the socket once no direct send holds it, shuts it down, and
    /// marks the connection dead.
    async fn shut_down(&mut self) {
        let shared = &self.shared;
        loop {
            {
                let mut q = shared.queue.lock();
                if !q.writing {
                    q.writing = true;
                    break;
                }
            }
            tokio::task::yield_now().await;
        }
        let io = shared.io.lock().take();
        if let Some(mut io) = io {
            let _ = io.shutdown().await;
        }
        shared.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::{Compression, Stats};
    use crate::transport::Transport;

    #[test]
    fn the_writer_tasks_future_is_small() {
        // Every connection's writer task holds this future for its whole
        // life: 296 bytes measured with the arguments moved into the writer,
        // the rare states (a write waiting for room, the shutdown) boxed and
        // the wake-up a flag and a waker; 1,288 before.
        let shared = Shared::new(1 << 20, 1, Arc::new(Stats::default()), Compression::Off);
        let (_client, server) = tokio::io::duplex(64);
        let (_read, write) = Transport::Other(Box::new(server)).split();
        let writer = run_writer(
            shared,
            write,
            WriterOptions {
                keepalive: Some(Keepalive::default()),
                close_timeout: Duration::from_secs(1),
                probe: None,
            },
        );
        let size = std::mem::size_of_val(&writer);
        assert!(size <= 336, "the writer task's future is {size} bytes");
    }
}
