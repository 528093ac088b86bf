//! Origin checks: the defence against cross-site WebSocket hijacking.
//!
//! A browser sends `Origin` with every WebSocket handshake and attaches the
//! user's cookies whatever page opened the socket, so a server that trusts
//! cookies must check where the page came from.

use std::str::FromStr;

use http::HeaderMap;

use crate::error::Error;

/// Which `Origin`s may open connections.
///
/// Default: same-origin only (the `Origin` host and port must equal the
/// `Host` header's), and requests without `Origin` (non-browser clients)
/// allowed. A rejected origin gets `403 Forbidden`, body `Origin not allowed`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OriginPolicy {
    allowed: Allowed,
    /// Accept requests that carry no `Origin` header. Default true: only
    /// browsers send it, and a browser always does. Set it to false when
    /// every legitimate client is a browser.
    pub allow_missing: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Allowed {
    SameOrigin,
    Any,
    List(Vec<OriginPattern>),
}

impl Default for OriginPolicy {
    fn default() -> Self {
        Self::same_origin()
    }
}

impl OriginPolicy {
    /// Only pages served from the host the client connects to (the default).
    pub fn same_origin() -> Self {
        Self {
            allowed: Allowed::SameOrigin,
            allow_missing: true,
        }
    }

    /// Any origin. Only for routes that take no ambient credentials (no
    /// cookies): any web page can open a socket to them in its visitors'
    /// browsers.
    pub fn any() -> Self {
        Self {
            allowed: Allowed::Any,
            allow_missing: true,
        }
    }

    /// The origins matching one of `patterns`: exact origins
    /// (`https://app.example.com`, `http://localhost:3000`), subdomain
    /// patterns (`https://*.example.com` matches `https://a.example.com`
    /// and `https://a.b.example.com`, not `https://example.com`), or `*`.
    /// Scheme, host and port are compared exactly (the port defaults from
    /// the scheme); there is no substring matching.
    pub fn allow_list<I, S>(patterns: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut list = Vec::new();
        for pattern in patterns {
            let pattern = pattern.as_ref().trim();
            if pattern == "*" {
                return Ok(Self::any());
            }
            list.push(pattern.parse()?);
        }
        Ok(Self {
            allowed: Allowed::List(list),
            allow_missing: true,
        })
    }

    /// Sets [`OriginPolicy::allow_missing`].
    pub fn with_missing_allowed(mut self, allow: bool) -> Self {
        self.allow_missing = allow;
        self
    }

    /// Whether a request with these headers passes: its one `Origin` is
    /// allowed (compared with `Host` for same-origin), or it has none and
    /// that is allowed. Several `Origin` headers never pass.
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        let mut origins = headers.get_all(http::header::ORIGIN).iter();
        let (Some(origin), None) = (origins.next(), origins.next()) else {
            // None at all, or several (no browser sends several).
            return headers.get(http::header::ORIGIN).is_none() && self.allow_missing;
        };
        if self.allowed == Allowed::Any {
            return true;
        }
        let Some(origin) = origin.to_str().ok().and_then(|o| Origin::parse(o).ok()) else {
            // `null` (sandboxed frames, file: pages) and anything unparsable.
            return false;
        };
        match &self.allowed {
            Allowed::Any => true,
            Allowed::List(patterns) => patterns.iter().any(|p| p.matches(&origin)),
            Allowed::SameOrigin => headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .and_then(|h| split_host_port(h).ok())
                .is_some_and(|(host, port)| {
                    host.eq_ignore_ascii_case(&origin.host)
                        && port.or(default_port(&origin.scheme)) == origin.port
                }),
        }
    }
}

