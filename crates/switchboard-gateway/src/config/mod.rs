//! The gateway's configuration: the TOML file's shape and defaults, where
//! values come from (defaults < file < `SWITCHBOARD_*` environment < flags),
//! and the checks that turn it into a [`Plan`] the gateway can run.
//!
//! # Layout
//! - this file: the file's sections, each with `deny_unknown_fields` and
//!   its defaults (`docs/configuration.md` lists every key).
//! - `units`: durations, sizes, and secrets that never appear in logs.
//! - `load`: reading the file, the environment and the flags, in order.
//! - `plan`: validation, naming the key of every problem, and the settings
//!   built from it; `security`: endpoint security from its section.
//! - `example.toml`: what `switchboard config example` prints.

mod exposure;
mod history;
mod load;
mod plan;
mod presence;
mod proxy;
mod security;
mod units;

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub(crate) use exposure::{ExposurePlan, MetricsPlan};
pub(crate) use load::{ENV_VARS, Overrides, Sources, load};
pub(crate) use plan::{ApiPlan, BrokerPlan, EndpointKind, EndpointPlan, Plan, StructuredPlan};
pub(crate) use proxy::{NotifyPlan, ProxyPlan};
pub(crate) use units::{Secret, Size, Span};

/// The commented example config (`switchboard config example`).
pub(crate) const EXAMPLE: &str = include_str!("example.toml");

