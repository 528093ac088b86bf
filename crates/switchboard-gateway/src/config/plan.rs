//! Validation: every problem named by its key, all reported at once, and
//! the settings the gateway runs with built from the checked config.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use switchboard::broker::InstanceId;

use super::exposure::{ExposurePlan, exposure_plan};
use super::history::{HistoryPlan, history_plan};
use super::presence::{PresencePlan, presence_plan};
use switchboard::protocol::{
    Access, ChannelPattern, ChannelRules, ProtocolConfig, StructuredChannels,
};
use switchboard::security::{ForwardedHeader, TrustedProxies};
use switchboard::{DeflateConfig, Keepalive, Limits, RouteConfig, ServerConfig};
use switchboard_redis::{RedisBroker, RedisConfig};

use super::security::{self, MIN_KEY_LEN};
use super::units::Secret;
use super::{
    BrokerKind, CompressionSection, Config, EndpointSection, ForwardedHeaderName, KeepaliveSection,
    LimitsSection, LogSection, ProtocolName, StructuredSection,
};
use crate::endpoints;
use crate::http::is_reserved;
use switchboard::protocol::wire::Channel;

/// Problems found in a configuration, each as `key: what is wrong`.
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<(String, String)>);

impl Problems {
    pub(crate) fn one(key: impl Into<String>, message: impl Into<String>) -> Self {
        let mut problems = Self::default();
        problems.push(key, message);
        problems
    }

    pub(crate) fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push((key.into(), message.into()));
    }

    pub(crate) fn into_result<T>(self, value: T) -> Result<T, Self> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }

    #[cfg(test)]
    pub(crate) fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_str()).collect()
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (key, message)) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{key}: {message}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// What the gateway runs: the checked configuration, built.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) listen: SocketAddr,
    pub(crate) workers: Option<usize>,
    pub(crate) server: ServerConfig,
    pub(crate) endpoints: Vec<EndpointPlan>,
    /// The rooms that are structured endpoints' channels: bare text
    /// published to one goes out as an `EVENT` `switchboard.text`.
    pub(crate) structured: StructuredChannels,
    pub(crate) api: ApiPlan,
    pub(crate) exposure: ExposurePlan,
    pub(crate) broker: BrokerPlan,
    pub(crate) instance: InstanceId,
    pub(crate) history: HistoryPlan,
    pub(crate) presence: PresencePlan,
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    pub(crate) restart_on_shutdown: bool,
    pub(crate) log: LogSection,
}

/// One WebSocket endpoint.
#[derive(Debug)]
pub(crate) struct EndpointPlan {
    pub(crate) path: String,
    pub(crate) kind: EndpointKind,
    pub(crate) route: RouteConfig,
}

#[derive(Debug, Clone)]
pub(crate) enum EndpointKind {
    Echo,
    Broadcast { room: String },
    Structured(Box<StructuredPlan>),
}

impl EndpointKind {
    /// The protocol's name, as in the config file.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Echo => "echo",
            Self::Broadcast { .. } => "broadcast",
            Self::Structured(_) => "structured",
        }
    }
}

/// A structured-protocol endpoint: the protocol's settings, who may
/// subscribe to what, and where `chat.send` may publish.
#[derive(Debug, Clone)]
pub(crate) struct StructuredPlan {
    pub(crate) config: ProtocolConfig,
    pub(crate) rules: ChannelRules,
    pub(crate) chat: Vec<ChannelPattern>,
    /// `chat.send` per connection: per second, burst.
    pub(crate) chat_rate: (f64, u32),
    /// The backend proxy (`endpoints[].proxy`, else `[proxy]`).
    pub(crate) proxy: Option<super::ProxyPlan>,
}

impl StructuredPlan {
    /// The built-in `/ws`: the protocol's defaults, `chat.send` on `public:*`.
    pub(crate) fn builtin() -> Self {
        let mut p = Problems::default();
        let plan = structured_plan("endpoints[0]", &StructuredSection::default(), None, &mut p);
        debug_assert!(p.0.is_empty(), "{p}");
        plan
    }
}

#[derive(Debug, Clone)]
pub(crate) struct ApiPlan {
    pub(crate) enabled: bool,
    pub(crate) keys: Vec<Secret>,
}

