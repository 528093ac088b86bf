//! The HTTP surface, safe by default: every attack sent for real over TCP,
//! with its exact status, and the old ways that must keep working.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use support::{Gateway, Options, Response, parse_response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const KEY: &str = "a-test-api-key-of-thirty-two-bytes!!";

/// One raw HTTP/1.1 request: `head` is everything after the request line
/// (each header line ending in `\r\n`), `body` follows.
async fn raw(addr: SocketAddr, line: &str, head: &str, body: &str) -> Response {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{line} HTTP/1.1\r\n{head}connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out))
        .await
        .expect("an answer")
        .unwrap();
    parse_response(&out)
}

fn host(gw: &Gateway) -> String {
    format!("host: {}\r\n", gw.addr)
}

const PUBLISH: &str = r#"{"target": {"all": true}, "text": "hi"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_refuses_what_a_browser_could_send_without_asking() {
    let gw = Gateway::start(&[]);
    let line = "POST /api/v1/publish";
    // A form post from any page (text/plain needs no preflight): 415.
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ] {
        let head = format!("{}content-type: {content_type}\r\n", host(&gw));
        let response = raw(gw.addr, line, &head, PUBLISH).await;
        assert_eq!(response.status, 415, "{content_type}");
        assert_eq!(response.json()["error"]["code"], "unsupported_media_type");
    }
    let head = host(&gw);
    assert_eq!(
        raw(gw.addr, line, &head, PUBLISH).await.status,
        415,
        "no content type"
    );
    // A cross-origin request, even with the right content type (the
    // browser would have asked first; the answer is no): 403.
    let head = format!(
        "{}origin: http://evil.example\r\ncontent-type: application/json\r\n",
        host(&gw)
    );
    let response = raw(gw.addr, line, &head, PUBLISH).await;
    assert_eq!(response.status, 403);
    assert!(
        response.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("api.cors_origins")
    );
    let preflight = format!(
        "{}origin: http://evil.example\r\naccess-control-request-method: POST\r\n",
        host(&gw)
    );
    let response = raw(gw.addr, "OPTIONS /api/v1/publish", &preflight, "").await;
    assert_eq!(response.status, 403);
    assert!(response.header("access-control-allow-origin").is_none());
    // Same on a GET: the API's answers are not for other origins' pages.
    let head = format!("{}origin: http://evil.example\r\n", host(&gw));
    assert_eq!(
        raw(gw.addr, "GET /api/v1/connections", &head, "")
            .await
            .status,
        403
    );

    // What keeps working: curl with the JSON content type, and UTF-8 too.
    for content_type in ["application/json", "application/json; charset=utf-8"] {
        let head = format!("{}content-type: {content_type}\r\n", host(&gw));
        assert_eq!(
            raw(gw.addr, line, &head, PUBLISH).await.status,
            200,
            "{content_type}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_origins_get_cors_and_a_preflight() {
    let dir = std::env::temp_dir().join(format!("sb-cors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        "[api]\ncors_origins = [\"https://admin.example.com\"]\n",
    )
    .unwrap();
    let gw = Gateway::start_with(&Options {
        args: vec!["--config".into(), config.display().to_string()],
        ..Options::default()
    });
    let preflight = format!(
        "{}origin: https://admin.example.com\r\naccess-control-request-method: POST\r\naccess-control-request-headers: content-type\r\n",
        host(&gw)
    );
    let response = raw(gw.addr, "OPTIONS /api/v1/publish", &preflight, "").await;
    assert_eq!(response.status, 204);
    assert_eq!(
        response.header("access-control-allow-origin"),
        Some("https://admin.example.com")
    );
    assert!(
        response
            .header("access-control-allow-methods")
            .unwrap()
            .contains("POST")
    );
    assert!(
        response
            .header("access-control-allow-headers")
            .unwrap()
            .contains("content-type")
    );
    let head = format!(
        "{}origin: https://admin.example.com\r\ncontent-type: application/json\r\n",
        host(&gw)
    );
    let response = raw(gw.addr, "POST /api/v1/publish", &head, PUBLISH).await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("access-control-allow-origin"),
        Some("https://admin.example.com")
    );
    let head = format!(
        "{}origin: https://evil.example\r\ncontent-type: application/json\r\n",
        host(&gw)
    );
    assert_eq!(
        raw(gw.addr, "POST /api/v1/publish", &head, PUBLISH)
            .await
            .status,
        403
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebinding_host_is_refused_with_421_on_every_route_and_the_upgrade() {
    let gw = Gateway::start(&[]);
    let port = gw.addr.port();
    let evil = format!("host: rebind.evil.example:{port}\r\n");
    for line in [
        "GET /api/v1/connections",
        "GET /",
        "GET /metrics",
        "GET /healthz",
    ] {
        let response = raw(gw.addr, line, &evil, "").await;
        assert_eq!(response.status, 421, "{line}");
    }
    let response = raw(gw.addr, "GET /api/v1/connections", &evil, "").await;
    assert_eq!(response.json()["error"]["code"], "misdirected_request");
    // The WebSocket upgrade too, even with a matching Origin (a rebinding
    // page's origin matches its own host).
    let upgrade = gw
        .ws_client()
        .request("/ws/echo")
        .header("host", &format!("rebind.evil.example:{port}"))
        .origin(&format!("http://rebind.evil.example:{port}"))
        .connect()
        .await;
    match upgrade {
        Err(switchboard::TestError::Rejected { status, reason, .. }) => {
            assert_eq!(
                (status.as_u16(), reason.as_str()),
                (421, "Host not allowed")
            );
        }
        other => panic!("expected 421, got {other:?}"),
    }
    // The names it serves pass: its address, localhost.
    for name in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
        let head = format!("host: {name}\r\n");
        assert_eq!(
            raw(gw.addr, "GET /api/v1/connections", &head, "")
                .await
                .status,
            200,
            "{name}"
        );
        let mut ws = gw
            .ws_client()
            .request("/ws/echo")
            .header("host", &name)
            .connect()
            .await
            .expect("the upgrade");
        ws.send_text("ok").await.unwrap();
        assert_eq!(ws.recv_text().await.unwrap(), "ok");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_reverse_proxy_the_public_name_is_configured() {
    // A proxy on this host forwards wss://ws.example.com to the gateway on
    // loopback, keeping Host: server.public applies the public rules.
    let gw = Gateway::start_with(&Options {
        args: vec!["--public".into()],
        env: vec![
            ("SWITCHBOARD_ALLOWED_HOSTS", "ws.example.com".to_owned()),
            ("SWITCHBOARD_API_KEY", KEY.to_owned()),
        ],
        ..Options::default()
    });
    let head = format!("host: ws.example.com\r\nauthorization: Bearer {KEY}\r\n");
    assert_eq!(
        raw(gw.addr, "GET /api/v1/connections", &head, "")
            .await
            .status,
        200
    );
    let mut ws = gw
        .ws_client()
        .request("/ws/echo")
        .header("host", "ws.example.com")
        .origin("https://ws.example.com")
        .connect()
        .await
        .unwrap();
    ws.send_text("through the proxy").await.unwrap();
    assert_eq!(ws.recv_text().await.unwrap(), "through the proxy");
    // Public: no demo page, /metrics behind the key.
    let head = "host: ws.example.com\r\n";
    assert_eq!(raw(gw.addr, "GET /", head, "").await.status, 404);
    assert_eq!(raw(gw.addr, "GET /metrics", head, "").await.status, 401);
    let keyed = format!("host: ws.example.com\r\nx-api-key: {KEY}\r\n");
    assert_eq!(raw(gw.addr, "GET /metrics", &keyed, "").await.status, 200);
    assert!(
        gw.logs().contains("exposure: reachable from other hosts"),
        "{}",
        gw.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_loopback_metrics_need_the_key_or_their_own_address() {
    // 127.0.0.2 stands in for a public address: --public applies its rules.
    let gw = Gateway::start_with(&Options {
        args: vec!["--listen".into(), "127.0.0.2:0".into(), "--public".into()],
        env: vec![("SWITCHBOARD_API_KEY", KEY.to_owned())],
        no_listen: true,
    });
    let head = format!("host: {}\r\n", gw.addr);
    let response = raw(gw.addr, "GET /metrics", &head, "").await;
    assert_eq!(response.status, 401, "{}", response.body);
    assert_eq!(
        raw(gw.addr, "GET /", &head, "").await.status,
        404,
        "no demo page"
    );

    // Without an API key a public gateway does not start at all.
    let out = support::command()
        .args(["serve", "--listen", "127.0.0.2:0", "--public"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("api.keys") && stderr.contains("metrics"),
        "{stderr}"
    );

    // metrics.listen: on its own address, without a key; not on the main port.
    let port = support::free_port();
    let dir = std::env::temp_dir().join(format!("sb-metrics-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    let gw = Gateway::start_with(&Options {
        args: vec![
            "--public".into(),
            "--config".into(),
            config.display().to_string(),
        ],
        env: vec![("SWITCHBOARD_API_KEY", KEY.to_owned())],
        ..Options::default()
    });
    let own: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut metrics = None;
    for _ in 0..50 {
        if TcpStream::connect(own).await.is_ok() {
            metrics = Some(raw(own, "GET /metrics", &format!("host: {own}\r\n"), "").await);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let metrics = metrics.expect("the metrics listener");
    assert_eq!(metrics.status, 200);
    assert!(metrics.body.contains("switchboard_connections"));
    let keyed = format!("{}x-api-key: {KEY}\r\n", host(&gw));
    assert_eq!(raw(gw.addr, "GET /metrics", &keyed, "").await.status, 404);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_check_says_what_is_exposed_in_one_line() {
    let dir = std::env::temp_dir().join(format!("sb-exposure-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        "[server]\nlisten = \"0.0.0.0:8080\"\n[http]\nallowed_hosts = [\"ws.example.com\"]\n[api]\nkeys = [\"a-test-api-key-of-thirty-two-bytes!!\"]\n",
    )
    .unwrap();
    let out = support::command()
        .args(["config", "check", "--no-env"])
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("exposure:"))
        .expect("an exposure line");
    for part in [
        "reachable from other hosts on 0.0.0.0:8080",
        "ws.example.com",
        "api: key required",
        "metrics: on the main port, key required",
        "demo page: off",
    ] {
        assert!(line.contains(part), "{part} in {line}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_come_from_files_and_a_password_flag_is_warned_about() {
    let dir = std::env::temp_dir().join(format!("sb-secrets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let keys = dir.join("keys");
    std::fs::write(&keys, format!("# the API keys\n{KEY}\n")).unwrap();
    let gw = Gateway::start_with(&Options {
        args: vec![
            "--broker-url".into(),
            "redis://:hunter2-secret@127.0.0.1:1".into(),
        ],
        // Nothing listens on port 1: the gateway starts and retries.
        env: vec![
            ("SWITCHBOARD_API_KEY_FILE", keys.display().to_string()),
            ("SWITCHBOARD_BROKER", "redis".into()),
        ],
        ..Options::default()
    });
    let head = format!("{}authorization: Bearer {KEY}\r\n", host(&gw));
    assert_eq!(
        raw(gw.addr, "GET /api/v1/connections", &head, "")
            .await
            .status,
        200
    );
    assert_eq!(
        raw(gw.addr, "GET /api/v1/connections", &host(&gw), "")
            .await
            .status,
        401
    );
    let logs = gw.logs();
    assert!(logs.contains("--broker-url holds a password"), "{logs}");
    assert!(
        !logs.contains("hunter2-secret"),
        "the password never appears: {logs}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

async fn open(gw: &Gateway, token: Option<&str>) -> switchboard::TestSocket {
    let mut request = gw.ws_client().request("/ws").protocol("switchboard.v1");
    if let Some(token) = token {
        request = request.bearer(token);
    }
    let mut ws = request.connect().await.unwrap();
    let ack: Value = ws.recv_json().await.unwrap();
    assert_eq!(ack["type"], "CONNECT_ACK");
    ws
}

async fn chat(ws: &mut switchboard::TestSocket, id: &str, name: &str) -> Value {
    ws.send_json(
        &json!({"type": "ACTION", "id": id, "payload": {"action": "chat.send",
        "data": {"room": "public:lobby", "text": "hi", "name": name}}}),
    )
    .await
    .unwrap();
    loop {
        let message: Value = ws.recv_json().await.unwrap();
        if message["correlation_id"] == id {
            return message;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_names_are_checked_and_chat_is_rate_limited() {
    let secret = "a-jwt-secret-of-at-least-thirty-two-bytes";
    let dir = std::env::temp_dir().join(format!("sb-chat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        format!("[security.jwt]\nkeys = [{{ algorithm = \"HS256\", secret = \"{secret}\" }}]\n"),
    )
    .unwrap();
    let gw = Gateway::start_with(&Options {
        args: vec!["--config".into(), config.display().to_string()],
        ..Options::default()
    });
    let mut reader = open(&gw, None).await;
    reader
        .send_json(&json!({"type": "SUBSCRIBE", "id": "s", "payload": {"subscriptions": ["public:lobby"]}}))
        .await
        .unwrap();
    let _: Value = reader.recv_json().await.unwrap();

    let token = support::hs256_token(
        secret,
        &json!({"sub": "alice", "name": "Alice A.", "exp": 4102444800u64}),
    );
    let mut alice = open(&gw, Some(&token)).await;
    assert_eq!(
        chat(&mut alice, "a1", "The Admin").await["type"],
        "ACTION_RESULT"
    );
    let mut anon = open(&gw, None).await;
    assert_eq!(
        chat(&mut anon, "b1", "The Admin").await["type"],
        "ACTION_RESULT"
    );
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let message: Value = reader.recv_json().await.unwrap();
        if message["payload"]["event"] == "chat.message" {
            seen.push(message["payload"]["data"].clone());
        }
    }
    assert_eq!(
        seen[0]["name"], "Alice A.",
        "the token's name, not the one sent"
    );
    assert_eq!(
        (seen[0]["user"].clone(), seen[0]["anonymous"].clone()),
        (json!("alice"), json!(false))
    );
    assert_eq!(seen[1]["name"], "The Admin");
    assert_eq!(
        (seen[1]["user"].clone(), seen[1]["anonymous"].clone()),
        (Value::Null, json!(true))
    );

    // Past the burst (10 by default, counting the one above): rate_limited.
    let mut results = Vec::new();
    for i in 0..12 {
        results.push(chat(&mut anon, &format!("b{}", i + 2), "x").await);
    }
    let limited: Vec<&Value> = results.iter().filter(|m| m["type"] == "ERROR").collect();
    assert!(!limited.is_empty(), "some sends were limited");
    assert_eq!(limited[0]["payload"]["code"], "rate_limited");
    assert!(results.iter().take(9).all(|m| m["type"] == "ACTION_RESULT"));
    let _ = std::fs::remove_dir_all(&dir);
}
