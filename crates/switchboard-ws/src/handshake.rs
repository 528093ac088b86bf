//! The HTTP/1.1 opening handshake (RFC 6455 §4): reading a request head in
//! linear time under byte and header-count limits, validating the upgrade,
//! and writing the responses. No IO.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use sha1::{Digest, Sha1};

use crate::error::HandshakeError;

const WS_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Limits on the request head, against slowloris and header floods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HandshakeLimits {
    /// The largest request head (request line and headers). Default 16 KiB;
    /// exceeding it answers 431.
    pub max_header_bytes: usize,
    /// The most headers a request may carry. Default 100; exceeding it answers 431.
    pub max_headers: usize,
}

impl Default for HandshakeLimits {
    fn default() -> Self {
        Self {
            max_header_bytes: 16 * 1024,
            max_headers: 100,
        }
    }
}

impl HandshakeLimits {
    /// Sets the header byte limit.
    pub fn with_max_header_bytes(mut self, bytes: usize) -> Self {
        self.max_header_bytes = bytes;
        self
    }

    /// Sets the header count limit.
    pub fn with_max_headers(mut self, count: usize) -> Self {
        self.max_headers = count;
        self
    }
}

/// Finds the end of an HTTP head in a growing buffer.
///
/// Each byte is scanned once however the head is split across reads, so a
/// head dribbled one byte at a time costs linear time (the flaw behind
/// CVE-2023-43669 was re-parsing from the start on every read).
#[derive(Debug, Default, Clone)]
pub struct HeadScanner {
    scanned: usize,
}

impl HeadScanner {
    /// Returns the length of the head (through the blank line) once `buf`
    /// holds all of it, or `Ok(None)` when more bytes are needed.
    /// Fails with [`HandshakeError::HeaderTooLarge`] once `max` bytes hold no end.
    pub fn scan(&mut self, buf: &[u8], max: usize) -> Result<Option<usize>, HandshakeError> {
        let start = self.scanned.saturating_sub(3);
        if let Some(at) = buf[start..].windows(4).position(|w| w == b"\r\n\r\n") {
            let end = start + at + 4;
            return if end > max {
                Err(HandshakeError::HeaderTooLarge)
            } else {
                Ok(Some(end))
            };
        }
        self.scanned = buf.len();
        if buf.len() >= max {
            return Err(HandshakeError::HeaderTooLarge);
        }
        Ok(None)
    }
}

/// Parses a complete request head into [`http::request::Parts`].
pub fn parse_request(
    head: &[u8],
    limits: &HandshakeLimits,
) -> Result<http::request::Parts, HandshakeError> {
    parse_request_shared(&bytes::Bytes::copy_from_slice(head), limits)
}

/// Like [`parse_request`], but the header values are slices of `head`, not
/// copies: one allocation for the whole head instead of one per header.
pub fn parse_request_shared(
    head: &bytes::Bytes,
    limits: &HandshakeLimits,
) -> Result<http::request::Parts, HandshakeError> {
    let mut headers = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(&head[..]) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(HandshakeError::Malformed),
        Err(httparse::Error::TooManyHeaders) => return Err(HandshakeError::TooManyHeaders),
        Err(_) => return Err(HandshakeError::Malformed),
    }
    if request.version != Some(1) {
        return Err(HandshakeError::Malformed);
    }
    let method = Method::from_bytes(request.method.unwrap_or_default().as_bytes())
        .map_err(|_| HandshakeError::Malformed)?;
    let uri: http::Uri = request
        .path
        .unwrap_or_default()
        .parse()
        .map_err(|_| HandshakeError::Malformed)?;
    let mut map = HeaderMap::with_capacity(request.headers.len());
    for h in request.headers.iter() {
        let name =
            HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| HandshakeError::Malformed)?;
        let value = HeaderValue::from_maybe_shared(head.slice_ref(h.value))
            .map_err(|_| HandshakeError::Malformed)?;
        map.append(name, value);
    }
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.method = method;
    parts.uri = uri;
    parts.version = http::Version::HTTP_11;
    parts.headers = map;
    Ok(parts)
}

