//! Handshake security: origin checks, rate limits, connection caps,
//! authentication and guards, run in that order before the handler.
//!
//! Every step runs during the handshake, before the route's handler is
//! called, and refuses with a plain-text HTTP response:
//!
//! | step | refusal |
//! |------|---------|
//! | 1. origin ([`OriginPolicy`]) | 403 `Origin not allowed` |
//! | 2. rate limit per client address, server-wide then route ([`RateLimit`]) | 429 `Rate limit exceeded`, `Retry-After` |
//! | 3. open connections per client address, server-wide then route | 503 `Too many connections from this address`, `Retry-After` |
//! | 4. authentication ([`Authenticator`]: [`JwtAuth`], [`ApiKeyAuth`], yours) | 401 `Invalid token: <reason>`; 503 `Authentication unavailable` |
//! | 5. guards ([`IsAuthenticated`], [`IsAdmin`], [`HasPermission`], yours) | 401 `Authentication required`, 403 `Permission denied` |
//! | 6. open connections per user, server-wide then route | 503 `Too many connections for this user`, `Retry-After` |
//!
//! A refused origin never spends a rate-limit token; a rate-limited client
//! never costs a signature check. The order is fixed.
//!
//! ```
//! use switchboard::security::{HasPermission, IsAuthenticated, JwtAuth, RateLimit, Security, TokenSource};
//! use switchboard::{RouteConfig, ServerConfig, Switchboard, WebSocketUpgrade};
//!
//! # async fn chat(ws: WebSocketUpgrade) {}
//! let security = Security::new()
//!     .allow_origins(["https://app.example.com", "https://*.example.com"])
//!     .rate_limit(RateLimit::per_second(2.0).with_burst(10))
//!     .max_connections_per_user(5)
//!     .authenticate(JwtAuth::hs256("a secret of at least thirty-two bytes").audience("chat"))
//!     .tokens_from([TokenSource::Bearer, TokenSource::protocol("bearer.")])
//!     .guard(IsAuthenticated)
//!     .guard(HasPermission("chat:write"));
//!
//! let app = Switchboard::new().route_with(
//!     "/ws/chat",
//!     RouteConfig::default().with_protocols(["switchboard"]).with_security(security),
//!     chat,
//! );
//! ```
//!
//! Routes without their own [`Security`] use [`crate::ServerConfig::security`]
//! (same-origin only, nothing else, by default). Server-wide rate limits and
//! caps, counted across all routes, and the proxies whose `X-Forwarded-For`
//! is believed, are [`crate::ServerConfig`] settings. See `docs/security.md`
//! for every option, the close codes, and running behind a proxy.

mod auth;
mod caps;
mod client_ip;
mod expiry;
mod guard;
mod identity;
mod jwt;
mod origin;
mod rate_limit;
mod sharded;
mod token;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http::{HeaderValue, StatusCode, header};

pub use auth::{ApiKeyAuth, AuthError, AuthRequest, Authenticator};
pub use client_ip::{ForwardedHeader, TrustedProxies};
pub use expiry::{expires_at, refresh};
pub use guard::{
    Guard, GuardContext, HasPermission, IsAdmin, IsAuthenticated, authentication_required,
    permission_denied,
};
pub use identity::Identity;
pub use jwt::{JwtAlgorithm, JwtAuth, JwtKey};
pub use origin::{OriginPattern, OriginPolicy};
pub use rate_limit::RateLimit;
pub use token::TokenSource;

use auth::ErasedAuthenticator;
use caps::{CapGuard, Caps};
use client_ip::IpKey;
pub(crate) use expiry::arm;
use rate_limit::RateLimiter;

use crate::config::{RouteConfig, ServerConfig};
use crate::error::Rejection;
use crate::hub::UserId;
use crate::request::RequestInfo;

