//! The socket API seen from a handler: typed receives and the close codes
//! their errors map to, what the handler's return value sends, how the
//! peer's close shows up in `recv`, the `Stream` impl, request data
//! (query, headers, cookies, client address), pings, and the `Sender`
//! handle with its bounded queue.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{echo, rejected, spawn_server};
use futures_util::StreamExt;
use serde::Deserialize;
use switchboard::ws::{Message as WsMessage, OpCode};
use switchboard::{
    ClientAddr, CloseCode, Error, Headers, Message, OutFrame, Path, Query, RouteConfig,
    Switchboard, TestClient, TrySendError, WebSocketUpgrade,
};
use tokio::sync::mpsc;

const TIMEOUT: Duration = Duration::from_secs(3);

fn client(app: Switchboard) -> TestClient {
    TestClient::new(app).with_timeout(TIMEOUT)
}

/// An app with one route whose handler reports a value back to the test.
fn reporting<T, F, Fut>(path: &str, body: F) -> (Switchboard, mpsc::UnboundedReceiver<T>)
where
    T: Send + 'static,
    F: Fn(switchboard::WebSocket, mpsc::UnboundedSender<T>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Error>> + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Switchboard::new().route(path, move |ws: WebSocketUpgrade| {
        let tx = tx.clone();
        let body = body.clone();
        async move {
            let ws = ws.accept().await?;
            body(ws, tx).await
        }
    });
    (app, rx)
}

async fn report<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> T {
    tokio::time::timeout(TIMEOUT, rx.recv())
        .await
        .expect("the handler reports within the deadline")
        .expect("the handler reports before it ends")
}

// --- What a handler's receive errors and return value send ----------------

#[tokio::test]
async fn recv_text_on_a_binary_message_closes_1003() {
    let app = Switchboard::new().route("/ws/text", |ws: WebSocketUpgrade| async move {
        let mut ws = ws.accept().await?;
        while let Some(text) = ws.recv_text().await? {
            ws.send_text(text).await?;
        }
        Ok::<(), Error>(())
    });
    let mut ws = client(app).connect("/ws/text").await.unwrap();
    ws.send_text("fine").await.unwrap();
    assert_eq!(ws.recv_text().await.unwrap(), "fine");
    ws.send_binary(b"not text").await.unwrap();
    assert_eq!(common::close_code(&mut ws).await, CloseCode::Unsupported);
}

#[tokio::test]
async fn recv_bytes_on_a_text_message_closes_1003() {
    let app = Switchboard::new().route("/ws/bin", |ws: WebSocketUpgrade| async move {
        let mut ws = ws.accept().await?;
        while let Some(data) = ws.recv_bytes().await? {
            ws.send_binary(data).await?;
        }
        Ok::<(), Error>(())
    });
    let mut ws = client(app).connect("/ws/bin").await.unwrap();
    ws.send_text("not binary").await.unwrap();
    assert_eq!(common::close_code(&mut ws).await, CloseCode::Unsupported);
}

