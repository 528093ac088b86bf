//! `[history]`: checked, and turned into the cluster's history settings.

use std::time::Duration;

use switchboard::broker::stream::{HistoryConfig, HistoryRule};
use switchboard::protocol::ChannelPattern;

use super::Config;
use super::plan::Problems;

/// Most publications a channel may keep.
const MAX_SIZE: usize = 100_000;
/// Most publications one recovery may replay.
const MAX_RECOVERY: usize = 10_000;

/// What the cluster keeps, and the in-memory broker's cap.
#[derive(Debug, Clone)]
pub(crate) struct HistoryPlan {
    pub(crate) config: HistoryConfig,
    pub(crate) max_memory: usize,
}

impl HistoryPlan {
    /// One line for `config check` and the startup log.
    pub(crate) fn summary(&self) -> String {
        if self.config.rules.is_empty() {
            return "history: none (every channel is at most once)".to_owned();
        }
        let rules: Vec<String> = self
            .config
            .rules
            .iter()
            .map(|r| {
                format!(
                    "{} ({} for {})",
                    r.pattern,
                    r.size,
                    humantime::format_duration(r.ttl)
                )
            })
            .collect();
        format!(
            "history: {}; recovery replays up to {}",
            rules.join(", "),
            self.config.recovery_limit
        )
    }
}

pub(crate) fn history_plan(config: &Config, p: &mut Problems) -> HistoryPlan {
    let h = &config.history;
    let mut history = HistoryConfig::new()
        .with_recovery_limit(h.recovery_limit)
        .with_meta_ttl(h.meta_ttl.0)
        .with_idempotency_window(h.idempotency_window.0);
    for (i, rule) in h.channels.iter().enumerate() {
        let key = |field: &str| format!("history.channels[{i}].{field}");
        let pattern = match ChannelPattern::new(&rule.pattern) {
            Ok(pattern) => pattern,
            Err(e) => {
                p.push(key("pattern"), e.to_string());
                continue;
            }
        };
        if !(1..=MAX_SIZE).contains(&rule.size) {
            p.push(key("size"), format!("must be 1 to {MAX_SIZE}"));
        }
        if rule.ttl.0 < Duration::from_secs(1) {
            p.push(key("ttl"), "must be at least 1s");
        }
        if rule.ttl.0 > h.meta_ttl.0 {
            p.push(key("ttl"), "must not be longer than history.meta_ttl");
        }
        history = history.rule(
            HistoryRule::new(pattern)
                .with_size(rule.size)
                .with_ttl(rule.ttl.0),
        );
    }
    if !(1..=MAX_RECOVERY).contains(&h.recovery_limit) {
        p.push(
            "history.recovery_limit",
            format!("must be 1 to {MAX_RECOVERY}"),
        );
    }
    if h.idempotency_window.0 < Duration::from_secs(1) {
        p.push("history.idempotency_window", "must be at least 1s");
    }
    if h.max_memory.0 < 1 << 20 {
        p.push("history.max_memory", "must be at least 1MiB");
    }
    HistoryPlan {
        config: history,
        max_memory: h.max_memory.0,
    }
}
