//! Structured protocol over a cluster: two instances on an in-memory bus.
//! Subscriptions, users and publishes from actions reach clients on the
//! other instance, and CONNECT_ACK names the connection cluster-wide.

mod protocol_common;

use protocol_common::*;
use serde_json::{Value, json};
use switchboard::Hub;
use switchboard::broker::{Cluster, MemoryBus};
use switchboard::protocol::wire::payload::Event;
use switchboard::protocol::{ActionContext, Channel, ProtocolConfig, Publisher};

async fn instance(bus: &MemoryBus, name: &str) -> (Harness, Cluster) {
    let hub = Hub::new();
    let instance = switchboard::broker::InstanceId::new(name).unwrap();
    let cluster = Cluster::with_instance(instance, hub.clone(), bus.broker());
    cluster.start().await.expect("start the broker");
    let protocol = protocol(ProtocolConfig::default())
        .cluster(cluster.clone())
        .action("shout", |cx: ActionContext, text: String| async move {
            let news = Channel::new("public:news")?;
            let sent = cx
                .publisher()
                .to_channel(&news, Event::new("shout", text))
                .await?;
            Ok(json!({ "local": sent.local, "forwarded": sent.forwarded }))
        });
    (
        Harness::start_with_hub(Transport::Memory, mount(protocol), hub).await,
        cluster,
    )
}

#[tokio::test]
async fn clients_on_two_instances_reach_each_other() {
    let bus = MemoryBus::new();
    let (one, _) = instance(&bus, "one").await;
    let (two, cluster_two) = instance(&bus, "two").await;

    let (mut reader, ack) = one.connect().await;
    let id = ack["payload"]["connection_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("one/"), "{id}");
    reader
        .send("AUTHENTICATE", json!({"auth": {"token": "alice-key"}}))
        .await;
    reader.expect("AUTHENTICATE_SUCCESS").await;
    reader
        .send("SUBSCRIBE", json!({"subscriptions": ["public:news"]}))
        .await;
    reader.expect("SUBSCRIBE_SUCCESS").await;

    // An action on instance two publishes to a channel read on instance one.
    let mut writer = two.login("bob-key").await;
    let action = writer
        .send("ACTION", json!({"action": "shout", "data": "hello"}))
        .await;
    let result = writer.expect("ACTION_RESULT").await;
    assert_eq!(result["correlation_id"], action);
    assert_eq!(
        result["payload"]["data"],
        json!({"local": 0, "forwarded": true})
    );
    let event = reader.expect("EVENT").await;
    assert_eq!(
        event["payload"],
        json!({"event": "shout", "data": "hello", "channel": "public:news"})
    );

    // The user registered by AUTHENTICATE on instance one is reachable from two.
    let sent = Publisher::clustered(cluster_two)
        .to_user("alice", Event::new("for-alice", Value::Null))
        .await
        .unwrap();
    assert!(sent.forwarded);
    assert_eq!(
        reader.expect("EVENT").await["payload"]["event"],
        "for-alice"
    );
    writer.expect_silence(50).await;
}
