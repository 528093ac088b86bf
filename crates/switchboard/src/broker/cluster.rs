//! The cluster: a hub plus a broker, so that a publish on any instance
//! reaches recipients on every instance.

use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;
use switchboard_ws::CloseCode;
use tokio::task::JoinHandle;

use crate::hub::{ConnectionId, Hub, Room, UserId};

use super::presence::{Presence, PresenceConfig, PresenceStats};
use super::stream::{HistoryConfig, IdempotencyKey, StreamLimits};
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
    broker: Arc<dyn Broker>,
    /// The repair and presence tasks, once started.
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in self.tasks.get_mut().drain(..) {
            task.abort();
        }
    }
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("instance", self.0.node.instance())
            .field("broker", &self.0.broker)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Cluster`] with more than the defaults: an instance id of
/// your choice, channels with history.
#[derive(Debug)]
pub struct ClusterBuilder {
    hub: Hub,
    broker: Arc<dyn Broker>,
    instance: Option<InstanceId>,
    history: HistoryConfig,
    presence: PresenceConfig,
}

impl ClusterBuilder {
    /// Sets the instance id (random by default).
    pub fn instance(mut self, instance: InstanceId) -> Self {
        self.instance = Some(instance);
        self
    }

    /// Sets which channels keep a history (none by default).
    pub fn history(mut self, history: HistoryConfig) -> Self {
        self.history = history;
        self
    }

    /// Sets which channels keep presence (none by default).
    pub fn presence(mut self, presence: PresenceConfig) -> Self {
        self.presence = presence;
        self
    }

    /// The cluster member. Call [`Cluster::start`] before publishing.
    pub fn build(self) -> Cluster {
        let instance = self.instance.unwrap_or_else(InstanceId::random);
        Cluster(Arc::new(Inner {
            node: LocalNode::new(instance, self.hub, self.history, self.presence),
            broker: self.broker,
            tasks: Mutex::new(Vec::new()),
        }))
    }
}

/// Options of a publish.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PublishOptions {
    /// A connection to leave out (typically the sender of a chat message).
    pub except: Option<ConnectionAddr>,
    /// The publisher's name for this message: a retry with the same key
    /// within the idempotency window ([`HistoryConfig::idempotency_window`])
    /// is answered with the first attempt's result and not sent again.
    pub idempotency_key: Option<IdempotencyKey>,
}

impl PublishOptions {
    /// No options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`PublishOptions::except`].
    pub fn except(mut self, except: ConnectionAddr) -> Self {
        self.except = Some(except);
        self
    }

    /// Sets [`PublishOptions::idempotency_key`].
    pub fn idempotency_key(mut self, key: IdempotencyKey) -> Self {
        self.idempotency_key = Some(key);
        self
    }
}

impl Cluster {
    /// A cluster member for `hub`, with a random instance id, using `broker`.
    /// Call [`Cluster::start`] before publishing.
    pub fn new(hub: Hub, broker: impl Broker) -> Self {
        Self::builder(hub, broker).build()
    }

    /// A cluster member with the given instance id.
    pub fn with_instance(instance: InstanceId, hub: Hub, broker: impl Broker) -> Self {
        Self::builder(hub, broker).instance(instance).build()
    }

    /// A builder, for an instance id of your choice or channels with history.
    pub fn builder(hub: Hub, broker: impl Broker) -> ClusterBuilder {
        ClusterBuilder {
            hub,
            broker: Arc::new(broker),
            instance: None,
            history: HistoryConfig::default(),
            presence: PresenceConfig::default(),
        }
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
        let started = self.0.broker.start(self.0.node.clone()).await;
        let node = &self.0.node;
        let mut tasks = self.0.tasks.lock();
        if tasks.is_empty() {
            if !node.streams().config().rules.is_empty() {
                let task = super::repair::run(node.clone(), Arc::clone(&self.0.broker));
                tasks.push(tokio::spawn(task));
            }
            if let Some(ops) = node.presence().receiver.lock().take() {
                let config = Arc::clone(&node.presence().config);
                let task = super::presence::worker::run(
                    node.clone(),
                    Arc::clone(&self.0.broker),
                    config,
                    ops,
                );
                tasks.push(tokio::spawn(task));
            }
        }
        started
    }

    /// Stops the broker: unsubscribes, removes this instance from
    /// cluster-wide counts, and stops its tasks. Publishes fail afterwards.
    /// Local connections are not closed (shut the server down for that).
    pub async fn shutdown(&self) {
        self.0.node.stop();
        for task in self.0.tasks.lock().drain(..) {
            task.abort();
        }
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

    /// Whether `channel` keeps presence (a rule of [`ClusterBuilder::presence`]).
    pub fn keeps_presence(&self, channel: &Room) -> bool {
        self.0.node.presence_config().keeps(channel.as_str())
    }

    /// Whether `channel` sends join and leave events (its presence rule's
    /// `join_leave` is not [`JoinLeave::Off`](super::presence::JoinLeave)).
    pub fn announces_presence(&self, channel: &Room) -> bool {
        self.0.node.presence_config().announces(channel.as_str())
    }

    /// Who is subscribed to `channel` across the cluster: up to
    /// `PresenceConfig::max_members` members, and the exact counts.
    /// [`BrokerError::NoPresence`] for a channel without a presence rule;
    /// an unknown channel has no members.
    pub async fn presence(&self, channel: &Room) -> Result<Presence, BrokerError> {
        if !self.keeps_presence(channel) {
            return Err(BrokerError::NoPresence(channel.to_string()));
        }
        let max = self.0.node.presence_config().max_members;
        self.0.broker.presence(channel, max).await
    }

    /// How many connections and distinct users are subscribed to `channel`
    /// across the cluster, in O(1). [`BrokerError::NoPresence`] for a
    /// channel without a presence rule.
    pub async fn presence_stats(&self, channel: &Room) -> Result<PresenceStats, BrokerError> {
        if !self.keeps_presence(channel) {
            return Err(BrokerError::NoPresence(channel.to_string()));
        }
        self.0.broker.presence_stats(channel).await
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

    /// Like [`Cluster::publish`], with options: a connection to leave out,
    /// an idempotency key.
    pub async fn publish_with(
        &self,
        target: Target,
        payload: impl Into<Payload>,
        options: PublishOptions,
    ) -> Result<Published, PublishError> {
        let envelope =
            Envelope::new(target, Body::Message(payload.into())).with_except(options.except);
        self.send_with(envelope, options.idempotency_key.as_ref())
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
    pub async fn send(&self, envelope: Envelope) -> Result<Published, PublishError> {
        self.send_with(envelope, None).await
    }

    /// [`Cluster::send`], recognising a retry by its idempotency key.
    ///
    /// A message to a channel with history goes into the channel's stream
    /// first (`Err` means it is not there), then to local subscribers in
    /// offset order. Other messages are delivered locally at once, then
    /// handed to the broker (with a key: the broker first, which drops a
    /// retry, then locally).
    pub async fn send_with(
        &self,
        mut envelope: Envelope,
        key: Option<&IdempotencyKey>,
    ) -> Result<Published, PublishError> {
        envelope.origin = Some(self.instance().clone());
        if let Some(limits) = self.stream_limits(&envelope) {
            return self.append(envelope, &limits, key).await;
        }
        if let Target::Connection(addr) = &envelope.target
            && addr.instance == *self.instance()
        {
            let local = self.0.node.apply(&envelope);
            return Ok(Published::new(local, false));
        }
        if let Some(key) = key {
            return self.send_once(envelope, key).await;
        }
        let local = self.0.node.apply(&envelope);
        match self.0.broker.publish(&envelope).await {
            Ok(()) => Ok(Published::new(local, true)),
            Err(source) => Err(PublishError { local, source }),
        }
    }

    /// A keyed publication to a target without history: the broker first
    /// (it refuses a key it has seen), then local recipients. An attempt
    /// whose broker call failed is held until its echo, or a retry, says
    /// whether the broker ran it (`unconfirmed.rs`).
    async fn send_once(
        &self,
        envelope: Envelope,
        key: &IdempotencyKey,
    ) -> Result<Published, PublishError> {
        let node = &self.0.node;
        let window = node.streams().config().idempotency_window;
        let mut earlier = node.unconfirmed().take(key.as_str());
        match self.0.broker.publish_once(&envelope, key, window).await {
            // The earlier attempts never ran: this one is the message.
            Ok(true) => Ok(Published::new(node.apply(&envelope), true)),
            // One of them ran; this instance had not delivered it yet.
            Ok(false) => Ok(Published {
                duplicate: true,
                ..Published::new(earlier.first().map_or(0, |e| node.apply(e)), true)
            }),
            Err(source) => {
                earlier.push(envelope);
                node.unconfirmed().hold(key.as_str(), earlier, window);
                Err(PublishError { local: 0, source })
            }
        }
    }

    /// The stream limits for `envelope`, when it is a message to a channel
    /// with history.
    fn stream_limits(&self, envelope: &Envelope) -> Option<StreamLimits> {
        let (Target::Room(room), Body::Message(_)) = (&envelope.target, &envelope.body) else {
            return None;
        };
        let config = self.0.node.streams().config();
        let rule = config.rule_for(room.as_str())?;
        Some(StreamLimits::new(rule, config))
    }

    async fn append(
        &self,
        mut envelope: Envelope,
        limits: &StreamLimits,
        key: Option<&IdempotencyKey>,
    ) -> Result<Published, PublishError> {
        let appended = self
            .0
            .broker
            .append(&envelope, limits, key)
            .await
            .map_err(|source| PublishError { local: 0, source })?;
        let local = if appended.duplicate {
            0
        } else {
            envelope.stream = Some(appended.position.clone());
            self.0.node.apply(&envelope)
        };
        Ok(Published {
            position: Some(appended.position),
            duplicate: appended.duplicate,
            ..Published::new(local, true)
        })
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
