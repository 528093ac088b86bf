//! The engine a message protocol runs on: it accepts the socket, reads
//! messages, drives the protocol's own timers and tasks, and runs the close.
//! [`super::StructuredProtocol`] is one [`Protocol`]; write your own to
//! speak something else on the same machinery.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use parking_lot::Mutex;
use switchboard_protocol::ConnectionState;
use switchboard_ws::{CloseCode, CloseFrame, OpCode, Utf8Bytes};

use crate::conn::Handler;
use crate::conn::Message;
use crate::conn::WebSocketUpgrade;
use crate::delivery::Sender;
use crate::error::Error;
use crate::hub::{ConnectionId, Hub, UserId};
use crate::identity::Identity;
use crate::request::RequestInfo;

/// What the engine should do after a protocol step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flow {
    /// Keep reading.
    Continue,
    /// Close with this frame: the engine runs the close handshake, then
    /// calls [`Protocol::closed`].
    Close(CloseFrame),
}

impl Flow {
    /// [`Flow::Close`] with `code` and `reason`.
    pub fn close(code: CloseCode, reason: impl Into<String>) -> Self {
        Self::Close(CloseFrame::new(code, reason))
    }
}

/// A message protocol on top of a WebSocket, run by the engine
/// ([`handler`], [`run`]).
///
/// The engine calls [`Protocol::open`] once the socket is accepted, then
/// for as long as the connection lives races the next message
/// ([`Protocol::message`]) against the protocol's own next event
/// ([`Protocol::wait`], then [`Protocol::wake`]), and finally reports the
/// end ([`Protocol::error`], [`Protocol::closed`]). Messages are handled
/// one at a time, in order; `wait` is where timers and background work
/// (tasks a message started) come back in.
///
/// ```
/// use switchboard::protocol::{Connection, Flow, Protocol};
/// use switchboard::{Error, Message};
///
/// /// Upper-cases every text message.
/// struct Shout;
///
/// impl Protocol for Shout {
///     type Session = u64; // messages seen
///     type Wake = ();
///
///     async fn open(&self, _conn: &Connection) -> Result<u64, Error> {
///         Ok(0)
///     }
///
///     async fn message(&self, conn: &Connection, seen: &mut u64, message: Message) -> Result<Flow, Error> {
///         *seen += 1;
///         if let Message::Text(text) = message {
///             conn.send_text(text.to_uppercase()).await?;
///         }
///         Ok(Flow::Continue)
///     }
/// }
///
/// let app = switchboard::Switchboard::new()
///     .route("/shout", switchboard::protocol::handler(std::sync::Arc::new(Shout)));
/// ```
pub trait Protocol: Send + Sync + 'static {
    /// Per-connection state, created by [`Protocol::open`].
    type Session: Send + 'static;
    /// What [`Protocol::wait`] returns: a timer fired, a task finished.
    type Wake: Send + 'static;

    /// The socket was accepted (state `connecting`). Send the greeting and
    /// build the session. An error closes the connection with its code.
    fn open(&self, conn: &Connection) -> impl Future<Output = Result<Self::Session, Error>> + Send;

    /// One message from the client.
    fn message(
        &self,
        conn: &Connection,
        session: &mut Self::Session,
        message: Message,
    ) -> impl Future<Output = Result<Flow, Error>> + Send;

    /// Waits for the protocol's own next event. The engine drops this
    /// future whenever a message arrives first, and asks again afterwards,
    /// so it must lose nothing when dropped (wait on timers and task sets,
    /// do the work in [`Protocol::wake`]). Default: never.
    fn wait(&self, session: &mut Self::Session) -> impl Future<Output = Self::Wake> + Send {
        let _ = session;
        std::future::pending()
    }

    /// Handles what [`Protocol::wait`] returned.
    fn wake(
        &self,
        conn: &Connection,
        session: &mut Self::Session,
        wake: Self::Wake,
    ) -> impl Future<Output = Result<Flow, Error>> + Send {
        let _ = (conn, session, wake);
        std::future::ready(Ok(Flow::Continue))
    }

    /// The connection's state changed (the engine's transitions and
    /// [`Connection::set_state`] calls made through the engine).
    fn state_changed(&self, conn: &Connection, from: ConnectionState, to: ConnectionState) {
        let _ = (conn, from, to);
    }

    /// The connection failed: a WebSocket protocol violation (the close,
    /// such as 1009, was already sent), or a step returned an error.
    fn error(&self, conn: &Connection, session: &mut Self::Session, error: &Error) {
        let _ = (conn, session, error);
    }

    /// The connection ended, with this close code and reason (ours, the
    /// peer's, or 1006 if it vanished).
    fn closed(&self, conn: &Connection, session: Self::Session, close: &CloseFrame) {
        let _ = (conn, session, close);
    }
}

