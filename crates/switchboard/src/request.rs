//! What a handler can know about the request that opened its connection.

use std::net::SocketAddr;

use http::{HeaderMap, Uri};

/// The upgrade request, shared by the handler and its socket.
#[derive(Debug)]
pub struct RequestInfo {
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) client_addr: SocketAddr,
    pub(crate) params: Vec<(String, String)>,
    pub(crate) route: String,
    /// The authenticated user, set by the security pipeline; the connection
    /// is registered in the hub under it.
    pub(crate) user: Option<crate::hub::UserId>,
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
