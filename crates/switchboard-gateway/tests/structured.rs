//! The structured protocol at `/ws` as the gateway serves it: subscribe,
//! receive what the HTTP API publishes, `chat.send`, and the server-wide
//! `[security]` used for `AUTHENTICATE`.

mod support;

use serde_json::{Value, json};
use support::{Gateway, Options};
use switchboard::TestSocket;

/// The next message, past presence events (`[presence]`, on public:* by
/// default), which these tests do not look at.
async fn recv(ws: &mut TestSocket) -> Value {
    loop {
        let message: Value = ws.recv_json().await.unwrap();
        let event = message["payload"]["event"].as_str();
        if !matches!(event, Some("switchboard.join" | "switchboard.leave")) {
            return message;
        }
    }
}

/// Reads until a message of `kind` (skipping heartbeats and the like).
async fn recv_type(ws: &mut TestSocket, kind: &str) -> Value {
    for _ in 0..20 {
        let message = recv(ws).await;
        if message["type"] == kind {
            return message;
        }
    }
    panic!("no {kind} message");
}

async fn open(gw: &Gateway) -> TestSocket {
    let mut ws = gw
        .ws_client()
        .request("/ws")
        .protocol("switchboard.v1")
        .connect()
        .await
        .unwrap();
    assert_eq!(ws.protocol(), Some("switchboard.v1"));
    let ack = recv_type(&mut ws, "CONNECT_ACK").await;
    assert_eq!(ack["payload"]["protocol_version"], 1);
    ws
}

async fn subscribe(ws: &mut TestSocket, channel: &str) -> Value {
    ws.send_json(&json!({"type": "SUBSCRIBE", "id": format!("sub-{channel}"), "payload": {"subscriptions": [channel]}}))
        .await
        .unwrap();
    let reply = recv(ws).await;
    assert_eq!(reply["correlation_id"], format!("sub-{channel}"));
    reply
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_subscribe_and_get_what_the_api_publishes() {
    let gw = Gateway::start(&[]);
    let mut ws = open(&gw).await;
    let reply = subscribe(&mut ws, "public:news").await;
    assert_eq!(reply["type"], "SUBSCRIBE_SUCCESS", "{reply}");
    let denied = subscribe(&mut ws, "private:admin").await;
    assert_eq!(denied["type"], "SUBSCRIBE_FAILURE");
    assert_eq!(denied["payload"]["code"], "forbidden");

    let response = gw
        .post(
            "/api/v1/publish",
            r#"{"target": {"room": "public:news"}, "message": {"type": "EVENT", "event": "article.published", "data": {"title": "Hello"}}}"#,
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.json()["local"], 1);
    let event = recv_type(&mut ws, "EVENT").await;
    assert_eq!(event["payload"]["event"], "article.published");
    assert_eq!(event["payload"]["channel"], "public:news");
    assert_eq!(event["id"], response.json()["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_send_reaches_the_channel_and_only_allowed_ones() {
    let gw = Gateway::start(&[]);
    let mut receiver = open(&gw).await;
    assert_eq!(
        subscribe(&mut receiver, "public:test").await["type"],
        "SUBSCRIBE_SUCCESS"
    );
    let mut sender = open(&gw).await;

    sender
        .send_json(&json!({"type": "ACTION", "id": "a1", "payload": {"action": "chat.send", "data": {"room": "public:test", "text": "hello", "name": "ann"}}}))
        .await
        .unwrap();
    let result = recv_type(&mut sender, "ACTION_RESULT").await;
    assert_eq!(result["correlation_id"], "a1");
    assert_eq!(result["payload"]["data"], json!({ "delivered": 1 }));
    let event = recv_type(&mut receiver, "EVENT").await;
    assert_eq!(event["payload"]["event"], "chat.message");
    assert_eq!(event["payload"]["channel"], "public:test");
    assert_eq!(event["payload"]["data"]["text"], "hello");
    assert_eq!(event["payload"]["data"]["name"], "ann");
    assert_eq!(event["payload"]["data"]["user"], Value::Null);

    // A channel the sender may not subscribe to.
    sender
        .send_json(&json!({"type": "ACTION", "id": "a2", "payload": {"action": "chat.send", "data": {"room": "user:bob:inbox", "text": "hi"}}}))
        .await
        .unwrap();
    let error = recv_type(&mut sender, "ERROR").await;
    assert_eq!(error["correlation_id"], "a2");
    assert_eq!(error["payload"]["code"], "action_failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_security_authenticates_structured_clients() {
    let dir = std::env::temp_dir();
    let file = dir.join(format!(
        "switchboard-structured-{}-{}.toml",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(
        &file,
        r#"
[[security.api_keys]]
key = "alice-device-key-0123456789"
user = "alice"

[[endpoints]]
path = "/ws"
protocol = "structured"
[endpoints.structured]
require_auth = true
chat_channels = []
"#,
    )
    .unwrap();
    let gw = Gateway::start_with(&Options {
        args: vec!["--config".into(), file.display().to_string()],
        ..Options::default()
    });
    let mut ws = open(&gw).await;
    // Anything before AUTHENTICATE: not_authenticated.
    let early = subscribe(&mut ws, "public:news").await;
    assert_eq!(early["type"], "ERROR");
    assert_eq!(early["payload"]["code"], "not_authenticated");
    ws.send_json(&json!({"type": "AUTHENTICATE", "id": "auth", "payload": {"auth": {"token": "alice-device-key-0123456789"}}}))
        .await
        .unwrap();
    let ok = recv_type(&mut ws, "AUTHENTICATE_SUCCESS").await;
    assert_eq!(ok["payload"]["user_id"], "alice");
    // Her own channel, by the default rules.
    assert_eq!(
        subscribe(&mut ws, "user:alice:inbox").await["type"],
        "SUBSCRIBE_SUCCESS"
    );
    let to_user = gw
        .post(
            "/api/v1/publish",
            r#"{"target": {"user": "alice"}, "message": {"type": "NOTIFICATION", "title": "Hi", "message": "for alice"}}"#,
        )
        .await;
    assert_eq!(to_user.json()["local"], 1, "{}", to_user.body);
    let note = recv_type(&mut ws, "NOTIFICATION").await;
    assert_eq!(note["payload"]["message"], "for alice");
    // chat_channels = []: no chat.send.
    ws.send_json(&json!({"type": "ACTION", "id": "c", "payload": {"action": "chat.send", "data": {"room": "public:x", "text": "x"}}}))
        .await
        .unwrap();
    assert_eq!(
        recv_type(&mut ws, "ERROR").await["payload"]["code"],
        "unknown_action"
    );
    std::fs::remove_file(file).unwrap();
}
