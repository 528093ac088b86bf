//! Redis-specific promises of the broker, with several instances on one
//! private `redis-server`: subscriptions follow local need, one PUBLISH per
//! message, exactly-once delivery under concurrent publishers, outside
//! publishers (raw Redis and the Python example), and counts.

mod support;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use support::{RedisFactory, raw, test_config};
use switchboard::Hub;
use switchboard::broker::stream::{HistoryConfig, HistoryRule};
use switchboard::broker::{Cluster, Payload, Target};
use switchboard::protocol::ChannelPattern;
use switchboard::testing::broker::{TestNode, eventually, expect_silence, next_text};
use switchboard_redis::RedisBroker;

async fn numsub(factory: &RedisFactory, channel: &str) -> i64 {
    let mut conn = raw(&factory.server).await;
    let (_, n): (String, i64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(channel)
        .query_async(&mut conn)
        .await
        .expect("PUBSUB NUMSUB");
    n
}

async fn channels(factory: &RedisFactory) -> HashSet<String> {
    let mut conn = raw(&factory.server).await;
    redis::cmd("PUBSUB")
        .arg("CHANNELS")
        .query_async::<Vec<String>>(&mut conn)
        .await
        .expect("PUBSUB CHANNELS")
        .into_iter()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_subscribes_only_to_what_its_connections_need() {
    let Some(f) = RedisFactory::start() else {
        return;
    };
    let a = TestNode::start(f.make()).await;
    let instance_channel = format!("sb:v1:instance:{}", a.cluster.instance());
    let expected: HashSet<String> = ["sb:v1:all".to_owned(), instance_channel.clone()].into();
    assert_eq!(
        channels(&f).await,
        expected,
        "only the fixed channels at first"
    );

    let mut m1 = a.connect(&["r"], Some("alice")).await;
    let mut m2 = a.connect(&["r"], None).await;
    assert_eq!(
        numsub(&f, "sb:v1:room:r").await,
        1,
        "one subscription per instance"
    );
    assert_eq!(numsub(&f, "sb:v1:user:alice").await, 1);

    m1.command("leave:r").await;
    a.cluster.sync().await.unwrap();
    assert_eq!(numsub(&f, "sb:v1:room:r").await, 1, "m2 is still a member");
    m2.command("leave:r").await;
    a.cluster.sync().await.unwrap();
    assert_eq!(numsub(&f, "sb:v1:room:r").await, 0, "no local member left");

    m1.socket
        .close(switchboard::CloseCode::Normal, "bye")
        .await
        .unwrap();
    a.cluster.sync().await.unwrap();
    assert_eq!(
        numsub(&f, "sb:v1:user:alice").await,
        0,
        "alice's last connection left"
    );
    assert_eq!(channels(&f).await, expected);
    drop(m2);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identify_through_the_cluster_subscribes_the_user() {
    let Some(f) = RedisFactory::start() else {
        return;
    };
    let a = TestNode::start(f.make()).await;
    let b = TestNode::start(f.make()).await;
    let mut m = b.connect(&[], None).await;
    assert!(b.cluster.identify(m.id, "late"));
    b.cluster.sync().await.unwrap();
    assert_eq!(numsub(&f, "sb:v1:user:late").await, 1);
    a.cluster
        .publish(Target::user("late"), "hi late")
        .await
        .unwrap();
    assert_eq!(next_text(&mut m.socket).await, "hi late");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_redis_publish_per_message_whatever_the_recipients() {
    let Some(f) = RedisFactory::start() else {
        return;
    };
    let (broker_a, broker_b) = (f.make(), f.make());
    let a = TestNode::start(broker_a.clone()).await;
    let b = TestNode::start(broker_b.clone()).await;
    let c = TestNode::start(f.make()).await;
    let mut members = Vec::new();
    for node in [&a, &b, &c] {
        for _ in 0..10 {
            members.push(node.connect(&["big"], None).await);
        }
    }
    let mut conn = raw(&f.server).await;
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut conn)
        .await
        .unwrap();

    let published = a
        .cluster
        .publish(Target::room("big"), "fan-out")
        .await
        .unwrap();
    assert_eq!(published.local, 10);
    for m in &mut members {
        assert_eq!(next_text(&mut m.socket).await, "fan-out");
    }
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .unwrap();
    let publishes = info
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_publish:calls="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse::<u64>().ok());
    assert_eq!(publishes, Some(1), "{info}");
    assert_eq!(broker_a.stats().published, 1);
    // The publisher receives its own message back from Redis and ignores it.
    eventually(
        Duration::from_secs(2),
        "a skipped its own message",
        || async { Ok(broker_a.stats().own_skipped == 1 && broker_b.stats().delivered == 10) },
    )
    .await;
    for m in &mut members {
        expect_silence(&mut m.socket, "member").await;
    }
    for node in [a, b, c] {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishers_on_every_instance_deliver_each_message_once() {
    let Some(f) = RedisFactory::start() else {
        return;
    };
    let nodes = [
        TestNode::start(f.make()).await,
        TestNode::start(f.make()).await,
        TestNode::start(f.make()).await,
    ];
    let mut members = Vec::new();
    for node in &nodes {
        members.push(node.connect(&["r"], None).await);
        members.push(node.connect(&["r"], None).await);
    }
    const PER_NODE: usize = 100;
    let mut tasks = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let cluster = node.cluster.clone();
        tasks.push(tokio::spawn(async move {
            for k in 0..PER_NODE {
                cluster
                    .publish(Target::room("r"), format!("{i}-{k}"))
                    .await
                    .expect("publish");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let expected: HashSet<String> = (0..nodes.len())
        .flat_map(|i| (0..PER_NODE).map(move |k| format!("{i}-{k}")))
        .collect();
    for (n, m) in members.iter_mut().enumerate() {
        let mut seen = HashSet::new();
        let mut last = [None::<usize>; 3];
        for _ in 0..expected.len() {
            let text = next_text(&mut m.socket).await;
            let (i, k) = text.split_once('-').unwrap();
            let (i, k): (usize, usize) = (i.parse().unwrap(), k.parse().unwrap());
            assert!(
                last[i].is_none_or(|l| l < k),
                "member {n}: {text} out of order"
            );
            last[i] = Some(k);
            assert!(seen.insert(text.clone()), "member {n}: {text} twice");
        }
        assert_eq!(seen, expected, "member {n}");
        expect_silence(&mut m.socket, "member").await;
    }
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_writing_to_redis_directly_reaches_members_and_bad_messages_are_dropped() {
    let Some(f) = RedisFactory::start() else {
        return;
    };
    let broker = f.make();
    let a = TestNode::start(broker.clone()).await;
    let mut m = a.connect(&["lobby"], Some("bob")).await;
    let mut conn = raw(&f.server).await;
    let publish = |channel: &'static str, payload: &'static str| {
        let mut conn = conn.clone();
        async move {
            redis::cmd("PUBLISH")
                .arg(channel)
                .arg(payload)
                .query_async::<i64>(&mut conn)
                .await
                .unwrap()
        }
    };
    assert_eq!(publish("sb:v1:room:lobby", "not json").await, 1);
    assert_eq!(
        publish("sb:v1:room:lobby", r#"{"v":9,"kind":"text"}"#).await,
        1
    );
    assert_eq!(
        publish(
            "sb:v1:room:lobby",
            r#"{"v":1,"kind":"text","data":"from a worker"}"#
        )
        .await,
        1
    );
    assert_eq!(next_text(&mut m.socket).await, "from a worker");
    publish(
        "sb:v1:user:bob",
        r#"{"v":1,"kind":"binary","data":"3q2+7w=="}"#,
    )
    .await;
    let bytes = m.socket.recv_bytes().await.unwrap();
    assert_eq!(&bytes[..], &[0xde, 0xad, 0xbe, 0xef]);
    let close = format!(
        r#"{{"v":1,"kind":"close","code":4003,"reason":"bye","conn":{}}}"#,
        m.id
    );
    let channel = format!("sb:v1:instance:{}", a.cluster.instance());
    let _: i64 = redis::cmd("PUBLISH")
        .arg(channel)
        .arg(close)
        .query_async(&mut conn)
        .await
        .unwrap();
    let frame = m.socket.recv_close().await.unwrap().unwrap();
    assert_eq!((frame.code.as_u16(), frame.reason.as_str()), (4003, "bye"));
    assert_eq!(broker.stats().malformed, 2);
    a.stop().await;
}

fn python_example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/python/publish_to_room.py")
}

/// The Python that runs the example: `$SWITCHBOARD_PYTHON` (the Python
/// package's step of .ci/run points it at its virtual environment), else
/// `python3`. The example uses `switchboard_rt` (clients/python), installed
/// or found beside it in the checkout, which needs `redis` and `httpx`.
fn python() -> String {
    std::env::var("SWITCHBOARD_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".to_owned())
}

/// Whether the Python can run the example; says so loudly when not (and
/// fails when SWITCHBOARD_REQUIRE_PYTHON_REDIS=1).
fn python_with_redis() -> bool {
    let ok = std::process::Command::new(python())
        .args(["-c", "import redis, httpx"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        if std::env::var("SWITCHBOARD_REQUIRE_PYTHON_REDIS").is_ok_and(|v| v == "1") {
            panic!(
                "{} with the `redis` and `httpx` packages is required \
                 (SWITCHBOARD_REQUIRE_PYTHON_REDIS=1): pip install redis httpx, or set \
                 SWITCHBOARD_PYTHON",
                python()
            );
        }
        switchboard_testredis::loud(&format!(
            "\n!!!!!!!! SKIPPED: {} without the `redis` and `httpx` packages, so the Python \
             worker example was not tested here. `pip install redis httpx` (or set \
             SWITCHBOARD_PYTHON) to run it; .ci/run's Python step runs it with \
             SWITCHBOARD_PYTHON. !!!!!!!!\n",
            python()
        ));
    }
    ok
}

async fn run_example(args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(python())
        .arg(python_example())
        .args(args)
        .output()
        .await
        .expect("run the Python example")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_worker_example_publishes_to_a_room() {
    let Some(f) = RedisFactory::start() else {
        return;
    };
    if !python_with_redis() {
        return;
    }
    let url = f.server.url();
    // The gateway's default [history]: public:* and user:*, as the
    // example's defaults.
    let history = || {
        HistoryConfig::new()
            .rule(HistoryRule::new(ChannelPattern::new("public:*").unwrap()))
            .rule(HistoryRule::new(ChannelPattern::new("user:*").unwrap()))
    };
    let a = TestNode::start_with_history(f.make(), history()).await;
    let b = TestNode::start_with_history(f.make(), history()).await;
    let mut on_a = a.connect(&["builds"], None).await;
    let mut on_b = b.connect(&["builds"], None).await;
    let output = run_example(&[
        "--url",
        &url,
        "--room",
        "builds",
        "--text",
        "build 42 finished ✓",
    ])
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("2 instance(s) listening"), "{stdout}");
    assert_eq!(next_text(&mut on_a.socket).await, "build 42 finished ✓");
    assert_eq!(next_text(&mut on_b.socket).await, "build 42 finished ✓");

    let output = run_example(&["--url", &url, "--room", "builds", "--binary-hex", "00ff10"]).await;
    assert!(output.status.success());
    assert_eq!(
        &on_a.socket.recv_bytes().await.unwrap()[..],
        &[0x00, 0xff, 0x10]
    );

    // A room with history: the append script, so the subscriber gets the
    // EVENT with its offset.
    let (mut lobby, joined) = b.subscribe("public:lobby", &[]).await;
    assert!(joined.starts_with("joined "), "{joined}");
    b.cluster.sync().await.expect("sync");
    let output = run_example(&[
        "--url",
        &url,
        "--event",
        "build.finished",
        "--data",
        r#"{"build":42}"#,
    ])
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("1 instance(s) listening"), "{stdout}");
    assert!(stdout.contains("offset 1, epoch "), "{stdout}");
    let event: serde_json::Value = serde_json::from_str(&next_text(&mut lobby).await).unwrap();
    assert_eq!(event["offset"], 1, "{event}");
    assert_eq!(event["type"], "EVENT", "{event}");
    assert_eq!(event["payload"]["event"], "build.finished", "{event}");
    assert_eq!(event["payload"]["data"]["build"], 42, "{event}");
    assert_eq!(event["payload"]["channel"], "public:lobby", "{event}");

    // Nobody listening: kept in a room with history (exit 0); lost in a room
    // without (exit 3, unless --allow-nobody).
    let output = run_example(&["--url", &url, "--room", "public:empty", "--event", "x"]).await;
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("0 instance(s) listening"));
    let output = run_example(&["--url", &url, "--room", "nobody", "--text", "lost"]).await;
    assert_eq!(output.status.code(), Some(3));
    let output = run_example(&[
        "--url",
        &url,
        "--room",
        "nobody",
        "--text",
        "lost",
        "--allow-nobody",
    ])
    .await;
    assert!(output.status.success());

    // Redis unreachable: the worker fails loudly.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| format!("redis://{a}"))
        .unwrap();
    let output = run_example(&["--url", &closed, "--room", "builds", "--text", "lost"]).await;
    assert_eq!(
        output.status.code(),
        Some(1),
        "a failed publish must exit 1: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_drop_at_once_on_shutdown_and_after_the_ttl_for_a_silent_instance() {
    let Some(f) = RedisFactory::start() else {
        return;
    };
    let a = TestNode::start(f.make()).await;
    let b = TestNode::start(f.make()).await;
    let _m1 = a.connect(&["r"], None).await;
    let _m2 = b.connect(&["r"], None).await;
    let _m3 = b.connect(&[], None).await;
    eventually(Duration::from_secs(3), "3 connections", || async {
        Ok(a.cluster.connection_count().await? == 3 && a.cluster.room_size("r").await? == 2)
    })
    .await;

    // A silent instance (crashed without shutting down): its hash is
    // counted until it expires.
    let mut conn = raw(&f.server).await;
    let _: () = redis::pipe()
        .cmd("HSET")
        .arg("sb:v1:counts:ghost")
        .arg("conns")
        .arg(5)
        .arg("room:r")
        .arg(5)
        .ignore()
        .cmd("PEXPIRE")
        .arg("sb:v1:counts:ghost")
        .arg(600)
        .ignore()
        .cmd("SADD")
        .arg("sb:v1:instances")
        .arg("ghost")
        .ignore()
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(a.cluster.connection_count().await.unwrap(), 8);
    assert_eq!(a.cluster.room_size("r").await.unwrap(), 7);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(a.cluster.connection_count().await.unwrap(), 3);
    let members: Vec<String> = redis::cmd("SMEMBERS")
        .arg("sb:v1:instances")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!members.contains(&"ghost".to_owned()), "{members:?}");

    let started = Instant::now();
    b.stop().await;
    assert_eq!(a.cluster.connection_count().await.unwrap(), 1);
    assert_eq!(a.cluster.room_size("r").await.unwrap(), 1);
    assert!(started.elapsed() < Duration::from_secs(2));
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settings_are_refused_when_building_the_broker() {
    let url = "redis://127.0.0.1:1";
    assert!(RedisBroker::new(test_config(url, "a:b")).is_err());
    assert!(RedisBroker::new(test_config("not a url", "sb")).is_err());
    let config = test_config(url, "sb").heartbeat(Duration::from_secs(1), Duration::from_secs(1));
    assert!(RedisBroker::new(config).is_err());
    // A broker that cannot reach Redis fails `start` within its start timeout.
    let config = test_config(url, "sb").start_timeout(Duration::from_millis(300));
    let cluster = Cluster::new(Hub::new(), RedisBroker::new(config).unwrap());
    let started = Instant::now();
    let err = cluster.start().await.expect_err("no Redis on port 1");
    assert!(started.elapsed() < Duration::from_secs(2));
    // The error says why, not just that it timed out.
    assert!(err.to_string().contains("last failure"), "{err}");
    let err = cluster
        .publish(Target::All, Payload::text("nobody"))
        .await
        .expect_err("no Redis");
    assert!(err.source.is_transient(), "{err}");
    cluster.shutdown().await;
}
