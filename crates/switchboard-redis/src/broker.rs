//! The Redis broker: its handle, the state its tasks share, and publishing.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::Mutex;
use redis::aio::MultiplexedConnection;
use switchboard::Room;
use switchboard::broker::presence::{JoinLeave, Member, Presence, PresenceEvent, PresenceStats};
use switchboard::broker::stream::{Appended, History, HistoryQuery, IdempotencyKey, StreamLimits};
use switchboard::broker::{
    BoxFuture, Broker, BrokerError, ConnectionAddr, Envelope, InstanceId, LocalNode,
};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::error::{broker_error, is_connection_error};
use crate::stats::{Counters, RedisStats, bump};
use crate::wire::{self, Names};
use crate::{Error, RedisConfig, counts, lease, presence, streams, subscriber, writer};

const NOT_STARTED: u8 = 0;
const RUNNING: u8 = 1;
const STOPPED: u8 = 2;

/// A broker that joins instances through Redis pub/sub.
///
/// Cheap to clone: keep a clone to read [`RedisBroker::stats`] after handing
/// one to [`switchboard::broker::Cluster::new`]. The broker's tasks stop on
/// `Cluster::shutdown`, or when the last clone is dropped.
///
/// It holds two connections: a subscriber (the channels local connections
/// need, `all`, and this instance's own channel) and a multiplexed publisher
/// that also writes this instance's counts every heartbeat. Each reconnects
/// on its own with jittered backoff; the subscriber resubscribes to
/// everything local connections need when it does.
#[derive(Debug, Clone)]
pub struct RedisBroker(Arc<Handle>);

#[derive(Debug)]
struct Handle {
    shared: Arc<Shared>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.stop.send_replace(true);
    }
}

/// What the broker's tasks share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: RedisConfig,
    pub(crate) client: redis::Client,
    pub(crate) names: Names,
    /// This instance, set on start.
    pub(crate) instance: OnceLock<InstanceId>,
    /// Its presence rules, set on start.
    pub(crate) presence_config: OnceLock<switchboard::broker::presence::PresenceConfig>,
    state: AtomicU8,
    /// Set to `true` to stop every task.
    pub(crate) stop: watch::Sender<bool>,
    /// The publisher connection and its generation, while connected.
    publisher: Mutex<Option<(u64, MultiplexedConnection)>>,
    next_generation: AtomicU64,
    /// Wakes the writer task when a publish found the connection broken.
    pub(crate) publisher_broken: Notify,
    /// Whether the publisher is connected.
    pub(crate) publisher_up: watch::Sender<bool>,
    /// Sync requests: each `sync` takes the next number.
    pub(crate) sync_requested: AtomicU64,
    /// Wakes the subscriber to reconcile for a sync.
    pub(crate) sync_wanted: Notify,
    /// The latest sync number the subscriber has covered; `None` while it is
    /// not connected.
    pub(crate) sync_done: watch::Sender<Option<u64>>,
    pub(crate) counters: Counters,
    /// The Lua scripts of channels with history.
    pub(crate) scripts: streams::Scripts,
    /// The Lua scripts of presence.
    pub(crate) presence: presence::Scripts,
    /// The Lua scripts of leases.
    pub(crate) leases: lease::Scripts,
    /// The `run_id` of the Redis server the publisher is connected to (it
    /// changes when Redis restarts); empty when unknown.
    run_id: Mutex<String>,
    /// Why the latest connection attempt or connection failed, for errors.
    last_failure: Mutex<Option<String>>,
}

impl Shared {
    /// The publisher connection, or `Unavailable` while reconnecting.
    pub(crate) fn publisher(&self) -> Result<(u64, MultiplexedConnection), BrokerError> {
        self.publisher
            .lock()
            .clone()
            .ok_or_else(|| self.unavailable("not connected to Redis; reconnecting"))
    }

    /// Records why a connection failed (logged, and quoted in later errors).
    pub(crate) fn failed(&self, what: &str, why: &str) {
        tracing::warn!(%why, "redis {what} failed; reconnecting");
        *self.last_failure.lock() = Some(format!("{what}: {why}"));
    }

    /// An `Unavailable` error that says what last went wrong.
    pub(crate) fn unavailable(&self, what: &str) -> BrokerError {
        match &*self.last_failure.lock() {
            Some(last) => BrokerError::Unavailable(format!("{what} (last failure: {last})")),
            None => BrokerError::Unavailable(what.to_owned()),
        }
    }

    /// The `run_id` of the Redis server behind the publisher (empty when
    /// unknown).
    pub(crate) fn run_id(&self) -> String {
        self.run_id.lock().clone()
    }

