//! The envelope around every message, and the parser that turns a client's
//! text into one or into the documented error.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::codes::ErrorCode;
use crate::kind::MessageType;
use crate::payload::Message;

/// The longest `id` a client may send, in characters.
pub const MAX_ID_LEN: usize = 64;

/// Longest piece of client input quoted back in an error message.
const QUOTE_LEN: usize = 64;

/// One protocol message with its envelope fields.
///
/// Serialises as `{"type", "payload", "id"?, "timestamp"?, "correlation_id"?}`
/// (absent optional fields are left out). Deserialising runs [`parse`]'s
/// checks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Envelope {
    /// The type and payload.
    #[serde(flatten)]
    pub message: Message,
    /// The message's id: a UUID from the server; 1–64 characters from a
    /// client (required on `ACTION`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Seconds since the Unix epoch, with a fraction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<f64>,
    /// On a reply: the `id` of the message it answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// On a publication to a channel with history: its offset in the
    /// channel's stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

impl Envelope {
    /// An envelope around `message`, without id, timestamp or correlation.
    pub fn new(message: impl Into<Message>) -> Self {
        Self {
            message: message.into(),
            id: None,
            timestamp: None,
            correlation_id: None,
            offset: None,
        }
    }

    /// Sets the id.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets the timestamp (seconds since the Unix epoch).
    pub fn with_timestamp(mut self, timestamp: f64) -> Self {
        self.timestamp = Some(timestamp);
        self
    }

    /// Makes this a reply to the message with id `id` (no-op for `None`).
    pub fn correlated_with(mut self, id: Option<&str>) -> Self {
        self.correlation_id = id.map(str::to_owned);
        self
    }

    /// The message's type.
    pub fn kind(&self) -> MessageType {
        self.message.kind()
    }
}

impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        from_value(value).map_err(serde::de::Error::custom)
    }
}

/// Why a client's message could not be used, as the `ERROR` to answer with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ParseError {
    /// [`ErrorCode::InvalidJson`], [`ErrorCode::UnknownType`] or
    /// [`ErrorCode::InvalidMessage`].
    pub code: ErrorCode,
    /// What was wrong (quotes at most 64 characters of the input).
    pub message: String,
    /// The message's `id`, when it could be read: the `ERROR`'s `correlation_id`.
    pub id: Option<String>,
}

impl ParseError {
    fn new(code: ErrorCode, message: impl Into<String>, id: Option<String>) -> Self {
        Self {
            code,
            message: message.into(),
            id,
        }
    }
}

/// Parses a client's text frame.
///
/// - Not JSON, or JSON but not an object: [`ErrorCode::InvalidJson`].
/// - `type` missing, not a string, or not a message type: [`ErrorCode::UnknownType`].
/// - `id`, `timestamp` or `correlation_id` of the wrong type, an `id`
///   longer than 64 characters, or a payload that does not fit its type:
///   [`ErrorCode::InvalidMessage`].
///
/// A missing or `null` payload is read as `{}`; unknown fields are ignored.
/// Never panics, whatever the input.
pub fn parse(text: &str) -> Result<Envelope, ParseError> {
    match serde_json::from_str::<Value>(text) {
        Ok(value) => from_value(value),
        Err(e) => Err(not_json(&e)),
    }
}

/// [`parse`] for bytes (which must be UTF-8 JSON).
pub fn parse_slice(bytes: &[u8]) -> Result<Envelope, ParseError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(value) => from_value(value),
        Err(e) => Err(not_json(&e)),
    }
}

fn not_json(e: &serde_json::Error) -> ParseError {
    ParseError::new(ErrorCode::InvalidJson, format!("not JSON: {e}"), None)
}

fn from_value(value: Value) -> Result<Envelope, ParseError> {
    let Value::Object(map) = value else {
        return Err(ParseError::new(
            ErrorCode::InvalidJson,
            "a message must be a JSON object",
            None,
        ));
    };
    from_map(map)
}

