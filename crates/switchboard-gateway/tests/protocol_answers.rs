//! What the structured protocol's answers say, as docs/protocol.md gives
//! them, against the real binary: `CONNECT_ACK.connection_id` is the
//! cluster address the HTTP API takes; `expires_at` (in `CONNECT_ACK`,
//! `AUTHENTICATE_SUCCESS` and the expiry warning) is the token's `exp`,
//! while the connection is closed with 4003 only once the leeway has passed
//! too; a `last` over `history.recovery_limit` is lowered to it.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use support::{Gateway, Options};
use switchboard::{CloseCode, TestError, TestSocket};

const SECRET: &str = "a-jwt-secret-of-at-least-thirty-two-bytes";

fn config(text: &str) -> String {
    let path = std::env::temp_dir().join(format!(
        "switchboard-answers-{}-{}.toml",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn start(args: &[&str], config_text: &str) -> Gateway {
    let mut args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    args.extend(["--config".to_owned(), config(config_text)]);
    Gateway::start_with(&Options {
        args,
        ..Options::default()
    })
}

async fn open(gw: &Gateway, token: Option<&str>) -> (TestSocket, Value) {
    let mut request = gw.ws_client().request("/ws").protocol("switchboard.v1");
    if let Some(token) = token {
        request = request.bearer(token);
    }
    let mut ws = request.connect().await.unwrap();
    let ack: Value = ws.recv_json().await.unwrap();
    assert_eq!(ack["type"], "CONNECT_ACK", "{ack}");
    (ws, ack)
}

/// The next message of `kind`, skipping others (pings, warnings).
async fn next(ws: &mut TestSocket, kind: &str) -> Value {
    for _ in 0..50 {
        let message: Value = ws.recv_json().await.unwrap();
        if message["type"] == kind {
            return message;
        }
    }
    panic!("no {kind}");
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_ack_gives_the_cluster_address_that_the_http_api_takes() {
    let gw = start(&["--instance-id", "gw-1"], "");
    let (mut ws, ack) = open(&gw, None).await;
    let address = ack["payload"]["connection_id"].as_str().unwrap().to_owned();
    let (instance, id) = address.split_once('/').expect("instance/id");
    assert_eq!(instance, "gw-1", "{address}");
    let id: u64 = id.parse().expect("a number after the instance");

    // The API takes it as it is (percent-encoded in a path) and shows it.
    let got = gw.get(&format!("/api/v1/connections/gw-1%2F{id}")).await;
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(got.json()["address"], address.as_str());
    assert_eq!(got.json()["id"], id);
    let sent = gw
        .post(
            "/api/v1/publish",
            &json!({"target": {"connection": address}, "message": {"type": "EVENT", "event": "hi", "data": 1}})
                .to_string(),
        )
        .await;
    assert_eq!(sent.json()["local"], 1, "{}", sent.body);
    assert_eq!(next(&mut ws, "EVENT").await["payload"]["event"], "hi");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expires_at_is_the_tokens_exp_and_the_leeway_only_delays_the_close() {
    let gw = start(
        &[],
        &format!(
            "[security.jwt]\nleeway = \"3s\"\nkeys = [{{ algorithm = \"HS256\", secret = \"{SECRET}\" }}]\n"
        ),
    );
    let token = |exp: u64| support::hs256_token(SECRET, &json!({"sub": "alice", "exp": exp}));

    // In the handshake: CONNECT_ACK says exp, to the second.
    let exp = now_secs() + 600;
    let (_first, ack) = open(&gw, Some(&token(exp))).await;
    assert_eq!(ack["payload"]["authenticated"], true);
    assert_eq!(ack["payload"]["expires_at"].as_f64(), Some(exp as f64));

    // AUTHENTICATE (a refresh here): AUTHENTICATE_SUCCESS says exp too, and
    // so does the warning, sent at once as less than 30 s is left.
    let (mut ws, _) = open(&gw, Some(&token(exp))).await;
    let exp = now_secs() + 2;
    ws.send_json(
        &json!({"type": "AUTHENTICATE", "id": "a", "payload": {"auth": {"token": token(exp)}}}),
    )
    .await
    .unwrap();
    let ok = next(&mut ws, "AUTHENTICATE_SUCCESS").await;
    assert_eq!(ok["payload"]["expires_at"].as_f64(), Some(exp as f64));
    let warning = next(&mut ws, "EVENT").await;
    assert_eq!(warning["payload"]["event"], "switchboard.session_expiring");
    assert_eq!(
        warning["payload"]["data"]["expires_at"].as_f64(),
        Some(exp as f64)
    );

    // Past exp, within the leeway: still open.
    let exp_at = UNIX_EPOCH + Duration::from_secs(exp);
    let wait = exp_at.duration_since(SystemTime::now()).unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(700)).await;
    ws.send_json(&json!({"type": "PING", "id": "p", "payload": {}}))
        .await
        .unwrap();
    assert_eq!(next(&mut ws, "PONG").await["correlation_id"], "p");

    // Once the leeway has passed: 4003.
    let closed = tokio::time::timeout(Duration::from_secs(6), async {
        loop {
            match ws.recv_json::<Value>().await {
                Ok(_) => continue,
                Err(e) => return (e, SystemTime::now()),
            }
        }
    })
    .await
    .expect("closed within the leeway and a margin");
    match closed {
        (TestError::Closed(Some(frame)), at) => {
            assert_eq!(frame.code, CloseCode::Application(4003));
            assert!(
                at >= exp_at + Duration::from_millis(2900),
                "closed {:?} after exp, before the leeway passed",
                at.duration_since(exp_at)
            );
        }
        (other, _) => panic!("expected a close with 4003, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_last_over_the_recovery_limit_is_lowered_to_it_and_said_so() {
    let gw = start(&[], "[history]\nrecovery_limit = 10\n");
    for n in 1..=15 {
        let body = json!({"target": {"room": "public:lobby"}, "message": {"type": "EVENT", "event": "n", "data": n}});
        let response = gw.post("/api/v1/publish", &body.to_string()).await;
        assert_eq!(response.json()["offset"], n, "{}", response.body);
    }
    // What the demo page asks for when it joins a room.
    let (mut ws, _) = open(&gw, None).await;
    ws.send_json(&json!({"type": "SUBSCRIBE", "id": "s", "payload": {"subscriptions": [{"channel": "public:lobby", "last": 50}]}}))
        .await
        .unwrap();
    let success = next(&mut ws, "SUBSCRIBE_SUCCESS").await;
    assert_eq!(success["payload"]["last"], 10, "{success}");
    assert_eq!(success["payload"]["offset"], 15);
    for offset in 6..=15 {
        let event = next(&mut ws, "EVENT").await;
        assert_eq!(event["offset"], offset, "{event}");
    }
    // Within the limit, `last` is what was asked.
    ws.send_json(&json!({"type": "SUBSCRIBE", "id": "t", "payload": {"subscriptions": [{"channel": "public:other", "last": 3}]}}))
        .await
        .unwrap();
    let success = next(&mut ws, "SUBSCRIBE_SUCCESS").await;
    assert_eq!(success["payload"]["last"], 3, "{success}");
    // 0 is still refused.
    ws.send_json(&json!({"type": "SUBSCRIBE", "id": "u", "payload": {"subscriptions": [{"channel": "public:x", "last": 0}]}}))
        .await
        .unwrap();
    let error = next(&mut ws, "ERROR").await;
    assert_eq!(
        error["payload"],
        json!({"code": "invalid_message", "message": "public:x: last must be at least 1"})
    );
}