    /// Installs a new publisher connection to the server with `run_id`;
    /// returns its generation.
    pub(crate) fn install_publisher(&self, conn: MultiplexedConnection, run_id: String) -> u64 {
        *self.run_id.lock() = run_id;
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        *self.publisher.lock() = Some((generation, conn));
        self.publisher_up.send_replace(true);
        bump(&self.counters.publisher_connects, 1);
        generation
    }

    /// Drops the publisher connection if it is still generation
    /// `generation`, and wakes the writer to reconnect. Logged once per
    /// connection, however many publishes hit the failure.
    pub(crate) fn publisher_failed(&self, generation: u64, why: &str) {
        let mut publisher = self.publisher.lock();
        if matches!(&*publisher, Some((g, _)) if *g == generation) {
            *publisher = None;
            drop(publisher);
            self.publisher_up.send_replace(false);
            self.failed("publisher", why);
            self.publisher_broken.notify_one();
        }
    }

    /// Whether generation `generation` is still the live publisher.
    pub(crate) fn publisher_is(&self, generation: u64) -> bool {
        matches!(&*self.publisher.lock(), Some((g, _)) if *g == generation)
    }

    pub(crate) fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// `HSET` (with the record) or `HDEL` of a connection's field in its
    /// instance's connection records.
    async fn records_command(
        &self,
        command: &'static str,
        connection: &ConnectionAddr,
        record: Option<&str>,
    ) -> Result<(), BrokerError> {
        self.check_running()?;
        let mut cmd = redis::cmd(command);
        cmd.arg(self.names.records_key(connection.instance.as_str()))
            .arg(connection.id.0);
        if let Some(record) = record {
            cmd.arg(record);
        }
        self.with_publisher(|mut conn| async move { cmd.query_async::<()>(&mut conn).await })
            .await
    }

    fn check_running(&self) -> Result<(), BrokerError> {
        match self.state.load(Ordering::Acquire) {
            RUNNING => Ok(()),
            NOT_STARTED => Err(BrokerError::NotStarted),
            _ => Err(BrokerError::Stopped),
        }
    }

    /// Runs a command with the publisher connection and the command
    /// timeout; a connection failure replaces the connection.
    pub(crate) async fn with_publisher<T, F, Fut>(&self, f: F) -> Result<T, BrokerError>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let timeout = self.config.command_timeout;
        let (generation, conn) = self.publisher()?;
        match tokio::time::timeout(timeout, f(conn)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                if is_connection_error(&e) {
                    self.publisher_failed(generation, &e.to_string());
                }
                Err(broker_error(&e, timeout))
            }
            Err(_) => {
                // Redis stalled (or is overloaded past the timeout): replace the
                // connection rather than queue more behind it.
                self.publisher_failed(generation, &format!("no answer within {timeout:?}"));
                Err(BrokerError::Timeout(timeout))
            }
        }
    }
}

impl RedisBroker {
    /// A broker with `config`. Connects on `Cluster::start`, not here.
    pub fn new(config: RedisConfig) -> Result<Self, Error> {
        config.validate()?;
        // Nagle's algorithm would hold a PUBLISH written while the previous
        // one is unacknowledged until the peer's delayed ACK (40 ms and more):
        // Redis traffic is request/response, so send every command at once.
        let info = redis::IntoConnectionInfo::into_connection_info(config.url.as_str())
            .map_err(|e| Error::InvalidUrl(e.to_string()))?
            .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
        let client = redis::Client::open(info).map_err(|e| Error::InvalidUrl(e.to_string()))?;
        let names = Names::new(&config.prefix)?;
        let shared = Arc::new(Shared {
            config,
            client,
            names,
            instance: OnceLock::new(),
            presence_config: OnceLock::new(),
            state: AtomicU8::new(NOT_STARTED),
            stop: watch::Sender::new(false),
            publisher: Mutex::new(None),
            next_generation: AtomicU64::new(1),
            publisher_broken: Notify::new(),
            publisher_up: watch::Sender::new(false),
            sync_requested: AtomicU64::new(0),
            sync_wanted: Notify::new(),
            sync_done: watch::Sender::new(None),
            counters: Counters::default(),
            scripts: streams::Scripts::default(),
            presence: presence::Scripts::default(),
            leases: lease::Scripts::default(),
            run_id: Mutex::new(String::new()),
            last_failure: Mutex::new(None),
        });
        Ok(Self(Arc::new(Handle {
            shared,
            tasks: Mutex::new(Vec::new()),
        })))
    }

    /// A broker for Redis at `url`, with default settings.
    pub fn connect(url: &str) -> Result<Self, Error> {
        Self::new(RedisConfig::new(url))
    }

