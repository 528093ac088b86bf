//! `kind: "text"` messages to a channel of the structured protocol
//! (`RedisConfig::structured_channels`) reach members as the `EVENT`
//! `switchboard.text`, never as a bare frame: from a bare `PUBLISH`, from
//! another instance through the append script (with the offset), and when
//! read back from the stream. Other rooms, and text that is already a
//! protocol message, go out as they are. Against a real redis-server.

mod support;

use serde_json::Value;
use support::{RedisFactory, raw, test_config};
use switchboard::broker::stream::{HistoryConfig, HistoryRule};
use switchboard::broker::{Payload, Target};
use switchboard::protocol::{ChannelPattern, ChannelRules, StructuredChannels, TEXT_EVENT};
use switchboard::testing::broker::{TestNode, next_text};
use switchboard_redis::RedisBroker;

/// The gateway's default: the structured endpoint's channels (`public:*`,
/// `user:{user_id}:*`), with history on `public:*`.
async fn node(f: &RedisFactory) -> TestNode {
    let config = test_config(&f.server.url(), "sb")
        .structured_channels(StructuredChannels::new().endpoint(ChannelRules::default()));
    let history =
        HistoryConfig::new().rule(HistoryRule::new(ChannelPattern::new("public:*").unwrap()));
    TestNode::start_with_history(RedisBroker::new(config).unwrap(), history).await
}

fn text_event(frame: &str, channel: &str, data: &str) -> Value {
    let value: Value = serde_json::from_str(frame).unwrap_or_else(|e| panic!("{e}: {frame}"));
    assert_eq!(value["type"], "EVENT", "{frame}");
    assert_eq!(value["payload"]["event"], TEXT_EVENT, "{frame}");
    assert_eq!(value["payload"]["data"], data, "{frame}");
    assert_eq!(value["payload"]["channel"], channel, "{frame}");
    assert!(value["id"].is_string() && value["timestamp"].is_number());
    value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_to_a_channel_arrives_in_the_protocols_envelope() {
    let Some(f) = RedisFactory::start() else {
        return;
    };
    let a = node(&f).await;
    let b = node(&f).await;
    let (mut lobby, joined) = b.subscribe("public:lobby", &[]).await;
    assert!(joined.starts_with("joined "), "{joined}");
    let mut plain = b.connect(&["builds"], None).await;
    b.cluster.sync().await.unwrap();

    // A bare PUBLISH from a worker: wrapped for the channel, not for `builds`.
    let mut conn = raw(&f.server).await;
    for (channel, data) in [
        ("sb:v1:room:public:lobby", "hello from redis-cli"),
        ("sb:v1:room:builds", "build 42 finished"),
    ] {
        let message = serde_json::json!({"v": 1, "kind": "text", "data": data}).to_string();
        let listening: i64 = redis::cmd("PUBLISH")
            .arg(channel)
            .arg(message)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(listening >= 1, "{channel}");
    }
    text_event(
        &next_text(&mut lobby).await,
        "public:lobby",
        "hello from redis-cli",
    );
    assert_eq!(next_text(&mut plain.socket).await, "build 42 finished");

    // From another instance, through the append script: wrapped, with its
    // offset first.
    let published = a
        .cluster
        .publish(
            Target::room("public:lobby"),
            Payload::text("via the stream"),
        )
        .await
        .unwrap();
    let offset = published.position.expect("public:* keeps a history").offset;
    let event = text_event(
        &next_text(&mut lobby).await,
        "public:lobby",
        "via the stream",
    );
    assert_eq!(event["offset"], offset);

    // A message of the protocol goes as it is.
    let envelope =
        r#"{"type":"EVENT","payload":{"event":"deploy","data":2,"channel":"public:lobby"}}"#;
    a.cluster
        .publish(Target::room("public:lobby"), Payload::text(envelope))
        .await
        .unwrap();
    let got: Value = serde_json::from_str(&next_text(&mut lobby).await).unwrap();
    assert_eq!(got["payload"]["event"], "deploy");
    assert_eq!(got["offset"], offset + 1);

    // Read back from the stream (a subscriber that asks for the latest):
    // the same event, wrapped on the way out again.
    let (mut late, joined) = b.subscribe("public:lobby", &[("last", "2")]).await;
    assert!(joined.starts_with("joined "), "{joined}");
    let replayed = text_event(
        &next_text(&mut late).await,
        "public:lobby",
        "via the stream",
    );
    assert_eq!(replayed["offset"], offset);
    let replayed: Value = serde_json::from_str(&next_text(&mut late).await).unwrap();
    assert_eq!(replayed["payload"]["event"], "deploy");
}
