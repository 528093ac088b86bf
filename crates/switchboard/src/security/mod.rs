//! Handshake security: origin checks, rate limits, connection caps,
//! authentication and guards, run in that order before the handler.
//!
//! Every step runs during the handshake, before the route's handler is
//! called, and refuses with a plain-text HTTP response:
//!
//! | step | refusal |
//! |------|---------|
//! | 0. host, server-wide ([`HostPolicy`], [`crate::ServerConfig::allowed_hosts`]) | 421 `Host not allowed` |
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
//!
//! Settings are plain data; the counters behind rate limits and caps belong
//! to the built app (one set per route, one for the server), so cloning a
//! configuration never shares or resets them.
//!
//! # Layout
//! - `settings`: [`Security`], the rules of one route.
//! - `gate`: the pipeline that runs them, with the counters it owns.
//! - `host`, `origin`, `rate_limit`, `caps`, `client_ip`: the checks before
//!   authentication.
//! - `auth`, `jwt`, `token`: authentication; `guard`: guards; `expiry`:
//!   closing connections whose credentials expire.

mod auth;
mod caps;
mod client_ip;
mod expiry;
mod gate;
mod guard;
mod host;
mod jwt;
mod origin;
mod rate_limit;
mod settings;
mod sharded;
mod token;

pub use crate::identity::Identity;
pub use auth::{ApiKeyAuth, AuthError, AuthRequest, Authenticator};
pub use client_ip::{ForwardedHeader, TrustedProxies};
pub use expiry::{expires_at, refresh};
pub use guard::{
    Guard, GuardContext, HasPermission, IsAdmin, IsAuthenticated, authentication_required,
    permission_denied,
};
pub use host::HostPolicy;
pub use jwt::{JwtAlgorithm, JwtAuth, JwtKey};
pub use origin::{OriginPattern, OriginPolicy};
pub use rate_limit::RateLimit;
pub use settings::Security;
pub use token::TokenSource;

pub(crate) use expiry::arm;
pub(crate) use gate::{Admission, Counters, Gate, check_token};
