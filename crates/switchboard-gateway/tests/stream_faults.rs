//! The contract, tried as a user would: two gateways over one Redis, a
//! publisher that retries every failed `POST /api/v1/publish` with the
//! same idempotency key on gateway A, three `/ws` subscribers on gateway B,
//! and Redis killed and restarted (with durable persistence, then without)
//! or frozen five times in one test. Every publish answered 2xx reaches
//! every subscriber once, in order, at the offset it was given, or lies in
//! a gap the subscriber was told of (only when Redis lost its data). Then
//! an instance killed with SIGKILL: its client moves to the other gateway
//! and recovers everything.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{Value, json};
use support::{Gateway, Options};
use switchboard::TestSocket;
use switchboard_testredis::RedisServer;
use switchboard_testredis::checker::{Acked, Seen, check};

const CHANNEL: &str = "public:faults";

fn gateway(redis: &RedisServer, instance: &str, durable: bool) -> Gateway {
    let dir = std::env::temp_dir().join(format!("sb-faults-{}-{instance}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "[broker]\ntype = \"redis\"\ninstance_id = \"{instance}\"\ncommand_timeout = \"500ms\"\n\
             connect_timeout = \"500ms\"\ndurable = {durable}\n\
             [history]\nrecovery_limit = 10000\n[[history.channels]]\npattern = \"public:*\"\nsize = 100000\n"
        ),
    )
    .unwrap();
    Gateway::start_with(&Options {
        args: vec!["--config".into(), config.display().to_string()],
        env: vec![("SWITCHBOARD_BROKER_URL", redis.url())],
        ..Options::default()
    })
}

async fn next(ws: &mut TestSocket) -> Value {
    loop {
        let message: Value = ws.recv_json().await.expect("a message");
        // Presence events (`[presence]`, on public:* by default) are not
        // publications.
        let presence = matches!(
            message["payload"]["event"].as_str(),
            Some("switchboard.join" | "switchboard.leave")
        );
        if message["type"] != "PING" && !presence {
            return message;
        }
    }
}

/// A `/ws` client subscribed to CHANNEL (with `recover`, when given):
/// the socket and the SUBSCRIBE_SUCCESS payload.
async fn subscriber(gw: &Gateway, recover: Option<(String, u64)>) -> (TestSocket, Value) {
    let mut ws = gw
        .ws_client()
        .request("/ws")
        .protocol("switchboard.v1")
        .connect()
        .await
        .expect("connects");
    assert_eq!(next(&mut ws).await["type"], "CONNECT_ACK");
    let entry = match recover {
        Some((epoch, offset)) => {
            json!({"channel": CHANNEL, "recover": {"epoch": epoch, "offset": offset}})
        }
        None => json!(CHANNEL),
    };
    ws.send_json(&json!({"type": "SUBSCRIBE", "id": "s", "payload": {"subscriptions": [entry]}}))
        .await
        .unwrap();
    let success = next(&mut ws).await;
    assert_eq!(success["type"], "SUBSCRIBE_SUCCESS", "{success}");
    (ws, success["payload"].clone())
}

/// Turns a message into what the checker reads.
fn seen(message: &Value) -> Option<Seen> {
    if message["type"] != "EVENT" {
        return None;
    }
    let payload = &message["payload"];
    if payload["event"] == "switchboard.gap" {
        let d = &payload["data"];
        return Some(Seen::Gap {
            epoch: d["epoch"].as_str()?.to_owned(),
            from: d["from"].as_u64()?,
            to: d["to"].as_u64(),
            resume: (
                d["resume"]["epoch"].as_str()?.to_owned(),
                d["resume"]["offset"].as_u64()?,
            ),
        });
    }
    Some(Seen::Publication {
        offset: message["offset"].as_u64()?,
        n: payload["data"].as_u64()?,
    })
}

