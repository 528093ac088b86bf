//! Server and route configuration, with documented defaults.
//!
//! Plain data: a configuration holds settings only, so clones are
//! independent copies and cloning one never touches a running app. The
//! state behind the settings (rate-limit buckets, connection caps) belongs
//! to the app built from them.

use std::time::Duration;

pub use crate::delivery::Keepalive;
pub use switchboard_ws::Limits;
pub use switchboard_ws::deflate::DeflateConfig;
pub use switchboard_ws::handshake::HandshakeLimits;

use crate::security::{HostPolicy, RateLimit, Security, TrustedProxies};

/// Settings for the whole server. Every field has a default chosen for a
/// public-facing gateway; change them with the `with_*` methods.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Most connections open at once, handshakes included. Default 100,000.
    /// Past it, new connections get `503 Service Unavailable` with `Retry-After`.
    pub max_connections: usize,
    /// Time a client has to send its complete upgrade request. Default 10 s;
    /// a slower client (slowloris) gets `408 Request Timeout` and is disconnected.
    pub handshake_timeout: Duration,
    /// Limits on the request head. Defaults: 16 KiB, 100 headers; past either, 431.
    pub handshake_limits: HandshakeLimits,
    /// Defaults for every route that does not set its own.
    pub route: RouteConfig,
    /// How long to wait for the peer's close frame after sending ours. Default 5 s.
    pub close_timeout: Duration,
    /// How long graceful shutdown waits for connections to finish their close
    /// handshake and drain their queues. Default 10 s.
    pub shutdown_timeout: Duration,
    /// Set `TCP_NODELAY` on accepted sockets. Default true: Nagle's algorithm
    /// and delayed ACKs can hold small frames back for tens of milliseconds.
    pub nodelay: bool,
    /// Security for routes whose [`RouteConfig::security`] is `None`.
    /// Default [`Security::new`]: same-origin browsers and non-browser
    /// clients, no authentication.
    pub security: Security,
    /// Proxies whose `X-Forwarded-For` (or `Forwarded`) gives the client
    /// address. Default none: the peer address is the client's.
    pub trusted_proxies: TrustedProxies,
    /// The `Host` names the server answers to; any other gets `421
    /// Misdirected Request` (the defence against DNS rebinding). Default
    /// any: set the names a browser reaches the server by.
    pub allowed_hosts: HostPolicy,
    /// New connections per client address across all routes (on top of
    /// each route's own limit). Default none.
    pub rate_limit: Option<RateLimit>,
    /// Connections open at once per client address across all routes;
    /// past it, 503 with `Retry-After`. Default none.
    pub max_connections_per_ip: Option<usize>,
    /// Connections open at once per authenticated user across all routes;
    /// past it, 503 with `Retry-After`. Default none.
    pub max_connections_per_user: Option<usize>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_connections: 100_000,
            handshake_timeout: Duration::from_secs(10),
            handshake_limits: HandshakeLimits::default(),
            route: RouteConfig::default(),
            close_timeout: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(10),
            nodelay: true,
            security: Security::default(),
            trusted_proxies: TrustedProxies::default(),
            allowed_hosts: HostPolicy::default(),
            rate_limit: None,
            max_connections_per_ip: None,
            max_connections_per_user: None,
        }
    }
}

impl ServerConfig {
    /// Sets [`ServerConfig::max_connections`].
    pub fn with_max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }
    /// Sets [`ServerConfig::handshake_timeout`].
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }
    /// Sets [`ServerConfig::handshake_limits`].
    pub fn with_handshake_limits(mut self, limits: HandshakeLimits) -> Self {
        self.handshake_limits = limits;
        self
    }
    /// Sets the default [`RouteConfig`].
    pub fn with_route_defaults(mut self, route: RouteConfig) -> Self {
        self.route = route;
        self
    }
    /// Sets [`ServerConfig::close_timeout`].
    pub fn with_close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }
    /// Sets [`ServerConfig::shutdown_timeout`].
    pub fn with_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }
    /// Sets [`ServerConfig::security`], the default for routes without their own.
    pub fn with_security(mut self, security: Security) -> Self {
        self.security = security;
        self
    }
    /// Sets [`ServerConfig::trusted_proxies`].
    pub fn with_trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.trusted_proxies = proxies;
        self
    }
    /// Sets [`ServerConfig::allowed_hosts`].
    pub fn with_allowed_hosts(mut self, hosts: HostPolicy) -> Self {
        self.allowed_hosts = hosts;
        self
    }
    /// Sets [`ServerConfig::rate_limit`].
    pub fn with_rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }
    /// Sets [`ServerConfig::max_connections_per_ip`].
    pub fn with_max_connections_per_ip(mut self, n: usize) -> Self {
        self.max_connections_per_ip = Some(n);
        self
    }
    /// Sets [`ServerConfig::max_connections_per_user`].
    pub fn with_max_connections_per_user(mut self, n: usize) -> Self {
        self.max_connections_per_user = Some(n);
        self
    }
}

/// Settings for the connections of one route.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RouteConfig {
    /// Inbound frame, message and fragment limits (defaults 1 MiB, 1 MiB, 128).
    pub limits: Limits,
    /// Who may connect: origins, rate limit, caps, authentication, guards.
    /// Default `None`: the server's [`ServerConfig::security`] (so a route
    /// given its own settings for something else keeps the server's rules).
    pub security: Option<Security>,
    /// Bytes that may wait in a connection's outbound queue. Default 1 MiB.
    /// The socket's own `send` waits for room; other senders (the hub) get
    /// [`crate::TrySendError::Full`] and evict the connection.
    pub max_queue_bytes: usize,
    /// Subprotocols this route speaks, in the server's order of preference is
    /// irrelevant: the first one the *client* offers that appears here is chosen.
    pub protocols: Vec<String>,
    /// Reject clients that offer none of [`RouteConfig::protocols`] with 400.
    pub require_protocol: bool,
    /// Ping the client when it has been silent, and close it when it stays silent.
    pub keepalive: Option<Keepalive>,
    /// permessage-deflate, when the client offers it. Default off (`None`).
    pub compression: Option<DeflateConfig>,
}

impl Default for RouteConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            security: None,
            max_queue_bytes: 1 << 20,
            protocols: Vec::new(),
            require_protocol: false,
            keepalive: Some(Keepalive::default()),
            compression: None,
        }
    }
}

impl RouteConfig {
    /// Sets the inbound limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
    /// Sets the outbound queue limit in bytes.
    pub fn with_max_queue_bytes(mut self, bytes: usize) -> Self {
        self.max_queue_bytes = bytes;
        self
    }
    /// Declares the subprotocols this route speaks.
    pub fn with_protocols<I, S>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }
    /// Rejects clients that offer none of the declared subprotocols.
    pub fn require_protocol(mut self) -> Self {
        self.require_protocol = true;
        self
    }
    /// Enables permessage-deflate with `config` (or disables it with `None`).
    pub fn with_compression(mut self, config: Option<DeflateConfig>) -> Self {
        self.compression = config;
        self
    }

    /// Sets or disables the keepalive.
    pub fn with_keepalive(mut self, keepalive: Option<Keepalive>) -> Self {
        self.keepalive = keepalive;
        self
    }
    /// Gives the route its own security, instead of the server's.
    pub fn with_security(mut self, security: Security) -> Self {
        self.security = Some(security);
        self
    }
}
