//! The client's address: the peer's, or the one a trusted proxy forwarded.

use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use http::HeaderMap;

use crate::error::Error;

/// Proxies whose forwarding header is believed.
///
/// A request whose peer address is in one of these networks gets its client
/// address from [`TrustedProxies::header`]: the list is read from the right
/// (the hop nearest to us), skipping addresses that are themselves trusted
/// proxies; the first one that is not is the client. Requests from any other
/// peer use the peer address, whatever headers they carry: a client cannot
/// choose its own address to dodge rate limits or caps.
///
/// Default: no trusted proxies (the peer address is the client address).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TrustedProxies {
    networks: Vec<Cidr>,
    /// Which header the proxies write. Default [`ForwardedHeader::XForwardedFor`].
    pub header: ForwardedHeader,
}

/// The header a trusted proxy puts the client address in. Only this one is
/// read: a proxy that sets `X-Forwarded-For` passes a client's own
/// `Forwarded` header through untouched, so reading both would let the
/// client choose.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, HAProxy, AWS ELB).
    #[default]
    XForwardedFor,
    /// `Forwarded: for=client;proto=https, for=proxy1` (RFC 7239).
    Forwarded,
}

impl TrustedProxies {
    /// Trusts the given networks, in CIDR notation (`10.0.0.0/8`,
    /// `fd00::/8`) or as single addresses (`127.0.0.1`).
    pub fn new<I, S>(networks: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let networks = networks
            .into_iter()
            .map(|s| s.as_ref().parse())
            .collect::<Result<_, _>>()?;
        Ok(Self {
            networks,
            header: ForwardedHeader::default(),
        })
    }

    /// Reads `header` instead of `X-Forwarded-For`.
    pub fn with_header(mut self, header: ForwardedHeader) -> Self {
        self.header = header;
        self
    }

    /// Whether `ip` is in a trusted network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.networks.iter().any(|n| n.contains(ip))
    }

    /// The client address of a request from `peer` with `headers`.
    pub(crate) fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.contains(peer) {
            return peer;
        }
        let mut client = peer;
        let name = match self.header {
            ForwardedHeader::XForwardedFor => "x-forwarded-for",
            ForwardedHeader::Forwarded => "forwarded",
        };
        // Several header lines are one list, in order (RFC 9110 §5.3).
        let values: Vec<&str> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        for hop in values.iter().rev().flat_map(|v| v.rsplit(',')) {
            let parsed = match self.header {
                ForwardedHeader::XForwardedFor => parse_node(hop),
                ForwardedHeader::Forwarded => forwarded_for(hop).and_then(parse_node),
            };
            // Garbage before any untrusted hop: whoever wrote it is not a
            // proxy we trust; stop at the last address we could vouch for.
            let Some(ip) = parsed else { break };
            client = ip;
            if !self.contains(ip) {
                break;
            }
        }
        client
    }
}

