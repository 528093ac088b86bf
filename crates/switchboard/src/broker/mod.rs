//! Brokers: how many instances act as one. The in-memory broker is the default.
//!
//! A [`Cluster`] sits on top of an instance's [`Hub`](crate::Hub): a publish
//! to a [`Target`] (a room, a user, one connection, everyone) is delivered to
//! local recipients through the hub at once, then handed to the [`Broker`]
//! once, never once per recipient. The broker carries it to the other
//! instances, each of which delivers it to its own connections.
//!
//! A broker listens only for what local connections need: the rooms with a
//! local member and the users with a local connection ([`Topic`]s, tracked
//! through hub hooks and read from [`LocalNode`]), plus messages for everyone
//! and for this instance's connections.
//!
//! Backends: [`MemoryBroker`] (one process; also joins several in-process
//! instances through a [`MemoryBus`], for tests) and the Redis broker in the
//! `switchboard-redis` crate. Every backend passes the same test suite,
//! `switchboard::testing::broker` (feature `testkit`).
//!
//! # Layout
//! - [`Cluster`]: publish, close, counts, start and shutdown (`cluster`).
//! - [`Broker`]: what a backend implements (this file).
//! - [`Target`], [`Payload`], [`Body`], [`Envelope`], [`Topic`]: the messages (`envelope`).
//! - [`InstanceId`], [`ConnectionAddr`]: names across instances (`instance`).
//! - [`LocalNode`], [`TopicWatch`]: what a backend sees of its instance (`node`).
//! - `dispatch`: where a [`Target`] is on this instance (hub sends).
//! - [`MemoryBroker`], [`MemoryBus`]: the in-process backend (`memory`).
//! - [`BrokerError`], [`PublishError`]: failures (`error`).
//! - [`stream`]: channels with history: epochs, offsets, recovery.
//! - [`presence`]: who is subscribed where, join and leave events.
//! - `repair`: the task that reads missed publications back; `join`:
//!   subscribing to a channel with history, reading a stream.

mod cluster;
mod dispatch;
mod envelope;
mod error;
mod instance;
mod join;
mod memory;
mod node;
pub mod presence;
mod repair;
pub mod stream;
mod unconfirmed;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

pub use cluster::{Cluster, ClusterBuilder, PublishOptions};
pub use envelope::{Body, Envelope, Payload, Published, Target, Topic};
pub use error::{BrokerError, PublishError};
pub use instance::{ConnectionAddr, InstanceId, MAX_INSTANCE_ID_LEN};
pub use memory::{DEFAULT_HISTORY_MEMORY, MemoryBroker, MemoryBus};
pub use node::{LocalNode, TopicWatch};

use crate::hub::Room;
use presence::{JoinLeave, Member, Presence, PresenceEvent, PresenceStats};
use stream::{Appended, History, HistoryQuery, IdempotencyKey, StreamLimits};

