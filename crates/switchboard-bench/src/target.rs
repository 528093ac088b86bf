//! Target URLs, restricted to loopback.
//!
//! The load generator must never send traffic anywhere but the local machine. Every URL the
//! tool accepts goes through [`parse_target`], which refuses any host that is not
//! `127.0.0.0/8`, `::1` or the literal name `localhost` (mapped to `127.0.0.1` without asking a
//! resolver, so `/etc/hosts` cannot redirect it). Host names other than `localhost` are refused
//! outright: resolving them could lead off the machine.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The URL scheme of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `ws://` (plain WebSocket).
    Ws,
    /// `http://` (plain HTTP, used by the HTTP publisher).
    Http,
}

/// A parsed, loopback-only target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The scheme.
    pub scheme: Scheme,
    /// Where to connect.
    pub addr: SocketAddr,
    /// The value for the `Host` header (host and port as written).
    pub host_header: String,
    /// Path and query, always starting with `/`.
    pub path: String,
}

impl Target {
    /// The URL again, normalised.
    pub fn url(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Ws => "ws",
            Scheme::Http => "http",
        };
        format!("{scheme}://{}{}", self.host_header, self.path)
    }

    /// The same target with another path.
    pub fn with_path(&self, path: &str) -> Target {
        let mut t = self.clone();
        t.path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        t
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url())
    }
}

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetError {
    /// Not `ws://` or `http://`.
    UnsupportedScheme(String),
    /// The URL could not be parsed.
    Malformed(String),
    /// The host is not a loopback address.
    NotLoopback(String),
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetError::UnsupportedScheme(s) => {
                write!(
                    f,
                    "unsupported scheme in {s:?} (only ws:// and http:// are allowed)"
                )
            }
            TargetError::Malformed(s) => write!(f, "malformed URL {s:?}"),
            TargetError::NotLoopback(h) => write!(
                f,
                "refusing non-loopback host {h:?}: only 127.0.0.0/8, ::1 and localhost are allowed"
            ),
        }
    }
}

impl std::error::Error for TargetError {}

/// Checks that `host` (as written in a URL, IPv6 without brackets) is loopback and returns the
/// address to use.
pub fn loopback_host(host: &str) -> Result<IpAddr, TargetError> {
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) if v4.is_loopback() => Ok(IpAddr::V4(v4)),
        Ok(IpAddr::V6(v6)) if v6 == Ipv6Addr::LOCALHOST => Ok(IpAddr::V6(v6)),
        _ => Err(TargetError::NotLoopback(host.to_owned())),
    }
}

/// Checks that a socket address is loopback (same rule as [`loopback_host`]).
pub fn check_loopback_addr(addr: SocketAddr) -> Result<SocketAddr, TargetError> {
    match addr.ip() {
        IpAddr::V4(v4) if v4.is_loopback() => Ok(addr),
        IpAddr::V6(v6) if v6 == Ipv6Addr::LOCALHOST => Ok(addr),
        ip => Err(TargetError::NotLoopback(ip.to_string())),
    }
}

/// Parses `ws://host[:port][/path]` or `http://host[:port][/path]`, refusing every host that is
/// not loopback.
pub fn parse_target(url: &str) -> Result<Target, TargetError> {
    let (scheme, rest) = if let Some(r) = strip_prefix_ci(url, "ws://") {
        (Scheme::Ws, r)
    } else if let Some(r) = strip_prefix_ci(url, "http://") {
        (Scheme::Http, r)
    } else {
        return Err(TargetError::UnsupportedScheme(url.to_owned()));
    };
    let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path_part) = rest.split_at(split);
    if authority.is_empty() || authority.contains('@') {
        return Err(TargetError::Malformed(url.to_owned()));
    }
    let (host, port) = if let Some(after) = authority.strip_prefix('[') {
        let Some(end) = after.find(']') else {
            return Err(TargetError::Malformed(url.to_owned()));
        };
        let host = &after[..end];
        let tail = &after[end + 1..];
        let port = if tail.is_empty() {
            None
        } else if let Some(p) = tail.strip_prefix(':') {
            Some(p)
        } else {
            return Err(TargetError::Malformed(url.to_owned()));
        };
        (host, port)
    } else {
        match authority.split_once(':') {
            Some((h, p)) => {
                if p.contains(':') {
                    // A bare IPv6 address without brackets is ambiguous.
                    return Err(TargetError::Malformed(url.to_owned()));
                }
                (h, Some(p))
            }
            None => (authority, None),
        }
    };
    let ip = loopback_host(host)?;
    let port: u16 = match port {
        None => 80,
        Some(p) => p
            .parse()
            .map_err(|_| TargetError::Malformed(url.to_owned()))?,
    };
    let path = match path_part.split('#').next().unwrap_or("") {
        "" => "/".to_owned(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_owned(),
    };
    Ok(Target {
        scheme,
        addr: SocketAddr::new(ip, port),
        host_header: authority.to_owned(),
        path,
    })
}

