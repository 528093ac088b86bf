//! Runs the load generator against the peer servers in-process, on loopback port 0.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use switchboard_bench::echo::{self, EchoConfig, PipelineMode};
use switchboard_bench::fanout::{self, AllToAllConfig, FanoutConfig, Publisher};
use switchboard_bench::payload::Format;
use switchboard_bench::peers;
use switchboard_bench::storm::{self, CloseMode, StormConfig};
use switchboard_bench::target::{Target, parse_target};

/// Starts a peer on its own thread and `current_thread` runtime; returns its address.
fn start_peer<F, Fut>(serve: F) -> SocketAddr
where
    F: FnOnce(tokio::net::TcpListener) -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = peers::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let _ = serve(listener).await;
        });
    });
    rx.recv().unwrap()
}

fn url(addr: SocketAddr, path: &str) -> Target {
    parse_target(&format!("ws://{addr}{path}")).unwrap()
}

fn echo_cfg(target: Target, size: usize, in_flight: usize, binary: bool) -> EchoConfig {
    EchoConfig {
        target,
        connections: 8,
        size,
        in_flight,
        pipeline: PipelineMode::Window,
        binary,
        duration: Duration::from_secs(1),
        warmup: Duration::from_millis(100),
        max_messages: None,
        server_pids: vec![std::process::id()],
        connect_concurrency: 8,
        deflate: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_against_tungstenite_peer() {
    let addr = start_peer(peers::tungstenite::serve);
    let r = echo::run(echo_cfg(url(addr, "/ws/echo"), 20, 1, true))
        .await
        .unwrap();
    assert_eq!(r.connected, 8);
    assert!(r.verified > 0, "{r:?}");
    assert!(r.messages > 0, "{r:?}");
    assert_eq!(r.mismatches, 0, "{r:?}");
    assert_eq!(r.connection_errors, 0, "{r:?}");
    assert!(r.latency.count > 0);
    // Sampling our own process stands in for a server pid.
    assert!(r.server_cpu.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_text_and_large_echo_against_fastwebsockets_peer() {
    let addr = start_peer(peers::fastws::serve);
    let r = echo::run(echo_cfg(url(addr, "/anything"), 20, 16, false))
        .await
        .unwrap();
    assert!(r.verified > 0 && r.mismatches == 0, "{r:?}");
    let r = echo::run(echo_cfg(url(addr, "/"), 70_000, 2, true))
        .await
        .unwrap();
    assert!(r.verified > 0 && r.mismatches == 0, "{r:?}");
    let mut cfg = echo_cfg(url(addr, "/"), 100, 8, true);
    cfg.pipeline = PipelineMode::Batch;
    let r = echo::run(cfg).await.unwrap();
    assert!(r.verified > 0 && r.mismatches == 0, "{r:?}");
    assert_eq!(r.verified % 8, 0, "batches of 8: {r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_messages_bounds_the_run() {
    let addr = start_peer(peers::tungstenite::serve);
    let mut cfg = echo_cfg(url(addr, "/"), 20, 4, true);
    cfg.max_messages = Some(100);
    let r = echo::run(cfg).await.unwrap();
    assert_eq!(r.verified, 100, "{r:?}");
    assert_eq!(r.mismatches, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_and_all_to_all_against_both_peers() {
    for addr in [
        start_peer(peers::tungstenite::serve),
        start_peer(peers::fastws::serve),
    ] {
        let target = url(addr, "/ws/broadcast");
        let r = fanout::run(FanoutConfig {
            sub_targets: vec![target.clone()],
            subscribers: 20,
            subscribe_msg: None,
            publisher: Publisher::Ws(target.clone()),
            size: 64,
            format: Format::Text,
            rate: 0.0,
            window: 4,
            msg_timeout: Duration::from_secs(1),
            duration: Duration::from_millis(700),
            settle: Duration::from_millis(100),
            drain: Duration::from_secs(2),
            max_messages: None,
            server_pids: vec![],
            aux_pids: vec![],
            connect_concurrency: 20,
            deflate: false,
            scenario: "fanout",
        })
        .await
        .unwrap();
        assert!(r.published > 0, "{r:?}");
        assert!(r.deliveries > 0, "{r:?}");
        assert_eq!(r.complete_messages, r.published, "{r:?}");
        assert_eq!(r.sequence.missing, 0, "{r:?}");
        assert_eq!(r.sequence.duplicated, 0, "{r:?}");
        assert_eq!(r.sequence.out_of_order, 0, "{r:?}");
        assert_eq!(r.message_bytes, 64);

        let r = fanout::run_all_to_all(AllToAllConfig {
            target,
            clients: 10,
            size: 20,
            format: Format::Binary,
            duration: Duration::from_millis(700),
            warmup: Duration::from_millis(100),
            round_timeout: Duration::from_secs(2),
            max_rounds: None,
            server_pids: vec![],
            connect_concurrency: 10,
            deflate: false,
        })
        .await
        .unwrap();
        assert!(!r.stalled, "{r:?}");
        assert!(r.rounds > 0, "{r:?}");
        assert_eq!(r.deliveries, r.rounds * 100);
        assert_eq!(r.sequence.missing, 0, "{r:?}");
        assert_eq!(r.sequence.duplicated, 0, "{r:?}");
        assert_eq!(r.message_bytes, 20);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_storm_and_probe() {
    let addr = start_peer(peers::fastws::serve);
    let target = url(addr, "/ws/echo");
    assert_eq!(
        switchboard_bench::probe(&target, Duration::from_secs(2))
            .await
            .unwrap(),
        101
    );
    for close in [CloseMode::Rst, CloseMode::Frame] {
        let r = storm::run(StormConfig {
            target: target.clone(),
            concurrency: 4,
            duration: Duration::from_millis(500),
            bearer: Some("abc".to_owned()),
            auth_label: "bearer",
            close,
            source_ips: vec![],
            max_handshakes: Some(200),
            server_pids: vec![],
            deflate: false,
        })
        .await
        .unwrap();
        assert!(r.handshakes > 0, "{r:?}");
        assert!(r.handshakes <= 200, "{r:?}");
        assert_eq!(r.errors, 0, "{r:?}");
    }
}

#[tokio::test]
async fn probe_reports_http_status() {
    // A tiny HTTP server that answers 404 to everything.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 2048];
        let _ = s.read(&mut buf).await;
        let _ = s
            .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
            .await;
    });
    let status = switchboard_bench::probe(&url(addr, "/ws/broadcast"), Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(status, 404);
}

/// A minimal HTTP publish endpoint for the test: every POST body is JSON with a `data` string,
/// which it forwards as a text message to a broadcast endpoint; answers 202 (alternating
/// content-length and chunked responses to exercise the client). The bridge never reads its
/// own copies of the broadcasts; for a short test they fit in the socket buffers.
async fn http_bridge(broadcast: Target) -> SocketAddr {
    use switchboard_bench::ws::{ConnectOptions, OP_TEXT, WsConn};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut ws = WsConn::connect(&broadcast, &ConnectOptions::default())
        .await
        .unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf: Vec<u8> = Vec::new();
        let mut n_req = 0u64;
        loop {
            // Parse one request (head + content-length body) out of `buf`.
            let parsed = {
                let mut headers = [httparse::EMPTY_HEADER; 32];
                let mut req = httparse::Request::new(&mut headers);
                match req.parse(&buf) {
                    Ok(httparse::Status::Complete(head)) => {
                        let len: usize = req
                            .headers
                            .iter()
                            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                            .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
                            .unwrap_or(0);
                        (buf.len() >= head + len).then_some((head, len))
                    }
                    _ => None,
                }
            };
            if let Some((head, len)) = parsed {
                let body: serde_json::Value =
                    serde_json::from_slice(&buf[head..head + len]).unwrap();
                buf.drain(..head + len);
                let data = body["data"].as_str().unwrap().to_owned();
                ws.send(OP_TEXT, data.as_bytes()).await.unwrap();
                n_req += 1;
                let resp: &[u8] = if n_req.is_multiple_of(2) {
                    b"HTTP/1.1 202 Accepted\r\ncontent-length: 11\r\n\r\n{\"ok\":true}"
                } else {
                    b"HTTP/1.1 202 Accepted\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
                };
                s.write_all(resp).await.unwrap();
                continue;
            }
            let mut chunk = [0u8; 4096];
            let n = s.read(&mut chunk).await.unwrap();
            if n == 0 {
                return;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_with_http_publisher_through_a_bridge() {
    let addr = start_peer(peers::tungstenite::serve);
    let target = url(addr, "/ws/broadcast");
    let bridge = http_bridge(target.clone()).await;
    let publish = parse_target(&format!("http://{bridge}/publish")).unwrap();
    let r = fanout::run(FanoutConfig {
        sub_targets: vec![target],
        subscribers: 10,
        subscribe_msg: None,
        publisher: Publisher::Http {
            target: publish,
            body_template: r#"{"topic":"bench","data":"{payload}"}"#.to_owned(),
            content_type: "application/json".to_owned(),
            headers: vec!["X-Bench: 1".to_owned()],
        },
        size: 48,
        format: Format::Text,
        rate: 200.0,
        window: 4,
        msg_timeout: Duration::from_secs(1),
        duration: Duration::from_millis(500),
        settle: Duration::from_millis(100),
        drain: Duration::from_secs(2),
        max_messages: None,
        server_pids: vec![],
        aux_pids: vec![],
        connect_concurrency: 10,
        deflate: false,
        scenario: "fanout",
    })
    .await
    .unwrap();
    assert_eq!(r.publish_errors, 0, "{r:?}");
    assert!(r.published >= 50, "{r:?}");
    assert!(r.published <= 101, "rate 200/s for 0.5 s: {r:?}");
    assert_eq!(r.complete_messages, r.published, "{r:?}");
    assert_eq!(r.sequence.missing, 0, "{r:?}");
    assert!(r.publish_latency.is_some_and(|l| l.count == r.published));
}

#[tokio::test]
async fn cross_instance_counts_what_the_second_instance_never_gets() {
    // Two unlinked peers: subscribers on the second never see the first's messages, and the
    // accounting must say so rather than hide it.
    let a = start_peer(peers::fastws::serve);
    let b = start_peer(peers::fastws::serve);
    let ta = url(a, "/ws/broadcast");
    let r = fanout::run(FanoutConfig {
        sub_targets: vec![ta.clone(), url(b, "/ws/broadcast")],
        subscribers: 4,
        subscribe_msg: None,
        publisher: Publisher::Ws(ta),
        size: 32,
        format: Format::Text,
        rate: 50.0,
        window: 100,
        msg_timeout: Duration::from_millis(200),
        duration: Duration::from_millis(300),
        settle: Duration::from_millis(50),
        drain: Duration::from_millis(200),
        max_messages: Some(10),
        server_pids: vec![],
        aux_pids: vec![],
        connect_concurrency: 4,
        deflate: false,
        scenario: "cross-instance",
    })
    .await
    .unwrap();
    assert!(r.published > 0);
    assert_eq!(r.per_url.len(), 2);
    assert_eq!(r.per_url[1].deliveries, 0);
    assert_eq!(r.sequence.missing, 2 * r.published, "{r:?}");
    assert_eq!(r.complete_messages, 0);
}