/// A boxed future, as broker methods return (they are called through `dyn Broker`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A backend that carries messages between instances.
///
/// The [`Cluster`] does local delivery, the skipping of an instance's own
/// messages ([`LocalNode::deliver`]) and interest tracking; a backend only
/// moves envelopes and keeps its subscriptions in line with
/// [`LocalNode::topics`].
pub trait Broker: Send + Sync + fmt::Debug + 'static {
    /// Starts carrying messages for `node`: connect, subscribe to the
    /// topics it needs (and to messages for everyone and for its own
    /// connections), and from then on hand what arrives from other instances
    /// to [`LocalNode::deliver`] and follow topic changes
    /// ([`LocalNode::watch`]).
    fn start(&self, node: LocalNode) -> BoxFuture<'_, Result<(), BrokerError>>;

    /// Sends one envelope to the other instances: one backend operation
    /// whatever the number of recipients. `Ok` only once the backend has
    /// accepted it.
    fn publish<'a>(&'a self, envelope: &'a Envelope) -> BoxFuture<'a, Result<(), BrokerError>>;

    /// Waits until subscriptions cover the node's topics as of this call.
    fn sync(&self) -> BoxFuture<'_, Result<(), BrokerError>>;

    /// Live connections on the *other* instances, as last reported.
    fn remote_connection_count(&self) -> BoxFuture<'_, Result<usize, BrokerError>>;

    /// Members of `room` on the *other* instances, as last reported.
    fn remote_room_size<'a>(&'a self, room: &'a Room) -> BoxFuture<'a, Result<usize, BrokerError>>;

    /// Stops: unsubscribes, withdraws this instance's counts, ends tasks.
    fn shutdown(&self) -> BoxFuture<'_, ()>;

    /// Sends one envelope to the other instances, unless an earlier publish
    /// with the same `key` was sent within `window`: then nothing is sent
    /// and the answer is `Ok(false)`. The check and the send are one
    /// operation, so a retry after a timeout never goes out twice.
    /// The default refuses ([`BrokerError::Unsupported`]).
    fn publish_once<'a>(
        &'a self,
        envelope: &'a Envelope,
        key: &'a IdempotencyKey,
        window: std::time::Duration,
    ) -> BoxFuture<'a, Result<bool, BrokerError>> {
        let _ = (envelope, key, window);
        Box::pin(async { Err(BrokerError::Unsupported("idempotent publishes")) })
    }

    /// Appends a message for a channel with history ([`Target::Room`]) to
    /// the channel's stream, under `limits`, and carries it to the other
    /// instances with its position ([`Envelope::stream`]). `Ok` only once
    /// the stream holds it. With a `key` seen within the idempotency
    /// window, nothing is appended and the first attempt's position is
    /// returned ([`Appended::duplicate`]). The default refuses
    /// ([`BrokerError::Unsupported`]).
    fn append<'a>(
        &'a self,
        envelope: &'a Envelope,
        limits: &'a StreamLimits,
        key: Option<&'a IdempotencyKey>,
    ) -> BoxFuture<'a, Result<Appended, BrokerError>> {
        let _ = (envelope, limits, key);
        Box::pin(async { Err(BrokerError::Unsupported("history")) })
    }

    /// Reads a channel's stream. A channel never published to gets an
    /// epoch here (offset 0), kept for `limits.meta_ttl`, so that its first
    /// publications belong to the epoch a subscriber was told. The default
    /// refuses ([`BrokerError::Unsupported`]).
    fn history<'a>(
        &'a self,
        channel: &'a Room,
        query: &'a HistoryQuery,
        limits: &'a StreamLimits,
    ) -> BoxFuture<'a, Result<History, BrokerError>> {
        let _ = (channel, query, limits);
        Box::pin(async { Err(BrokerError::Unsupported("history")) })
    }

    /// Adds `member` to `channel`'s presence (a no-op for one already
    /// there). `Ok(true)` when a join is due under `join_leave`: always for
    /// [`JoinLeave::Connection`] and anonymous members, for
    /// [`JoinLeave::User`] when it is the user's first connection there and
    /// the user is not back within a pending leave's grace. The default
    /// refuses ([`BrokerError::Unsupported`]).
    fn presence_add<'a>(
        &'a self,
        channel: &'a Room,
        member: &'a Member,
        join_leave: JoinLeave,
    ) -> BoxFuture<'a, Result<bool, BrokerError>> {
        let _ = (channel, member, join_leave);
        Box::pin(async { Err(BrokerError::Unsupported("presence")) })
    }

    /// Removes a connection from `channel`'s presence. `Ok(Some(member))`
    /// when a leave is due now: for [`JoinLeave::Connection`] and anonymous
    /// members, and for [`JoinLeave::User`] when it was the user's last
    /// connection there and `grace` is zero. With a grace, that leave is
    /// held for [`Broker::presence_due`]. `Ok(None)` for a connection not
    /// there. The default refuses.
    fn presence_remove<'a>(
        &'a self,
        channel: &'a Room,
        connection: &'a ConnectionAddr,
        join_leave: JoinLeave,
        grace: std::time::Duration,
    ) -> BoxFuture<'a, Result<Option<Member>, BrokerError>> {
        let _ = (channel, connection, join_leave, grace);
        Box::pin(async { Err(BrokerError::Unsupported("presence")) })
    }

    /// The held leaves whose grace ran out, each handed to exactly one
    /// caller in the cluster. The default has none.
    fn presence_due(&self) -> BoxFuture<'_, Result<Vec<(Room, Member)>, BrokerError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// `channel`'s members (at most `max`) and counts. The default refuses.
    fn presence<'a>(
        &'a self,
        channel: &'a Room,
        max: usize,
    ) -> BoxFuture<'a, Result<Presence, BrokerError>> {
        let _ = (channel, max);
        Box::pin(async { Err(BrokerError::Unsupported("presence")) })
    }

    /// `channel`'s counts, in O(1). The default refuses.
    fn presence_stats<'a>(
        &'a self,
        channel: &'a Room,
    ) -> BoxFuture<'a, Result<PresenceStats, BrokerError>> {
        let _ = channel;
        Box::pin(async { Err(BrokerError::Unsupported("presence")) })
    }

    /// Makes this instance's entries what `local` says (every local member
    /// of a channel with presence): adds the missing ones without events,
    /// removes the others and returns their due leaves. Called after a
    /// failed update and after the broker reconnected. The default (a
    /// broker that never loses an update) does nothing.
    fn presence_resync<'a>(
        &'a self,
        local: &'a [(Room, Member)],
    ) -> BoxFuture<'a, Result<Vec<PresenceEvent>, BrokerError>> {
        let _ = local;
        Box::pin(async { Ok(Vec::new()) })
    }
}