    /// The settings.
    pub fn config(&self) -> &RedisConfig {
        &self.0.shared.config
    }

    /// The counters.
    pub fn stats(&self) -> RedisStats {
        self.0.shared.counters.snapshot()
    }

    /// Whether both connections are up now.
    pub fn is_connected(&self) -> bool {
        *self.0.shared.publisher_up.borrow() && self.0.shared.sync_done.borrow().is_some()
    }

    async fn sync_within(&self, within: Duration) -> Result<(), BrokerError> {
        let shared = &self.0.shared;
        shared.check_running()?;
        let wanted = shared.sync_requested.fetch_add(1, Ordering::SeqCst) + 1;
        shared.sync_wanted.notify_one();
        let mut done = shared.sync_done.subscribe();
        match tokio::time::timeout(within, done.wait_for(|d| d.is_some_and(|d| d >= wanted))).await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(BrokerError::Stopped),
            Err(_) => Err(shared.unavailable(&format!(
                "Redis subscriptions not confirmed within {within:?}"
            ))),
        }
    }

    async fn start_inner(&self, node: LocalNode) -> Result<(), BrokerError> {
        let shared = &self.0.shared;
        match shared.state.compare_exchange(
            NOT_STARTED,
            RUNNING,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => {}
            Err(RUNNING) => return Err(BrokerError::AlreadyStarted),
            Err(_) => return Err(BrokerError::Stopped),
        }
        let _ = shared.instance.set(node.instance().clone());
        let _ = shared.presence_config.set(node.presence_config().clone());
        let subscriber = tokio::spawn(subscriber::run(
            Arc::clone(shared),
            node.clone(),
            node.watch(),
        ));
        let writer = tokio::spawn(writer::run(Arc::clone(shared), node.clone(), node.watch()));
        let leases = tokio::spawn(lease::run(Arc::clone(shared), node.clone()));
        self.0.tasks.lock().extend([subscriber, writer, leases]);

        let within = shared.config.start_timeout;
        let deadline = tokio::time::Instant::now() + within;
        self.sync_within(within).await?;
        let mut up = shared.publisher_up.subscribe();
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(remaining, up.wait_for(|up| *up)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(BrokerError::Stopped),
            Err(_) => {
                Err(shared.unavailable(&format!("Redis publisher not connected within {within:?}")))
            }
        }
    }

    async fn publish_inner(&self, envelope: &Envelope) -> Result<(), BrokerError> {
        let shared = &self.0.shared;
        shared.check_running()?;
        let channel = shared
            .names
            .for_target(&envelope.target)
            .map_err(|e| BrokerError::Backend(e.into()))?;
        let payload = wire::encode(envelope).map_err(|e| BrokerError::Backend(e.into()))?;
        let result = shared
            .with_publisher(|mut conn| async move {
                redis::cmd("PUBLISH")
                    .arg(channel)
                    .arg(payload)
                    .query_async::<i64>(&mut conn)
                    .await
            })
            .await;
        match result {
            Ok(_) => bump(&shared.counters.published, 1),
            Err(_) => bump(&shared.counters.publish_failures, 1),
        }
        result.map(drop)
    }

    async fn shutdown_inner(&self) {
        let shared = &self.0.shared;
        shared.state.store(STOPPED, Ordering::Release);
        shared.stop.send_replace(true);
        let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *self.0.tasks.lock());
        // The writer withdraws this instance's counts (one command timeout at most).
        let bound = shared.config.command_timeout + Duration::from_millis(500);
        for task in tasks {
            let abort = task.abort_handle();
            if tokio::time::timeout(bound, task).await.is_err() {
                abort.abort();
            }
        }
    }
}

