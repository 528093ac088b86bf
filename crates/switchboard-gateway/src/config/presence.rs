//! `[presence]`: checked, and turned into the cluster's presence settings.

use std::time::Duration;

use switchboard::broker::presence::{JoinLeave, PresenceConfig, PresenceRule};
use switchboard::protocol::ChannelPattern;

use super::Config;
use super::plan::Problems;

/// The longest grace a leave may wait.
const MAX_GRACE: Duration = Duration::from_secs(300);
/// Most members one presence answer may list.
const MAX_MEMBERS: usize = 100_000;

/// Who the cluster keeps track of.
#[derive(Debug, Clone)]
pub(crate) struct PresencePlan {
    pub(crate) config: PresenceConfig,
}

impl PresencePlan {
    /// One line for `config check` and the startup log.
    pub(crate) fn summary(&self) -> String {
        if self.config.rules.is_empty() {
            return "presence: none".to_owned();
        }
        let rules: Vec<String> = self
            .config
            .rules
            .iter()
            .map(|r| format!("{} (join/leave: {})", r.pattern, r.join_leave.as_str()))
            .collect();
        format!(
            "presence: {}; leaves wait {} for the user to come back",
            rules.join(", "),
            humantime::format_duration(self.config.grace)
        )
    }
}

pub(crate) fn presence_plan(config: &Config, p: &mut Problems) -> PresencePlan {
    let section = &config.presence;
    let mut presence = PresenceConfig::new()
        .with_grace(section.grace.0)
        .with_max_members(section.max_members);
    for (i, rule) in section.channels.iter().enumerate() {
        let key = |field: &str| format!("presence.channels[{i}].{field}");
        let pattern = match ChannelPattern::new(&rule.pattern) {
            Ok(pattern) => pattern,
            Err(e) => {
                p.push(key("pattern"), e.to_string());
                continue;
            }
        };
        let Some(join_leave) = JoinLeave::parse(&rule.join_leave) else {
            p.push(
                key("join_leave"),
                format!(
                    "{:?} is not one of \"user\", \"connection\", \"off\"",
                    rule.join_leave
                ),
            );
            continue;
        };
        presence = presence.rule(PresenceRule::new(pattern).with_join_leave(join_leave));
    }
    if section.grace.0 > MAX_GRACE {
        p.push("presence.grace", "must be at most 5m");
    }
    if !(1..=MAX_MEMBERS).contains(&section.max_members) {
        p.push(
            "presence.max_members",
            format!("must be 1 to {MAX_MEMBERS}"),
        );
    }
    PresencePlan { config: presence }
}