/// The comma-separated tokens of every value of header `name`, trimmed.
pub fn header_tokens<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Whether the request asks for a WebSocket upgrade at all (`Upgrade: websocket`).
/// A request that does not is a plain HTTP request: answer 426 on a WebSocket route.
pub fn is_upgrade_request(headers: &HeaderMap) -> bool {
    header_tokens(headers, &header::UPGRADE).any(|t| t.eq_ignore_ascii_case("websocket"))
}

/// Validates an upgrade request and returns the `Sec-WebSocket-Accept` value.
pub fn validate_upgrade(parts: &http::request::Parts) -> Result<String, HandshakeError> {
    if !is_upgrade_request(&parts.headers) {
        return Err(HandshakeError::UpgradeRequired);
    }
    if parts.method != Method::GET {
        return Err(HandshakeError::MethodNotAllowed);
    }
    if !header_tokens(&parts.headers, &header::CONNECTION)
        .any(|t| t.eq_ignore_ascii_case("upgrade"))
    {
        return Err(HandshakeError::MissingConnectionUpgrade);
    }
    let version = parts
        .headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes);
    if version != Some(b"13") {
        return Err(HandshakeError::UnsupportedVersion);
    }
    let key = parts
        .headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or(HandshakeError::InvalidKey)?
        .as_bytes();
    match BASE64.decode(key) {
        Ok(raw) if raw.len() == 16 => Ok(accept_key(key)),
        _ => Err(HandshakeError::InvalidKey),
    }
}

/// The subprotocols a client offers, in its order of preference.
pub fn offered_protocols(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    header_tokens(headers, &header::SEC_WEBSOCKET_PROTOCOL)
}