/// Parses a target and additionally requires the given scheme.
pub fn parse_target_with_scheme(url: &str, scheme: Scheme) -> Result<Target, TargetError> {
    let t = parse_target(url)?;
    if t.scheme != scheme {
        return Err(TargetError::UnsupportedScheme(url.to_owned()));
    }
    Ok(t)
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    if s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix) {
        Some(&s[prefix.len()..])
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_non_loopback() {
        for url in [
            "ws://10.0.0.1/ws",
            "ws://10.0.0.1:9000/ws",
            "ws://example.com/ws",
            "http://example.com:80/publish",
            "ws://192.168.1.1",
            "ws://[2001:db8::1]:80/",
            "ws://0.0.0.0:80/",
            "ws://[::]:80/",
            "ws://[::ffff:127.0.0.1]:80/",
            "ws://localhost.example.com/",
            "ws://127.0.0.1.nip.io/",
        ] {
            let err = parse_target(url).unwrap_err();
            assert!(
                matches!(err, TargetError::NotLoopback(_)),
                "{url} gave {err:?}"
            );
        }
    }

    #[test]
    fn accepts_loopback() {
        let t = parse_target("ws://127.0.0.5:9000/ws/echo").unwrap();
        assert_eq!(t.addr, "127.0.0.5:9000".parse().unwrap());
        assert_eq!(t.path, "/ws/echo");
        assert_eq!(t.host_header, "127.0.0.5:9000");

        let t = parse_target("ws://[::1]:8080/x?y=1").unwrap();
        assert_eq!(t.addr, "[::1]:8080".parse().unwrap());
        assert_eq!(t.path, "/x?y=1");

        let t = parse_target("ws://localhost:1234").unwrap();
        assert_eq!(t.addr, "127.0.0.1:1234".parse().unwrap());
        assert_eq!(t.path, "/");

        let t = parse_target("WS://LocalHost/").unwrap();
        assert_eq!(t.addr.port(), 80);

        let t = parse_target("http://127.0.0.1:8080/api/publish").unwrap();
        assert_eq!(t.scheme, Scheme::Http);
    }

    #[test]
    fn host_check_directly() {
        assert!(loopback_host("10.0.0.1").is_err());
        assert!(loopback_host("example.com").is_err());
        assert_eq!(
            loopback_host("127.0.0.5").unwrap(),
            "127.0.0.5".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            loopback_host("::1").unwrap(),
            "::1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            loopback_host("localhost").unwrap(),
            "127.0.0.1".parse::<IpAddr>().unwrap()
        );
        assert!(check_loopback_addr("10.0.0.1:80".parse().unwrap()).is_err());
        assert!(check_loopback_addr("127.9.9.9:80".parse().unwrap()).is_ok());
    }

    #[test]
    fn refuses_bad_schemes_and_shapes() {
        assert!(matches!(
            parse_target("wss://127.0.0.1/"),
            Err(TargetError::UnsupportedScheme(_))
        ));
        assert!(matches!(
            parse_target("https://127.0.0.1/"),
            Err(TargetError::UnsupportedScheme(_))
        ));
        assert!(parse_target("ws://user@127.0.0.1/").is_err());
        assert!(parse_target("ws://127.0.0.1:notaport/").is_err());
        assert!(parse_target("ws://::1/").is_err());
        assert!(parse_target("ws:///path").is_err());
        assert!(parse_target_with_scheme("ws://127.0.0.1/", Scheme::Http).is_err());
    }
}
