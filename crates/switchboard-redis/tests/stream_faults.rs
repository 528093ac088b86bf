//! Channels with history under Redis faults, checked like Jepsen: a
//! publisher on instance A retries every failed publish with the same
//! idempotency key; three subscribers on instance B record every
//! publication and every gap event; Redis is killed and restarted (with
//! and without persistence), frozen and thawed, or has its subscriber
//! connections killed, several times in one test. Then, per subscriber:
//! - offsets go up by exactly one, except across an announced gap;
//! - no publication arrives twice;
//! - every publish that succeeded arrived, at the position it was given,
//!   unless an announced gap covers that position (allowed only when Redis
//!   lost its data: a restart without persistence).

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::Value;
use support::{RedisServer, test_config};
use switchboard::broker::stream::{HistoryConfig, HistoryRule, IdempotencyKey, StreamPosition};
use switchboard::broker::{Payload, PublishOptions, Target};
use switchboard::protocol::ChannelPattern;
use switchboard::testing::TestSocket;
use switchboard::testing::broker::TestNode;
use switchboard_redis::RedisBroker;
use switchboard_testredis::checker::{Acked, Seen, check};

const CHANNEL: &str = "s:faults";

fn history() -> HistoryConfig {
    HistoryConfig::new()
        .rule(HistoryRule::new(ChannelPattern::new("s:*").unwrap()).with_size(100_000))
        .with_recovery_limit(100_000)
        .with_repair_after(Duration::from_millis(50))
}

/// Reads a subscriber's socket until told to stop (and it has been quiet).
fn record(mut socket: TestSocket, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Vec<Seen>> {
    tokio::spawn(async move {
        let mut seen = Vec::new();
        loop {
            let next = tokio::time::timeout(Duration::from_millis(300), socket.recv_text()).await;
            let text = match next {
                Ok(Ok(text)) => text,
                Ok(Err(e)) => panic!("subscriber lost its connection: {e:?}"),
                Err(_) if stop.load(Ordering::Acquire) => return seen,
                Err(_) => continue,
            };
            let v: Value = serde_json::from_str(&text).expect("JSON");
            if v["type"] == "EVENT" && v["payload"]["event"] == "switchboard.gap" {
                let d = &v["payload"]["data"];
                seen.push(Seen::Gap {
                    epoch: d["epoch"].as_str().unwrap().to_owned(),
                    from: d["from"].as_u64().unwrap(),
                    to: d["to"].as_u64(),
                    resume: (
                        d["resume"]["epoch"].as_str().unwrap().to_owned(),
                        d["resume"]["offset"].as_u64().unwrap(),
                    ),
                });
            } else {
                seen.push(Seen::Publication {
                    offset: v["offset"].as_u64().expect("an offset"),
                    n: v["n"].as_u64().expect("n"),
                });
            }
        }
    })
}

/// The publisher: publishes 1, 2, 3, ... with a key each, retrying a
/// failed one until it succeeds; records each success's position.
fn publish_until(
    a: Arc<TestNode>,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<(u64, StreamPosition)>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut n = 0u64;
        while !stop.load(Ordering::Acquire) {
            n += 1;
            let key = IdempotencyKey::new(&format!("k{n}")).unwrap();
            let options = PublishOptions::new().idempotency_key(key);
            let payload = Payload::text(format!(r#"{{"n":{n}}}"#));
            loop {
                match a
                    .cluster
                    .publish_with(Target::room(CHANNEL), payload.clone(), options.clone())
                    .await
                {
                    Ok(published) => {
                        let position = published.position.expect("a stream position");
                        acked.lock().push((n, position));
                        break;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(30)).await,
                }
            }
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
    })
}

/// Runs the publisher and three subscribers through `cycles` faults.
async fn run(
    mut server: RedisServer,
    durable: bool,
    gaps_allowed: bool,
    cycles: usize,
    mut fault: impl FnMut(&mut RedisServer, usize),
) {
    let broker =
        || RedisBroker::new(test_config(&server.url(), "sb").durable(durable)).expect("a broker");
    let a = Arc::new(TestNode::start_with_history(broker(), history()).await);
    let b = TestNode::start_with_history(broker(), history()).await;
    let stop_readers = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..3 {
        let (socket, line) = b.subscribe(CHANNEL, &[]).await;
        let parts: Vec<&str> = line.split(' ').collect();
        let joined = (parts[1].to_owned(), parts[2].parse::<u64>().unwrap());
        readers.push((joined, record(socket, Arc::clone(&stop_readers))));
    }
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop_publisher = Arc::new(AtomicBool::new(false));
    let publisher = publish_until(
        Arc::clone(&a),
        Arc::clone(&stop_publisher),
        Arc::clone(&acked),
    );

    for cycle in 0..cycles {
        tokio::time::sleep(Duration::from_millis(400)).await;
        fault(&mut server, cycle);
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_publisher.store(true, Ordering::Release);
    tokio::time::timeout(Duration::from_secs(20), publisher)
        .await
        .expect("the publisher's last publish succeeds once Redis is back")
        .unwrap();
    // Give B time to catch up with everything, then stop reading.
    let deadline = Instant::now() + Duration::from_secs(10);
    let last = acked.lock().last().map(|(n, _)| *n).unwrap_or(0);
    assert!(
        last > 50,
        "the publisher made progress ({last} acknowledged)"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop_readers.store(true, Ordering::Release);
    let acked: Vec<Acked> = acked
        .lock()
        .iter()
        .map(|(n, p)| (*n, p.epoch.to_string(), p.offset))
        .collect();
    for (i, (joined, reader)) in readers.into_iter().enumerate() {
        let seen = tokio::time::timeout_at(deadline.into(), reader)
            .await
            .expect("the reader stops")
            .unwrap();
        let tally = check(
            &format!("subscriber {i}"),
            joined,
            &seen,
            &acked,
            gaps_allowed,
        );
        eprintln!("subscriber {i}: {tally:?}");
    }
    let epochs: BTreeMap<&str, usize> = acked.iter().fold(BTreeMap::new(), |mut m, (_, e, _)| {
        *m.entry(e.as_str()).or_default() += 1;
        m
    });
    eprintln!("epochs (publications each): {epochs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_with_persistence_loses_nothing() {
    let Some(server) = RedisServer::builder().appendonly(true).start() else {
        return;
    };
    run(server, true, false, 5, |server, _| server.restart()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_empty_announces_what_it_lost_and_nothing_else() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    run(server, false, true, 5, |server, _| server.restart()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_frozen_and_thawed_loses_nothing() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    run(server, false, false, 5, |server, _| {
        server.pause();
        std::thread::sleep(Duration::from_millis(1200));
        server.resume();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriber_connections_killed_lose_nothing() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    run(server, false, false, 5, |server, _| {
        let mut conn = server.client().get_connection().expect("a connection");
        let _: redis::RedisResult<i64> = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("pubsub")
            .query(&mut conn);
    })
    .await;
}
