//! The payload of each message type, and [`Message`], the typed pair of
//! `type` and `payload`.
//!
//! Optional fields are left out when serialised if empty; on input,
//! missing optional fields take their defaults and unknown fields are
//! ignored.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::codes::{Code, ErrorCode};
use crate::kind::MessageType;
use crate::presence::{PresenceRequest, PresenceResult};
use crate::stream::{NotRecovered, SubscriptionRequest};

/// A message: its type and its payload. Serialised adjacently tagged, as
/// `{"type": "...", "payload": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Message {
    /// `CONNECT`
    Connect(Connect),
    /// `CONNECT_ACK`
    ConnectAck(ConnectAck),
    /// `DISCONNECT`
    Disconnect(Disconnect),
    /// `AUTHENTICATE`
    Authenticate(Authenticate),
    /// `AUTHENTICATE_SUCCESS`
    AuthenticateSuccess(AuthenticateSuccess),
    /// `AUTHENTICATE_FAILURE`
    AuthenticateFailure(AuthenticateFailure),
    /// `SUBSCRIBE`
    Subscribe(Subscribe),
    /// `SUBSCRIBE_SUCCESS`
    SubscribeSuccess(SubscribeSuccess),
    /// `SUBSCRIBE_FAILURE`
    SubscribeFailure(SubscribeFailure),
    /// `UNSUBSCRIBE`
    Unsubscribe(Unsubscribe),
    /// `UNSUBSCRIBE_ACK`
    UnsubscribeAck(UnsubscribeAck),
    /// `EVENT`
    Event(Event),
    /// `DATA`
    Data(Data),
    /// `NOTIFICATION`
    Notification(Notification),
    /// `ACTION`
    Action(Action),
    /// `ACTION_RESULT`
    ActionResult(ActionResult),
    /// `PRESENCE`
    Presence(PresenceRequest),
    /// `PRESENCE_STATS`
    PresenceStats(PresenceRequest),
    /// `PRESENCE_RESULT`
    PresenceResult(PresenceResult),
    /// `PING`
    Ping(Ping),
    /// `PONG`
    Pong(Pong),
    /// `ERROR`
    Error(ErrorMessage),
}

impl Message {
    /// The message's type.
    pub const fn kind(&self) -> MessageType {
        match self {
            Self::Connect(_) => MessageType::Connect,
            Self::ConnectAck(_) => MessageType::ConnectAck,
            Self::Disconnect(_) => MessageType::Disconnect,
            Self::Authenticate(_) => MessageType::Authenticate,
            Self::AuthenticateSuccess(_) => MessageType::AuthenticateSuccess,
            Self::AuthenticateFailure(_) => MessageType::AuthenticateFailure,
            Self::Subscribe(_) => MessageType::Subscribe,
            Self::SubscribeSuccess(_) => MessageType::SubscribeSuccess,
            Self::SubscribeFailure(_) => MessageType::SubscribeFailure,
            Self::Unsubscribe(_) => MessageType::Unsubscribe,
            Self::UnsubscribeAck(_) => MessageType::UnsubscribeAck,
            Self::Event(_) => MessageType::Event,
            Self::Data(_) => MessageType::Data,
            Self::Notification(_) => MessageType::Notification,
            Self::Action(_) => MessageType::Action,
            Self::ActionResult(_) => MessageType::ActionResult,
            Self::Presence(_) => MessageType::Presence,
            Self::PresenceStats(_) => MessageType::PresenceStats,
            Self::PresenceResult(_) => MessageType::PresenceResult,
            Self::Ping(_) => MessageType::Ping,
            Self::Pong(_) => MessageType::Pong,
            Self::Error(_) => MessageType::Error,
        }
    }

    /// Deserialises `payload` as the payload of `kind`.
    pub fn from_parts(kind: MessageType, payload: Value) -> Result<Self, serde_json::Error> {
        let mut tagged = serde_json::Map::with_capacity(2);
        tagged.insert("type".to_owned(), Value::from(kind.as_str()));
        tagged.insert("payload".to_owned(), payload);
        serde_json::from_value(Value::Object(tagged))
    }

    /// The `channel` of an `EVENT`, `DATA` or `NOTIFICATION`.
    pub fn channel(&self) -> Option<&str> {
        match self {
            Self::Event(p) => p.channel.as_deref(),
            Self::Data(p) => p.channel.as_deref(),
            Self::Notification(p) => p.channel.as_deref(),
            _ => None,
        }
    }

