//! An arbitrary byte stream, fed in fuzzer-chosen chunks, into a server-side
//! `Decoder` with small limits (4 KiB frames, 16 KiB messages, 64 fragments).
//!
//! Input layout: the first byte `n` gives a schedule of `n % 32` chunk
//! sizes (the next bytes, each + 1, cycled); the rest is the stream. With
//! no schedule the stream is fed whole.
//!
//! Checks: never panics; before every chunk the buffer is handed over with
//! no spare room (so any spare room afterwards was reserved by the decoder),
//! and after every `decode` call it holds at most the bytes fed plus one
//! frame at the limit (or a 125-byte control frame) and its header; every error maps to 1002, 1007, 1008 or 1009; returned messages
//! respect the limits; and the outcome (messages, error) is the same as
//! feeding the stream whole, or one byte at a time.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use switchboard_ws::frame::MAX_HEADER_LEN;
use switchboard_ws::{Decoder, Limits, Message, ProtocolError, Role};

const MAX_FRAME: usize = 4 * 1024;
const MAX_MESSAGE: usize = 16 * 1024;
const MAX_FRAGMENTS: usize = 64;

fn limits() -> Limits {
    let mut limits = Limits::default()
        .with_max_frame_size(MAX_FRAME)
        .with_max_fragments(MAX_FRAGMENTS);
    limits.max_message_size = MAX_MESSAGE;
    limits
}

/// Feeds `stream` by `schedule`. With `tight`, each chunk is appended into a
/// fresh buffer with no spare room, and the decoder's reservations are
/// checked after every call.
fn run(stream: &[u8], schedule: &[u8], tight: bool) -> (Vec<Message>, Option<ProtocolError>) {
    let mut decoder = Decoder::new(Role::Server, limits());
    let largest_frame = MAX_FRAME.max(125) + MAX_HEADER_LEN;
    let mut src = BytesMut::new();
    let mut messages = Vec::new();
    let mut rest = stream;
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
        if tight {
            let mut fresh = BytesMut::with_capacity(src.len() + chunk.len());
            fresh.extend_from_slice(&src);
            fresh.extend_from_slice(chunk);
            src = fresh;
        } else {
            src.extend_from_slice(chunk);
        }
        let fed = src.len();
        loop {
            let result = decoder.decode(&mut src);
            if tight {
                assert!(
                    src.capacity() <= fed + largest_frame,
                    "capacity {} with {fed} bytes fed",
                    src.capacity()
                );
            }
            match result {
                Ok(Some(message)) => {
                    match &message {
                        Message::Text(t) => assert!(t.len() <= MAX_MESSAGE),
                        Message::Binary(b) => assert!(b.len() <= MAX_MESSAGE),
                        Message::Ping(b) | Message::Pong(b) => assert!(b.len() <= 125),
                        Message::Close(c) => {
                            if let Some(c) = c {
                                assert!(c.code.is_sendable());
                                assert!(c.reason.len() <= 123);
                            }
                        }
                    }
                    messages.push(message);
                }
                Ok(None) => break,
                Err(e) => {
                    let code = e.close_code().as_u16();
                    assert!([1002, 1007, 1008, 1009].contains(&code), "{e:?} -> {code}");
                    return (messages, Some(e));
                }
            }
        }
    }
    (messages, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 32).min(rest.len());
    let (schedule, stream) = rest.split_at(n);
    let chunked = run(stream, schedule, true);
    let whole = run(stream, &[], true);
    assert_eq!(chunked, whole, "chunking changed the outcome");
    let bytewise = run(stream, &[0], false);
    assert_eq!(bytewise, whole, "byte-at-a-time changed the outcome");
});
