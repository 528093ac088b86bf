//! The structured protocol (docs/protocol.md) as a [`Protocol`]: connect
//! and authenticate, subscriptions, actions, heartbeats, errors.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::SystemTime;

use futures_util::FutureExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use switchboard_protocol::payload::{
    self, ActionResult, ConnectAck, Disconnect, ErrorMessage, UnsubscribeAck,
};
use switchboard_protocol::{
    ConnectionState, Envelope, ErrorCode, Message as Wire, MessageType, PROTOCOL_VERSION,
    SESSION_EXPIRING_EVENT, SUBPROTOCOL,
};
use switchboard_ws::{CloseCode, CloseFrame};
use tokio::time::Instant;

use super::actions::{
    ActionContext, ActionError, ActionPattern, ErasedAction, ErasedInbound,
    Inbound as InboundHandler, Outcome, TypedAction,
};
use super::channels::ChannelRules;
use super::config::ProtocolConfig;
use super::engine::{self, Connection, Flow, Protocol};
use super::hooks::{Inbound, ProtocolHooks};
use super::publish::{Publisher, stamp, unix_seconds};
use super::session::{Finished, Session, Wake, WakeKind};
use crate::broker::Cluster;
use crate::config::RouteConfig;
use crate::conn::Handler;
use crate::conn::Message;
use crate::conn::Switchboard;
use crate::conn::WebSocketUpgrade;
use crate::error::Error;
use crate::request::RequestInfo;
use crate::security::Security;

/// The structured protocol: build it, then mount it as a route.
///
/// ```no_run
/// use serde_json::{Value, json};
/// use switchboard::protocol::{ActionContext, ActionError, ChannelRules, ProtocolConfig, StructuredProtocol};
/// use switchboard::security::{JwtAuth, Security};
/// use switchboard::{RouteConfig, Switchboard};
///
/// # async fn run() -> Result<(), switchboard::Error> {
/// let security = Security::new().authenticate(JwtAuth::hs256("a secret of at least thirty-two bytes"));
/// let app = StructuredProtocol::new(ProtocolConfig::default().with_require_auth(true))
///     .channels(ChannelRules::default())
///     .action("chat.send", |cx: ActionContext, data: Value| async move {
///         let Some(user) = cx.user_id() else { return Err(ActionError::new("sign in first")) };
///         Ok(json!({ "from": user.to_string(), "echo": data }))
///     })
///     .route(Switchboard::new(), "/ws", RouteConfig::default().with_security(security));
/// app.serve("0.0.0.0:8080").await
/// # }
/// ```
#[derive(Clone)]
pub struct StructuredProtocol {
    pub(super) config: ProtocolConfig,
    pub(super) security: Option<Security>,
    pub(super) channels: ChannelRules,
    pub(super) cluster: Option<Cluster>,
    actions: HashMap<String, Arc<dyn ErasedAction>>,
    /// Handlers for the actions no exact name took, tried in order.
    patterns: Vec<(ActionPattern, Arc<dyn ErasedAction>)>,
    inbound: HashMap<MessageType, Arc<dyn ErasedInbound>>,
    pub(super) hooks: Vec<Arc<dyn ProtocolHooks>>,
}

impl std::fmt::Debug for StructuredProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut actions: Vec<&str> = self.actions.keys().map(String::as_str).collect();
        actions.sort_unstable();
        f.debug_struct("StructuredProtocol")
            .field("config", &self.config)
            .field("security", &self.security)
            .field("channels", &self.channels)
            .field("clustered", &self.cluster.is_some())
            .field("actions", &actions)
            .field(
                "patterns",
                &self
                    .patterns
                    .iter()
                    .map(|(p, _)| p.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("inbound", &self.inbound.keys().collect::<Vec<_>>())
            .field("hooks", &self.hooks.len())
            .finish()
    }
}

impl Default for StructuredProtocol {
    fn default() -> Self {
        Self::new(ProtocolConfig::default())
    }
}

