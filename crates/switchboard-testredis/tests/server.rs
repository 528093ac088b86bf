//! The harness itself: restarts on the same port with and without
//! persistence, freezing and thawing, and the loud skip without Redis.

use std::process::Command;
use std::time::Duration;

use switchboard_testredis::{REQUIRE_VAR, RedisServer};

fn set(server: &RedisServer, key: &str, value: &str) {
    let mut conn = server.client().get_connection().unwrap();
    let () = redis::cmd("SET")
        .arg(key)
        .arg(value)
        .query(&mut conn)
        .unwrap();
}

fn get(server: &RedisServer, key: &str) -> Option<String> {
    let mut conn = server.client().get_connection().unwrap();
    redis::cmd("GET").arg(key).query(&mut conn).unwrap()
}

#[test]
fn a_restart_keeps_the_port_and_starts_empty_without_appendonly() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let port = server.port();
    set(&server, "k", "v");
    server.kill();
    assert!(!server.ping(), "killed, yet it answers");
    assert!(!server.is_running());
    server.restart();
    assert_eq!(server.port(), port);
    assert!(server.is_running());
    assert_eq!(get(&server, "k"), None);
}

#[test]
fn with_appendonly_what_was_written_survives_a_kill_and_restart() {
    let Some(mut server) = RedisServer::builder().appendonly(true).start() else {
        return;
    };
    assert!(server.is_appendonly());
    set(&server, "k", "kept");
    server.kill();
    server.restart();
    assert_eq!(get(&server, "k").as_deref(), Some("kept"));
    // A restart of a running server keeps it too.
    server.restart();
    assert_eq!(get(&server, "k").as_deref(), Some("kept"));
}

#[test]
fn a_paused_server_keeps_connections_but_answers_nothing_until_resumed() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let mut conn = server.client().get_connection().unwrap();
    conn.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    server.pause();
    assert!(!server.ping());
    let frozen: Result<String, _> = redis::cmd("PING").query(&mut conn);
    assert!(frozen.is_err(), "a frozen server answered: {frozen:?}");
    server.resume();
    assert!(server.ping());
}

#[test]
fn the_directory_is_removed_on_drop() {
    let Some(server) = RedisServer::builder().appendonly(true).start() else {
        return;
    };
    let dir = server.dir().to_owned();
    assert!(dir.is_dir());
    drop(server);
    assert!(!dir.exists(), "{} left behind", dir.display());
}

/// Run by the test below in a child process without `redis-server` on PATH.
#[test]
fn probe_without_redis() {
    if std::env::var_os("SWITCHBOARD_TESTREDIS_PROBE").is_none() {
        return;
    }
    assert!(RedisServer::start().is_none());
}

#[test]
fn without_redis_a_test_skips_loudly_unless_redis_is_required() {
    let probe = |required: bool| {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args(["--exact", "probe_without_redis", "--test-threads", "1"])
            .env("SWITCHBOARD_TESTREDIS_PROBE", "1")
            .env("PATH", "/nonexistent");
        if required {
            command.env(REQUIRE_VAR, "1");
        } else {
            command.env_remove(REQUIRE_VAR);
        }
        command.output().unwrap()
    };
    let skipped = probe(false);
    let stderr = String::from_utf8_lossy(&skipped.stderr);
    assert!(skipped.status.success(), "{stderr}");
    assert!(
        stderr.contains("SKIPPED: redis-server is not on PATH, so probe_without_redis did not run"),
        "{stderr}"
    );
    let failed = probe(true);
    assert!(!failed.status.success());
    let stdout = String::from_utf8_lossy(&failed.stdout);
    assert!(stdout.contains(REQUIRE_VAR), "{stdout}");
}