#[derive(Debug)]
pub(crate) enum BrokerPlan {
    Memory,
    /// The broker (not connected yet), and its URL without credentials for logs.
    Redis {
        broker: RedisBroker,
        url: String,
    },
}

impl Plan {
    /// Checks `config` and builds what the gateway runs with, or every
    /// problem found.
    pub(crate) fn build(config: &Config) -> Result<Self, Problems> {
        let mut problems = Problems::default();
        let p = &mut problems;
        let s = &config.server;

        if s.workers == Some(0) {
            p.push(
                "server.workers",
                "must be at least 1 (leave it out for one per core)",
            );
        }
        if s.max_connections == 0 {
            p.push("server.max_connections", "must be at least 1");
        }
        nonzero(p, "server.handshake_timeout", s.handshake_timeout.0);
        nonzero(p, "server.close_timeout", s.close_timeout.0);
        let mut server = ServerConfig::default()
            .with_max_connections(s.max_connections.max(1))
            .with_handshake_timeout(s.handshake_timeout.0)
            .with_close_timeout(s.close_timeout.0)
            .with_shutdown_timeout(s.shutdown_timeout.0);
        if !s.trusted_proxies.is_empty() {
            match TrustedProxies::new(&s.trusted_proxies) {
                Ok(proxies) => {
                    let header = match s.forwarded_header {
                        ForwardedHeaderName::XForwardedFor => ForwardedHeader::XForwardedFor,
                        ForwardedHeaderName::Forwarded => ForwardedHeader::Forwarded,
                    };
                    server = server.with_trusted_proxies(proxies.with_header(header));
                }
                Err(e) => p.push("server.trusted_proxies", e.to_string()),
            }
        }
        if let Some(limit) = &s.rate_limit
            && let Some(limit) = security::rate_limit("server.rate_limit", limit, p)
        {
            server = server.with_rate_limit(limit);
        }
        if let Some(n) = s.max_connections_per_ip {
            if n == 0 {
                p.push("server.max_connections_per_ip", "must be at least 1");
            }
            server = server.with_max_connections_per_ip(n);
        }
        if let Some(n) = s.max_connections_per_user {
            if n == 0 {
                p.push("server.max_connections_per_user", "must be at least 1");
            }
            server = server.with_max_connections_per_user(n);
        }
        server = server.with_security(security::build("security", &config.security, p));

        let defaults = route_defaults(config, p);
        server = server.with_route_defaults(defaults.clone());
        let mut endpoints = endpoints_plan(config, &defaults, p);
        super::proxy::apply(config, &mut endpoints, p);
        let structured = structured_channels(&endpoints);

        check_log(&config.log, p);
        let api = api_plan(config, p);
        let exposure = exposure_plan(config, api.keys.len(), p);
        server = server.with_allowed_hosts(exposure.hosts.clone());
        let (broker, instance) = broker_plan(config, &structured, p);
        let history = history_plan(config, p);
        let presence = presence_plan(config, p);
        let tls = config
            .tls
            .as_ref()
            .and_then(|tls| load_tls(&tls.cert, &tls.key, p));

        problems.into_result(Self {
            listen: s.listen,
            workers: s.workers,
            server,
            endpoints,
            structured,
            api,
            exposure,
            broker,
            instance,
            history,
            presence,
            tls,
            restart_on_shutdown: s.restart_on_shutdown,
            log: config.log.clone(),
        })
    }
}

fn nonzero(p: &mut Problems, key: &str, value: Duration) {
    if value.is_zero() {
        p.push(key, "must be more than 0");
    }
}

/// `[limits]`, `[compression]` and `[keepalive]`: the route defaults.
fn route_defaults(config: &Config, p: &mut Problems) -> RouteConfig {
    let l = &config.limits;
    check_limits("limits", l, p);
    check_compression("compression", &config.compression, p);
    check_keepalive("keepalive", &config.keepalive, p);
    RouteConfig::default()
        .with_limits(limits(l))
        .with_max_queue_bytes(l.max_queue_bytes.0)
        .with_compression(compression(&config.compression))
        .with_keepalive(keepalive(&config.keepalive))
}

