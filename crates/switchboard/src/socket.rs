//! The accepted WebSocket: receive and send messages, close, and read the
//! request that opened it.

use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use serde::Serialize;
use serde::de::DeserializeOwned;
use switchboard_ws::{CloseCode, CloseFrame, Decoder, OpCode, OutFrame, Utf8Bytes};
use tokio::io::{AsyncRead, ReadBuf};

use crate::error::Error;
use crate::hub::{ConnectionId, Hub, Room};
use crate::outbound::{Sender, Shared};
use crate::request::RequestInfo;
use crate::transport::BoxRead;
use crate::upgrade::Slot;

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
    io: BoxRead,
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
    pub(crate) fn new(io: BoxRead, leftover: BytesMut, decoder: Decoder) -> Self {
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

    pub(crate) fn io_mut(&mut self) -> &mut BoxRead {
        &mut self.io
    }

    /// Reads more bytes. An idle connection holds no read buffer: while the
    /// buffer is empty, reads land in a stack buffer and only what arrived is
    /// copied to the heap.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        if self.buf.is_empty() {
            let mut stack = [MaybeUninit::<u8>::uninit(); 4096];
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

/// An accepted WebSocket connection.
///
/// Read with [`WebSocket::recv`] (or as a [`Stream`]); pings are answered and
/// the close handshake is run for you. Send with the `send_*` methods, or
/// hand a [`Sender`] from [`WebSocket::sender`] to other tasks. When the
/// handler returns, the connection is closed: with 1000 if it returned `Ok`,
/// with the error's code otherwise (see [`Error::close_frame`]).
pub struct WebSocket {
    reader: Option<Reader>,
    sender: Sender,
    info: Arc<RequestInfo>,
    protocol: Option<String>,
    slot: Arc<Slot>,
    id: ConnectionId,
    hub: Hub,
}

impl std::fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket")
            .field("path", &self.info.path())
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

impl WebSocket {
    pub(crate) fn new(
        reader: Reader,
        sender: Sender,
        info: Arc<RequestInfo>,
        protocol: Option<String>,
        slot: Arc<Slot>,
        id: ConnectionId,
        hub: Hub,
    ) -> Self {
        Self {
            reader: Some(reader),
            sender,
            info,
            protocol,
            slot,
            id,
            hub,
        }
    }

    /// This connection's id in the hub.
    pub fn id(&self) -> ConnectionId {
        self.id
    }

    /// The hub this connection is registered in.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Joins a room (see [`Hub::join`]).
    pub fn join(&self, room: impl Into<Room>) -> bool {
        self.hub.join(self.id, room)
    }

    /// Leaves a room (see [`Hub::leave`]).
    pub fn leave(&self, room: impl Into<Room>) -> bool {
        self.hub.leave(self.id, room)
    }

    fn reader(&mut self) -> &mut Reader {
        self.reader
            .as_mut()
            .expect("the reader is only taken on drop")
    }

    /// Receives the next message.
    ///
    /// Returns `Ok(None)` when the connection closed cleanly (the peer sent
    /// 1000, 1001 or no code, or a close we started completed), and
    /// [`Error::Disconnected`] with the peer's code and reason otherwise.
    /// A protocol violation closes the connection with the matching code and
    /// returns [`Error::Protocol`] once.
    pub async fn recv(&mut self) -> Result<Option<Message>, Error> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Message>, Error>> {
        let reader = self
            .reader
            .as_mut()
            .expect("the reader is only taken on drop");
        reader.poll_recv(&self.sender.shared, cx)
    }

    /// Receives the next message as text; a binary message is an
    /// [`Error::UnexpectedMessage`] (and closes with 1003 if returned from the handler).
    pub async fn recv_text(&mut self) -> Result<Option<Utf8Bytes>, Error> {
        match self.recv().await? {
            Some(Message::Text(text)) => Ok(Some(text)),
            Some(Message::Binary(_)) => Err(Error::UnexpectedMessage { expected: "text" }),
            None => Ok(None),
        }
    }

    /// Receives the next message as bytes; a text message is an [`Error::UnexpectedMessage`].
    pub async fn recv_bytes(&mut self) -> Result<Option<Bytes>, Error> {
        match self.recv().await? {
            Some(Message::Binary(data)) => Ok(Some(data)),
            Some(Message::Text(_)) => Err(Error::UnexpectedMessage { expected: "binary" }),
            None => Ok(None),
        }
    }

    /// Receives the next message (text or binary) and parses it as JSON.
    pub async fn recv_json<T: DeserializeOwned>(&mut self) -> Result<Option<T>, Error> {
        match self.recv().await? {
            Some(message) => Ok(Some(serde_json::from_slice(message.as_bytes())?)),
            None => Ok(None),
        }
    }

    /// Sends a text message (waits while the outbound queue is full).
    pub async fn send_text(&self, text: impl Into<Utf8Bytes>) -> Result<(), Error> {
        let frame = self
            .sender
            .shared
            .encode(OpCode::Text, text.into().into_bytes());
        self.sender.send_frame_direct(frame).await
    }

    /// Sends a binary message.
    pub async fn send_binary(&self, data: impl Into<Bytes>) -> Result<(), Error> {
        let frame = self.sender.shared.encode(OpCode::Binary, data.into());
        self.sender.send_frame_direct(frame).await
    }

    /// Serialises `value` as JSON and sends it as a text message.
    pub async fn send_json<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), Error> {
        self.send_text(serde_json::to_string(value)?).await
    }

    /// Sends a message.
    pub async fn send(&self, message: Message) -> Result<(), Error> {
        match message {
            Message::Text(text) => self.send_text(text).await,
            Message::Binary(data) => self.send_binary(data).await,
        }
    }

    /// Sends an already encoded frame (shared with other connections, not copied).
    pub async fn send_frame(&self, frame: OutFrame) -> Result<(), Error> {
        self.sender.send_frame_direct(frame).await
    }

    /// Starts the close handshake with `code` and `reason`, and waits until
    /// it completes (or the close timeout passes). Messages that arrive
    /// meanwhile are discarded.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.sender.close(code, reason);
        while self.recv().await?.is_some() {}
        Ok(())
    }

    /// A handle other tasks can send with.
    pub fn sender(&self) -> Sender {
        self.sender.clone()
    }

    /// The subprotocol agreed in the handshake.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The request that opened this connection.
    pub fn request(&self) -> &RequestInfo {
        &self.info
    }
}

impl Stream for WebSocket {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match ready!(this.poll_recv(cx)) {
            Ok(Some(message)) => Poll::Ready(Some(Ok(message))),
            Ok(None) => Poll::Ready(None),
            Err(Error::Disconnected(_)) if this.reader().ended.is_some() => {
                // Report a disconnect once, then end the stream.
                let ended = this.reader().ended.replace(Ended::Failed);
                match ended {
                    Some(Ended::Peer(frame)) => Poll::Ready(Some(Err(Error::Disconnected(frame)))),
                    _ => Poll::Ready(None),
                }
            }
            Err(e) => Poll::Ready(Some(Err(e))),
        }
    }
}

impl Drop for WebSocket {
    fn drop(&mut self) {
        if let Some(reader) = self.reader.take() {
            self.slot.return_reader(reader);
        }
    }
}
