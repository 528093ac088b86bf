//! A connection's outbound side: a queue bounded in bytes, the cloneable
//! [`Sender`] that fills it, and the writer task that drains it into one
//! vectored write per batch.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use parking_lot::Mutex;
use serde::Serialize;
use switchboard_ws::{CloseCode, CloseFrame, OpCode, OutFrame, Utf8Bytes};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::codes;
use crate::config::Keepalive;
use crate::error::Error;
use crate::hub::Stats;
use crate::transport::BoxWrite;
use switchboard_ws::deflate::{Compressor, DeflateParams, compress_message};

/// Most pongs owed at once; see `Queue::pongs`.
const MAX_OWED_PONGS: usize = 16;

/// Most frames the writer gathers into one vectored write.
const MAX_BATCH: usize = 64;

/// Why a [`Sender::try_send`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrySendError {
    /// The queue is over its byte limit: the client is not reading fast enough.
    #[error("outbound queue full")]
    Full,
    /// The connection is closing or closed.
    #[error("connection closed")]
    Closed,
}

/// Frames up to this size are copied into one buffer for a write.
const SMALL_FRAME: usize = 512;

#[derive(Debug, Default)]
struct Queue {
    frames: VecDeque<OutFrame>,
    bytes: usize,
    /// A close frame has been queued; nothing more is accepted.
    closing: bool,
    /// Someone (the writer task, or a direct send) owns the socket's write half.
    writing: bool,
    /// Pongs owed, at most [`MAX_OWED_PONGS`]: past that the latest ping's
    /// pong replaces the last one (RFC 6455 §5.5.3 allows answering just the
    /// latest), so a ping flood cannot grow the queue.
    pongs: VecDeque<OutFrame>,
}

/// State shared by the socket, its senders and its writer task.
pub(crate) struct Shared {
    queue: Mutex<Queue>,
    max_bytes: usize,
    /// Wakes the writer when frames are queued.
    writer_wake: Notify,
    /// Wakes senders waiting for room.
    room: Notify,
    /// Set when the connection is finished: the reader stops waiting.
    dead: AtomicBool,
    /// Wakes a reader blocked on the socket when `dead` is set.
    pub(crate) reader_wake: AtomicWaker,
    /// Set by the reader on every frame; cleared by the keepalive.
    pub(crate) heard: AtomicBool,
    /// Set by the reader when it returns a message with more received bytes
    /// behind it (a pipelined batch): the socket's own sends then go through
    /// the writer task, which sends the whole batch's replies in one write
    /// once the handler has worked through it, instead of one write each.
    pub(crate) more_buffered: AtomicBool,
    /// The reader has seen the peer's close frame.
    peer_closed: AtomicBool,
    /// The close frame we sent, once sent.
    sent_close: Mutex<Option<CloseFrame>>,
    /// Set when the connection is evicted: the writer stops waiting on a
    /// socket the client does not read.
    aborting: AtomicBool,
    writer_abort: AtomicWaker,
    pub(crate) stats: Arc<Stats>,
    /// The connection's id, also its counter stripe.
    pub(crate) id: u64,
    /// The socket's write half, taken by whoever holds the `writing` claim.
    io: Mutex<Option<BoxWrite>>,
    /// permessage-deflate, when negotiated.
    pub(crate) deflate: Option<DeflateParams>,
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
        deflate: Option<DeflateParams>,
    ) -> Arc<Self> {
        Arc::new(Self {
            queue: Mutex::new(Queue::default()),
            max_bytes,
            writer_wake: Notify::new(),
            room: Notify::new(),
            dead: AtomicBool::new(false),
            reader_wake: AtomicWaker::new(),
            heard: AtomicBool::new(true),
            more_buffered: AtomicBool::new(false),
            peer_closed: AtomicBool::new(false),
            sent_close: Mutex::new(None),
            aborting: AtomicBool::new(false),
            writer_abort: AtomicWaker::new(),
            stats,
            id,
            io: Mutex::new(None),
            deflate,
        })
    }

    /// Marks the connection finished and wakes everyone waiting on it.
    pub(crate) fn kill(&self) {
        self.dead.store(true, Ordering::Release);
        self.queue.lock().closing = true;
        self.reader_wake.wake();
        self.writer_wake.notify_one();
        self.room.notify_waiters();
    }

    pub(crate) fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }

    /// Queues a frame if it fits (or `force` is set, for control frames).
    /// A frame larger than the whole limit is still accepted into an empty
    /// queue, so that one big message is never refused forever.
    fn push(&self, frame: OutFrame, force: bool) -> Result<(), (TrySendError, OutFrame)> {
        {
            let mut q = self.queue.lock();
            if q.closing {
                return Err((TrySendError::Closed, frame));
            }
            if !force && q.bytes + frame.len() > self.max_bytes && q.bytes > 0 {
                return Err((TrySendError::Full, frame));
            }
            q.bytes += frame.len();
            q.frames.push_back(frame);
        }
        self.writer_wake.notify_one();
        Ok(())
    }

    /// Frames a data message for this connection, compressing it when
    /// deflate was negotiated without server context takeover (with context
    /// takeover the writer compresses, in queue order).
    pub(crate) fn encode(&self, opcode: OpCode, payload: Bytes) -> OutFrame {
        match &self.deflate {
            Some(params)
                if params.server_no_context_takeover && params.compresses(payload.len()) =>
            {
                match compress_message(&payload, params) {
                    Some(packed) => OutFrame::with_rsv1(opcode, packed, true),
                    None => OutFrame::new(opcode, payload),
                }
            }
            _ => OutFrame::new(opcode, payload),
        }
    }

    /// Whether the writer must compress (context takeover): then frames
    /// may not bypass it.
    fn writer_compresses(&self) -> bool {
        self.deflate
            .is_some_and(|p| !p.server_no_context_takeover && p.server_window_bits.is_some())
    }

    /// Writes `frame` straight to the socket when nothing is queued, no one
    /// else is writing and the reader holds no further request: the common
    /// request/response case then needs no hop to the writer task. One
    /// non-blocking attempt; whatever does not fit goes to the front of the
    /// queue for the writer. Falls back to [`Shared::push`] otherwise.
    fn send_direct(&self, frame: OutFrame) -> Result<(), (TrySendError, OutFrame)> {
        {
            let mut q = self.queue.lock();
            if q.closing {
                return Err((TrySendError::Closed, frame));
            }
            if q.writing
                || !q.frames.is_empty()
                || !q.pongs.is_empty()
                || self.more_buffered.load(Ordering::Relaxed)
                || self.writer_compresses()
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
            self.writer_wake.notify_one();
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
        self.writer_wake.notify_one();
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
        self.aborting.store(true, Ordering::Release);
        self.writer_abort.wake();
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
        self.writer_wake.notify_one();
    }

    fn push_ping(&self) {
        let _ = self.push(OutFrame::new(OpCode::Ping, Bytes::new()), true);
    }

    /// The reader saw the peer's close frame.
    pub(crate) fn peer_closed(&self) {
        self.peer_closed.store(true, Ordering::Release);
        self.writer_wake.notify_one();
    }
}

