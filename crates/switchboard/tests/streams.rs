//! Channels with history over the structured protocol, on the in-memory
//! broker: offsets, recovery after a reconnection (all or nothing), the
//! latest publications at subscribe time, a restarted broker's new epoch,
//! idempotent publishes, bad input, and live publications racing a
//! recovery (nothing lost, nothing twice).

mod protocol_common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use protocol_common::*;
use serde_json::{Value, json};
use switchboard::broker::stream::{
    Appended, History, HistoryConfig, HistoryQuery, HistoryRule, IdempotencyKey, StreamLimits,
};
use switchboard::broker::{
    BoxFuture, Broker, BrokerError, Cluster, Envelope, LocalNode, MemoryBroker, Payload,
    PublishOptions, Target,
};
use switchboard::protocol::wire::payload::Event;
use switchboard::protocol::{ChannelPattern, ProtocolConfig, Publisher};
use switchboard::{Hub, Room};

const NEWS: &str = "public:news";

fn history(limit: usize, size: usize) -> HistoryConfig {
    let pattern = ChannelPattern::new("public:*").unwrap();
    HistoryConfig::new()
        .rule(HistoryRule::new(pattern).with_size(size))
        .with_recovery_limit(limit)
}

async fn instance(broker: impl Broker, config: HistoryConfig) -> (Harness, Cluster) {
    let hub = Hub::new();
    let cluster = Cluster::builder(hub.clone(), broker)
        .history(config)
        .build();
    cluster.start().await.expect("start the broker");
    let protocol = protocol(ProtocolConfig::default()).cluster(cluster.clone());
    let harness = Harness::start_with_hub(Transport::Tcp, mount(protocol), hub).await;
    (harness, cluster)
}

/// Publishes `n` events to NEWS; returns their offsets.
async fn publish(cluster: &Cluster, range: std::ops::RangeInclusive<u64>) -> Vec<u64> {
    let publisher = Publisher::clustered(cluster.clone());
    let news = switchboard::protocol::Channel::new(NEWS).unwrap();
    let mut offsets = Vec::new();
    for n in range {
        let sent = publisher
            .to_channel(&news, Event::new("n", json!(n)))
            .await
            .expect("published");
        offsets.push(sent.position.expect("a stream position").offset);
    }
    offsets
}

/// SUBSCRIBE with one entry; returns the SUBSCRIBE_SUCCESS payload.
async fn subscribe(client: &mut Client, entry: Value) -> Value {
    let id = client
        .send("SUBSCRIBE", json!({ "subscriptions": [entry] }))
        .await;
    let reply = client.recv_skipping_pings().await;
    assert_eq!(reply["type"], "SUBSCRIBE_SUCCESS", "{reply}");
    assert_eq!(reply["correlation_id"], id);
    reply["payload"].clone()
}

/// The next `count` publications: (offset, n).
async fn next_events(client: &mut Client, count: usize) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    while out.len() < count {
        let message = client.recv_skipping_pings().await;
        assert_eq!(message["type"], "EVENT", "{message}");
        assert_eq!(message["payload"]["channel"], NEWS);
        let offset = message["offset"].as_u64().expect("an offset");
        out.push((offset, message["payload"]["data"].as_u64().unwrap()));
    }
    out
}

fn consecutive(events: &[(u64, u64)], from: u64) {
    for (i, (offset, n)) in events.iter().enumerate() {
        assert_eq!(*offset, from + i as u64, "{events:?}");
        assert_eq!(offset, n, "{events:?}");
    }
}

#[tokio::test]
async fn a_client_that_reconnects_gets_exactly_what_it_missed_then_live() {
    let (h, cluster) = instance(MemoryBroker::new(), history(300, 100)).await;
    let (mut client, _) = h.connect().await;
    let success = subscribe(&mut client, json!(NEWS)).await;
    let epoch = success["epoch"].as_str().expect("an epoch").to_owned();
    assert_eq!(success["offset"], 0);
    assert!(success.get("recovered").is_none());
    publish(&cluster, 1..=3).await;
    consecutive(&next_events(&mut client, 3).await, 1);
    drop(client);

    // 50 publications while it is away.
    publish(&cluster, 4..=53).await;
    let (mut client, _) = h.connect().await;
    let recover = json!({"channel": NEWS, "recover": {"epoch": epoch, "offset": 3}});
    let success = subscribe(&mut client, recover).await;
    assert_eq!(success["recovered"], true, "{success}");
    assert_eq!(success["epoch"], epoch.as_str());
    assert_eq!(success["offset"], 53);
    consecutive(&next_events(&mut client, 50).await, 4);
    publish(&cluster, 54..=54).await;
    consecutive(&next_events(&mut client, 1).await, 54);
    client.expect_silence(100).await;
}

