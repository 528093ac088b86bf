//! A connection's outbound queue, bounded in bytes, and the state its
//! socket, senders and writer task share.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use parking_lot::Mutex;
use switchboard_ws::{CloseCode, CloseFrame, OpCode, OutFrame};
use tokio::sync::Notify;

use super::compression::Compression;
use super::cork::{self, Corked};
use super::stats::Stats;
use super::wake::Wake;
use super::write::{Abort, write_now};
use crate::transport::WriteHalf;

/// Why a [`crate::Sender::try_send_frame`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrySendError {
    /// The queue is over its byte limit: the client is not reading fast enough.
    #[error("outbound queue full")]
    Full,
    /// The connection is closing or closed.
    #[error("connection closed")]
    Closed,
}

/// Most pongs owed at once; see `Queue::pongs`.
const MAX_OWED_PONGS: usize = 16;

// `repr(C)`: the fields a fan-out touches per recipient come first, so that
// they share as few cache lines as possible (see `Shared::prefetch`).
#[derive(Debug, Default)]
#[repr(C)]
pub(super) struct Queue {
    pub(super) frames: VecDeque<OutFrame>,
    pub(super) bytes: usize,
    /// A close frame has been queued; nothing more is accepted.
    pub(super) closing: bool,
    /// Someone (the writer task, a direct send or a cork flush) owns the
    /// socket's write half.
    pub(super) writing: bool,
    /// The connection is in a cork batch (`cork`) whose flush has not
    /// reached it yet: frames queued meanwhile wake no one.
    pub(super) corked: bool,
    /// A sender found the queue full and may be waiting for room: whoever
    /// takes frames out next wakes the `room` waiters.
    pub(super) room_wanted: bool,
    /// Pongs owed, at most [`MAX_OWED_PONGS`]: past that the latest ping's
    /// pong replaces the last one (RFC 6455 §5.5.3 allows answering just the
    /// latest), so a ping flood cannot grow the queue.
    pub(super) pongs: VecDeque<OutFrame>,
}

/// State shared by the socket, its senders and its writer task.
///
/// `repr(C)`, hot fields first: a fan-out to thousands of connections
/// touches `queue`, `io`, `id`, `stats` and `compression` of each, and
/// each connection's state is out of the cache by then; kept together they
/// span three cache lines, which [`Shared::prefetch`] asks for ahead.
#[repr(C)]
pub(crate) struct Shared {
    pub(super) queue: Mutex<Queue>,
    /// The socket's write half, taken by whoever holds the `writing` claim.
    pub(super) io: Mutex<Option<WriteHalf>>,
    /// The connection's id, also its counter stripe.
    pub(crate) id: u64,
    pub(crate) stats: Arc<Stats>,
    /// How data frames are compressed (permessage-deflate).
    pub(crate) compression: Compression,
    max_bytes: usize,
    /// Wakes the writer when frames are queued.
    pub(super) writer_wake: Wake,
    /// Wakes senders waiting for room.
    pub(super) room: Notify,
    /// Wakes a reader blocked on the socket when `dead` is set.
    pub(crate) reader_wake: AtomicWaker,
    /// Set when the connection is finished: the reader stops waiting.
    /// (The flags sit together: between wider fields each would take eight
    /// bytes of every connection's allocation.)
    dead: AtomicBool,
    /// Set by the reader on every frame; cleared by the keepalive.
    pub(crate) heard: AtomicBool,
    /// Set by the reader when it returns a message with more received bytes
    /// behind it (a pipelined batch): the socket's own sends then go through
    /// the writer task, which sends the whole batch's replies in one write
    /// once the handler has worked through it, instead of one write each.
    pub(crate) more_buffered: AtomicBool,
    /// The reader has seen the peer's close frame.
    pub(super) peer_closed: AtomicBool,
    /// The close frame we sent, once sent.
    sent_close: Mutex<Option<CloseFrame>>,
    /// Set when the connection is evicted: the writer stops waiting on a
    /// socket the client does not read.
    pub(super) abort: Abort,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("id", &self.id)
            .field("queue", &self.queue)
            .field("dead", &self.dead)
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn new(
        max_bytes: usize,
        id: u64,
        stats: Arc<Stats>,
        compression: Compression,
    ) -> Arc<Self> {
        Arc::new(Self {
            queue: Mutex::new(Queue::default()),
            max_bytes,
            writer_wake: Wake::default(),
            room: Notify::new(),
            dead: AtomicBool::new(false),
            reader_wake: AtomicWaker::new(),
            heard: AtomicBool::new(true),
            more_buffered: AtomicBool::new(false),
            peer_closed: AtomicBool::new(false),
            sent_close: Mutex::new(None),
            abort: Abort::default(),
            stats,
            id,
            io: Mutex::new(None),
            compression,
        })
    }

