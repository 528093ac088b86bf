//! examples/python/fastapi_backend for real: the gateway and the FastAPI
//! backend under uvicorn, driven by a WebSocket client. Connect (session
//! cookie), server-side subscription, subscribe checks on `team:*`, the rpc
//! `orders.create` whose EVENT comes back through the HTTP API, refusal,
//! and the disconnect notification.
//!
//! The example is written with the Python package's proxy helpers
//! (`switchboard_rt.proxy`, `switchboard_rt.fastapi`): the test puts
//! `clients/python/src` on `PYTHONPATH`, so it runs this checkout's package.
//!
//! Needs `python3` with `fastapi`, `uvicorn` and `httpx` (the package's one
//! dependency). Without them the test says so loudly and skips, unless
//! SWITCHBOARD_REQUIRE_FASTAPI is set (CI sets it): then it fails.

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use support::{Gateway, Options, free_port};
use switchboard::{CloseCode, TestSocket};

const SECRET: &str = "ci-secret-for-the-fastapi-example";

fn example_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/python/fastapi_backend")
}

/// `clients/python/src` first on `PYTHONPATH`: the package the example imports.
fn python_path() -> String {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../clients/python/src");
    match std::env::var("PYTHONPATH") {
        Ok(rest) if !rest.is_empty() => format!("{}:{rest}", src.display()),
        _ => src.display().to_string(),
    }
}

fn python_has_fastapi() -> bool {
    Command::new("python3")
        .args(["-c", "import fastapi, uvicorn, httpx"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// uvicorn, killed (by PID) when dropped.
struct Uvicorn(Child);

impl Drop for Uvicorn {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_for_port(port: u16) {
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("uvicorn did not listen on {port} within 15 s");
}

async fn next_of(ws: &mut TestSocket, kind: &str) -> Value {
    for _ in 0..20 {
        let message: Value = ws.recv_json().await.unwrap();
        if message["type"] == kind {
            return message;
        }
    }
    panic!("no {kind}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fastapi_backend_drives_connect_subscribe_rpc_and_disconnect() {
    if !python_has_fastapi() {
        let message = "python3 with fastapi, uvicorn and httpx not found: pip install -r examples/python/fastapi_backend/requirements.txt";
        if std::env::var_os("SWITCHBOARD_REQUIRE_FASTAPI").is_some() {
            panic!("{message} (SWITCHBOARD_REQUIRE_FASTAPI is set)");
        }
        eprintln!(
            "\n{}\n!! SKIPPED: {message}\n{}\n",
            "!".repeat(78),
            "!".repeat(78)
        );
        return;
    }
    let backend_port = free_port();
    let config = std::fs::read_to_string(example_dir().join("switchboard.toml"))
        .unwrap()
        .replace("127.0.0.1:8000", &format!("127.0.0.1:{backend_port}"));
    let config_path = std::env::temp_dir().join(format!(
        "switchboard-fastapi-{}-{}.toml",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&config_path, config).unwrap();
    let gw = Gateway::start_with(&Options {
        args: vec!["--config".into(), config_path.to_str().unwrap().into()],
        env: vec![("SWITCHBOARD_PROXY_SECRET", SECRET.to_owned())],
        ..Options::default()
    });
    let _uvicorn = Uvicorn(
        Command::new("python3")
            .args([
                "-m",
                "uvicorn",
                "app:app",
                "--port",
                &backend_port.to_string(),
                "--log-level",
                "warning",
            ])
            .current_dir(example_dir())
            .env("PYTHONPATH", python_path())
            .env("SWITCHBOARD_PROXY_SECRET", SECRET)
            .env("SWITCHBOARD_URL", format!("http://{}", gw.addr))
            .stdin(Stdio::null())
            .spawn()
            .expect("python3 -m uvicorn runs"),
    );
    wait_for_port(backend_port).await;

    // connect: the session cookie is alice; her orders channel comes at once.
    let mut ws = gw
        .ws_client()
        .with_timeout(Duration::from_secs(10))
        .request("/ws")
        .cookie("session", "s-alice")
        .connect()
        .await
        .unwrap();
    let ack = next_of(&mut ws, "CONNECT_ACK").await;
    assert_eq!(ack["payload"]["user_id"], "alice", "{ack}\n{}", gw.logs());
    let connection = ack["payload"]["connection_id"].as_str().unwrap().to_owned();
    let inbox = next_of(&mut ws, "SUBSCRIBE_SUCCESS").await;
    assert_eq!(inbox["payload"]["channel"], "user:alice:orders");

    // subscribe: her team, not another.
    ws.send_json(&json!({"type": "SUBSCRIBE", "id": "s1", "payload": {"subscriptions": ["team:red", "team:blue"]}}))
        .await
        .unwrap();
    let red = next_of(&mut ws, "SUBSCRIBE_SUCCESS").await;
    assert_eq!(red["payload"]["data"]["team"], "red");
    let blue = next_of(&mut ws, "SUBSCRIBE_FAILURE").await;
    assert_eq!(blue["payload"]["reason"], "not a member of team blue");

    // rpc: the order is stored and its EVENT comes back through the HTTP API.
    ws.send_json(&json!({"type": "ACTION", "id": "a1", "payload": {"action": "orders.create", "data": {"item": "tea", "quantity": 2}}}))
        .await
        .unwrap();
    let (mut result, mut event) = (None, None);
    while result.is_none() || event.is_none() {
        let message: Value = ws.recv_json().await.unwrap();
        match message["type"].as_str() {
            Some("ACTION_RESULT") => result = Some(message),
            Some("EVENT") => event = Some(message),
            _ => {}
        }
    }
    let (result, event) = (result.unwrap(), event.unwrap());
    assert_eq!(result["payload"]["data"]["order_id"], 1, "{result}");
    assert_eq!(event["payload"]["channel"], "user:alice:orders");
    assert_eq!(event["payload"]["event"], "order.created");
    assert_eq!(event["payload"]["data"]["item"], "tea");
    ws.send_json(&json!({"type": "ACTION", "id": "a2", "payload": {"action": "orders.create", "data": {"item": 5}}}))
        .await
        .unwrap();
    let error = next_of(&mut ws, "ERROR").await;
    assert_eq!(error["payload"]["code"], "invalid_order");

    // No session: refused with a close the browser can show.
    let mut stranger = gw.ws_client().request("/ws").connect().await.unwrap();
    let close = stranger.recv_close().await.unwrap().unwrap();
    assert_eq!(close.code, CloseCode::Policy);
    assert_eq!(close.reason, "Please sign in");

    // disconnect: the backend hears of it.
    ws.close(CloseCode::Normal, "bye").await.unwrap();
    let mut seen = Value::Null;
    for _ in 0..100 {
        let response = backend_get(backend_port, "/orders").await;
        seen = serde_json::from_str(&response).unwrap();
        if seen["disconnects"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["connection"] == connection.as_str())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let disconnect = seen["disconnects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["connection"] == connection.as_str())
        .unwrap_or_else(|| panic!("no disconnect notification: {seen}"));
    assert_eq!(disconnect["code"], 1000);
    assert_eq!(disconnect["user"], "alice");
    assert_eq!(seen["orders"][0]["item"], "tea");
}

/// A GET to the backend, the body as text.
async fn backend_get(port: u16, path: &str) -> String {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let response = support::request(addr, "GET", path, &[], None).await;
    response.body
}
