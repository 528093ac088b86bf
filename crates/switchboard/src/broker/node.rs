//! What a broker sees of its own instance: the hub to deliver into, the
//! topics local connections need, and notice when those change.
//!
//! Interest is tracked with [`HubHooks`]: every join, leave, connect and
//! disconnect marks its room or user as *changed* in each watcher's set
//! (a set, so a room that churns a thousand times between two looks is one
//! entry). A watcher then asks the hub whether the topic is still needed.
//! Asking the hub rather than counting events keeps the answer right
//! whatever order hooks and reads interleave in.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::{Mutex, RwLock};
use switchboard_ws::{CloseCode, CloseFrame};
use tokio::sync::Notify;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use crate::hub::{ConnectionId, ConnectionInfo, Hub, HubHooks, Room, UserId};

use super::presence::hooks::{Op, PresenceHooks};
use super::presence::lost::LostHandlers;
use super::presence::{LostConnection, PresenceConfig, PresenceEvent};
use super::stream::{Held, HistoryConfig, Streams, publication_frame};
use super::unconfirmed::Unconfirmed;
use super::{Body, Envelope, InstanceId, Target, Topic};

/// This instance, as its broker sees it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LocalNode {
    instance: InstanceId,
    hub: Hub,
    interest: Arc<Interest>,
    streams: Arc<Streams>,
    unconfirmed: Arc<Unconfirmed>,
    presence: Arc<PresenceHandle>,
}

/// The presence side of a node: its rules and the worker's queue.
#[derive(Debug)]
pub(crate) struct PresenceHandle {
    pub(crate) config: Arc<PresenceConfig>,
    ops: Option<UnboundedSender<Op>>,
    pub(crate) lost: LostHandlers,
    /// Taken by the worker when the cluster starts.
    pub(crate) receiver: Mutex<Option<UnboundedReceiver<Op>>>,
}

impl PresenceHandle {
    fn send(&self, op: Op) {
        if let Some(ops) = &self.ops {
            let _ = ops.send(op);
        }
    }
}

impl LocalNode {
    /// A node for `hub`, tracking interest through hooks added to it.
    pub(crate) fn new(
        instance: InstanceId,
        hub: Hub,
        history: HistoryConfig,
        presence: PresenceConfig,
    ) -> Self {
        let interest = Arc::new(Interest::default());
        let streams = Arc::new(Streams::new(history));
        hub.add_hooks(InterestHooks {
            interest: Arc::clone(&interest),
            streams: Arc::clone(&streams),
        });
        let config = Arc::new(presence);
        let (ops, receiver) = tokio::sync::mpsc::unbounded_channel();
        if !config.rules.is_empty() {
            hub.add_hooks(PresenceHooks {
                config: Arc::clone(&config),
                instance: instance.clone(),
                ops: ops.clone(),
            });
        }
        let (ops, receiver) = (Some(ops), Some(receiver));
        Self {
            instance,
            hub,
            interest,
            streams,
            unconfirmed: Arc::default(),
            presence: Arc::new(PresenceHandle {
                config,
                ops,
                lost: LostHandlers::default(),
                receiver: Mutex::new(receiver),
            }),
        }
    }

    /// Which channels keep presence.
    pub fn presence_config(&self) -> &PresenceConfig {
        &self.presence.config
    }

    pub(crate) fn presence(&self) -> &PresenceHandle {
        &self.presence
    }

    /// Hands join and leave events a broker found (the members of an
    /// instance it declared dead) to this instance's presence worker, which
    /// announces them to the channels' subscribers.
    pub fn announce_presence(&self, events: Vec<PresenceEvent>) {
        if !events.is_empty() {
            self.presence.send(Op::Announce(events));
        }
    }

    /// Hands the records of a dead instance's connections (each given to
    /// exactly one instance) to this instance's handlers
    /// ([`Cluster::on_lost_connections`](super::Cluster::on_lost_connections)).
    pub fn lost_connections(&self, lost: Vec<LostConnection>) {
        if !lost.is_empty() {
            self.presence.lost.call(lost);
        }
    }

    pub(crate) fn record(&self, op: Op) {
        self.presence.send(op);
    }

