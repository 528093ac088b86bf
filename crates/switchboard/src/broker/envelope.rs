//! What travels between instances: who a message is for ([`Target`]), what
//! it is ([`Body`]), and the [`Envelope`] a broker carries.

use bytes::Bytes;
use serde::Serialize;
use switchboard_ws::{CloseCode, CloseFrame, Utf8Bytes};

use crate::hub::{Outgoing, Room, UserId};

use super::stream::StreamPosition;
use super::{ConnectionAddr, InstanceId};

/// Who a cluster-wide message is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Target {
    /// Every member of a room, on every instance.
    Room(Room),
    /// Every connection of a user, on every instance.
    User(UserId),
    /// One connection, on the instance that holds it.
    Connection(ConnectionAddr),
    /// Every connection on every instance.
    All,
}

impl Target {
    /// Every member of `room`.
    pub fn room(room: impl Into<Room>) -> Self {
        Self::Room(room.into())
    }

    /// Every connection of `user`.
    pub fn user(user: impl Into<UserId>) -> Self {
        Self::User(user.into())
    }
}

impl From<ConnectionAddr> for Target {
    fn from(addr: ConnectionAddr) -> Self {
        Self::Connection(addr)
    }
}

/// A data message's content: text or binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// A text message.
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
}

impl Payload {
    /// A text message.
    pub fn text(text: impl Into<Utf8Bytes>) -> Self {
        Self::Text(text.into())
    }

    /// A binary message.
    pub fn binary(data: impl Into<Bytes>) -> Self {
        Self::Binary(data.into())
    }

    /// `value` serialised as JSON text.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        Ok(Self::text(serde_json::to_string(value)?))
    }

    /// The payload's bytes (UTF-8 for text).
    pub fn as_bytes(&self) -> &Bytes {
        match self {
            Self::Text(text) => text.as_bytes(),
            Self::Binary(data) => data,
        }
    }

    /// The message encoded for the hub (once, for every local recipient).
    pub fn to_outgoing(&self) -> Outgoing {
        match self {
            Self::Text(text) => Outgoing::text(text.clone()),
            Self::Binary(data) => Outgoing::binary(data.clone()),
        }
    }
}

impl From<&str> for Payload {
    fn from(text: &str) -> Self {
        Self::text(text)
    }
}

impl From<String> for Payload {
    fn from(text: String) -> Self {
        Self::text(text)
    }
}

impl From<Utf8Bytes> for Payload {
    fn from(text: Utf8Bytes) -> Self {
        Self::Text(text)
    }
}

impl From<Bytes> for Payload {
    fn from(data: Bytes) -> Self {
        Self::Binary(data)
    }
}

impl From<Vec<u8>> for Payload {
    fn from(data: Vec<u8>) -> Self {
        Self::Binary(data.into())
    }
}

/// What a cluster-wide message does to its recipients.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Body {
    /// Deliver a data message.
    Message(Payload),
    /// Close the connections with this code and reason.
    Close(CloseFrame),
}

impl Body {
    /// A close command.
    pub fn close(code: CloseCode, reason: impl Into<String>) -> Self {
        Self::Close(CloseFrame::new(code, reason))
    }
}

/// One message between instances, as a broker carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Envelope {
    /// The instance that published it; `None` for a publisher outside the
    /// cluster (a worker writing to the broker directly). An instance
    /// ignores envelopes that carry its own id: it delivered them locally
    /// when it published them.
    pub origin: Option<InstanceId>,
    /// Who it is for.
    pub target: Target,
    /// A connection to leave out (typically the sender of a chat message).
    pub except: Option<ConnectionAddr>,
    /// What it carries.
    pub body: Body,
    /// For a publication to a channel with history: its place in the
    /// channel's stream (set by the broker that appended it).
    pub stream: Option<StreamPosition>,
}

impl Envelope {
    /// An envelope with no origin and no exception.
    pub fn new(target: Target, body: Body) -> Self {
        Self {
            origin: None,
            target,
            except: None,
            body,
            stream: None,
        }
    }

    /// Sets the publishing instance.
    pub fn with_origin(mut self, origin: InstanceId) -> Self {
        self.origin = Some(origin);
        self
    }

    /// Leaves one connection out.
    pub fn with_except(mut self, except: Option<ConnectionAddr>) -> Self {
        self.except = except;
        self
    }

    /// Sets the stream position (what a broker that appended it does).
    pub fn with_stream(mut self, position: Option<StreamPosition>) -> Self {
        self.stream = position;
        self
    }
}

/// Something an instance subscribes to because a local connection needs it.
///
/// Brokers also always listen for [`Target::All`] and for connections of
/// their own instance; those are not topics because they never change.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// A room with at least one local member.
    Room(Room),
    /// A user with at least one local connection.
    User(UserId),
}

/// What a cluster-wide publish did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Published {
    /// Local connections it was queued for (or, for a close, told to
    /// close). For a channel with history: the channel's local subscribers,
    /// who get it in offset order.
    pub local: usize,
    /// Whether it was handed to the broker for the other instances. `false`
    /// only when no other instance could hold a recipient (a connection of
    /// this instance).
    pub forwarded: bool,
    /// For a channel with history: the publication's place in its stream.
    pub position: Option<StreamPosition>,
    /// The idempotency key was seen before: this answers the first attempt
    /// (its position), and nothing was sent this time.
    pub duplicate: bool,
}

impl Published {
    /// A publish that reached `local` connections here, and the other
    /// instances if `forwarded`.
    pub fn new(local: usize, forwarded: bool) -> Self {
        Self {
            local,
            forwarded,
            position: None,
            duplicate: false,
        }
    }
}
