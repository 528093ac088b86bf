//! The structured protocol's settings, with documented defaults.

use std::time::Duration;

/// Settings of a [`super::StructuredProtocol`] endpoint. Every field has
/// the default `docs/protocol.md` promises clients; change them with the
/// `with_*` methods.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProtocolConfig {
    /// Whether clients must authenticate (in the handshake, or with
    /// `AUTHENTICATE` within [`ProtocolConfig::auth_deadline`]) before
    /// anything but `AUTHENTICATE`, `CONNECT`, `PING`, `PONG` and
    /// `DISCONNECT`. Default `false`: anonymous clients may subscribe to
    /// the channels the rules allow anyone, and call actions (which see
    /// no identity).
    pub require_auth: bool,
    /// Time an unauthenticated client has to authenticate when
    /// [`ProtocolConfig::require_auth`] is set; then the connection closes
    /// with 4005. Default 10 s.
    pub auth_deadline: Duration,
    /// Failed `AUTHENTICATE`s before the connection closes with 4004.
    /// Default 3. (An authenticator that is unavailable does not count.)
    pub max_auth_failures: u32,
    /// Time between the server's `PING`s. Default 25 s (below the 60 s idle
    /// timeout of common proxies).
    pub heartbeat_interval: Duration,
    /// Time a client has to answer a `PING` with a `PONG`; then the
    /// connection closes with 4006. Default 10 s.
    pub heartbeat_timeout: Duration,
    /// How long before the credentials expire the server sends the
    /// `switchboard.session_expiring` event. Default 30 s.
    pub session_warning: Duration,
    /// Channels a connection may be subscribed to at once. Default 128.
    pub max_subscriptions: usize,
    /// `ERROR` replies within [`ProtocolConfig::error_window`] after which
    /// the connection closes with 4007. Default 10.
    pub max_errors: usize,
    /// See [`ProtocolConfig::max_errors`]. Default 60 s.
    pub error_window: Duration,
    /// Largest message (and frame) a client may send; a bigger one closes
    /// the connection with 1009. Applied to the route by
    /// [`super::StructuredProtocol::route`]. Default 64 KiB.
    pub max_message_size: usize,
    /// Actions of one connection running at once. At the limit the server
    /// stops reading that connection until one finishes. Default 16.
    pub max_concurrent_actions: usize,
}

impl Default for ProtocolConfig {
    fn default() -> Self {
        Self {
            require_auth: false,
            auth_deadline: Duration::from_secs(10),
            max_auth_failures: 3,
            heartbeat_interval: Duration::from_secs(25),
            heartbeat_timeout: Duration::from_secs(10),
            session_warning: Duration::from_secs(30),
            max_subscriptions: 128,
            max_errors: 10,
            error_window: Duration::from_secs(60),
            max_message_size: 64 * 1024,
            max_concurrent_actions: 16,
        }
    }
}

impl ProtocolConfig {
    /// Sets [`ProtocolConfig::require_auth`].
    pub fn with_require_auth(mut self, require: bool) -> Self {
        self.require_auth = require;
        self
    }
    /// Sets [`ProtocolConfig::auth_deadline`].
    pub fn with_auth_deadline(mut self, deadline: Duration) -> Self {
        self.auth_deadline = deadline;
        self
    }
    /// Sets [`ProtocolConfig::max_auth_failures`] (at least 1).
    pub fn with_max_auth_failures(mut self, failures: u32) -> Self {
        self.max_auth_failures = failures.max(1);
        self
    }
    /// Sets [`ProtocolConfig::heartbeat_interval`] and
    /// [`ProtocolConfig::heartbeat_timeout`].
    pub fn with_heartbeat(mut self, interval: Duration, timeout: Duration) -> Self {
        self.heartbeat_interval = interval;
        self.heartbeat_timeout = timeout;
        self
    }
    /// Sets [`ProtocolConfig::session_warning`].
    pub fn with_session_warning(mut self, before: Duration) -> Self {
        self.session_warning = before;
        self
    }
    /// Sets [`ProtocolConfig::max_subscriptions`].
    pub fn with_max_subscriptions(mut self, channels: usize) -> Self {
        self.max_subscriptions = channels;
        self
    }
    /// Sets [`ProtocolConfig::max_errors`] (at least 1) and
    /// [`ProtocolConfig::error_window`].
    pub fn with_max_errors(mut self, errors: usize, window: Duration) -> Self {
        self.max_errors = errors.max(1);
        self.error_window = window;
        self
    }
    /// Sets [`ProtocolConfig::max_message_size`].
    pub fn with_max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }
    /// Sets [`ProtocolConfig::max_concurrent_actions`] (at least 1).
    pub fn with_max_concurrent_actions(mut self, actions: usize) -> Self {
        self.max_concurrent_actions = actions.max(1);
        self
    }
}
