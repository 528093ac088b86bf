//! docs/scaling.md's and docs/python.md's Redis commands, run as written
//! against a real `redis-server` and the real gateway on it: `redis-cli`
//! publishes (the instance `gw-1`, as the page says), the Python worker
//! example's command lines and the page's Python snippet
//! (`$SWITCHBOARD_PYTHON` or `python3`, with `redis` and `httpx`).

mod support;

use std::time::Duration;

use serde_json::Value;
use support::shell::{Shell, is_setup, python_with, repo_root, require_tool};
use support::{Gateway, Options, hs256_token};
use switchboard::{CloseCode, TestSocket};
use switchboard_docs::markdown::tagged;
use switchboard_testredis::RedisServer;

const SECRET: &str = "a test secret of at least thirty-two bytes";

/// A gateway on `redis` as instance `gw-1`, with HS256 tokens.
fn gateway(redis: &RedisServer) -> Gateway {
    let dir = std::env::temp_dir().join(format!(
        "switchboard-docs-redis-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("switchboard.toml");
    std::fs::write(
        &config,
        "[broker]\ntype = \"redis\"\ninstance_id = \"gw-1\"\n\n\
         [[security.jwt.keys]]\nalgorithm = \"HS256\"\nsecret_env = \"JWT_SECRET\"\n",
    )
    .unwrap();
    Gateway::start_with(&Options {
        args: vec!["--config".into(), config.display().to_string()],
        env: vec![
            ("SWITCHBOARD_BROKER_URL", redis.url()),
            ("JWT_SECRET", SECRET.to_owned()),
        ],
        ..Options::default()
    })
}

/// A `/ws` client subscribed to `channel`.
async fn subscriber(gw: &Gateway, channel: &str) -> TestSocket {
    let mut ws = gw
        .ws_client()
        .request("/ws")
        .protocol("switchboard.v1")
        .connect()
        .await
        .unwrap();
    let _ack: Value = ws.recv_json().await.unwrap();
    ws.send_text(&format!(
        r#"{{"type":"SUBSCRIBE","id":"s","payload":{{"subscriptions":["{channel}"]}}}}"#
    ))
    .await
    .unwrap();
    let joined: Value = support::published::next_publication(&mut ws).await;
    assert_eq!(joined["type"], "SUBSCRIBE_SUCCESS", "{joined}");
    gw.wait_for_room(channel, 1).await;
    ws
}

/// Waits until the gateway's subscriber listens for the room on Redis.
async fn listening(redis: &RedisServer, channel: &str) {
    let mut conn = redis.connection().await;
    for _ in 0..200 {
        let counts: Vec<(String, i64)> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(channel)
            .query_async(&mut conn)
            .await
            .unwrap();
        if counts.first().is_some_and(|(_, n)| *n > 0) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("nobody subscribed to {channel}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_cli_publishes_reach_who_the_page_says() {
    let test = "the_redis_cli_publishes_reach_who_the_page_says";
    let Some(redis) = RedisServer::start() else {
        return;
    };
    if !require_tool("redis-cli", "--version", test) {
        return;
    }
    let gw = gateway(&redis);
    // Connection 1: a client of /ws/broadcast; then alice, on /ws/echo.
    let mut broadcast = gw.ws_client().connect("/ws/broadcast").await.unwrap();
    gw.wait_for_connections(1).await;
    let token = hs256_token(
        SECRET,
        &serde_json::json!({"sub": "alice", "exp": 4_000_000_000u64}),
    );
    let mut alice = gw
        .ws_client()
        .request("/ws/echo")
        .bearer(&token)
        .connect()
        .await
        .unwrap();
    gw.wait_for_connections(2).await;
    let listed = gw.get("/api/v1/connections").await.json();
    let first = listed["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == "/ws/broadcast")
        .unwrap_or_else(|| panic!("{listed}"))
        .clone();
    assert_eq!(
        first["address"], "gw-1/1",
        "the page closes connection 1 of gw-1: {first}"
    );
    listening(&redis, "sb:v1:room:broadcast").await;
    listening(&redis, "sb:v1:user:alice").await;

    let shell = Shell::new().replace("redis-cli ", &format!("redis-cli -p {} ", redis.port()));
    let block = &tagged("redis-cli")[0];
    for line in block.commands() {
        let listening = shell.run_ok(line);
        assert_eq!(listening.trim(), "1", "{line}");
    }
    assert_eq!(broadcast.recv_text().await.unwrap(), "hello from redis-cli");
    assert_eq!(
        &alice.recv_bytes().await.unwrap()[..],
        [0xde, 0xad, 0xbe, 0xef]
    );
    let closed = broadcast.recv_close().await.unwrap().unwrap();
    assert_eq!(
        (closed.code, closed.reason.as_str()),
        (CloseCode::Application(4003), "banned")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_worker_commands_and_snippet_reach_the_gateways_clients() {
    let test = "the_python_worker_commands_and_snippet_reach_the_gateways_clients";
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let Some(python) = python_with(&["redis", "httpx"], test) else {
        return;
    };
    let gw = gateway(&redis);
    let mut lobby = subscriber(&gw, "public:lobby").await;
    let mut broadcast = gw.ws_client().connect("/ws/broadcast").await.unwrap();
    gw.wait_for_room("broadcast", 1).await;
    listening(&redis, "sb:v1:room:public:lobby").await;
    listening(&redis, "sb:v1:room:broadcast").await;

    let src = repo_root().join("clients/python/src");
    let shell = Shell::new()
        .replace("python3 ", &format!("{python} "))
        .replace("redis://127.0.0.1:6379", &redis.url())
        .env("SWITCHBOARD_BROKER_URL", &redis.url())
        .env("PYTHONPATH", &src.display().to_string());
    let blocks: Vec<_> = tagged("python-worker")
        .into_iter()
        .filter(|b| b.lang == "sh")
        .collect();
    assert_eq!(blocks.len(), 2, "python.md and scaling.md: {blocks:?}");
    for block in &blocks {
        for line in block.commands().into_iter().filter(|l| !is_setup(l)) {
            let printed = shell.run_ok(line);
            if line.contains("--event") {
                let event: Value = support::published::next_publication(&mut lobby).await;
                assert_eq!(
                    event["payload"]["event"], "build.finished",
                    "{line}: {event}"
                );
                assert_eq!(event["payload"]["data"]["build"], 42);
                assert!(event["offset"].is_u64(), "{event}");
                assert!(printed.contains("offset"), "{printed}");
            } else if line.contains("--text") {
                assert_eq!(broadcast.recv_text().await.unwrap(), "build finished");
            } else if line.contains("--binary-hex 00ff10") {
                assert_eq!(
                    &broadcast.recv_bytes().await.unwrap()[..],
                    [0x00, 0xff, 0x10]
                );
            } else {
                panic!(
                    "{}: a worker line this test does not know: {line}",
                    block.location()
                );
            }
        }
    }

    // scaling.md's Python: "the heart of it".
    let snippet = &tagged("python-worker")
        .into_iter()
        .find(|b| b.lang == "python")
        .expect("the Python snippet");
    let file = std::env::temp_dir().join(format!(
        "switchboard-docs-{}.py",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&file, shell.prepare(&snippet.text)).unwrap();
    shell.run_ok(&format!("{python} {}", file.display()));
    let _ = std::fs::remove_file(&file);
    let event: Value = support::published::next_publication(&mut lobby).await;
    assert_eq!(event["payload"]["event"], "build.finished", "{event}");
    assert!(event["offset"].is_u64(), "{event}");
}
