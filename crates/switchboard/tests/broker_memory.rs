//! Brokers (issue 7) in one process: the shared broker suite against
//! in-memory brokers on one bus, and the cluster layer's own promises
//! (local delivery without the backend, errors from a failing backend,
//! identify and join following the broker).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use switchboard::broker::{
    BoxFuture, Broker, BrokerError, Cluster, Envelope, LocalNode, MemoryBroker, MemoryBus, Payload,
    Target, Topic,
};
use switchboard::testing::broker::{TestNode, expect_silence, next_text};
use switchboard::{Hub, Room};

struct MemoryFactory(MemoryBus);

impl switchboard::testing::broker::BrokerFactory for MemoryFactory {
    type Broker = MemoryBroker;

    async fn broker(&self) -> MemoryBroker {
        self.0.broker()
    }

    fn count_delay(&self) -> Duration {
        Duration::from_millis(200)
    }
}

async fn memory_factory() -> Option<MemoryFactory> {
    Some(MemoryFactory(MemoryBus::new()))
}

switchboard::broker_suite!(memory_factory);

/// A backend that is always down, counting what it was asked to publish.
#[derive(Debug, Default)]
struct DownBroker {
    published: Arc<AtomicUsize>,
}

impl Broker for DownBroker {
    fn start(&self, _node: LocalNode) -> BoxFuture<'_, Result<(), BrokerError>> {
        Box::pin(async { Ok(()) })
    }

    fn publish<'a>(&'a self, _envelope: &'a Envelope) -> BoxFuture<'a, Result<(), BrokerError>> {
        self.published.fetch_add(1, Ordering::Relaxed);
        Box::pin(async { Err(BrokerError::Unavailable("test backend is down".into())) })
    }

    fn sync(&self) -> BoxFuture<'_, Result<(), BrokerError>> {
        Box::pin(async { Err(BrokerError::Unavailable("test backend is down".into())) })
    }

    fn remote_connection_count(&self) -> BoxFuture<'_, Result<usize, BrokerError>> {
        Box::pin(async { Err(BrokerError::Unavailable("test backend is down".into())) })
    }

    fn remote_room_size<'a>(
        &'a self,
        _room: &'a Room,
    ) -> BoxFuture<'a, Result<usize, BrokerError>> {
        Box::pin(async { Err(BrokerError::Unavailable("test backend is down".into())) })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

#[tokio::test]
async fn a_single_memory_broker_delivers_locally_and_counts_the_local_hub() {
    let node = TestNode::start(MemoryBroker::new()).await;
    let mut a = node.connect(&["r"], None).await;
    let mut b = node.connect(&["r"], Some("u")).await;

    let published = node
        .cluster
        .publish(Target::room("r"), "hello")
        .await
        .expect("publish");
    assert_eq!((published.local, published.forwarded), (2, true));
    assert_eq!(next_text(&mut a.socket).await, "hello");
    assert_eq!(next_text(&mut b.socket).await, "hello");
    expect_silence(&mut a.socket, "a").await;

    assert_eq!(node.cluster.connection_count().await.unwrap(), 2);
    assert_eq!(node.cluster.room_size("r").await.unwrap(), 2);
    assert_eq!(node.cluster.room_size("none").await.unwrap(), 0);
    node.stop().await;
}

#[tokio::test]
async fn a_failing_backend_is_reported_with_the_local_recipients_reached() {
    let backend = DownBroker::default();
    let published = Arc::clone(&backend.published);
    let node = TestNode::start(backend).await;
    // `connect` would sync with the broker, which a down backend refuses.
    let mut a = node.connect_unsynced(&["r"], None).await;

    let err = node
        .cluster
        .publish(Target::room("r"), "local-only")
        .await
        .expect_err("a failing backend must not look like success");
    assert_eq!(err.local, 1);
    assert!(err.source.is_transient(), "{err}");
    assert_eq!(published.load(Ordering::Relaxed), 1, "one backend publish");
    assert_eq!(next_text(&mut a.socket).await, "local-only");

    // A connection of this instance never needs the backend.
    let direct = node
        .cluster
        .publish(Target::Connection(a.addr.clone()), "direct")
        .await
        .expect("local connection publish does not touch the backend");
    assert!(!direct.forwarded);
    assert_eq!(published.load(Ordering::Relaxed), 1);
    assert_eq!(next_text(&mut a.socket).await, "direct");

    assert!(node.cluster.connection_count().await.is_err());
    node.stop().await;
}

#[tokio::test]
async fn identify_through_the_cluster_subscribes_the_new_user() {
    let bus = MemoryBus::new();
    let a = TestNode::start(bus.broker()).await;
    let b = TestNode::start(bus.broker()).await;
    let mut member = b.connect(&[], None).await;

    let watch = b.cluster.node().watch();
    assert!(b.cluster.identify(member.id, "later"));
    assert!(watch.take().contains(&Topic::User("later".into())));

    a.cluster
        .publish(Target::user("later"), "for-later")
        .await
        .expect("publish");
    assert_eq!(next_text(&mut member.socket).await, "for-later");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn cluster_join_returns_once_the_room_is_listened_for() {
    let bus = MemoryBus::new();
    let a = TestNode::start(bus.broker()).await;
    let b = TestNode::start(bus.broker()).await;
    let mut member = b.connect(&[], None).await;
    assert!(b.cluster.join(member.id, "late").await.expect("join"));
    assert!(!b.cluster.join(member.id, "late").await.expect("join again"));
    a.cluster
        .publish(Target::room("late"), Payload::text("welcome"))
        .await
        .expect("publish");
    assert_eq!(next_text(&mut member.socket).await, "welcome");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_broker_starts_once() {
    let cluster = Cluster::local(Hub::new());
    cluster.start().await.expect("first start");
    assert!(matches!(
        cluster.start().await,
        Err(BrokerError::AlreadyStarted)
    ));
}
