//! The opening handshake: the head scanner gives the same result however
//! the request is split, scans each byte a bounded number of times, and every
//! refusal carries the right HTTP status (431, 400, 426, 405).

use proptest::prelude::*;
use switchboard_ws::HandshakeError;
use switchboard_ws::handshake::{HandshakeLimits, HeadScanner, parse_request, validate_upgrade};

/// RFC 6455 §1.3 sample request.
const REQUEST: &str = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// What the server makes of the bytes received so far.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// No complete head yet.
    Incomplete,
    /// Refused, with this error.
    Refused(HandshakeError),
    /// Accepted: the head's length and the `Sec-WebSocket-Accept` value.
    Accepted { head_len: usize, accept: String },
}

/// Feeds `bytes` into a growing buffer in chunks of the given sizes (cycled;
/// 0 is taken as 1), scanning after each, then parses and validates the head.
fn handshake(bytes: &[u8], chunks: &[usize], limits: &HandshakeLimits) -> Outcome {
    let mut scanner = HeadScanner::default();
    let mut buf = Vec::new();
    let mut rest = bytes;
    let mut i = 0;
    while !rest.is_empty() {
        let size = chunks[i % chunks.len()].clamp(1, rest.len());
        i += 1;
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        buf.extend_from_slice(chunk);
        match scanner.scan(&buf, limits.max_header_bytes) {
            Ok(None) => {}
            Err(e) => return Outcome::Refused(e),
            Ok(Some(head_len)) => {
                return match parse_request(&buf[..head_len], limits)
                    .and_then(|parts| validate_upgrade(&parts))
                {
                    Ok(accept) => Outcome::Accepted { head_len, accept },
                    Err(e) => Outcome::Refused(e),
                };
            }
        }
    }
    Outcome::Incomplete
}

fn whole(bytes: &[u8]) -> Outcome {
    handshake(bytes, &[bytes.len().max(1)], &HandshakeLimits::default())
}

/// The sample request with `from` replaced by `to`.
fn request_with(from: &str, to: &str) -> String {
    assert!(REQUEST.contains(from), "{from}");
    REQUEST.replacen(from, to, 1)
}

/// Asserts the refusal and its status, fed whole and one byte at a time.
#[track_caller]
fn assert_refused(request: &str, error: &HandshakeError, status: u16) {
    let limits = HandshakeLimits::default();
    for outcome in [
        whole(request.as_bytes()),
        handshake(request.as_bytes(), &[1], &limits),
    ] {
        assert_eq!(outcome, Outcome::Refused(error.clone()), "{request:?}");
    }
    assert_eq!(error.status().as_u16(), status, "{error:?}");
}

#[test]
fn request_fed_one_byte_at_a_time_gives_the_same_result_as_whole() {
    let expected = Outcome::Accepted {
        head_len: REQUEST.len(),
        accept: ACCEPT.to_owned(),
    };
    let limits = HandshakeLimits::default();
    assert_eq!(whole(REQUEST.as_bytes()), expected);
    assert_eq!(handshake(REQUEST.as_bytes(), &[1], &limits), expected);
    for size in 2..=REQUEST.len() {
        assert_eq!(
            handshake(REQUEST.as_bytes(), &[size], &limits),
            expected,
            "chunks of {size}"
        );
    }
}

#[test]
fn bytes_after_the_head_are_not_part_of_it_however_they_arrive() {
    // A client may send its first frame right behind the request.
    let mut bytes = REQUEST.as_bytes().to_vec();
    bytes.extend_from_slice(&[0x81, 0x85, 1, 2, 3, 4, b'h', b'e', b'l', b'l', b'o']);
    let expected = Outcome::Accepted {
        head_len: REQUEST.len(),
        accept: ACCEPT.to_owned(),
    };
    assert_eq!(whole(&bytes), expected);
    assert_eq!(
        handshake(&bytes, &[1], &HandshakeLimits::default()),
        expected
    );
    assert_eq!(
        handshake(&bytes, &[7, 3], &HandshakeLimits::default()),
        expected
    );
}

#[test]
fn every_strict_prefix_of_the_head_is_incomplete() {
    let limits = HandshakeLimits::default();
    for end in 0..REQUEST.len() {
        assert_eq!(
            handshake(&REQUEST.as_bytes()[..end], &[1], &limits),
            Outcome::Incomplete
        );
        assert_eq!(
            handshake(&REQUEST.as_bytes()[..end], &[end.max(1)], &limits),
            Outcome::Incomplete
        );
    }
}

