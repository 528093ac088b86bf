//! Switchboard: a real-time WebSocket framework.
//!
//! Routes map paths to async handlers whose arguments are extractors
//! ([`WebSocketUpgrade`], [`Path`], [`Query`], ...). A handler accepts the
//! upgrade and gets a [`WebSocket`] to receive and send on; a cloneable
//! [`Sender`] lets other tasks send to it through a bounded queue.
//!
//! ```no_run
//! use switchboard::{Error, Path, Switchboard, WebSocketUpgrade};
//!
//! async fn echo(ws: WebSocketUpgrade) -> Result<(), Error> {
//!     let mut ws = ws.accept().await?;
//!     while let Some(message) = ws.recv().await? {
//!         ws.send(message).await?;
//!     }
//!     Ok(())
//! }
//!
//! async fn chat(ws: WebSocketUpgrade, Path(room_id): Path<u64>) -> Result<(), Error> {
//!     let mut ws = ws.accept().await?;
//!     while let Some(text) = ws.recv_text().await? {
//!         ws.send_text(format!("{room_id}: {text}")).await?;
//!     }
//!     Ok(())
//! }
//!
//! # async fn run() -> Result<(), Error> {
//! Switchboard::new()
//!     .route("/ws/echo", echo)
//!     .route("/ws/chat/{room_id}", chat)
//!     .serve("127.0.0.1:8080")
//!     .await
//! # }
//! ```
//!
//! # Layout
//! The modules form layers: each one uses only the modules above it in
//! this list, never one below (a test, `tests/layers.rs`, enforces it).
//!
//! 1. [`error`]: [`Error`], [`Rejection`] and [`RejectionKind`].
//! 2. [`codes`]: the close codes Switchboard sends; `stamp`: fresh
//!    protocol envelopes (id and time), for every layer that sends one.
//! 3. `transport`: the byte streams a connection runs over.
//! 4. [`delivery`]: what a connection sends: the bounded queue, [`Sender`],
//!    the writer task, compression, [`Keepalive`], [`Outgoing`], counters.
//! 5. [`hub`]: the registry of connections, users and rooms, and fan-out.
//! 6. [`broker`]: many instances as one ([`Cluster`], [`broker::Broker`]).
//! 7. `identity` and [`request`]: who the client is, and its request.
//! 8. [`security`]: origin checks, rate limits, caps, authentication,
//!    guards, and the gate that runs them with its counters.
//! 9. [`config`]: server and route settings, plain data.
//! 10. `conn`: the app and its routes ([`Switchboard`], [`App`]), the
//!     listener, the handshake, extractors and handlers, the upgrade, the
//!     socket ([`WebSocket`]), the close; and [`WebSocketService`] (feature
//!     `hyper`) to mount the routes in an axum `Router` or any hyper server.
//! 11. [`protocol`]: the structured JSON protocol (`docs/protocol.md`) and
//!     the engine it runs on.
//! 12. [`testing`] (feature `testkit`): the in-process test client and the
//!     shared broker test suite.
//!
//! [`ws`] is the codec (re-exported `switchboard-ws`).

// No `unwrap` outside tests: a failure says what went wrong (`expect`)
// or is handled.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod error;

pub mod codes;

mod stamp;

mod transport;

pub mod delivery;

pub mod hub;

pub mod broker;

mod identity;
pub mod request;

pub mod security;

pub mod config;

mod conn;

pub mod protocol;

#[cfg(feature = "testkit")]
pub mod testing;

pub use switchboard_ws as ws;

pub use broker::{Cluster, ConnectionAddr, InstanceId, Payload, Target};
pub use config::{DeflateConfig, Keepalive, Limits, RouteConfig, ServerConfig};
pub use conn::{
    App, ClientAddr, FromRequest, Handler, Headers, HttpFallback, IntoHandlerResult, Message, Path,
    Query, RefusalHook, RequestContext, Server, ShutdownHandle, Switchboard, WebSocket,
    WebSocketUpgrade,
};
#[cfg(feature = "hyper")]
pub use conn::{ResponseBody, ResponseFuture, WebSocketService};
pub use delivery::{Outgoing, Sender, TrySendError};
pub use error::{Error, Rejection, RejectionKind};
pub use hub::{ConnectionId, ConnectionInfo, Hub, HubHooks, Room, UserId};
pub use protocol::{Publisher, StructuredProtocol};
pub use request::RequestInfo;
pub use security::{Identity, Security};
pub use switchboard_ws::{CloseCode, CloseFrame, OutFrame, Utf8Bytes};
#[cfg(feature = "testkit")]
pub use testing::{TestClient, TestError, TestSocket};
pub use transport::Io;

#[doc(hidden)]
pub use conn::Outcome;