#[tokio::test]
async fn past_the_cap_a_recovery_replays_nothing() {
    let (h, cluster) = instance(MemoryBroker::new(), history(20, 100)).await;
    let (mut client, _) = h.connect().await;
    let epoch = subscribe(&mut client, json!(NEWS)).await["epoch"].clone();
    drop(client);
    publish(&cluster, 1..=50).await;
    let (mut client, _) = h.connect().await;
    let recover = json!({"channel": NEWS, "recover": {"epoch": epoch, "offset": 0}});
    let success = subscribe(&mut client, recover).await;
    assert_eq!(success["recovered"], false);
    assert_eq!(success["reason"], "limit_exceeded");
    assert_eq!(success["offset"], 50);
    // No partial replay: the next thing is live.
    client.expect_silence(100).await;
    publish(&cluster, 51..=51).await;
    consecutive(&next_events(&mut client, 1).await, 51);
}

#[tokio::test]
async fn what_the_stream_no_longer_keeps_is_not_recovered() {
    // Five kept: missing 1..=8 cannot be replayed whole.
    let (h, cluster) = instance(MemoryBroker::new(), history(300, 5)).await;
    let (mut client, _) = h.connect().await;
    let epoch = subscribe(&mut client, json!(NEWS)).await["epoch"].clone();
    drop(client);
    publish(&cluster, 1..=8).await;
    let (mut client, _) = h.connect().await;
    let recover = json!({"channel": NEWS, "recover": {"epoch": epoch, "offset": 0}});
    let success = subscribe(&mut client, recover).await;
    assert_eq!(success["recovered"], false);
    assert_eq!(success["reason"], "history_gone");
    client.expect_silence(100).await;
}

#[tokio::test]
async fn a_restarted_in_memory_broker_has_a_new_epoch() {
    let (h, cluster) = instance(MemoryBroker::new(), history(300, 100)).await;
    let (mut client, _) = h.connect().await;
    let epoch = subscribe(&mut client, json!(NEWS)).await["epoch"].clone();
    publish(&cluster, 1..=2).await;
    // "The gateway restarts": a new process, a new broker.
    let (h2, _) = instance(MemoryBroker::new(), history(300, 100)).await;
    let (mut client, _) = h2.connect().await;
    let recover = json!({"channel": NEWS, "recover": {"epoch": epoch, "offset": 2}});
    let success = subscribe(&mut client, recover).await;
    assert_eq!(success["recovered"], false);
    assert_eq!(success["reason"], "epoch_changed");
    assert_ne!(success["epoch"], epoch);
    assert_eq!(success["offset"], 0);
    drop(h);
}

#[tokio::test]
async fn bad_recovery_requests_get_documented_answers() {
    let (h, cluster) = instance(MemoryBroker::new(), history(300, 100)).await;
    publish(&cluster, 1..=2).await;
    let (mut client, _) = h.connect().await;
    let epoch = subscribe(&mut client, json!("public:other")).await["epoch"].clone();

    // An offset past the top, an unknown epoch: recovered false.
    let (mut c, _) = h.connect().await;
    let ahead = json!({"channel": NEWS, "recover": {"epoch": "nope", "offset": 1}});
    assert_eq!(subscribe(&mut c, ahead).await["reason"], "epoch_changed");
    let (mut c, _) = h.connect().await;
    let news_epoch = subscribe(&mut c, json!(NEWS)).await["epoch"].clone();
    let (mut c, _) = h.connect().await;
    let ahead = json!({"channel": NEWS, "recover": {"epoch": news_epoch, "offset": 9}});
    let success = subscribe(&mut c, ahead).await;
    assert_eq!(success["recovered"], false);
    assert_eq!(success["reason"], "unknown_offset");
    let _ = epoch;

    // A channel without history says so.
    let (mut c, _) = h.connect().await;
    let plain = json!({"channel": "user:bob:x", "recover": {"epoch": "e", "offset": 1}});
    c.send("AUTHENTICATE", json!({"auth": {"token": "bob-key"}}))
        .await;
    c.expect("AUTHENTICATE_SUCCESS").await;
    let success = subscribe(&mut c, plain).await;
    assert_eq!(success["recovered"], false);
    assert_eq!(success["reason"], "no_history");
    assert!(success.get("epoch").is_none());

    // Malformed: wrong types, a negative offset, both recover and last, last 0.
    for bad in [
        json!({"channel": NEWS, "recover": {"epoch": "e", "offset": -1}}),
        json!({"channel": NEWS, "recover": {"epoch": 7, "offset": 1}}),
        json!({"channel": NEWS, "recover": "yes"}),
        json!({"channel": NEWS, "recover": {"epoch": "e", "offset": 1}, "last": 2}),
        json!({"channel": NEWS, "last": 0}),
    ] {
        let id = c
            .send("SUBSCRIBE", json!({ "subscriptions": [bad.clone()] }))
            .await;
        c.expect_error("invalid_message", Some(&id)).await;
    }
}

#[tokio::test]
async fn a_subscriber_may_ask_for_the_latest_publications() {
    let (h, cluster) = instance(MemoryBroker::new(), history(300, 100)).await;
    publish(&cluster, 1..=10).await;
    let (mut client, _) = h.connect().await;
    let success = subscribe(&mut client, json!({"channel": NEWS, "last": 3})).await;
    assert_eq!(success["offset"], 10);
    assert_eq!(success["last"], 3);
    assert!(success.get("recovered").is_none());
    consecutive(&next_events(&mut client, 3).await, 8);
    publish(&cluster, 11..=11).await;
    consecutive(&next_events(&mut client, 1).await, 11);
}