/// Who may connect to a route. Build it with the methods; every field has a
/// default that is safe for a browser-facing endpoint without credentials.
#[derive(Clone)]
#[non_exhaustive]
pub struct Security {
    /// Which `Origin`s are accepted. Default [`OriginPolicy::same_origin`],
    /// requests without `Origin` allowed.
    pub origins: OriginPolicy,
    /// New connections per client address on this route. Default none.
    pub rate_limit: Option<RateLimit>,
    /// Connections open at once per client address on this route. Default none.
    pub max_connections_per_ip: Option<usize>,
    /// Connections open at once per authenticated user on this route. Default none.
    pub max_connections_per_user: Option<usize>,
    /// Where the token is looked for, in order. Default `[TokenSource::Bearer]`.
    pub token_sources: Vec<TokenSource>,
    /// Longest time authentication may take (a slow identity service)
    /// before the client gets `503 Authentication unavailable`. Default 10 s.
    pub auth_timeout: Duration,
    authenticators: Vec<(&'static str, Arc<dyn ErasedAuthenticator>)>,
    guards: Vec<(&'static str, Arc<dyn Guard>)>,
}

impl Default for Security {
    fn default() -> Self {
        Self {
            origins: OriginPolicy::default(),
            rate_limit: None,
            max_connections_per_ip: None,
            max_connections_per_user: None,
            token_sources: vec![TokenSource::Bearer],
            auth_timeout: Duration::from_secs(10),
            authenticators: Vec::new(),
            guards: Vec::new(),
        }
    }
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn names<T: ?Sized>(v: &[(&'static str, Arc<T>)]) -> Vec<&'static str> {
            v.iter().map(|(n, _)| *n).collect()
        }
        f.debug_struct("Security")
            .field("origins", &self.origins)
            .field("rate_limit", &self.rate_limit)
            .field("max_connections_per_ip", &self.max_connections_per_ip)
            .field("max_connections_per_user", &self.max_connections_per_user)
            .field("token_sources", &self.token_sources)
            .field("auth_timeout", &self.auth_timeout)
            .field("authenticators", &names(&self.authenticators))
            .field("guards", &names(&self.guards))
            .finish()
    }
}

impl Security {
    /// The defaults: same-origin only, no limits, no authentication, no guards.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts the origins matching `patterns` (see [`OriginPolicy::allow_list`]).
    ///
    /// # Panics
    /// On an invalid pattern; build an [`OriginPolicy`] and use
    /// [`Security::origins`] to get an error instead.
    pub fn allow_origins<I, S>(self, patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let allow_missing = self.origins.allow_missing;
        let policy = OriginPolicy::allow_list(patterns).unwrap_or_else(|e| panic!("{e}"));
        self.origins(policy.with_missing_allowed(allow_missing))
    }

    /// Accepts any origin (for routes without cookie or other ambient credentials).
    pub fn allow_any_origin(self) -> Self {
        let allow_missing = self.origins.allow_missing;
        self.origins(OriginPolicy::any().with_missing_allowed(allow_missing))
    }

    /// Refuses requests without an `Origin` header (only browsers may connect).
    pub fn deny_missing_origin(mut self) -> Self {
        self.origins.allow_missing = false;
        self
    }

    /// Sets [`Security::origins`].
    pub fn origins(mut self, policy: OriginPolicy) -> Self {
        self.origins = policy;
        self
    }

    /// Sets [`Security::rate_limit`].
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }

    /// Sets [`Security::max_connections_per_ip`].
    pub fn max_connections_per_ip(mut self, n: usize) -> Self {
        self.max_connections_per_ip = Some(n);
        self
    }

    /// Sets [`Security::max_connections_per_user`].
    pub fn max_connections_per_user(mut self, n: usize) -> Self {
        self.max_connections_per_user = Some(n);
        self
    }

    /// Adds an authenticator. Several are tried in order until one
    /// recognises the credentials (see [`Authenticator`]).
    pub fn authenticate(mut self, authenticator: impl Authenticator) -> Self {
        let name = short_type_name(std::any::type_name_of_val(&authenticator));
        self.authenticators.push((name, Arc::new(authenticator)));
        self
    }

    /// Sets [`Security::token_sources`], replacing the default.
    pub fn tokens_from(mut self, sources: impl IntoIterator<Item = TokenSource>) -> Self {
        self.token_sources = sources.into_iter().collect();
        self
    }

    /// Sets [`Security::auth_timeout`].
    pub fn auth_timeout(mut self, timeout: Duration) -> Self {
        self.auth_timeout = timeout;
        self
    }

    /// Adds a guard; guards run in order after authentication.
    pub fn guard(mut self, guard: impl Guard) -> Self {
        let name = short_type_name(std::any::type_name_of_val(&guard));
        self.guards.push((name, Arc::new(guard)));
        self
    }
}

impl Security {
    /// Whether any authenticator is configured.
    pub(crate) fn has_authenticators(&self) -> bool {
        !self.authenticators.is_empty()
    }
}

fn short_type_name(name: &'static str) -> &'static str {
    let generic = name.find('<').unwrap_or(name.len());
    let start = name[..generic].rfind("::").map_or(0, |i| i + 2);
    &name[start..]
}

/// State built from the settings when the first connection arrives, and
/// fresh in every clone of them: each route (and each app) counts for itself.
pub(crate) struct Runtime<T>(OnceLock<T>);

impl<T> Runtime<T> {
    fn get_or_init(&self, init: impl FnOnce() -> T) -> &T {
        self.0.get_or_init(init)
    }
}

impl<T> Default for Runtime<T> {
    fn default() -> Self {
        Self(OnceLock::new())
    }
}

impl<T> Clone for Runtime<T> {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl<T> std::fmt::Debug for Runtime<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Runtime")
    }
}

/// Rate-limit buckets and caps of one scope (a route, or the server).
#[derive(Debug)]
pub(crate) struct Counters {
    limiter: Option<RateLimiter>,
    ip_caps: Option<Arc<Caps<IpKey>>>,
    user_caps: Option<Arc<Caps<UserId>>>,
}

impl Counters {
    fn new(rate: Option<RateLimit>, per_ip: Option<usize>, per_user: Option<usize>) -> Self {
        Self {
            limiter: rate.map(RateLimiter::new),
            ip_caps: per_ip.map(Caps::new),
            user_caps: per_user.map(Caps::new),
        }
    }
}

/// The server's counters.
#[derive(Debug)]
pub(crate) struct ServerState {
    counters: Counters,
}

/// What a connection holds for its whole life once admitted: its places
/// under the caps.
#[derive(Debug, Default)]
pub(crate) struct Admission {
    ip: Vec<CapGuard<IpKey>>,
    user: Vec<CapGuard<UserId>>,
}

/// Runs the pipeline for a request to `route`. On success the request
/// carries its client address, identity and user; keep the admission until
/// the connection ends.
pub(crate) async fn admit(
    server: &ServerConfig,
    route: &RouteConfig,
    info: &mut RequestInfo,
) -> Result<Admission, Rejection> {
    let security = route.security.as_ref().unwrap_or(&server.security);
    let global = server.security_state.get_or_init(|| ServerState {
        counters: Counters::new(
            server.rate_limit,
            server.max_connections_per_ip,
            server.max_connections_per_user,
        ),
    });
    let local = route.security_state.get_or_init(|| {
        Counters::new(
            security.rate_limit,
            security.max_connections_per_ip,
            security.max_connections_per_user,
        )
    });
    let scopes = [&global.counters, local];
    info.client_ip = server
        .trusted_proxies
        .client_ip(info.client_addr.ip(), &info.headers);
    let key = IpKey::new(info.client_ip);

    if !security.origins.allows(&info.headers) {
        return Err(Rejection::new(StatusCode::FORBIDDEN, "Origin not allowed"));
    }

    let now = tokio::time::Instant::now().into_std();
    for limiter in scopes.iter().filter_map(|s| s.limiter.as_ref()) {
        if let Err(wait) = limiter.check(key, now) {
            return Err(
                Rejection::new(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded")
                    .with_header(header::RETRY_AFTER, retry_after(wait)),
            );
        }
    }

    let mut admission = Admission::default();
    for caps in scopes.iter().filter_map(|s| s.ip_caps.as_ref()) {
        let guard = caps
            .acquire(key)
            .ok_or_else(|| at_capacity("Too many connections from this address"))?;
        admission.ip.push(guard);
    }

    let identity = authenticate(security, info).await?;

    let cx = GuardContext {
        identity: identity.as_ref(),
        info,
    };
    for (_, guard) in &security.guards {
        guard.check(&cx)?;
    }

    if let Some(identity) = identity {
        for caps in scopes.iter().filter_map(|s| s.user_caps.as_ref()) {
            let guard = caps
                .acquire(identity.user_id().clone())
                .ok_or_else(|| at_capacity("Too many connections for this user"))?;
            admission.user.push(guard);
        }
        // The expiry (if any) is armed when the connection is accepted and
        // has an id: see `upgrade.rs` and `expiry::arm`.
        info.user = Some(identity.user_id().clone());
        info.identity = Some(identity);
    }
    Ok(admission)
}

async fn authenticate(
    security: &Security,
    info: &RequestInfo,
) -> Result<Option<Identity>, Rejection> {
    if security.authenticators.is_empty() {
        return Ok(None);
    }
    let token = token::find(&security.token_sources, info);
    check_token(security, token.as_deref(), info)
        .await
        .map_err(AuthError::into_rejection)
}

/// Runs `security`'s authenticators on `token`, in order, under its
/// `auth_timeout`: the first identity wins; with none, the first
/// `InvalidToken` if any, else `Ok(None)`. The handshake uses it, and so
/// does the structured protocol's `AUTHENTICATE` (with the token from the
/// message, and the request that opened the connection).
pub(crate) async fn check_token(
    security: &Security,
    token: Option<&str>,
    info: &RequestInfo,
) -> Result<Option<Identity>, AuthError> {
    let request = AuthRequest { token, info };
    let run = async {
        let mut invalid = None;
        for (_, authenticator) in &security.authenticators {
            match authenticator.authenticate(&request).await {
                Ok(Some(identity)) => return Ok(Some(identity)),
                Ok(None) => {}
                Err(e @ AuthError::InvalidToken(_)) => {
                    invalid.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        invalid.map_or(Ok(None), Err)
    };
    match tokio::time::timeout(security.auth_timeout, run).await {
        Ok(result) => result,
        Err(_) => Err(AuthError::Unavailable("timed out".to_owned())),
    }
}

/// `Retry-After` in whole seconds, rounded up, at least 1.
fn retry_after(wait: Duration) -> HeaderValue {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    HeaderValue::from(secs.max(1))
}

fn at_capacity(reason: &'static str) -> Rejection {
    Rejection::new(StatusCode::SERVICE_UNAVAILABLE, reason)
        .with_header(header::RETRY_AFTER, HeaderValue::from_static("5"))
}