/// One connection as a protocol sees it: its id, hub entry, request,
/// identity and state, and a way to send. Cheap to clone; hand clones to
/// tasks. Also stored in the hub: [`Connection::lookup`].
#[derive(Clone)]
pub struct Connection(Arc<Inner>);

struct Inner {
    id: ConnectionId,
    hub: Hub,
    sender: Sender,
    request: Arc<RequestInfo>,
    subprotocol: Option<String>,
    state: AtomicU8,
    identity: Mutex<Option<Identity>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.0.id)
            .field("state", &self.state())
            .field("user", &self.user_id())
            .finish_non_exhaustive()
    }
}

impl Connection {
    fn new(ws: &crate::conn::WebSocket, request: Arc<RequestInfo>) -> Self {
        Self(Arc::new(Inner {
            id: ws.id(),
            hub: ws.hub().clone(),
            sender: ws.sender(),
            identity: Mutex::new(request.identity().cloned()),
            request,
            subprotocol: ws.protocol().map(str::to_owned),
            state: AtomicU8::new(ConnectionState::Connecting as u8),
        }))
    }

    /// The protocol connection registered under `id` in `hub`, if it is
    /// live and runs on this engine (for hub hooks and other tasks).
    pub fn lookup(hub: &Hub, id: ConnectionId) -> Option<Self> {
        hub.state::<Self>(id)
    }

    /// The connection's id in the hub.
    pub fn id(&self) -> ConnectionId {
        self.0.id
    }

    /// The hub it is registered in.
    pub fn hub(&self) -> &Hub {
        &self.0.hub
    }

    /// Its outbound queue.
    pub fn sender(&self) -> &Sender {
        &self.0.sender
    }

    /// The request that opened it.
    pub fn request(&self) -> &RequestInfo {
        &self.0.request
    }

    /// The subprotocol agreed in the handshake.
    pub fn subprotocol(&self) -> Option<&str> {
        self.0.subprotocol.as_deref()
    }

    /// Where the connection is in its life.
    pub fn state(&self) -> ConnectionState {
        ConnectionState::from_index(self.0.state.load(Ordering::Acquire))
            .unwrap_or(ConnectionState::Error)
    }

    /// Sets the state; returns the previous one. Protocols call this for
    /// their own transitions (`authenticating`, `authenticated`).
    pub fn set_state(&self, state: ConnectionState) -> ConnectionState {
        let old = self.0.state.swap(state as u8, Ordering::AcqRel);
        ConnectionState::from_index(old).unwrap_or(ConnectionState::Error)
    }

    /// Who the client is, if it authenticated (in the handshake or since).
    pub fn identity(&self) -> Option<Identity> {
        self.0.identity.lock().clone()
    }

    /// The authenticated user's id.
    pub fn user_id(&self) -> Option<UserId> {
        self.0.identity.lock().as_ref().map(|i| i.user_id().clone())
    }

    /// Replaces the identity (after in-band authentication). This does not
    /// register the user in the hub: call [`Hub::identify`] (or
    /// `Cluster::identify`) too.
    pub fn set_identity(&self, identity: Option<Identity>) {
        *self.0.identity.lock() = identity;
    }

