//! Test support: a private `redis-server` per test on a free loopback port,
//! stopped by PID when the guard drops, and broker settings that make
//! reconnects and counts fast enough to test.
//!
//! When `redis-server` is not on PATH the tests print a loud line and skip,
//! unless `SWITCHBOARD_REQUIRE_REDIS=1` (CI sets it), which makes them fail.

// Each test file uses a different subset of these helpers.
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use switchboard::testing::broker::BrokerFactory;
use switchboard_redis::{RedisBroker, RedisConfig};

/// A `redis-server` this test started; killed (by PID) on drop.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
}

fn required() -> bool {
    std::env::var("SWITCHBOARD_REQUIRE_REDIS").is_ok_and(|v| v == "1")
}

/// Whether `redis-server` can run here. Prints the skip line when it cannot
/// (and panics instead when Redis is required).
pub fn redis_available() -> bool {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        if required() {
            panic!("redis-server is not on PATH and SWITCHBOARD_REQUIRE_REDIS=1: install Redis 7");
        }
        loud(
            "\n!!!!!!!! SKIPPED: redis-server is not on PATH, so the Redis broker test did not run. \
             Install Redis 7 (apt-get install redis-server); set SWITCHBOARD_REQUIRE_REDIS=1 to make this a failure. !!!!!!!!\n",
        );
    }
    found
}

/// Writes straight to the process's stderr: the test harness captures
/// `eprintln!` of passing tests, and a skip must not go unseen.
pub fn loud(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl RedisServer {
    /// Starts a private server, or returns `None` (after the skip line) when
    /// Redis is not installed.
    pub fn start() -> Option<Self> {
        if !redis_available() {
            return None;
        }
        for _ in 0..5 {
            let mut server = Self {
                port: free_port(),
                child: None,
            };
            if server.spawn() {
                return Some(server);
            }
        }
        panic!("redis-server did not start on a free port in 5 attempts");
    }

    /// Starts `redis-server` on this server's port; whether it answers PING.
    fn spawn(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--dir", &std::env::temp_dir().to_string_lossy()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.ping() {
                return true;
            }
            if let Some(child) = &mut self.child
                && let Ok(Some(_)) = child.try_wait()
            {
                // Exited: the port was taken meanwhile.
                self.child = None;
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.kill();
        false
    }

    fn ping(&self) -> bool {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (SIGKILL to its PID) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the server (SIGSTOP to its PID): connections stay open, nothing answers.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaws a paused server (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("server running").id();
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// Starts the server again on the same port, empty.
    pub fn restart(&mut self) {
        self.kill();
        assert!(
            self.spawn(),
            "redis-server did not restart on port {}",
            self.port
        );
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Broker settings for tests: fast heartbeats and reconnects.
pub fn test_config(url: &str, prefix: &str) -> RedisConfig {
    RedisConfig::new(url)
        .prefix(prefix)
        .command_timeout(Duration::from_millis(500))
        .connect_timeout(Duration::from_millis(500))
        .sync_timeout(Duration::from_secs(3))
        .backoff(Duration::from_millis(50), Duration::from_millis(400))
        .heartbeat(Duration::from_millis(100), Duration::from_millis(400))
}

/// Redis brokers on one private server.
#[derive(Debug)]
pub struct RedisFactory {
    pub server: RedisServer,
}

impl RedisFactory {
    /// A factory on a new private server, or `None` when Redis is missing.
    pub fn start() -> Option<Self> {
        RedisServer::start().map(|server| Self { server })
    }

    /// A broker with test settings.
    pub fn make(&self) -> RedisBroker {
        RedisBroker::new(test_config(&self.server.url(), "sb")).expect("valid config")
    }
}

impl BrokerFactory for RedisFactory {
    type Broker = RedisBroker;

    async fn broker(&self) -> RedisBroker {
        self.make()
    }

    fn count_delay(&self) -> Duration {
        Duration::from_secs(3)
    }
}

/// A raw connection to the test server, for checks and direct publishes.
pub async fn raw(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to the test redis")
}
