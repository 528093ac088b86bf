//! Host checks: the defence against DNS rebinding.
//!
//! A page on `evil.example` can make its name resolve to `127.0.0.1` (or any
//! address the victim's browser reaches) and then talk to the server as if
//! it were same-origin: the browser sends `Host: evil.example`. A server
//! that answers only to the names it is meant to have refuses it.

use std::net::IpAddr;

use crate::error::Error;

/// Which `Host` names a server answers to.
///
/// Default: any (the library leaves it to the application; the gateway
/// sets a list). A request whose `Host` is not allowed is refused with
/// `421 Misdirected Request` before anything else runs. The port is not
/// compared; IP literals (`127.0.0.1`, `[::1]`) are allowed when
/// [`HostPolicy::allow_ip_literals`] is set, since a rebinding page can
/// only send its own name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostPolicy {
    /// `None`: any host.
    allowed: Option<Vec<HostPattern>>,
    ip_literals: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    /// `example.com`, compared without case.
    Exact(String),
    /// `*.example.com`: any subdomain, not `example.com` itself.
    Subdomains(String),
}

impl HostPolicy {
    /// Any host (the default).
    pub fn any() -> Self {
        Self::default()
    }

    /// The hosts matching one of `patterns`: exact names (`ws.example.com`,
    /// `localhost`, `10.0.0.5`), subdomain patterns (`*.example.com`), or
    /// `*` for any. Names are compared without case and without the port.
    pub fn allow_list<I, S>(patterns: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut list = Vec::new();
        for pattern in patterns {
            let pattern = pattern.as_ref().trim().to_ascii_lowercase();
            if pattern == "*" {
                return Ok(Self::any());
            }
            let invalid = || Error::Config(format!("invalid host pattern {pattern:?}"));
            let name = pattern.strip_prefix("*.").unwrap_or(&pattern);
            let ok = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':' | '[' | ']'));
            if !ok {
                return Err(invalid());
            }
            list.push(match pattern.strip_prefix("*.") {
                Some(parent) => HostPattern::Subdomains(parent.to_owned()),
                None => HostPattern::Exact(strip_brackets(&pattern).to_owned()),
            });
        }
        Ok(Self {
            allowed: Some(list),
            ip_literals: false,
        })
    }

    /// Also allows any IP literal as the host (a client that connects by
    /// address, as on a server that listens on every address).
    pub fn allow_ip_literals(mut self, allow: bool) -> Self {
        self.ip_literals = allow;
        self
    }

    /// Whether any host passes.
    pub fn is_any(&self) -> bool {
        self.allowed.is_none()
    }

    /// Whether a request with this `Host` header value (or none) passes. A
    /// request without `Host` passes only when any host does.
    pub fn allows(&self, host: Option<&str>) -> bool {
        let Some(list) = &self.allowed else {
            return true;
        };
        let Some(name) = host.map(|h| host_name(h.trim())) else {
            return false;
        };
        if self.ip_literals && name.parse::<IpAddr>().is_ok() {
            return true;
        }
        list.iter().any(|pattern| match pattern {
            HostPattern::Exact(exact) => name.eq_ignore_ascii_case(exact),
            HostPattern::Subdomains(parent) => {
                name.len() > parent.len() + 1
                    && name[name.len() - parent.len()..].eq_ignore_ascii_case(parent)
                    && name.as_bytes()[name.len() - parent.len() - 1] == b'.'
            }
        })
    }
}

/// The name of a `Host` value: without the port, an IPv6 literal without
/// its brackets.
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

fn strip_brackets(name: &str) -> &str {
    name.strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_exactly_or_as_subdomains_without_port_or_case() {
        let p =
            HostPolicy::allow_list(["ws.example.com", "*.apps.example.com", "localhost", "[::1]"])
                .unwrap();
        for ok in [
            "ws.example.com",
            "WS.Example.com:8080",
            "a.apps.example.com",
            "a.b.apps.example.com:443",
            "localhost:8080",
            "[::1]:8080",
        ] {
            assert!(p.allows(Some(ok)), "{ok}");
        }
        for bad in [
            "evil.example",
            "apps.example.com",
            "xapps.example.com",
            "ws.example.com.evil.example",
            "127.0.0.1",
            "",
        ] {
            assert!(!p.allows(Some(bad)), "{bad}");
        }
        assert!(!p.allows(None));
        assert!(
            p.clone()
                .allow_ip_literals(true)
                .allows(Some("10.1.2.3:80"))
        );
        assert!(HostPolicy::any().allows(None));
        assert!(HostPolicy::allow_list(["*"]).unwrap().is_any());
        assert!(HostPolicy::allow_list(["a b"]).is_err());
    }
}