    /// Sends a text message, writing straight to the socket when its queue
    /// is empty (waits while the queue is full).
    pub async fn send_text(&self, text: impl Into<Utf8Bytes>) -> Result<(), Error> {
        let sender = &self.0.sender;
        let frame = sender.shared.encode(OpCode::Text, text.into().into_bytes());
        sender.send_frame_direct(frame).await
    }

    /// Starts the close handshake with `code` and `reason`.
    pub fn close(&self, code: CloseCode, reason: &str) {
        self.0.sender.close(code, reason);
    }

    /// The close frame we sent (or echoed), once sent.
    fn close_sent(&self) -> Option<CloseFrame> {
        self.0.sender.shared.close_sent()
    }
}

/// A route handler that runs `protocol` on every connection.
pub fn handler<P: Protocol>(
    protocol: Arc<P>,
) -> impl Handler<(WebSocketUpgrade, Arc<RequestInfo>)> {
    move |ws: WebSocketUpgrade, request: Arc<RequestInfo>| {
        let protocol = Arc::clone(&protocol);
        async move { run(&*protocol, ws, request).await }
    }
}

/// Accepts `ws` and runs `protocol` on it until the connection ends. Call
/// it from a handler of your own that also takes the `Arc<RequestInfo>`
/// extractor (or use [`handler`]).
pub async fn run<P: Protocol>(
    protocol: &P,
    ws: WebSocketUpgrade,
    request: Arc<RequestInfo>,
) -> Result<(), Error> {
    let mut ws = ws.accept().await?;
    let conn = Connection::new(&ws, request);
    conn.hub().set_state(conn.id(), conn.clone());
    protocol.state_changed(
        &conn,
        ConnectionState::Initializing,
        ConnectionState::Connecting,
    );
    let mut session = match protocol.open(&conn).await {
        Ok(session) => session,
        Err(e) => {
            transition(protocol, &conn, ConnectionState::Error);
            return Err(e);
        }
    };
    let ended = loop {
        let flow = tokio::select! {
            // Messages first: a PONG already read must count before a timer fires.
            biased;
            message = ws.recv() => match message {
                Ok(Some(message)) => protocol.message(&conn, &mut session, message).await,
                Ok(None) => break Ok(None),
                Err(e) => break Err(e),
            },
            wake = protocol.wait(&mut session) => protocol.wake(&conn, &mut session, wake).await,
        };
        match flow {
            Ok(Flow::Continue) => {}
            Ok(Flow::Close(frame)) => break Ok(Some(frame)),
            Err(e) => break Err(e),
        }
    };
    match ended {
        Ok(Some(frame)) => {
            transition(protocol, &conn, ConnectionState::Disconnecting);
            let _ = ws.close(frame.code, &frame.reason).await;
            transition(protocol, &conn, ConnectionState::Disconnected);
            protocol.closed(&conn, session, &frame);
            Ok(())
        }
        Ok(None) => {
            // The peer closed cleanly, or a close someone else started (the
            // hub, the token expiry, shutdown) completed.
            transition(protocol, &conn, ConnectionState::Disconnected);
            let frame = conn
                .close_sent()
                .unwrap_or_else(|| CloseFrame::new(CloseCode::Normal, ""));
            protocol.closed(&conn, session, &frame);
            Ok(())
        }
        Err(Error::Disconnected(frame)) => {
            let state = if frame.code == CloseCode::Abnormal {
                ConnectionState::Error
            } else {
                ConnectionState::Disconnected
            };
            transition(protocol, &conn, state);
            protocol.closed(&conn, session, &frame);
            Err(Error::Disconnected(frame))
        }
        Err(e) => {
            transition(protocol, &conn, ConnectionState::Error);
            protocol.error(&conn, &mut session, &e);
            let frame = conn.close_sent().unwrap_or_else(|| e.close_frame());
            protocol.closed(&conn, session, &frame);
            Err(e)
        }
    }
}

fn transition<P: Protocol>(protocol: &P, conn: &Connection, to: ConnectionState) {
    let from = conn.set_state(to);
    if from != to {
        protocol.state_changed(conn, from, to);
    }
}