fn limits(l: &LimitsSection) -> Limits {
    let frame = l.max_frame_size.unwrap_or(l.max_message_size);
    Limits::default()
        .with_max_message_size(l.max_message_size.0)
        .with_max_frame_size(frame.0)
        .with_max_fragments(l.max_fragments)
}

fn compression(c: &CompressionSection) -> Option<DeflateConfig> {
    c.enabled.then(|| {
        DeflateConfig::default()
            .with_level(c.level)
            .with_min_size(c.min_size.0)
    })
}

fn keepalive(k: &KeepaliveSection) -> Option<Keepalive> {
    k.enabled.then(|| Keepalive::new(k.interval.0, k.timeout.0))
}

fn check_limits(at: &str, l: &LimitsSection, p: &mut Problems) {
    if l.max_message_size.0 == 0 {
        p.push(format!("{at}.max_message_size"), "must be at least 1 byte");
    }
    if let Some(frame) = l.max_frame_size {
        if frame.0 == 0 {
            p.push(format!("{at}.max_frame_size"), "must be at least 1 byte");
        } else if frame.0 > l.max_message_size.0 {
            p.push(
                format!("{at}.max_frame_size"),
                format!(
                    "{frame} is larger than max_message_size ({}): a frame cannot carry more than a message",
                    l.max_message_size
                ),
            );
        }
    }
    if l.max_fragments == 0 {
        p.push(format!("{at}.max_fragments"), "must be at least 1");
    }
    if l.max_queue_bytes.0 < 1024 {
        p.push(format!("{at}.max_queue_bytes"), "must be at least 1KiB");
    }
}

fn check_compression(at: &str, c: &CompressionSection, p: &mut Problems) {
    if c.level > 9 {
        p.push(
            format!("{at}.level"),
            format!("{} is not a level: use 0 to 9", c.level),
        );
    }
}

fn check_keepalive(at: &str, k: &KeepaliveSection, p: &mut Problems) {
    if !k.enabled {
        return;
    }
    if k.interval.0.is_zero() {
        p.push(format!("{at}.interval"), "must be more than 0");
    }
    if k.timeout.0 <= k.interval.0 {
        p.push(
            format!("{at}.timeout"),
            format!(
                "{} must be longer than the interval ({}): a client needs a ping before it is timed out",
                k.timeout, k.interval
            ),
        );
    }
}

/// The endpoints: the configured list, or the built-in ones.
fn endpoints_plan(config: &Config, defaults: &RouteConfig, p: &mut Problems) -> Vec<EndpointPlan> {
    let Some(sections) = &config.endpoints else {
        return endpoints::builtin(defaults);
    };
    if sections.is_empty() {
        p.push(
            "endpoints",
            "empty: declare at least one [[endpoints]], or leave the key out for the built-in ones",
        );
    }
    let mut router = matchit::Router::new();
    let mut plans = Vec::with_capacity(sections.len());
    for (i, e) in sections.iter().enumerate() {
        let at = format!("endpoints[{i}]");
        check_path(&at, e, &mut router, p);
        if e.structured.is_some() && e.protocol != ProtocolName::Structured {
            p.push(
                format!("{at}.structured"),
                "only for protocol = \"structured\"",
            );
        }
        let kind = match (e.protocol, &e.room) {
            (ProtocolName::Echo, None) => EndpointKind::Echo,
            (ProtocolName::Broadcast, room) => {
                let room = room.clone().unwrap_or_else(|| "broadcast".to_owned());
                if let Err(e) = Channel::validate(&room) {
                    p.push(format!("{at}.room"), e.to_string());
                }
                EndpointKind::Broadcast { room }
            }
            (ProtocolName::Structured, None) => {
                let section = e.structured.clone().unwrap_or_default();
                let size = e.limits.max_message_size.map(|s| s.0);
                EndpointKind::Structured(Box::new(structured_plan(&at, &section, size, p)))
            }
            (_, Some(_)) => {
                p.push(format!("{at}.room"), "only for protocol = \"broadcast\"");
                EndpointKind::Echo
            }
        };
        plans.push(EndpointPlan {
            path: e.path.clone(),
            kind,
            route: endpoint_route(&at, e, config, defaults, p),
        });
    }
    plans
}