/// The whole file. Every section and key is optional.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Config {
    pub(crate) server: ServerSection,
    pub(crate) log: LogSection,
    pub(crate) tls: Option<TlsSection>,
    pub(crate) http: HttpSection,
    pub(crate) api: ApiSection,
    pub(crate) metrics: MetricsSection,
    pub(crate) demo: DemoSection,
    pub(crate) broker: BrokerSection,
    pub(crate) history: HistorySection,
    pub(crate) presence: PresenceSection,
    pub(crate) limits: LimitsSection,
    pub(crate) compression: CompressionSection,
    pub(crate) keepalive: KeepaliveSection,
    pub(crate) security: SecuritySection,
    /// The backend proxy of structured endpoints without their own.
    pub(crate) proxy: Option<proxy::ProxySection>,
    /// `None`: the built-in endpoints (`/ws` when the structured protocol is
    /// available, `/ws/echo`, `/ws/broadcast`).
    pub(crate) endpoints: Option<Vec<EndpointSection>>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ServerSection {
    pub(crate) listen: SocketAddr,
    /// Runtime worker threads; `None`: one per core.
    pub(crate) workers: Option<usize>,
    pub(crate) max_connections: usize,
    pub(crate) handshake_timeout: Span,
    pub(crate) close_timeout: Span,
    pub(crate) shutdown_timeout: Span,
    /// SIGTERM/SIGINT close clients with 1012 (restart) instead of 1001.
    pub(crate) restart_on_shutdown: bool,
    /// Reachable from other hosts although it listens on loopback (a
    /// reverse proxy on this host forwards to it): apply the rules of a
    /// gateway beyond loopback.
    pub(crate) public: bool,
    pub(crate) trusted_proxies: Vec<String>,
    pub(crate) forwarded_header: ForwardedHeaderName,
    pub(crate) rate_limit: Option<RateLimitSection>,
    pub(crate) max_connections_per_ip: Option<usize>,
    pub(crate) max_connections_per_user: Option<usize>,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            workers: None,
            max_connections: 100_000,
            handshake_timeout: Span::secs(10),
            close_timeout: Span::secs(5),
            shutdown_timeout: Span::secs(10),
            restart_on_shutdown: false,
            public: false,
            trusted_proxies: Vec::new(),
            forwarded_header: ForwardedHeaderName::XForwardedFor,
            rate_limit: None,
            max_connections_per_ip: None,
            max_connections_per_user: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub(crate) enum ForwardedHeaderName {
    #[serde(rename = "x-forwarded-for")]
    XForwardedFor,
    #[serde(rename = "forwarded")]
    Forwarded,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct LogSection {
    pub(crate) format: LogFormat,
    /// A `tracing` filter: `info`, `debug`, `switchboard=debug,info`.
    pub(crate) level: String,
}

impl Default for LogSection {
    fn default() -> Self {
        Self {
            format: LogFormat::Plain,
            level: "info".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    Plain,
    Json,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TlsSection {
    /// PEM certificate chain, leaf first.
    pub(crate) cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub(crate) key: PathBuf,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ApiSection {
    pub(crate) enabled: bool,
    /// Accepted API keys (several, to rotate). Required when the gateway
    /// listens beyond loopback.
    pub(crate) keys: Vec<Secret>,
    /// A file with more keys, one per line (its contents never logged).
    pub(crate) keys_file: Option<PathBuf>,
    /// Origins whose pages may call the API from a browser (CORS). Empty:
    /// any request with an `Origin` is refused.
    pub(crate) cors_origins: Vec<String>,
}

impl Default for ApiSection {
    fn default() -> Self {
        Self {
            enabled: true,
            keys: Vec::new(),
            keys_file: None,
            cors_origins: Vec::new(),
        }
    }
}

/// `[http]`: what the HTTP side (and the WebSocket handshake) answers to.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct HttpSection {
    /// Host names (besides the listen address and localhost) requests may
    /// carry in `Host`: `ws.example.com`, `*.example.com`, or `*` for any.
    pub(crate) allowed_hosts: Vec<String>,
}

/// `[metrics]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct MetricsSection {
    pub(crate) enabled: bool,
    /// Serve `/metrics` on its own address (and not on the main port).
    pub(crate) listen: Option<SocketAddr>,
}

impl Default for MetricsSection {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: None,
        }
    }
}

/// `[demo]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct DemoSection {
    /// Default: on when the gateway is reachable from this host only, off
    /// otherwise.
    pub(crate) enabled: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct BrokerSection {
    #[serde(rename = "type")]
    pub(crate) kind: BrokerKind,
    /// `redis://[user:password@]host[:port][/db]` (redis only).
    pub(crate) url: Option<Secret>,
    /// A file holding the URL (with its password), read at start.
    pub(crate) url_file: Option<PathBuf>,
    pub(crate) prefix: String,
    /// This instance's name in the cluster; random by default.
    pub(crate) instance_id: Option<String>,
    pub(crate) command_timeout: Span,
    pub(crate) connect_timeout: Span,
    pub(crate) start_timeout: Span,
    /// How long an instance's lease lasts without a renewal.
    pub(crate) lease_ttl: Span,
    /// Redis keeps every acknowledged write across a restart (`appendonly
    /// yes` + `appendfsync always`): epochs and history survive it.
    pub(crate) durable: bool,
}

impl Default for BrokerSection {
    fn default() -> Self {
        Self {
            kind: BrokerKind::Memory,
            url: None,
            url_file: None,
            prefix: "sb".to_owned(),
            instance_id: None,
            command_timeout: Span::secs(1),
            connect_timeout: Span::secs(2),
            start_timeout: Span::secs(5),
            lease_ttl: Span::secs(8),
            durable: false,
        }
    }
}

/// `[history]`: which channels keep their publications, and for how long.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct HistorySection {
    /// The rules, first match wins. Default: `public:*` and `user:*`, 100
    /// publications for 10 minutes each. `[]` turns history off.
    pub(crate) channels: Vec<HistoryChannelSection>,
    /// Most publications one recovery (or `last`) replays.
    pub(crate) recovery_limit: usize,
    /// How long a channel's epoch and offset outlive its last publication.
    pub(crate) meta_ttl: Span,
    /// How long a publish's `idempotency_key` is remembered.
    pub(crate) idempotency_window: Span,
    /// The in-memory broker's cap on what all streams hold.
    pub(crate) max_memory: Size,
}

impl Default for HistorySection {
    fn default() -> Self {
        Self {
            channels: ["public:*", "user:*"]
                .into_iter()
                .map(|pattern| HistoryChannelSection {
                    pattern: pattern.to_owned(),
                    size: HistoryChannelSection::DEFAULT_SIZE,
                    ttl: HistoryChannelSection::default_ttl(),
                })
                .collect(),
            recovery_limit: 300,
            meta_ttl: Span::secs(24 * 3600),
            idempotency_window: Span::secs(300),
            max_memory: Size(64 << 20),
        }
    }
}

/// `[presence]`: which channels keep who is subscribed, and which send
/// join and leave events.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct PresenceSection {
    /// The rules, first match wins. Default: `public:*`, joins and leaves
    /// per user. `[]` turns presence off.
    pub(crate) channels: Vec<PresenceChannelSection>,
    /// How long a user's leave waits for them to come back.
    pub(crate) grace: Span,
    /// Most members one presence answer lists.
    pub(crate) max_members: usize,
}

impl Default for PresenceSection {
    fn default() -> Self {
        Self {
            channels: vec![PresenceChannelSection {
                pattern: "public:*".to_owned(),
                join_leave: PresenceChannelSection::default_join_leave(),
            }],
            grace: Span::secs(5),
            max_members: 1000,
        }
    }
}

