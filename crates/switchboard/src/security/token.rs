//! Where a route looks for the client's token.

use std::borrow::Cow;

use crate::request::RequestInfo;

/// A place the client may put its token. A route tries its sources in
/// order and authenticates with the first token found.
///
/// Browsers cannot set headers on a WebSocket handshake, so browser clients
/// use a cookie, the query string or a subprotocol entry:
///
/// - [`TokenSource::Bearer`]: `Authorization: Bearer <token>`, for
///   non-browser clients. The default.
/// - [`TokenSource::Protocol`]: the browser offers
///   `new WebSocket(url, ["switchboard", "bearer.<token>"])`; the entry
///   starting with the prefix (`bearer.`) carries the token. List the real
///   subprotocol (`switchboard`) in [`crate::RouteConfig::protocols`]: the
///   server answers with it, never with the token entry (browsers refuse a
///   handshake whose answer names no offered protocol when they offered
///   some). JWTs only contain characters allowed in a subprotocol name.
/// - [`TokenSource::Cookie`]: a cookie, for same-site browser apps; pair it
///   with an origin allow-list (cookies are sent by any page).
/// - [`TokenSource::Query`]: `?token=...`. Query strings end up in proxy
///   and access logs: Switchboard never logs them, but use short-lived,
///   single-use tickets if your proxies do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenSource {
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// A query parameter with this name.
    Query(String),
    /// A cookie with this name.
    Cookie(String),
    /// An offered subprotocol starting with this prefix; the rest is the token.
    Protocol(String),
}

impl TokenSource {
    /// The query parameter `name`.
    pub fn query(name: impl Into<String>) -> Self {
        Self::Query(name.into())
    }

    /// The cookie `name`.
    pub fn cookie(name: impl Into<String>) -> Self {
        Self::Cookie(name.into())
    }

    /// The offered subprotocol starting with `prefix` (such as `bearer.`).
    pub fn protocol(prefix: impl Into<String>) -> Self {
        Self::Protocol(prefix.into())
    }

    fn find<'a>(&self, info: &'a RequestInfo) -> Option<Cow<'a, str>> {
        let token = match self {
            Self::Bearer => info
                .headers()
                .get_all(http::header::AUTHORIZATION)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(|v| {
                    let (scheme, token) = v.trim().split_once(' ')?;
                    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
                })
                .map(Cow::Borrowed),
            Self::Query(name) => info.query(name).map(Cow::Owned),
            Self::Cookie(name) => info.cookie(name).map(Cow::Borrowed),
            Self::Protocol(prefix) => switchboard_ws::handshake::offered_protocols(info.headers())
                .find_map(|p| p.strip_prefix(prefix.as_str()))
                .map(Cow::Borrowed),
        };
        token.filter(|t| !t.is_empty())
    }
}

/// The first token found in `sources`.
pub(crate) fn find<'a>(sources: &[TokenSource], info: &'a RequestInfo) -> Option<Cow<'a, str>> {
    sources.iter().find_map(|s| s.find(info))
}