/// The scanner looks back at most 3 bytes before the bytes it has not seen:
/// a terminator written over bytes it already scanned is never seen, and
/// one that starts 1 to 3 bytes back (spanning two reads) is found. So one
/// call costs (new bytes + 3) window comparisons, and a head dribbled in N
/// one-byte reads costs at most 4N in total: linear, where re-scanning from
/// the start (CVE-2023-43669) costs N²/2.
#[test]
fn scan_is_linear_it_looks_back_at_most_three_bytes() {
    const N: usize = 1000;
    let max = HandshakeLimits::default().max_header_bytes;
    for back in 0..=6usize {
        let mut buf = vec![b'a'; N + 4];
        let mut scanner = HeadScanner::default();
        for n in 1..=N {
            assert_eq!(scanner.scan(&buf[..n], max), Ok(None));
        }
        // Write the terminator so that it starts `back` bytes before the end
        // of what was scanned, then hand over 4 new bytes.
        let start = N - back;
        buf[start..start + 4].copy_from_slice(b"\r\n\r\n");
        let found = scanner.scan(&buf, max);
        if back <= 3 {
            assert_eq!(found, Ok(Some(start + 4)), "terminator {back} bytes back");
        } else {
            assert_eq!(found, Ok(None), "terminator {back} bytes back");
        }
    }
}

#[test]
fn scan_does_not_rescan_from_the_start_on_each_read() {
    // A terminator planted at the very start after 16 KiB has been scanned
    // byte by byte is not found: no call went back to the start.
    let max = 64 * 1024;
    let mut buf = vec![b'a'; 16 * 1024];
    let mut scanner = HeadScanner::default();
    for n in 1..=buf.len() {
        assert_eq!(scanner.scan(&buf[..n], max), Ok(None));
    }
    buf[..4].copy_from_slice(b"\r\n\r\n");
    buf.push(b'a');
    assert_eq!(scanner.scan(&buf, max), Ok(None));
}

/// A valid request padded with an `X-Pad` header to exactly `len` bytes.
fn padded_request(len: usize) -> Vec<u8> {
    let base = REQUEST.len() + "X-Pad: \r\n".len();
    let pad = "p".repeat(len - base);
    let request = request_with("\r\n\r\n", &format!("\r\nX-Pad: {pad}\r\n\r\n"));
    assert_eq!(request.len(), len);
    request.into_bytes()
}

#[test]
fn sixteen_kib_head_fed_byte_by_byte_completes_with_one_scan_per_byte() {
    let limits = HandshakeLimits::default();
    let head = padded_request(16 * 1024);
    let mut scanner = HeadScanner::default();
    let mut calls = 0;
    let mut found = None;
    for n in 1..=head.len() {
        calls += 1;
        if let Some(end) = scanner.scan(&head[..n], limits.max_header_bytes).unwrap() {
            found = Some(end);
            break;
        }
    }
    assert_eq!(found, Some(head.len()));
    assert_eq!(calls, head.len());
    let expected = Outcome::Accepted {
        head_len: head.len(),
        accept: ACCEPT.to_owned(),
    };
    assert_eq!(handshake(&head, &[1], &limits), expected);
    assert_eq!(whole(&head), expected);
}

#[test]
fn head_over_the_byte_limit_is_431() {
    let limits = HandshakeLimits::default();
    // One byte over 16 KiB, whole and dribbled.
    let head = padded_request(16 * 1024 + 1);
    for chunks in [&[head.len()][..], &[1], &[1000, 3]] {
        assert_eq!(
            handshake(&head, chunks, &limits),
            Outcome::Refused(HandshakeError::HeaderTooLarge)
        );
    }
    // A head that never ends: refused once the limit is reached.
    let endless = vec![b'a'; 20_000];
    assert_eq!(
        handshake(&endless, &[1], &limits),
        Outcome::Refused(HandshakeError::HeaderTooLarge)
    );
    assert_eq!(
        handshake(&endless, &[1], &limits.with_max_header_bytes(100)),
        Outcome::Refused(HandshakeError::HeaderTooLarge)
    );
    assert_eq!(HandshakeError::HeaderTooLarge.status().as_u16(), 431);
}

#[test]
fn endless_head_is_refused_as_soon_as_the_limit_is_reached() {
    let max = 100;
    let mut scanner = HeadScanner::default();
    let buf = [b'a'; 200];
    for n in 1..max {
        assert_eq!(scanner.scan(&buf[..n], max), Ok(None));
    }
    assert_eq!(
        scanner.scan(&buf[..max], max),
        Err(HandshakeError::HeaderTooLarge)
    );
}

#[test]
fn head_exactly_at_the_byte_limit_is_accepted() {
    let limits = HandshakeLimits::default().with_max_header_bytes(1024);
    let head = padded_request(1024);
    for chunks in [&[head.len()][..], &[1]] {
        assert_eq!(
            handshake(&head, chunks, &limits),
            Outcome::Accepted {
                head_len: 1024,
                accept: ACCEPT.to_owned()
            }
        );
    }
    let over = padded_request(1025);
    assert_eq!(
        handshake(&over, &[1], &limits),
        Outcome::Refused(HandshakeError::HeaderTooLarge)
    );
}

/// The sample request (7 headers) with `extra` more `X-N: v` headers.
fn request_with_headers(extra: usize) -> String {
    let headers: String = (0..extra).map(|i| format!("X-{i}: v\r\n")).collect();
    request_with("\r\n\r\n", &format!("\r\n{headers}\r\n"))
}