    /// Tells this instance the cluster declared it dead (it stopped
    /// renewing its lease, frozen or cut off, and another instance removed
    /// its presence): every local connection is closed with 1012, so that
    /// clients reconnect and the cluster's state is built again from live
    /// connections rather than served stale.
    pub fn declared_dead(&self) {
        tracing::warn!(
            instance = %self.instance,
            "this instance was declared dead by the cluster (its lease ran out): closing every connection with 1012 so that clients reconnect"
        );
        let close = Envelope::new(
            Target::All,
            Body::close(CloseCode::Restart, "instance lost its lease; reconnect"),
        );
        self.apply(&close);
    }

    /// Keyed publications whose broker call failed without an answer.
    pub(crate) fn unconfirmed(&self) -> &Unconfirmed {
        &self.unconfirmed
    }

    /// This instance's streams.
    pub(crate) fn streams(&self) -> &Streams {
        &self.streams
    }

    /// Tells the streams that the broker may have lost messages (it
    /// reconnected, or resubscribed): every channel with history is read
    /// back from its stream, and what was missed is delivered in order.
    /// Presence hands the broker this instance's members again too (a
    /// restarted backend may have lost them). A broker calls it once its
    /// subscriptions are in place again.
    pub fn resync_streams(&self) {
        self.streams.resync();
        self.presence.send(Op::Resync);
    }

    /// This instance's id.
    pub fn instance(&self) -> &InstanceId {
        &self.instance
    }

    /// This instance's hub.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Delivers an envelope that came from another instance to local
    /// connections; returns how many it reached. An envelope whose origin is
    /// this instance is ignored (it was delivered locally when published),
    /// so a broker that echoes a publisher's own messages back never causes
    /// a double delivery; unless it is a keyed publication whose broker
    /// call failed without an answer ([`LocalNode::is_own_echo`] says which).
    pub fn deliver(&self, envelope: &Envelope) -> usize {
        if envelope.origin.as_ref() == Some(&self.instance) && !self.unconfirmed.claim(envelope) {
            return 0;
        }
        self.apply(envelope)
    }

    /// Whether `envelope` is one of this instance's own that
    /// [`LocalNode::deliver`] will skip: a broker may drop it without
    /// decoding further. Lock-free unless a keyed publication is waiting
    /// for its echo.
    pub fn is_own_echo(&self, envelope: &Envelope) -> bool {
        envelope.origin.as_ref() == Some(&self.instance) && !self.unconfirmed.is_waiting()
    }

    /// Applies an envelope to local connections, whatever its origin.
    pub(crate) fn apply(&self, envelope: &Envelope) -> usize {
        let except = envelope
            .except
            .as_ref()
            .filter(|addr| addr.instance == self.instance)
            .map(|addr| addr.id);
        if let (Some(at), Target::Room(room), Body::Message(payload)) =
            (&envelope.stream, &envelope.target, &envelope.body)
        {
            // A stream's publication: in offset order, through its cursor.
            let held = Held::new(publication_frame(payload, at.offset), except);
            return self.streams.offer(&self.hub, room, at, held);
        }
        let here = Some(&self.instance);
        match &envelope.body {
            Body::Message(payload) => {
                envelope
                    .target
                    .send_local(&self.hub, here, &payload.to_outgoing(), except)
            }
            Body::Close(frame) => envelope
                .target
                .members_local(&self.hub, here)
                .into_iter()
                .filter(|id| Some(*id) != except)
                .filter(|id| self.hub.close(*id, frame.code, &frame.reason))
                .count(),
        }
    }

    /// Every topic local connections need now: rooms with a local member and
    /// users with a local connection. A broker subscribes to all of them
    /// after (re)connecting.
    pub fn topics(&self) -> Vec<Topic> {
        let mut rooms: HashSet<Room> = self.hub.rooms().into_iter().map(|(r, _)| r).collect();
        // A channel with a cursor is listened to while a connection joins it.
        rooms.extend(self.streams.rooms());
        let mut topics: Vec<Topic> = rooms.into_iter().map(Topic::Room).collect();
        let users: HashSet<UserId> = self
            .hub
            .connections()
            .into_iter()
            .filter_map(|c| c.user)
            .collect();
        topics.extend(users.into_iter().map(Topic::User));
        topics
    }

