//! The read side of an accepted connection: the socket's read half, its
//! buffer and decoder, shared by the handler (which reads through its
//! socket) and the writer's keepalive (which checks for signs of life while
//! the handler does not read).

use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use switchboard_ws::{CloseCode, CloseFrame, Decoder, Utf8Bytes};
use tokio::io::{AsyncRead, ReadBuf};

use crate::delivery::{PeerProbe, Shared};
use crate::error::Error;
use crate::transport::{ReadHalf, discard};

/// Most bytes the keepalive reads ahead while the handler does not read:
/// enough to see that a client answers pings, bounded so that a client
/// nobody reads from is held back by TCP rather than by our memory.
const PROBE_BUFFER: usize = 16 * 1024;

/// The stack buffer a read lands in while nothing is buffered. Large enough
/// for a whole 16 KiB message (or many small ones) in one system call: a
/// read that fills its buffer leaves the socket marked readable, so with a
/// 4 KiB buffer a 16 KiB frame took three `recvfrom`s (4 KiB, the rest, and
/// one that found nothing); a read shorter than the buffer tells tokio the
/// socket is drained. It lives on the stack only during the call, so idle
/// connections still hold no read buffer.
const STACK_READ: usize = 64 * 1024;

/// A data message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message.
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
}

impl Message {
    /// The payload bytes, whatever the type.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Text(t) => t.as_bytes(),
            Self::Binary(b) => b,
        }
    }
}

/// How reading ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ended {
    /// The close handshake finished, or the peer closed with 1000, 1001 or no code.
    Clean,
    /// The peer closed with another code, or vanished (1006).
    Peer(CloseFrame),
    /// We failed the connection for a protocol error (already reported once).
    Failed,
}

/// The read side of a connection: the socket's read half, the buffer and the decoder.
pub(crate) struct Reader {
    io: ReadHalf,
    buf: BytesMut,
    decoder: Decoder,
    pub(crate) ended: Option<Ended>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("buffered", &self.buf.len())
            .field("ended", &self.ended)
            .finish()
    }
}

impl Reader {
    pub(crate) fn new(io: ReadHalf, leftover: BytesMut, decoder: Decoder) -> Self {
        Self {
            io,
            buf: leftover,
            decoder,
            ended: None,
        }
    }

    /// Receives the next data message, answering pings and running the close
    /// handshake on the way. `Ok(None)` once the connection closed cleanly.
    pub(crate) fn poll_recv(
        &mut self,
        shared: &Shared,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<Message>, Error>> {
        loop {
            match &self.ended {
                None => {}
                Some(Ended::Clean | Ended::Failed) => return Poll::Ready(Ok(None)),
                Some(Ended::Peer(frame)) => {
                    return Poll::Ready(Err(Error::Disconnected(frame.clone())));
                }
            }
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(message)) => {
                    if !shared.heard.load(Ordering::Relaxed) {
                        shared.heard.store(true, Ordering::Relaxed);
                    }
                    if let switchboard_ws::Message::Text(t) = &message {
                        shared.stats.received(shared.id, t.len());
                    } else if let switchboard_ws::Message::Binary(b) = &message {
                        shared.stats.received(shared.id, b.len());
                    }
                    match message {
                        switchboard_ws::Message::Text(t) => {
                            self.note_pipelined(shared);
                            return Poll::Ready(Ok(Some(Message::Text(t))));
                        }
                        switchboard_ws::Message::Binary(b) => {
                            self.note_pipelined(shared);
                            return Poll::Ready(Ok(Some(Message::Binary(b))));
                        }
                        switchboard_ws::Message::Ping(payload) => shared.push_pong(payload),
                        switchboard_ws::Message::Pong(_) => {}
                        switchboard_ws::Message::Close(frame) => self.on_peer_close(shared, frame),
                    }
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    // Fail the connection: send our close and shut the socket
                    // without waiting for a reply (RFC 6455 §7.1.7).
                    shared.push_close(CloseFrame::new(e.close_code(), e.to_string()));
                    shared.peer_closed();
                    self.ended = Some(Ended::Failed);
                    return Poll::Ready(Err(Error::Protocol(e)));
                }
            }
            if shared.is_dead() {
                self.on_dead(shared);
                continue;
            }
            shared.reader_wake.register(cx.waker());
            if shared.is_dead() {
                self.on_dead(shared);
                continue;
            }
            match ready!(self.poll_fill(cx)) {
                Ok(0) | Err(_) => {
                    // The peer vanished without a close frame.
                    self.on_dead(shared);
                    shared.kill();
                }
                Ok(_) => {}
            }
        }
    }

    /// Tells the send side whether more of the peer's bytes wait behind the
    /// message being returned (see [`Shared::more_buffered`]).
    fn note_pipelined(&self, shared: &Shared) {
        let more = !self.buf.is_empty();
        if shared.more_buffered.load(Ordering::Relaxed) != more {
            shared.more_buffered.store(more, Ordering::Relaxed);
        }
    }

    fn on_peer_close(&mut self, shared: &Shared, frame: Option<CloseFrame>) {
        let we_closed = shared.close_sent().is_some();
        if !we_closed {
            // Echo the peer's code, as RFC 6455 §5.5.1 asks.
            let code = frame.as_ref().map_or(CloseCode::Normal, |f| f.code);
            shared.push_close(CloseFrame::new(code, ""));
        }
        shared.peer_closed();
        self.ended = Some(match frame {
            _ if we_closed => Ended::Clean,
            None => Ended::Clean,
            Some(f) if matches!(f.code, CloseCode::Normal | CloseCode::Away) => Ended::Clean,
            Some(f) => Ended::Peer(f),
        });
    }

    fn on_dead(&mut self, shared: &Shared) {
        if self.ended.is_none() {
            self.ended = Some(if shared.close_sent().is_some() {
                Ended::Clean
            } else {
                Ended::Peer(CloseFrame::new(CloseCode::Abnormal, "connection lost"))
            });
        }
    }

    /// After the close, reads until the peer closes its side, so our close
    /// is not lost to a reset over unread bytes.
    pub(crate) async fn discard_until_eof(&mut self, within: std::time::Duration) {
        discard(&mut self.io, within).await;
    }

    /// Reads what has arrived without waiting (and without a waker of
    /// anyone's: only call it while no task waits on this socket), up to
    /// [`PROBE_BUFFER`] buffered; true when anything arrived or the buffer
    /// is full already.
    fn read_ahead(&mut self) -> bool {
        if self.ended.is_some() {
            return false;
        }
        if self.buf.len() >= PROBE_BUFFER {
            return true;
        }
        let mut cx = Context::from_waker(std::task::Waker::noop());
        matches!(self.poll_fill(&mut cx), Poll::Ready(Ok(n)) if n > 0)
    }

    /// Reads more bytes. An idle connection holds no read buffer: while the
    /// buffer is empty, reads land in a stack buffer of [`STACK_READ`] bytes
    /// and only what arrived is copied to the heap (one allocation of the
    /// exact size).
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        if self.buf.is_empty() {
            let mut stack = [MaybeUninit::<u8>::uninit(); STACK_READ];
            let mut rb = ReadBuf::uninit(&mut stack);
            ready!(Pin::new(&mut self.io).poll_read(cx, &mut rb))?;
            self.buf.extend_from_slice(rb.filled());
            Poll::Ready(Ok(rb.filled().len()))
        } else {
            if self.buf.capacity() - self.buf.len() < 1024 {
                self.buf.reserve(4096);
            }
            tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.buf)
        }
    }
}

