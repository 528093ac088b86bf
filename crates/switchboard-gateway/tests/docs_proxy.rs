//! docs/proxy.md against the real gateway: its configuration (URLs pointed
//! at a test backend) makes every documented call, and each documented call
//! body has exactly the fields the gateway sends, with the documented
//! headers; the page's two backends (Python with FastAPI, Node) run as the
//! rpc proxy's backend and answer an `ACTION`.

mod backend;
mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use backend::{Backend, SECRET};
use serde_json::{Value, json};
use support::shell::{python_with, require_tool};
use support::{Gateway, Options, free_port};
use switchboard::TestSocket;
use switchboard_docs::markdown::{Block, tagged};

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "switchboard-docs-proxy-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A gateway on `config`, with the proxy secret in the environment.
fn gateway(config: &str) -> Gateway {
    let dir = temp_dir();
    let file = dir.join("switchboard.toml");
    std::fs::write(&file, config).unwrap();
    Gateway::start_with(&Options {
        args: vec!["--config".into(), file.display().to_string()],
        env: vec![("SWITCHBOARD_PROXY_SECRET", SECRET.to_owned())],
        ..Options::default()
    })
}

/// The next message of `kind` (or correlated with `id`), skipping others.
async fn next(ws: &mut TestSocket, matches: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..50 {
        let message: Value = ws.recv_json().await.unwrap();
        if matches(&message) {
            return message;
        }
    }
    panic!("no such message");
}

fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect()
}

/// Which proxy a documented call body belongs to, by its fields.
fn proxy_of(body: &Value) -> &'static str {
    if let Some(events) = body.get("events") {
        return if events[0].get("code").is_some() {
            "/disconnect"
        } else {
            "/unsubscribe"
        };
    }
    if body.get("path_params").is_some() {
        "/connect"
    } else if body.get("action").is_some() {
        "/rpc"
    } else if body.get("channel").is_some() {
        "/subscribe"
    } else if body.get("expires_at").is_some() {
        "/refresh"
    } else {
        panic!("a call body of no proxy: {body}")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_calls_have_the_fields_and_headers_the_gateway_sends() {
    let backend = Backend::start().await;
    let toml = switchboard_docs::markdown::all_blocks()
        .into_iter()
        .find(|b| b.file == "docs/proxy.md" && b.lang == "toml")
        .expect("proxy.md's configuration");
    let base = format!("http://{}/", backend.addr.unwrap());
    let gw = gateway(
        &toml
            .text
            .replace("http://127.0.0.1:8000/switchboard/", &base),
    );

    // "short": a session that ends in 3 s, so the refresh proxy is asked.
    let mut ws = gw
        .ws_client()
        .with_timeout(Duration::from_secs(15))
        .request("/ws")
        .cookie("session", "short")
        .header("x-tenant", "acme")
        .connect()
        .await
        .unwrap();
    next(&mut ws, |m| m["type"] == "CONNECT_ACK").await;
    ws.send_json(
        &json!({"type": "SUBSCRIBE", "id": "s1", "payload": {"subscriptions": ["team:red"]}}),
    )
    .await
    .unwrap();
    next(&mut ws, |m| m["correlation_id"] == "s1").await;
    ws.send_json(
        &json!({"type": "UNSUBSCRIBE", "id": "u1", "payload": {"subscriptions": ["team:red"]}}),
    )
    .await
    .unwrap();
    next(&mut ws, |m| m["correlation_id"] == "u1").await;
    ws.send_json(&json!({"type": "ACTION", "id": "a1",
        "payload": {"action": "orders.create", "data": {"item": "tea", "quantity": 2}}}))
        .await
        .unwrap();
    let result = next(&mut ws, |m| m["correlation_id"] == "a1").await;
    assert_eq!(result["type"], "ACTION_RESULT", "{result}");
    backend.wait_for("/refresh", |_| true).await;
    backend.wait_for("/unsubscribe", |_| true).await;
    ws.close(switchboard::CloseCode::Normal, "").await.unwrap();
    backend.wait_for("/disconnect", |_| true).await;

    let calls = tagged("proxy-call");
    let bodies: Vec<&Block> = calls.iter().filter(|b| b.lang == "json").collect();
    assert_eq!(
        bodies.len(),
        6,
        "connect, refresh, subscribe, rpc, disconnect, unsubscribe"
    );
    for block in bodies {
        let shown: Value = serde_json::from_str(&block.text)
            .unwrap_or_else(|e| panic!("{}: {e}", block.location()));
        let path = proxy_of(&shown);
        let sent = backend.wait_for(path, |_| true).await;
        let (shown, sent) = match path {
            "/disconnect" | "/unsubscribe" => {
                (shown["events"][0].clone(), sent["events"][0].clone())
            }
            _ => (shown, sent),
        };
        assert_eq!(
            keys(&shown),
            keys(&sent),
            "{} ({path}): the gateway sent {sent}",
            block.location()
        );
    }

    // The headers of a call (the static `X-Env` is the page's own `headers`).
    let rpc = backend.calls("/rpc").pop().expect("an rpc call");
    assert!(rpc.signed, "the signature verifies with the secret");
    let http = calls
        .iter()
        .find(|b| b.lang == "http")
        .expect("the headers");
    for line in http.text.lines().skip(1) {
        let (name, value) = line.split_once(": ").expect("a header line");
        if name == "X-Env" {
            continue;
        }
        let got = rpc
            .headers
            .get(name)
            .unwrap_or_else(|| panic!("{}: no {name} header", http.location()))
            .to_str()
            .unwrap();
        let same_shape = |a: &str, b: &str| {
            a.len() == b.len()
                && a.chars()
                    .zip(b.chars())
                    .all(|(x, y)| x.is_ascii_hexdigit() == y.is_ascii_hexdigit() || x == y)
        };
        match name {
            "Content-Type" => assert_eq!(got, value),
            "User-Agent" => assert!(got.starts_with("switchboard/"), "{got}"),
            "X-Request-Id" => assert!(
                got.split_once('-')
                    .is_some_and(|(p, n)| p.len() == 16 && n.parse::<u64>().is_ok()),
                "{got}"
            ),
            "X-Switchboard-Signature" => assert!(same_shape(got, value), "{got}"),
            other => panic!(
                "{}: a header this test does not know: {other}",
                http.location()
            ),
        }
    }
}

/// A documented backend, running: killed (by PID) when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The gateway's rpc proxy at `port`'s `/switchboard/rpc`: an `ACTION`
/// comes back as the backend's echo of its data.
async fn an_action_is_echoed_by(port: u16) {
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "the backend did not listen on {addr}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let gw = gateway(&format!(
        "[proxy]\nsecret_env = \"SWITCHBOARD_PROXY_SECRET\"\n\
         rpc = {{ url = \"http://127.0.0.1:{port}/switchboard/rpc\", actions = [\"orders.*\"] }}\n"
    ));
    let mut ws = gw.ws_client().connect("/ws").await.unwrap();
    next(&mut ws, |m| m["type"] == "CONNECT_ACK").await;
    let data = json!({"item": "tea", "quantity": 2});
    ws.send_json(&json!({"type": "ACTION", "id": "a1",
        "payload": {"action": "orders.create", "data": data}}))
        .await
        .unwrap();
    let result = next(&mut ws, |m| m["correlation_id"] == "a1").await;
    assert_eq!(result["type"], "ACTION_RESULT", "{result}");
    assert_eq!(result["payload"]["data"], json!({"echo": data}));
}