/// Checks and builds a structured endpoint's settings. `max_message_size`
/// is the endpoint's own `limits.max_message_size`, if any (the protocol's
/// default otherwise: 64 KiB, as docs/protocol.md promises).
fn structured_plan(
    at: &str,
    s: &StructuredSection,
    max_message_size: Option<usize>,
    p: &mut Problems,
) -> StructuredPlan {
    let at = format!("{at}.structured");
    for (key, value) in [
        ("auth_deadline", s.auth_deadline.0),
        ("heartbeat_interval", s.heartbeat_interval.0),
        ("heartbeat_timeout", s.heartbeat_timeout.0),
        ("error_window", s.error_window.0),
    ] {
        nonzero(p, &format!("{at}.{key}"), value);
    }
    for (key, value) in [
        ("max_subscriptions", s.max_subscriptions),
        ("max_errors", s.max_errors),
        ("max_concurrent_actions", s.max_concurrent_actions),
        ("max_auth_failures", s.max_auth_failures as usize),
    ] {
        if value == 0 {
            p.push(format!("{at}.{key}"), "must be at least 1");
        }
    }
    let mut config = ProtocolConfig::default()
        .with_require_auth(s.require_auth)
        .with_auth_deadline(s.auth_deadline.0)
        .with_max_auth_failures(s.max_auth_failures)
        .with_heartbeat(s.heartbeat_interval.0, s.heartbeat_timeout.0)
        .with_session_warning(s.session_warning.0)
        .with_max_subscriptions(s.max_subscriptions)
        .with_max_errors(s.max_errors, s.error_window.0)
        .with_max_concurrent_actions(s.max_concurrent_actions);
    if let Some(size) = max_message_size {
        config = config.with_max_message_size(size);
    }
    let rules = match &s.channels {
        None => ChannelRules::default(),
        Some(list) => {
            let mut rules = ChannelRules::new();
            for (i, rule) in list.iter().enumerate() {
                let pattern = ChannelPattern::new(&rule.pattern)
                    .map_err(|e| p.push(format!("{at}.channels[{i}].pattern"), e.to_string()));
                let access = rule
                    .access
                    .parse::<Access>()
                    .map_err(|e| p.push(format!("{at}.channels[{i}].access"), e.to_string()));
                if let (Ok(pattern), Ok(access)) = (pattern, access) {
                    rules = rules.rule(pattern, access);
                }
            }
            rules
        }
    };
    let chat = s
        .chat_channels
        .iter()
        .enumerate()
        .filter_map(|(i, pattern)| {
            ChannelPattern::new(pattern)
                .map_err(|e| p.push(format!("{at}.chat_channels[{i}]"), e.to_string()))
                .ok()
        })
        .collect();
    if !(s.chat_rate.is_finite() && s.chat_rate > 0.0) {
        p.push(
            format!("{at}.chat_rate"),
            "must be a positive number (messages per second)",
        );
    }
    if s.chat_burst == 0 {
        p.push(format!("{at}.chat_burst"), "must be at least 1");
    }
    StructuredPlan {
        config,
        rules,
        chat,
        chat_rate: (s.chat_rate, s.chat_burst.max(1)),
        proxy: None,
    }
}

fn check_path(at: &str, e: &EndpointSection, router: &mut matchit::Router<()>, p: &mut Problems) {
    let key = format!("{at}.path");
    if !e.path.starts_with('/') {
        p.push(key, format!("{:?} must start with '/'", e.path));
        return;
    }
    if is_reserved(&e.path) {
        p.push(
            key,
            format!(
                "{:?} is served over HTTP by the gateway (/, /healthz, /readyz, /metrics, /api/...): choose another path",
                e.path
            ),
        );
        return;
    }
    if let Err(e) = router.insert(e.path.as_str(), ()) {
        p.push(key, e.to_string());
    }
}

