//! The backend proxy against a real HTTP backend (an axum server started by
//! each test): every proxy allows, refuses and modifies; forwarded headers
//! arrive and the signature verifies; a backend that times out, fails,
//! answers nonsense or 10 MiB gets the documented error while the gateway
//! keeps serving; a slow backend delays nobody else; notifications arrive.

mod backend;
mod support;

use std::time::{Duration, Instant};

use backend::Backend;
use serde_json::{Value, json};
use support::Gateway;
use switchboard::{CloseCode, TestError, TestSocket};

fn config_file(text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "switchboard-proxy-{}-{}.toml",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&path, text).unwrap();
    path
}

/// A gateway whose `/ws` (defaults) and `/ws/fast` (1 s heartbeat) use
/// every proxy of `backend`.
fn start(backend: &Backend) -> Gateway {
    let config = format!(
        r#"{}
[[endpoints]]
path = "/ws"
protocol = "structured"

[[endpoints]]
path = "/ws/fast"
protocol = "structured"
[endpoints.structured]
heartbeat_interval = "1s"
heartbeat_timeout = "1s"
"#,
        backend.config()
    );
    let path = config_file(&config);
    Gateway::start(&["--config", path.to_str().unwrap()])
}

async fn recv_type(ws: &mut TestSocket, kind: &str) -> Value {
    for _ in 0..50 {
        let message: Value = ws.recv_json().await.unwrap();
        if message["type"] == kind {
            return message;
        }
    }
    panic!("no {kind} message");
}

/// Waits for the `SUBSCRIBE_SUCCESS` of the channels the connect proxy
/// gave; a `SUBSCRIBE_FAILURE` or no answer fails with the gateway's log.
async fn subscribed(ws: &mut TestSocket, gw: &Gateway) {
    loop {
        let message: Value = ws
            .recv_json()
            .await
            .unwrap_or_else(|e| panic!("no SUBSCRIBE_SUCCESS ({e:?}); log:\n{}", gw.logs()));
        match message["type"].as_str() {
            Some("SUBSCRIBE_SUCCESS") => return,
            Some("SUBSCRIBE_FAILURE") => panic!("{message}; log:\n{}", gw.logs()),
            _ => {}
        }
    }
}

/// The reply correlated with `id`, skipping everything else.
async fn reply_to(ws: &mut TestSocket, id: &str) -> Value {
    for _ in 0..50 {
        let message: Value = ws.recv_json().await.unwrap();
        if message["correlation_id"] == id {
            return message;
        }
    }
    panic!("no reply to {id}");
}

async fn open(gw: &Gateway, path: &str, session: &str) -> (TestSocket, Value) {
    let mut ws = gw
        .ws_client()
        .with_timeout(Duration::from_secs(15))
        .request(path)
        .cookie("session", session)
        .header("x-tenant", "acme")
        .connect()
        .await
        .unwrap();
    let ack = recv_type(&mut ws, "CONNECT_ACK").await;
    (ws, ack)
}

