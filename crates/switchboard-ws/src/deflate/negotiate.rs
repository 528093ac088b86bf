//! Reading `Sec-WebSocket-Extensions` offers and choosing the parameters.

use http::HeaderMap;
use http::header::SEC_WEBSOCKET_EXTENSIONS;

/// Server-side permessage-deflate settings for an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// Compression level, 0–9. Default 1: most of the size gain for a
    /// fraction of the CPU of higher levels.
    pub level: u32,
    /// Messages smaller than this go uncompressed. Default 256 bytes.
    pub min_size: usize,
    /// Largest window the server compresses with, 9–15. Default 15.
    pub server_max_window_bits: u8,
    /// Keep the compression context between messages (better ratio, one
    /// compressor of about 300 KB per connection, and no sharing of a
    /// broadcast's compressed bytes). Default false.
    pub server_context_takeover: bool,
    /// Let clients keep their context between messages (one decompressor of
    /// about 46 KB per connection for its life). Default false: the server
    /// answers with `client_no_context_takeover`.
    pub client_context_takeover: bool,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        Self {
            level: 1,
            min_size: 256,
            server_max_window_bits: 15,
            server_context_takeover: false,
            client_context_takeover: false,
        }
    }
}

impl DeflateConfig {
    /// Sets the compression level (clamped to 0–9).
    pub fn with_level(mut self, level: u32) -> Self {
        self.level = level.min(9);
        self
    }
    /// Sets the size below which messages are sent uncompressed.
    pub fn with_min_size(mut self, bytes: usize) -> Self {
        self.min_size = bytes;
        self
    }
    /// Allows server context takeover.
    pub fn with_server_context_takeover(mut self, on: bool) -> Self {
        self.server_context_takeover = on;
        self
    }
    /// Allows client context takeover.
    pub fn with_client_context_takeover(mut self, on: bool) -> Self {
        self.client_context_takeover = on;
        self
    }
    /// Sets the largest window the server compresses with (clamped to 9–15).
    pub fn with_server_max_window_bits(mut self, bits: u8) -> Self {
        self.server_max_window_bits = bits.clamp(9, 15);
        self
    }
}

/// What was agreed for one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server resets its compressor after every message.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after every message.
    pub client_no_context_takeover: bool,
    /// Window bits the server compresses with; `None` when the client asked
    /// for a window zlib cannot produce (8 bits): the server then sends
    /// every message uncompressed, which RFC 7692 allows.
    pub server_window_bits: Option<u8>,
    /// Compression level.
    pub level: u32,
    /// Messages smaller than this are sent uncompressed.
    pub min_size: usize,
    /// The `Sec-WebSocket-Extensions` response value.
    response: ResponseParams,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ResponseParams {
    server_max_window_bits: Option<u8>,
}

impl DeflateParams {
    /// Whether an outgoing message of `len` bytes should be compressed.
    pub fn compresses(&self, len: usize) -> bool {
        self.server_window_bits.is_some() && len >= self.min_size
    }

    /// The value of the `Sec-WebSocket-Extensions` response header.
    pub fn response_header(&self) -> String {
        let mut out = String::from("permessage-deflate");
        if self.server_no_context_takeover {
            out.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            out.push_str("; client_no_context_takeover");
        }
        if let Some(bits) = self.response.server_max_window_bits {
            out.push_str(&format!("; server_max_window_bits={bits}"));
        }
        out
    }
}

/// Picks the first acceptable permessage-deflate offer in `headers`, or
/// `None` (the connection then runs uncompressed). Offers with unknown or
/// repeated parameters, or invalid values, are declined as RFC 7692 §5 asks.
pub fn negotiate(headers: &HeaderMap, config: &DeflateConfig) -> Option<DeflateParams> {
    headers
        .get_all(SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|offer| accept_offer(offer, config))
}

#[derive(Default)]
struct Offer {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    client_max_window_bits: Option<Option<u8>>,
}

