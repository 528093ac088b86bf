//! Gateways joined through a private `redis-server`: publishes and
//! broadcasts reach the other instance, counts are cluster-wide, and while
//! Redis is down `/readyz` and publishes answer 503 (then recover).

mod support;

use std::time::{Duration, Instant};

use support::{Gateway, Options};
use switchboard_testredis::RedisServer;

fn gateway(redis: &RedisServer, instance: &str) -> Gateway {
    Gateway::start_with(&Options {
        args: vec![
            "--broker".into(),
            "redis".into(),
            "--instance-id".into(),
            instance.into(),
        ],
        env: vec![("SWITCHBOARD_BROKER_URL", redis.url())],
        ..Options::default()
    })
}

/// Publishes (a fresh text each time) until `ws` receives one: the other
/// instance subscribes to a room shortly after its client joins.
async fn publish_until_received(
    from: &Gateway,
    ws: &mut switchboard::TestSocket,
    room: &str,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    for i in 0.. {
        let text = format!("through redis #{i}");
        let body = format!(r#"{{"target": {{"room": "{room}"}}, "text": "{text}"}}"#);
        let response = from.post("/api/v1/publish", &body).await;
        assert_eq!(response.status, 200, "{}", response.body);
        assert_eq!(response.json()["forwarded"], true);
        if let Ok(Ok(got)) = tokio::time::timeout(Duration::from_millis(200), ws.recv_text()).await
        {
            return got.to_string();
        }
        assert!(Instant::now() < deadline, "nothing arrived through Redis");
    }
    unreachable!()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_share_rooms_and_counts_through_redis() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = gateway(&redis, "gw-a");
    let b = gateway(&redis, "gw-b");
    a.wait_for_status("/readyz", 200).await;
    let ready = b.wait_for_status("/readyz", 200).await.json();
    assert_eq!(ready["broker"]["type"], "redis");

    let mut on_b = b.ws_client().connect("/ws/broadcast").await.unwrap();
    b.wait_for_room("broadcast", 1).await;
    let got = publish_until_received(&a, &mut on_b, "broadcast").await;
    assert!(got.starts_with("through redis"), "{got}");

    // A client on A broadcasting reaches the client on B.
    let mut on_a = a.ws_client().connect("/ws/broadcast").await.unwrap();
    a.wait_for_room("broadcast", 1).await;
    on_a.send_text("from a client on a").await.unwrap();
    assert_eq!(on_a.recv_text().await.unwrap(), "from a client on a");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = on_b.recv_text().await.unwrap();
        if text == "from a client on a" {
            break;
        }
        assert!(Instant::now() < deadline);
    }

    // Counts cover both instances (each reports every heartbeat).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let count = a.get("/api/v1/connections/count").await.json();
        if count["cluster"] == 2 && count["local"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "cluster count never 2: {count}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let room = a.get("/api/v1/rooms/broadcast").await.json();
    assert_eq!(room["local"], 1);

    // Disconnecting a user or a connection by address works across instances.
    let list = b.get("/api/v1/connections").await.json();
    let address = list["connections"][0]["address"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(address.starts_with("gw-b/"), "{address}");
    let closed = a
        .post(
            "/api/v1/disconnect",
            &format!(r#"{{"target": {{"connection": "{address}"}}, "code": 4000}}"#),
        )
        .await;
    assert_eq!(closed.json()["forwarded"], true);
    let frame = on_b.recv_close().await.unwrap().unwrap();
    assert_eq!(u16::from(frame.code), 4000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_down_readyz_and_publishes_answer_503() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let gw = gateway(&redis, "gw-down");
    gw.wait_for_status("/readyz", 200).await;
    let mut ws = gw.ws_client().connect("/ws/broadcast").await.unwrap();
    gw.wait_for_room("broadcast", 1).await;

    redis.kill();
    let ready = gw.wait_for_status("/readyz", 503).await.json();
    assert_eq!(ready["broker"]["connected"], false);
    assert_eq!(gw.get("/healthz").await.status, 200);

    let body = r#"{"target": {"room": "broadcast"}, "text": "while down"}"#;
    let response = gw.post("/api/v1/publish", body).await;
    assert_eq!(response.status, 503, "{}", response.body);
    let error = response.json();
    assert_eq!(error["error"]["code"], "broker_unavailable");
    // Local delivery still happened, and the answer says so.
    assert_eq!(error["local"], 1);
    assert_eq!(error["forwarded"], false);
    assert_eq!(ws.recv_text().await.unwrap(), "while down");
    assert_eq!(response.header("retry-after"), Some("1"));
    assert_eq!(gw.get("/api/v1/connections/count").await.status, 503);

    let metrics = gw.get("/metrics").await.body;
    assert!(
        metrics.contains("switchboard_broker_up{broker=\"redis\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains(r#"switchboard_api_publishes_total{target="room",result="broker_error"} 1"#),
        "{metrics}"
    );

    // Redis comes back: so do readiness and publishing.
    redis.restart();
    gw.wait_for_status("/readyz", 200).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if gw.post("/api/v1/publish", body).await.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "publishing never recovered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