    /// Sets the `channel` of an `EVENT`, `DATA` or `NOTIFICATION` (what the
    /// server does when it publishes one to a channel). Other types have no
    /// channel: returns false and leaves them alone.
    pub fn set_channel(&mut self, channel: impl Into<String>) -> bool {
        let slot = match self {
            Self::Event(p) => &mut p.channel,
            Self::Data(p) => &mut p.channel,
            Self::Notification(p) => &mut p.channel,
            _ => return false,
        };
        *slot = Some(channel.into());
        true
    }
}

macro_rules! into_message {
    ($($variant:ident($payload:ty)),* $(,)?) => {
        $(
            impl From<$payload> for Message {
                fn from(payload: $payload) -> Self {
                    Self::$variant(payload)
                }
            }
        )*
    };
}

into_message!(
    Connect(Connect),
    ConnectAck(ConnectAck),
    Disconnect(Disconnect),
    Authenticate(Authenticate),
    AuthenticateSuccess(AuthenticateSuccess),
    AuthenticateFailure(AuthenticateFailure),
    Subscribe(Subscribe),
    SubscribeSuccess(SubscribeSuccess),
    SubscribeFailure(SubscribeFailure),
    Unsubscribe(Unsubscribe),
    UnsubscribeAck(UnsubscribeAck),
    Event(Event),
    Data(Data),
    Notification(Notification),
    Action(Action),
    ActionResult(ActionResult),
    PresenceResult(PresenceResult),
    Ping(Ping),
    Pong(Pong),
    Error(ErrorMessage),
);

/// `CONNECT`: `{ "client"?: { "name"?, "version"? } }`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connect {
    /// What the client says it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientInfo>,
}

/// The client's name and version, as it reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientInfo {
    /// Such as `switchboard-js`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Such as `0.1.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// `CONNECT_ACK`: the server's hello.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectAck {
    /// The connection's id on the server.
    pub connection_id: String,
    /// Whether the client must send `AUTHENTICATE` before anything else.
    pub requires_auth: bool,
    /// Whether the connection is authenticated.
    pub authenticated: bool,
    /// The authenticated user, if any.
    pub user_id: Option<String>,
    /// When the credentials the connection authenticated with in the
    /// handshake expire (Unix seconds); `null` when they do not, or when it
    /// is not authenticated. `AUTHENTICATE_SUCCESS` carries the same for a
    /// session authenticated later. (Absent from servers before 0.2.)
    #[serde(default)]
    pub expires_at: Option<f64>,
    /// Seconds between the server's `PING`s.
    pub heartbeat_interval: f64,
    /// The server's version.
    pub server_version: String,
    /// Always [`crate::PROTOCOL_VERSION`].
    pub protocol_version: u32,
}

/// `DISCONNECT`: `{ "code"?, "reason"? }`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disconnect {
    /// The close code that follows (from the server) or is wished (from a client).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `AUTHENTICATE`: `{ "auth": { "token" } }`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authenticate {
    /// The credentials.
    pub auth: Credentials,
}

/// The token is never shown.
impl std::fmt::Debug for Authenticate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticate")
            .field("auth", &"[redacted]")
            .finish()
    }
}

/// What `AUTHENTICATE` carries.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// A JWT, an API key, or whatever the endpoint's authenticators accept.
    pub token: String,
}

/// The token is never shown.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials([redacted])")
    }
}

/// `AUTHENTICATE_SUCCESS`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthenticateSuccess {
    /// The authenticated user.
    pub user_id: String,
    /// When the credentials expire (seconds since the Unix epoch), if they do.
    pub expires_at: Option<f64>,
    /// The user's permissions.
    pub permissions: Vec<String>,
}

/// `AUTHENTICATE_FAILURE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthenticateFailure {
    /// Always [`ErrorCode::AuthFailed`].
    pub code: ErrorCode,
    /// Why, such as `Invalid token: token expired`.
    pub reason: String,
    /// Failures left before the server closes with 4004.
    pub attempts_left: u32,
}

/// `SUBSCRIBE`: `{ "subscriptions": [channel] }`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscribe {
    /// The channels, each a name or `{channel, recover?, last?}` (checked
    /// one by one by the server).
    pub subscriptions: Vec<SubscriptionRequest>,
}

/// `SUBSCRIBE_SUCCESS`: one per channel subscribed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribeSuccess {
    /// The channel.
    pub channel: String,
    /// On a channel with history: its stream's epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<String>,
    /// On a channel with history: the offset the subscription starts after
    /// (live publications follow it; a replay ends at it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// When the subscription asked to recover: whether everything missed
    /// is replayed (it follows this message, then live publications).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered: Option<bool>,
    /// With `recovered: false`: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<NotRecovered>,
    /// Data the application attached to this subscription (the gateway's
    /// subscribe proxy: what the backend answered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// When the subscription asked for join and leave events and the
    /// channel sends them: `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_leave: Option<bool>,
    /// When the subscription asked for `last` on a channel with history:
    /// how many of the latest publications the replay takes (the `last`
    /// asked for, lowered to the recovery limit). At most that many follow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<u32>,
}