fn parse_bits(value: Option<&str>) -> Option<u8> {
    let value = value?.trim().trim_matches('"');
    if value.is_empty() || value.len() > 2 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let bits: u8 = value.parse().ok()?;
    (8..=15).contains(&bits).then_some(bits)
}

fn parse_offer(offer: &str) -> Option<Offer> {
    let mut parts = offer.split(';').map(str::trim);
    if parts.next()? != "permessage-deflate" {
        return None;
    }
    let mut parsed = Offer::default();
    let mut seen = [false; 4];
    for param in parts {
        let (name, value) = match param.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (param, None),
        };
        let slot = match name {
            "server_no_context_takeover" => 0,
            "client_no_context_takeover" => 1,
            "server_max_window_bits" => 2,
            "client_max_window_bits" => 3,
            _ => return None,
        };
        if std::mem::replace(&mut seen[slot], true) {
            return None;
        }
        match slot {
            0 | 1 if value.is_some() => return None,
            0 => parsed.server_no_context_takeover = true,
            1 => parsed.client_no_context_takeover = true,
            2 => parsed.server_max_window_bits = Some(parse_bits(value)?),
            _ => {
                parsed.client_max_window_bits = Some(match value {
                    None => None,
                    Some(_) => Some(parse_bits(value)?),
                });
            }
        }
    }
    Some(parsed)
}

fn accept_offer(offer: &str, config: &DeflateConfig) -> Option<DeflateParams> {
    let offer = parse_offer(offer)?;
    let server_no_context_takeover =
        offer.server_no_context_takeover || !config.server_context_takeover;
    let requested = offer.server_max_window_bits;
    let limit = requested.unwrap_or(15).min(config.server_max_window_bits);
    // zlib cannot deflate with an 8-bit window: accept, and send uncompressed.
    let server_window_bits = (limit >= 9).then_some(limit);
    let response_bits = match (requested, config.server_max_window_bits < 15) {
        (Some(bits), _) => Some(bits.min(config.server_max_window_bits.max(8))),
        (None, true) => Some(config.server_max_window_bits),
        (None, false) => None,
    };
    Some(DeflateParams {
        server_no_context_takeover,
        client_no_context_takeover: offer.client_no_context_takeover
            || !config.client_context_takeover,
        server_window_bits,
        level: config.level,
        min_size: config.min_size,
        response: ResponseParams {
            server_max_window_bits: response_bits,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn offer(value: &str) -> Option<DeflateParams> {
        let mut headers = HeaderMap::new();
        headers.insert(
            SEC_WEBSOCKET_EXTENSIONS,
            HeaderValue::from_str(value).unwrap(),
        );
        negotiate(&headers, &DeflateConfig::default())
    }

    #[test]
    fn browser_offer_is_accepted_without_context_takeover() {
        let params = offer("permessage-deflate; client_max_window_bits").unwrap();
        assert_eq!(
            params.response_header(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
        assert_eq!(params.server_window_bits, Some(15));
    }

    #[test]
    fn server_window_is_honoured_and_8_means_uncompressed() {
        let params = offer("permessage-deflate; server_max_window_bits=10").unwrap();
        assert_eq!(params.server_window_bits, Some(10));
        assert!(
            params
                .response_header()
                .ends_with("server_max_window_bits=10")
        );
        let params = offer("permessage-deflate; server_max_window_bits=8").unwrap();
        assert_eq!(params.server_window_bits, None);
        assert!(!params.compresses(10_000));
    }

    #[test]
    fn invalid_offers_are_declined_and_the_next_is_taken() {
        for bad in [
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; client_max_window_bits=abc",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; unknown_param",
            "x-webkit-deflate-frame",
        ] {
            assert_eq!(offer(bad), None, "{bad}");
        }
        let params = offer("permessage-deflate; server_max_window_bits=99, permessage-deflate; server_max_window_bits=12").unwrap();
        assert_eq!(params.server_window_bits, Some(12));
    }
}
