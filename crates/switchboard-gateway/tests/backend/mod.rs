//! A test backend for the proxy: an axum server on a free loopback port
//! that records every call (path, headers, body, whether the signature
//! verifies) and answers as docs/proxy.md says, steered by what it gets.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, Version};
use axum::response::Response;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

pub const SECRET: &str = "a-proxy-secret-of-32-characters!";

/// One call the backend got.
#[derive(Debug, Clone)]
pub struct Call {
    pub path: String,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Value,
    pub signed: bool,
}

#[derive(Clone, Default)]
pub struct Backend {
    calls: Arc<Mutex<Vec<Call>>>,
    pub addr: Option<SocketAddr>,
}

impl Backend {
    /// Starts the server; it lives as long as the test's runtime.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let backend = Self {
            addr: Some(listener.local_addr().unwrap()),
            ..Self::default()
        };
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(backend.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        backend
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr.unwrap())
    }

    pub fn calls(&self, path: &str) -> Vec<Call> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.path == path)
            .cloned()
            .collect()
    }

    /// Waits (at most 10 s) until `path` got a call whose body satisfies `f`.
    pub async fn wait_for(&self, path: &str, f: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..200 {
            if let Some(call) = self.calls(path).into_iter().find(|c| f(&c.body)) {
                return call.body;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no matching call to {path}: {:?}", self.calls(path));
    }

    /// The `[proxy]` section pointing every proxy at this backend.
    pub fn config(&self) -> String {
        format!(
            r#"
[proxy]
secret = "{SECRET}"
timeout = "6s"
headers = {{ "X-Gateway" = "test" }}
connect = {{ url = "{connect}", forward_headers = ["X-Tenant"], timeout = "2s" }}
refresh = {{ url = "{refresh}", before = "2s" }}
subscribe = {{ url = "{subscribe}", channels = ["team:*"] }}
rpc = {{ url = "{rpc}", actions = ["orders.*"] }}
disconnect = {{ url = "{disconnect}" }}
unsubscribe = {{ url = "{unsubscribe}" }}
"#,
            connect = self.url("/connect"),
            refresh = self.url("/refresh"),
            subscribe = self.url("/subscribe"),
            rpc = self.url("/rpc"),
            disconnect = self.url("/disconnect"),
            unsubscribe = self.url("/unsubscribe"),
        )
    }
}

fn verify(headers: &HeaderMap, body: &[u8]) -> bool {
    let Some(given) = headers
        .get("x-switchboard-signature")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("sha256="))
    else {
        return false;
    };
    let mut mac = <Hmac<Sha256>>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    expected == given
}

fn json_response(value: &Value) -> Response {
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from(value.to_string()))
        .unwrap()
}

fn status(code: u16) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap())
        .body(Body::from("failure"))
        .unwrap()
}

async fn handle(
    State(backend): State<Backend>,
    version: Version,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    backend.calls.lock().unwrap().push(Call {
        path: uri.path().to_owned(),
        version,
        headers: headers.clone(),
        body: value.clone(),
        signed: verify(&headers, &body),
    });
    match uri.path() {
        "/connect" => connect(&value),
        "/refresh" => json_response(&json!({"result": {"expires_at": now() + 3600.0}})),
        "/subscribe" => subscribe(&value),
        "/rpc" => rpc(&value).await,
        "/disconnect" | "/unsubscribe" => json_response(&json!({})),
        _ => status(404),
    }
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn connect(body: &Value) -> Response {
    let cookie = body["headers"]["cookie"].as_str().unwrap_or("");
    let session = cookie
        .split(';')
        .find_map(|c| c.trim().strip_prefix("session="))
        .unwrap_or("");
    match session {
        "alice" => json_response(&json!({"result": {
            "user": "alice",
            "permissions": ["orders"],
            "channels": ["user:alice:inbox"],
            "meta": {"plan": "pro", "tenant": body["headers"]["x-tenant"]},
        }})),
        "bob" => json_response(&json!({"result": {
            "user": "bob",
            "channels": ["user:bob:inbox"],
        }})),
        "short" => json_response(&json!({"result": {"user": "shorty", "expires_at": now() + 3.0}})),
        "banned" => json_response(&json!({"error": {"message": "banned until tomorrow"}})),
        "down" => status(500),
        _ => json_response(&json!({"result": {"user": null}})),
    }
}

fn subscribe(body: &Value) -> Response {
    match body["channel"].as_str().unwrap_or("") {
        "team:red" => {
            json_response(&json!({"result": {"data": {"members": 3, "user": body["user"]}}}))
        }
        "team:down" => status(503),
        _ => json_response(&json!({"error": {"message": "not in this team"}})),
    }
}

async fn rpc(body: &Value) -> Response {
    match body["action"].as_str().unwrap_or("") {
        "orders.create" => json_response(&json!({"result": {
            "id": 1, "echo": body["data"], "user": body["user"], "meta": body["meta"],
            "connection": body["connection"],
        }})),
        "orders.null" => json_response(&json!({"result": null})),
        "orders.fail" => {
            json_response(&json!({"error": {"code": "out_of_stock", "message": "Only 2 left"}}))
        }
        "orders.busy" => json_response(
            &json!({"error": {"code": "busy", "message": "Try again", "temporary": true}}),
        ),
        "orders.slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            json_response(&json!({"result": "slow"}))
        }
        "orders.hang" => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            json_response(&json!({"result": "too late"}))
        }
        "orders.500" => status(500),
        "orders.badjson" => Response::builder()
            .header("content-type", "application/json")
            .body(Body::from("{not json"))
            .unwrap(),
        "orders.huge" => {
            let filler = "x".repeat(10 << 20);
            json_response(&json!({"result": filler}))
        }
        _ => json_response(&json!({"error": {"message": "no such order action"}})),
    }
}