fn endpoint_route(
    at: &str,
    e: &EndpointSection,
    config: &Config,
    defaults: &RouteConfig,
    p: &mut Problems,
) -> RouteConfig {
    let base = &config.limits;
    let l = LimitsSection {
        max_message_size: e.limits.max_message_size.unwrap_or(base.max_message_size),
        max_frame_size: e
            .limits
            .max_frame_size
            .or(if e.limits.max_message_size.is_some() {
                None
            } else {
                base.max_frame_size
            }),
        max_fragments: e.limits.max_fragments.unwrap_or(base.max_fragments),
        max_queue_bytes: e.limits.max_queue_bytes.unwrap_or(base.max_queue_bytes),
    };
    // An endpoint's own keys are checked with the defaults they combine
    // with; problems of the defaults alone are reported once, under them.
    let o = &e.limits;
    if o.max_message_size.is_some()
        || o.max_frame_size.is_some()
        || o.max_fragments.is_some()
        || o.max_queue_bytes.is_some()
    {
        check_limits(&format!("{at}.limits"), &l, p);
    }
    let c = CompressionSection {
        enabled: e.compression.enabled.unwrap_or(config.compression.enabled),
        level: e.compression.level.unwrap_or(config.compression.level),
        min_size: e
            .compression
            .min_size
            .unwrap_or(config.compression.min_size),
    };
    if e.compression.level.is_some() {
        check_compression(&format!("{at}.compression"), &c, p);
    }
    let k = KeepaliveSection {
        enabled: e.keepalive.enabled.unwrap_or(config.keepalive.enabled),
        interval: e.keepalive.interval.unwrap_or(config.keepalive.interval),
        timeout: e.keepalive.timeout.unwrap_or(config.keepalive.timeout),
    };
    if e.keepalive.interval.is_some() || e.keepalive.timeout.is_some() {
        check_keepalive(&format!("{at}.keepalive"), &k, p);
    }
    if e.require_subprotocol && e.subprotocols.is_empty() {
        p.push(
            format!("{at}.require_subprotocol"),
            "needs subprotocols to require",
        );
    }
    let mut route = defaults
        .clone()
        .with_limits(limits(&l))
        .with_max_queue_bytes(l.max_queue_bytes.0)
        .with_compression(compression(&c))
        .with_keepalive(keepalive(&k))
        .with_protocols(e.subprotocols.iter().cloned());
    if e.require_subprotocol {
        route = route.require_protocol();
    }
    if let Some(section) = &e.security {
        route = route.with_security(security::build(&format!("{at}.security"), section, p));
    }
    route
}

fn check_log(log: &LogSection, p: &mut Problems) {
    if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&log.level) {
        p.push("log.level", format!("invalid filter {:?}: {e}", log.level));
    }
}

fn api_plan(config: &Config, p: &mut Problems) -> ApiPlan {
    let api = &config.api;
    let mut keys = api.keys.clone();
    if let Some(path) = &api.keys_file {
        match std::fs::read_to_string(path) {
            Ok(text) => keys.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(|l| Secret::new(l.to_owned())),
            ),
            Err(e) => p.push(
                "api.keys_file",
                format!("cannot read {}: {e}", path.display()),
            ),
        }
    }
    for (i, key) in keys.iter().enumerate() {
        if key.expose().chars().count() < MIN_KEY_LEN {
            p.push(
                format!("api.keys[{i}]"),
                format!("too short: use at least {MIN_KEY_LEN} characters"),
            );
        }
    }
    let listen = config.server.listen;
    let public = config.server.public || !listen.ip().is_loopback();
    if api.enabled && keys.is_empty() && public {
        let reach = if listen.ip().is_loopback() {
            format!("server.public = true on {listen}")
        } else {
            format!("the gateway listens on {listen}, beyond loopback")
        };
        p.push(
            "api.keys",
            format!(
                "required: {reach}, and the HTTP API (publish, disconnect) would be open to anyone. Set SWITCHBOARD_API_KEY (or SWITCHBOARD_API_KEY_FILE, api.keys, api.keys_file), or api.enabled = false"
            ),
        );
    }
    ApiPlan {
        enabled: api.enabled,
        keys,
    }
}

/// The channels of every structured endpoint, less the rooms of broadcast
/// endpoints (their clients take raw frames).
fn structured_channels(endpoints: &[EndpointPlan]) -> StructuredChannels {
    endpoints
        .iter()
        .fold(StructuredChannels::new(), |channels, e| match &e.kind {
            EndpointKind::Structured(plan) => channels.endpoint(plan.rules.clone()),
            EndpointKind::Broadcast { room } => channels.raw_room(room.clone()),
            EndpointKind::Echo => channels,
        })
}