fn backend_block(lang: &str) -> Block {
    tagged("proxy-backend")
        .into_iter()
        .find(|b| b.lang == lang)
        .unwrap_or_else(|| panic!("no `{lang} proxy-backend` block"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_backend_answers_the_rpc_proxy() {
    if !require_tool(
        "node",
        "--version",
        "the_node_backend_answers_the_rpc_proxy",
    ) {
        return;
    }
    let block = backend_block("js");
    let port = free_port();
    let dir = temp_dir();
    let file = dir.join("backend.mjs");
    std::fs::write(
        &file,
        block
            .text
            .replace(".listen(8000,", &format!(".listen({port},")),
    )
    .unwrap();
    let _node = Running(
        Command::new("node")
            .arg(&file)
            .env("SWITCHBOARD_PROXY_SECRET", SECRET)
            .stdin(Stdio::null())
            .spawn()
            .expect("node runs"),
    );
    an_action_is_echoed_by(port).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_backend_answers_the_rpc_proxy() {
    let test = "the_python_backend_answers_the_rpc_proxy";
    let Some(python) = python_with(&["fastapi", "uvicorn"], test) else {
        return;
    };
    let block = backend_block("python");
    let port = free_port();
    let dir = temp_dir();
    std::fs::write(dir.join("backend.py"), &block.text).unwrap();
    let _uvicorn = Running(
        Command::new(&python)
            .args([
                "-m",
                "uvicorn",
                "backend:app",
                "--port",
                &port.to_string(),
                "--log-level",
                "warning",
            ])
            .current_dir(&dir)
            .env("SWITCHBOARD_PROXY_SECRET", SECRET)
            .stdin(Stdio::null())
            .spawn()
            .expect("python runs"),
    );
    an_action_is_echoed_by(port).await;
}