/// A parsed origin: scheme, lowercase host, port (explicit or the scheme's).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl Origin {
    fn parse(s: &str) -> Result<Self, ()> {
        let (scheme, rest) = s.split_once("://").ok_or(())?;
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        {
            return Err(());
        }
        let scheme = scheme.to_ascii_lowercase();
        let (host, port) = split_host_port(rest)?;
        let port = port.or(default_port(&scheme));
        Ok(Self {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`; nothing else (no path, no userinfo).
fn split_host_port(s: &str) -> Result<(&str, Option<u16>), ()> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or(())?;
        v6.parse::<std::net::Ipv6Addr>().map_err(|_| ())?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or(())?),
        };
        (&s[..v6.len() + 2], port)
    } else {
        let (host, port) = match s.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (s, None),
        };
        let valid = |b: u8| b.is_ascii_alphanumeric() || b"-._".contains(&b);
        if host.is_empty() || !host.bytes().all(valid) {
            return Err(());
        }
        (host, port)
    };
    let port = port.map(|p| p.parse::<u16>().map_err(|_| ())).transpose()?;
    Ok((host, port))
}

/// One entry of an origin allow-list: an exact origin or a subdomain pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPattern {
    scheme: String,
    host: HostPattern,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Exact(String),
    /// `.example.com`: any host ending with it, with at least one label before.
    Subdomains(String),
}

impl OriginPattern {
    fn matches(&self, origin: &Origin) -> bool {
        if self.scheme != origin.scheme || self.port != origin.port {
            return false;
        }
        match &self.host {
            HostPattern::Exact(host) => *host == origin.host,
            HostPattern::Subdomains(suffix) => origin
                .host
                .strip_suffix(suffix.as_str())
                .is_some_and(|label| !label.is_empty() && !label.ends_with('.')),
        }
    }
}

impl FromStr for OriginPattern {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || {
            Error::Config(format!(
                "{s:?} is not an origin pattern (`https://host[:port]`, `https://*.domain`, or `*`)"
            ))
        };
        let trimmed = s.trim().trim_end_matches('/');
        let (scheme, rest) = trimmed.split_once("://").ok_or_else(bad)?;
        let (wildcard, rest) = match rest.strip_prefix("*.") {
            Some(domain) => (true, domain),
            None => (false, rest),
        };
        let origin = Origin::parse(&format!("{scheme}://{rest}")).map_err(|_| bad())?;
        let host = if wildcard {
            HostPattern::Subdomains(format!(".{}", origin.host))
        } else {
            HostPattern::Exact(origin.host)
        };
        Ok(Self {
            scheme: origin.scheme,
            host,
            port: origin.port,
        })
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn request(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(o) = origin {
            h.insert(http::header::ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        h
    }

    #[test]
    fn same_origin_compares_host_and_port() {
        let p = OriginPolicy::default();
        assert!(p.allows(&request(Some("https://app.example.com"), "app.example.com")));
        assert!(p.allows(&request(
            Some("https://APP.example.com"),
            "app.example.com:443"
        )));
        assert!(p.allows(&request(Some("http://localhost:8080"), "localhost:8080")));
        assert!(p.allows(&request(None, "app.example.com")));
        assert!(!p.allows(&request(Some("https://evil.example"), "app.example.com")));
        assert!(!p.allows(&request(Some("http://localhost:3000"), "localhost:8080")));
        assert!(!p.allows(&request(
            Some("https://app.example.com"),
            "app.example.com:8443"
        )));
        assert!(!p.allows(&request(Some("null"), "app.example.com")));
        assert!(!p.allows(&request(
            Some("https://app.example.com.evil"),
            "app.example.com"
        )));
        assert!(
            !p.with_missing_allowed(false)
                .allows(&request(None, "app.example.com"))
        );
    }

    #[test]
    fn allow_lists_match_exactly_and_anchor_wildcards() {
        let p = OriginPolicy::allow_list([
            "https://app.example.com",
            "https://*.example.org",
            "http://localhost:3000/",
        ])
        .unwrap();
        let ok = |o: &str| p.allows(&request(Some(o), "ws.example.net"));
        assert!(ok("https://app.example.com"));
        assert!(ok("https://app.example.com:443"));
        assert!(ok("https://a.example.org"));
        assert!(ok("https://a.b.example.org"));
        assert!(ok("http://localhost:3000"));
        assert!(!ok("http://app.example.com"));
        assert!(!ok("https://app.example.com:8443"));
        assert!(!ok("https://evil-app.example.com"));
        assert!(!ok("https://app.example.com.evil.net"));
        assert!(!ok("https://example.org"));
        assert!(!ok("https://evilexample.org"));
        assert!(!ok("https://.example.org"));
        assert!(!ok("http://localhost:3001"));
        assert!(!ok("https://user@app.example.com"));
        assert!(!ok("https://app.example.com/path"));
        assert!(!ok("null"));
    }

    #[test]
    fn any_allows_everything() {
        let p = OriginPolicy::allow_list(["*"]).unwrap();
        assert!(p.allows(&request(Some("https://anything.example"), "h")));
        assert!(p.allows(&request(Some("null"), "h")));
        assert!(p.allows(&request(None, "h")));
    }

    #[test]
    fn several_origin_headers_are_refused() {
        let mut h = request(Some("https://h"), "h");
        h.append(http::header::ORIGIN, HeaderValue::from_static("https://h"));
        assert!(!OriginPolicy::default().allows(&h));
    }

    #[test]
    fn bad_patterns_are_errors() {
        for bad in [
            "example.com",
            "https://",
            "https://*",
            "https://a.*.com",
            "https://x/y",
        ] {
            assert!(OriginPolicy::allow_list([bad]).is_err(), "{bad}");
        }
        assert!(OriginPolicy::allow_list(["https://[::1]:8080"]).is_ok());
    }
}
