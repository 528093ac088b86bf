//! The accepted WebSocket: receive and send messages, close, and read the
//! request that opened it.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_core::Stream;
use serde::Serialize;
use serde::de::DeserializeOwned;
use switchboard_ws::{CloseCode, OpCode, OutFrame, Utf8Bytes};

use super::reader::{Ended, Message, ReaderCell};
use crate::delivery::Sender;
use crate::error::Error;
use crate::hub::{ConnectionId, Hub, Room};
use crate::request::RequestInfo;

/// An accepted WebSocket connection.
///
/// Read with [`WebSocket::recv`] (or as a [`Stream`]); pings are answered and
/// the close handshake is run for you. Send with the `send_*` methods, or
/// hand a [`Sender`] from [`WebSocket::sender`] to other tasks. When the
/// handler returns, the connection is closed: with 1000 if it returned `Ok`,
/// with the error's code otherwise (see [`Error::close_frame`]).
pub struct WebSocket {
    reader: Arc<ReaderCell>,
    sender: Sender,
    info: Arc<RequestInfo>,
    protocol: Option<String>,
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
        reader: Arc<ReaderCell>,
        sender: Sender,
        info: Arc<RequestInfo>,
        protocol: Option<String>,
        id: ConnectionId,
        hub: Hub,
    ) -> Self {
        Self {
            reader,
            sender,
            info,
            protocol,
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
        self.reader.poll_recv(cx)
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

    // The sends below return `async` blocks rather than being `async fn`s:
    // an `async fn` keeps each argument twice (as the argument and as the
    // local it is moved into), and a handler's future keeps a pending send
    // for the connection's life. The blocks do nothing until polled.

    /// Sends a text message (waits while the outbound queue is full).
    #[allow(
        clippy::manual_async_fn,
        reason = "an async fn keeps its arguments twice in its future"
    )]
    pub fn send_text(&self, text: impl Into<Utf8Bytes>) -> impl Future<Output = Result<(), Error>> {
        async move {
            let frame = self
                .sender
                .shared
                .encode(OpCode::Text, text.into().into_bytes());
            self.sender.send_frame_direct(frame).await
        }
    }

    /// Sends a binary message.
    #[allow(
        clippy::manual_async_fn,
        reason = "an async fn keeps its arguments twice in its future"
    )]
    pub fn send_binary(&self, data: impl Into<Bytes>) -> impl Future<Output = Result<(), Error>> {
        async move {
            let frame = self.sender.shared.encode(OpCode::Binary, data.into());
            self.sender.send_frame_direct(frame).await
        }
    }

    /// Serialises `value` as JSON and sends it as a text message.
    pub async fn send_json<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), Error> {
        self.send_text(serde_json::to_string(value)?).await
    }

    /// Sends a message.
    #[allow(
        clippy::manual_async_fn,
        reason = "an async fn keeps its arguments twice in its future"
    )]
    pub fn send(&self, message: Message) -> impl Future<Output = Result<(), Error>> {
        async move {
            let frame = match message {
                Message::Text(text) => self.sender.shared.encode(OpCode::Text, text.into_bytes()),
                Message::Binary(data) => self.sender.shared.encode(OpCode::Binary, data),
            };
            self.sender.send_frame_direct(frame).await
        }
    }

    /// Sends an already encoded frame (shared with other connections, not copied).
    #[allow(
        clippy::manual_async_fn,
        reason = "an async fn keeps its arguments twice in its future"
    )]
    pub fn send_frame(&self, frame: OutFrame) -> impl Future<Output = Result<(), Error>> {
        async move { self.sender.send_frame_direct(frame).await }
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
            // Report a disconnect once, then end the stream.
            Err(e @ Error::Disconnected(_)) => match this.reader.take_ending() {
                Some(Ended::Peer(frame)) => Poll::Ready(Some(Err(Error::Disconnected(frame)))),
                Some(_) => Poll::Ready(None),
                None => Poll::Ready(Some(Err(e))),
            },
            Err(e) => Poll::Ready(Some(Err(e))),
        }
    }
}

impl Drop for WebSocket {
    fn drop(&mut self) {
        self.reader.release();
    }
}