/// One `[[presence.channels]]` rule.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PresenceChannelSection {
    pub(crate) pattern: String,
    /// `user`, `connection` or `off`.
    #[serde(default = "PresenceChannelSection::default_join_leave")]
    pub(crate) join_leave: String,
}

impl PresenceChannelSection {
    fn default_join_leave() -> String {
        "user".to_owned()
    }
}

/// One `[[history.channels]]` rule.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HistoryChannelSection {
    pub(crate) pattern: String,
    #[serde(default = "HistoryChannelSection::default_size")]
    pub(crate) size: usize,
    #[serde(default = "HistoryChannelSection::default_ttl")]
    pub(crate) ttl: Span,
}

impl HistoryChannelSection {
    const DEFAULT_SIZE: usize = 100;

    fn default_size() -> usize {
        Self::DEFAULT_SIZE
    }

    fn default_ttl() -> Span {
        Span::secs(600)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum BrokerKind {
    Memory,
    Redis,
}

/// Inbound limits and the outbound queue, for every endpoint that does not
/// set its own.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct LimitsSection {
    pub(crate) max_message_size: Size,
    /// Defaults to `max_message_size`.
    pub(crate) max_frame_size: Option<Size>,
    pub(crate) max_fragments: usize,
    pub(crate) max_queue_bytes: Size,
}

impl Default for LimitsSection {
    fn default() -> Self {
        Self {
            max_message_size: Size(1 << 20),
            max_frame_size: None,
            max_fragments: 128,
            max_queue_bytes: Size(1 << 20),
        }
    }
}

/// An endpoint's own limits: each key overrides the `[limits]` default.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct LimitsOverride {
    pub(crate) max_message_size: Option<Size>,
    pub(crate) max_frame_size: Option<Size>,
    pub(crate) max_fragments: Option<usize>,
    pub(crate) max_queue_bytes: Option<Size>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct CompressionSection {
    pub(crate) enabled: bool,
    pub(crate) level: u32,
    pub(crate) min_size: Size,
}

impl Default for CompressionSection {
    fn default() -> Self {
        Self {
            enabled: true,
            level: 1,
            min_size: Size(256),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct CompressionOverride {
    pub(crate) enabled: Option<bool>,
    pub(crate) level: Option<u32>,
    pub(crate) min_size: Option<Size>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct KeepaliveSection {
    pub(crate) enabled: bool,
    pub(crate) interval: Span,
    pub(crate) timeout: Span,
}

impl Default for KeepaliveSection {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: Span::secs(25),
            timeout: Span::secs(60),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct KeepaliveOverride {
    pub(crate) enabled: Option<bool>,
    pub(crate) interval: Option<Span>,
    pub(crate) timeout: Option<Span>,
}

/// Who may connect: the server-wide default (`[security]`), or an
/// endpoint's own (`[endpoints.security]`, which replaces it as a whole).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct SecuritySection {
    /// `None`: same-origin only. Patterns: `https://app.example.com`,
    /// `https://*.example.com`, `*`.
    pub(crate) origins: Option<Vec<String>>,
    pub(crate) allow_missing_origin: bool,
    pub(crate) rate_limit: Option<RateLimitSection>,
    pub(crate) max_connections_per_ip: Option<usize>,
    pub(crate) max_connections_per_user: Option<usize>,
    /// `bearer`, `query:<name>`, `cookie:<name>`, `protocol:<prefix>`.
    pub(crate) token_sources: Vec<String>,
    pub(crate) auth_timeout: Span,
    pub(crate) jwt: Option<JwtSection>,
    pub(crate) api_keys: Vec<ApiKeySection>,
    /// `authenticated`, `admin`, `permission:<name>`.
    pub(crate) guards: Vec<String>,
}

impl Default for SecuritySection {
    fn default() -> Self {
        Self {
            origins: None,
            allow_missing_origin: true,
            rate_limit: None,
            max_connections_per_ip: None,
            max_connections_per_user: None,
            token_sources: vec!["bearer".to_owned()],
            auth_timeout: Span::secs(10),
            jwt: None,
            api_keys: Vec::new(),
            guards: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RateLimitSection {
    pub(crate) per_second: Option<f64>,
    pub(crate) per_minute: Option<f64>,
    pub(crate) burst: Option<u32>,
    pub(crate) max_clients: Option<usize>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct JwtSection {
    pub(crate) keys: Vec<JwtKeySection>,
    pub(crate) jwks_file: Option<PathBuf>,
    pub(crate) issuers: Vec<String>,
    pub(crate) audiences: Vec<String>,
    pub(crate) leeway: Span,
    pub(crate) user_claim: String,
    pub(crate) permissions_claim: String,
}

impl Default for JwtSection {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            jwks_file: None,
            issuers: Vec::new(),
            audiences: Vec::new(),
            leeway: Span::secs(60),
            user_claim: "sub".to_owned(),
            permissions_claim: "permissions".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct JwtKeySection {
    /// `HS256`, `RS256`, `ES256`, `EdDSA`, ...
    pub(crate) algorithm: String,
    pub(crate) kid: Option<String>,
    /// HMAC secret (HS*), inline. Prefer `secret_env`.
    pub(crate) secret: Option<Secret>,
    /// The environment variable holding the HMAC secret.
    pub(crate) secret_env: Option<String>,
    /// PEM public key file (RS*, PS*, ES*, EdDSA).
    pub(crate) public_key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ApiKeySection {
    pub(crate) key: Option<Secret>,
    pub(crate) key_env: Option<String>,
    pub(crate) user: String,
    pub(crate) permissions: Vec<String>,
    pub(crate) admin: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EndpointSection {
    pub(crate) path: String,
    pub(crate) protocol: ProtocolName,
    /// `broadcast` only: the room its connections share. Default `broadcast`.
    #[serde(default)]
    pub(crate) room: Option<String>,
    /// Subprotocols the endpoint answers with (the client's first match).
    #[serde(default)]
    pub(crate) subprotocols: Vec<String>,
    #[serde(default)]
    pub(crate) require_subprotocol: bool,
    #[serde(default)]
    pub(crate) limits: LimitsOverride,
    #[serde(default)]
    pub(crate) compression: CompressionOverride,
    #[serde(default)]
    pub(crate) keepalive: KeepaliveOverride,
    /// Replaces `[security]` for this endpoint.
    #[serde(default)]
    pub(crate) security: Option<SecuritySection>,
    /// `structured` only: the protocol's settings.
    #[serde(default)]
    pub(crate) structured: Option<StructuredSection>,
    /// `structured` only: the backend proxy, replacing `[proxy]`.
    #[serde(default)]
    pub(crate) proxy: Option<proxy::ProxySection>,
}

/// A structured-protocol endpoint's settings (docs/protocol.md); the
/// defaults are the protocol's.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct StructuredSection {
    pub(crate) require_auth: bool,
    pub(crate) auth_deadline: Span,
    pub(crate) max_auth_failures: u32,
    pub(crate) heartbeat_interval: Span,
    pub(crate) heartbeat_timeout: Span,
    pub(crate) session_warning: Span,
    pub(crate) max_subscriptions: usize,
    pub(crate) max_errors: usize,
    pub(crate) error_window: Span,
    pub(crate) max_concurrent_actions: usize,
    /// Who may subscribe to what, first match wins; `None`: the protocol's
    /// defaults (`public:*` anyone, `user:{user_id}:*` that user).
    pub(crate) channels: Option<Vec<ChannelRuleSection>>,
    /// Channels clients may send to with the `chat.send` action (they must
    /// also be allowed to subscribe to them). Empty: no `chat.send`.
    pub(crate) chat_channels: Vec<String>,
    /// `chat.send` messages one connection may send per second...
    pub(crate) chat_rate: f64,
    /// ...and at once after a pause.
    pub(crate) chat_burst: u32,
}

impl Default for StructuredSection {
    fn default() -> Self {
        let p = switchboard::protocol::ProtocolConfig::default();
        Self {
            require_auth: p.require_auth,
            auth_deadline: Span(p.auth_deadline),
            max_auth_failures: p.max_auth_failures,
            heartbeat_interval: Span(p.heartbeat_interval),
            heartbeat_timeout: Span(p.heartbeat_timeout),
            session_warning: Span(p.session_warning),
            max_subscriptions: p.max_subscriptions,
            max_errors: p.max_errors,
            error_window: Span(p.error_window),
            max_concurrent_actions: p.max_concurrent_actions,
            channels: None,
            chat_channels: vec!["public:*".to_owned()],
            chat_rate: 5.0,
            chat_burst: 10,
        }
    }
}

/// One channel rule: a pattern and who it lets in.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChannelRuleSection {
    /// `public:*`, `team:*`, `user:{user_id}:*`, `room:*:chat`.
    pub(crate) pattern: String,
    /// `anyone`, `authenticated`, `admin`, `nobody`, `permission:<name>`.
    pub(crate) access: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ProtocolName {
    Structured,
    Echo,
    Broadcast,
}