#[tokio::test]
async fn a_last_over_the_recovery_limit_is_lowered_to_it() {
    let (h, cluster) = instance(MemoryBroker::new(), history(4, 100)).await;
    publish(&cluster, 1..=10).await;
    let (mut client, _) = h.connect().await;
    let success = subscribe(&mut client, json!({"channel": NEWS, "last": 50})).await;
    assert_eq!(success["offset"], 10);
    assert_eq!(
        success["last"], 4,
        "lowered to the recovery limit: {success}"
    );
    consecutive(&next_events(&mut client, 4).await, 7);
    publish(&cluster, 11..=11).await;
    consecutive(&next_events(&mut client, 1).await, 11);
}

#[tokio::test]
async fn an_idempotent_retry_is_answered_with_the_first_result_and_not_sent_again() {
    let (h, cluster) = instance(MemoryBroker::new(), history(300, 100)).await;
    let (mut client, _) = h.connect().await;
    subscribe(&mut client, json!(NEWS)).await;
    let key = IdempotencyKey::new("order-42").unwrap();
    let options = PublishOptions::new().idempotency_key(key);
    let mut message = switchboard::protocol::wire::Message::from(Event::new("n", json!(1)));
    message.set_channel(NEWS);
    let payload = Payload::json(&switchboard::protocol::stamp(message, None)).unwrap();
    let first = cluster
        .publish_with(Target::room(NEWS), payload.clone(), options.clone())
        .await
        .unwrap();
    let again = cluster
        .publish_with(Target::room(NEWS), payload, options)
        .await
        .unwrap();
    assert!(!first.duplicate);
    assert!(again.duplicate);
    assert_eq!(first.position, again.position);
    consecutive(&next_events(&mut client, 1).await, 1);
    client.expect_silence(100).await;
}

/// The in-memory broker, with history reads that take `delay`: a recovery
/// then overlaps live publications.
#[derive(Debug)]
struct SlowReads {
    inner: MemoryBroker,
    delay: Duration,
}

impl Broker for SlowReads {
    fn start(&self, node: LocalNode) -> BoxFuture<'_, Result<(), BrokerError>> {
        self.inner.start(node)
    }
    fn publish<'a>(&'a self, envelope: &'a Envelope) -> BoxFuture<'a, Result<(), BrokerError>> {
        self.inner.publish(envelope)
    }
    fn sync(&self) -> BoxFuture<'_, Result<(), BrokerError>> {
        self.inner.sync()
    }
    fn remote_connection_count(&self) -> BoxFuture<'_, Result<usize, BrokerError>> {
        self.inner.remote_connection_count()
    }
    fn remote_room_size<'a>(&'a self, room: &'a Room) -> BoxFuture<'a, Result<usize, BrokerError>> {
        self.inner.remote_room_size(room)
    }
    fn shutdown(&self) -> BoxFuture<'_, ()> {
        self.inner.shutdown()
    }
    fn append<'a>(
        &'a self,
        envelope: &'a Envelope,
        limits: &'a StreamLimits,
        key: Option<&'a IdempotencyKey>,
    ) -> BoxFuture<'a, Result<Appended, BrokerError>> {
        self.inner.append(envelope, limits, key)
    }
    fn history<'a>(
        &'a self,
        channel: &'a Room,
        query: &'a HistoryQuery,
        limits: &'a StreamLimits,
    ) -> BoxFuture<'a, Result<History, BrokerError>> {
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            self.inner.history(channel, query, limits).await
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_publications_during_a_recovery_come_after_it_without_gap_or_duplicate() {
    let slow = SlowReads {
        inner: MemoryBroker::new(),
        delay: Duration::from_millis(150),
    };
    let (h, cluster) = instance(slow, history(1000, 1000)).await;
    let (mut client, _) = h.connect().await;
    let epoch = subscribe(&mut client, json!(NEWS)).await["epoch"].clone();
    drop(client);
    publish(&cluster, 1..=20).await;

    // A publisher keeps going while the client recovers.
    let running = Arc::new(AtomicBool::new(true));
    let publisher = {
        let (cluster, running) = (cluster.clone(), Arc::clone(&running));
        tokio::spawn(async move {
            let mut n = 21;
            while running.load(Ordering::Relaxed) {
                publish(&cluster, n..=n).await;
                n += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            n - 1
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (mut client, _) = h.connect().await;
    let recover = json!({"channel": NEWS, "recover": {"epoch": epoch, "offset": 5}});
    let success = subscribe(&mut client, recover).await;
    assert_eq!(success["recovered"], true, "{success}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    running.store(false, Ordering::Relaxed);
    let last = publisher.await.unwrap();
    assert!(last > 30, "the publisher ran during the recovery ({last})");
    consecutive(&next_events(&mut client, (last - 5) as usize).await, 6);
    client.expect_silence(100).await;
}