fn broker_plan(
    config: &Config,
    structured: &StructuredChannels,
    p: &mut Problems,
) -> (BrokerPlan, InstanceId) {
    let b = &config.broker;
    let instance = match &b.instance_id {
        Some(id) => InstanceId::new(id).unwrap_or_else(|_| {
            p.push(
                "broker.instance_id",
                format!("{id:?} is not valid: use 1-64 characters from A-Z a-z 0-9 - _ ."),
            );
            InstanceId::random()
        }),
        None => InstanceId::random(),
    };
    let url_from_file = b
        .url_file
        .as_ref()
        .and_then(|path| match std::fs::read_to_string(path) {
            Ok(text) => Some(Secret::new(text.trim().to_owned())),
            Err(e) => {
                p.push(
                    "broker.url_file",
                    format!("cannot read {}: {e}", path.display()),
                );
                None
            }
        });
    if url_from_file.is_some() && b.url.is_some() {
        p.push(
            "broker.url_file",
            "set broker.url or broker.url_file, not both",
        );
    }
    let url = b.url.clone().or(url_from_file);
    let plan = match (b.kind, &url) {
        (BrokerKind::Memory, None) => BrokerPlan::Memory,
        (BrokerKind::Memory, Some(_)) => {
            p.push(
                "broker.url",
                "only used with type = \"redis\" (set broker.type, or SWITCHBOARD_BROKER=redis)",
            );
            BrokerPlan::Memory
        }
        (BrokerKind::Redis, None) => {
            p.push(
                "broker.url",
                "required with type = \"redis\": redis://[user:password@]host[:port][/db]",
            );
            BrokerPlan::Memory
        }
        (BrokerKind::Redis, Some(url)) => {
            for (key, value) in [
                ("broker.command_timeout", b.command_timeout.0),
                ("broker.connect_timeout", b.connect_timeout.0),
                ("broker.start_timeout", b.start_timeout.0),
            ] {
                nonzero(p, key, value);
            }
            let redis = RedisConfig::new(url.expose())
                .prefix(&b.prefix)
                .command_timeout(b.command_timeout.0)
                .connect_timeout(b.connect_timeout.0)
                .start_timeout(b.start_timeout.0)
                .lease_ttl(b.lease_ttl.0)
                .durable(b.durable)
                .structured_channels(structured.clone());
            match RedisBroker::new(redis) {
                Ok(broker) => BrokerPlan::Redis {
                    broker,
                    url: redact_url(url.expose()),
                },
                Err(e) => {
                    p.push("broker", e.to_string());
                    BrokerPlan::Memory
                }
            }
        }
    };
    (plan, instance)
}

/// A URL without its user and password, for logs.
pub(crate) fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://[redacted]@{host}"),
            None => url.to_owned(),
        },
        None => "[unparsable URL]".to_owned(),
    }
}

fn load_tls(cert: &Path, key: &Path, p: &mut Problems) -> Option<Arc<rustls::ServerConfig>> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};

    let chain: Result<Vec<CertificateDer<'static>>, _> = match CertificateDer::pem_file_iter(cert) {
        Ok(iter) => iter.collect(),
        Err(e) => {
            p.push("tls.cert", format!("cannot read {}: {e}", cert.display()));
            return None;
        }
    };
    let chain = match chain {
        Ok(chain) if !chain.is_empty() => chain,
        Ok(_) => {
            p.push("tls.cert", format!("no certificate in {}", cert.display()));
            return None;
        }
        Err(e) => {
            p.push(
                "tls.cert",
                format!("invalid PEM in {}: {e}", cert.display()),
            );
            return None;
        }
    };
    let key = match PrivateKeyDer::from_pem_file(key) {
        Ok(key) => key,
        Err(e) => {
            p.push(
                "tls.key",
                format!("no usable private key in {}: {e}", key.display()),
            );
            return None;
        }
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())
        .and_then(|b| {
            b.with_no_client_auth()
                .with_single_cert(chain, key)
                .map_err(|e| e.to_string())
        });
    match config {
        Ok(mut config) => {
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Some(Arc::new(config))
        }
        Err(e) => {
            p.push(
                "tls",
                format!("the certificate and key do not work together: {e}"),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests;
