//! The Redis broker's settings and their defaults.

use std::time::Duration;

use switchboard::protocol::StructuredChannels;

use crate::Error;

/// Settings of a [`crate::RedisBroker`]. Every field has a default; the
/// trade-offs are noted on each.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RedisConfig {
    /// `redis://[user:password@]host[:port][/db]`.
    pub url: String,
    /// Prefix of every channel and key (`sb` → `sb:v1:room:<name>`). Give
    /// clusters sharing one Redis different prefixes. Default `sb`.
    pub prefix: String,
    /// How long a publish or a count read may wait for Redis. A publish
    /// that times out fails with `BrokerError::Timeout` (it may or may not
    /// have gone out) and the connection is replaced. Default 1 s.
    pub command_timeout: Duration,
    /// How long one connection attempt may take. Default 2 s.
    pub connect_timeout: Duration,
    /// How long `Cluster::start` waits for the first connection and
    /// subscriptions. On timeout `start` fails, but the broker keeps
    /// reconnecting in the background. Default 5 s.
    pub start_timeout: Duration,
    /// How long `Cluster::sync` (and `Cluster::join`) waits for
    /// subscriptions to be confirmed. Default 2 s.
    pub sync_timeout: Duration,
    /// The first delay before reconnecting. Delays double per failed
    /// attempt up to [`RedisConfig::backoff_max`], each drawn uniformly
    /// between this and the current cap (jitter, so that instances do not
    /// reconnect in step). Default 100 ms.
    pub backoff_min: Duration,
    /// The largest delay between reconnect attempts. After Redis returns,
    /// delivery resumes within about this long plus one resubscribe.
    /// Default 2 s.
    pub backoff_max: Duration,
    /// How often this instance writes its counts to Redis and pings its
    /// subscriber connection (a stalled connection is replaced). Cluster
    /// counts lag changes by up to this much. Default 1 s.
    pub heartbeat: Duration,
    /// How long an instance's counts live without a heartbeat: a crashed
    /// instance is counted for up to this long. At least twice
    /// [`RedisConfig::heartbeat`]. Default 5 s.
    pub count_ttl: Duration,
    /// How long an instance's lease lasts without a renewal (one per
    /// heartbeat). Past it, another instance declares it dead: removes its
    /// presence (sending the leaves) and its counts. An instance frozen for
    /// longer closes its connections with 1012 when it wakes up. More than
    /// twice [`RedisConfig::heartbeat`] plus
    /// [`RedisConfig::command_timeout`]. Default 8 s.
    pub lease_ttl: Duration,
    /// Whether Redis keeps every write it acknowledges across a restart
    /// (`appendonly yes` and `appendfsync always`). Then a restarted Redis
    /// keeps each channel's epoch and history, and nothing published is
    /// lost. Default false: when Redis restarts (a new `run_id`), each
    /// channel starts a new epoch at its next publish or read, and
    /// subscribers are told of what may have been lost; with any other
    /// persistence setting a restart can lose the last writes and reuse
    /// their offsets, so do not set it then. Set it the same on every
    /// instance.
    pub durable: bool,
    /// The rooms that are channels of the structured protocol. A `kind:
    /// "text"` message to one that is not already a message of the protocol
    /// reaches its members as the `EVENT` `switchboard.text`, with the text
    /// as its data (live and when read back from a stream), never as a
    /// bare frame. Default none: text goes out as it is.
    pub structured_channels: StructuredChannels,
}

impl RedisConfig {
    /// Defaults for Redis at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: "sb".to_owned(),
            command_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(2),
            start_timeout: Duration::from_secs(5),
            sync_timeout: Duration::from_secs(2),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(2),
            heartbeat: Duration::from_secs(1),
            count_ttl: Duration::from_secs(5),
            lease_ttl: Duration::from_secs(8),
            durable: false,
            structured_channels: StructuredChannels::default(),
        }
    }

    /// Sets [`RedisConfig::structured_channels`].
    pub fn structured_channels(mut self, channels: StructuredChannels) -> Self {
        self.structured_channels = channels;
        self
    }

    /// Sets [`RedisConfig::durable`].
    pub fn durable(mut self, durable: bool) -> Self {
        self.durable = durable;
        self
    }

    /// Sets the channel and key prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets the publish and count-read timeout.
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// Sets the connection attempt timeout.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets how long `start` waits for the first connection.
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// Sets how long `sync` waits for subscriptions.
    pub fn sync_timeout(mut self, timeout: Duration) -> Self {
        self.sync_timeout = timeout;
        self
    }

    /// Sets the reconnect delays.
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff_min = min;
        self.backoff_max = max;
        self
    }

    /// Sets [`RedisConfig::lease_ttl`].
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self
    }

    /// Sets the heartbeat and the count time-to-live.
    pub fn heartbeat(mut self, every: Duration, count_ttl: Duration) -> Self {
        self.heartbeat = every;
        self.count_ttl = count_ttl;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        validate_prefix(&self.prefix)?;
        let positive = [
            self.command_timeout,
            self.connect_timeout,
            self.start_timeout,
            self.sync_timeout,
            self.backoff_min,
            self.heartbeat,
        ];
        if positive.iter().any(Duration::is_zero) {
            return Err(Error::InvalidConfig(
                "timeouts, backoff and heartbeat must be > 0",
            ));
        }
        if self.backoff_max < self.backoff_min {
            return Err(Error::InvalidConfig("backoff_max must be >= backoff_min"));
        }
        if self.count_ttl < self.heartbeat * 2 {
            return Err(Error::InvalidConfig(
                "count_ttl must be at least twice the heartbeat",
            ));
        }
        if self.lease_ttl <= self.heartbeat * 2 + self.command_timeout {
            return Err(Error::InvalidConfig(
                "lease_ttl must be more than twice the heartbeat plus the command timeout",
            ));
        }
        Ok(())
    }
}

pub(crate) fn validate_prefix(prefix: &str) -> Result<(), Error> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 32
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidPrefix(prefix.to_owned()))
    }
}