/// The reader of an accepted connection, between its socket (the handler)
/// and its writer (the keepalive's [`PeerProbe`]).
pub(crate) struct ReaderCell {
    reader: Mutex<Option<Reader>>,
    shared: Arc<Shared>,
    /// A handler's receive is waiting for bytes: the socket has its waker,
    /// and the keepalive must not read (that would take the wake-up away).
    waiting: AtomicBool,
    /// The socket was dropped: the reader is the server's again.
    released: AtomicBool,
}

impl std::fmt::Debug for ReaderCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReaderCell")
            .field("waiting", &self.waiting)
            .field("released", &self.released)
            .finish_non_exhaustive()
    }
}

impl ReaderCell {
    pub(crate) fn new(reader: Reader, shared: Arc<Shared>) -> Arc<Self> {
        Arc::new(Self {
            reader: Mutex::new(Some(reader)),
            shared,
            waiting: AtomicBool::new(false),
            released: AtomicBool::new(false),
        })
    }

    /// Receives the next data message (see [`Reader::poll_recv`]).
    pub(crate) fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Result<Option<Message>, Error>> {
        let mut reader = self.reader.lock();
        let Some(reader) = reader.as_mut() else {
            return Poll::Ready(Err(Error::Closed));
        };
        let polled = reader.poll_recv(&self.shared, cx);
        self.waiting.store(polled.is_pending(), Ordering::Release);
        polled
    }

    /// For a stream of messages: once the reader has ended, the first call
    /// returns how (later ones see it as ended cleanly).
    pub(crate) fn take_ending(&self) -> Option<Ended> {
        let mut reader = self.reader.lock();
        let reader = reader.as_mut()?;
        reader.ended.as_ref()?;
        reader.ended.replace(Ended::Failed)
    }

    /// The socket is gone: the server may take the reader back.
    pub(crate) fn release(&self) {
        self.released.store(true, Ordering::Release);
    }

    /// The reader, once the socket released it (`None` while a handler's
    /// task still holds the socket).
    pub(crate) fn take_released(&self) -> Option<Reader> {
        if !self.released.load(Ordering::Acquire) {
            return None;
        }
        self.reader.lock().take()
    }
}

impl PeerProbe for ReaderCell {
    fn peer_spoke(&self) -> bool {
        if self.waiting.load(Ordering::Acquire) {
            return false;
        }
        // A handler inside a receive holds the lock: it reads itself.
        let Some(mut reader) = self.reader.try_lock() else {
            return false;
        };
        if self.waiting.load(Ordering::Acquire) {
            return false;
        }
        reader.as_mut().is_some_and(Reader::read_ahead)
    }
}
