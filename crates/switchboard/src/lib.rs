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
//! - [`server`]: the app builder ([`Switchboard`]), the listener, shutdown.
//! - `connection`: one connection's handshake, handler and close.
//! - [`extract`]: extractors; [`handler`]: what makes a function a handler.
//! - [`upgrade`]: the pending upgrade; [`socket`]: the accepted socket.
//! - [`outbound`]: the bounded outbound queue, [`Sender`] and the writer task.
//! - [`hub`]: the registry of connections, users and rooms, and fan-out.
//! - [`security`]: origin checks, rate limits, caps, authentication, guards.
//! - [`protocol`]: the structured JSON protocol (`docs/protocol.md`) and
//!   the engine it runs on.
//! - [`config`]: settings and their defaults; [`codes`]: our close codes.
//! - `service` (feature `hyper`): the app's routes as a tower `Service`,
//!   to mount them in an axum `Router` or any hyper server.
//! - [`testing`]: the in-process test client.
//! - [`ws`]: the codec (re-exported `switchboard-ws`).

pub mod broker;
pub mod codes;
pub mod config;
mod connection;
pub mod error;
pub mod extract;
pub mod handler;
pub mod hub;
pub mod outbound;
mod path;
pub mod protocol;
pub mod request;
pub mod security;
pub mod server;
#[cfg(feature = "hyper")]
pub mod service;
pub mod socket;
pub mod testing;
mod transport;
pub mod upgrade;

pub use switchboard_ws as ws;

pub use broker::{Cluster, ConnectionAddr, InstanceId, Payload, Target};
pub use config::{DeflateConfig, Keepalive, Limits, RouteConfig, ServerConfig};
pub use error::{Error, Rejection};
pub use extract::{ClientAddr, FromRequest, Headers, Path, Query, RequestContext};
pub use handler::{Handler, IntoHandlerResult};
pub use hub::{ConnectionId, ConnectionInfo, Hub, HubHooks, Outgoing, Room, UserId};
pub use outbound::{Sender, TrySendError};
pub use protocol::{Publisher, StructuredProtocol};
pub use request::RequestInfo;
pub use security::{Identity, Security};
pub use server::{App, HttpFallback, Server, ShutdownHandle, Switchboard};
#[cfg(feature = "hyper")]
pub use service::WebSocketService;
pub use socket::{Message, WebSocket};
pub use switchboard_ws::{CloseCode, CloseFrame, OutFrame, Utf8Bytes};
pub use testing::{TestClient, TestError, TestSocket};
pub use transport::Io;
pub use upgrade::WebSocketUpgrade;