/// The `for=` parameter of one `Forwarded` element.
fn forwarded_for(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        k.trim().eq_ignore_ascii_case("for").then_some(v.trim())
    })
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `::1`,
/// `[::1]:80`, possibly quoted.
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim().trim_matches('"');
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Some(rest) = node.strip_prefix('[') {
        let (ip, _) = rest.split_once(']')?;
        return ip.parse().ok().map(canonical);
    }
    let (ip, port) = node.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    ip.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`, what a dual-stack socket
/// reports) are the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// A network in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::Config(format!("{s:?} is not an IP address or CIDR network"));
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s.trim(), None),
        };
        let addr = canonical(addr.parse::<IpAddr>().map_err(|_| bad())?);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Self { addr, prefix })
    }
}

/// What rate limits and per-address caps count by: an IPv4 address, or the
/// `/64` an IPv6 address is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct IpKey(IpAddr);

impl IpKey {
    pub(crate) fn new(ip: IpAddr) -> Self {
        match canonical(ip) {
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & (u128::MAX << 64);
                Self(IpAddr::V6(Ipv6Addr::from(prefix)))
            }
            v4 => Self(v4),
        }
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(name: &'static str, values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(name, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs_match_their_networks_only() {
        let proxies = TrustedProxies::new(["10.0.0.0/8", "192.168.1.7", "fd00::/8"]).unwrap();
        assert!(proxies.contains(ip("10.255.0.1")));
        assert!(!proxies.contains(ip("11.0.0.1")));
        assert!(proxies.contains(ip("192.168.1.7")));
        assert!(!proxies.contains(ip("192.168.1.8")));
        assert!(proxies.contains(ip("fd12::1")));
        assert!(!proxies.contains(ip("fe80::1")));
        assert!(proxies.contains(ip("::ffff:10.1.2.3")));
        assert!(
            TrustedProxies::new(["0.0.0.0/0"])
                .unwrap()
                .contains(ip("8.8.8.8"))
        );
        for bad in ["10.0.0.0/33", "nonsense", "10.0.0/8", "::/129"] {
            assert!(TrustedProxies::new([bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_is_ignored_from_untrusted_peers() {
        let proxies = TrustedProxies::new(["10.0.0.0/8"]).unwrap();
        let h = headers("x-forwarded-for", &["1.2.3.4"]);
        assert_eq!(proxies.client_ip(ip("8.8.8.8"), &h), ip("8.8.8.8"));
        assert_eq!(
            TrustedProxies::default().client_ip(ip("10.0.0.1"), &h),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let proxies = TrustedProxies::new(["10.0.0.0/8"]).unwrap();
        // The client claims 6.6.6.6; the edge proxy appended the real peer.
        let h = headers("x-forwarded-for", &["6.6.6.6, 1.2.3.4", "10.0.0.2"]);
        assert_eq!(proxies.client_ip(ip("10.0.0.1"), &h), ip("1.2.3.4"));
        let h = headers("x-forwarded-for", &["[2001:db8::1]:443, 10.0.0.3:80"]);
        assert_eq!(proxies.client_ip(ip("10.0.0.1"), &h), ip("2001:db8::1"));
        // Only proxies in the chain: the leftmost is the best we know.
        let h = headers("x-forwarded-for", &["10.0.0.9, 10.0.0.8"]);
        assert_eq!(proxies.client_ip(ip("10.0.0.1"), &h), ip("10.0.0.9"));
        // Garbage stops the walk at the last trusted hop.
        let h = headers("x-forwarded-for", &["1.2.3.4, unknown, 10.0.0.8"]);
        assert_eq!(proxies.client_ip(ip("10.0.0.1"), &h), ip("10.0.0.8"));
        // No header: the proxy itself.
        assert_eq!(
            proxies.client_ip(ip("10.0.0.1"), &HeaderMap::new()),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn only_the_configured_header_is_read() {
        let xff = TrustedProxies::new(["10.0.0.0/8"]).unwrap();
        let fwd = xff.clone().with_header(ForwardedHeader::Forwarded);
        let mut h = headers(
            "forwarded",
            &["for=6.6.6.6", "for=\"[2001:db8::7]:4711\";proto=https"],
        );
        assert_eq!(xff.client_ip(ip("10.0.0.1"), &h), ip("10.0.0.1"));
        assert_eq!(fwd.client_ip(ip("10.0.0.1"), &h), ip("2001:db8::7"));
        h.append("x-forwarded-for", HeaderValue::from_static("5.5.5.5"));
        assert_eq!(xff.client_ip(ip("10.0.0.1"), &h), ip("5.5.5.5"));
        let h = headers("forwarded", &["proto=https;For=9.9.9.9;by=10.0.0.1"]);
        assert_eq!(fwd.client_ip(ip("10.0.0.1"), &h), ip("9.9.9.9"));
    }

    #[test]
    fn ipv6_keys_cover_a_slash_64() {
        assert_eq!(
            IpKey::new(ip("2001:db8:1:2::1")),
            IpKey::new(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            IpKey::new(ip("2001:db8:1:2::1")),
            IpKey::new(ip("2001:db8:1:3::1"))
        );
        assert_eq!(IpKey::new(ip("::ffff:1.2.3.4")), IpKey::new(ip("1.2.3.4")));
    }
}
