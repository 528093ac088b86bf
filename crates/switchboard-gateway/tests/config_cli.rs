//! `switchboard config example`, `config check`, and what `serve` does with
//! a configuration that does not check: the real binary, every time.

mod support;

use std::path::PathBuf;
use std::process::Output;

use support::{Gateway, Options, command};

fn temp_file(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "switchboard-cli-{}-{}-{name}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&path, text).unwrap();
    path
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = command();
    command.args(args);
    for (k, v) in env {
        command.env(k, v);
    }
    // `serve` with a bad config exits before listening; bound it anyway.
    let child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let output = child.wait_with_output().unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    output
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_printed_example_passes_check() {
    let example = run(&["config", "example"], &[]);
    assert!(example.status.success());
    let example = text(&example.stdout);
    assert!(example.contains("[server]") && example.contains("listen = \"127.0.0.1:8080\""));
    let path = temp_file("example.toml", &example);
    let check = run(&["config", "check", path.to_str().unwrap()], &[]);
    assert!(check.status.success(), "{}", text(&check.stderr));
    let out = text(&check.stdout);
    assert!(out.contains(": ok"), "{out}");
    assert!(out.contains("listen: ws://127.0.0.1:8080"), "{out}");
    assert!(out.contains("endpoint: /ws/echo"), "{out}");
    std::fs::remove_file(path).unwrap();
}

#[test]
fn check_names_every_problem_by_key_and_exits_2() {
    let path = temp_file(
        "bad.toml",
        r#"
[server]
listen = "0.0.0.0:9000"
workers = 0

[limits]
max_message_size = "64KiB"
max_frame_size = "1MiB"

[[endpoints]]
path = "/ws/echo"
protocol = "echo"

[[endpoints]]
path = "ws/chat"
protocol = "broadcast"

[endpoints.security]
guards = ["authenticated"]
"#,
    );
    let check = run(
        &["config", "check", "--no-env", path.to_str().unwrap()],
        &[],
    );
    assert_eq!(check.status.code(), Some(2));
    let err = text(&check.stderr);
    for needle in [
        "invalid configuration",
        "server.workers: must be at least 1",
        "limits.max_frame_size: 1MiB is larger than max_message_size (64KiB)",
        "endpoints[1].path: \"ws/chat\" must start with '/'",
        "endpoints[1].security.guards[0]: a guard needs authentication",
        "api.keys: required: the gateway listens on 0.0.0.0:9000, beyond loopback",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    std::fs::remove_file(path).unwrap();
}

#[test]
fn unknown_keys_and_bad_values_are_named_with_their_line() {
    let path = temp_file(
        "typo.toml",
        "[server]\nlisten = \"127.0.0.1:8080\"\n\n[[endpoints]]\npath = \"/e\"\nprotocol = \"echo\"\nmax_mesage_size = 10\n",
    );
    let check = run(&["config", "check", path.to_str().unwrap()], &[]);
    assert_eq!(check.status.code(), Some(2));
    let err = text(&check.stderr);
    assert!(
        err.contains(
            "endpoints[0].max_mesage_size (line 7, column 1): unknown field `max_mesage_size`"
        ),
        "{err}"
    );
    let path2 = temp_file("duration.toml", "[server]\nshutdown_timeout = \"soon\"\n");
    let check = run(&["config", "check", path2.to_str().unwrap()], &[]);
    let err = text(&check.stderr);
    assert!(err.contains("server.shutdown_timeout"), "{err}");
    assert!(err.contains("invalid duration \"soon\""), "{err}");
    let missing = run(&["config", "check", "/nonexistent/switchboard.toml"], &[]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("cannot read"));
    std::fs::remove_file(path).unwrap();
    std::fs::remove_file(path2).unwrap();
}

#[test]
fn serve_refuses_to_start_on_a_public_address_without_an_api_key() {
    let out = run(&["serve", "--listen", "0.0.0.0:0"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("not starting"), "{err}");
    assert!(err.contains("api.keys: required"), "{err}");
    assert!(err.contains("SWITCHBOARD_API_KEY"), "{err}");
}

#[test]
fn serve_names_a_bad_environment_variable() {
    let out = run(&["serve"], &[("SWITCHBOARD_MAX_CONNECTIONS", "lots")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("SWITCHBOARD_MAX_CONNECTIONS: invalid number \"lots\""),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_beat_the_environment_which_beats_the_file() {
    let file = temp_file("json.toml", "[log]\nformat = \"json\"\n");
    let config = file.to_str().unwrap().to_owned();
    let first_line_is_json = |gw: &Gateway| {
        // stderr is read on its own thread: wait for the first line.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let logs = loop {
            let logs = gw.logs();
            if logs.contains('\n') || std::time::Instant::now() > deadline {
                break logs;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        let line = logs.lines().next().unwrap_or_default().to_owned();
        serde_json::from_str::<serde_json::Value>(&line).is_ok()
    };

    // The file alone: JSON logs. The file comes from SWITCHBOARD_CONFIG.
    let gw = Gateway::start_with(&Options {
        env: vec![("SWITCHBOARD_CONFIG", config.clone())],
        ..Options::default()
    });
    assert!(first_line_is_json(&gw), "{}", gw.logs());
    drop(gw);

    // The environment beats the file.
    let gw = Gateway::start_with(&Options {
        env: vec![
            ("SWITCHBOARD_CONFIG", config.clone()),
            ("SWITCHBOARD_LOG_FORMAT", "plain".to_owned()),
        ],
        ..Options::default()
    });
    assert!(!first_line_is_json(&gw), "{}", gw.logs());
    drop(gw);

    // A flag beats the environment.
    let gw = Gateway::start_with(&Options {
        args: vec!["--log-format".into(), "json".into()],
        env: vec![
            ("SWITCHBOARD_CONFIG", config),
            ("SWITCHBOARD_LOG_FORMAT", "plain".to_owned()),
        ],
        ..Options::default()
    });
    assert!(first_line_is_json(&gw), "{}", gw.logs());
    std::fs::remove_file(file).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_declared_in_the_file_replace_the_built_in_ones() {
    let file = temp_file(
        "endpoints.toml",
        r#"
[[endpoints]]
path = "/chat/{room}"
protocol = "broadcast"
room = "chat"
limits = { max_message_size = 16 }

[[endpoints]]
path = "/secure"
protocol = "echo"

[endpoints.security]
token_sources = ["query:key"]
guards = ["authenticated"]

[[endpoints.security.api_keys]]
key = "device-key-0123456789"
user = "device-1"
"#,
    );
    let gw = Gateway::start(&["--config", file.to_str().unwrap()]);
    // The built-in endpoints are gone.
    assert!(gw.ws_client().connect("/ws/echo").await.is_err());

    let mut chat = gw.ws_client().connect("/chat/any").await.unwrap();
    gw.wait_for_room("chat", 1).await;
    chat.send_text("short").await.unwrap();
    assert_eq!(chat.recv_text().await.unwrap(), "short");
    // The endpoint's own limit: 16 bytes.
    chat.send_text("a message longer than sixteen bytes")
        .await
        .unwrap();
    match chat.recv_text().await {
        Err(switchboard::TestError::Closed(Some(frame))) => {
            assert_eq!(frame.code, switchboard::CloseCode::TooBig);
        }
        other => panic!("expected 1009, got {other:?}"),
    }

    // The endpoint's own security: an API key in the query string.
    match gw.ws_client().connect("/secure").await {
        Err(switchboard::TestError::Rejected { status, .. }) => assert_eq!(status, 401),
        other => panic!("expected 401, got {other:?}"),
    }
    let mut secure = gw
        .ws_client()
        .request("/secure")
        .query("key", "device-key-0123456789")
        .connect()
        .await
        .unwrap();
    secure.send_text("hi").await.unwrap();
    assert_eq!(secure.recv_text().await.unwrap(), "hi");
    let users = gw.get("/api/v1/users/device-1/connections").await.json();
    assert_eq!(users["total"], 1, "{users}");
    std::fs::remove_file(file).unwrap();
}
