//! Runs the real `switchboard` binary on a free loopback port, and talks
//! HTTP/1.1 to it over raw TCP. Everything is bounded in time; the process
//! is killed (by PID) when the handle drops.

#![allow(dead_code, unreachable_pub)]

pub mod published;
pub mod shell;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long the gateway may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running gateway.
pub struct Gateway {
    child: Child,
    pub addr: SocketAddr,
    pub scheme: String,
    stderr: Arc<Mutex<String>>,
    stdout: Arc<Mutex<String>>,
    /// The threads reading stdout and stderr; they end at EOF.
    pumps: Vec<std::thread::JoinHandle<()>>,
}

/// Start options.
#[derive(Default)]
pub struct Options<'a> {
    pub args: Vec<String>,
    pub env: Vec<(&'a str, String)>,
    /// Do not pass `--listen 127.0.0.1:0` (the args or env give one).
    pub no_listen: bool,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_switchboard")
}

/// A command for the binary with a clean `SWITCHBOARD_*` environment.
pub fn command() -> Command {
    let mut command = Command::new(bin());
    for (key, _) in std::env::vars() {
        if key.starts_with("SWITCHBOARD_") || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    command
}

impl Gateway {
    /// `switchboard serve --listen 127.0.0.1:0 <args>`.
    pub fn start(args: &[&str]) -> Self {
        Self::start_with(&Options {
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            ..Options::default()
        })
    }

    pub fn start_with(options: &Options<'_>) -> Self {
        let mut command = command();
        command.arg("serve");
        if !options.no_listen {
            command.args(["--listen", "127.0.0.1:0"]);
        }
        command.args(&options.args);
        for (key, value) in &options.env {
            command.env(key, value);
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("the switchboard binary runs");
        let stderr = Arc::new(Mutex::new(String::new()));
        let stdout = Arc::new(Mutex::new(String::new()));
        let mut pumps = vec![pump(child.stderr.take().unwrap(), Arc::clone(&stderr))];
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let out = child.stdout.take().unwrap();
            let stdout = Arc::clone(&stdout);
            pumps.push(std::thread::spawn(move || {
                let mut reader = BufReader::new(out);
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 0 {
                    if let Some(rest) = line.trim().strip_prefix("listening on ") {
                        let _ = tx.send(rest.to_owned());
                    }
                    stdout.lock().unwrap().push_str(&line);
                    line.clear();
                }
            }));
        }
        let Ok(url) = rx.recv_timeout(START_TIMEOUT) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the gateway did not start within {START_TIMEOUT:?}:\n{}",
                stderr.lock().unwrap()
            );
        };
        let (scheme, addr) = url.split_once("://").unwrap();
        Self {
            child,
            addr: addr.parse().unwrap(),
            scheme: scheme.to_owned(),
            stderr,
            stdout,
            pumps,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by PID (`TERM`, `INT`, `USR1`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} {} failed", self.pid());
    }

    /// The exit status, if the process has exited.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// Waits for the process to exit, at most `within`.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Everything it wrote is read once the pipes reach EOF.
                for pump in self.pumps.drain(..) {
                    let _ = pump.join();
                }
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "the gateway did not exit within {within:?}:\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything the gateway wrote to stderr (its logs) so far.
    pub fn logs(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub fn ws_client(&self) -> switchboard::TestClient {
        switchboard::TestClient::tcp(self.addr)
    }

    pub async fn get(&self, path: &str) -> Response {
        request(self.addr, "GET", path, &[], None).await
    }

    pub async fn post(&self, path: &str, body: &str) -> Response {
        request(self.addr, "POST", path, &[], Some(body)).await
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Response {
        request(self.addr, method, path, headers, body).await
    }

    /// Waits until `room` has `n` members on this instance (a client's
    /// handshake completes before its handler joins the room).
    pub async fn wait_for_room(&self, room: &str, n: u64) {
        self.wait_for_room_with(room, n, &[]).await;
    }

    pub async fn wait_for_room_with(&self, room: &str, n: u64, headers: &[(&str, &str)]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let path = format!("/api/v1/rooms/{room}");
            let response = self.send("GET", &path, headers, None).await;
            if response.status == 200 && response.json()["local"].as_u64() == Some(n) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "room {room} never reached {n} members: {} {}",
                response.status,
                response.body
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `n` connections are registered (the hub registers a
    /// connection when its handler accepts it).
    pub async fn wait_for_connections(&self, n: u64) {
        self.wait_for_connections_with(n, &[]).await;
    }

    pub async fn wait_for_connections_with(&self, n: u64, headers: &[(&str, &str)]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let response = self
                .send("GET", "/api/v1/connections/count", headers, None)
                .await;
            if response.status == 200 && response.json()["local"].as_u64() == Some(n) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "never {n} connections: {} {}",
                response.status,
                response.body
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls `path` until it answers `status` (at most 10 s).
    pub async fn wait_for_status(&self, path: &str, status: u16) -> Response {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let response = self.get(path).await;
            if response.status == status {
                return response;
            }
            assert!(
                Instant::now() < deadline,
                "{path} still answers {} (wanted {status}): {}",
                response.status,
                response.body
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pump(
    mut from: impl Read + Send + 'static,
    into: Arc<Mutex<String>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            into.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    })
}

/// An HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`),
/// within 10 s.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Response {
    let run = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let mut head = format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(body) = body {
            head.push_str(&format!(
                "content-type: application/json\r\ncontent-length: {}\r\n",
                body.len()
            ));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.unwrap();
        if let Some(body) = body {
            stream.write_all(body.as_bytes()).await.unwrap();
        }
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        parse_response(&raw)
    };
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: no answer within 10 s"))
}

pub fn parse_response(raw: &[u8]) -> Response {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// A free loopback TCP port (for processes that cannot report theirs).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A JWT signed with HS256 and `secret`, carrying `claims`.
pub fn hs256_token(secret: &str, claims: &serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("an HS256 token")
}
