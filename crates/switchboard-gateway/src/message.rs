//! Server messages of the structured protocol that the HTTP API publishes:
//! `EVENT`, `DATA` and `NOTIFICATION`, in the envelope of docs/protocol.md.
//!
//! TODO(protocol): use `switchboard-protocol`'s types once that crate lands,
//! so the envelope has one definition.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A structured message as the API takes it: the `type` and the payload's
/// fields side by side.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
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
        level: Level,
        #[serde(default)]
        actions: Vec<NotificationAction>,
    },
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Level {
    #[default]
    Info,
    Success,
    Warning,
    Error,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NotificationAction {
    label: String,
    action: String,
}

#[derive(Serialize)]
struct Envelope<P> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: String,
    timestamp: f64,
    payload: P,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Payload<'a> {
    Event {
        event: &'a str,
        data: &'a Value,
        #[serde(skip_serializing_if = "Option::is_none")]
        channel: Option<&'a str>,
    },
    Data {
        resource: &'a str,
        data: &'a Value,
        #[serde(skip_serializing_if = "Option::is_none")]
        channel: Option<&'a str>,
    },
    Notification {
        title: &'a str,
        message: &'a str,
        level: Level,
        actions: &'a [NotificationAction],
        #[serde(skip_serializing_if = "Option::is_none")]
        channel: Option<&'a str>,
    },
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

    /// The wire form, with a fresh id and the current time; `channel` is
    /// set when the message goes to a room (a channel).
    pub(crate) fn encode(&self, channel: Option<&str>) -> (String, String) {
        let id = uuid::Uuid::new_v4().to_string();
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let payload = match self {
            Self::Event { event, data } => Payload::Event {
                event,
                data,
                channel,
            },
            Self::Data { resource, data } => Payload::Data {
                resource,
                data,
                channel,
            },
            Self::Notification {
                title,
                message,
                level,
                actions,
            } => Payload::Notification {
                title,
                message,
                level: *level,
                actions,
                channel,
            },
        };
        let envelope = Envelope {
            kind: self.kind(),
            id: id.clone(),
            timestamp,
            payload,
        };
        let text = serde_json::to_string(&envelope).expect("a message serialises");
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
    fn unknown_types_and_fields_are_refused() {
        assert!(serde_json::from_str::<ServerMessage>(r#"{"type":"PING"}"#).is_err());
        assert!(
            serde_json::from_str::<ServerMessage>(r#"{"type":"EVENT","event":"x","colour":1}"#)
                .is_err()
        );
        assert!(serde_json::from_str::<ServerMessage>(r#"{"type":"DATA","data":1}"#).is_err());
    }
}