impl StructuredProtocol {
    /// The protocol with `config`, the default channel rules
    /// ([`ChannelRules::default`]), no actions, and the hub for sending.
    pub fn new(config: ProtocolConfig) -> Self {
        Self {
            config,
            security: None,
            channels: ChannelRules::default(),
            cluster: None,
            actions: HashMap::new(),
            patterns: Vec::new(),
            inbound: HashMap::new(),
            hooks: Vec::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &ProtocolConfig {
        &self.config
    }

    /// The authenticators `AUTHENTICATE` uses. [`StructuredProtocol::route`]
    /// takes them from the route's [`RouteConfig::security`] when this is
    /// not called (and gives the route these when it has none), so the
    /// handshake and `AUTHENTICATE` accept the same tokens.
    ///
    /// Guards run at the handshake only: on an endpoint where clients may
    /// authenticate after connecting, do not add guards that refuse
    /// anonymous clients (use [`ProtocolConfig::require_auth`]).
    pub fn security(mut self, security: Security) -> Self {
        self.security = Some(security);
        self
    }

    /// Replaces the channel rules.
    pub fn channels(mut self, rules: ChannelRules) -> Self {
        self.channels = rules;
        self
    }

    /// Sends through `cluster` (its hub must be the app's): publishes from
    /// actions reach other instances, `AUTHENTICATE` registers the user
    /// cluster-wide, and `SUBSCRIBE` succeeds once the broker listens.
    pub fn cluster(mut self, cluster: Cluster) -> Self {
        self.cluster = Some(cluster);
        self
    }

    /// Registers the handler of action `name`.
    ///
    /// The handler gets an [`ActionContext`] and the action's `data`,
    /// deserialised as `T` (use [`serde_json::Value`] for any JSON; data
    /// that does not fit answers `ERROR` `invalid_message`). What it returns
    /// is serialised into `ACTION_RESULT`'s `data`; an [`ActionError`]
    /// answers `ERROR` `action_failed` with its message, and a panic
    /// `ERROR` `internal`. Handlers run concurrently with the connection's
    /// other messages (up to [`ProtocolConfig::max_concurrent_actions`]).
    pub fn action<F, Fut, T, R>(mut self, name: impl Into<String>, handler: F) -> Self
    where
        F: Fn(ActionContext, T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, ActionError>> + Send + 'static,
        T: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
    {
        self.actions
            .insert(name.into(), Arc::new(TypedAction::new(handler)));
        self
    }

    /// Registers the handler of every action whose name matches `pattern`
    /// (`orders.*`) and has no handler of its own: exact names
    /// ([`StructuredProtocol::action`]) win, then patterns in the order
    /// added; an action nothing takes answers `ERROR` `unknown_action`.
    /// The handler gets the action's name in [`ActionContext::action`],
    /// and `data` as JSON; it runs like any action handler.
    pub fn actions_matching<F, Fut>(mut self, pattern: ActionPattern, handler: F) -> Self
    where
        F: Fn(ActionContext, serde_json::Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<serde_json::Value, ActionError>> + Send + 'static,
    {
        self.patterns
            .push((pattern, Arc::new(TypedAction::new(handler))));
        self
    }

    /// Accepts clients' messages of type `kind`, one the server does not
    /// handle itself (`EVENT`, `DATA`, `NOTIFICATION`, ...), and hands them
    /// to `handler`. Without a handler such messages answer `ERROR`
    /// `invalid_message`. A handler error answers `ERROR` `action_failed`;
    /// success sends nothing.
    ///
    /// # Panics
    /// If the server handles `kind` itself (`CONNECT`, `DISCONNECT`,
    /// `AUTHENTICATE`, `SUBSCRIBE`, `UNSUBSCRIBE`, `ACTION`, `PING`,
    /// `PONG`): observe those with [`ProtocolHooks::on_envelope`].
    pub fn on_message<F, Fut>(mut self, kind: MessageType, handler: F) -> Self
    where
        F: Fn(ActionContext, Envelope) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ActionError>> + Send + 'static,
    {
        assert!(
            !kind.sent_by_clients(),
            "the structured protocol handles {kind} itself; use ProtocolHooks::on_envelope"
        );
        self.inbound.insert(kind, Arc::new(InboundHandler(handler)));
        self
    }

    /// Adds hooks (called in the order added).
    pub fn hooks(mut self, hooks: impl ProtocolHooks) -> Self {
        self.hooks.push(Arc::new(hooks));
        self
    }

    /// A [`Publisher`] on the protocol's cluster, or on `hub`.
    pub fn publisher(&self, hub: &crate::hub::Hub) -> Publisher {
        match &self.cluster {
            Some(cluster) => Publisher::clustered(cluster.clone()),
            None => Publisher::new(hub.clone()),
        }
    }

    /// `config` adjusted for this protocol: `switchboard.v1` added to the
    /// subprotocols, frames and messages limited to
    /// [`ProtocolConfig::max_message_size`], the WebSocket-level keepalive
    /// turned off (the protocol's `PING`/`PONG` heartbeat replaces it: the
    /// same 25 s cadence, and a close with 4006 instead of 4001), and the
    /// protocol's security when the route has none.
    pub fn route_config(&self, mut config: RouteConfig) -> RouteConfig {
        if !config.protocols.iter().any(|p| p == SUBPROTOCOL) {
            config.protocols.push(SUBPROTOCOL.to_owned());
        }
        let size = self.config.max_message_size;
        config.limits = config
            .limits
            .with_max_message_size(size)
            .with_max_frame_size(size);
        config.keepalive = None;
        if config.security.is_none() {
            config.security.clone_from(&self.security);
        }
        config
    }

    /// Mounts the protocol at `path` of `app`, with `config` adjusted by
    /// [`StructuredProtocol::route_config`]. `AUTHENTICATE` uses the
    /// route's authenticators unless [`StructuredProtocol::security`] set
    /// others. (A route without security of its own falls back to
    /// [`crate::ServerConfig::security`] for the handshake, which the
    /// protocol cannot see: give the route or the protocol a
    /// [`Security`].)
    pub fn route(mut self, app: Switchboard, path: &str, config: RouteConfig) -> Switchboard {
        if self.security.is_none() {
            self.security.clone_from(&config.security);
        }
        let config = self.route_config(config);
        app.route_with(path, config, self.handler())
    }

    /// The route handler, to mount yourself with
    /// [`Switchboard::route_with`] (pass it
    /// [`StructuredProtocol::route_config`]).
    pub fn handler(self) -> impl Handler<(WebSocketUpgrade, Arc<RequestInfo>)> {
        engine::handler(Arc::new(self))
    }

    pub(super) fn transition(&self, conn: &Connection, to: ConnectionState) {
        let from = conn.set_state(to);
        if from != to {
            self.state_changed(conn, from, to);
        }
    }

    /// Sends `message` to this connection, answering `correlation`. A
    /// connection already closing drops it: the read loop ends soon.
    pub(super) async fn send(
        &self,
        conn: &Connection,
        message: impl Into<Wire>,
        correlation: Option<&str>,
    ) {
        let envelope = stamp(message.into(), correlation);
        let text = match serde_json::to_string(&envelope) {
            Ok(text) => text,
            Err(e) => {
                tracing::error!(error = %e, "protocol message did not serialise");
                return;
            }
        };
        if let Err(e) = conn.send_text(text).await {
            tracing::debug!(connection = %conn.id(), error = %e, "reply dropped");
        }
    }

    /// Answers `ERROR`; past the limit, closes with 4007.
    pub(super) async fn error(
        &self,
        conn: &Connection,
        session: &mut Session,
        code: ErrorCode,
        message: impl Into<String>,
        correlation: Option<&str>,
    ) -> Flow {
        self.reply_error(conn, session, ErrorMessage::new(code, message), correlation)
            .await
    }

    /// Answers with `error`; past the limit, closes with 4007.
    pub(super) async fn reply_error(
        &self,
        conn: &Connection,
        session: &mut Session,
        error: ErrorMessage,
        correlation: Option<&str>,
    ) -> Flow {
        self.send(conn, error, correlation).await;
        let limit = session.errors.record(
            Instant::now(),
            self.config.max_errors,
            self.config.error_window,
        );
        if limit {
            self.close_with(conn, switchboard_protocol::CloseCode::TooManyErrors)
                .await
        } else {
            Flow::Continue
        }
    }

    /// Tells the client why with `DISCONNECT`, then closes with `code`.
    pub(super) async fn close_with(
        &self,
        conn: &Connection,
        code: switchboard_protocol::CloseCode,
    ) -> Flow {
        let disconnect = Disconnect {
            code: Some(code.code()),
            reason: Some(code.reason().to_owned()),
        };
        self.send(conn, disconnect, None).await;
        Flow::close(CloseCode::from(code.code()), code.reason())
    }

    fn connect_ack(&self, conn: &Connection, session: &Session) -> ConnectAck {
        let identity = conn.identity();
        let connection_id = match &self.cluster {
            Some(cluster) => cluster.address(conn.id()).to_string(),
            None => conn.id().to_string(),
        };
        ConnectAck {
            connection_id,
            requires_auth: session.requires_auth && identity.is_none(),
            authenticated: identity.is_some(),
            user_id: identity.as_ref().map(|i| i.user_id().to_string()),
            expires_at: identity.and_then(|i| i.expires_at()).map(unix_seconds),
            heartbeat_interval: self.config.heartbeat_interval.as_secs_f64(),
            server_version: env!("CARGO_PKG_VERSION").to_owned(),
            protocol_version: PROTOCOL_VERSION,
        }
    }

    async fn dispatch(&self, conn: &Connection, s: &mut Session, envelope: Envelope) -> Flow {
        for hook in &self.hooks {
            match hook.on_envelope(conn, &envelope) {
                Inbound::Accept => {}
                Inbound::Reject(code, message) => {
                    return self
                        .error(conn, s, code, message, envelope.id.as_deref())
                        .await;
                }
                Inbound::Handled => return Flow::Continue,
            }
        }
        let kind = envelope.kind();
        let id = envelope.id.as_deref();
        if s.requires_auth && conn.identity().is_none() && !kind.allowed_before_auth() {
            let message = format!("authenticate before sending {kind}");
            return self
                .error(conn, s, ErrorCode::NotAuthenticated, message, id)
                .await;
        }
        match &envelope.message {
            Wire::Connect(connect) => {
                s.client.clone_from(&connect.client);
                self.update_presence_info(conn, s);
                let ack = self.connect_ack(conn, s);
                self.send(conn, ack, id).await;
                Flow::Continue
            }
            Wire::Disconnect(_) => Flow::close(CloseCode::Normal, "client disconnected"),
            Wire::Authenticate(auth) => {
                let token = auth.auth.token.clone();
                let id = envelope.id.clone();
                self.authenticate(conn, s, &token, id.as_deref()).await
            }
            Wire::Subscribe(subscribe) => {
                let requests = subscribe.subscriptions.clone();
                self.subscribe(conn, s, requests, id).await
            }
            Wire::Unsubscribe(unsubscribe) => {
                self.unsubscribe(conn, s, &unsubscribe.subscriptions).await;
                let ack = UnsubscribeAck {
                    subscriptions: unsubscribe.subscriptions.clone(),
                };
                self.send(conn, ack, id).await;
                Flow::Continue
            }
            Wire::Action(_) => self.run_action(conn, s, envelope).await,
            Wire::Presence(request) => self.presence(conn, s, request, true, id).await,
            Wire::PresenceStats(request) => self.presence(conn, s, request, false, id).await,
            Wire::Ping(_) => {
                self.send(conn, payload::Pong {}, id).await;
                Flow::Continue
            }
            Wire::Pong(_) => {
                s.pong_deadline = None;
                Flow::Continue
            }
            _ => match self.inbound.get(&kind) {
                Some(handler) => {
                    let correlation = envelope.id.clone().unwrap_or_default();
                    let cx = ActionContext::new(
                        conn.clone(),
                        kind.as_str(),
                        &correlation,
                        self.publisher(conn.hub()),
                    );
                    let run = handler.call(cx, envelope);
                    self.start(conn, s, run, correlation, kind.as_str().to_owned())
                        .await
                }
                None => {
                    let message = format!("{kind} is not accepted from clients");
                    self.error(conn, s, ErrorCode::InvalidMessage, message, id)
                        .await
                }
            },
        }
    }

    async fn run_action(&self, conn: &Connection, s: &mut Session, envelope: Envelope) -> Flow {
        let Envelope {
            message: Wire::Action(action),
            id,
            ..
        } = envelope
        else {
            return Flow::Continue;
        };
        let Some(id) = id else {
            let message = "an ACTION needs an id";
            return self
                .error(conn, s, ErrorCode::InvalidMessage, message, None)
                .await;
        };
        let handler = self.actions.get(&action.action).or_else(|| {
            self.patterns
                .iter()
                .find(|(pattern, _)| pattern.is_match(&action.action))
                .map(|(_, handler)| handler)
        });
        let Some(handler) = handler else {
            let message = format!("No handler for action {:?}", action.action);
            return self
                .error(conn, s, ErrorCode::UnknownAction, message, Some(&id))
                .await;
        };
        let cx = ActionContext::new(
            conn.clone(),
            &action.action,
            &id,
            self.publisher(conn.hub()),
        );
        let run = handler.call(cx, action.data);
        self.start(conn, s, run, id, action.action).await
    }

    /// Runs a handler alongside the connection's other messages; at the
    /// concurrency limit, first waits for (and answers) running ones.
    async fn start(
        &self,
        conn: &Connection,
        s: &mut Session,
        run: super::actions::BoxFuture<Outcome>,
        correlation: String,
        action: String,
    ) -> Flow {
        use futures_util::StreamExt;
        while s.tasks.len() >= self.config.max_concurrent_actions {
            let Some(finished) = s.tasks.next().await else {
                break;
            };
            if let Flow::Close(frame) = self.finish(conn, s, finished).await {
                return Flow::Close(frame);
            }
        }
        s.tasks.push(Box::pin(async move {
            let outcome = AssertUnwindSafe(run)
                .catch_unwind()
                .await
                .unwrap_or_else(|_| {
                    tracing::error!(%action, "handler panicked");
                    Outcome::error(ErrorCode::Internal, "internal error")
                });
            Finished {
                outcome,
                correlation,
                action,
            }
        }));
        Flow::Continue
    }

    async fn finish(&self, conn: &Connection, s: &mut Session, finished: Finished) -> Flow {
        let Finished {
            outcome,
            correlation,
            action,
        } = finished;
        let correlation = Some(correlation.as_str()).filter(|c| !c.is_empty());
        match outcome {
            Outcome::Result(data) => {
                self.send(conn, ActionResult { action, data }, correlation)
                    .await;
                Flow::Continue
            }
            Outcome::Done => Flow::Continue,
            Outcome::Error(error) => self.reply_error(conn, s, error, correlation).await,
        }
    }

    /// Acts on every deadline that has passed.
    async fn check_timers(&self, conn: &Connection, s: &mut Session) -> Flow {
        let now = Instant::now();
        if s.auth_deadline.is_some_and(|at| now >= at) {
            return self
                .close_with(conn, switchboard_protocol::CloseCode::AuthTimeout)
                .await;
        }
        if s.pong_deadline.is_some_and(|at| now >= at) {
            return self
                .close_with(conn, switchboard_protocol::CloseCode::HeartbeatTimeout)
                .await;
        }
        if let Some((at, expires_at)) = s.warning
            && now >= at
        {
            s.warning = None;
            // The identity may have been extended meanwhile (a refresh by
            // the application, as the gateway's refresh proxy does): the
            // warning follows the expiry in force.
            match conn.identity().and_then(|i| i.expires_at()) {
                Some(current) if current > expires_at => {
                    s.schedule_warning(Some(current), self.config.session_warning);
                }
                Some(_) => self.send_session_expiring(conn, expires_at).await,
                None => {}
            }
        }
        if now >= s.next_ping {
            self.send(conn, payload::Ping {}, None).await;
            s.next_ping = now + self.config.heartbeat_interval;
            if s.pong_deadline.is_none() {
                s.pong_deadline = Some(now + self.config.heartbeat_timeout);
            }
        }
        Flow::Continue
    }

    async fn send_session_expiring(&self, conn: &Connection, expires_at: SystemTime) {
        let event = payload::Event::new(
            SESSION_EXPIRING_EVENT,
            json!({ "expires_at": unix_seconds(expires_at) }),
        );
        self.send(conn, event, None).await;
    }
}

impl Protocol for StructuredProtocol {
    type Session = Session;
    type Wake = Wake;

    async fn open(&self, conn: &Connection) -> Result<Session, Error> {
        for hook in &self.hooks {
            hook.on_open(conn);
        }
        let identity = conn.identity();
        let mut session =
            Session::new(&self.config, self.config.require_auth && identity.is_none());
        if let Some(identity) = &identity {
            session.schedule_warning(identity.expires_at(), self.config.session_warning);
        }
        let ack = self.connect_ack(conn, &session);
        self.send(conn, ack, None).await;
        let state = if identity.is_some() {
            ConnectionState::Authenticated
        } else {
            ConnectionState::Connected
        };
        self.transition(conn, state);
        self.update_presence_info(conn, &session);
        self.subscribe_server_side(conn, &mut session).await;
        Ok(session)
    }

    async fn message(
        &self,
        conn: &Connection,
        session: &mut Session,
        message: Message,
    ) -> Result<Flow, Error> {
        let flow = match message {
            Message::Binary(_) => {
                let message = "binary frames are not accepted: send JSON text";
                self.error(conn, session, ErrorCode::InvalidMessage, message, None)
                    .await
            }
            Message::Text(text) => match switchboard_protocol::parse(&text) {
                Ok(envelope) => self.dispatch(conn, session, envelope).await,
                Err(e) => {
                    self.error(conn, session, e.code, e.message, e.id.as_deref())
                        .await
                }
            },
        };
        if flow != Flow::Continue {
            return Ok(flow);
        }
        Ok(self.check_timers(conn, session).await)
    }

    fn wait(&self, session: &mut Session) -> impl Future<Output = Wake> + Send {
        session.wait()
    }

    async fn wake(
        &self,
        conn: &Connection,
        session: &mut Session,
        wake: Wake,
    ) -> Result<Flow, Error> {
        let flow = match wake.0 {
            WakeKind::Timer => Flow::Continue,
            WakeKind::Finished(finished) => self.finish(conn, session, finished).await,
        };
        if flow != Flow::Continue {
            return Ok(flow);
        }
        Ok(self.check_timers(conn, session).await)
    }

    fn state_changed(&self, conn: &Connection, from: ConnectionState, to: ConnectionState) {
        for hook in &self.hooks {
            hook.on_state_change(conn, from, to);
        }
    }

    fn error(&self, conn: &Connection, _session: &mut Session, error: &Error) {
        for hook in &self.hooks {
            hook.on_error(conn, error);
        }
    }

    fn closed(&self, conn: &Connection, _session: Session, close: &CloseFrame) {
        for hook in &self.hooks {
            hook.on_close(conn, close);
        }
    }
}
