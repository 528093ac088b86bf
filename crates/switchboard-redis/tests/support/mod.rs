//! Test support: broker settings that make reconnects and counts fast
//! enough to test, on a private `redis-server` per test from
//! `switchboard-testredis` (which skips loudly without Redis, or fails with
//! `SWITCHBOARD_REQUIRE_REDIS=1`).

// Each test file uses a different subset of these helpers.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use switchboard::testing::broker::BrokerFactory;
use switchboard_redis::{RedisBroker, RedisConfig};
pub use switchboard_testredis::RedisServer;

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
    server.connection().await
}
