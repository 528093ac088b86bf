//! Structured messages the HTTP API publishes: `EVENT`, `DATA` and
//! `NOTIFICATION` as the API takes them, turned into the protocol's own
//! types (`switchboard::protocol::wire`) and envelope.

use serde::Deserialize;
use serde_json::Value;
use switchboard::protocol::wire::Message;
use switchboard::protocol::wire::payload::{Data, Event, Level, Notification};
use utoipa::ToSchema;

/// A structured message as the API takes it: the `type` and the payload's
/// fields side by side. Stricter than the protocol (unknown fields are
/// refused), so a typo in a publisher shows up as a 400, not as a field
/// silently missing on every client.
///
/// Wrapped in the protocol envelope (type, id, timestamp, payload);
/// `channel` is added when the target is a room.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(tag = "type", deny_unknown_fields)]
#[schema(as = Message)]
pub(crate) enum ServerMessage {
    #[serde(rename = "EVENT")]
    Event {
        event: String,
        #[serde(default)]
        data: Value,
    },
    #[serde(rename = "DATA")]
    Data {
        resource: String,
        #[serde(default)]
        data: Value,
    },
    #[serde(rename = "NOTIFICATION")]
    Notification {
        title: String,
        message: String,
        #[serde(default)]
        #[schema(value_type = LevelSchema, default = "info")]
        level: Level,
        #[serde(default)]
        actions: Vec<NotificationAction>,
    },
}

/// `Level`'s schema (the protocol crate has no OpenAPI types; a test keeps
/// the two the same).
#[derive(ToSchema)]
#[schema(as = Level, rename_all = "lowercase")]
#[allow(dead_code)]
pub(crate) enum LevelSchema {
    Info,
    Success,
    Warning,
    Error,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NotificationAction {
    label: String,
    action: String,
}

impl ServerMessage {
    /// The message's type, for logs and metrics.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Event { .. } => "EVENT",
            Self::Data { .. } => "DATA",
            Self::Notification { .. } => "NOTIFICATION",
        }
    }

    /// Checks what serde cannot: required strings are not empty.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let (field, value) = match self {
            Self::Event { event, .. } => ("message.event", event),
            Self::Data { resource, .. } => ("message.resource", resource),
            Self::Notification { title, .. } => ("message.title", title),
        };
        if value.is_empty() {
            return Err(format!("{field}: must not be empty"));
        }
        Ok(())
    }

    fn into_wire(self) -> Message {
        match self {
            Self::Event { event, data } => Event::new(event, data).into(),
            Self::Data { resource, data } => Data::new(resource, data).into(),
            Self::Notification {
                title,
                message,
                level,
                actions,
            } => actions
                .into_iter()
                .fold(Notification::new(title, message).level(level), |n, a| {
                    n.action(a.label, a.action)
                })
                .into(),
        }
    }

    /// The wire form, stamped by the framework (a fresh id, the current
    /// time); `channel` is set when the message goes to a room (a
    /// channel). Returns the id too.
    pub(crate) fn encode(self, channel: Option<&str>) -> (String, String) {
        let mut message = self.into_wire();
        if let Some(channel) = channel {
            message.set_channel(channel);
        }
        let envelope = switchboard::protocol::stamp(message, None);
        let id = envelope.id.clone().unwrap_or_default();
        let text = serde_json::to_string(&envelope).expect("an envelope serialises");
        (id, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_wrapped_in_the_protocol_envelope() {
        let message: ServerMessage = serde_json::from_str(
            r#"{"type":"EVENT","event":"article.published","data":{"title":"Hello"}}"#,
        )
        .unwrap();
        let (id, text) = message.encode(Some("public:news"));
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["type"], "EVENT");
        assert_eq!(value["id"], id.as_str());
        assert!(value["timestamp"].as_f64().unwrap() > 1.7e9);
        assert_eq!(value["payload"]["event"], "article.published");
        assert_eq!(value["payload"]["data"]["title"], "Hello");
        assert_eq!(value["payload"]["channel"], "public:news");
        // The protocol's own parser reads it back.
        let parsed = switchboard::protocol::wire::envelope::parse(&text).unwrap();
        assert_eq!(parsed.kind().to_string(), "EVENT");
    }

    #[test]
    fn notifications_default_to_info_without_actions() {
        let message: ServerMessage =
            serde_json::from_str(r#"{"type":"NOTIFICATION","title":"Deploy","message":"v2"}"#)
                .unwrap();
        let (_, text) = message.encode(None);
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["payload"]["level"], "info");
        assert_eq!(value["payload"]["actions"], serde_json::json!([]));
        assert!(value["payload"].get("channel").is_none());
    }

    #[test]
    fn the_documented_levels_are_the_protocols() {
        use utoipa::PartialSchema as _;
        let schema = serde_json::to_value(LevelSchema::schema()).unwrap();
        let documented: Vec<String> = serde_json::from_value(schema["enum"].clone()).unwrap();
        let levels = [Level::Info, Level::Success, Level::Warning, Level::Error];
        let protocol: Vec<String> = levels
            .iter()
            .map(|l| {
                serde_json::to_value(l)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(documented, protocol);
    }

    #[test]
    fn unknown_types_and_fields_are_refused() {
        assert!(serde_json::from_str::<ServerMessage>(r#"{"type":"PING"}"#).is_err());
        assert!(
            serde_json::from_str::<ServerMessage>(r#"{"type":"EVENT","event":"x","colour":1}"#)
                .is_err()
        );
        assert!(serde_json::from_str::<ServerMessage>(r#"{"type":"DATA","data":1}"#).is_err());
    }
}
