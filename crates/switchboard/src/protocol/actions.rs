//! Actions: `ACTION {action, data}` routed to async handlers whose result
//! becomes `ACTION_RESULT`, and handlers for other message types a client
//! may send.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use switchboard_protocol::payload::ErrorMessage;
use switchboard_protocol::{Code, ConnectionState, Envelope, ErrorCode};

use super::engine::Connection;
use super::publish::Publisher;
use crate::hub::{ConnectionId, Hub, UserId};
use crate::identity::Identity;
use crate::request::RequestInfo;

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What an action handler gets besides its data: the connection (identity,
/// state, request), the action's name and message id, and a
/// [`Publisher`] to send to channels, users and connections.
#[derive(Debug, Clone)]
pub struct ActionContext {
    conn: Connection,
    action: Arc<str>,
    message_id: Arc<str>,
    publisher: Publisher,
}

impl ActionContext {
    pub(crate) fn new(
        conn: Connection,
        action: &str,
        message_id: &str,
        publisher: Publisher,
    ) -> Self {
        Self {
            conn,
            action: Arc::from(action),
            message_id: Arc::from(message_id),
            publisher,
        }
    }

    /// The connection that sent the action.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Its id in the hub.
    pub fn connection_id(&self) -> ConnectionId {
        self.conn.id()
    }

    /// The action's name (or, for a message-type handler, the type).
    pub fn action(&self) -> &str {
        &self.action
    }

    /// The `id` of the message being handled (the reply's `correlation_id`).
    pub fn message_id(&self) -> &str {
        &self.message_id
    }

    /// The client's identity, if it authenticated.
    pub fn identity(&self) -> Option<Identity> {
        self.conn.identity()
    }

    /// The authenticated user's id.
    pub fn user_id(&self) -> Option<UserId> {
        self.conn.user_id()
    }

    /// The connection's state now.
    pub fn state(&self) -> ConnectionState {
        self.conn.state()
    }

    /// The request that opened the connection.
    pub fn request(&self) -> &RequestInfo {
        self.conn.request()
    }

    /// The hub.
    pub fn hub(&self) -> &Hub {
        self.conn.hub()
    }

    /// Sends to channels, users, connections, everyone (through the
    /// cluster when the protocol has one).
    pub fn publisher(&self) -> &Publisher {
        &self.publisher
    }
}

/// Why an action failed: answered with `ERROR` code `action_failed` and
/// this message, or with a code of the application's own
/// ([`ActionError::with_code`]), marked `temporary` when a retry may
/// succeed ([`ActionError::temporary`]). Any error type converts into it
/// with `?` (its `Display` text becomes the message, so keep secrets out of
/// it).
pub struct ActionError {
    message: String,
    code: Code,
    temporary: bool,
}

impl ActionError {
    /// An error with `message` (code `action_failed`, not temporary).
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: Code::Protocol(ErrorCode::ActionFailed),
            temporary: false,
        }
    }

    /// Answers with `code` instead of `action_failed`: an
    /// [`switchboard_protocol::ApplicationCode`] of yours (`out_of_stock`),
    /// or a protocol [`ErrorCode`] (`backend_unavailable`).
    pub fn with_code(mut self, code: impl Into<Code>) -> Self {
        self.code = code.into();
        self
    }

    /// Marks the error `"temporary": true`: the same action may succeed if
    /// the client retries it later.
    pub fn temporary(mut self) -> Self {
        self.temporary = true;
        self
    }

    /// The message the client gets.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The code the client gets.
    pub fn code(&self) -> &Code {
        &self.code
    }

    /// Whether the error is marked temporary.
    pub fn is_temporary(&self) -> bool {
        self.temporary
    }

    fn into_reply(self) -> ErrorMessage {
        ErrorMessage::new(self.code, self.message).temporary(self.temporary)
    }
}

impl<E: std::error::Error> From<E> for ActionError {
    fn from(e: E) -> Self {
        Self::new(e.to_string())
    }
}

impl fmt::Debug for ActionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActionError")
            .field("code", &self.code)
            .field("message", &self.message)
            .field("temporary", &self.temporary)
            .finish()
    }
}

impl fmt::Display for ActionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// How a handler's run ended, as the reply to send.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// `ACTION_RESULT` with this data.
    Result(Value),
    /// Nothing to send (a message-type handler that succeeded).
    Done,
    /// `ERROR` with this code and message.
    Error(ErrorMessage),
}

