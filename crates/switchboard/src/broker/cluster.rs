//! The cluster: a hub plus a broker, so that a publish on any instance
//! reaches recipients on every instance.

use std::fmt;
use std::sync::Arc;

use switchboard_ws::CloseCode;

use crate::hub::{ConnectionId, Hub, Room, UserId};

use super::{
    Body, Broker, BrokerError, ConnectionAddr, Envelope, InstanceId, LocalNode, MemoryBroker,
    Payload, PublishError, Published, Target, Topic,
};

/// One instance's view of the whole cluster. Cheap to clone; every clone is
/// the same cluster member.
///
/// A publish is delivered to local recipients through the hub at once (no
/// round trip through the backend), then handed to the broker once for
/// every other instance. Each instance delivers what arrives from the
/// others to its own connections, and ignores its own messages, so every
/// recipient gets a message once.
///
/// ```no_run
/// use switchboard::broker::{Cluster, MemoryBroker, Payload, Target};
/// use switchboard::{Hub, Switchboard};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let hub = Hub::new();
/// let cluster = Cluster::new(hub.clone(), MemoryBroker::new());
/// cluster.start().await?;
/// let app = Switchboard::new().with_hub(hub); // ... routes ...
/// let published = cluster.publish(Target::room("lobby"), Payload::text("hello")).await?;
/// println!("{} local recipients", published.local);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Cluster(Arc<Inner>);

struct Inner {
    node: LocalNode,
    broker: Box<dyn Broker>,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("instance", self.0.node.instance())
            .field("broker", &self.0.broker)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// A cluster member for `hub`, with a random instance id, using `broker`.
    /// Call [`Cluster::start`] before publishing.
    pub fn new(hub: Hub, broker: impl Broker) -> Self {
        Self::with_instance(InstanceId::random(), hub, broker)
    }

    /// A cluster member with the given instance id.
    pub fn with_instance(instance: InstanceId, hub: Hub, broker: impl Broker) -> Self {
        Self(Arc::new(Inner {
            node: LocalNode::new(instance, hub),
            broker: Box::new(broker),
        }))
    }

    /// A single instance: the in-memory broker, nothing leaves the process.
    pub fn local(hub: Hub) -> Self {
        Self::new(hub, MemoryBroker::new())
    }

    /// Starts the broker: connects to its backend and subscribes to what
    /// local connections need. An error means the backend was not reachable
    /// in time; depending on the broker it may keep trying in the background
    /// (the Redis broker does), and publishes fail until it is reachable.
    pub async fn start(&self) -> Result<(), BrokerError> {
        self.0.broker.start(self.0.node.clone()).await
    }

    /// Stops the broker: unsubscribes, removes this instance from
    /// cluster-wide counts, and stops its tasks. Publishes fail afterwards.
    /// Local connections are not closed (shut the server down for that).
    pub async fn shutdown(&self) {
        self.0.node.stop();
        self.0.broker.shutdown().await;
    }

    /// This instance's id.
    pub fn instance(&self) -> &InstanceId {
        self.0.node.instance()
    }

    /// This instance's hub.
    pub fn hub(&self) -> &Hub {
        self.0.node.hub()
    }

    /// This instance as its broker sees it (topics, watchers).
    pub fn node(&self) -> &LocalNode {
        &self.0.node
    }

    /// The broker.
    pub fn broker(&self) -> &dyn Broker {
        &*self.0.broker
    }

    /// The cluster-wide address of a local connection.
    pub fn address(&self, id: ConnectionId) -> ConnectionAddr {
        ConnectionAddr::new(self.instance().clone(), id)
    }

    /// Sends a data message to `target` on every instance.
    ///
    /// Local recipients get it before this returns; `Err` means the broker
    /// did not accept it, so other instances did not (or, after a timeout,
    /// may not) get it — the error says how many local recipients did.
    pub async fn publish(
        &self,
        target: Target,
        payload: impl Into<Payload>,
    ) -> Result<Published, PublishError> {
        self.send(Envelope::new(target, Body::Message(payload.into())))
            .await
    }

    /// Like [`Cluster::publish`], leaving out one connection (the sender of a
    /// chat message, typically).
    pub async fn publish_except(
        &self,
        target: Target,
        payload: impl Into<Payload>,
        except: ConnectionAddr,
    ) -> Result<Published, PublishError> {
        self.send(Envelope::new(target, Body::Message(payload.into())).with_except(Some(except)))
            .await
    }

    /// Closes the connections of `target` on every instance with `code` and
    /// `reason`: one connection, a user's, a room's members, or everyone.
    pub async fn close(
        &self,
        target: Target,
        code: CloseCode,
        reason: &str,
    ) -> Result<Published, PublishError> {
        self.send(Envelope::new(target, Body::close(code, reason)))
            .await
    }

    /// Delivers `envelope` locally, then hands it to the broker unless no
    /// other instance can hold a recipient. The origin is set to this instance.
    pub async fn send(&self, mut envelope: Envelope) -> Result<Published, PublishError> {
        envelope.origin = Some(self.instance().clone());
        let local = self.0.node.apply(&envelope);
        if let Target::Connection(addr) = &envelope.target
            && addr.instance == *self.instance()
        {
            return Ok(Published {
                local,
                forwarded: false,
            });
        }
        match self.0.broker.publish(&envelope).await {
            Ok(()) => Ok(Published {
                local,
                forwarded: true,
            }),
            Err(source) => Err(PublishError { local, source }),
        }
    }

    /// Attaches a user to a connection, like [`Hub::identify`], and tells
    /// the broker so the connection gets that user's messages from other
    /// instances. (`Hub::identify` alone does not fire a hub hook, so the
    /// broker would not learn of it.)
    pub fn identify(&self, id: ConnectionId, user: impl Into<UserId>) -> bool {
        let user = user.into();
        let old = self.hub().info(id).and_then(|info| info.user);
        let done = self.hub().identify(id, user.clone());
        if let Some(old) = old {
            self.0.node.touch(&Topic::User(old));
        }
        self.0.node.touch(&Topic::User(user));
        done
    }

    /// Joins a room like [`Hub::join`], then waits until the broker listens
    /// for the room, so that a message published anywhere after this returns
    /// reaches the connection. `Ok(false)`: already a member, or gone.
    pub async fn join(&self, id: ConnectionId, room: impl Into<Room>) -> Result<bool, BrokerError> {
        let joined = self.hub().join(id, room);
        self.sync().await?;
        Ok(joined)
    }

    /// Waits until the broker's subscriptions cover every room and user
    /// local connections had when this was called. Subscriptions follow
    /// joins on their own; this is for when the caller must know that
    /// messages from other instances will arrive.
    pub async fn sync(&self) -> Result<(), BrokerError> {
        self.0.broker.sync().await
    }

    /// Live connections on every instance: this instance's exact count plus
    /// the others' latest reported counts (see the broker for how fresh).
    pub async fn connection_count(&self) -> Result<usize, BrokerError> {
        let remote = self.0.broker.remote_connection_count().await?;
        Ok(self.hub().connection_count() + remote)
    }

    /// Members of `room` on every instance, counted like
    /// [`Cluster::connection_count`].
    pub async fn room_size(&self, room: impl Into<Room>) -> Result<usize, BrokerError> {
        let room = room.into();
        let remote = self.0.broker.remote_room_size(&room).await?;
        Ok(self.hub().room_size(room) + remote)
    }
}
