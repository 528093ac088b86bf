//! Streams on the wire: what a client asks for when it subscribes
//! (recovery, the latest publications), what it is told back, and the gap
//! event. `docs/protocol.md`, "Streams and recovery", is the contract.

use serde::{Deserialize, Serialize};

/// The event name of the message that tells subscribers publications were
/// lost (`EVENT` with data [`StreamGap`]).
pub const GAP_EVENT: &str = "switchboard.gap";

/// One entry of `SUBSCRIBE`'s `subscriptions`: a channel name, or an object
/// with options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SubscriptionRequest {
    /// `"public:news"`.
    Name(String),
    /// `{"channel": "public:news", "recover": {...}}`.
    Options(SubscribeOptions),
}

impl SubscriptionRequest {
    /// The channel asked for.
    pub fn channel(&self) -> &str {
        match self {
            Self::Name(name) => name,
            Self::Options(options) => &options.channel,
        }
    }

    /// The options (none for a bare name).
    pub fn options(&self) -> Option<&SubscribeOptions> {
        match self {
            Self::Name(_) => None,
            Self::Options(options) => Some(options),
        }
    }
}

impl From<&str> for SubscriptionRequest {
    fn from(name: &str) -> Self {
        Self::Name(name.to_owned())
    }
}

/// A subscription with options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribeOptions {
    /// The channel.
    pub channel: String,
    /// Replay what was published after this position (the last one the
    /// client saw), then go live: all of it, or nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recover: Option<Recover>,
    /// Replay the latest `last` publications (what the stream still has of
    /// them; a `last` over the recovery limit is lowered to it), then go
    /// live. Not together with `recover`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<u32>,
    /// Get the channel's join and leave events (`switchboard.join`,
    /// `switchboard.leave`), where its presence rule sends them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub join_leave: bool,
}

/// A position a client saw last: the stream's epoch and the offset of the
/// last publication received (0 if none).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Recover {
    /// The epoch from `SUBSCRIBE_SUCCESS` (or a gap event's `resume`).
    pub epoch: String,
    /// The offset of the last publication received.
    pub offset: u64,
}

/// Why a recovery replayed nothing (`reason` in `SUBSCRIBE_SUCCESS` with
/// `recovered: false`). The client should reload its state some other way
/// (an HTTP call) and go on from the position it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotRecovered {
    /// The channel keeps no history.
    NoHistory,
    /// The stream's epoch is not the one given: its history was lost.
    EpochChanged,
    /// The offset given is past the stream's latest.
    UnknownOffset,
    /// More was missed than one recovery replays (300 by default).
    LimitExceeded,
    /// Part of what was missed is no longer kept (trimmed or expired).
    HistoryGone,
    /// The history could not be read just now.
    Unavailable,
}

impl NotRecovered {
    /// Every reason, in the order of the table in `docs/protocol.md`.
    pub const ALL: [Self; 6] = [
        Self::NoHistory,
        Self::EpochChanged,
        Self::UnknownOffset,
        Self::LimitExceeded,
        Self::HistoryGone,
        Self::Unavailable,
    ];

    /// The reason on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NoHistory => "no_history",
            Self::EpochChanged => "epoch_changed",
            Self::UnknownOffset => "unknown_offset",
            Self::LimitExceeded => "limit_exceeded",
            Self::HistoryGone => "history_gone",
            Self::Unavailable => "unavailable",
        }
    }
}

/// The data of a gap event ([`GAP_EVENT`]): publications the server could
/// not deliver. The next publication follows `resume`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamGap {
    /// The epoch of the missed publications.
    pub epoch: String,
    /// The first missed offset.
    pub from: u64,
    /// The last missed offset; `null` when unknown (the epoch changed, so
    /// whatever followed `from - 1` in it is lost).
    pub to: Option<u64>,
    /// The position delivery goes on from.
    pub resume: Recover,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn subscriptions_are_names_or_options() {
        let requests: Vec<SubscriptionRequest> = serde_json::from_value(json!([
            "public:a",
            {"channel": "public:b", "recover": {"epoch": "e1", "offset": 7}},
            {"channel": "public:c", "last": 10}
        ]))
        .unwrap();
        assert_eq!(requests[0].channel(), "public:a");
        assert_eq!(
            requests[1].options().unwrap().recover,
            Some(Recover {
                epoch: "e1".into(),
                offset: 7
            })
        );
        assert_eq!(requests[2].options().unwrap().last, Some(10));
        for bad in [
            json!([{"channel": "x", "recover": {"epoch": "e", "offset": -1}}]),
            json!([{"channel": "x", "recover": {"epoch": 1, "offset": 1}}]),
            json!([{"channel": "x", "recover": {"offset": 1}}]),
            json!([{"recover": {"epoch": "e", "offset": 1}}]),
            json!([7]),
        ] {
            assert!(
                serde_json::from_value::<Vec<SubscriptionRequest>>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn reasons_match_serde() {
        for reason in NotRecovered::ALL {
            assert_eq!(serde_json::to_value(reason).unwrap(), reason.as_str());
        }
    }
}