    /// Whether a local connection needs `topic` now.
    pub fn needs(&self, topic: &Topic) -> bool {
        match topic {
            Topic::Room(room) => {
                self.hub.room_size(room.clone()) > 0 || self.streams.contains(room)
            }
            Topic::User(user) => !self.hub.user_connections(user.clone()).is_empty(),
        }
    }

    /// A new watcher of topic changes. Each watcher sees every change once,
    /// independently of the others.
    pub fn watch(&self) -> TopicWatch {
        let shared = Arc::new(WatchShared::default());
        self.interest.watchers.write().push(Arc::downgrade(&shared));
        TopicWatch(shared)
    }

    /// Marks a topic as changed for every watcher (for changes the hub does
    /// not report through hooks, such as [`Hub::identify`], or a channel's
    /// cursor coming and going).
    pub(crate) fn touch(&self, topic: &Topic) {
        self.interest.mark(topic);
    }

    /// Stops tracking: hooks do nothing from now on.
    pub(crate) fn stop(&self) {
        self.interest.stopped.store(true, Ordering::Release);
    }
}

/// Topics that changed since the last look, for one watcher.
///
/// Bounded by the number of distinct rooms and users that changed between
/// two calls to [`TopicWatch::take`]; a watcher that takes regularly keeps it
/// small.
#[derive(Debug)]
pub struct TopicWatch(Arc<WatchShared>);

impl TopicWatch {
    /// Waits until some topic has changed since the last [`TopicWatch::take`].
    /// Cancel-safe.
    pub async fn changed(&self) {
        loop {
            let notified = self.0.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !self.0.dirty.lock().is_empty() {
                return;
            }
            notified.await;
        }
    }

    /// The topics changed since the last call; check each with
    /// [`LocalNode::needs`].
    pub fn take(&self) -> Vec<Topic> {
        self.0.dirty.lock().drain().collect()
    }

    /// Forgets pending changes (before a full resubscribe, which covers them).
    pub fn clear(&self) {
        self.0.dirty.lock().clear();
    }
}

#[derive(Debug, Default)]
struct WatchShared {
    dirty: Mutex<HashSet<Topic>>,
    notify: Notify,
}

#[derive(Debug, Default)]
struct Interest {
    watchers: RwLock<Vec<Weak<WatchShared>>>,
    stopped: AtomicBool,
}

impl Interest {
    fn mark(&self, topic: &Topic) {
        if self.stopped.load(Ordering::Acquire) {
            return;
        }
        let mut gone = false;
        for watcher in self.watchers.read().iter() {
            let Some(watcher) = watcher.upgrade() else {
                gone = true;
                continue;
            };
            let first = {
                let mut dirty = watcher.dirty.lock();
                let first = dirty.is_empty();
                dirty.insert(topic.clone());
                first
            };
            if first {
                watcher.notify.notify_one();
            }
        }
        if gone {
            self.watchers.write().retain(|w| w.strong_count() > 0);
        }
    }
}

/// Follows what local connections need: marks topics for the broker, and
/// drops a channel's cursor when its last local subscriber leaves.
struct InterestHooks {
    interest: Arc<Interest>,
    streams: Arc<Streams>,
}

impl HubHooks for InterestHooks {
    fn on_connect(&self, _hub: &Hub, info: &ConnectionInfo) {
        if let Some(user) = &info.user {
            self.interest.mark(&Topic::User(user.clone()));
        }
    }

    fn on_disconnect(&self, _hub: &Hub, info: &ConnectionInfo, _close: &CloseFrame) {
        if let Some(user) = &info.user {
            self.interest.mark(&Topic::User(user.clone()));
        }
    }

    fn on_join(&self, _hub: &Hub, _id: ConnectionId, room: &Room) {
        self.interest.mark(&Topic::Room(room.clone()));
    }

    fn on_leave(&self, hub: &Hub, _id: ConnectionId, room: &Room) {
        self.streams.release_if_unused(hub, room);
        self.interest.mark(&Topic::Room(room.clone()));
    }
}
