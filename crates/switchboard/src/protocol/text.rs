//! Bare text published to a channel of the structured protocol.
//!
//! A `/ws` client takes every frame as a protocol envelope
//! (`docs/protocol.md`), but a publisher (a Redis `PUBLISH` with `kind:
//! "text"`, the gateway's HTTP API with `text`) may send a room any text.
//! [`StructuredChannels`] says which rooms are the protocol's channels, and
//! turns text that is not already a message of the protocol into the
//! `EVENT` [`TEXT_EVENT`] with the text as its data, so that the channel's
//! subscribers never see a bare frame.

use serde_json::Value;
use switchboard_protocol::payload::Event;
use switchboard_protocol::{Message, envelope};

use super::channels::{Access, ChannelRules};
use crate::stamp::stamp;

/// The event that carries bare text published to a channel:
/// `{"event": "switchboard.text", "data": "<the text>", "channel": "<room>"}`.
pub const TEXT_EVENT: &str = "switchboard.text";

/// The rooms that are channels of the structured protocol: those some
/// endpoint's [`ChannelRules`] let a client subscribe to, except rooms of
/// endpoints that speak raw WebSocket (the gateway's `/ws/broadcast`).
/// Cheap to clone. The default holds no channel: nothing is wrapped.
#[derive(Debug, Clone, Default)]
pub struct StructuredChannels {
    endpoints: Vec<ChannelRules>,
    raw_rooms: Vec<String>,
}

impl StructuredChannels {
    /// No channels.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the channels an endpoint's rules allow (the first rule that
    /// matches a room decides, as for a subscription; `Nobody` does not
    /// allow it).
    pub fn endpoint(mut self, rules: ChannelRules) -> Self {
        self.endpoints.push(rules);
        self
    }

    /// Leaves out a room whose members are raw WebSocket clients.
    pub fn raw_room(mut self, room: impl Into<String>) -> Self {
        self.raw_rooms.push(room.into());
        self
    }

    /// Whether `room` is a channel of the protocol.
    pub fn contains(&self, room: &str) -> bool {
        !self.raw_rooms.iter().any(|r| r == room)
            && self.endpoints.iter().any(|rules| {
                rules
                    .rules()
                    .find(|(pattern, _)| pattern.is_match(room))
                    .is_some_and(|(_, access)| !matches!(access, Access::Nobody))
            })
    }

    /// `text` as the subscribers of `room` must get it: `None` when it can
    /// go as it is (`room` is no channel, or `text` is already a message of
    /// the protocol); otherwise the `EVENT` [`TEXT_EVENT`] on `room` with
    /// `text` as its data, stamped with a fresh id (returned too) and the
    /// current time.
    pub fn wrap_text(&self, room: &str, text: &str) -> Option<(String, String)> {
        if !self.contains(room) || envelope::parse(text).is_ok() {
            return None;
        }
        let mut message = Message::from(Event::new(TEXT_EVENT, Value::from(text)));
        message.set_channel(room);
        let envelope = stamp(message, None);
        let id = envelope.id.clone().unwrap_or_default();
        let text = serde_json::to_string(&envelope).ok()?;
        Some((id, text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway_like() -> StructuredChannels {
        StructuredChannels::new()
            .endpoint(
                ChannelRules::new()
                    .allow("public:secret", Access::Nobody)
                    .allow("public:*", Access::Anyone),
            )
            .raw_room("public:raw")
    }

    #[test]
    fn channels_are_what_a_client_may_subscribe_to_and_not_raw_rooms() {
        let channels = gateway_like();
        assert!(channels.contains("public:lobby"));
        assert!(!channels.contains("public:secret"), "Nobody decides first");
        assert!(!channels.contains("public:raw"));
        assert!(!channels.contains("broadcast"));
        assert!(!StructuredChannels::default().contains("public:lobby"));
    }

    #[test]
    fn bare_text_becomes_a_text_event_and_envelopes_stay_as_they_are() {
        let channels = gateway_like();
        let (id, wrapped) = channels.wrap_text("public:lobby", "hello").unwrap();
        let value: Value = serde_json::from_str(&wrapped).unwrap();
        assert_eq!(value["type"], "EVENT");
        assert_eq!(value["id"], id.as_str());
        assert_eq!(value["payload"]["event"], TEXT_EVENT);
        assert_eq!(value["payload"]["data"], "hello");
        assert_eq!(value["payload"]["channel"], "public:lobby");
        assert!(envelope::parse(&wrapped).is_ok());
        // JSON that is not a message of the protocol is text too.
        assert!(channels.wrap_text("public:lobby", r#"{"a": 1}"#).is_some());
        // A message of the protocol, another room: unchanged.
        assert_eq!(channels.wrap_text("public:lobby", &wrapped), None);
        assert_eq!(channels.wrap_text("broadcast", "hello"), None);
    }
}
