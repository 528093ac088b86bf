//! The cloneable handle that sends to one connection from any task.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use serde::Serialize;
use switchboard_ws::{CloseCode, CloseFrame, OpCode, OutFrame, Utf8Bytes};

use super::cork::Corked;
use super::queue::{Shared, TrySendError};
use crate::error::Error;

/// A cloneable handle that sends to one connection from any task.
///
/// Sends go through the connection's outbound queue, bounded in bytes
/// ([`crate::RouteConfig::max_queue_bytes`]). [`Sender::send_frame`] waits for room;
/// [`Sender::try_send_frame`] never waits, and fails with [`TrySendError::Full`]
/// when the client is not keeping up: the caller decides whether to drop the
/// message or evict the client ([`Sender::close`] with
/// [`crate::codes::SLOW_CONSUMER`]).
#[derive(Debug, Clone)]
pub struct Sender {
    pub(crate) shared: Arc<Shared>,
}

impl Sender {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// A sender with no socket behind it, whose queue tests read with
    /// [`Sender::take_queued`].
    #[cfg(test)]
    pub(crate) fn detached(id: u64) -> Self {
        let stats = Arc::new(super::Stats::default());
        Self::new(Shared::new(1 << 20, id, stats, super::Compression::Off))
    }

    /// Everything queued so far, taken out of the queue.
    #[cfg(test)]
    pub(crate) fn take_queued(&self) -> Vec<OutFrame> {
        let mut queue = self.shared.queue.lock();
        queue.bytes = 0;
        queue.frames.drain(..).collect()
    }

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
    ///
    /// Not an `async fn`: the write (or the queueing) happens in the call,
    /// and the returned future is only the rare wait for room, boxed. A
    /// handler's future holds its pending send for the connection's life;
    /// this keeps that a few words. Call it only inside an `async` body,
    /// right before awaiting it, so that public sends stay lazy.
    pub(crate) fn send_frame_direct(
        &self,
        frame: OutFrame,
    ) -> DirectSend<impl Future<Output = Result<(), Error>> + '_> {
        match self.shared.send_direct(frame) {
            Ok(()) => DirectSend::Sent,
            Err((TrySendError::Closed, _)) => DirectSend::Closed,
            Err((TrySendError::Full, frame)) => {
                DirectSend::Waiting(Box::pin(self.send_frame(frame)))
            }
        }
    }

    /// Queues an encoded frame without waiting.
    pub fn try_send_frame(&self, frame: OutFrame) -> Result<(), TrySendError> {
        self.shared.push(frame, false).map_err(|(e, _)| e)
    }

    /// Queues a fan-out's frame without waiting; an idle connection is
    /// corked rather than woken (see `cork`).
    pub(crate) fn try_send_corked(&self, frame: OutFrame) -> Result<(), TrySendError> {
        self.shared.push_corked(frame).map_err(|(e, _)| e)
    }

    /// Starts loading this connection's queue into the cache (a fan-out
    /// calls it one recipient ahead).
    pub(crate) fn prefetch(&self) {
        self.shared.prefetch();
    }

    /// Starts the close handshake with `code` and `reason`. Frames queued
    /// before it are still sent; nothing after it is.
    pub fn close(&self, code: CloseCode, reason: &str) {
        self.shared.push_close(CloseFrame::new(code, reason));
    }

    /// Closes the connection at once with `code` (for example
    /// [`crate::codes::SLOW_CONSUMER`]): what is still queued is dropped, and a
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

/// What [`Sender::send_frame_direct`] returns: a send already done or
/// refused, or the wait for room in an allocation of its own. One word,
/// and the error only made when it is returned.
pub(crate) enum DirectSend<W> {
    Sent,
    Closed,
    Waiting(Pin<Box<W>>),
}

impl<W: Future<Output = Result<(), Error>>> Future for DirectSend<W> {
    type Output = Result<(), Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Self::Sent => Poll::Ready(Ok(())),
            Self::Closed => Poll::Ready(Err(Error::Closed)),
            Self::Waiting(wait) => wait.as_mut().poll(cx),
        }
    }
}
