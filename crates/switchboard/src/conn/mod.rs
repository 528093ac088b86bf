//! Connections: the app and its routes, the listener, the handshake, the
//! handler and its extractors, the upgrade, the socket, and the close.
//!
//! # Layout
//! Each file uses only those listed before it:
//! - `path`: path parameters as serde input; `rewind`: a stream that
//!   replays bytes already read; `hyper_io` (feature `hyper`): answering a
//!   request hyper read.
//! - `reader`: the read side of an accepted connection, shared by its
//!   socket and its keepalive.
//! - `slot`: the hand-offs between the server and a handler.
//! - `socket`: [`WebSocket`](crate::WebSocket); `upgrade`:
//!   [`WebSocketUpgrade`](crate::WebSocketUpgrade) and accepting it.
//! - `extract`: extractors; `handler`: what makes a function a handler.
//! - `app`: [`Switchboard`](crate::Switchboard), [`App`](crate::App),
//!   shutdown.
//! - `accept`: one connection's life, from the request head to the close.
//! - `server`: the TCP listener; `service` (feature `hyper`): the routes as
//!   a tower `Service`.

mod accept;
mod app;
mod extract;
mod handler;
#[cfg(feature = "hyper")]
mod hyper_io;
mod path;
mod reader;
mod rewind;
mod server;
#[cfg(feature = "hyper")]
mod service;
mod slot;
mod socket;
mod upgrade;

pub use app::{App, HttpFallback, RefusalHook, ShutdownHandle, Switchboard};
pub use extract::{ClientAddr, FromRequest, Headers, Path, Query, RequestContext};
pub use handler::{Handler, IntoHandlerResult};
#[cfg(feature = "hyper")]
pub use hyper_io::ResponseBody;
pub use reader::Message;
pub use server::Server;
#[cfg(feature = "hyper")]
pub use service::{ResponseFuture, WebSocketService};
pub use socket::WebSocket;
pub use upgrade::WebSocketUpgrade;

#[doc(hidden)]
pub use handler::Outcome;
