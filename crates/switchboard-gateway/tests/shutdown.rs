//! Graceful shutdown of the real binary: signals by PID, the close codes
//! clients get, queued messages delivered first, and the exit status.

#![cfg(unix)]

mod support;

use std::time::{Duration, Instant};

use support::{Gateway, Options};
use switchboard::{CloseCode, TestError};

const KEY: &str = "shutdown-key-0123456789";

async fn expect_close(ws: &mut switchboard::TestSocket, code: CloseCode) {
    match ws.recv_text().await {
        Err(TestError::Closed(Some(frame))) => assert_eq!(frame.code, code, "{frame:?}"),
        other => panic!("expected a close with {code:?}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_delivers_queued_messages_then_closes_with_1001_and_exits_0() {
    let mut gw = Gateway::start(&[]);
    let mut listener = gw.ws_client().connect("/ws/broadcast").await.unwrap();
    let mut idle = gw.ws_client().connect("/ws/echo").await.unwrap();
    gw.wait_for_room("broadcast", 1).await;

    // Queue messages for a client that is not reading yet.
    let count = 200;
    let filler = "x".repeat(4000);
    for i in 0..count {
        let body = format!(r#"{{"target": {{"room": "broadcast"}}, "text": "{i} {filler}"}}"#);
        let response = gw.post("/api/v1/publish", &body).await;
        assert_eq!(response.status, 200, "{}", response.body);
    }

    gw.signal("TERM");
    for i in 0..count {
        let text = listener.recv_text().await.unwrap();
        assert!(
            text.starts_with(&format!("{i} ")),
            "message {i} out of order"
        );
    }
    expect_close(&mut listener, CloseCode::Away).await;
    expect_close(&mut idle, CloseCode::Away).await;

    let status = gw.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "exit status {status:?}\n{}", gw.logs());
    let logs = gw.logs();
    assert!(logs.contains("shutting down"), "{logs}");
    assert!(logs.contains("SIGTERM"), "{logs}");

    // The port is closed: nothing accepts any more.
    assert!(tokio::net::TcpStream::connect(gw.addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_worker_serves_publishes_and_shuts_down_cleanly() {
    // One worker runs on a current-thread runtime: everything still works,
    // the handlers, the API, signals and the drain included.
    let mut gw = Gateway::start(&["--workers", "1"]);
    let mut echo = gw.ws_client().connect("/ws/echo").await.unwrap();
    let mut listener = gw.ws_client().connect("/ws/broadcast").await.unwrap();
    gw.wait_for_room("broadcast", 1).await;
    echo.send_text("ping").await.unwrap();
    assert_eq!(echo.recv_text().await.unwrap().as_str(), "ping");
    let response = gw
        .post(
            "/api/v1/publish",
            r#"{"target": {"room": "broadcast"}, "text": "hello"}"#,
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(listener.recv_text().await.unwrap().as_str(), "hello");

    gw.signal("TERM");
    expect_close(&mut listener, CloseCode::Away).await;
    expect_close(&mut echo, CloseCode::Away).await;
    let status = gw.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "exit status {status:?}\n{}", gw.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_closes_with_1001_and_sigusr1_with_1012() {
    let mut gw = Gateway::start(&[]);
    let mut ws = gw.ws_client().connect("/ws/echo").await.unwrap();
    gw.wait_for_connections(1).await;
    gw.signal("INT");
    expect_close(&mut ws, CloseCode::Away).await;
    assert!(gw.wait_exit(Duration::from_secs(15)).success());

    let mut gw = Gateway::start(&[]);
    let mut ws = gw.ws_client().connect("/ws/echo").await.unwrap();
    gw.wait_for_connections(1).await;
    gw.signal("USR1");
    expect_close(&mut ws, CloseCode::Restart).await;
    assert!(gw.wait_exit(Duration::from_secs(15)).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_on_shutdown_makes_sigterm_close_with_1012() {
    let mut gw = Gateway::start(&["--restart-on-shutdown"]);
    let mut ws = gw.ws_client().connect("/ws/echo").await.unwrap();
    gw.wait_for_connections(1).await;
    gw.signal("TERM");
    expect_close(&mut ws, CloseCode::Restart).await;
    assert!(gw.wait_exit(Duration::from_secs(15)).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_shuts_down_and_needs_a_key() {
    // Without a configured key the endpoint refuses.
    let gw = Gateway::start(&[]);
    let refused = gw
        .post("/api/v1/admin/shutdown", r#"{"restart": true}"#)
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    drop(gw);

    let mut gw = Gateway::start_with(&Options {
        env: vec![("SWITCHBOARD_API_KEY", KEY.to_owned())],
        ..Options::default()
    });
    let auth = format!("Bearer {KEY}");
    let headers = [("authorization", auth.as_str())];
    let mut ws = gw.ws_client().connect("/ws/echo").await.unwrap();
    gw.wait_for_connections_with(1, &headers).await;
    let bad = gw
        .send(
            "POST",
            "/api/v1/admin/shutdown",
            &headers,
            Some(r#"{"now": 1}"#),
        )
        .await;
    assert_eq!(bad.status, 400);
    let accepted = gw
        .send(
            "POST",
            "/api/v1/admin/shutdown",
            &headers,
            Some(r#"{"restart": true}"#),
        )
        .await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    assert_eq!(accepted.json()["close_code"], 1012);
    expect_close(&mut ws, CloseCode::Restart).await;
    assert!(gw.wait_exit(Duration::from_secs(15)).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_answers_cannot_hold_the_exit_past_the_deadline() {
    let mut gw = Gateway::start(&["--shutdown-timeout", "1s"]);
    // Connected, then never read from: it never acknowledges the close.
    let _silent = gw.ws_client().connect("/ws/echo").await.unwrap();
    gw.wait_for_connections(1).await;
    let started = Instant::now();
    gw.signal("TERM");
    let status = gw.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once() {
    let mut gw = Gateway::start(&["--shutdown-timeout", "30s"]);
    let _silent = gw.ws_client().connect("/ws/echo").await.unwrap();
    gw.wait_for_connections(1).await;
    gw.signal("TERM");
    // Within a second it counts as the same signal delivered twice.
    tokio::time::sleep(Duration::from_millis(100)).await;
    gw.signal("TERM");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(gw.try_status().is_none(), "exited on a duplicated signal");
    let started = Instant::now();
    gw.signal("TERM");
    let status = gw.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(1), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}
