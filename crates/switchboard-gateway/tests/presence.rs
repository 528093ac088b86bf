//! Presence through the gateway, as a user would use it: `PRESENCE` and
//! `PRESENCE_STATS` over `/ws`, the HTTP API, join and leave events for
//! the subscribers that asked; then three instances over one Redis, one
//! of them SIGKILLed and one SIGSTOPped past its lease.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Gateway, Options};
use switchboard::TestSocket;
use switchboard_testredis::RedisServer;

const LOBBY: &str = "public:lobby";

fn config_file(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("sb-presence-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("gateway.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// A gateway with `extra` config; on Redis when `redis` is given.
fn gateway(name: &str, redis: Option<&RedisServer>, extra: &str) -> Gateway {
    let broker = match redis {
        Some(_) => format!(
            "[broker]\ntype = \"redis\"\ninstance_id = \"{name}\"\nlease_ttl = \"3s\"\n\
             command_timeout = \"500ms\"\nconnect_timeout = \"500ms\"\n"
        ),
        None => String::new(),
    };
    let path = config_file(name, &format!("{broker}{extra}"));
    let mut env = Vec::new();
    if let Some(redis) = redis {
        env.push(("SWITCHBOARD_BROKER_URL", redis.url()));
    }
    Gateway::start_with(&Options {
        args: vec!["--config".into(), path],
        env,
        ..Options::default()
    })
}

/// The next message that is not a heartbeat.
async fn next(ws: &mut TestSocket) -> Value {
    loop {
        let message: Value = ws.recv_json().await.expect("a message");
        if message["type"] != "PING" {
            return message;
        }
    }
}

/// The join and leave events within `quiet` of silence, as `join:<user>`
/// (`-` for anonymous); anything else is a failure.
async fn events(ws: &mut TestSocket, quiet: Duration) -> Vec<String> {
    let mut out = Vec::new();
    let mut silent_since = Instant::now();
    while let Some(left) = quiet.checked_sub(silent_since.elapsed()) {
        let message: Value = match tokio::time::timeout(left, ws.recv_json()).await {
            Err(_) | Ok(Err(switchboard::TestError::Timeout)) => continue,
            Ok(Err(e)) => panic!("the socket failed: {e}"),
            Ok(Ok(message)) => message,
        };
        if message["type"] == "PING" {
            continue;
        }
        silent_since = Instant::now();
        assert_eq!(message["type"], "EVENT", "{message}");
        let payload = &message["payload"];
        let kind = match payload["event"].as_str() {
            Some("switchboard.join") => "join",
            Some("switchboard.leave") => "leave",
            _ => panic!("not a presence event: {message}"),
        };
        assert_eq!(payload["channel"], LOBBY, "{message}");
        assert!(
            message.get("offset").is_none(),
            "not in the history: {message}"
        );
        let user = payload["data"]["user"].as_str().unwrap_or("-");
        out.push(format!("{kind}:{user}"));
    }
    out
}

/// A `/ws` client (as `token` when given) that sent `CONNECT` as
/// `client` and subscribed to LOBBY, with join and leave events when
/// `join_leave`.
async fn member(gw: &Gateway, token: Option<&str>, client: &str, join_leave: bool) -> TestSocket {
    let mut request = gw.ws_client().request("/ws").protocol("switchboard.v1");
    if let Some(token) = token {
        request = request.bearer(token);
    }
    let mut ws = request.connect().await.expect("connects");
    assert_eq!(next(&mut ws).await["type"], "CONNECT_ACK");
    ws.send_json(&json!({"type": "CONNECT", "id": "c", "payload": {"client": {"name": client, "version": "1.0"}}}))
        .await
        .unwrap();
    assert_eq!(next(&mut ws).await["type"], "CONNECT_ACK");
    let entry = if join_leave {
        json!({"channel": LOBBY, "join_leave": true})
    } else {
        json!(LOBBY)
    };
    ws.send_json(&json!({"type": "SUBSCRIBE", "id": "s", "payload": {"subscriptions": [entry]}}))
        .await
        .unwrap();
    let success = next(&mut ws).await;
    assert_eq!(success["type"], "SUBSCRIBE_SUCCESS", "{success}");
    if join_leave {
        assert_eq!(success["payload"]["join_leave"], true, "{success}");
    } else {
        assert!(success["payload"].get("join_leave").is_none(), "{success}");
    }
    ws
}

async fn ask(ws: &mut TestSocket, kind: &str, channel: &str) -> Value {
    ws.send_json(&json!({"type": kind, "id": "p", "payload": {"channel": channel}}))
        .await
        .unwrap();
    let answer = next(ws).await;
    assert_eq!(answer["correlation_id"], "p", "{answer}");
    answer
}

/// Polls the HTTP stats until they are `(connections, users)`.
async fn wait_stats(gw: &Gateway, connections: u64, users: u64, within: Duration) {
    let path = format!(
        "/api/v1/channels/{}/presence/stats",
        LOBBY.replace(':', "%3A")
    );
    let deadline = Instant::now() + within;
    loop {
        let r = gw.get(&path).await;
        let body = r.json();
        if r.status == 200 && body["connections"] == connections && body["users"] == users {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "stats never became {connections}/{users}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const SECRET: &str = "a-presence-secret-of-at-least-32-bytes";

fn jwt_config() -> String {
    format!("[security.jwt]\nkeys = [{{ algorithm = \"HS256\", secret = \"{SECRET}\" }}]\n")
}

fn token(user: &str) -> String {
    support::hs256_token(SECRET, &json!({"sub": user, "exp": 4102444800u64}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_is_asked_for_over_ws_and_http_and_joins_reach_those_who_asked() {
    let gw = gateway(
        "one",
        None,
        &format!(
            "{}[presence]\ngrace = \"0s\"\n[[presence.channels]]\npattern = \"public:*\"\n\
             [[endpoints]]\npath = \"/ws\"\nprotocol = \"structured\"\n\
             [endpoints.structured]\nchannels = [{{ pattern = \"public:*\", access = \"anyone\" }}, {{ pattern = \"quiet:*\", access = \"anyone\" }}]\n",
            jwt_config()
        ),
    );
    let mut watcher = member(&gw, None, "watcher-app", true).await;
    let mut quiet = member(&gw, None, "quiet-app", false).await;
    let alice = token("alice");
    let mut a = member(&gw, Some(&alice), "web", false).await;
    assert_eq!(
        events(&mut watcher, Duration::from_millis(400)).await,
        ["join:-", "join:alice"]
    );
    assert_eq!(
        events(&mut quiet, Duration::from_millis(50)).await,
        Vec::<String>::new()
    );

    let answer = ask(&mut a, "PRESENCE", LOBBY).await;
    assert_eq!(answer["type"], "PRESENCE_RESULT", "{answer}");
    let payload = &answer["payload"];
    assert_eq!(
        (payload["connections"].as_u64(), payload["users"].as_u64()),
        (Some(3), Some(1))
    );
    let members = payload["members"].as_array().unwrap();
    let alice_entry = members
        .iter()
        .find(|m| m["user"] == "alice")
        .expect("alice listed");
    assert_eq!(alice_entry["info"]["client"]["name"], "web");
    assert!(
        alice_entry["connection"].as_str().unwrap().contains('/'),
        "an address: {alice_entry}"
    );
    let stats = ask(&mut a, "PRESENCE_STATS", LOBBY).await;
    assert_eq!(
        stats["payload"],
        json!({"channel": LOBBY, "connections": 3, "users": 1})
    );

    // Refusals: not subscribed, no presence, not a channel.
    let other = ask(&mut a, "PRESENCE", "public:other").await;
    assert_eq!(
        (other["type"].as_str(), other["payload"]["code"].as_str()),
        (Some("ERROR"), Some("forbidden"))
    );
    a.send_json(
        &json!({"type": "SUBSCRIBE", "id": "q", "payload": {"subscriptions": ["quiet:room"]}}),
    )
    .await
    .unwrap();
    assert_eq!(next(&mut a).await["type"], "SUBSCRIBE_SUCCESS");
    let none = ask(&mut a, "PRESENCE_STATS", "quiet:room").await;
    assert_eq!(none["payload"]["code"], "no_presence", "{none}");
    a.send_json(&json!({"type": "PRESENCE", "id": "x", "payload": {}}))
        .await
        .unwrap();
    assert_eq!(next(&mut a).await["payload"]["code"], "invalid_message");

    // The HTTP API: the same, 404 without presence, empty for nobody.
    let r = gw.get("/api/v1/channels/public%3Alobby/presence").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["members"].as_array().unwrap().len(), 3);
    let r = gw.get("/api/v1/channels/quiet%3Aroom/presence").await;
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let r = gw
        .get("/api/v1/channels/public%3Aempty/presence/stats")
        .await;
    assert_eq!(
        r.json(),
        json!({"channel": "public:empty", "connections": 0, "users": 0})
    );
    let r = gw.get("/api/v1/channels/bad%20name/presence").await;
    assert_eq!(r.status, 400);
    let openapi = gw.get("/api/v1/openapi.json").await.json();
    assert!(openapi["paths"]["/api/v1/channels/{channel}/presence/stats"]["get"].is_object());

    // Leaves: alice's last connection goes.
    drop(a);
    assert_eq!(
        events(&mut watcher, Duration::from_millis(600)).await,
        ["leave:alice"]
    );
    wait_stats(&gw, 2, 0, Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_within_the_grace_sends_no_leave_and_no_join() {
    let gw = gateway(
        "grace",
        None,
        &format!("{}[presence]\ngrace = \"2s\"\n", jwt_config()),
    );
    let mut watcher = member(&gw, None, "watcher", true).await;
    let bob = token("bob");
    let b = member(&gw, Some(&bob), "web", false).await;
    assert_eq!(
        events(&mut watcher, Duration::from_millis(400)).await,
        ["join:bob"]
    );
    drop(b);
    wait_stats(&gw, 1, 0, Duration::from_secs(5)).await;
    let b = member(&gw, Some(&bob), "web", false).await;
    assert_eq!(
        events(&mut watcher, Duration::from_millis(2500)).await,
        Vec::<String>::new()
    );
    drop(b);
    let started = Instant::now();
    assert_eq!(
        events(&mut watcher, Duration::from_millis(3000)).await,
        ["leave:bob"]
    );
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "the leave waited for the grace"
    );
}

fn redis_or_skip() -> Option<RedisServer> {
    RedisServer::start()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_agree_and_a_killed_one_is_cleaned_up_within_the_lease() {
    let Some(redis) = redis_or_skip() else { return };
    let extra = format!("{}[presence]\ngrace = \"0s\"\n", jwt_config());
    let gws: Vec<Gateway> = ["p1", "p2", "p3"]
        .into_iter()
        .map(|name| gateway(name, Some(&redis), &extra))
        .collect();
    let mut watcher = member(&gws[0], None, "watcher", true).await;
    let mut clients = Vec::new();
    for (i, user) in ["alice", "bob", "carol"].into_iter().enumerate() {
        clients.push(member(&gws[i], Some(&token(user)), "web", false).await);
    }
    clients.push(member(&gws[2], Some(&token("carol")), "phone", false).await);
    for gw in &gws {
        wait_stats(gw, 5, 3, Duration::from_secs(5)).await;
    }
    let mut joined = events(&mut watcher, Duration::from_millis(500)).await;
    joined.sort();
    assert_eq!(joined, ["join:alice", "join:bob", "join:carol"]);
    // Every instance lists the same members.
    let mut lists = Vec::new();
    for gw in &gws {
        let body = gw
            .get("/api/v1/channels/public%3Alobby/presence")
            .await
            .json();
        let mut addrs: Vec<String> = body["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["connection"].as_str().unwrap().to_owned())
            .collect();
        addrs.sort();
        lists.push(addrs);
    }
    assert!(lists.windows(2).all(|w| w[0] == w[1]), "{lists:?}");

    // p3 (carol's two connections) is killed: the survivors remove its
    // members and carol leaves, once, within the lease bound plus 1 s.
    let killed = Instant::now();
    gws[2].signal("KILL");
    // lease_ttl (3 s) + one heartbeat (1 s) + 1 s.
    let bound = Duration::from_secs(3 + 1 + 1);
    let first = loop {
        assert!(
            killed.elapsed() < bound,
            "no leave within {bound:?} of the kill"
        );
        match tokio::time::timeout(Duration::from_millis(100), watcher.recv_json::<Value>()).await {
            Ok(Ok(message)) if message["type"] == "EVENT" => break message,
            Ok(Ok(_)) | Err(_) | Ok(Err(switchboard::TestError::Timeout)) => continue,
            Ok(Err(e)) => panic!("the socket failed: {e}"),
        }
    };
    let took = killed.elapsed();
    assert_eq!(first["payload"]["event"], "switchboard.leave", "{first}");
    assert_eq!(first["payload"]["data"]["user"], "carol", "{first}");
    // Carol had two connections there: one leave, and nothing else.
    assert_eq!(
        events(&mut watcher, Duration::from_secs(1)).await,
        Vec::<String>::new()
    );
    wait_stats(&gws[0], 3, 2, Duration::from_secs(1)).await;
    wait_stats(&gws[1], 3, 2, Duration::from_secs(1)).await;
    eprintln!("leave of the killed instance's user after {took:?}");
    // Cluster-wide connection counts dropped too.
    let count = gws[0].get("/api/v1/connections/count").await.json();
    assert_eq!(count["cluster"], 3, "{count}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_frozen_past_its_lease_closes_its_connections_with_1012() {
    let Some(redis) = redis_or_skip() else { return };
    let extra = format!("{}[presence]\ngrace = \"0s\"\n", jwt_config());
    let a = gateway("f1", Some(&redis), &extra);
    let b = gateway("f2", Some(&redis), &extra);
    let mut watcher = member(&a, None, "watcher", true).await;
    let mut frozen = member(&b, Some(&token("dave")), "web", false).await;
    assert_eq!(
        events(&mut watcher, Duration::from_millis(500)).await,
        ["join:dave"]
    );
    b.signal("STOP");
    assert_eq!(
        events(&mut watcher, Duration::from_secs(7)).await,
        ["leave:dave"]
    );
    wait_stats(&a, 1, 0, Duration::from_secs(1)).await;
    b.signal("CONT");
    // It wakes up, finds it was declared dead, and closes with 1012.
    let frame = tokio::time::timeout(Duration::from_secs(5), frozen.recv_close())
        .await
        .expect("closed within 5 s of waking up")
        .expect("a close frame")
        .expect("with a code");
    assert_eq!(frame.code, switchboard::CloseCode::Restart, "{frame:?}");
    assert!(b.logs().contains("declared dead"), "{}", b.logs());
}