#[test]
fn too_many_headers_is_431() {
    // The sample has 7 headers; the default limit is 100.
    let accepted = request_with_headers(93);
    assert!(matches!(
        whole(accepted.as_bytes()),
        Outcome::Accepted { .. }
    ));
    assert_refused(
        &request_with_headers(94),
        &HandshakeError::TooManyHeaders,
        431,
    );
    assert_refused(
        &request_with_headers(500),
        &HandshakeError::TooManyHeaders,
        431,
    );
    let limits = HandshakeLimits::default().with_max_headers(7);
    assert!(matches!(
        handshake(REQUEST.as_bytes(), &[1], &limits),
        Outcome::Accepted { .. }
    ));
    assert_eq!(
        handshake(request_with_headers(1).as_bytes(), &[1], &limits),
        Outcome::Refused(HandshakeError::TooManyHeaders)
    );
}

#[test]
fn missing_or_invalid_key_is_400() {
    let key_line = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let cases = [
        request_with(key_line, ""),
        request_with(key_line, "Sec-WebSocket-Key: c2hvcnQ=\r\n"), // 5 bytes
        request_with(key_line, "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAA=\r\n"), // 17 bytes
        request_with(key_line, "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA\r\n"), // 15 bytes
        request_with(key_line, "Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!==\r\n"),
        request_with(key_line, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ\r\n"), // no padding
        request_with(key_line, "Sec-WebSocket-Key: \r\n"),
    ];
    for request in &cases {
        assert_refused(request, &HandshakeError::InvalidKey, 400);
    }
}

#[test]
fn connection_without_upgrade_is_400() {
    for to in ["Connection: keep-alive\r\n", ""] {
        assert_refused(
            &request_with("Connection: Upgrade\r\n", to),
            &HandshakeError::MissingConnectionUpgrade,
            400,
        );
    }
}

#[test]
fn malformed_request_is_400() {
    for request in [
        REQUEST.replacen("HTTP/1.1", "HTTP/1.0", 1),
        "hello world\r\n\r\n".to_owned(),
        REQUEST.replacen("Host:", "Bad Header:", 1),
        REQUEST.replacen("GET /chat", "GET  /chat", 1),
    ] {
        assert_refused(&request, &HandshakeError::Malformed, 400);
    }
}

#[test]
fn wrong_version_is_426() {
    let version_line = "Sec-WebSocket-Version: 13\r\n";
    for to in [
        "Sec-WebSocket-Version: 8\r\n",
        "Sec-WebSocket-Version: 12\r\n",
        "Sec-WebSocket-Version: 130\r\n",
        "",
    ] {
        assert_refused(
            &request_with(version_line, to),
            &HandshakeError::UnsupportedVersion,
            426,
        );
    }
}

#[test]
fn request_without_upgrade_websocket_is_426() {
    for to in ["", "Upgrade: h2c\r\n", "Upgrade: websocket2\r\n"] {
        assert_refused(
            &request_with("Upgrade: websocket\r\n", to),
            &HandshakeError::UpgradeRequired,
            426,
        );
    }
    // A plain GET with none of the WebSocket headers.
    assert_refused(
        "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
        &HandshakeError::UpgradeRequired,
        426,
    );
}

#[test]
fn post_is_405() {
    for method in ["POST", "PUT", "DELETE", "HEAD"] {
        assert_refused(
            &request_with("GET /chat", &format!("{method} /chat")),
            &HandshakeError::MethodNotAllowed,
            405,
        );
    }
}

#[test]
fn header_names_and_tokens_are_case_insensitive() {
    let request = REQUEST
        .replacen("Upgrade: websocket", "upgrade: WebSocket", 1)
        .replacen("Connection: Upgrade", "CONNECTION: keep-alive, UPGRADE", 1)
        .replacen("Sec-WebSocket-Key", "sec-websocket-key", 1);
    assert_eq!(
        whole(request.as_bytes()),
        Outcome::Accepted {
            head_len: request.len(),
            accept: ACCEPT.to_owned()
        }
    );
}

/// The requests the chunking property runs over: accepted and refused ones.
fn sample_requests() -> Vec<Vec<u8>> {
    vec![
        REQUEST.as_bytes().to_vec(),
        request_with("13", "8").into_bytes(),
        request_with("GET", "POST").into_bytes(),
        request_with("Upgrade: websocket\r\n", "").into_bytes(),
        request_with("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ=").into_bytes(),
        request_with_headers(120).into_bytes(),
        padded_request(16 * 1024),
        padded_request(16 * 1024 + 1),
        REQUEST.as_bytes()[..REQUEST.len() - 1].to_vec(),
        b"\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\n\r\n\r\n\r\n".to_vec(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// Whatever the chunking, the outcome is the one of the whole request.
    #[test]
    fn any_chunking_gives_the_same_outcome(
        which in any::<prop::sample::Index>(),
        chunks in prop::collection::vec(1usize..64, 1..10),
        garbage in prop::collection::vec(any::<u8>(), 0..32),
    ) {
        let requests = sample_requests();
        let mut bytes = requests[which.index(requests.len())].clone();
        bytes.extend_from_slice(&garbage);
        let limits = HandshakeLimits::default();
        prop_assert_eq!(handshake(&bytes, &chunks, &limits), whole(&bytes));
    }
}