/// A cloneable handle that sends to one connection from any task.
///
/// Sends go through the connection's outbound queue, bounded in bytes
/// ([`crate::RouteConfig::max_queue_bytes`]). [`Sender::send`] waits for room;
/// [`Sender::try_send`] never waits, and fails with [`TrySendError::Full`]
/// when the client is not keeping up: the caller decides whether to drop the
/// message or evict the client ([`Sender::close`] with
/// [`codes::SLOW_CONSUMER`]).
#[derive(Debug, Clone)]
pub struct Sender {
    pub(crate) shared: Arc<Shared>,
}

impl Sender {
    /// Queues a text message, waiting for room in the queue.
    pub async fn send_text(&self, text: impl Into<Utf8Bytes>) -> Result<(), Error> {
        let frame = self.shared.encode(OpCode::Text, text.into().into_bytes());
        self.send_frame(frame).await
    }

    /// Queues a binary message, waiting for room in the queue.
    pub async fn send_binary(&self, data: impl Into<Bytes>) -> Result<(), Error> {
        let frame = self.shared.encode(OpCode::Binary, data.into());
        self.send_frame(frame).await
    }

    /// Serialises `value` and queues it as a text message.
    pub async fn send_json<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), Error> {
        let text = serde_json::to_string(value)?;
        self.send_text(text).await
    }

    /// Queues an encoded frame, waiting for room. The frame's payload is
    /// shared, not copied: encode a broadcast once and send it to many.
    pub async fn send_frame(&self, frame: OutFrame) -> Result<(), Error> {
        let mut frame = frame;
        loop {
            let room = self.shared.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            match self.shared.push(frame, false) {
                Ok(()) => return Ok(()),
                Err((TrySendError::Closed, _)) => return Err(Error::Closed),
                Err((TrySendError::Full, back)) => frame = back,
            }
            room.await;
        }
    }

    /// Like [`Sender::send_frame`], but writes straight to the socket when
    /// the queue is empty (used by the socket's own sends).
    pub(crate) async fn send_frame_direct(&self, frame: OutFrame) -> Result<(), Error> {
        match self.shared.send_direct(frame) {
            Ok(()) => Ok(()),
            Err((TrySendError::Closed, _)) => Err(Error::Closed),
            Err((TrySendError::Full, frame)) => self.send_frame(frame).await,
        }
    }

    /// Queues an encoded frame without waiting.
    pub fn try_send_frame(&self, frame: OutFrame) -> Result<(), TrySendError> {
        self.shared.push(frame, false).map_err(|(e, _)| e)
    }

    /// Starts the close handshake with `code` and `reason`. Frames queued
    /// before it are still sent; nothing after it is.
    pub fn close(&self, code: CloseCode, reason: &str) {
        self.shared.push_close(CloseFrame::new(code, reason));
    }

    /// Closes the connection at once with `code` (for example
    /// [`codes::SLOW_CONSUMER`]): what is still queued is dropped, and a
    /// socket that does not drain within the close timeout is abandoned.
    pub fn evict(&self, code: CloseCode, reason: &str) {
        self.shared.evict(CloseFrame::new(code, reason));
    }

    /// Bytes waiting in the queue (not counting a batch being written).
    pub fn queued_bytes(&self) -> usize {
        self.shared.queue.lock().bytes
    }

    /// Whether the connection is closing or closed.
    pub fn is_closed(&self) -> bool {
        self.shared.queue.lock().closing
    }
}

