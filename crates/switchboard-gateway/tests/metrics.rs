//! `/metrics` counts what happens: connections, handshakes and refusals by
//! reason, messages, closes by code, HTTP calls, publishes, slow consumers.

mod support;

use std::time::{Duration, Instant};

use support::{Gateway, Options};
use switchboard::{CloseCode, TestError};

/// The value of one sample line (`name{labels}`), or 0 when absent.
fn sample(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().unwrap())
        })
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_connections_refusals_messages_and_api_calls() {
    let gw = Gateway::start(&[]);
    let client = gw.ws_client();

    let mut ws = client.connect("/ws/echo").await.unwrap();
    ws.send_text("one").await.unwrap();
    assert_eq!(ws.recv_text().await.unwrap(), "one");
    // Refusals: a foreign origin, plain HTTP to a WebSocket route.
    match client
        .request("/ws/echo")
        .origin("https://evil.example")
        .connect()
        .await
    {
        Err(TestError::Rejected { status, .. }) => assert_eq!(status, 403),
        other => panic!("expected 403, got {other:?}"),
    }
    assert_eq!(gw.get("/ws/echo").await.status, 426);
    let published = gw
        .post(
            "/api/v1/publish",
            r#"{"target": {"room": "r"}, "text": "x"}"#,
        )
        .await;
    assert_eq!(published.status, 200);
    let reply = ws.close(CloseCode::Normal, "bye").await.unwrap();
    assert_eq!(reply.unwrap().code, CloseCode::Normal);

    // The close is counted once the server has finished it.
    let deadline = Instant::now() + Duration::from_secs(5);
    let page = loop {
        let page = gw.get("/metrics").await.body;
        if sample(
            &page,
            r#"switchboard_connections_closed_total{code="1000"}"#,
        ) >= 1.0
            || Instant::now() > deadline
        {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let expect = [
        ("switchboard_connections", 0.0),
        (r#"switchboard_handshakes_total{outcome="accepted"}"#, 1.0),
        (r#"switchboard_handshakes_total{outcome="rejected"}"#, 2.0),
        (
            r#"switchboard_handshake_rejections_total{reason="origin"}"#,
            1.0,
        ),
        (
            r#"switchboard_handshake_rejections_total{reason="upgrade_required"}"#,
            1.0,
        ),
        (r#"switchboard_connections_closed_total{code="1000"}"#, 1.0),
        ("switchboard_messages_received_total", 1.0),
        ("switchboard_bytes_received_total", 3.0),
        (
            r#"switchboard_http_requests_total{route="/api/v1/publish",status="200"}"#,
            1.0,
        ),
        (
            r#"switchboard_api_publishes_total{target="room",result="ok"}"#,
            1.0,
        ),
        (r#"switchboard_broker_up{broker="memory"}"#, 1.0),
        ("switchboard_broker_call_duration_seconds_count", 1.0),
        ("switchboard_listening", 1.0),
    ];
    for (series, value) in expect {
        assert_eq!(sample(&page, series), value, "{series}\n{page}");
    }
    assert!(
        sample(&page, "switchboard_frames_sent_total") >= 2.0,
        "{page}"
    );
    assert!(page.contains("# TYPE switchboard_connections gauge"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_is_evicted_with_4002_and_counted() {
    let file = std::env::temp_dir().join(format!(
        "switchboard-slow-{}-{}.toml",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(
        &file,
        "[limits]\nmax_queue_bytes = \"64KiB\"\n[compression]\nenabled = false\n",
    )
    .unwrap();
    let gw = Gateway::start_with(&Options {
        args: vec!["--config".into(), file.display().to_string()],
        ..Options::default()
    });
    // Connected, and never reading.
    let mut slow = gw.ws_client().connect("/ws/broadcast").await.unwrap();
    gw.wait_for_room("broadcast", 1).await;
    let text = "y".repeat(60_000);
    let body = format!(r#"{{"target": {{"room": "broadcast"}}, "text": "{text}"}}"#);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let page = gw.get("/metrics").await.body;
        if sample(&page, "switchboard_slow_consumer_evictions_total") >= 1.0 {
            assert!(
                sample(
                    &page,
                    r#"switchboard_connections_closed_total{code="4002"}"#
                ) >= 1.0
                    || sample(&page, "switchboard_connections") == 1.0,
                "{page}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "never evicted:\n{page}");
        // Loopback socket buffers take a few MB before the queue fills.
        for _ in 0..20 {
            gw.post("/api/v1/publish", &body).await;
        }
    }
    // The client, reading at last, finds the close after what was sent.
    let frame = tokio::time::timeout(Duration::from_secs(10), slow.recv_close())
        .await
        .expect("the close arrives")
        .unwrap()
        .unwrap();
    assert_eq!(frame.code, CloseCode::Application(4002));
    std::fs::remove_file(file).unwrap();
}

/// Reads until the server closes, answering nothing; the close code.
async fn close_code(ws: &mut switchboard::TestSocket) -> CloseCode {
    let run = async {
        loop {
            match ws.recv_text().await {
                Ok(_) => {}
                Err(TestError::Closed(Some(frame))) => return frame.code,
                Err(e) => panic!("no close frame: {e:?}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the server closes within 10 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_and_error_closes_are_counted_under_4006_and_4007() {
    let file = std::env::temp_dir().join(format!(
        "switchboard-codes-{}-{}.toml",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(
        &file,
        r#"
[[endpoints]]
path = "/ws/errors"
protocol = "structured"
[endpoints.structured]
max_errors = 2

[[endpoints]]
path = "/ws/heartbeat"
protocol = "structured"
[endpoints.structured]
heartbeat_interval = "200ms"
heartbeat_timeout = "300ms"
"#,
    )
    .unwrap();
    let gw = Gateway::start_with(&Options {
        args: vec!["--config".into(), file.display().to_string()],
        ..Options::default()
    });
    // Too many ERROR replies: 4007.
    let mut errors = gw.ws_client().connect("/ws/errors").await.unwrap();
    for _ in 0..3 {
        if errors.send_text("not json").await.is_err() {
            break;
        }
    }
    assert_eq!(close_code(&mut errors).await, CloseCode::Application(4007));
    // No PONG to the server's PING: 4006.
    let mut silent = gw.ws_client().connect("/ws/heartbeat").await.unwrap();
    assert_eq!(close_code(&mut silent).await, CloseCode::Application(4006));

    let deadline = Instant::now() + Duration::from_secs(5);
    let page = loop {
        let page = gw.get("/metrics").await.body;
        let counted = |code: &str| {
            sample(
                &page,
                &format!("switchboard_connections_closed_total{{code=\"{code}\"}}"),
            )
        };
        if (counted("4006") >= 1.0 && counted("4007") >= 1.0) || Instant::now() > deadline {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for code in ["4006", "4007"] {
        let series = format!("switchboard_connections_closed_total{{code=\"{code}\"}}");
        assert_eq!(sample(&page, &series), 1.0, "{series}\n{page}");
    }
    assert_eq!(
        sample(
            &page,
            r#"switchboard_connections_closed_total{code="other"}"#
        ),
        0.0,
        "{page}"
    );
    std::fs::remove_file(file).unwrap();
}
