//! Logs, plain and JSON, at debug level: credentials never appear in them
//! (API keys, JWT secrets, tokens in headers and query strings, passwords in
//! broker URLs), while the events around them do.

#![cfg(unix)]

mod support;

use std::time::Duration;

use support::{Gateway, Options};

/// Every credential in this test contains this marker; no log line may.
const MARK: &str = "SECRET";
const API_KEY: &str = "api-key-SECRET-0123456789";
const WS_KEY: &str = "ws-key-SECRET-0123456789";
const JWT_SECRET: &str = "jwt-secret-SECRET-0123456789abcdef0123456789";

fn config() -> std::path::PathBuf {
    let text = format!(
        r#"
[broker]
type = "redis"
# Nothing listens there: the broker logs its connection failures.
url = "redis://user:pw-SECRET@127.0.0.1:1/0"
connect_timeout = "200ms"
start_timeout = "300ms"

[[endpoints]]
path = "/ws/secure"
protocol = "echo"

[endpoints.security]
token_sources = ["bearer", "query:token"]
guards = ["authenticated"]

[[endpoints.security.api_keys]]
key = "{WS_KEY}"
user = "device"

[[endpoints.security.jwt.keys]]
algorithm = "HS256"
secret = "{JWT_SECRET}"
"#
    );
    let path = std::env::temp_dir().join(format!(
        "switchboard-logs-{}-{}.toml",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&path, text).unwrap();
    path
}

async fn exercise(format: &str) -> String {
    let file = config();
    let mut gw = Gateway::start_with(&Options {
        args: vec![
            "--config".into(),
            file.display().to_string(),
            "--log-level".into(),
            "debug".into(),
            "--log-format".into(),
            format.into(),
        ],
        env: vec![("SWITCHBOARD_API_KEY", API_KEY.to_owned())],
        ..Options::default()
    });
    let client = gw.ws_client();
    // Refused credentials, in a header and in the query string.
    let forged = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJTRUNSRVQifQ.SECRET-signature";
    assert!(
        client
            .request("/ws/secure")
            .bearer(forged)
            .connect()
            .await
            .is_err()
    );
    assert!(
        client
            .request("/ws/secure")
            .query("token", "query-token-SECRET-1")
            .connect()
            .await
            .is_err()
    );
    // An accepted key.
    let mut ok = client
        .request("/ws/secure")
        .bearer(WS_KEY)
        .connect()
        .await
        .unwrap();
    ok.send_text("hello").await.unwrap();
    assert_eq!(ok.recv_text().await.unwrap(), "hello");
    // The HTTP API with a wrong key, then the right one.
    let wrong = gw
        .send(
            "GET",
            "/api/v1/rooms?x=SECRET",
            &[("authorization", "Bearer wrong-key-SECRET-0123")],
            None,
        )
        .await;
    assert_eq!(wrong.status, 401);
    let auth = format!("Bearer {API_KEY}");
    let published = gw
        .send(
            "POST",
            "/api/v1/publish",
            &[("authorization", &auth)],
            Some(r#"{"target": {"user": "device"}, "text": "to the device"}"#),
        )
        .await;
    // The broker is down: local delivery happened, the publish is refused.
    assert_eq!(published.status, 503, "{}", published.body);
    assert_eq!(ok.recv_text().await.unwrap(), "to the device");
    gw.signal("TERM");
    let _ = ok.recv_close().await;
    assert!(gw.wait_exit(Duration::from_secs(15)).success());
    std::fs::remove_file(file).unwrap();
    format!("{}{}", gw.logs(), gw.stdout())
}

fn assert_clean(logs: &str) {
    for (i, line) in logs.lines().enumerate() {
        assert!(!line.contains(MARK), "line {i} leaks a credential: {line}");
    }
    // The events themselves are logged.
    for needle in [
        "switchboard listening",
        "handshake refused",
        "publish not forwarded",
        "shutting down",
        "redis://[redacted]@127.0.0.1:1/0",
    ] {
        assert!(logs.contains(needle), "no {needle:?} in the logs:\n{logs}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_logs_hold_no_credentials() {
    assert_clean(&exercise("plain").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_hold_no_credentials_and_every_line_is_json() {
    let logs = exercise("json").await;
    assert_clean(&logs);
    for line in logs.lines().filter(|l| !l.starts_with("listening on ")) {
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(
            value["level"].is_string() && value["timestamp"].is_string(),
            "{line}"
        );
    }
}

#[test]
fn config_check_output_holds_no_credentials() {
    let file = config();
    let out = support::command()
        .args(["config", "check"])
        .arg(&file)
        .env("SWITCHBOARD_API_KEY", API_KEY)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains(MARK), "{text}");
    assert!(
        text.contains("redis at redis://[redacted]@127.0.0.1:1/0"),
        "{text}"
    );
    std::fs::remove_file(file).unwrap();
}
