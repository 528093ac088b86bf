//! The Switchboard structured protocol (version 1), as Rust types.
//!
//! Every protocol message is one JSON object in one WebSocket text frame:
//!
//! ```json
//! {"type": "SUBSCRIBE", "id": "6f1c…", "timestamp": 1763769600.125,
//!  "payload": {"subscriptions": ["public:news"]}}
//! ```
//!
//! `docs/protocol.md` at the repository root is the contract; this crate
//! mirrors it and a test checks the lists here ([`MessageType::ALL`],
//! [`ErrorCode::ALL`], [`CloseCode::ALL`], [`ConnectionState::ALL`])
//! against the document's tables. The TypeScript client mirrors the same
//! tables.
//!
//! ```
//! use switchboard_protocol::{Envelope, Message, payload};
//!
//! let envelope = switchboard_protocol::parse(
//!     r#"{"type":"SUBSCRIBE","id":"c3","payload":{"subscriptions":["public:news"]}}"#,
//! ).unwrap();
//! match envelope.message {
//!     Message::Subscribe(payload::Subscribe { subscriptions }) => {
//!         assert_eq!(subscriptions[0].channel(), "public:news");
//!     }
//!     other => panic!("unexpected {other:?}"),
//! }
//!
//! let reply = Envelope::new(payload::SubscribeSuccess::new("public:news"))
//!     .with_id("s4")
//!     .correlated_with(envelope.id.as_deref());
//! assert_eq!(
//!     serde_json::to_string(&reply).unwrap(),
//!     r#"{"type":"SUBSCRIBE_SUCCESS","payload":{"channel":"public:news"},"id":"s4","correlation_id":"c3"}"#,
//! );
//! ```
//!
//! Nothing here does IO, reads the clock or generates ids: the server (the
//! `switchboard` crate's `protocol` module) fills `id` and `timestamp`.
//!
//! # Layout
//! - [`kind`]: [`MessageType`], the `type` field, and who may send each.
//! - [`payload`]: one struct per message type; [`Message`] ties them together.
//! - [`envelope`]: [`Envelope`] and the parser ([`parse`]) that classifies
//!   bad input into the documented error codes.
//! - [`codes`]: [`ErrorCode`] and [`CloseCode`] (with reconnect advice).
//! - [`channel`]: [`Channel`], a validated channel name.
//! - [`state`]: the connection states ([`ConnectionState`]).

// No `unwrap` outside tests: a failure says what went wrong (`expect`)
// or is handled.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod channel;
pub mod codes;
pub mod envelope;
pub mod kind;
pub mod pattern;
pub mod payload;
pub mod presence;
pub mod state;
pub mod stream;

pub use channel::{Channel, ChannelError, MAX_CHANNEL_LEN};
pub use codes::{ApplicationCode, CloseCode, Code, ErrorCode, InvalidCode, Reconnect};
pub use envelope::{Envelope, MAX_ID_LEN, ParseError, parse, parse_slice};
pub use kind::{Direction, MessageType};
pub use pattern::{ChannelPattern, PatternError};
pub use payload::Message;
pub use presence::{JOIN_EVENT, LEAVE_EVENT, PresenceMember, PresenceRequest, PresenceResult};
pub use state::ConnectionState;
pub use stream::{GAP_EVENT, NotRecovered, Recover, StreamGap, SubscriptionRequest};

/// The protocol version this crate speaks (`protocol_version` in `CONNECT_ACK`).
pub const PROTOCOL_VERSION: u32 = 1;

/// The WebSocket subprotocol name clients may offer.
pub const SUBPROTOCOL: &str = "switchboard.v1";

/// The event name of the warning sent before a session's credentials expire.
pub const SESSION_EXPIRING_EVENT: &str = "switchboard.session_expiring";
