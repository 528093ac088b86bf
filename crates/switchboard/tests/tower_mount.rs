//! Switchboard's routes mounted inside an axum `Router` (axum is the
//! listener): one real server on 127.0.0.1:0 serves a plain HTTP route and
//! the WebSocket routes, and a WebSocket client over TCP gets exactly what
//! Switchboard's own listener gives: path parameters, refusals, deflate,
//! the hub, limits, shutdown.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use http::StatusCode;
use hyper_util::rt::TokioIo;
use switchboard::security::{
    ApiKeyAuth, Identity, IsAuthenticated, RateLimit, Security, TrustedProxies,
};
use switchboard::{
    App, ClientAddr, CloseCode, DeflateConfig, Error, Limits, Outgoing, Path, RouteConfig,
    ServerConfig, Switchboard, TestClient, TestError, WebSocketUpgrade,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::Service;

/// Echoes with the room's name; `whoami` answers with the peer address and
/// the client address the security pipeline settled on.
async fn room(
    ws: WebSocketUpgrade,
    Path(room): Path<String>,
    ClientAddr(peer): ClientAddr,
) -> Result<(), Error> {
    let mut ws = ws.accept().await?;
    ws.join(room.as_str());
    while let Some(text) = ws.recv_text().await? {
        let reply = if text == "whoami" {
            format!("{} {}", peer.ip(), ws.request().client_ip())
        } else {
            format!("{room}: {text}")
        };
        ws.send_text(reply).await?;
    }
    Ok(())
}

async fn counter(ws: WebSocketUpgrade, Path(id): Path<u64>) -> Result<(), Error> {
    let ws = ws.accept().await?;
    ws.send_text(format!("counter {id}")).await
}

/// The Switchboard app every test mounts; built afresh for each server so
/// rate limits and caps count for that server alone.
fn switchboard(config: ServerConfig) -> Switchboard {
    let guarded = Security::new()
        .allow_origins(["https://app.example.com"])
        .authenticate(ApiKeyAuth::new().key("k-alice", Identity::new("alice")))
        .guard(IsAuthenticated);
    let limited = Security::new().rate_limit(RateLimit::per_minute(1.0).with_burst(1));
    Switchboard::new()
        .route_with(
            "/ws/rooms/{room}",
            RouteConfig::default()
                .with_compression(Some(DeflateConfig::default()))
                .with_protocols(["chat.v2", "chat.v1"])
                .with_limits(Limits::default().with_max_message_size(1024)),
            room,
        )
        .route("/ws/counters/{id}", counter)
        .route_with(
            "/ws/private/{room}",
            RouteConfig::default().with_security(guarded),
            room,
        )
        .route_with(
            "/ws/limited/{room}",
            RouteConfig::default().with_security(limited),
            room,
        )
        .route_with(
            "/ws/strict",
            RouteConfig::default()
                .with_protocols(["chat.v2"])
                .require_protocol(),
            room,
        )
        .with_config(config)
}

/// An axum app with its own HTTP route, and the Switchboard app's routes
/// under `/ws`, on one port with the client address from `ConnectInfo`.
async fn serve(ws: &App) -> SocketAddr {
    let router = Router::new()
        .route("/api/health", get(|| async { "ok" }))
        .route_service("/ws/{*rest}", ws.service());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

/// Sends one raw HTTP/1.1 request and returns the whole response.
async fn http(addr: SocketAddr, path: &str, extra: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request =
        format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n{extra}\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response))
        .await
        .expect("the server answers and closes")
        .unwrap();
    response
}