fn from_map(mut map: Map<String, Value>) -> Result<Envelope, ParseError> {
    // The id first, so that every later error can name the message it answers.
    let id = match map.remove("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if (1..=MAX_ID_LEN).contains(&id.chars().count()) => Some(id),
        Some(_) => {
            return Err(ParseError::new(
                ErrorCode::InvalidMessage,
                "`id` must be a string of 1 to 64 characters",
                None,
            ));
        }
    };
    let invalid = |message: String, id: &Option<String>| {
        ParseError::new(ErrorCode::InvalidMessage, message, id.clone())
    };
    let correlation_id = match map.remove("correlation_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(c)) if c.chars().count() <= MAX_ID_LEN => Some(c),
        Some(_) => {
            let message = "`correlation_id` must be a string of at most 64 characters";
            return Err(invalid(message.to_owned(), &id));
        }
    };
    let offset = match map.remove("offset") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64(),
        Some(_) => {
            let message = "`offset` must be a whole number";
            return Err(invalid(message.to_owned(), &id));
        }
    };
    let timestamp = match map.remove("timestamp") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_f64(),
        Some(_) => return Err(invalid("`timestamp` must be a number".to_owned(), &id)),
    };
    let kind = match map.remove("type") {
        None | Some(Value::Null) => {
            return Err(ParseError::new(
                ErrorCode::UnknownType,
                "`type` is missing",
                id,
            ));
        }
        Some(value) => match MessageType::deserialize(&value) {
            Ok(kind) => kind,
            Err(_) => {
                return Err(ParseError::new(
                    ErrorCode::UnknownType,
                    format!("unknown message type {}", quote(&value)),
                    id,
                ));
            }
        },
    };
    let payload = match map.remove("payload") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(payload) => payload,
    };
    let message = Message::from_parts(kind, payload).map_err(|e| {
        invalid(
            format!("invalid {kind} payload: {}", truncate(&e.to_string())),
            &id,
        )
    })?;
    Ok(Envelope {
        message,
        id,
        timestamp,
        correlation_id,
        offset,
    })
}

/// `value` as JSON, cut to [`QUOTE_LEN`] characters.
fn quote(value: &Value) -> String {
    truncate(&value.to_string())
}

fn truncate(text: &str) -> String {
    match text.char_indices().nth(QUOTE_LEN) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::payload;

    fn code(text: &str) -> ErrorCode {
        parse(text).unwrap_err().code
    }

    #[test]
    fn bad_input_gets_the_documented_code() {
        assert_eq!(code("not json"), ErrorCode::InvalidJson);
        assert_eq!(code("[1,2]"), ErrorCode::InvalidJson);
        assert_eq!(code("\"PING\""), ErrorCode::InvalidJson);
        assert_eq!(code("{}"), ErrorCode::UnknownType);
        assert_eq!(code(r#"{"type":"NOPE"}"#), ErrorCode::UnknownType);
        assert_eq!(code(r#"{"type":"ping"}"#), ErrorCode::UnknownType);
        assert_eq!(code(r#"{"type":5}"#), ErrorCode::UnknownType);
        assert_eq!(code(r#"{"type":"SUBSCRIBE"}"#), ErrorCode::InvalidMessage);
        assert_eq!(
            code(r#"{"type":"SUBSCRIBE","payload":{"subscriptions":"x"}}"#),
            ErrorCode::InvalidMessage
        );
        assert_eq!(code(r#"{"type":"PING","id":5}"#), ErrorCode::InvalidMessage);
        assert_eq!(
            code(r#"{"type":"PING","id":""}"#),
            ErrorCode::InvalidMessage
        );
        assert_eq!(
            code(&format!(r#"{{"type":"PING","id":"{}"}}"#, "x".repeat(65))),
            ErrorCode::InvalidMessage
        );
        assert_eq!(
            code(r#"{"type":"PING","timestamp":"now"}"#),
            ErrorCode::InvalidMessage
        );
    }

    #[test]
    fn errors_carry_the_id_when_readable() {
        let e = parse(r#"{"type":"ACTION","id":"a1","payload":{}}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidMessage);
        assert_eq!(e.id.as_deref(), Some("a1"));
        let e = parse(r#"{"type":"NOPE","id":"a2"}"#).unwrap_err();
        assert_eq!(e.id.as_deref(), Some("a2"));
    }

    #[test]
    fn empty_payloads_may_be_omitted_and_unknown_fields_are_ignored() {
        let e = parse(r#"{"type":"PING","id":"p","extra":1}"#).unwrap();
        assert_eq!(e.message, Message::Ping(payload::Ping {}));
        let e = parse(r#"{"type":"PONG","payload":null,"correlation_id":"s1"}"#).unwrap();
        assert_eq!(e.correlation_id.as_deref(), Some("s1"));
        let e = parse(r#"{"type":"CONNECT","payload":{"client":{"name":"x","y":2}}}"#).unwrap();
        assert_eq!(
            e.message,
            Message::Connect(payload::Connect {
                client: Some(payload::ClientInfo {
                    name: Some("x".into()),
                    version: None
                })
            })
        );
    }

    #[test]
    fn envelopes_serialise_flat() {
        let e = Envelope::new(payload::Event::new("a.b", json!({"x": 1})))
            .with_id("s1")
            .with_timestamp(1.5);
        let value = serde_json::to_value(&e).unwrap();
        assert_eq!(
            value,
            json!({"type":"EVENT","id":"s1","timestamp":1.5,"payload":{"event":"a.b","data":{"x":1}}})
        );
        let back: Envelope = serde_json::from_value(value).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn quotes_are_cut() {
        let long = format!(r#"{{"type":"{}"}}"#, "é".repeat(500));
        let e = parse(&long).unwrap_err();
        assert!(e.message.chars().count() < 100, "{}", e.message);
    }
}