    /// Marks the connection finished and wakes everyone waiting on it.
    pub(crate) fn kill(&self) {
        self.dead.store(true, Ordering::Release);
        self.queue.lock().closing = true;
        self.reader_wake.wake();
        self.writer_wake.wake();
        self.room.notify_waiters();
    }

    pub(crate) fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }

    /// Queues a frame if it fits (or `force` is set, for control frames).
    /// A frame larger than the whole limit is still accepted into an empty
    /// queue, so that one big message is never refused forever.
    pub(super) fn push(
        &self,
        frame: OutFrame,
        force: bool,
    ) -> Result<(), (TrySendError, OutFrame)> {
        self.enqueue(&mut self.queue.lock(), frame, force)?;
        self.writer_wake.wake();
        Ok(())
    }

    /// Appends `frame` to the queue if it fits (see [`Shared::push`]).
    fn enqueue(
        &self,
        q: &mut Queue,
        frame: OutFrame,
        force: bool,
    ) -> Result<(), (TrySendError, OutFrame)> {
        if q.closing {
            return Err((TrySendError::Closed, frame));
        }
        if !force && q.bytes + frame.len() > self.max_bytes && q.bytes > 0 {
            q.room_wanted = true;
            return Err((TrySendError::Full, frame));
        }
        q.bytes += frame.len();
        q.frames.push_back(frame);
        Ok(())
    }

    /// Queues a data frame like [`Shared::push`], but instead of waking the
    /// writer task, corks an idle connection: the calling thread's cork
    /// flush writes it once the current task yields (see `cork`). A
    /// connection whose writer is busy, or that owes pongs or keeps a
    /// compression context, has its writer woken as before.
    pub(super) fn push_corked(
        self: &Arc<Self>,
        frame: OutFrame,
    ) -> Result<(), (TrySendError, OutFrame)> {
        let cork = {
            let mut q = self.queue.lock();
            self.enqueue(&mut q, frame, false)?;
            if q.corked {
                return Ok(());
            }
            q.corked = !q.writing && q.pongs.is_empty() && !self.compression.needs_writer();
            q.corked
        };
        if !cork || !cork::add(self.clone()) {
            if cork {
                // No runtime to flush on: the writer sends it.
                self.queue.lock().corked = false;
            }
            self.writer_wake.wake();
        }
        Ok(())
    }

    /// Frames a data message for this connection (see [`Compression::encode`]).
    pub(crate) fn encode(&self, opcode: OpCode, payload: Bytes) -> OutFrame {
        self.compression.encode(opcode, payload)
    }

    /// Writes `frame` straight to the socket when nothing is queued, no one
    /// else is writing and the reader holds no further request: the common
    /// request/response case then needs no hop to the writer task. One
    /// non-blocking attempt; whatever does not fit goes to the front of the
    /// queue for the writer. Falls back to [`Shared::push`] otherwise.
    pub(super) fn send_direct(&self, frame: OutFrame) -> Result<(), (TrySendError, OutFrame)> {
        {
            let mut q = self.queue.lock();
            if q.closing {
                return Err((TrySendError::Closed, frame));
            }
            if q.writing
                || !q.frames.is_empty()
                || !q.pongs.is_empty()
                || self.more_buffered.load(Ordering::Relaxed)
                || self.compression.needs_writer()
            {
                drop(q);
                return self.push(frame, false);
            }
            q.writing = true;
        }
        let written = {
            let mut io = self.io.lock();
            match io.as_mut() {
                Some(io) => write_now(io, std::slice::from_ref(&frame)).ok(),
                None => Some(0),
            }
        };
        let wake = {
            let mut q = self.queue.lock();
            q.writing = false;
            match written {
                Some(n) if n == frame.len() => self.stats.written(self.id, 1, n),
                Some(n) => {
                    let rest = frame.remainder(n);
                    q.bytes += rest.len();
                    q.frames.push_front(rest);
                }
                None => {}
            }
            !q.frames.is_empty()
        };
        if written.is_none() {
            self.kill();
        } else if wake {
            self.writer_wake.wake();
        }
        Ok(())
    }

    /// Queues a close frame; later frames are refused. Returns false if a
    /// close was already queued.
    pub(crate) fn push_close(&self, frame: CloseFrame) -> bool {
        // 1005, 1006, 1015 and unassigned numbers may not go on the wire.
        let frame = match frame.code {
            code if code.is_sendable() => frame,
            CloseCode::NoStatus => CloseFrame::new(CloseCode::Normal, frame.reason),
            _ => CloseFrame::new(CloseCode::InternalError, frame.reason),
        };
        {
            let mut q = self.queue.lock();
            if q.closing {
                return false;
            }
            q.closing = true;
            let out = OutFrame::new(OpCode::Close, frame.to_payload());
            q.bytes += out.len();
            q.frames.push_back(out);
        }
        *self.sent_close.lock() = Some(frame);
        self.writer_wake.wake();
        self.room.notify_waiters();
        true
    }

    /// Drops everything queued, queues `frame` alone, and makes the writer
    /// give up on a socket that does not drain within the close timeout.
    pub(crate) fn evict(&self, frame: CloseFrame) {
        {
            let mut q = self.queue.lock();
            q.frames.clear();
            q.bytes = 0;
            q.closing = false;
        }
        self.push_close(frame);
        self.abort.start();
    }

    pub(crate) fn close_sent(&self) -> Option<CloseFrame> {
        self.sent_close.lock().clone()
    }

    pub(crate) fn push_pong(&self, payload: Bytes) {
        {
            let mut q = self.queue.lock();
            if q.closing {
                return;
            }
            let pong = OutFrame::new(OpCode::Pong, payload);
            if q.pongs.len() >= MAX_OWED_PONGS {
                q.pongs.pop_back();
            }
            q.pongs.push_back(pong);
        }
        self.writer_wake.wake();
    }

    pub(super) fn push_ping(&self) {
        let _ = self.push(OutFrame::new(OpCode::Ping, Bytes::new()), true);
    }

    /// The reader saw the peer's close frame.
    pub(crate) fn peer_closed(&self) {
        self.peer_closed.store(true, Ordering::Release);
        self.writer_wake.wake();
    }
}

