//! Routing and the opening handshake: echo round trips, typed path
//! parameters, every HTTP refusal (404, 426, 400, 405, 431, 408, 503) with
//! its status and headers, and subprotocol negotiation.

mod common;

use std::time::{Duration, Instant};

use common::{echo, raw_exchange, rejected, spawn_server, upgrade_request};
use serde::{Deserialize, Serialize};
use switchboard::{
    CloseCode, Error, Path, RouteConfig, ServerConfig, Switchboard, TestClient, WebSocketUpgrade,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TIMEOUT: Duration = Duration::from_secs(3);

fn client(app: Switchboard) -> TestClient {
    TestClient::new(app).with_timeout(TIMEOUT)
}

/// Sends `text` to the client and returns `Ok`, closing with 1000.
async fn reply(ws: WebSocketUpgrade, text: String) -> Result<(), Error> {
    let ws = ws.accept().await?;
    ws.send_text(text).await
}

async fn room(ws: WebSocketUpgrade, Path(room_id): Path<u64>) -> Result<(), Error> {
    reply(ws, format!("room {room_id}")).await
}

async fn pair(ws: WebSocketUpgrade, Path((name, n)): Path<(String, i32)>) -> Result<(), Error> {
    reply(ws, format!("{name}:{n}")).await
}

#[derive(Debug, Deserialize)]
struct Page {
    user: String,
    page: u32,
}

async fn page(ws: WebSocketUpgrade, Path(p): Path<Page>) -> Result<(), Error> {
    reply(ws, format!("{}#{}", p.user, p.page)).await
}

async fn item(ws: WebSocketUpgrade, Path(id): Path<uuid::Uuid>) -> Result<(), Error> {
    reply(ws, id.to_string()).await
}

async fn flags(ws: WebSocketUpgrade, Path((on, ratio)): Path<(bool, f64)>) -> Result<(), Error> {
    reply(ws, format!("{on} {ratio}")).await
}

fn routes() -> Switchboard {
    Switchboard::new()
        .route("/ws/echo", echo)
        .route("/ws/chat/{room_id}", room)
        .route("/ws/rooms/{name}/{n}", pair)
        .route("/ws/users/{user}/{page}", page)
        .route("/ws/items/{id}", item)
        .route("/ws/flags/{on}/{ratio}", flags)
}

#[tokio::test]
async fn echo_round_trips_text_binary_and_json() {
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Point {
        x: i32,
        label: String,
    }
    let mut ws = client(routes()).connect("/ws/echo").await.unwrap();
    ws.send_text("héllo").await.unwrap();
    assert_eq!(ws.recv_text().await.unwrap(), "héllo");
    ws.send_binary(&[0, 1, 2, 255]).await.unwrap();
    assert_eq!(&ws.recv_bytes().await.unwrap()[..], &[0, 1, 2, 255]);
    let point = Point {
        x: -7,
        label: "p".into(),
    };
    ws.send_json(&point).await.unwrap();
    assert_eq!(ws.recv_json::<Point>().await.unwrap(), point);
    // An empty message and one past the 125-byte and 64 KiB length encodings.
    ws.send_text("").await.unwrap();
    assert_eq!(ws.recv_text().await.unwrap(), "");
    let big = vec![0xA5u8; 70_000];
    ws.send_binary(&big).await.unwrap();
    assert_eq!(&ws.recv_bytes().await.unwrap()[..], &big[..]);
    let reply = ws.close(CloseCode::Normal, "").await.unwrap();
    assert_eq!(reply.map(|f| f.code), Some(CloseCode::Normal));
}

#[tokio::test]
async fn typed_u64_path_parameter_reaches_the_handler() {
    let mut ws = client(routes()).connect("/ws/chat/42").await.unwrap();
    assert_eq!(ws.recv_text().await.unwrap(), "room 42");
    assert_eq!(common::close_code(&mut ws).await, CloseCode::Normal);
}

#[tokio::test]
async fn percent_encoded_path_parameter_is_decoded() {
    let mut ws = client(routes())
        .connect("/ws/rooms/caf%C3%A9%20bar/7")
        .await
        .unwrap();
    assert_eq!(ws.recv_text().await.unwrap(), "café bar:7");
}

#[tokio::test]
async fn non_numeric_path_parameter_is_400_naming_the_parameter() {
    let (status, reason, _) = rejected(client(routes()).connect("/ws/chat/lobby").await);
    assert_eq!(status, 400);
    assert!(reason.contains("room_id"), "reason: {reason}");
    let (status, reason, _) = rejected(client(routes()).connect("/ws/chat/-1").await);
    assert_eq!(status, 400);
    assert!(reason.contains("room_id"), "reason: {reason}");
}

#[tokio::test]
async fn several_path_parameters_extract_as_a_tuple() {
    let mut ws = client(routes())
        .connect("/ws/rooms/lobby/-3")
        .await
        .unwrap();
    assert_eq!(ws.recv_text().await.unwrap(), "lobby:-3");
    let (status, reason, _) = rejected(client(routes()).connect("/ws/rooms/lobby/x").await);
    assert_eq!(status, 400);
    assert!(reason.contains('n'), "reason: {reason}");
}

#[tokio::test]
async fn several_path_parameters_extract_as_a_struct() {
    let mut ws = client(routes()).connect("/ws/users/ada/3").await.unwrap();
    assert_eq!(ws.recv_text().await.unwrap(), "ada#3");
    let (status, reason, _) = rejected(client(routes()).connect("/ws/users/ada/first").await);
    assert_eq!(status, 400);
    assert!(reason.contains("page"), "reason: {reason}");
}

#[tokio::test]
async fn uuid_path_parameter_parses_and_a_bad_one_is_400() {
    let id = "67e55044-10b1-426f-9247-bb680e5fe0c8";
    let mut ws = client(routes())
        .connect(&format!("/ws/items/{id}"))
        .await
        .unwrap();
    assert_eq!(ws.recv_text().await.unwrap(), id);
    let (status, reason, _) = rejected(client(routes()).connect("/ws/items/not-a-uuid").await);
    assert_eq!(status, 400);
    assert!(reason.contains("id"), "reason: {reason}");
}

#[tokio::test]
async fn bool_and_f64_path_parameters_parse() {
    let mut ws = client(routes())
        .connect("/ws/flags/true/0.25")
        .await
        .unwrap();
    assert_eq!(ws.recv_text().await.unwrap(), "true 0.25");
    let (status, reason, _) = rejected(client(routes()).connect("/ws/flags/yes/0.25").await);
    assert_eq!(status, 400);
    assert!(reason.contains("on"), "reason: {reason}");
    let (status, reason, _) = rejected(client(routes()).connect("/ws/flags/false/half").await);
    assert_eq!(status, 400);
    assert!(reason.contains("ratio"), "reason: {reason}");
}

#[tokio::test]
async fn unknown_path_is_404() {
    let (status, _, _) = rejected(client(routes()).connect("/ws/nowhere").await);
    assert_eq!(status, 404);
    let (status, _, _) = rejected(client(routes()).connect("/ws/chat").await);
    assert_eq!(status, 404);
}

#[tokio::test]
async fn an_empty_path_parameter_matches_no_route() {
    // `{room_id}` needs a segment: `/ws/chat/` is not `/ws/chat/{room_id}`
    // with an empty id.
    for path in ["/ws/chat/", "/ws/rooms//3", "/ws/rooms/lobby/"] {
        let (status, _, _) = rejected(client(routes()).connect(path).await);
        assert_eq!(status, 404, "{path}");
    }
    // A non-empty parameter still matches.
    let mut ws = client(routes()).connect("/ws/rooms/lobby/3").await.unwrap();
    assert_eq!(ws.recv_text().await.unwrap(), "lobby:3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_get_is_426() {
    let server = spawn_server(routes()).await;
    let response = raw_exchange(
        server.addr,
        b"GET /ws/echo HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    )
    .await;
    assert_eq!(response.status, 426, "{response:?}");
    assert_eq!(response.header("upgrade"), Some("websocket"));
    assert_eq!(response.header("connection"), Some("close"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_version_8_is_426_naming_version_13() {
    let server = spawn_server(routes()).await;
    let request = "GET /ws/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    let response = raw_exchange(server.addr, request.as_bytes()).await;
    assert_eq!(response.status, 426, "{response:?}");
    assert_eq!(response.header("sec-websocket-version"), Some("13"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_malformed_key_is_400() {
    let server = spawn_server(routes()).await;
    let request = "GET /ws/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let response = raw_exchange(server.addr, request.as_bytes()).await;
    assert_eq!(response.status, 400, "{response:?}");
    assert!(response.body.contains("Sec-WebSocket-Key"), "{response:?}");
    // Eight bytes of base64 instead of sixteen.
    let request = "GET /ws/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: AAAAAAAAAAA=\r\n\r\n";
    let response = raw_exchange(server.addr, request.as_bytes()).await;
    assert_eq!(response.status, 400, "{response:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_connection_upgrade_is_400() {
    let server = spawn_server(routes()).await;
    let request = "GET /ws/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: keep-alive\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    let response = raw_exchange(server.addr, request.as_bytes()).await;
    assert_eq!(response.status, 400, "{response:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_upgrade_is_405() {
    let server = spawn_server(routes()).await;
    let request = upgrade_request("/ws/echo", "").replacen("GET", "POST", 1);
    let response = raw_exchange(server.addr, request.as_bytes()).await;
    assert_eq!(response.status, 405, "{response:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_upgrade_request_gets_101_with_the_rfc_accept_key() {
    let server = spawn_server(routes()).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(upgrade_request("/ws/echo", "").as_bytes())
        .await
        .unwrap();
    let response = common::read_response(&mut stream, TIMEOUT).await;
    assert_eq!(response.status, 101, "{response:?}");
    assert_eq!(
        response.header("sec-websocket-accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
    assert_eq!(response.header("sec-websocket-protocol"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_flood_of_150_headers_is_431() {
    let server = spawn_server(routes()).await;
    let extra: String = (0..150).map(|i| format!("X-Flood-{i}: {i}\r\n")).collect();
    let request = upgrade_request("/ws/echo", &extra);
    assert!(request.len() < 16 * 1024);
    let response = raw_exchange(server.addr, request.as_bytes()).await;
    assert_eq!(response.status, 431, "{response:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_over_16_kib_is_431() {
    let server = spawn_server(routes()).await;
    // Few headers, but one of them 17 KiB long.
    let extra = format!("X-Big: {}\r\n", "a".repeat(17 * 1024));
    let response = raw_exchange(server.addr, upgrade_request("/ws/echo", &extra).as_bytes()).await;
    assert_eq!(response.status, 431, "{response:?}");
    // A head that never ends: 20 KiB without a blank line.
    let endless = format!(
        "GET /ws/echo HTTP/1.1\r\nX-Endless: {}",
        "b".repeat(20 * 1024)
    );
    let response = raw_exchange(server.addr, endless.as_bytes()).await;
    assert_eq!(response.status, 431, "{response:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_handshake_gets_408_and_is_closed_near_the_deadline() {
    let deadline = Duration::from_millis(300);
    let server = spawn_server(
        routes().with_config(ServerConfig::default().with_handshake_timeout(deadline)),
    )
    .await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let started = Instant::now();
    stream
        .write_all(b"GET /ws/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: webso")
        .await
        .unwrap();
    let response = common::read_response(&mut stream, Duration::from_secs(2)).await;
    assert_eq!(response.status, 408, "{response:?}");
    // Then the server closes: read to EOF.
    let eof = tokio::time::timeout(Duration::from_secs(2), async {
        let mut sink = [0u8; 256];
        while stream.read(&mut sink).await.map(|n| n > 0).unwrap_or(false) {}
    })
    .await;
    let elapsed = started.elapsed();
    assert!(eof.is_ok(), "the server did not close the connection");
    assert!(
        elapsed >= deadline - Duration::from_millis(50),
        "closed before the deadline: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(2), "closed late: {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cap_answers_503_with_retry_after_and_frees_the_slot() {
    let server =
        spawn_server(routes().with_config(ServerConfig::default().with_max_connections(1))).await;
    let client = TestClient::tcp(server.addr).with_timeout(TIMEOUT);
    let mut first = client.connect("/ws/echo").await.unwrap();
    first.send_text("still here").await.unwrap();
    assert_eq!(first.recv_text().await.unwrap(), "still here");

    let (status, _, headers) = rejected(client.connect("/ws/echo").await);
    assert_eq!(status, 503);
    let retry_after = headers.get("retry-after").expect("a retry-after header");
    assert!(
        retry_after.to_str().unwrap().parse::<u64>().is_ok(),
        "{retry_after:?}"
    );

    // The first connection is unaffected, and once it is gone the slot is free.
    first.send_text("after").await.unwrap();
    assert_eq!(first.recv_text().await.unwrap(), "after");
    first.close(CloseCode::Normal, "").await.unwrap();
    let app = server.app.clone();
    assert!(
        common::eventually(Duration::from_secs(3), || app.connection_count() == 0).await,
        "connection count stuck at {}",
        app.connection_count()
    );
    let mut third = client.connect("/ws/echo").await.unwrap();
    third.send_text("third").await.unwrap();
    assert_eq!(third.recv_text().await.unwrap(), "third");
}

// --- Subprotocols ---------------------------------------------------------

/// Reports the socket's agreed protocol (or "none") to the client.
async fn report_protocol(ws: WebSocketUpgrade) -> Result<(), Error> {
    let ws = ws.accept().await?;
    let protocol = ws.protocol().unwrap_or("none").to_owned();
    ws.send_text(protocol).await
}

fn protocol_routes() -> Switchboard {
    let speaks = RouteConfig::default().with_protocols(["chat.v2", "chat.v1"]);
    Switchboard::new()
        .route_with("/ws/proto", speaks.clone(), report_protocol)
        .route_with("/ws/strict", speaks.require_protocol(), report_protocol)
        .route("/ws/pick", |ws: WebSocketUpgrade| async move {
            let ws = ws.with_protocol("chat.v3")?;
            report_protocol(ws).await
        })
        .route("/ws/custom", |ws: WebSocketUpgrade| async move {
            let ws = ws.with_protocol("x.custom")?;
            report_protocol(ws).await
        })
}

#[tokio::test]
async fn first_protocol_the_client_offers_that_the_route_speaks_wins() {
    let client = client(protocol_routes());
    let mut ws = client
        .request("/ws/proto")
        .protocol("chat.v1")
        .protocol("chat.v2")
        .connect()
        .await
        .unwrap();
    assert_eq!(ws.protocol(), Some("chat.v1"));
    assert_eq!(ws.recv_text().await.unwrap(), "chat.v1");

    // Offers the route does not speak are skipped.
    let mut ws = client
        .request("/ws/proto")
        .protocol("mqtt")
        .protocol("chat.v2")
        .connect()
        .await
        .unwrap();
    assert_eq!(ws.protocol(), Some("chat.v2"));
    assert_eq!(ws.recv_text().await.unwrap(), "chat.v2");
}

#[tokio::test]
async fn no_protocol_offered_connects_without_one() {
    let client = client(protocol_routes());
    let mut ws = client.connect("/ws/proto").await.unwrap();
    assert_eq!(ws.protocol(), None);
    assert!(
        ws.response_headers()
            .get("sec-websocket-protocol")
            .is_none()
    );
    assert_eq!(ws.recv_text().await.unwrap(), "none");
    // Offering only unknown protocols is the same.
    let mut ws = client
        .request("/ws/proto")
        .protocol("mqtt")
        .connect()
        .await
        .unwrap();
    assert_eq!(ws.protocol(), None);
    assert_eq!(ws.recv_text().await.unwrap(), "none");
}

#[tokio::test]
async fn required_protocol_not_offered_is_400() {
    let client = client(protocol_routes());
    let (status, reason, _) = rejected(client.connect("/ws/strict").await);
    assert_eq!(status, 400);
    assert!(reason.contains("chat.v2"), "reason: {reason}");
    let (status, _, _) = rejected(
        client
            .request("/ws/strict")
            .protocol("mqtt")
            .connect()
            .await,
    );
    assert_eq!(status, 400);
    let mut ws = client
        .request("/ws/strict")
        .protocol("chat.v2")
        .connect()
        .await
        .unwrap();
    assert_eq!(ws.protocol(), Some("chat.v2"));
    assert_eq!(ws.recv_text().await.unwrap(), "chat.v2");
}

#[tokio::test]
async fn handler_choosing_a_protocol_not_offered_is_400() {
    let client = client(protocol_routes());
    let (status, reason, _) = rejected(
        client
            .request("/ws/pick")
            .protocol("chat.v1")
            .connect()
            .await,
    );
    assert_eq!(status, 400);
    assert!(reason.contains("chat.v3"), "reason: {reason}");
}

#[tokio::test]
async fn handler_may_choose_any_protocol_the_client_offered() {
    let client = client(protocol_routes());
    let mut ws = client
        .request("/ws/custom")
        .protocol("chat.v1")
        .protocol("x.custom")
        .connect()
        .await
        .unwrap();
    assert_eq!(ws.protocol(), Some("x.custom"));
    assert_eq!(ws.recv_text().await.unwrap(), "x.custom");
}

#[tokio::test]
async fn handler_that_drops_the_upgrade_answers_500() {
    let app = Switchboard::new().route("/ws/drop", |_ws: WebSocketUpgrade| async {});
    let (status, _, _) = rejected(client(app).connect("/ws/drop").await);
    assert_eq!(status, 500);
}

#[tokio::test]
async fn handler_rejection_carries_its_status_and_reason() {
    let app = Switchboard::new().route("/ws/auth", |ws: WebSocketUpgrade| async move {
        if ws.request().header("authorization") != Some("Bearer ok") {
            return Err(ws.reject(http::StatusCode::UNAUTHORIZED, "bad token"));
        }
        report_protocol(ws).await
    });
    let client = client(app);
    let (status, reason, _) = rejected(client.request("/ws/auth").bearer("no").connect().await);
    assert_eq!((status, reason.as_str()), (401, "bad token"));
    let mut ws = client
        .request("/ws/auth")
        .bearer("ok")
        .connect()
        .await
        .unwrap();
    assert_eq!(ws.recv_text().await.unwrap(), "none");
}

#[tokio::test]
async fn frames_sent_with_the_request_head_are_not_lost() {
    // A client may pipeline its first frame right behind the request head.
    let running = spawn_server(routes()).await;
    let mut stream = TcpStream::connect(running.addr).await.unwrap();
    let mut bytes = upgrade_request("/ws/echo", "").into_bytes();
    bytes.extend(common::frame(common::FIN | 0x1, b"early", true));
    stream.write_all(&bytes).await.unwrap();
    let response = common::read_response(&mut stream, TIMEOUT).await;
    assert_eq!(response.status, 101);
    // The echo: an unmasked text frame "early", possibly already read.
    let mut got = response.rest;
    tokio::time::timeout(TIMEOUT, async {
        while got.len() < 7 {
            let mut chunk = [0u8; 64];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed early");
            got.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .expect("the echo within the deadline");
    assert_eq!(&got[..7], b"\x81\x05early");
}
