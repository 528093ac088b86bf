//! What a handler can know about the request that opened its connection.

use std::net::{IpAddr, SocketAddr};

use http::{HeaderMap, Uri};

use crate::identity::Identity;

/// The upgrade request, shared by the handler and its socket.
pub struct RequestInfo {
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) client_addr: SocketAddr,
    pub(crate) params: Vec<(String, String)>,
    pub(crate) route: String,
    /// The authenticated user, set by the security pipeline; the connection
    /// is registered in the hub under it.
    pub(crate) user: Option<crate::hub::UserId>,
    /// The client address: the peer's, or the one a trusted proxy forwarded.
    pub(crate) client_ip: IpAddr,
    /// What authentication produced, if the client authenticated.
    pub(crate) identity: Option<Identity>,
}

/// Headers whose values are credentials: shown as `[redacted]`.
const SECRET_HEADERS: [http::HeaderName; 4] = [
    http::header::AUTHORIZATION,
    http::header::PROXY_AUTHORIZATION,
    http::header::COOKIE,
    http::header::SEC_WEBSOCKET_PROTOCOL,
];

/// Never shows the query string (it may carry a token) nor credential headers.
impl std::fmt::Debug for RequestInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(name, value)| {
                let value = if SECRET_HEADERS.contains(name) {
                    "[redacted]"
                } else {
                    value.to_str().unwrap_or("[binary]")
                };
                (name.as_str(), value)
            })
            .collect();
        f.debug_struct("RequestInfo")
            .field("path", &self.uri.path())
            .field("query", &self.uri.query().map(|_| "[redacted]"))
            .field("headers", &headers)
            .field("client_addr", &self.client_addr)
            .field("client_ip", &self.client_ip)
            .field("route", &self.route)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl RequestInfo {
    /// The request path, without the query string.
    pub fn path(&self) -> &str {
        self.uri.path()
    }

    /// The route pattern that matched, such as `/ws/chat/{room_id}`.
    pub fn route(&self) -> &str {
        &self.route
    }

    /// The raw query string, if any.
    pub fn query_string(&self) -> Option<&str> {
        self.uri.query()
    }

    /// The decoded query parameters, in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        self.query_string().map(parse_query).unwrap_or_default()
    }

    /// The first value of query parameter `name`.
    pub fn query(&self, name: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// The request headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The first value of header `name`, if it is valid text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The value of cookie `name` from the `Cookie` headers.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }

    /// The peer's socket address (a proxy's, when there is one in front).
    pub fn client_addr(&self) -> SocketAddr {
        self.client_addr
    }

    /// The client's address: the peer's, or, when the peer is a trusted
    /// proxy ([`crate::ServerConfig::trusted_proxies`]), the one it forwarded.
    /// Rate limits and per-address caps count by it.
    pub fn client_ip(&self) -> IpAddr {
        self.client_ip
    }

    /// The authenticated identity, if the client authenticated.
    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }

    /// The user the connection is registered under in the hub, if any.
    pub fn user(&self) -> Option<&crate::hub::UserId> {
        self.user.as_ref()
    }

    /// The path parameters, percent-decoded, in pattern order.
    pub fn path_params(&self) -> &[(String, String)] {
        &self.params
    }

    /// Path parameter `name`, percent-decoded.
    pub fn path_param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Splits and percent-decodes a query string (`+` is a space).
pub(crate) fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_component(k), decode_component(v))
        })
        .collect()
}

fn decode_component(s: &str) -> String {
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}