impl Corked for Shared {
    /// A cork flush reached this connection: one non-blocking write of what
    /// is queued, as [`Shared::send_direct`] makes, and the rest (or all of
    /// it, when the queue needs the writer) left to the writer task.
    fn flush_corked(&self) {
        let (mut batch, room_wanted) = {
            let mut q = self.queue.lock();
            q.corked = false;
            if q.frames.is_empty() {
                return;
            }
            if q.writing || q.closing || !q.pongs.is_empty() || self.compression.needs_writer() {
                drop(q);
                self.writer_wake.wake();
                return;
            }
            q.writing = true;
            q.bytes = 0;
            (
                std::mem::take(&mut q.frames),
                std::mem::take(&mut q.room_wanted),
            )
        };
        let written = {
            let mut io = self.io.lock();
            match io.as_mut() {
                Some(io) => write_now(io, batch.make_contiguous()).ok(),
                None => Some(0),
            }
        };
        let Some(mut left) = written else {
            self.queue.lock().writing = false;
            self.kill();
            return;
        };
        let (mut frames, bytes) = (0, left);
        while let Some(front) = batch.front_mut() {
            if left < front.len() {
                if left > 0 {
                    *front = front.remainder(left);
                }
                break;
            }
            left -= front.len();
            frames += 1;
            batch.pop_front();
        }
        let wake = {
            let mut q = self.queue.lock();
            q.writing = false;
            q.bytes += batch.iter().map(OutFrame::len).sum::<usize>();
            if q.frames.is_empty() {
                // Keeps the queue's allocation (and its order).
                std::mem::swap(&mut q.frames, &mut batch);
            } else {
                while let Some(frame) = batch.pop_back() {
                    q.frames.push_front(frame);
                }
            }
            !q.frames.is_empty()
        };
        if bytes > 0 {
            self.stats.written(self.id, frames, bytes);
        }
        if room_wanted {
            self.room.notify_waiters();
        }
        if wake {
            self.writer_wake.wake();
        }
    }

    /// Asks the CPU to start loading this connection's queue and socket
    /// while the one before is being served: with thousands of recipients,
    /// each connection's state is out of the cache by the time a fan-out
    /// reaches it, and the miss was most of the flush's own time.
    fn prefetch(&self) {
        #[cfg(target_arch = "x86_64")]
        #[allow(unsafe_code)]
        // SAFETY: a prefetch is only a hint to the cache: it reads nothing
        // into the program and cannot fault, whatever the address.
        unsafe {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            let start = std::ptr::from_ref(self).cast::<i8>();
            // The reference counts just before `self`, then the hot fields.
            for line in [-16, 48, 112, 176] {
                _mm_prefetch::<_MM_HINT_T0>(start.wrapping_offset(line));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Shared;
    use std::mem::offset_of;

    /// `Shared` is `repr(C)`, so field order is layout: a flag left between
    /// wider fields costs every connection eight bytes (and once put its
    /// allocation a size class up, measured as idle memory).
    #[test]
    fn the_connection_flags_sit_in_consecutive_bytes() {
        let dead = offset_of!(Shared, dead);
        assert_eq!(offset_of!(Shared, heard), dead + 1);
        assert_eq!(offset_of!(Shared, more_buffered), dead + 2);
        assert_eq!(offset_of!(Shared, peer_closed), dead + 3);
    }
}
