//! Arbitrary bytes and a chunking schedule into `HeadScanner`, then
//! `parse_request` and `validate_upgrade`.
//!
//! Input layout: the first byte `n` gives a schedule of `n % 16` chunk
//! sizes (the next bytes, each + 1, cycled); the second byte picks the limits
//! (default 16 KiB / 100 headers, or small: 512 bytes / 8 headers); the rest
//! is the request.
//!
//! Checks: never panics; the outcome (incomplete, refused with which error,
//! or accepted with which head length and accept key) is the same whatever
//! the chunking (scheduled, whole, one byte at a time); a head never exceeds
//! the byte limit; refusals carry a 4xx status.

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_ws::HandshakeError;
use switchboard_ws::handshake::{HandshakeLimits, HeadScanner, parse_request, validate_upgrade};

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Incomplete,
    Refused(HandshakeError),
    Accepted { head_len: usize, accept: String },
}

fn run(bytes: &[u8], schedule: &[u8], limits: &HandshakeLimits) -> Outcome {
    let mut scanner = HeadScanner::default();
    let mut buf = Vec::new();
    let mut rest = bytes;
    let mut i = 0;
    while !rest.is_empty() {
        let size = if schedule.is_empty() {
            rest.len()
        } else {
            usize::from(schedule[i % schedule.len()]) + 1
        };
        i += 1;
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        rest = tail;
        buf.extend_from_slice(chunk);
        match scanner.scan(&buf, limits.max_header_bytes) {
            Ok(None) => {}
            Err(e) => return Outcome::Refused(e),
            Ok(Some(head_len)) => {
                assert!(head_len <= buf.len() && head_len <= limits.max_header_bytes);
                assert!(buf[..head_len].ends_with(b"\r\n\r\n"));
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

fuzz_target!(|data: &[u8]| {
    let [n, which, rest @ ..] = data else {
        return;
    };
    let n = usize::from(n % 16).min(rest.len());
    let (schedule, request) = rest.split_at(n);
    let limits = if which & 1 == 0 {
        HandshakeLimits::default()
    } else {
        HandshakeLimits::default()
            .with_max_header_bytes(512)
            .with_max_headers(8)
    };
    let whole = run(request, &[], &limits);
    assert_eq!(run(request, schedule, &limits), whole);
    assert_eq!(run(request, &[0], &limits), whole);
    if let Outcome::Refused(e) = &whole {
        assert!(e.status().is_client_error(), "{e:?}");
    }
});
