//! Which channels keep a history, how much, for how long.

use std::time::Duration;

use switchboard_protocol::ChannelPattern;

/// A history rule: channels matching `pattern` keep their latest `size`
/// publications for at most `ttl` after each one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HistoryRule {
    /// The channels (rooms) this rule is for (`public:*`).
    pub pattern: ChannelPattern,
    /// Publications kept per channel. Default 100.
    pub size: usize,
    /// How long a publication is kept. Default 10 minutes. A channel quiet
    /// for longer has no history left, though its epoch and offset go on
    /// (see [`HistoryConfig::meta_ttl`]).
    pub ttl: Duration,
}

impl HistoryRule {
    /// Default size (100) and time to live (10 minutes).
    pub const DEFAULT_SIZE: usize = 100;
    /// See [`HistoryRule::DEFAULT_SIZE`].
    pub const DEFAULT_TTL: Duration = Duration::from_secs(600);

    /// A rule for `pattern`, with the default size and time to live.
    pub fn new(pattern: ChannelPattern) -> Self {
        Self {
            pattern,
            size: Self::DEFAULT_SIZE,
            ttl: Self::DEFAULT_TTL,
        }
    }

    /// Sets [`HistoryRule::size`] (at least 1).
    pub fn with_size(mut self, size: usize) -> Self {
        self.size = size.max(1);
        self
    }

    /// Sets [`HistoryRule::ttl`] (at least 1 ms).
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl.max(Duration::from_millis(1));
        self
    }
}

/// History for a cluster: the rules (first match wins) and the limits that
/// apply to every channel. Default: no channel keeps history.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HistoryConfig {
    /// The rules, in order.
    pub rules: Vec<HistoryRule>,
    /// Most publications one recovery replays. Default 300; a client that
    /// missed more gets `recovered: false` and no replay.
    pub recovery_limit: usize,
    /// How long a channel's epoch and latest offset are kept after its last
    /// publication. Default 24 hours. A channel quiet for longer starts a
    /// new epoch.
    pub meta_ttl: Duration,
    /// How long a retried publish with the same idempotency key is
    /// recognised. Default 5 minutes.
    pub idempotency_window: Duration,
    /// How long an instance waits for a publication that arrived out of
    /// order to be followed by the ones before it, before it reads them
    /// from the stream. Default 100 ms.
    pub repair_after: Duration,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            rules: Vec::new(),
            recovery_limit: 300,
            meta_ttl: Duration::from_secs(24 * 3600),
            idempotency_window: Duration::from_secs(300),
            repair_after: Duration::from_millis(100),
        }
    }
}

impl HistoryConfig {
    /// No history (the default).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a rule (after those already there).
    pub fn rule(mut self, rule: HistoryRule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Sets [`HistoryConfig::recovery_limit`].
    pub fn with_recovery_limit(mut self, limit: usize) -> Self {
        self.recovery_limit = limit;
        self
    }

    /// Sets [`HistoryConfig::meta_ttl`].
    pub fn with_meta_ttl(mut self, ttl: Duration) -> Self {
        self.meta_ttl = ttl;
        self
    }

    /// Sets [`HistoryConfig::idempotency_window`].
    pub fn with_idempotency_window(mut self, window: Duration) -> Self {
        self.idempotency_window = window;
        self
    }

    /// Sets [`HistoryConfig::repair_after`].
    pub fn with_repair_after(mut self, wait: Duration) -> Self {
        self.repair_after = wait;
        self
    }

    /// The rule for `channel`, if it keeps history.
    pub fn rule_for(&self, channel: &str) -> Option<&HistoryRule> {
        // Rooms starting with `#` are the framework's own (presence events).
        if channel.starts_with('#') {
            return None;
        }
        self.rules.iter().find(|r| r.pattern.is_match(channel))
    }
}

/// What a broker needs to append to one channel's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamLimits {
    /// Publications kept.
    pub size: usize,
    /// How long each is kept.
    pub ttl: Duration,
    /// How long the epoch and offset outlive the last publication.
    pub meta_ttl: Duration,
    /// How long an idempotency key is remembered.
    pub idempotency_window: Duration,
}

impl StreamLimits {
    /// The limits of `rule` under `config`.
    pub fn new(rule: &HistoryRule, config: &HistoryConfig) -> Self {
        Self {
            size: rule.size,
            ttl: rule.ttl,
            meta_ttl: config.meta_ttl.max(rule.ttl),
            idempotency_window: config.idempotency_window,
        }
    }
}
