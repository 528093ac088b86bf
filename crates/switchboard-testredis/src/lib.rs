//! Test support, never published: a private `redis-server` per test, on a
//! free loopback port, that the test can kill, freeze, thaw and restart on
//! the same port.
//!
//! ```no_run
//! use switchboard_testredis::RedisServer;
//!
//! # async fn test() {
//! // No redis-server on PATH: a loud SKIPPED line, and the test returns
//! // (with SWITCHBOARD_REQUIRE_REDIS=1 it fails instead).
//! let Some(mut redis) = RedisServer::builder().appendonly(true).start() else {
//!     return;
//! };
//! let mut conn = redis.connection().await;
//! let _: () = redis::cmd("SET").arg("k").arg("v").query_async(&mut conn).await.unwrap();
//! redis.kill(); // SIGKILL: clients see the connection drop
//! redis.restart(); // the same port; with appendonly, the same data
//! # }
//! ```
//!
//! Every server gets its own directory under the system's temporary
//! directory (its working directory and, with appendonly, its append-only
//! file), removed when the [`RedisServer`] drops. The process is stopped by
//! its PID, never by name, so tests running in parallel (and a developer's
//! own Redis) are left alone.
//!
//! # Missing Redis
//! Without `redis-server` on PATH, [`RedisServer::start`] prints a loud
//! `SKIPPED` line straight to stderr (the harness hides `eprintln!` of
//! passing tests) and returns `None`. With `SWITCHBOARD_REQUIRE_REDIS=1`
//! (CI sets it) it panics instead: a default test run must never pass
//! silently because a real component is missing.

// No `unwrap` outside tests: a failure says what went wrong (`expect`)
// or is handled.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod checker;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The environment variable that turns a missing `redis-server` from a skip
/// into a failure.
pub const REQUIRE_VAR: &str = "SWITCHBOARD_REQUIRE_REDIS";

/// How long a server may take to answer `PING` after it is spawned.
const START_TIMEOUT: Duration = Duration::from_secs(5);

/// Free ports tried before giving up (another process may take the port
/// between our probe and the server's bind).
const START_ATTEMPTS: usize = 5;

/// Whether a missing `redis-server` must fail the test
/// (`SWITCHBOARD_REQUIRE_REDIS=1`).
pub fn required() -> bool {
    std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1")
}

/// Whether `redis-server` runs here. When it does not, prints the loud skip
/// line (naming the test), or panics when [`required`].
pub fn available() -> bool {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            !required(),
            "redis-server is not on PATH and {REQUIRE_VAR}=1: install Redis 7 \
             (apt-get install redis-server)"
        );
        let test = std::thread::current()
            .name()
            .unwrap_or("a Redis test")
            .to_owned();
        loud(&format!(
            "\n!!!!!!!! SKIPPED: redis-server is not on PATH, so {test} did not run. \
             Install Redis 7 (apt-get install redis-server); set {REQUIRE_VAR}=1 to make this a failure. !!!!!!!!\n"
        ));
    }
    found
}

/// Writes a line straight to the process's stderr, which the test harness
/// does not capture: for skips that must not go unseen.
pub fn loud(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// A free loopback TCP port (probed by binding port 0).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Settings for a [`RedisServer`]; [`RedisServer::builder`] makes one.
#[derive(Debug, Clone, Default)]
#[must_use = "call .start()"]
pub struct Builder {
    appendonly: bool,
}

impl Builder {
    /// Persistence through the append-only file, synced on every write
    /// (`--appendonly yes --appendfsync always`): what a test wrote
    /// survives [`RedisServer::kill`] and [`RedisServer::restart`]. Off by
    /// default (`--appendonly no`): a restarted server is empty. RDB
    /// snapshots are always off (`--save ""`).
    pub fn appendonly(mut self, on: bool) -> Self {
        self.appendonly = on;
        self
    }

    /// Starts the server on a free loopback port, or returns `None` (after
    /// the loud skip line) when `redis-server` is not installed.
    ///
    /// # Panics
    /// When Redis is missing and [`required`], or when the server does not
    /// start in a few attempts.
    pub fn start(self) -> Option<RedisServer> {
        if !available() {
            return None;
        }
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            let mut server = RedisServer {
                port,
                child: None,
                dir: private_dir(port),
                settings: self.clone(),
            };
            if server.spawn() {
                return Some(server);
            }
        }
        panic!("redis-server did not start on a free port in {START_ATTEMPTS} attempts");
    }
}

/// A `redis-server` this test started. Killed (SIGKILL, by PID) and its
/// directory removed on drop.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
    dir: PathBuf,
    settings: Builder,
}

impl RedisServer {
    /// A server without persistence, or `None` when Redis is missing (see
    /// [`Builder::start`]).
    pub fn start() -> Option<Self> {
        Self::builder().start()
    }

    /// Settings for a server: `RedisServer::builder().appendonly(true).start()`.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port, the same across restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The server's directory (its working directory, and its append-only
    /// files with [`Builder::appendonly`]).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether appendonly persistence is on.
    pub fn is_appendonly(&self) -> bool {
        self.settings.appendonly
    }

    /// The process id, while the server runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether this process is running (a paused one counts as running).
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Whether the server answers `PING` now (within half a second).
    pub fn ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect_timeout(&self.addr(), Duration::from_millis(200))
        else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }

    /// Kills the server (SIGKILL to its PID) and reaps it: clients see
    /// their connections drop, and nothing is written on the way out. Does
    /// nothing when it is not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the server (SIGSTOP to its PID): connections stay open and
    /// nothing answers, as with a hung host. [`RedisServer::resume`] thaws it.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaws a paused server (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    /// Kills the server if it runs, then starts it again on the same port:
    /// empty, or with what it had written with [`Builder::appendonly`].
    ///
    /// # Panics
    /// When it does not answer `PING` in time (the port was taken meanwhile).
    pub fn restart(&mut self) {
        self.kill();
        assert!(
            self.spawn(),
            "redis-server did not restart on port {}",
            self.port
        );
    }

    /// A client for this server (connections are made when asked for).
    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("a valid redis URL")
    }

    /// A new connection to this server, for checks and direct commands.
    ///
    /// # Panics
    /// When the server does not take it.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        self.client()
            .get_multiplexed_async_connection()
            .await
            .expect("connect to the test redis-server")
    }

    fn signal(&self, signal: &str) {
        let pid = self.pid().expect("the redis-server is not running");
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {pid} failed");
    }

    /// Starts `redis-server` on this server's port; whether it answers PING.
    fn spawn(&mut self) -> bool {
        std::fs::create_dir_all(&self.dir).expect("create the redis-server's directory");
        let appendonly = if self.settings.appendonly {
            "yes"
        } else {
            "no"
        };
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", appendonly])
            .args(["--appendfsync", "always"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
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
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // SIGKILL works on a paused process too.
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A directory of its own for one server, unique across processes and
/// across servers of this process.
fn private_dir(port: u16) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    std::env::temp_dir().join(format!(
        "switchboard-testredis-{}-{}-{port}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}