/// What the writer needs besides the socket.
#[derive(Debug)]
pub(crate) struct WriterOptions {
    pub(crate) keepalive: Option<Keepalive>,
    pub(crate) close_timeout: Duration,
}

/// Drains the queue into the socket until the close handshake is done or the
/// connection dies, then shuts the socket down and marks the connection dead.
pub(crate) async fn run_writer(shared: Arc<Shared>, io: BoxWrite, opts: WriterOptions) {
    *shared.io.lock() = Some(io);
    let mut pending: VecDeque<OutFrame> = VecDeque::new();
    let keepalive = opts.keepalive;
    let mut tick = keepalive.map(|k| Instant::now() + k.interval);
    let mut silent_since = Instant::now();
    let mut close_deadline: Option<Instant> = None;
    // One timer for the connection's life, moved rather than recreated: a
    // new timer per message would hit the runtime's timer wheel every time.
    let mut timer: Option<Pin<Box<tokio::time::Sleep>>> = None;
    // With server context takeover the writer owns the connection's
    // compressor and compresses in queue order.
    let mut compressor = match shared.deflate {
        Some(p) if shared.writer_compresses() => p
            .server_window_bits
            .map(|bits| (p, Compressor::new(p.level, bits))),
        _ => None,
    };
    loop {
        {
            let mut q = shared.queue.lock();
            // A direct send holds the claim only for one non-blocking write
            // and wakes us afterwards if frames are waiting.
            if !q.writing && (!q.frames.is_empty() || !q.pongs.is_empty()) {
                std::mem::swap(&mut q.frames, &mut pending);
                while let Some(pong) = q.pongs.pop_back() {
                    pending.push_front(pong);
                }
                q.bytes = 0;
                q.writing = true;
            }
        }
        if !pending.is_empty() {
            shared.room.notify_waiters();
            if let Some((params, compressor)) = compressor.as_mut() {
                for frame in pending.iter_mut() {
                    let data = matches!(frame.opcode(), Some(OpCode::Text | OpCode::Binary));
                    if data
                        && !frame.header.as_slice().is_empty()
                        && frame.header.as_slice()[0] & 0x40 == 0
                        && params.compresses(frame.payload.len())
                    {
                        let packed = compressor.compress(&frame.payload, false);
                        *frame = OutFrame::with_rsv1(
                            frame.opcode().unwrap_or(OpCode::Binary),
                            packed,
                            true,
                        );
                    }
                }
            }
            let Some(mut io) = shared.io.lock().take() else {
                shared.kill();
                return;
            };
            let mut wrote_close = false;
            while !pending.is_empty() {
                let take = pending.len().min(MAX_BATCH);
                let batch = &pending.make_contiguous()[..take];
                wrote_close |= batch.iter().any(|f| f.opcode() == Some(OpCode::Close));
                let bytes: usize = batch.iter().map(OutFrame::len).sum();
                if write_or_abort(&shared, &mut io, batch, opts.close_timeout)
                    .await
                    .is_err()
                {
                    shared.kill();
                    return;
                }
                shared.stats.written(shared.id, take, bytes);
                pending.drain(..take);
                if shared.aborting.load(Ordering::Acquire) && !wrote_close {
                    // Evicted: what is left here was queued before the close.
                    pending.clear();
                }
            }
            *shared.io.lock() = Some(io);
            shared.queue.lock().writing = false;
            if pending.capacity() > 4 * MAX_BATCH {
                pending = VecDeque::new();
            }
            if wrote_close && close_deadline.is_none() {
                close_deadline = Some(Instant::now() + opts.close_timeout);
            }
            continue;
        }
        if close_deadline.is_some() && shared.peer_closed.load(Ordering::Acquire) {
            break;
        }
        if shared.is_dead() {
            break;
        }
        let wake_at = close_deadline.or(tick);
        if let Some(at) = wake_at {
            match &mut timer {
                Some(t) if t.deadline() == at => {}
                Some(t) => t.as_mut().reset(at),
                None => timer = Some(Box::pin(tokio::time::sleep_until(at))),
            }
        }
        let fired = match (&mut timer, wake_at) {
            (Some(t), Some(_)) => tokio::select! {
                biased;
                () = shared.writer_wake.notified() => false,
                () = t.as_mut() => true,
            },
            _ => {
                shared.writer_wake.notified().await;
                false
            }
        };
        if !fired {
            continue;
        }
        let now = Instant::now();
        if close_deadline.is_some_and(|d| now >= d) {
            break;
        }
        if let (Some(k), Some(at)) = (keepalive, tick)
            && now >= at
        {
            if shared.heard.swap(false, Ordering::AcqRel) {
                silent_since = now;
            } else if now.duration_since(silent_since) >= k.timeout {
                shared.push_close(CloseFrame::new(
                    codes::KEEPALIVE_TIMEOUT,
                    "keepalive timeout",
                ));
            } else {
                shared.push_ping();
            }
            tick = Some(now + k.interval);
        }
    }
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

/// Writes a batch; if the connection is evicted meanwhile, gives the write
/// `grace` more time to finish and then fails it.
async fn write_or_abort(
    shared: &Shared,
    io: &mut BoxWrite,
    batch: &[OutFrame],
    grace: Duration,
) -> std::io::Result<()> {
    // Most writes complete at once: try without waiting or allocating, and
    // only hand what the socket did not take to the waiting path.
    let written = write_now(io, batch)?;
    let rest;
    let batch = if written == 0 {
        batch
    } else {
        rest = remainder(batch, written);
        if rest.is_empty() {
            return Ok(());
        }
        &rest[..]
    };
    let write = write_frames(io, batch);
    tokio::pin!(write);
    let first = std::future::poll_fn(|cx| {
        if let Poll::Ready(result) = write.as_mut().poll(cx) {
            return Poll::Ready(Some(result));
        }
        shared.writer_abort.register(cx.waker());
        if shared.aborting.load(Ordering::Acquire) {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await;
    match first {
        Some(result) => result,
        None => tokio::time::timeout(grace, write)
            .await
            .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into())),
    }
}

/// One non-blocking write of `batch` (a small single frame as one buffer,
/// since a plain send costs the kernel less than a two-part writev; a few
/// frames from an IO slice array on the stack); returns the bytes taken.
fn write_now(io: &mut BoxWrite, batch: &[OutFrame]) -> std::io::Result<usize> {
    const STACK_FRAMES: usize = 8;
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let polled = match batch {
        [frame] if frame.len() <= SMALL_FRAME => {
            let mut small = [0u8; SMALL_FRAME];
            let header = frame.header.as_slice();
            small[..header.len()].copy_from_slice(header);
            small[header.len()..frame.len()].copy_from_slice(&frame.payload);
            Pin::new(io).poll_write(&mut cx, &small[..frame.len()])
        }
        _ if batch.len() <= STACK_FRAMES => {
            let mut slices = [IoSlice::new(&[]); 2 * STACK_FRAMES];
            let mut n = 0;
            for frame in batch {
                slices[n] = IoSlice::new(frame.header.as_slice());
                n += 1;
                if !frame.payload.is_empty() {
                    slices[n] = IoSlice::new(&frame.payload);
                    n += 1;
                }
            }
            Pin::new(io).poll_write_vectored(&mut cx, &slices[..n])
        }
        _ => return Ok(0),
    };
    match polled {
        Poll::Ready(Ok(n)) => Ok(n),
        Poll::Ready(Err(e)) => Err(e),
        Poll::Pending => Ok(0),
    }
}

/// What is left of `batch` after its first `written` bytes went out.
fn remainder(batch: &[OutFrame], mut written: usize) -> Vec<OutFrame> {
    let mut rest = Vec::new();
    for frame in batch {
        let len = frame.len();
        if written >= len {
            written -= len;
            continue;
        }
        if written > 0 {
            rest.push(frame.remainder(written));
            written = 0;
        } else {
            rest.push(frame.clone());
        }
    }
    rest
}

/// Writes every frame of `frames` with as few vectored writes as the socket allows.
async fn write_frames<W: AsyncWrite + Unpin>(
    io: &mut W,
    frames: &[OutFrame],
) -> std::io::Result<()> {
    let mut slices = Vec::with_capacity(frames.len() * 2);
    for frame in frames {
        slices.push(IoSlice::new(frame.header.as_slice()));
        if !frame.payload.is_empty() {
            slices.push(IoSlice::new(&frame.payload));
        }
    }
    let mut bufs = &mut slices[..];
    while !bufs.is_empty() {
        let n = io.write_vectored(bufs).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut bufs, n);
    }
    Ok(())
}
