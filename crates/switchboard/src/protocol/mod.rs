//! The structured protocol (`docs/protocol.md`) on the server, and the
//! engine it runs on.
//!
//! [`StructuredProtocol`] speaks the JSON envelope protocol: `CONNECT_ACK`
//! on open, `AUTHENTICATE` with the route's authenticators (deadline,
//! failure limit, refresh, expiry warning), subscriptions as hub rooms
//! under [`ChannelRules`], actions routed to async handlers, heartbeats,
//! and the documented errors and close codes. Mount it as a route:
//!
//! ```no_run
//! use std::time::Duration;
//! use serde_json::{Value, json};
//! use switchboard::protocol::{ActionContext, ProtocolConfig, StructuredProtocol};
//! use switchboard::security::{JwtAuth, Security};
//! use switchboard::{RouteConfig, Switchboard};
//!
//! # async fn run() -> Result<(), switchboard::Error> {
//! let route = RouteConfig::default()
//!     .with_security(Security::new().authenticate(JwtAuth::hs256("a secret of at least thirty-two bytes")));
//! StructuredProtocol::new(ProtocolConfig::default().with_require_auth(true))
//!     .action("echo", |_cx: ActionContext, data: Value| async move { Ok(json!({ "echo": data })) })
//!     .route(Switchboard::new(), "/ws", route)
//!     .serve("0.0.0.0:8080")
//!     .await
//! # }
//! ```
//!
//! Servers send `EVENT`, `DATA` and `NOTIFICATION` with a [`Publisher`]
//! (to a channel, users, a connection, everyone; through a
//! [`crate::broker::Cluster`] when there is one). Other protocols can run
//! on the same engine by implementing [`Protocol`].
//!
//! # Layout
//! - [`engine`]: the [`Protocol`] trait, the per-connection [`Connection`]
//!   handle, and the loop that runs a protocol ([`handler`], [`run`]).
//! - `structured`: [`StructuredProtocol`], the protocol of `docs/protocol.md`;
//!   `auth` (`AUTHENTICATE`) and `subscriptions` (`SUBSCRIBE`, `UNSUBSCRIBE`).
//! - `session`: one connection's deadlines, subscriptions, errors, tasks.
//! - `channels`: [`ChannelRules`], [`ChannelPattern`], [`Access`], [`ChannelAuthorizer`].
//! - `actions`: [`ActionContext`], [`ActionError`].
//! - `publish`: [`Publisher`], [`AppEvent`].
//! - `hooks`: [`ProtocolHooks`].
//! - `config`: [`ProtocolConfig`].
//! - `text`: [`StructuredChannels`]: bare text to a channel goes out as an `EVENT`.
//! - [`wire`]: the message types themselves (the `switchboard-protocol` crate).

mod actions;
mod auth;
mod channels;
mod config;
pub mod engine;
mod hooks;
mod presence;
mod publish;
mod session;
mod structured;
mod subscriptions;
mod text;

/// The protocol's message types, payloads and codes (the
/// `switchboard-protocol` crate).
pub use switchboard_protocol as wire;

pub use crate::stamp::stamp;
pub use actions::{ActionContext, ActionError, ActionPattern};
pub use channels::{
    Access, Authorizer, ChannelAuthorizer, ChannelDecision, ChannelPattern, ChannelRequest,
    ChannelRules, PatternError,
};
pub use config::ProtocolConfig;
pub use engine::{Connection, Flow, Protocol, handler, run};
pub use hooks::{Inbound, ProtocolHooks};
pub use publish::{AppEvent, Publisher, SendError};
pub use session::{Session, Wake};
pub use structured::StructuredProtocol;
pub use switchboard_protocol::{
    ApplicationCode, Channel, Code, ConnectionState, Envelope, ErrorCode, MessageType,
};
pub use text::{StructuredChannels, TEXT_EVENT};