fn record(mut ws: TestSocket, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Vec<Seen>> {
    tokio::spawn(async move {
        let mut out = Vec::new();
        loop {
            match tokio::time::timeout(Duration::from_millis(300), ws.recv_json::<Value>()).await {
                Ok(Ok(message)) => out.extend(seen(&message)),
                Ok(Err(e)) => panic!("a subscriber lost its connection: {e:?}"),
                Err(_) if stop.load(Ordering::Acquire) => return out,
                Err(_) => {}
            }
        }
    })
}

/// Publishes 1, 2, 3, ... through `gw`'s HTTP API, each with its own
/// idempotency key, retrying whatever is not a 2xx until it is.
fn publisher(
    gw: Arc<Gateway>,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<Acked>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut n = 0u64;
        while !stop.load(Ordering::Acquire) {
            n += 1;
            let body = json!({
                "target": {"room": CHANNEL},
                "message": {"type": "EVENT", "event": "n", "data": n},
                "idempotency_key": format!("k{n}"),
            })
            .to_string();
            loop {
                let response = gw.post("/api/v1/publish", &body).await;
                if response.status == 200 {
                    let answer = response.json();
                    let epoch = answer["epoch"].as_str().expect("an epoch").to_owned();
                    acked
                        .lock()
                        .push((n, epoch, answer["offset"].as_u64().unwrap()));
                    break;
                }
                assert_eq!(response.status, 503, "{}", response.body);
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
    })
}

async fn run(
    mut redis: RedisServer,
    durable: bool,
    gaps_allowed: bool,
    fault: fn(&mut RedisServer),
) {
    let a = Arc::new(gateway(&redis, "gw-a", durable));
    let b = gateway(&redis, "gw-b", durable);
    a.wait_for_status("/readyz", 200).await;
    b.wait_for_status("/readyz", 200).await;
    let stop_reading = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..3 {
        let (ws, success) = subscriber(&b, None).await;
        let joined = (
            success["epoch"].as_str().unwrap().to_owned(),
            success["offset"].as_u64().unwrap(),
        );
        readers.push((joined, record(ws, Arc::clone(&stop_reading))));
    }
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop_publishing = Arc::new(AtomicBool::new(false));
    let publishing = publisher(
        Arc::clone(&a),
        Arc::clone(&stop_publishing),
        Arc::clone(&acked),
    );
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        fault(&mut redis);
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_publishing.store(true, Ordering::Release);
    tokio::time::timeout(Duration::from_secs(30), publishing)
        .await
        .expect("the last publish succeeds once Redis is back")
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop_reading.store(true, Ordering::Release);
    let acked = acked.lock().clone();
    assert!(
        acked.len() > 40,
        "the publisher made progress: {}",
        acked.len()
    );
    for (i, (joined, reader)) in readers.into_iter().enumerate() {
        let seen = reader.await.unwrap();
        let tally = check(
            &format!("subscriber {i}"),
            joined,
            &seen,
            &acked,
            gaps_allowed,
        );
        eprintln!("subscriber {i}: {tally:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_five_times_with_durable_persistence_loses_no_acknowledged_publish() {
    let Some(redis) = RedisServer::builder().appendonly(true).start() else {
        return;
    };
    run(redis, true, false, RedisServer::restart).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_five_times_empty_announces_every_loss() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    run(redis, false, true, RedisServer::restart).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_frozen_five_times_loses_nothing() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    run(redis, false, false, |redis| {
        redis.pause();
        std::thread::sleep(Duration::from_millis(1500));
        redis.resume();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_of_a_killed_instance_recovers_everything_on_another() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let mut a = gateway(&redis, "gw-a", false);
    let b = gateway(&redis, "gw-b", false);
    a.wait_for_status("/readyz", 200).await;
    b.wait_for_status("/readyz", 200).await;
    let (mut ws, success) = subscriber(&a, None).await;
    let epoch = success["epoch"].as_str().unwrap().to_owned();
    publish(&b, 1).await;
    let got = next(&mut ws).await;
    assert_eq!(
        (got["offset"].as_u64(), got["payload"]["data"].as_u64()),
        (Some(1), Some(1))
    );

    a.signal("KILL");
    let _ = a.wait_exit(Duration::from_secs(5));
    for n in 2..=40 {
        publish(&b, n).await;
    }
    // The client moves to B with the position it had.
    let (mut ws, success) = subscriber(&b, Some((epoch, 1))).await;
    assert_eq!(success["recovered"], true, "{success}");
    for n in 2..=40 {
        let got = next(&mut ws).await;
        assert_eq!(got["offset"], n, "{got}");
        assert_eq!(got["payload"]["data"], n);
    }
    publish(&b, 41).await;
    assert_eq!(next(&mut ws).await["offset"], 41);
}

async fn publish(gw: &Gateway, n: u64) {
    let body =
        json!({"target": {"room": CHANNEL}, "message": {"type": "EVENT", "event": "n", "data": n}});
    let response = gw.post("/api/v1/publish", &body.to_string()).await;
    assert_eq!(response.status, 200, "{}", response.body);
}