impl SubscribeSuccess {
    /// A success for `channel`, without stream fields.
    pub fn new(channel: impl Into<String>) -> Self {
        Self {
            channel: channel.into(),
            epoch: None,
            offset: None,
            recovered: None,
            reason: None,
            data: None,
            join_leave: None,
            last: None,
        }
    }
}

/// `SUBSCRIBE_FAILURE`: one per channel refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribeFailure {
    /// The channel, as the client sent it.
    pub channel: String,
    /// [`ErrorCode::Forbidden`], [`ErrorCode::InvalidChannel`] or
    /// [`ErrorCode::TooManySubscriptions`].
    pub code: ErrorCode,
    /// Why, for people.
    pub reason: String,
}

/// `UNSUBSCRIBE`: `{ "subscriptions": [channel] }`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unsubscribe {
    /// Channels to leave.
    pub subscriptions: Vec<String>,
}

/// `UNSUBSCRIBE_ACK`: the channels named in the `UNSUBSCRIBE`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsubscribeAck {
    /// The channels left.
    pub subscriptions: Vec<String>,
}

/// `EVENT`: a named application event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The event's name, such as `article.published`.
    pub event: String,
    /// Anything.
    #[serde(default)]
    pub data: Value,
    /// The channel it was published to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

impl Event {
    /// An event named `event` with `data`.
    pub fn new(event: impl Into<String>, data: impl Into<Value>) -> Self {
        Self {
            event: event.into(),
            data: data.into(),
            channel: None,
        }
    }
}

/// `DATA`: a resource's data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Data {
    /// The resource, such as `messages`.
    pub resource: String,
    /// Anything.
    #[serde(default)]
    pub data: Value,
    /// The channel it was published to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

impl Data {
    /// Data of `resource`.
    pub fn new(resource: impl Into<String>, data: impl Into<Value>) -> Self {
        Self {
            resource: resource.into(),
            data: data.into(),
            channel: None,
        }
    }
}

/// How a notification should look.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Neutral.
    #[default]
    Info,
    /// Something went well.
    Success,
    /// Something needs attention.
    Warning,
    /// Something failed.
    Error,
}

/// `NOTIFICATION`: something to show the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// The headline.
    pub title: String,
    /// The text.
    pub message: String,
    /// How it should look.
    #[serde(default)]
    pub level: Level,
    /// Buttons: each names an action the client may send.
    #[serde(default)]
    pub actions: Vec<NotificationAction>,
    /// The channel it was published to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

impl Notification {
    /// An `info` notification without actions.
    pub fn new(title: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            message: message.into(),
            level: Level::Info,
            actions: Vec::new(),
            channel: None,
        }
    }

    /// Sets the level.
    pub fn level(mut self, level: Level) -> Self {
        self.level = level;
        self
    }

    /// Adds a button.
    pub fn action(mut self, label: impl Into<String>, action: impl Into<String>) -> Self {
        self.actions.push(NotificationAction {
            label: label.into(),
            action: action.into(),
        });
        self
    }
}

/// A notification's button.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationAction {
    /// The button's text.
    pub label: String,
    /// The action the client sends when it is pressed.
    pub action: String,
}

/// `ACTION`: `{ "action", "data"? }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// The registered action's name, such as `chat.send`.
    pub action: String,
    /// Its argument (`null` when missing).
    #[serde(default)]
    pub data: Value,
}

/// `ACTION_RESULT`: what the action returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionResult {
    /// The action's name.
    pub action: String,
    /// What its handler returned.
    pub data: Value,
}

/// `PING`: `{}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping {}

/// `PONG`: `{}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pong {}

/// `ERROR`: `{ "code", "message", "temporary"? }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorMessage {
    /// What kind of error: a protocol code, or an application's own.
    pub code: Code,
    /// Details, for people.
    pub message: String,
    /// The same request may succeed later: retry it with backoff. Sent
    /// only when true.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub temporary: bool,
}

impl ErrorMessage {
    /// An error with `code` and `message`, not temporary.
    pub fn new(code: impl Into<Code>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            temporary: false,
        }
    }

    /// Marks the error temporary (`"temporary": true`).
    pub fn temporary(mut self, temporary: bool) -> Self {
        self.temporary = temporary;
        self
    }
}
