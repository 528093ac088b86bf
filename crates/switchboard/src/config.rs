//! Server and route configuration, with documented defaults.

use std::time::Duration;

pub use switchboard_ws::Limits;
pub use switchboard_ws::handshake::HandshakeLimits;

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
}

/// Settings for the connections of one route.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RouteConfig {
    /// Inbound frame, message and fragment limits (defaults 1 MiB, 1 MiB, 128).
    pub limits: Limits,
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
}

impl Default for RouteConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            max_queue_bytes: 1 << 20,
            protocols: Vec::new(),
            require_protocol: false,
            keepalive: Some(Keepalive::default()),
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
    /// Sets or disables the keepalive.
    pub fn with_keepalive(mut self, keepalive: Option<Keepalive>) -> Self {
        self.keepalive = keepalive;
        self
    }
}

/// Server-side keepalive: a ping after `interval` of silence from the
/// client, and a close with [`crate::codes::KEEPALIVE_TIMEOUT`] (4001) once
/// nothing at all has arrived for `timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Keepalive {
    /// Silence before a ping. Default 25 s (below the 60 s idle timeout of common proxies).
    pub interval: Duration,
    /// Silence before the connection is closed. Default 60 s.
    pub timeout: Duration,
}

impl Default for Keepalive {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(25),
            timeout: Duration::from_secs(60),
        }
    }
}

impl Keepalive {
    /// A keepalive with the given ping interval and silence timeout.
    pub fn new(interval: Duration, timeout: Duration) -> Self {
        Self { interval, timeout }
    }
}