#[tokio::test]
async fn recv_json_on_bad_json_closes_1007() {
    #[derive(Debug, Deserialize)]
    struct Join {
        room: u64,
    }
    let app = Switchboard::new().route("/ws/json", |ws: WebSocketUpgrade| async move {
        let mut ws = ws.accept().await?;
        while let Some(join) = ws.recv_json::<Join>().await? {
            ws.send_text(format!("joined {}", join.room)).await?;
        }
        Ok::<(), Error>(())
    });
    let mut ws = client(app).connect("/ws/json").await.unwrap();
    ws.send_text(r#"{"room": 9}"#).await.unwrap();
    assert_eq!(ws.recv_text().await.unwrap(), "joined 9");
    ws.send_text(r#"{"room": "nine"}"#).await.unwrap();
    assert_eq!(common::close_code(&mut ws).await, CloseCode::InvalidPayload);
}

#[tokio::test]
async fn handler_error_close_sends_its_code_and_reason() {
    let app = Switchboard::new().route("/ws/bye", |ws: WebSocketUpgrade| async move {
        let mut ws = ws.accept().await?;
        let _ = ws.recv().await?;
        Err::<(), Error>(Error::close(CloseCode::Application(4321), "bye"))
    });
    let mut ws = client(app).connect("/ws/bye").await.unwrap();
    ws.send_text("hi").await.unwrap();
    let frame = common::close_frame_of(&mut ws).await;
    assert_eq!(frame.code, CloseCode::Application(4321));
    assert_eq!(frame.reason, "bye");
}

#[tokio::test]
async fn handler_returning_ok_closes_1000() {
    let app = Switchboard::new().route("/ws/done", |ws: WebSocketUpgrade| async move {
        let ws = ws.accept().await?;
        ws.send_text("last").await?;
        Ok::<(), Error>(())
    });
    let mut ws = client(app).connect("/ws/done").await.unwrap();
    assert_eq!(ws.recv_text().await.unwrap(), "last");
    assert_eq!(common::close_code(&mut ws).await, CloseCode::Normal);
    ws.wait_eof().await.unwrap();
}

#[tokio::test]
async fn handler_returning_unit_closes_1000() {
    let app = Switchboard::new().route("/ws/unit", |ws: WebSocketUpgrade| async move {
        let _ws = ws.accept().await;
    });
    let mut ws = client(app).connect("/ws/unit").await.unwrap();
    assert_eq!(common::close_code(&mut ws).await, CloseCode::Normal);
}

#[tokio::test]
async fn handler_that_panics_after_accepting_closes_1011() {
    let app = Switchboard::new().route("/ws/panic", |ws: WebSocketUpgrade| async move {
        let mut ws = ws.accept().await?;
        if let Some(Message::Text(text)) = ws.recv().await? {
            panic!("handler panicked on purpose: {text}");
        }
        Ok::<(), Error>(())
    });
    let mut ws = client(app).connect("/ws/panic").await.unwrap();
    ws.send_text("boom").await.unwrap();
    assert_eq!(common::close_code(&mut ws).await, CloseCode::InternalError);
}

#[tokio::test]
async fn handler_that_panics_before_accepting_answers_500() {
    let app = Switchboard::new().route("/ws/panic", |_ws: WebSocketUpgrade| async move {
        if !_ws.request().path().is_empty() {
            panic!("handler panicked on purpose before accepting");
        }
    });
    let (status, _, _) = rejected(client(app).connect("/ws/panic").await);
    assert_eq!(status, 500);
}

#[tokio::test]
async fn handler_close_runs_the_close_handshake() {
    let (app, mut rx) = reporting("/ws/close", |mut ws, tx| async move {
        let result = ws.close(CloseCode::Application(4100), "leaving").await;
        let _ = tx.send(result.is_ok());
        Ok(())
    });
    let mut ws = client(app).connect("/ws/close").await.unwrap();
    let frame = common::close_frame_of(&mut ws).await;
    assert_eq!(frame.code, CloseCode::Application(4100));
    assert_eq!(frame.reason, "leaving");
    // `recv_close` answered the close; the handler's close completes cleanly.
    assert!(report(&mut rx).await);
}

#[tokio::test]
async fn handler_error_with_an_unsendable_code_still_sends_a_valid_close() {
    let app = Switchboard::new().route("/ws/bad", |ws: WebSocketUpgrade| async move {
        let _ws = ws.accept().await?;
        Err::<(), Error>(Error::close(CloseCode::Abnormal, "lost"))
    });
    let mut ws = client(app).connect("/ws/bad").await.unwrap();
    // The client's decoder rejects a close frame carrying 1006 as a protocol
    // error; the server must substitute a sendable code.
    match ws.recv_close().await {
        Ok(Some(frame)) => assert!(frame.code.is_sendable(), "{frame:?}"),
        other => panic!("expected a valid close frame, got {other:?}"),
    }
}

// --- The peer's close as the handler sees it -------------------------------

type Received = Result<Option<Message>, Error>;

fn first_recv() -> (Switchboard, mpsc::UnboundedReceiver<Received>) {
    reporting(
        "/ws/recv",
        |mut ws, tx: mpsc::UnboundedSender<Received>| async move {
            let result = ws.recv().await;
            // And the next receive after the close says the same thing again.
            let again = ws.recv().await;
            let _ = tx.send(result);
            let _ = tx.send(again);
            Ok(())
        },
    )
}

#[tokio::test]
async fn peer_close_with_4000_is_disconnected_with_its_code_and_reason() {
    let (app, mut rx) = first_recv();
    let ws = client(app).connect("/ws/recv").await.unwrap();
    let reply = ws
        .close(CloseCode::Application(4000), "done")
        .await
        .unwrap();
    // The server echoes the peer's code.
    assert_eq!(reply.map(|f| f.code), Some(CloseCode::Application(4000)));
    for _ in 0..2 {
        match report(&mut rx).await {
            Err(Error::Disconnected(frame)) => {
                assert_eq!(frame.code, CloseCode::Application(4000));
                assert_eq!(frame.reason, "done");
            }
            other => panic!("expected Disconnected(4000, \"done\"), got {other:?}"),
        }
    }
}

#[tokio::test]
async fn peer_close_with_1000_is_a_clean_end() {
    let (app, mut rx) = first_recv();
    let ws = client(app).connect("/ws/recv").await.unwrap();
    let reply = ws.close(CloseCode::Normal, "").await.unwrap();
    assert_eq!(reply.map(|f| f.code), Some(CloseCode::Normal));
    for _ in 0..2 {
        let received = report(&mut rx).await;
        assert!(matches!(received, Ok(None)), "{received:?}");
    }
}

#[tokio::test]
async fn peer_close_with_1001_is_a_clean_end() {
    let (app, mut rx) = first_recv();
    let ws = client(app).connect("/ws/recv").await.unwrap();
    ws.close(CloseCode::Away, "tab closed").await.unwrap();
    let received = report(&mut rx).await;
    assert!(matches!(received, Ok(None)), "{received:?}");
}

#[tokio::test]
async fn peer_vanishing_without_a_close_is_disconnected_1006() {
    let (app, mut rx) = first_recv();
    let ws = client(app).connect("/ws/recv").await.unwrap();
    drop(ws);
    match report(&mut rx).await {
        Err(Error::Disconnected(frame)) => assert_eq!(frame.code, CloseCode::Abnormal),
        other => panic!("expected Disconnected(1006), got {other:?}"),
    }
}

#[tokio::test]
async fn socket_is_a_stream_of_messages() {
    let (app, mut rx) = reporting("/ws/stream", |mut ws, tx| async move {
        let mut seen = Vec::new();
        while let Some(item) = ws.next().await {
            match item {
                Ok(message) => {
                    seen.push(String::from_utf8_lossy(message.as_bytes()).into_owned());
                    ws.send(message).await?;
                }
                Err(Error::Disconnected(frame)) => {
                    seen.push(format!("disconnected {}", frame.code));
                }
                Err(e) => return Err(e),
            }
        }
        seen.push("end".into());
        let _ = tx.send(seen);
        Ok(())
    });
    let mut ws = client(app).connect("/ws/stream").await.unwrap();
    ws.send_text("a").await.unwrap();
    ws.send_binary(b"b").await.unwrap();
    ws.send_text("c").await.unwrap();
    assert_eq!(ws.recv_text().await.unwrap(), "a");
    assert_eq!(&ws.recv_bytes().await.unwrap()[..], b"b");
    assert_eq!(ws.recv_text().await.unwrap(), "c");
    ws.close(CloseCode::Application(4000), "").await.unwrap();
    // A disconnect is reported once, then the stream ends.
    assert_eq!(
        report(&mut rx).await,
        ["a", "b", "c", "disconnected 4000", "end"]
    );
}

// --- Request data -----------------------------------------------------------

#[derive(Debug, Deserialize)]
struct Search {
    page: u32,
    q: Option<String>,
}

async fn info(
    ws: WebSocketUpgrade,
    Path(id): Path<u32>,
    Query(search): Query<Search>,
    ClientAddr(addr): ClientAddr,
    Headers(headers): Headers,
) -> Result<(), Error> {
    let ws = ws.accept().await?;
    let request = ws.request();
    let value = serde_json::json!({
        "id": id,
        "page": search.page,
        "q": search.q,
        "query_q": request.query("q"),
        "query_missing": request.query("nope"),
        "query_string": request.query_string(),
        "path": request.path(),
        "route": request.route(),
        "path_param": request.path_param("id"),
        "x_custom": request.header("x-custom"),
        "x_custom_extracted": headers.get("x-custom").and_then(|v| v.to_str().ok()),
        "session": request.cookie("session"),
        "theme": request.cookie("theme"),
        "no_cookie": request.cookie("absent"),
        "origin": request.header("origin"),
        "addr": addr.to_string(),
        "addr_from_request": request.client_addr().to_string(),
    });
    ws.send_json(&value).await
}

fn info_app() -> Switchboard {
    Switchboard::new().route("/ws/info/{id}", info)
}

#[tokio::test]
async fn request_data_reaches_the_handler() {
    let addr: SocketAddr = "203.0.113.9:51234".parse().unwrap();
    let mut ws = client(info_app())
        .request("/ws/info/17")
        .query("page", "2")
        .query("q", "a b&c")
        .header("x-custom", "yes")
        .header("cookie", "session=abc123; theme=dark")
        // Same-origin: the in-memory client sends `Host: switchboard.test`.
        .origin("http://switchboard.test")
        .client_addr(addr)
        .connect()
        .await
        .unwrap();
    let got: serde_json::Value = ws.recv_json().await.unwrap();
    assert_eq!(got["id"], 17);
    assert_eq!(got["page"], 2);
    assert_eq!(got["q"], "a b&c");
    assert_eq!(got["query_q"], "a b&c");
    assert_eq!(got["query_missing"], serde_json::Value::Null);
    assert_eq!(got["query_string"], "page=2&q=a%20b%26c");
    assert_eq!(got["path"], "/ws/info/17");
    assert_eq!(got["route"], "/ws/info/{id}");
    assert_eq!(got["path_param"], "17");
    assert_eq!(got["x_custom"], "yes");
    assert_eq!(got["x_custom_extracted"], "yes");
    assert_eq!(got["session"], "abc123");
    assert_eq!(got["theme"], "dark");
    assert_eq!(got["no_cookie"], serde_json::Value::Null);
    assert_eq!(got["origin"], "http://switchboard.test");
    assert_eq!(got["addr"], "203.0.113.9:51234");
    assert_eq!(got["addr_from_request"], "203.0.113.9:51234");
}

#[tokio::test]
async fn cookies_are_found_across_several_cookie_headers() {
    let mut ws = client(info_app())
        .request("/ws/info/1?page=1")
        .header("cookie", "theme=light")
        .header("cookie", "other=1;session=s2")
        .connect()
        .await
        .unwrap();
    let got: serde_json::Value = ws.recv_json().await.unwrap();
    assert_eq!(got["session"], "s2");
    assert_eq!(got["theme"], "light");
    assert_eq!(got["q"], serde_json::Value::Null);
    assert_eq!(got["query_string"], "page=1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_addr_over_tcp_is_the_peer_address() {
    let server = spawn_server(info_app()).await;
    let mut ws = TestClient::tcp(server.addr)
        .with_timeout(TIMEOUT)
        .connect("/ws/info/5?page=3")
        .await
        .unwrap();
    let got: serde_json::Value = ws.recv_json().await.unwrap();
    let addr: SocketAddr = got["addr"].as_str().unwrap().parse().unwrap();
    assert!(addr.ip().is_loopback(), "{addr}");
    assert_ne!(addr.port(), server.addr.port());
    assert_eq!(got["page"], 3);
}

#[tokio::test]
async fn query_with_a_bad_value_is_400() {
    let (status, reason, _) = rejected(
        client(info_app())
            .request("/ws/info/1")
            .query("page", "first")
            .connect()
            .await,
    );
    assert_eq!(status, 400);
    assert!(reason.contains("page"), "reason: {reason}");
    assert!(reason.contains("query"), "reason: {reason}");
}

#[tokio::test]
async fn query_missing_a_required_field_is_400() {
    let (status, reason, _) = rejected(client(info_app()).connect("/ws/info/1?q=x").await);
    assert_eq!(status, 400);
    assert!(reason.contains("page"), "reason: {reason}");
}

#[tokio::test]
async fn query_rejection_does_not_call_the_value_a_path_parameter() {
    let (status, reason, _) = rejected(client(info_app()).connect("/ws/info/1?page=x").await);
    assert_eq!(status, 400);
    assert!(!reason.contains("path parameter"), "reason: {reason}");
}

// --- Pings -------------------------------------------------------------------

#[tokio::test]
async fn client_pings_are_answered_with_the_same_payload() {
    let app = Switchboard::new().route("/ws/echo", echo);
    let mut ws = client(app).connect("/ws/echo").await.unwrap();
    ws.ping(b"are you there?").await.unwrap();
    assert_eq!(
        ws.recv_message().await.unwrap(),
        WsMessage::Pong(Bytes::from_static(b"are you there?"))
    );
    ws.ping(b"").await.unwrap();
    assert_eq!(
        ws.recv_message().await.unwrap(),
        WsMessage::Pong(Bytes::new())
    );
    let max = [0x5Au8; 125];
    ws.ping(&max).await.unwrap();
    assert_eq!(
        ws.recv_message().await.unwrap(),
        WsMessage::Pong(Bytes::copy_from_slice(&max))
    );
    // Data still flows after.
    ws.send_text("after").await.unwrap();
    assert_eq!(ws.recv_text().await.unwrap(), "after");
}

// --- Sender and the outbound queue -------------------------------------------

#[tokio::test]
async fn sender_in_a_spawned_task_delivers_1000_messages_in_order() {
    let app = Switchboard::new().route("/ws/feed", |ws: WebSocketUpgrade| async move {
        let mut ws = ws.accept().await?;
        let sender = ws.sender();
        let feed = tokio::spawn(async move {
            for i in 0..1000u32 {
                sender.send_text(i.to_string()).await?;
            }
            Ok::<(), Error>(())
        });
        feed.await.expect("the feed task does not panic")?;
        while ws.recv().await?.is_some() {}
        Ok::<(), Error>(())
    });
    let mut ws = client(app).connect("/ws/feed").await.unwrap();
    for i in 0..1000u32 {
        assert_eq!(ws.recv_text().await.unwrap(), i.to_string().as_str());
    }
    let reply = ws.close(CloseCode::Normal, "").await.unwrap();
    assert_eq!(reply.map(|f| f.code), Some(CloseCode::Normal));
}

#[tokio::test]
async fn sender_after_the_connection_closed_is_refused() {
    let (app, mut rx) = reporting("/ws/late", |mut ws, tx| async move {
        let sender = ws.sender();
        while ws.recv().await?.is_some() {}
        let _ = tx.send((
            sender.is_closed(),
            sender.try_send_frame(OutFrame::new(OpCode::Text, Bytes::from_static(b"late"))),
            sender.send_text("late").await.is_err(),
        ));
        Ok(())
    });
    let ws = client(app).connect("/ws/late").await.unwrap();
    ws.close(CloseCode::Normal, "").await.unwrap();
    let (closed, try_send, send_failed) = report(&mut rx).await;
    assert!(closed);
    assert_eq!(try_send, Err(TrySendError::Closed));
    assert!(send_failed);
}

#[derive(Debug)]
struct QueueReport {
    accepted: usize,
    outcome: Option<TrySendError>,
    queued_bytes: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_send_reports_full_when_the_client_does_not_read() {
    const QUEUE: usize = 1024;
    const FRAME: usize = 64 * 1024;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let app = Switchboard::new().route_with(
        "/ws/firehose",
        RouteConfig::default().with_max_queue_bytes(QUEUE),
        move |ws: WebSocketUpgrade| {
            let tx = tx.clone();
            async move {
                let ws = ws.accept().await?;
                let sender = ws.sender();
                let payload = Bytes::from(vec![0xEEu8; FRAME]);
                let mut accepted = 0;
                let mut full_since: Option<Instant> = None;
                let started = Instant::now();
                let outcome = loop {
                    match sender.try_send_frame(OutFrame::new(OpCode::Binary, payload.clone())) {
                        Ok(()) => {
                            accepted += 1;
                            full_since = None;
                        }
                        // Full for a while, not just until the writer's next
                        // write: the kernel buffers are full too.
                        Err(TrySendError::Full)
                            if full_since
                                .is_some_and(|t| t.elapsed() > Duration::from_millis(300)) =>
                        {
                            break Some(TrySendError::Full);
                        }
                        Err(TrySendError::Full) => {
                            full_since.get_or_insert_with(Instant::now);
                        }
                        Err(e) => break Some(e),
                    }
                    if started.elapsed() > Duration::from_secs(10) {
                        break None;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                };
                let _ = tx.send(QueueReport {
                    accepted,
                    outcome,
                    queued_bytes: sender.queued_bytes(),
                });
                // Return Ok: the close goes out after everything queued.
                Ok::<(), Error>(())
            }
        },
    );
    let server = spawn_server(app).await;
    let mut ws = TestClient::tcp(server.addr)
        .with_timeout(TIMEOUT)
        .connect("/ws/firehose")
        .await
        .unwrap();
    // Do not read until the handler has seen the queue full.
    let report = tokio::time::timeout(Duration::from_secs(15), rx.recv())
        .await
        .expect("the handler reports")
        .expect("a report");
    assert_eq!(report.outcome, Some(TrySendError::Full), "{report:?}");
    // One frame may exceed the limit on its own, never more.
    assert!(report.queued_bytes <= QUEUE + FRAME + 16, "{report:?}");
    assert!(report.accepted >= 2, "{report:?}");
    // Nothing accepted was lost: read it all, then the close.
    for i in 0..report.accepted {
        let data = ws
            .recv_bytes()
            .await
            .unwrap_or_else(|e| panic!("frame {i}: {e}"));
        assert_eq!(data.len(), FRAME);
    }
    assert_eq!(common::close_code(&mut ws).await, CloseCode::Normal);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_waits_for_room_while_the_client_does_not_read() {
    const FRAME: usize = 256 * 1024;
    let (tx, mut rx) = mpsc::unbounded_channel::<usize>();
    let app = Switchboard::new().route_with(
        "/ws/wait",
        RouteConfig::default().with_max_queue_bytes(4096),
        move |ws: WebSocketUpgrade| {
            let tx = tx.clone();
            async move {
                let ws = ws.accept().await?;
                let payload = Bytes::from(vec![1u8; FRAME]);
                for i in 1..=64 {
                    ws.send_binary(payload.clone()).await?;
                    let _ = tx.send(i);
                }
                Ok::<(), Error>(())
            }
        },
    );
    let server = spawn_server(app).await;
    let mut ws = TestClient::tcp(server.addr)
        .with_timeout(TIMEOUT)
        .connect("/ws/wait")
        .await
        .unwrap();
    // 64 x 256 KiB = 16 MiB is far more than the kernel buffers hold: without
    // a reader, the handler's sends must stall before the last one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut sent = 0;
    while let Ok(n) = rx.try_recv() {
        sent = n;
    }
    assert!(sent < 64, "all 64 sends completed without a reader");
    // Reading lets every send complete, in order and whole.
    for _ in 0..64 {
        assert_eq!(ws.recv_bytes().await.unwrap().len(), FRAME);
    }
    assert_eq!(common::close_code(&mut ws).await, CloseCode::Normal);
}

// --- Pipelined requests ------------------------------------------------------
//
// When the reader holds more of the peer's bytes behind a message, the
// handler's replies go through the writer task (one write for the batch)
// instead of one write each. Order, completeness and latency must not change.

/// `count` masked text frames `"m0"`, `"m1"`, ... in one buffer.
fn batch(count: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..count {
        out.extend(common::frame(
            common::FIN | 0x1,
            format!("m{i}").as_bytes(),
            true,
        ));
    }
    out
}

#[tokio::test]
async fn a_pipelined_batch_is_answered_completely_and_in_order() {
    let server = spawn_server(Switchboard::new().route("/echo", echo)).await;
    let mut socket = TestClient::tcp(server.addr)
        .with_timeout(TIMEOUT)
        .connect("/echo")
        .await
        .unwrap();
    // A ping in the middle is answered too, and does not disturb the order.
    let mut bytes = batch(300);
    bytes.extend(common::frame(common::FIN | 0x9, b"mid", true));
    bytes.extend(batch(300));
    socket.send_raw(&bytes).await.unwrap();
    let mut texts = Vec::new();
    let mut pong = false;
    while texts.len() < 600 {
        match socket.recv_message().await.unwrap() {
            WsMessage::Text(t) => texts.push(t.to_string()),
            WsMessage::Pong(p) => {
                assert_eq!(&p[..], b"mid");
                pong = true;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let expected: Vec<String> = (0..300).chain(0..300).map(|i| format!("m{i}")).collect();
    assert_eq!(texts, expected);
    // The pong goes out at the latest with the replies after it.
    if !pong {
        match socket.recv_message().await.unwrap() {
            WsMessage::Pong(p) => assert_eq!(&p[..], b"mid"),
            other => panic!("expected the pong, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_reply_inside_a_batch_is_not_held_until_the_next_receive() {
    // The handler answers the first message of a two-message batch, then
    // works for a while before it reads the second: the first reply must
    // leave at once, not when the handler next reads.
    let app = Switchboard::new().route("/slow", |ws: WebSocketUpgrade| async move {
        let mut ws = ws.accept().await?;
        while let Some(message) = ws.recv().await? {
            ws.send(message).await?;
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
        Ok::<(), Error>(())
    });
    let server = spawn_server(app).await;
    let mut socket = TestClient::tcp(server.addr)
        .with_timeout(TIMEOUT)
        .connect("/slow")
        .await
        .unwrap();
    let started = Instant::now();
    socket.send_raw(&batch(2)).await.unwrap();
    assert_eq!(socket.recv_text().await.unwrap().as_str(), "m0");
    let first = started.elapsed();
    assert!(
        first < Duration::from_millis(700),
        "the first reply took {first:?}: it waited for the handler's next read"
    );
    assert_eq!(socket.recv_text().await.unwrap().as_str(), "m1");
    assert!(started.elapsed() >= Duration::from_millis(1400));
}
