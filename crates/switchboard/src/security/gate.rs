//! The security pipeline of one route, run at every handshake, with the
//! counters (rate-limit buckets, caps) it owns.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, StatusCode, header};

use super::auth::{AuthError, AuthRequest};
use super::caps::{CapGuard, Caps};
use super::client_ip::{IpKey, TrustedProxies};
use super::guard::GuardContext;
use super::host::HostPolicy;
use super::rate_limit::{RateLimit, RateLimiter};
use super::settings::Security;
use super::token;
use crate::error::{Rejection, RejectionKind};
use crate::hub::UserId;
use crate::identity::Identity;
use crate::request::RequestInfo;

/// Rate-limit buckets and caps of one scope (a route, or the whole server).
#[derive(Debug)]
pub(crate) struct Counters {
    limiter: Option<RateLimiter>,
    ip_caps: Option<Arc<Caps<IpKey>>>,
    user_caps: Option<Arc<Caps<UserId>>>,
}

impl Counters {
    pub(crate) fn new(
        rate: Option<RateLimit>,
        per_ip: Option<usize>,
        per_user: Option<usize>,
    ) -> Self {
        Self {
            limiter: rate.map(RateLimiter::new),
            ip_caps: per_ip.map(Caps::new),
            user_caps: per_user.map(Caps::new),
        }
    }
}

/// What a connection holds for its whole life once admitted: its places
/// under the caps.
#[derive(Debug, Default)]
pub(crate) struct Admission {
    ip: Vec<CapGuard<IpKey>>,
    user: Vec<CapGuard<UserId>>,
}

/// One route's security: its rules, the proxies whose forwarded address
/// is believed, the server's counters (shared by every route of an app) and
/// its own.
#[derive(Debug)]
pub(crate) struct Gate {
    security: Security,
    hosts: HostPolicy,
    proxies: TrustedProxies,
    server: Arc<Counters>,
    route: Counters,
}

impl Gate {
    /// The gate of a route whose rules are `security`.
    pub(crate) fn new(
        security: Security,
        hosts: HostPolicy,
        proxies: TrustedProxies,
        server: Arc<Counters>,
    ) -> Self {
        let route = Counters::new(
            security.rate_limit,
            security.max_connections_per_ip,
            security.max_connections_per_user,
        );
        Self {
            security,
            hosts,
            proxies,
            server,
            route,
        }
    }

    /// Runs the pipeline for a request. On success the request carries its
    /// client address, identity and user; keep the admission until the
    /// connection ends.
    pub(crate) async fn admit(&self, info: &mut RequestInfo) -> Result<Admission, Rejection> {
        let security = &self.security;
        let host = info
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok());
        if !self.hosts.allows(host) {
            return Err(
                Rejection::new(StatusCode::MISDIRECTED_REQUEST, "Host not allowed")
                    .with_kind(RejectionKind::Host),
            );
        }
        let scopes = [&*self.server, &self.route];
        info.client_ip = self.proxies.client_ip(info.client_addr.ip(), &info.headers);
        let key = IpKey::new(info.client_ip);

        if !security.origins.allows(&info.headers) {
            return Err(Rejection::new(StatusCode::FORBIDDEN, "Origin not allowed")
                .with_kind(RejectionKind::Origin));
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
            let guard = caps.acquire(key).ok_or_else(|| {
                at_capacity(
                    "Too many connections from this address",
                    RejectionKind::IpCap,
                )
            })?;
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
                let guard = caps.acquire(identity.user_id().clone()).ok_or_else(|| {
                    at_capacity("Too many connections for this user", RejectionKind::UserCap)
                })?;
                admission.user.push(guard);
            }
            // The expiry (if any) is armed when the connection is accepted and
            // has an id: see `expiry::arm`.
            info.user = Some(identity.user_id().clone());
            info.identity = Some(identity);
        }
        Ok(admission)
    }
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

fn at_capacity(reason: &'static str, kind: RejectionKind) -> Rejection {
    Rejection::new(StatusCode::SERVICE_UNAVAILABLE, reason)
        .with_kind(kind)
        .with_header(header::RETRY_AFTER, HeaderValue::from_static("5"))
}
