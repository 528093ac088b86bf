//! Sending protocol messages from the server: to a channel, users, one
//! connection or everyone, each message serialised once whatever the
//! number of recipients.

use serde::Serialize;
use switchboard_protocol::payload::Event;
use switchboard_protocol::{Channel, Message};

use crate::broker::{Cluster, Payload, PublishError, Published, Target};
use crate::hub::{ConnectionId, Hub, Room, UserId};
pub(crate) use crate::stamp::{stamp, unix_seconds};

/// An application event type: a struct sent as `EVENT {event: EVENT, data:
/// <the struct>}`.
///
/// ```
/// use switchboard::protocol::AppEvent;
///
/// #[derive(serde::Serialize)]
/// struct ArticlePublished { title: String }
///
/// impl AppEvent for ArticlePublished {
///     const EVENT: &'static str = "article.published";
/// }
/// ```
pub trait AppEvent: Serialize {
    /// The event name.
    const EVENT: &'static str;

    /// The `EVENT` message for this value.
    fn to_event(&self) -> Result<Event, serde_json::Error> {
        Ok(Event::new(Self::EVENT, serde_json::to_value(self)?))
    }
}

/// Why a send failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The message did not serialise (a map with non-string keys, say).
    /// Nothing was sent.
    #[error("message did not serialise: {0}")]
    Encode(#[from] serde_json::Error),
    /// Local recipients got it, other instances did not (see [`PublishError`]).
    #[error(transparent)]
    Publish(#[from] PublishError),
}

/// Sends protocol messages to the connections of a hub, or of a whole
/// cluster. Cheap to clone.
///
/// Every message gets a fresh `id` and the current `timestamp`, is
/// serialised once, and the same bytes go to every recipient. `EVENT`,
/// `DATA` and `NOTIFICATION` sent to a channel carry `"channel"`.
///
/// ```no_run
/// use switchboard::protocol::Publisher;
/// use switchboard::protocol::wire::{Channel, payload::{Event, Notification, Level}};
///
/// # async fn run(hub: switchboard::Hub) -> Result<(), Box<dyn std::error::Error>> {
/// let publisher = Publisher::new(hub);
/// let news = Channel::new("public:news")?;
/// publisher.to_channel(&news, Event::new("article.published", serde_json::json!({"title": "Hello"}))).await?;
/// publisher.to_user("alice", Notification::new("Deploy", "v2 is live").level(Level::Success)).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Publisher(Backend);

#[derive(Debug, Clone)]
enum Backend {
    Hub(Hub),
    Cluster(Cluster),
}

impl Publisher {
    /// Sends through `hub` (this process only).
    pub fn new(hub: Hub) -> Self {
        Self(Backend::Hub(hub))
    }

    /// Sends through `cluster`: local recipients at once, other instances
    /// through its broker.
    pub fn clustered(cluster: Cluster) -> Self {
        Self(Backend::Cluster(cluster))
    }

    /// The local hub.
    pub fn hub(&self) -> &Hub {
        match &self.0 {
            Backend::Hub(hub) => hub,
            Backend::Cluster(cluster) => cluster.hub(),
        }
    }

    /// The cluster, if sends go through one.
    pub fn cluster(&self) -> Option<&Cluster> {
        match &self.0 {
            Backend::Hub(_) => None,
            Backend::Cluster(cluster) => Some(cluster),
        }
    }

    /// Sends to the subscribers of `channel`; sets the message's `channel`.
    pub async fn to_channel(
        &self,
        channel: &Channel,
        message: impl Into<Message>,
    ) -> Result<Published, SendError> {
        let mut message = message.into();
        message.set_channel(channel.as_str());
        self.send(Target::Room(Room::from(channel.as_str())), message)
            .await
    }

    /// Sends an application event to the subscribers of `channel`.
    pub async fn emit<E: AppEvent>(
        &self,
        channel: &Channel,
        event: &E,
    ) -> Result<Published, SendError> {
        self.to_channel(channel, event.to_event()?).await
    }

    /// Sends to every connection of `user`.
    pub async fn to_user(
        &self,
        user: impl Into<UserId>,
        message: impl Into<Message>,
    ) -> Result<Published, SendError> {
        self.send(Target::User(user.into()), message).await
    }

    /// Sends to every connection of each of `users` (serialised once for all).
    pub async fn to_users<U: Into<UserId>>(
        &self,
        users: impl IntoIterator<Item = U>,
        message: impl Into<Message>,
    ) -> Result<Published, SendError> {
        let payload = encode(message.into())?;
        let mut total = Published::new(0, false);
        for user in users {
            let sent = self.deliver(Target::User(user.into()), &payload).await?;
            total.local += sent.local;
            total.forwarded |= sent.forwarded;
        }
        Ok(total)
    }

    /// Sends to one local connection.
    pub async fn to_connection(
        &self,
        id: ConnectionId,
        message: impl Into<Message>,
    ) -> Result<Published, SendError> {
        match &self.0 {
            Backend::Hub(hub) => {
                let local = hub.send_to(id, &encode(message.into())?.to_outgoing());
                Ok(Published::new(local, false))
            }
            Backend::Cluster(cluster) => {
                let target = Target::Connection(cluster.address(id));
                self.send(target, message).await
            }
        }
    }

    /// Sends to every connection.
    pub async fn to_all(&self, message: impl Into<Message>) -> Result<Published, SendError> {
        self.send(Target::All, message).await
    }

    /// Sends to `target` (a room, a user, a connection anywhere in the
    /// cluster, everyone).
    pub async fn send(
        &self,
        target: Target,
        message: impl Into<Message>,
    ) -> Result<Published, SendError> {
        let payload = encode(message.into())?;
        self.deliver(target, &payload).await
    }

    async fn deliver(&self, target: Target, payload: &Payload) -> Result<Published, SendError> {
        match &self.0 {
            Backend::Cluster(cluster) => Ok(cluster.publish(target, payload.clone()).await?),
            Backend::Hub(hub) => {
                // Without a cluster every connection is local.
                let local = target.send_local(hub, None, &payload.to_outgoing(), None);
                Ok(Published::new(local, false))
            }
        }
    }
}

/// The message in a fresh envelope (new id, current time), as JSON text.
pub(crate) fn encode(message: Message) -> Result<Payload, serde_json::Error> {
    Ok(Payload::text(serde_json::to_string(&stamp(message, None))?))
}