/// Picks the first protocol the client offers that the server supports.
pub fn select_protocol<'s>(headers: &HeaderMap, supported: &'s [String]) -> Option<&'s str> {
    offered_protocols(headers)
        .find_map(|offer| supported.iter().find(|s| *s == offer).map(String::as_str))
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`.
pub fn accept_key(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(WS_GUID);
    BASE64.encode(sha.finalize())
}

/// The `101 Switching Protocols` response.
pub fn switching_protocols(
    accept: &str,
    protocol: Option<&str>,
    extensions: Option<&str>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(160);
    out.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ",
    );
    out.extend_from_slice(accept.as_bytes());
    out.extend_from_slice(b"\r\n");
    if let Some(protocol) = protocol {
        out.extend_from_slice(b"Sec-WebSocket-Protocol: ");
        out.extend_from_slice(protocol.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if let Some(extensions) = extensions {
        out.extend_from_slice(b"Sec-WebSocket-Extensions: ");
        out.extend_from_slice(extensions.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// A plain-text HTTP error response that closes the connection; `reason` is the body.
pub fn error_response(
    status: StatusCode,
    reason: &str,
    headers: &[(HeaderName, HeaderValue)],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + reason.len());
    out.extend_from_slice(
        format!(
            "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            reason.len()
        )
        .as_bytes(),
    );
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(reason.as_bytes());
    out
}

/// A `Sec-WebSocket-Key` made from 16 random bytes the caller supplies.
pub fn client_key(nonce: [u8; 16]) -> String {
    BASE64.encode(nonce)
}

/// A client's upgrade request for `path_and_query` on `host`.
pub fn client_request(host: &str, path_and_query: &str, key: &str, headers: &HeaderMap) -> Vec<u8> {
    let mut out = format!(
        "GET {path_and_query} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n"
    )
    .into_bytes();
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Parses a complete response head.
pub fn parse_response(
    head: &[u8],
    limits: &HandshakeLimits,
) -> Result<http::response::Parts, HandshakeError> {
    let mut headers = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(HandshakeError::Malformed),
        Err(httparse::Error::TooManyHeaders) => return Err(HandshakeError::TooManyHeaders),
        Err(_) => return Err(HandshakeError::Malformed),
    }
    let status =
        StatusCode::from_u16(response.code.unwrap_or(0)).map_err(|_| HandshakeError::Malformed)?;
    let mut map = HeaderMap::with_capacity(response.headers.len());
    for h in response.headers.iter() {
        let name =
            HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| HandshakeError::Malformed)?;
        let value = HeaderValue::from_bytes(h.value).map_err(|_| HandshakeError::Malformed)?;
        map.append(name, value);
    }
    let (mut parts, ()) = http::Response::new(()).into_parts();
    parts.status = status;
    parts.headers = map;
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUEST: &[u8] = b"GET /chat?x=1 HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n";

    #[test]
    fn rfc_sample_key_gives_rfc_sample_accept() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn byte_at_a_time_and_whole_give_the_same_head() {
        let limits = HandshakeLimits::default();
        let mut whole = HeadScanner::default();
        assert_eq!(
            whole.scan(REQUEST, limits.max_header_bytes),
            Ok(Some(REQUEST.len()))
        );
        let mut dribble = HeadScanner::default();
        for n in 1..REQUEST.len() {
            assert_eq!(
                dribble.scan(&REQUEST[..n], limits.max_header_bytes),
                Ok(None)
            );
        }
        assert_eq!(
            dribble.scan(REQUEST, limits.max_header_bytes),
            Ok(Some(REQUEST.len()))
        );
        let parts = parse_request(REQUEST, &limits).unwrap();
        assert_eq!(parts.uri.path(), "/chat");
        assert_eq!(
            validate_upgrade(&parts).unwrap(),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn protocol_selection_follows_the_client_order() {
        let parts = parse_request(REQUEST, &HandshakeLimits::default()).unwrap();
        let supported = vec!["superchat".to_owned(), "chat".to_owned()];
        assert_eq!(select_protocol(&parts.headers, &supported), Some("chat"));
        assert_eq!(select_protocol(&parts.headers, &["mqtt".to_owned()]), None);
    }

    #[test]
    fn oversized_head_is_431() {
        let mut scanner = HeadScanner::default();
        let big = vec![b'a'; 200];
        assert_eq!(scanner.scan(&big, 100), Err(HandshakeError::HeaderTooLarge));
        assert_eq!(
            HandshakeError::HeaderTooLarge.status(),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
    }

    #[test]
    fn header_count_flood_is_431() {
        let mut req = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..150 {
            req.extend_from_slice(format!("X-{i}: a\r\n").as_bytes());
        }
        req.extend_from_slice(b"\r\n");
        let err = parse_request(&req, &HandshakeLimits::default()).unwrap_err();
        assert_eq!(err, HandshakeError::TooManyHeaders);
        assert_eq!(err.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    }

    fn parts_with(edit: &str, replacement: &str) -> http::request::Parts {
        let text = std::str::from_utf8(REQUEST)
            .unwrap()
            .replace(edit, replacement);
        parse_request(text.as_bytes(), &HandshakeLimits::default()).unwrap()
    }

    #[test]
    fn bad_upgrades_get_the_right_status() {
        let cases = [
            (
                "Sec-WebSocket-Version: 13",
                "Sec-WebSocket-Version: 8",
                StatusCode::UPGRADE_REQUIRED,
            ),
            (
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
                "",
                StatusCode::BAD_REQUEST,
            ),
            (
                "dGhlIHNhbXBsZSBub25jZQ==",
                "c2hvcnQ=",
                StatusCode::BAD_REQUEST,
            ),
            ("Upgrade: websocket\r\n", "", StatusCode::UPGRADE_REQUIRED),
            ("keep-alive, Upgrade", "keep-alive", StatusCode::BAD_REQUEST),
            ("GET /chat", "POST /chat", StatusCode::METHOD_NOT_ALLOWED),
        ];
        for (from, to, status) in cases {
            let err = validate_upgrade(&parts_with(from, to)).unwrap_err();
            assert_eq!(err.status(), status, "{from} -> {to}");
        }
    }
}