impl Broker for RedisBroker {
    fn start(&self, node: LocalNode) -> BoxFuture<'_, Result<(), BrokerError>> {
        Box::pin(self.start_inner(node))
    }

    fn publish<'a>(&'a self, envelope: &'a Envelope) -> BoxFuture<'a, Result<(), BrokerError>> {
        Box::pin(self.publish_inner(envelope))
    }

    fn sync(&self) -> BoxFuture<'_, Result<(), BrokerError>> {
        Box::pin(self.sync_within(self.0.shared.config.sync_timeout))
    }

    fn remote_connection_count(&self) -> BoxFuture<'_, Result<usize, BrokerError>> {
        Box::pin(async move {
            self.0.shared.check_running()?;
            counts::remote_connections(&self.0.shared).await
        })
    }

    fn remote_room_size<'a>(&'a self, room: &'a Room) -> BoxFuture<'a, Result<usize, BrokerError>> {
        Box::pin(async move {
            self.0.shared.check_running()?;
            counts::remote_room_size(&self.0.shared, room).await
        })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.shutdown_inner())
    }

    fn publish_once<'a>(
        &'a self,
        envelope: &'a Envelope,
        key: &'a IdempotencyKey,
        window: Duration,
    ) -> BoxFuture<'a, Result<bool, BrokerError>> {
        Box::pin(async move {
            let shared = &self.0.shared;
            shared.check_running()?;
            let result = streams::publish_once(shared, envelope, key, window).await;
            self.count(&result);
            result
        })
    }

    fn append<'a>(
        &'a self,
        envelope: &'a Envelope,
        limits: &'a StreamLimits,
        key: Option<&'a IdempotencyKey>,
    ) -> BoxFuture<'a, Result<Appended, BrokerError>> {
        Box::pin(async move {
            let shared = &self.0.shared;
            shared.check_running()?;
            let result = streams::append(shared, envelope, limits, key).await;
            self.count(&result);
            result
        })
    }

    fn history<'a>(
        &'a self,
        channel: &'a Room,
        query: &'a HistoryQuery,
        limits: &'a StreamLimits,
    ) -> BoxFuture<'a, Result<History, BrokerError>> {
        Box::pin(async move {
            let shared = &self.0.shared;
            shared.check_running()?;
            streams::read(shared, channel, query, limits).await
        })
    }

    fn presence_add<'a>(
        &'a self,
        channel: &'a Room,
        member: &'a Member,
        join_leave: JoinLeave,
    ) -> BoxFuture<'a, Result<bool, BrokerError>> {
        Box::pin(async move {
            self.0.shared.check_running()?;
            presence::add(&self.0.shared, channel, member, join_leave).await
        })
    }

    fn presence_remove<'a>(
        &'a self,
        channel: &'a Room,
        connection: &'a ConnectionAddr,
        join_leave: JoinLeave,
        grace: Duration,
    ) -> BoxFuture<'a, Result<Option<Member>, BrokerError>> {
        Box::pin(async move {
            self.0.shared.check_running()?;
            presence::remove(&self.0.shared, channel, connection, join_leave, grace).await
        })
    }

    fn presence_due(&self) -> BoxFuture<'_, Result<Vec<(Room, Member)>, BrokerError>> {
        Box::pin(async move {
            self.0.shared.check_running()?;
            presence::due(&self.0.shared).await
        })
    }

    fn presence<'a>(
        &'a self,
        channel: &'a Room,
        max: usize,
    ) -> BoxFuture<'a, Result<Presence, BrokerError>> {
        Box::pin(async move {
            self.0.shared.check_running()?;
            presence::read(&self.0.shared, channel, max).await
        })
    }

    fn presence_stats<'a>(
        &'a self,
        channel: &'a Room,
    ) -> BoxFuture<'a, Result<PresenceStats, BrokerError>> {
        Box::pin(async move {
            self.0.shared.check_running()?;
            presence::stats(&self.0.shared, channel).await
        })
    }

    fn record_connection<'a>(
        &'a self,
        connection: &'a ConnectionAddr,
        record: &'a str,
    ) -> BoxFuture<'a, Result<(), BrokerError>> {
        Box::pin(
            self.0
                .shared
                .records_command("HSET", connection, Some(record)),
        )
    }

    fn forget_connection<'a>(
        &'a self,
        connection: &'a ConnectionAddr,
    ) -> BoxFuture<'a, Result<(), BrokerError>> {
        Box::pin(self.0.shared.records_command("HDEL", connection, None))
    }

    fn presence_resync<'a>(
        &'a self,
        local: &'a [(Room, Member)],
    ) -> BoxFuture<'a, Result<Vec<PresenceEvent>, BrokerError>> {
        Box::pin(async move {
            let shared = &self.0.shared;
            shared.check_running()?;
            let instance = self.node_instance()?;
            let config = shared
                .presence_config
                .get()
                .ok_or(BrokerError::NotStarted)?;
            presence::resync(shared, instance, config, local).await
        })
    }
}

impl RedisBroker {
    /// This instance, once started.
    fn node_instance(&self) -> Result<&InstanceId, BrokerError> {
        self.0.shared.instance.get().ok_or(BrokerError::NotStarted)
    }

    /// Counts a publish's outcome.
    fn count<T>(&self, result: &Result<T, BrokerError>) {
        let counters = &self.0.shared.counters;
        match result {
            Ok(_) => bump(&counters.published, 1),
            Err(_) => bump(&counters.publish_failures, 1),
        }
    }
}

/// Completes once the broker is told to stop (or the handle is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}
