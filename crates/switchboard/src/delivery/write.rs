//! Putting frames on the wire: one non-blocking attempt from the stack
//! first, then vectored writes for what the socket did not take.

use std::borrow::Cow;
use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;

use futures_util::task::AtomicWaker;
use switchboard_ws::OutFrame;
use tokio::io::{AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::transport::WriteHalf;

/// A frame, or a batch of frames, adding up to at most this many bytes is
/// copied into one stack buffer and sent with one plain `send`, rather than
/// a `writev` of two slices per frame: a fan-out batch of eight 66-byte
/// frames was sixteen slices for 528 bytes, and a single 1 KiB echo two.
const SMALL_BATCH: usize = 4096;

/// Set when the connection is evicted: the writer stops waiting on a socket
/// the client does not read.
#[derive(Debug, Default)]
pub(super) struct Abort {
    started: AtomicBool,
    waker: AtomicWaker,
}

impl Abort {
    pub(super) fn start(&self) {
        self.started.store(true, Ordering::Release);
        self.waker.wake();
    }

    pub(super) fn started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }
}

/// Writes a batch; if the connection is evicted meanwhile, gives the write
/// `grace` more time to finish and then fails it.
///
/// Most writes complete at once: this tries without waiting or allocating,
/// in the call, and returns `Ok(None)` when the socket took everything.
/// Otherwise it returns the wait for room, boxed: the writer task's future
/// then holds one pointer for it instead of the waiting state.
pub(super) fn write_or_abort<'a>(
    abort: &'a Abort,
    io: &'a mut WriteHalf,
    batch: &'a [OutFrame],
    grace: Duration,
) -> std::io::Result<Option<Pin<Box<impl Future<Output = std::io::Result<()>> + 'a>>>> {
    let written = write_now(io, batch)?;
    let rest = if written == 0 {
        Cow::Borrowed(batch)
    } else {
        Cow::Owned(remainder(batch, written))
    };
    if rest.is_empty() {
        return Ok(None);
    }
    Ok(Some(Box::pin(async move {
        write_waiting(abort, io, &rest, grace).await
    })))
}

/// Writes what the socket did not take at once, waiting for room; if the
/// connection is evicted meanwhile, gives the write `grace` more time.
async fn write_waiting(
    abort: &Abort,
    io: &mut WriteHalf,
    batch: &[OutFrame],
    grace: Duration,
) -> std::io::Result<()> {
    let write = write_frames(io, batch);
    tokio::pin!(write);
    let first = std::future::poll_fn(|cx| {
        if let Poll::Ready(result) = write.as_mut().poll(cx) {
            return Poll::Ready(Some(result));
        }
        abort.waker.register(cx.waker());
        if abort.started() {
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

/// One non-blocking write of `batch` (frames adding up to [`SMALL_BATCH`]
/// bytes as one buffer, since a plain send costs the kernel less than a
/// writev of many slices; a few larger frames from an IO slice array on the
/// stack); returns the bytes taken.
pub(super) fn write_now(io: &mut WriteHalf, batch: &[OutFrame]) -> std::io::Result<usize> {
    const STACK_FRAMES: usize = 8;
    if batch.iter().map(OutFrame::len).sum::<usize>() <= SMALL_BATCH {
        // Uninitialised: zeroing the whole buffer first would cost as much
        // as the copy of a small batch.
        let mut stack = [MaybeUninit::<u8>::uninit(); SMALL_BATCH];
        let mut small = ReadBuf::uninit(&mut stack);
        for frame in batch {
            small.put_slice(frame.header.as_slice());
            small.put_slice(&frame.payload);
        }
        return io.write_now(small.filled());
    }
    if batch.len() > STACK_FRAMES {
        return Ok(0);
    }
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
    io.write_vectored_now(&slices[..n])
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
