//! Which channels keep presence, and which send join and leave events.

use std::time::Duration;

use switchboard_protocol::ChannelPattern;

/// Which join and leave events a channel's subscribers get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JoinLeave {
    /// None: presence is kept and can be asked for, nothing is announced.
    Off,
    /// One per user: a user's first connection joins, their last one
    /// leaves, and a leave followed by a join within the grace period (a
    /// reconnect, a page reload) sends neither. Anonymous connections count
    /// one by one. The default.
    #[default]
    User,
    /// One per connection, at once (no grace).
    Connection,
}

impl JoinLeave {
    /// As written in configuration: `off`, `user`, `connection`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::User => "user",
            Self::Connection => "connection",
        }
    }

    /// Parses [`JoinLeave::as_str`]'s names.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Off, Self::User, Self::Connection]
            .into_iter()
            .find(|m| m.as_str() == name)
    }
}

/// A presence rule: channels matching `pattern` keep who is subscribed,
/// and announce joins and leaves per `join_leave`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PresenceRule {
    /// The channels (rooms) this rule is for (`chat:*`).
    pub pattern: ChannelPattern,
    /// The events sent to the channel's subscribers. Default
    /// [`JoinLeave::User`].
    pub join_leave: JoinLeave,
}

impl PresenceRule {
    /// A rule for `pattern`, announcing users' joins and leaves.
    pub fn new(pattern: ChannelPattern) -> Self {
        Self {
            pattern,
            join_leave: JoinLeave::default(),
        }
    }

    /// Sets [`PresenceRule::join_leave`].
    pub fn with_join_leave(mut self, join_leave: JoinLeave) -> Self {
        self.join_leave = join_leave;
        self
    }
}

/// Presence for a cluster: the rules (first match wins) and the grace
/// period. Default: no channel keeps presence. Set it the same on every
/// instance.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PresenceConfig {
    /// The rules, in order.
    pub rules: Vec<PresenceRule>,
    /// How long a user's leave waits for the same user to come back
    /// ([`JoinLeave::User`]): back within it, neither the leave nor the
    /// join is sent. Default 5 s. Counts and member lists change at once.
    pub grace: Duration,
    /// Most members one presence query returns. Default 1,000; the counts
    /// are exact whatever the size.
    pub max_members: usize,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        Self {
            rules: Vec::new(),
            grace: Self::DEFAULT_GRACE,
            max_members: Self::DEFAULT_MAX_MEMBERS,
        }
    }
}

impl PresenceConfig {
    /// See [`PresenceConfig::grace`].
    pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);
    /// See [`PresenceConfig::max_members`].
    pub const DEFAULT_MAX_MEMBERS: usize = 1000;

    /// No channel keeps presence.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a rule (after the existing ones).
    pub fn rule(mut self, rule: PresenceRule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Sets [`PresenceConfig::grace`].
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Sets [`PresenceConfig::max_members`] (at least 1).
    pub fn with_max_members(mut self, max: usize) -> Self {
        self.max_members = max.max(1);
        self
    }

    /// The rule for `channel`: the first whose pattern matches. Rooms
    /// whose name starts with `#` are the framework's own (such as
    /// [`events_room`](super::events_room)) and match no rule.
    pub fn rule_for(&self, channel: &str) -> Option<&PresenceRule> {
        if channel.starts_with('#') {
            return None;
        }
        self.rules.iter().find(|r| r.pattern.is_match(channel))
    }

    /// Whether `channel` sends join and leave events.
    pub fn announces(&self, channel: &str) -> bool {
        self.rule_for(channel)
            .is_some_and(|r| r.join_leave != JoinLeave::Off)
    }

    /// Whether `channel` keeps presence.
    pub fn keeps(&self, channel: &str) -> bool {
        self.rule_for(channel).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_matching_rule_wins_and_modes_parse() {
        let config = PresenceConfig::new()
            .rule(
                PresenceRule::new(ChannelPattern::new("chat:quiet").unwrap())
                    .with_join_leave(JoinLeave::Off),
            )
            .rule(PresenceRule::new(ChannelPattern::new("chat:*").unwrap()));
        assert_eq!(
            config.rule_for("chat:quiet").unwrap().join_leave,
            JoinLeave::Off
        );
        assert_eq!(
            config.rule_for("chat:a").unwrap().join_leave,
            JoinLeave::User
        );
        assert!(!config.keeps("news"));
        for mode in [JoinLeave::Off, JoinLeave::User, JoinLeave::Connection] {
            assert_eq!(JoinLeave::parse(mode.as_str()), Some(mode));
        }
        assert_eq!(JoinLeave::parse("users"), None);
    }
}