async fn action(ws: &mut TestSocket, id: &str, name: &str, data: Value) -> Value {
    ws.send_json(&json!({"type": "ACTION", "id": id, "payload": {"action": name, "data": data}}))
        .await
        .unwrap();
    reply_to(ws, id).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_proxy_allows_refuses_and_sees_the_forwarded_headers() {
    let backend = Backend::start().await;
    let gw = start(&backend);

    // Allowed: the user, and the channel the backend chose, at once.
    let (mut alice, ack) = open(&gw, "/ws", "alice").await;
    assert_eq!(ack["payload"]["authenticated"], true, "{ack}");
    assert_eq!(ack["payload"]["user_id"], "alice");
    let subscribed = recv_type(&mut alice, "SUBSCRIBE_SUCCESS").await;
    assert_eq!(subscribed["payload"]["channel"], "user:alice:inbox");
    assert!(subscribed.get("correlation_id").is_none(), "{subscribed}");

    let call = backend.calls("/connect").pop().unwrap();
    assert!(call.signed, "the signature verifies");
    assert_eq!(call.headers["x-gateway"], "test");
    assert!(call.headers.contains_key("x-request-id"));
    assert_eq!(call.body["headers"]["cookie"], "session=alice");
    assert_eq!(call.body["headers"]["x-tenant"], "acme");
    assert_eq!(call.body["endpoint"], "/ws");
    assert_eq!(call.body["path"], "/ws");
    assert_eq!(call.body["client"]["ip"], "127.0.0.1");

    // The metadata reaches the rpc proxy with the user.
    let result = action(&mut alice, "a1", "orders.create", json!({"sku": "x"})).await;
    assert_eq!(result["type"], "ACTION_RESULT", "{result}");
    assert_eq!(result["payload"]["data"]["user"], "alice");
    assert_eq!(
        result["payload"]["data"]["meta"],
        json!({"plan": "pro", "tenant": "acme"})
    );

    // Anonymous.
    let (_anon, ack) = open(&gw, "/ws", "nobody").await;
    assert_eq!(ack["payload"]["authenticated"], false);

    // Refused: a close code and reason a browser can show.
    let mut banned = gw
        .ws_client()
        .request("/ws")
        .protocol("switchboard.v1")
        .cookie("session", "banned")
        .connect()
        .await
        .unwrap();
    // Browsers fail a socket that offered subprotocols and got none back.
    assert_eq!(banned.protocol(), Some("switchboard.v1"));
    let close = banned.recv_close().await.unwrap().unwrap();
    assert_eq!(close.code, CloseCode::Policy);
    assert_eq!(close.reason, "banned until tomorrow");

    // The backend fails: 1013, retry later.
    let mut down = gw
        .ws_client()
        .request("/ws")
        .cookie("session", "down")
        .connect()
        .await
        .unwrap();
    let close = down.recv_close().await.unwrap().unwrap();
    assert_eq!(close.code, CloseCode::TryAgainLater);

    let metrics = gw.get("/metrics").await.body;
    assert!(
        metrics.contains("switchboard_proxy_calls_total{proxy=\"connect\"} 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains("switchboard_proxy_errors_total{proxy=\"connect\",kind=\"status\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_proxy_answers_errors_and_leaves_builtin_actions_alone() {
    let backend = Backend::start().await;
    let gw = start(&backend);
    let (mut ws, _) = open(&gw, "/ws", "alice").await;

    let result = action(&mut ws, "r1", "orders.create", json!({"sku": "a", "n": 2})).await;
    assert_eq!(result["payload"]["action"], "orders.create");
    assert_eq!(
        result["payload"]["data"]["echo"],
        json!({"sku": "a", "n": 2})
    );
    assert!(
        result["payload"]["data"]["connection"]
            .as_str()
            .unwrap()
            .contains('/')
    );
    let call = backend.calls("/rpc").pop().unwrap();
    assert!(call.signed);

    let null = action(&mut ws, "r2", "orders.null", json!(null)).await;
    assert_eq!(null["type"], "ACTION_RESULT");
    assert_eq!(null["payload"]["data"], Value::Null);

    let error = action(&mut ws, "r3", "orders.fail", json!({})).await;
    assert_eq!(error["type"], "ERROR");
    assert_eq!(
        error["payload"],
        json!({"code": "out_of_stock", "message": "Only 2 left"})
    );

    let busy = action(&mut ws, "r4", "orders.busy", json!({})).await;
    assert_eq!(busy["payload"]["code"], "busy");
    assert_eq!(busy["payload"]["temporary"], true);

    // Built-in actions still work; an action nothing takes is unknown.
    let chat = action(
        &mut ws,
        "r5",
        "chat.send",
        json!({"room": "public:lobby", "text": "hi"}),
    )
    .await;
    assert_eq!(chat["type"], "ACTION_RESULT", "{chat}");
    let unknown = action(&mut ws, "r6", "nope", json!({})).await;
    assert_eq!(unknown["payload"]["code"], "unknown_action");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_backend_gets_backend_unavailable_and_the_gateway_keeps_serving() {
    let backend = Backend::start().await;
    let gw = start(&backend);
    let (mut ws, _) = open(&gw, "/ws", "alice").await;

    for (id, name, kind) in [
        ("f1", "orders.500", "status"),
        ("f2", "orders.badjson", "invalid"),
        ("f3", "orders.huge", "too_large"),
        ("f4", "orders.hang", "timeout"),
    ] {
        let started = Instant::now();
        let error = action(&mut ws, id, name, json!({})).await;
        assert_eq!(error["type"], "ERROR", "{name}: {error}");
        assert_eq!(error["payload"]["code"], "backend_unavailable", "{name}");
        assert_eq!(error["payload"]["temporary"], true, "{name}");
        assert!(
            error["payload"]["message"].as_str().unwrap().contains(kind),
            "{name}: {error}"
        );
        if kind == "timeout" {
            let waited = started.elapsed();
            assert!(
                waited >= Duration::from_secs(5) && waited < Duration::from_secs(9),
                "{waited:?}"
            );
        }
    }
    // Still serving, on this connection and new ones.
    let ok = action(&mut ws, "f5", "orders.create", json!({})).await;
    assert_eq!(ok["type"], "ACTION_RESULT");
    let (mut other, _) = open(&gw, "/ws", "alice").await;
    assert_eq!(
        action(&mut other, "f6", "orders.create", json!({})).await["type"],
        "ACTION_RESULT"
    );
    assert_eq!(gw.get("/healthz").await.status, 200);

    let metrics = gw.get("/metrics").await.body;
    for kind in ["status", "invalid", "too_large", "timeout"] {
        let line = format!("switchboard_proxy_errors_total{{proxy=\"rpc\",kind=\"{kind}\"}} 1");
        assert!(metrics.contains(&line), "{line}\n{metrics}");
    }
    assert!(metrics.contains("switchboard_proxy_call_duration_seconds_count{proxy=\"rpc\"}"));
    assert!(
        metrics.contains("switchboard_proxy_in_flight{proxy=\"rpc\"} 0"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_backend_delays_neither_other_connections_nor_pings_nor_other_actions() {
    let backend = Backend::start().await;
    let gw = start(&backend);
    let (mut slow, _) = open(&gw, "/ws", "alice").await;
    let (mut other, _) = open(&gw, "/ws", "alice").await;

    slow.send_json(&json!({"type": "ACTION", "id": "s1", "payload": {"action": "orders.slow"}}))
        .await
        .unwrap();
    backend
        .wait_for("/rpc", |b| b["action"] == "orders.slow")
        .await;
    let started = Instant::now();

    let reply = action(&mut other, "o1", "orders.create", json!({})).await;
    assert_eq!(reply["type"], "ACTION_RESULT");
    slow.send_json(&json!({"type": "PING", "id": "p1"}))
        .await
        .unwrap();
    assert_eq!(reply_to(&mut slow, "p1").await["type"], "PONG");
    let own = action(&mut slow, "s2", "orders.create", json!({})).await;
    assert_eq!(own["type"], "ACTION_RESULT");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    let late = reply_to(&mut slow, "s1").await;
    assert_eq!(late["payload"]["data"], "slow");
    assert!(started.elapsed() >= Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_proxy_allows_with_data_refuses_and_reports_unavailable() {
    let backend = Backend::start().await;
    let gw = start(&backend);
    let (mut ws, _) = open(&gw, "/ws", "alice").await;
    ws.send_json(&json!({"type": "SUBSCRIBE", "id": "c1", "payload": {"subscriptions": ["team:red", "team:blue", "team:down", "public:news", "private:x"]}}))
        .await
        .unwrap();
    let mut replies = Vec::new();
    while replies.len() < 5 {
        let message = reply_to(&mut ws, "c1").await;
        replies.push(message);
    }
    let by_channel = |c: &str| {
        replies
            .iter()
            .find(|r| r["payload"]["channel"] == c)
            .unwrap()
            .clone()
    };
    let red = by_channel("team:red");
    assert_eq!(red["type"], "SUBSCRIBE_SUCCESS");
    assert_eq!(
        red["payload"]["data"],
        json!({"members": 3, "user": "alice"})
    );
    let blue = by_channel("team:blue");
    assert_eq!(blue["type"], "SUBSCRIBE_FAILURE");
    assert_eq!(blue["payload"]["code"], "forbidden");
    assert_eq!(blue["payload"]["reason"], "not in this team");
    assert_eq!(by_channel("team:down")["payload"]["code"], "unavailable");
    assert_eq!(by_channel("public:news")["type"], "SUBSCRIBE_SUCCESS");
    assert_eq!(by_channel("private:x")["payload"]["code"], "forbidden");
    let asked: Vec<Value> = backend
        .calls("/subscribe")
        .iter()
        .map(|c| c.body["channel"].clone())
        .collect();
    assert_eq!(asked.len(), 3, "only team:* goes to the backend: {asked:?}");

    // Unsubscribing is notified.
    ws.send_json(
        &json!({"type": "UNSUBSCRIBE", "id": "u1", "payload": {"subscriptions": ["team:red"]}}),
    )
    .await
    .unwrap();
    let event = backend
        .wait_for("/unsubscribe", |b| b["events"][0]["channel"] == "team:red")
        .await;
    assert_eq!(event["events"][0]["user"], "alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_notifications_arrive_for_a_normal_close_and_a_timed_out_connection() {
    let backend = Backend::start().await;
    let gw = start(&backend);

    let (mut normal, ack) = open(&gw, "/ws", "alice").await;
    let id = ack["payload"]["connection_id"].as_str().unwrap().to_owned();
    recv_type(&mut normal, "SUBSCRIBE_SUCCESS").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    normal
        .send_json(&json!({"type": "DISCONNECT", "payload": {"code": 1000}}))
        .await
        .unwrap();
    let _ = normal.recv_close().await;
    let batch = backend
        .wait_for("/disconnect", |b| {
            b["events"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["connection"] == id.as_str())
        })
        .await;
    let event = batch["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["connection"] == id.as_str())
        .unwrap();
    assert_eq!(event["code"], 1000);
    assert_eq!(event["user"], "alice");
    assert_eq!(event["meta"]["plan"], "pro");
    assert_eq!(event["channels"], json!(["user:alice:inbox"]));
    assert!(event["duration"].as_f64().unwrap() >= 0.3, "{event}");

    // A client that never answers PING is closed with 4006, and notified.
    let (mut silent, ack) = open(&gw, "/ws/fast", "nobody").await;
    let id = ack["payload"]["connection_id"].as_str().unwrap().to_owned();
    let close = silent.recv_close().await.unwrap().unwrap();
    assert_eq!(close.code, CloseCode::from(4006));
    let batch = backend
        .wait_for("/disconnect", |b| {
            b["events"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["connection"] == id.as_str())
        })
        .await;
    let event = batch["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["connection"] == id.as_str())
        .unwrap();
    assert_eq!(event["code"], 4006);
    assert_eq!(event["user"], Value::Null);
    assert!(backend.calls("/disconnect").iter().all(|c| c.signed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_proxy_extends_a_session_before_it_expires() {
    let backend = Backend::start().await;
    let gw = start(&backend);
    let (mut ws, ack) = open(&gw, "/ws", "short").await;
    assert!(ack["payload"]["expires_at"].as_f64().is_some(), "{ack}");
    // Expires 3 s after connecting; refreshed 2 s before.
    let call = backend
        .wait_for("/refresh", |b| b["user"] == "shorty")
        .await;
    assert!(call["expires_at"].as_f64().is_some());
    tokio::time::sleep(Duration::from_secs(3)).await;
    ws.send_json(&json!({"type": "PING", "id": "after"}))
        .await
        .unwrap();
    match reply_to_or_close(&mut ws, "after").await {
        Ok(pong) => assert_eq!(pong["type"], "PONG"),
        Err(e) => panic!("the session was not extended: {e:?}"),
    }
}

async fn reply_to_or_close(ws: &mut TestSocket, id: &str) -> Result<Value, TestError> {
    loop {
        let message: Value = ws.recv_json().await?;
        if message["correlation_id"] == id {
            return Ok(message);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_prior_knowledge_reaches_an_h2c_backend() {
    let backend = Backend::start().await;
    let config = format!(
        "[proxy]\nsecret = \"{}\"\nhttp2 = true\nrpc = {{ url = \"{}\", actions = [\"orders.*\"] }}\n",
        backend::SECRET,
        backend.url("/rpc")
    );
    let path = config_file(&config);
    let gw = Gateway::start(&["--config", path.to_str().unwrap()]);
    let (mut ws, _) = open(&gw, "/ws", "nobody").await;
    for i in 0..3 {
        let id = format!("h{i}");
        let result = action(&mut ws, &id, "orders.create", json!({"i": i})).await;
        assert_eq!(result["type"], "ACTION_RESULT", "{result}");
    }
    let calls = backend.calls("/rpc");
    assert_eq!(calls.len(), 3);
    assert!(
        calls
            .iter()
            .all(|c| c.version == axum::http::Version::HTTP_2 && c.signed)
    );
}

/// Three instances over one Redis; the one holding two connections is
/// SIGKILLed. A survivor sends each connection's disconnect, once, with
/// code 1006 and reason `instance lost`, as soon as it declares the
/// instance dead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instances_connections_are_reported_once_by_a_survivor() {
    let Some(redis) = switchboard_testredis::RedisServer::start() else {
        return;
    };
    let backend = Backend::start().await;
    let gateways: Vec<Gateway> = ["k1", "k2", "k3"]
        .into_iter()
        .map(|name| {
            let config = format!(
                "{}\n[broker]\ntype = \"redis\"\ninstance_id = \"{name}\"\n\
                 lease_ttl = \"4s\"\n\n[[endpoints]]\npath = \"/ws\"\nprotocol = \"structured\"\n",
                backend.config()
            );
            let path = config_file(&config);
            Gateway::start_with(&support::Options {
                args: vec!["--config".into(), path.display().to_string()],
                env: vec![("SWITCHBOARD_BROKER_URL", redis.url())],
                ..support::Options::default()
            })
        })
        .collect();
    let mut held = Vec::new();
    let mut ids = Vec::new();
    for session in ["alice", "bob"] {
        let (mut ws, ack) = open(&gateways[2], "/ws", session).await;
        subscribed(&mut ws, &gateways[2]).await;
        ids.push(ack["payload"]["connection_id"].as_str().unwrap().to_owned());
        held.push(ws);
    }
    // The records reach Redis in the background.
    tokio::time::sleep(Duration::from_millis(500)).await;
    gateways[2].signal("KILL");
    let killed = Instant::now();
    for id in &ids {
        backend
            .wait_for("/disconnect", |b| {
                b["events"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e["connection"] == id.as_str())
            })
            .await;
    }
    let took = killed.elapsed();
    // lease_ttl, then a heartbeat to notice, then 1 s.
    assert!(took < Duration::from_secs(4 + 1 + 1), "{took:?}");
    // Once each, whichever survivor sent them.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let events: Vec<Value> = backend
        .calls("/disconnect")
        .iter()
        .flat_map(|c| c.body["events"].as_array().unwrap().clone())
        .collect();
    for (id, user) in ids.iter().zip(["alice", "bob"]) {
        let mine: Vec<&Value> = events
            .iter()
            .filter(|e| e["connection"] == id.as_str())
            .collect();
        assert_eq!(mine.len(), 1, "{id}: {mine:?}");
        let event = mine[0];
        assert_eq!(
            (event["code"].as_u64(), event["reason"].as_str()),
            (Some(1006), Some("instance lost"))
        );
        assert_eq!(event["user"], user);
        assert_eq!(event["endpoint"], "/ws");
        assert_eq!(
            event["channels"],
            json!([format!("user:{user}:inbox")]),
            "{event}"
        );
        assert!(event["duration"].as_f64().unwrap() >= 0.5, "{event}");
    }
    assert!(backend.calls("/disconnect").iter().all(|c| c.signed));
    drop(held);
}