impl Outcome {
    /// `ERROR` with `code` and `message`, not temporary.
    pub(crate) fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Error(ErrorMessage::new(code, message))
    }
}

/// An action handler with its types erased.
pub(crate) trait ErasedAction: Send + Sync {
    fn call(&self, cx: ActionContext, data: Value) -> BoxFuture<Outcome>;
}

pub(crate) struct TypedAction<F, T, R> {
    handler: F,
    _types: PhantomData<fn(T) -> R>,
}

impl<F, T, R> TypedAction<F, T, R> {
    pub(crate) fn new(handler: F) -> Self {
        Self {
            handler,
            _types: PhantomData,
        }
    }
}

impl<F, Fut, T, R> ErasedAction for TypedAction<F, T, R>
where
    F: Fn(ActionContext, T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, ActionError>> + Send + 'static,
    T: DeserializeOwned + Send + 'static,
    R: Serialize + Send + 'static,
{
    fn call(&self, cx: ActionContext, data: Value) -> BoxFuture<Outcome> {
        let data = match serde_json::from_value::<T>(data) {
            Ok(data) => data,
            Err(e) => {
                let message = format!("invalid data for action {:?}: {e}", cx.action());
                return Box::pin(std::future::ready(Outcome::error(
                    ErrorCode::InvalidMessage,
                    message,
                )));
            }
        };
        let run = (self.handler)(cx, data);
        Box::pin(async move {
            match run.await {
                Ok(result) => match serde_json::to_value(result) {
                    Ok(value) => Outcome::Result(value),
                    Err(e) => {
                        tracing::warn!(error = %e, "action result did not serialise");
                        Outcome::error(ErrorCode::Internal, "internal error")
                    }
                },
                Err(e) => Outcome::Error(e.into_reply()),
            }
        })
    }
}

/// A handler for a message type the server does not handle itself.
pub(crate) trait ErasedInbound: Send + Sync {
    fn call(&self, cx: ActionContext, envelope: Envelope) -> BoxFuture<Outcome>;
}

pub(crate) struct Inbound<F>(pub(crate) F);

impl<F, Fut> ErasedInbound for Inbound<F>
where
    F: Fn(ActionContext, Envelope) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), ActionError>> + Send + 'static,
{
    fn call(&self, cx: ActionContext, envelope: Envelope) -> BoxFuture<Outcome> {
        let run = (self.0)(cx, envelope);
        Box::pin(async move {
            match run.await {
                Ok(()) => Outcome::Done,
                Err(e) => Outcome::Error(e.into_reply()),
            }
        })
    }
}

/// Action names a handler takes ([`super::StructuredProtocol::actions_matching`]):
/// `*` stands for any run of characters (`orders.*` takes `orders.create`
/// and `orders.items.add`; `*` takes every action), anything else stands
/// for itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionPattern(String);

impl ActionPattern {
    /// The pattern `pattern`; an error when it is empty or longer than 255
    /// characters.
    pub fn new(pattern: impl Into<String>) -> Result<Self, String> {
        let pattern = pattern.into();
        if pattern.is_empty() || pattern.len() > 255 {
            return Err(format!(
                "action pattern {pattern:?}: use 1 to 255 characters"
            ));
        }
        Ok(Self(pattern))
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `action` matches.
    pub fn is_match(&self, action: &str) -> bool {
        switchboard_protocol::pattern::glob_match(self.0.as_bytes(), action.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_patterns_match_with_stars() {
        let orders = ActionPattern::new("orders.*").unwrap();
        assert!(orders.is_match("orders.create"));
        assert!(orders.is_match("orders.items.add"));
        assert!(orders.is_match("orders."));
        assert!(!orders.is_match("orders"));
        assert!(!orders.is_match("chat.send"));
        let all = ActionPattern::new("*").unwrap();
        assert!(all.is_match("anything") && all.is_match(""));
        let mid = ActionPattern::new("a*.get").unwrap();
        assert!(mid.is_match("a.b.get") && mid.is_match("a.get"));
        assert!(!mid.is_match("a.b.set"));
        assert!(ActionPattern::new("exact").unwrap().is_match("exact"));
        assert!(!ActionPattern::new("exact").unwrap().is_match("exactly"));
        assert!(ActionPattern::new("").is_err());
    }
}