fn rejected(
    result: Result<switchboard::TestSocket, TestError>,
) -> (StatusCode, String, http::HeaderMap) {
    match result {
        Err(TestError::Rejected {
            status,
            reason,
            headers,
        }) => (status, reason, headers),
        Err(e) => panic!("expected a refusal, got {e}"),
        Ok(_) => panic!("expected a refusal, got 101"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_serves_its_http_route_and_switchboard_routes_on_one_port() {
    let ws = switchboard(ServerConfig::default()).into_app();
    let addr = serve(&ws).await;

    let response = http(addr, "/api/health", "").await;
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(response.ends_with("\r\n\r\nok"), "{response}");

    let client = TestClient::tcp(addr);
    let mut socket = client.connect("/ws/rooms/caf%C3%A9").await.unwrap();
    socket.send_text("hello").await.unwrap();
    assert_eq!(socket.recv_text().await.unwrap(), "café: hello");
    socket.send_text("whoami").await.unwrap();
    assert_eq!(socket.recv_text().await.unwrap(), "127.0.0.1 127.0.0.1");

    let mut counter = client.connect("/ws/counters/42").await.unwrap();
    assert_eq!(counter.recv_text().await.unwrap(), "counter 42");
    let close = counter.recv_close().await.unwrap().unwrap();
    assert_eq!(close.code, CloseCode::Normal);

    let reply = socket.close(CloseCode::Normal, "").await.unwrap();
    assert_eq!(reply.unwrap().code, CloseCode::Normal);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_have_the_same_status_reason_and_headers_as_on_switchboards_listener() {
    let ws = switchboard(ServerConfig::default()).into_app();
    let addr = serve(&ws).await;
    let mounted = TestClient::tcp(addr);
    let own = TestClient::new(switchboard(ServerConfig::default()));

    let cases = [
        // Origin first: a bad origin never reaches authentication.
        (
            "/ws/private/a",
            Some("https://evil.example"),
            None,
            StatusCode::FORBIDDEN,
            "Origin not allowed",
        ),
        (
            "/ws/private/a",
            Some("https://app.example.com"),
            None,
            StatusCode::UNAUTHORIZED,
            "Authentication required",
        ),
        (
            "/ws/private/a",
            Some("https://app.example.com"),
            Some("k-mallory"),
            StatusCode::UNAUTHORIZED,
            "Invalid token: unknown API key",
        ),
        (
            "/ws/counters/abc",
            None,
            None,
            StatusCode::BAD_REQUEST,
            "invalid path parameter `id`: cannot parse \"abc\" as u64",
        ),
        (
            "/ws/strict",
            None,
            None,
            StatusCode::BAD_REQUEST,
            "No supported subprotocol offered; this endpoint speaks: chat.v2",
        ),
        (
            "/ws/nowhere",
            None,
            None,
            StatusCode::NOT_FOUND,
            "Not Found",
        ),
    ];
    for (path, origin, token, status, reason) in cases {
        for client in [&mounted, &own] {
            let mut request = client.request(path);
            if let Some(origin) = origin {
                request = request.origin(origin);
            }
            if let Some(token) = token {
                request = request.bearer(token);
            }
            let (got_status, got_reason, _) = rejected(request.connect().await);
            assert_eq!(
                (got_status, got_reason.as_str()),
                (status, reason),
                "{path}"
            );
        }
    }

    let mut socket = mounted
        .request("/ws/private/a")
        .origin("https://app.example.com")
        .bearer("k-alice")
        .connect()
        .await
        .unwrap();
    socket.send_text("in").await.unwrap();
    assert_eq!(socket.recv_text().await.unwrap(), "a: in");
    assert_eq!(ws.hub().user_connections("alice").len(), 1);
}

/// The status line, the headers (lowercased, sorted, without hyper's
/// `date`) and the body of a raw response.
fn parts(response: &str) -> (String, Vec<String>, String) {
    let (head, body) = response
        .split_once("\r\n\r\n")
        .expect("a complete response");
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().to_owned();
    let mut headers: Vec<String> = lines
        .map(str::to_ascii_lowercase)
        .filter(|line| !line.starts_with("date:"))
        .collect();
    headers.sort();
    (status, headers, body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_request_to_a_websocket_route_is_426_as_on_switchboards_listener() {
    let ws = switchboard(ServerConfig::default()).into_app();
    let mounted = serve(&ws).await;
    let own = switchboard(ServerConfig::default())
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let own_addr = own.local_addr();
    tokio::spawn(own.run());

    let (status, headers, body) = parts(&http(mounted, "/ws/rooms/lobby", "").await);
    assert_eq!(status, "HTTP/1.1 426 Upgrade Required");
    assert_eq!(body, "this endpoint speaks WebSocket only");
    assert!(
        headers.contains(&"upgrade: websocket".to_owned()),
        "{headers:?}"
    );
    assert_eq!(
        (status, headers, body),
        parts(&http(own_addr, "/ws/rooms/lobby", "").await)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_the_connection_cap_answer_with_retry_after() {
    let ws = switchboard(ServerConfig::default().with_max_connections(2)).into_app();
    let addr = serve(&ws).await;
    let client = TestClient::tcp(addr);

    let _first = client.connect("/ws/limited/a").await.unwrap();
    let (status, reason, headers) = rejected(client.connect("/ws/limited/a").await);
    assert_eq!(
        (status, reason.as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded")
    );
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");

    let _second = client.connect("/ws/rooms/a").await.unwrap();
    let (status, reason, headers) = rejected(client.connect("/ws/rooms/a").await);
    assert_eq!(
        (status, reason.as_str()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "Server at connection capacity"
        )
    );
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(ws.connection_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subprotocol_deflate_and_message_limits_are_negotiated_and_enforced() {
    let ws = switchboard(ServerConfig::default()).into_app();
    let addr = serve(&ws).await;
    let mut socket = TestClient::tcp(addr)
        .request("/ws/rooms/zip")
        .protocol("chat.v0")
        .protocol("chat.v1")
        .deflate()
        .connect()
        .await
        .unwrap();
    // The client's first offer that the route speaks.
    assert_eq!(socket.protocol(), Some("chat.v1"));
    assert_eq!(
        socket.extensions(),
        Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
    );
    socket.send_compressed_text("squeezed").await.unwrap();
    assert_eq!(socket.recv_text().await.unwrap(), "zip: squeezed");

    socket.send_text(&"x".repeat(2000)).await.unwrap();
    let close = socket.recv_close().await.unwrap().unwrap();
    assert_eq!(close.code, CloseCode::TooBig);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_sees_mounted_connections_and_broadcasts_reach_them() {
    let ws = switchboard(ServerConfig::default()).into_app();
    let addr = serve(&ws).await;
    let mut socket = TestClient::tcp(addr)
        .connect("/ws/rooms/news")
        .await
        .unwrap();
    socket.send_text("ready").await.unwrap();
    assert_eq!(socket.recv_text().await.unwrap(), "news: ready");

    let hub = ws.hub();
    let connections = hub.connections();
    assert_eq!(connections.len(), 1);
    assert_eq!(connections[0].path, "/ws/rooms/news");
    assert_eq!(
        connections[0].client_addr.ip(),
        IpAddr::from([127, 0, 0, 1])
    );
    assert_eq!(hub.room_size("news"), 1);
    assert_eq!(hub.send_to_room("news", &Outgoing::text("extra"), None), 1);
    assert_eq!(socket.recv_text().await.unwrap(), "extra");
    assert_eq!(hub.broadcast(&Outgoing::text("to all"), None), 1);
    assert_eq!(socket.recv_text().await.unwrap(), "to all");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_mounted_connections_with_1001_and_drains() {
    let ws = switchboard(ServerConfig::default()).into_app();
    let addr = serve(&ws).await;
    let client = TestClient::tcp(addr);
    let mut sockets = Vec::new();
    for room in ["a", "b"] {
        let mut socket = client.connect(&format!("/ws/rooms/{room}")).await.unwrap();
        socket.send_text("up").await.unwrap();
        socket.recv_text().await.unwrap();
        sockets.push(socket);
    }
    assert_eq!(ws.connection_count(), 2);

    let shutdown = ws.shutdown_handle();
    shutdown.shutdown();
    for socket in &mut sockets {
        let close = socket.recv_close().await.unwrap().unwrap();
        assert_eq!(close.code, CloseCode::Away);
    }
    tokio::time::timeout(Duration::from_secs(5), shutdown.drained())
        .await
        .expect("every mounted connection ends");
    assert_eq!(ws.connection_count(), 0);

    // One that completes its handshake afterwards is closed at once.
    let mut late = client.connect("/ws/rooms/a").await.unwrap();
    let close = late.recv_close().await.unwrap().unwrap();
    assert_eq!(close.code, CloseCode::Away);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_graceful_shutdown_waits_for_websocket_connections() {
    let ws = switchboard(ServerConfig::default()).into_app();
    let router = Router::new()
        .route("/api/health", get(|| async { "ok" }))
        .route_service("/ws/{*rest}", ws.service());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(ws.graceful_shutdown(async {
            let _ = stopped.await;
        }))
        .into_future(),
    );
    let mut socket = TestClient::tcp(addr).connect("/ws/rooms/a").await.unwrap();
    socket.send_text("up").await.unwrap();
    socket.recv_text().await.unwrap();

    stop.send(()).unwrap();
    // The client takes its time to answer the server's 1001.
    let frame = socket.recv_message().await.unwrap();
    assert!(
        matches!(&frame, switchboard::ws::Message::Close(Some(f)) if f.code == CloseCode::Away),
        "{frame:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !server.is_finished(),
        "axum::serve returned while a WebSocket connection was still open"
    );
    assert_eq!(ws.connection_count(), 1);
    socket.send_close(CloseCode::Away, "").await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("axum::serve returns once the WebSocket connections are gone")
        .unwrap()
        .unwrap();
    assert_eq!(ws.connection_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxys_forwarded_address_is_the_client_address() {
    let proxies = TrustedProxies::new(["127.0.0.0/8"]).unwrap();
    let ws = switchboard(ServerConfig::default().with_trusted_proxies(proxies)).into_app();
    let addr = serve(&ws).await;
    let mut socket = TestClient::tcp(addr)
        .request("/ws/rooms/a")
        .header("x-forwarded-for", "203.0.113.7")
        .connect()
        .await
        .unwrap();
    socket.send_text("whoami").await.unwrap();
    assert_eq!(socket.recv_text().await.unwrap(), "127.0.0.1 203.0.113.7");

    // Not a trusted proxy: the header is ignored.
    let ws = switchboard(ServerConfig::default()).into_app();
    let addr = serve(&ws).await;
    let mut socket = TestClient::tcp(addr)
        .request("/ws/rooms/a")
        .header("x-forwarded-for", "203.0.113.7")
        .connect()
        .await
        .unwrap();
    socket.send_text("whoami").await.unwrap();
    assert_eq!(socket.recv_text().await.unwrap(), "127.0.0.1 127.0.0.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_connect_info_the_service_refuses_with_500() {
    let ws = switchboard(ServerConfig::default()).into_app();
    let router = Router::new().fallback_service(ws.service());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let (status, reason, _) = rejected(TestClient::tcp(addr).connect("/ws/rooms/a").await);
    assert_eq!(
        (status, reason.as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, "Client address unknown")
    );
    assert_eq!(ws.connection_count(), 0);
}

/// hyper without axum: the caller inserts the client address, and the
/// upgraded socket is handed back as the plain TCP stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_hyper_serves_the_service_with_a_client_addr_extension() {
    let ws = switchboard(ServerConfig::default()).into_app();
    let service = ws.service();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, peer) = listener.accept().await.unwrap();
            let service = service.clone();
            let hyper_service = hyper::service::service_fn(
                move |mut request: http::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(ClientAddr(peer));
                    service.clone().call(request)
                },
            );
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), hyper_service)
                    .with_upgrades(),
            );
        }
    });
    let mut socket = TestClient::tcp(addr)
        .request("/ws/rooms/raw")
        .deflate()
        .connect()
        .await
        .unwrap();
    assert!(socket.extensions().is_some());
    socket.send_compressed_text("over hyper").await.unwrap();
    assert_eq!(socket.recv_text().await.unwrap(), "raw: over hyper");
    socket.send_text("whoami").await.unwrap();
    assert_eq!(socket.recv_text().await.unwrap(), "127.0.0.1 127.0.0.1");
    ws.shutdown_handle().shutdown();
    let close = socket.recv_close().await.unwrap().unwrap();
    assert_eq!(close.code, CloseCode::Away);
}
