//! Bare text published to a channel of the structured endpoint reaches
//! `/ws` clients as the `EVENT` `switchboard.text` (docs/protocol.md, "Bare
//! text"; docs/scaling.md, "Text to a channel of the structured protocol"):
//! through the HTTP API, and through Redis from a bare `PUBLISH`. The room
//! of `/ws/broadcast` still gets raw text.

mod support;

use serde_json::{Value, json};
use support::{Gateway, Options};
use switchboard::TestSocket;
use switchboard_testredis::RedisServer;

async fn subscriber(gw: &Gateway, channel: &str) -> TestSocket {
    let mut ws = gw
        .ws_client()
        .request("/ws")
        .protocol("switchboard.v1")
        .connect()
        .await
        .unwrap();
    let _ack: Value = ws.recv_json().await.unwrap();
    let subscribe =
        json!({"type": "SUBSCRIBE", "id": "s", "payload": {"subscriptions": [channel]}});
    ws.send_text(&subscribe.to_string()).await.unwrap();
    let joined: Value = support::published::next_publication(&mut ws).await;
    assert_eq!(joined["type"], "SUBSCRIBE_SUCCESS", "{joined}");
    gw.wait_for_room(channel, 1).await;
    ws
}

fn assert_text_event(event: &Value, channel: &str, data: &str) {
    assert_eq!(event["type"], "EVENT", "{event}");
    assert_eq!(event["payload"]["event"], "switchboard.text", "{event}");
    assert_eq!(event["payload"]["data"], data, "{event}");
    assert_eq!(event["payload"]["channel"], channel, "{event}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_text_to_a_channel_is_an_event_and_to_broadcast_is_raw() {
    let gw = Gateway::start(&[]);
    let mut lobby = subscriber(&gw, "public:lobby").await;
    let mut raw = gw.ws_client().connect("/ws/broadcast").await.unwrap();
    gw.wait_for_room("broadcast", 1).await;

    let answer = gw
        .post(
            "/api/v1/publish",
            r#"{"target": {"room": "public:lobby"}, "text": "hello"}"#,
        )
        .await
        .json();
    assert_eq!(answer["offset"], 1, "{answer}");
    let event: Value = support::published::next_publication(&mut lobby).await;
    assert_text_event(&event, "public:lobby", "hello");
    assert_eq!(event["offset"], 1);
    assert_eq!(event["id"], answer["id"], "the API answers the event's id");

    // Text that is a message of the protocol goes as it is.
    let own = r#"{"type":"EVENT","payload":{"event":"mine","data":1,"channel":"public:lobby"}}"#;
    let body = json!({"target": {"room": "public:lobby"}, "text": own}).to_string();
    let answer = gw.post("/api/v1/publish", &body).await.json();
    assert!(answer.get("id").is_none(), "{answer}");
    let event: Value = support::published::next_publication(&mut lobby).await;
    assert_eq!(event["payload"]["event"], "mine");

    gw.post(
        "/api/v1/publish",
        r#"{"target": {"room": "broadcast"}, "text": "hello"}"#,
    )
    .await;
    assert_eq!(raw.recv_text().await.unwrap(), "hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_redis_publish_to_a_channel_is_an_event_on_every_gateway() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    // No history, so that a bare PUBLISH is the documented way in.
    let dir = std::env::temp_dir().join(format!(
        "switchboard-text-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("switchboard.toml");
    std::fs::write(
        &config,
        "[broker]\ntype = \"redis\"\n\n[history]\nchannels = []\n",
    )
    .unwrap();
    let start = || {
        Gateway::start_with(&Options {
            args: vec!["--config".into(), config.display().to_string()],
            env: vec![("SWITCHBOARD_BROKER_URL", redis.url())],
            ..Options::default()
        })
    };
    let (a, b) = (start(), start());
    let mut on_a = subscriber(&a, "public:lobby").await;
    let mut on_b = subscriber(&b, "public:lobby").await;
    let mut conn = redis.connection().await;
    let mut listening = 0;
    for _ in 0..200 {
        let counts: Vec<(String, i64)> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg("sb:v1:room:public:lobby")
            .query_async(&mut conn)
            .await
            .unwrap();
        listening = counts[0].1;
        if listening == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(listening, 2);

    let reached: i64 = redis::cmd("PUBLISH")
        .arg("sb:v1:room:public:lobby")
        .arg(r#"{"v":1,"kind":"text","data":"from a worker"}"#)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(reached, 2);
    for ws in [&mut on_a, &mut on_b] {
        let event: Value = support::published::next_publication(ws).await;
        assert_text_event(&event, "public:lobby", "from a worker");
    }

    // Through the API of one gateway: wrapped once, the same event on both.
    let answer = a
        .post(
            "/api/v1/publish",
            r#"{"target": {"room": "public:lobby"}, "text": "from a"}"#,
        )
        .await
        .json();
    for ws in [&mut on_a, &mut on_b] {
        let event: Value = support::published::next_publication(ws).await;
        assert_text_event(&event, "public:lobby", "from a");
        assert_eq!(event["id"], answer["id"]);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
