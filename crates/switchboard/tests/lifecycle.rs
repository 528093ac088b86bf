//! A connection's life beyond single messages: keepalive pings and the 4001
//! close, graceful shutdown (queued messages first, then 1001 or 1012, and
//! `run()` returning in time), and the live connection count going back to 0.

mod common;

use std::time::{Duration, Instant};

use common::{echo, spawn_server};
use switchboard::ws::Message as WsMessage;
use switchboard::{
    CloseCode, Error, Keepalive, RouteConfig, ServerConfig, Switchboard, TestClient, TestError,
    WebSocketUpgrade, codes,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

const TIMEOUT: Duration = Duration::from_secs(3);

fn keepalive_route() -> RouteConfig {
    RouteConfig::default().with_keepalive(Some(Keepalive::new(
        Duration::from_millis(100),
        Duration::from_millis(300),
    )))
}

// --- Keepalive -----------------------------------------------------------------

#[tokio::test]
async fn keepalive_pings_then_closes_4001_a_client_that_never_answers() {
    let app = Switchboard::new().route_with("/ws/echo", keepalive_route(), echo);
    let mut ws = TestClient::new(app)
        .with_timeout(TIMEOUT)
        .connect("/ws/echo")
        .await
        .unwrap();
    let started = Instant::now();
    let mut pings = 0;
    // `recv_message` hands over every frame and answers nothing.
    let close = loop {
        match ws.recv_message().await.unwrap() {
            WsMessage::Ping(_) => pings += 1,
            WsMessage::Close(frame) => break frame,
            other => panic!("unexpected {other:?}"),
        }
    };
    let elapsed = started.elapsed();
    assert!(pings >= 1, "no ping before the close");
    let close = close.expect("a close code");
    assert_eq!(close.code, codes::KEEPALIVE_TIMEOUT);
    assert_eq!(close.code, CloseCode::Application(4001));
    assert!(
        elapsed >= Duration::from_millis(250),
        "closed too early: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(1), "closed late: {elapsed:?}");
}

#[tokio::test]
async fn keepalive_keeps_a_client_that_answers_pings() {
    let app = Switchboard::new().route_with("/ws/echo", keepalive_route(), echo);
    let mut ws = TestClient::new(app)
        .with_timeout(TIMEOUT)
        .connect("/ws/echo")
        .await
        .unwrap();
    // `recv` answers pings; nothing else arrives for 700 ms, twice the timeout.
    let idle = tokio::time::timeout(Duration::from_millis(700), ws.recv()).await;
    match idle {
        Err(_elapsed) => {}
        Ok(other) => panic!("expected silence while answering pings, got {other:?}"),
    }
    ws.send_text("still alive").await.unwrap();
    assert_eq!(ws.recv_text().await.unwrap(), "still alive");
    let reply = ws.close(CloseCode::Normal, "").await.unwrap();
    assert_eq!(reply.map(|f| f.code), Some(CloseCode::Normal));
}

#[tokio::test]
async fn keepalive_counts_client_data_as_a_sign_of_life() {
    let app = Switchboard::new().route_with("/ws/echo", keepalive_route(), echo);
    let mut ws = TestClient::new(app)
        .with_timeout(TIMEOUT)
        .connect("/ws/echo")
        .await
        .unwrap();
    // Chat every 50 ms for 800 ms without ever answering a ping.
    for i in 0..16 {
        ws.send_text(&i.to_string()).await.unwrap();
        loop {
            match ws.recv_message().await.unwrap() {
                WsMessage::Ping(_) => {}
                WsMessage::Text(text) => {
                    assert_eq!(text, i.to_string().as_str());
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn keepalive_keeps_a_client_of_a_send_only_handler() {
    // A feed: the handler only sends and never calls `recv`.
    let route = keepalive_route();
    let app = Switchboard::new().route_with("/ws/feed", route, |ws: WebSocketUpgrade| async move {
        let ws = ws.accept().await?;
        for i in 0..16 {
            ws.send_text(i.to_string()).await?;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok::<(), Error>(())
    });
    let mut ws = TestClient::new(app)
        .with_timeout(TIMEOUT)
        .connect("/ws/feed")
        .await
        .unwrap();
    // `recv` answers every ping; the client is alive throughout.
    for i in 0..16 {
        match ws.recv_text().await {
            Ok(text) => assert_eq!(text, i.to_string().as_str()),
            Err(e) => panic!("message {i}: {e}"),
        }
    }
    assert_eq!(common::close_code(&mut ws).await, CloseCode::Normal);
}

// --- Graceful shutdown -----------------------------------------------------------

/// Queues 100 messages of 16 KiB into a queue large enough to take them all
/// at once (the client does not read yet), reports, then reads until the close.
fn burst_app(ready: mpsc::UnboundedSender<()>) -> Switchboard {
    let route = RouteConfig::default().with_max_queue_bytes(8 << 20);
    Switchboard::new()
        .with_config(
            ServerConfig::default()
                .with_shutdown_timeout(Duration::from_secs(3))
                .with_close_timeout(Duration::from_secs(1)),
        )
        .route_with("/ws/burst", route, move |ws: WebSocketUpgrade| {
            let ready = ready.clone();
            async move {
                let mut ws = ws.accept().await?;
                for i in 0..100u32 {
                    let mut text = format!("{i:03} ");
                    text.push_str(&"x".repeat(16 * 1024));
                    ws.send_text(text).await?;
                }
                let _ = ready.send(());
                while ws.recv().await?.is_some() {}
                Ok::<(), Error>(())
            }
        })
        .route("/ws/echo", echo)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_delivers_queued_messages_then_closes_1001_and_run_returns() {
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    let server = spawn_server(burst_app(ready_tx)).await;
    let client = TestClient::tcp(server.addr).with_timeout(TIMEOUT);
    let mut a = client.connect("/ws/burst").await.unwrap();
    let mut b = client.connect("/ws/burst").await.unwrap();
    for _ in 0..2 {
        tokio::time::timeout(TIMEOUT, ready_rx.recv())
            .await
            .expect("both handlers queue their messages")
            .unwrap();
    }
    let started = Instant::now();
    server.shutdown.shutdown();
    assert!(server.shutdown.is_shutting_down());
    for ws in [&mut a, &mut b] {
        for i in 0..100u32 {
            let text = ws
                .recv_text()
                .await
                .unwrap_or_else(|e| panic!("message {i}: {e}"));
            assert!(
                text.starts_with(&format!("{i:03} ")),
                "message {i} out of order"
            );
        }
        let close = common::close_frame_of(ws).await;
        assert_eq!(close.code, CloseCode::Away);
    }
    let run = tokio::time::timeout(Duration::from_secs(4), server.task)
        .await
        .expect("run() returns within the shutdown timeout");
    run.expect("run() does not panic")
        .expect("run() returns Ok");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(server.app.connection_count(), 0);
    // The listener is gone.
    assert!(TcpStream::connect(server.addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_closes_with_1012() {
    let server = spawn_server(Switchboard::new().route("/ws/echo", echo)).await;
    let mut ws = TestClient::tcp(server.addr)
        .with_timeout(TIMEOUT)
        .connect("/ws/echo")
        .await
        .unwrap();
    ws.send_text("hi").await.unwrap();
    assert_eq!(ws.recv_text().await.unwrap(), "hi");
    server.shutdown.restart();
    let close = common::close_frame_of(&mut ws).await;
    assert_eq!(close.code, CloseCode::Restart);
    tokio::time::timeout(Duration::from_secs(3), server.task)
        .await
        .expect("run() returns")
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_a_custom_code_and_reason() {
    let server = spawn_server(Switchboard::new().route("/ws/echo", echo)).await;
    let mut ws = TestClient::tcp(server.addr)
        .with_timeout(TIMEOUT)
        .connect("/ws/echo")
        .await
        .unwrap();
    server
        .shutdown
        .shutdown_with(CloseCode::TryAgainLater, "maintenance");
    let close = common::close_frame_of(&mut ws).await;
    assert_eq!(close.code, CloseCode::TryAgainLater);
    assert_eq!(close.reason, "maintenance");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_until_signal_shuts_down_with_1001() {
    let server = Switchboard::new()
        .route("/ws/echo", echo)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr();
    let (signal_tx, signal_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run_until(async {
        let _ = signal_rx.await;
    }));
    let mut ws = TestClient::tcp(addr)
        .with_timeout(TIMEOUT)
        .connect("/ws/echo")
        .await
        .unwrap();
    signal_tx.send(()).unwrap();
    assert_eq!(common::close_code(&mut ws).await, CloseCode::Away);
    tokio::time::timeout(Duration::from_secs(3), task)
        .await
        .expect("run_until() returns")
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_returns_at_the_shutdown_timeout_even_if_a_handler_hangs() {
    let app = Switchboard::new()
        .with_config(
            ServerConfig::default()
                .with_shutdown_timeout(Duration::from_millis(500))
                .with_close_timeout(Duration::from_millis(200)),
        )
        .route("/ws/hang", |ws: WebSocketUpgrade| async move {
            let _ws = ws.accept().await?;
            std::future::pending::<()>().await;
            Ok::<(), Error>(())
        });
    let server = spawn_server(app).await;
    let mut ws = TestClient::tcp(server.addr)
        .with_timeout(TIMEOUT)
        .connect("/ws/hang")
        .await
        .unwrap();
    let started = Instant::now();
    server.shutdown.shutdown();
    // The close still goes out: the writer sends it, not the handler.
    assert_eq!(common::close_code(&mut ws).await, CloseCode::Away);
    tokio::time::timeout(Duration::from_secs(2), server.task)
        .await
        .expect("run() returns despite the hanging handler")
        .unwrap()
        .unwrap();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(450),
        "returned before the timeout: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_in_flight_at_shutdown_is_refused_or_closed() {
    let app = Switchboard::new()
        .with_config(ServerConfig::default().with_shutdown_timeout(Duration::from_secs(2)))
        .route("/ws/echo", echo);
    let server = spawn_server(app).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let request = common::upgrade_request("/ws/echo", "");
    let (first, rest) = request.split_at(20);
    stream.write_all(first.as_bytes()).await.unwrap();
    // Let the server accept it and start reading the head.
    assert!(
        common::eventually(TIMEOUT, || server.app.connection_count() == 1).await,
        "the server did not accept the connection"
    );
    server.shutdown.shutdown();
    stream.write_all(rest.as_bytes()).await.unwrap();
    let response = common::read_response(&mut stream, TIMEOUT).await;
    if response.status == 101 {
        // Accepted after all: then it must be closed with 1001 promptly,
        // not left open past the end of run().
        let mut frames = response.rest;
        let got = tokio::time::timeout(Duration::from_secs(1), async {
            use tokio::io::AsyncReadExt;
            while frames.len() < 4 {
                let mut chunk = [0u8; 64];
                let n = stream.read(&mut chunk).await.unwrap();
                if n == 0 {
                    break;
                }
                frames.extend_from_slice(&chunk[..n]);
            }
        })
        .await;
        assert!(got.is_ok(), "no close within 1 s of the handshake");
        // An unmasked close frame carrying 1001.
        assert_eq!(&frames[..4], &[0x88, frames[1], 0x03, 0xE9], "{frames:?}");
    } else {
        assert_eq!(response.status, 503, "{response:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_does_not_hold_up_shutdown() {
    // Browsers open spare connections that send nothing; at shutdown they are
    // closed at once instead of being waited for until the handshake deadline.
    let app = Switchboard::new()
        .with_config(
            ServerConfig::default()
                .with_handshake_timeout(Duration::from_secs(10))
                .with_shutdown_timeout(Duration::from_secs(5)),
        )
        .route("/ws/echo", echo);
    let server = spawn_server(app).await;
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    assert!(
        common::eventually(TIMEOUT, || server.app.connection_count() == 1).await,
        "the server did not accept the connection"
    );
    let started = Instant::now();
    server.shutdown.shutdown();
    tokio::time::timeout(Duration::from_secs(2), server.task)
        .await
        .expect("run() returns without waiting for the idle connection")
        .unwrap()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(server.app.connection_count(), 0);
    // The server closed it.
    use tokio::io::AsyncReadExt;
    let mut byte = [0u8; 1];
    let n = tokio::time::timeout(TIMEOUT, idle.read(&mut byte))
        .await
        .expect("the idle connection is closed")
        .unwrap_or(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn connection_served_after_shutdown_is_refused_or_closed() {
    let app = Switchboard::new().route("/ws/echo", echo).into_app();
    app.shutdown_handle().shutdown();
    let client = TestClient::new(app).with_timeout(Duration::from_secs(1));
    match client.connect("/ws/echo").await {
        Err(TestError::Rejected { status, .. }) => assert_eq!(status.as_u16(), 503),
        Ok(mut ws) => match ws.recv_close().await {
            Ok(Some(frame)) => assert_eq!(frame.code, CloseCode::Away),
            other => panic!("expected a 1001 close, got {other:?}"),
        },
        Err(e) => panic!("{e}"),
    }
}

// --- Connection count -------------------------------------------------------------

#[tokio::test]
async fn connection_count_returns_to_zero_after_every_kind_of_ending() {
    let app = Switchboard::new()
        .route_with(
            "/ws/echo",
            RouteConfig::default().with_keepalive(None),
            echo,
        )
        .into_app();
    let client = TestClient::new(app.clone()).with_timeout(TIMEOUT);
    assert_eq!(app.connection_count(), 0);
    let clean = client.connect("/ws/echo").await.unwrap();
    let vanishing = client.connect("/ws/echo").await.unwrap();
    let mut violating = client.connect("/ws/echo").await.unwrap();
    let _refused = common::rejected(client.connect("/ws/missing").await);
    assert!(
        common::eventually(TIMEOUT, || app.connection_count() == 3).await,
        "expected 3 live connections, have {}",
        app.connection_count()
    );
    clean.close(CloseCode::Normal, "").await.unwrap();
    drop(vanishing);
    violating
        .send_raw(&common::frame(common::FIN | 0x1, b"unmasked", false))
        .await
        .unwrap();
    assert_eq!(
        common::close_code(&mut violating).await,
        CloseCode::Protocol
    );
    drop(violating);
    assert!(
        common::eventually(TIMEOUT, || app.connection_count() == 0).await,
        "connection count stuck at {}",
        app.connection_count()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_count_returns_to_zero_over_tcp() {
    let server = spawn_server(Switchboard::new().route("/ws/echo", echo)).await;
    let client = TestClient::tcp(server.addr).with_timeout(TIMEOUT);
    let mut sockets = Vec::new();
    for _ in 0..5 {
        sockets.push(client.connect("/ws/echo").await.unwrap());
    }
    assert!(common::eventually(TIMEOUT, || server.app.connection_count() == 5).await);
    for (i, mut ws) in sockets.into_iter().enumerate() {
        if i % 2 == 0 {
            ws.send_close(CloseCode::Normal, "").await.unwrap();
            assert_eq!(common::close_code(&mut ws).await, CloseCode::Normal);
        }
        // Odd ones just vanish.
    }
    assert!(
        common::eventually(TIMEOUT, || server.app.connection_count() == 0).await,
        "connection count stuck at {}",
        server.app.connection_count()
    );
}
