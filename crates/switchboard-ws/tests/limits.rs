//! The decoder's size limits: frame size and message size (1009) are checked
//! on the frame header, before any payload is buffered; the fragment count
//! (1008) on each continuation header. Messages exactly at a limit pass.

mod common;

use bytes::BytesMut;
use common::{MASK, assert_error, client_frame, feed_frames, raw_header_64, server_frame};
use switchboard_ws::{Decoder, Limits, Message, OpCode, ProtocolError, Role};

const GIB: u64 = 1 << 30;
const SMALL: usize = 64 * 1024;

/// Feeds `header` one byte at a time into an empty buffer and returns the
/// decoder's answer once all of it is in, checking that every strict prefix
/// asked for more and that the buffer never grew past `SMALL`.
fn feed_header_bytewise(
    decoder: &mut Decoder,
    header: &[u8],
) -> (Result<Option<Message>, ProtocolError>, BytesMut) {
    let mut src = BytesMut::new();
    for (i, byte) in header.iter().enumerate() {
        src.extend_from_slice(&[*byte]);
        let result = decoder.decode(&mut src);
        assert!(
            src.capacity() < SMALL,
            "capacity {} after {} header bytes",
            src.capacity(),
            i + 1
        );
        if i + 1 < header.len() {
            assert_eq!(result, Ok(None), "prefix of {} bytes", i + 1);
        } else {
            return (result, src);
        }
    }
    unreachable!("header is not empty")
}

#[test]
fn oversized_frame_closes_with_1009_before_buffering() {
    // 2 bytes + 8 bytes of length + 4 bytes of mask announce 1 GiB.
    for opcode in [0x82u8, 0x81, 0x02, 0x01] {
        let header = raw_header_64(opcode, GIB, Some(MASK));
        assert_eq!(header.len(), 14);
        let mut decoder = Decoder::new(Role::Server, Limits::default());
        let (result, src) = feed_header_bytewise(&mut decoder, &header);
        let err = result.unwrap_err();
        assert_error(
            Some(&err),
            &ProtocolError::FrameTooLarge {
                len: GIB,
                max: 1 << 20,
            },
            1009,
        );
        assert!(src.capacity() < SMALL, "capacity {}", src.capacity());
    }
}

#[test]
fn oversized_frame_closes_with_1009_before_buffering_in_client_role() {
    let header = raw_header_64(0x82, GIB, None);
    assert_eq!(header.len(), 10);
    let mut decoder = Decoder::new(Role::Client, Limits::default());
    let (result, src) = feed_header_bytewise(&mut decoder, &header);
    assert_error(
        result.as_ref().err(),
        &ProtocolError::FrameTooLarge {
            len: GIB,
            max: 1 << 20,
        },
        1009,
    );
    assert!(src.capacity() < SMALL);
}

#[test]
fn oversized_continuation_closes_with_1009_before_buffering() {
    let mut decoder = Decoder::new(Role::Server, Limits::default());
    let mut src = BytesMut::from(&client_frame(false, OpCode::Text, b"start")[..]);
    assert_eq!(decoder.decode(&mut src), Ok(None));
    src.extend_from_slice(&raw_header_64(0x80, GIB, Some(MASK)));
    let err = decoder.decode(&mut src).unwrap_err();
    assert_error(
        Some(&err),
        &ProtocolError::FrameTooLarge {
            len: GIB,
            max: 1 << 20,
        },
        1009,
    );
    assert!(src.capacity() < SMALL);
}

#[test]
fn frame_one_byte_over_the_frame_limit_closes_with_1009() {
    let limits = Limits::default().with_max_message_size(1000);
    let mut decoder = Decoder::new(Role::Server, limits);
    let (outcome, at) = feed_frames(
        &mut decoder,
        &[client_frame(true, OpCode::Binary, &[7; 1001])],
    );
    assert_eq!(at, Some(0));
    assert_error(
        outcome.error.as_ref(),
        &ProtocolError::FrameTooLarge {
            len: 1001,
            max: 1000,
        },
        1009,
    );
}

#[test]
fn frame_exactly_at_the_frame_limit_is_accepted() {
    let limits = Limits::default().with_max_message_size(1000);
    for opcode in [OpCode::Binary, OpCode::Text] {
        let mut decoder = Decoder::new(Role::Server, limits);
        let payload = vec![b'z'; 1000];
        let (outcome, at) = feed_frames(&mut decoder, &[client_frame(true, opcode, &payload)]);
        assert_eq!(at, None);
        assert_eq!(outcome.messages.len(), 1);
        match &outcome.messages[0] {
            Message::Binary(b) => assert_eq!(&b[..], &payload[..]),
            Message::Text(t) => assert_eq!(t.as_bytes(), &payload[..]),
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn header_of_a_big_frame_reserves_one_step_not_the_whole_frame() {
    // The default limit is 1 MiB; announce exactly that.
    let len = 1usize << 20;
    let frame = client_frame(true, OpCode::Binary, &vec![1; len]);
    let header_len = frame.len() - len;
    let mut decoder = Decoder::new(Role::Server, Limits::default());
    let mut src = BytesMut::from(&frame[..header_len]);
    assert_eq!(decoder.decode(&mut src), Ok(None));
    let step = switchboard_ws::decoder::RESERVE_STEP;
    assert!(
        src.capacity() >= header_len + step && src.capacity() <= 2 * (header_len + step),
        "capacity {} after a header announcing {len} bytes (step {step})",
        src.capacity()
    );
    src.extend_from_slice(&frame[header_len..]);
    let Ok(Some(Message::Binary(payload))) = decoder.decode(&mut src) else {
        panic!("the frame should complete");
    };
    assert_eq!(payload.len(), len);
}

/// Frame limit 100, message limit 250.
fn message_limits() -> Limits {
    let mut limits = Limits::default().with_max_frame_size(100);
    limits.max_message_size = 250;
    limits
}

#[test]
fn fragmented_message_over_the_limit_closes_with_1009_at_the_crossing_fragment() {
    for opcode in [OpCode::Binary, OpCode::Text] {
        let frames = [
            client_frame(false, opcode, &[b'a'; 100]),
            client_frame(false, OpCode::Continuation, &[b'b'; 100]),
            client_frame(true, OpCode::Continuation, &[b'c'; 51]),
        ];
        let mut decoder = Decoder::new(Role::Server, message_limits());
        let mut src = BytesMut::new();
        src.extend_from_slice(&frames[0]);
        assert_eq!(decoder.decode(&mut src), Ok(None));
        src.extend_from_slice(&frames[1]);
        assert_eq!(decoder.decode(&mut src), Ok(None));
        // Only the header (2 bytes + mask) of the crossing fragment.
        src.extend_from_slice(&frames[2][..6]);
        let err = decoder.decode(&mut src).unwrap_err();
        assert_error(
            Some(&err),
            &ProtocolError::MessageTooLarge { len: 251, max: 250 },
            1009,
        );
    }
}

#[test]
fn fragmented_message_exactly_at_the_message_limit_is_accepted() {
    let frames = vec![
        client_frame(false, OpCode::Text, &[b'a'; 100]),
        client_frame(false, OpCode::Continuation, &[b'b'; 100]),
        client_frame(true, OpCode::Continuation, &[b'c'; 50]),
    ];
    let (outcome, at) = feed_frames(&mut Decoder::new(Role::Server, message_limits()), &frames);
    assert_eq!(at, None);
    let expected = [[b'a'; 100].as_slice(), &[b'b'; 100], &[b'c'; 50]].concat();
    assert_eq!(
        outcome.messages,
        vec![Message::Text(String::from_utf8(expected).unwrap().into())]
    );
}

#[test]
fn single_frame_over_the_message_limit_closes_with_1009() {
    let mut limits = Limits::default().with_max_frame_size(1000);
    limits.max_message_size = 250;
    let (outcome, at) = feed_frames(
        &mut Decoder::new(Role::Server, limits),
        &[client_frame(true, OpCode::Binary, &[0; 251])],
    );
    assert_eq!(at, Some(0));
    assert_error(
        outcome.error.as_ref(),
        &ProtocolError::MessageTooLarge { len: 251, max: 250 },
        1009,
    );
}

#[test]
fn control_frames_do_not_count_towards_the_message_limit() {
    let mut limits = Limits::default().with_max_frame_size(10);
    limits.max_message_size = 10;
    let frames = vec![
        client_frame(false, OpCode::Binary, &[1; 5]),
        client_frame(true, OpCode::Ping, &[2; 10]),
        client_frame(true, OpCode::Continuation, &[3; 5]),
    ];
    let (outcome, at) = feed_frames(&mut Decoder::new(Role::Server, limits), &frames);
    assert_eq!(at, None);
    assert_eq!(
        outcome.messages,
        vec![
            Message::Ping(vec![2; 10].into()),
            Message::Binary([[1u8; 5], [3; 5]].concat().into())
        ]
    );
}

/// A message of `count` fragments: a start frame and `count - 1` continuations,
/// the last one final. Payloads are `payload` each.
fn fragments(count: usize, payload: &[u8]) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            let opcode = if i == 0 {
                OpCode::Binary
            } else {
                OpCode::Continuation
            };
            client_frame(i + 1 == count, opcode, payload)
        })
        .collect()
}

#[test]
fn too_many_fragments_close_with_1008() {
    for payload in [&b"xy"[..], b""] {
        // Five fragments with a limit of four: the fifth header is refused.
        let frames = fragments(5, payload);
        let mut decoder = Decoder::new(Role::Server, Limits::default().with_max_fragments(4));
        let mut src = BytesMut::new();
        for frame in &frames[..4] {
            src.extend_from_slice(frame);
            assert_eq!(decoder.decode(&mut src), Ok(None));
        }
        src.extend_from_slice(&frames[4][..6]);
        let err = decoder.decode(&mut src).unwrap_err();
        assert_error(
            Some(&err),
            &ProtocolError::TooManyFragments { max: 4 },
            1008,
        );
    }
}

#[test]
fn empty_continuation_frames_count_towards_the_fragment_limit() {
    let mut frames = vec![client_frame(false, OpCode::Text, b"a")];
    frames.extend((0..200).map(|_| client_frame(false, OpCode::Continuation, b"")));
    let (outcome, at) = feed_frames(&mut Decoder::new(Role::Server, Limits::default()), &frames);
    // The default limit is 128 frames: the 129th (index 128) is refused.
    assert_eq!(at, Some(128));
    assert_error(
        outcome.error.as_ref(),
        &ProtocolError::TooManyFragments { max: 128 },
        1008,
    );
}

#[test]
fn message_of_exactly_max_fragments_is_accepted() {
    for payload in [&b"xy"[..], b""] {
        let mut decoder = Decoder::new(Role::Server, Limits::default().with_max_fragments(4));
        // Two messages in a row: the count starts again for each.
        let frames = [fragments(4, payload), fragments(4, payload)].concat();
        let (outcome, at) = feed_frames(&mut decoder, &frames);
        assert_eq!(at, None);
        let expected = Message::Binary(payload.repeat(4).into());
        assert_eq!(outcome.messages, vec![expected.clone(), expected]);
    }
}

#[test]
fn control_frames_do_not_count_towards_the_fragment_limit() {
    let mut frames = Vec::new();
    for (i, frame) in fragments(4, b"d").into_iter().enumerate() {
        frames.push(frame);
        if i < 3 {
            frames.push(client_frame(true, OpCode::Ping, b""));
            frames.push(client_frame(true, OpCode::Pong, b""));
        }
    }
    let mut decoder = Decoder::new(Role::Server, Limits::default().with_max_fragments(4));
    let (outcome, at) = feed_frames(&mut decoder, &frames);
    assert_eq!(at, None);
    assert_eq!(outcome.messages.len(), 7);
    assert_eq!(
        outcome.messages[6],
        Message::Binary(b"dddd".as_slice().into())
    );
}

#[test]
fn limits_apply_in_client_role_too() {
    let mut limits = Limits::default().with_max_frame_size(100);
    limits.max_message_size = 150;
    limits.max_fragments = 3;
    let cases = [
        (
            vec![server_frame(true, OpCode::Binary, &[0; 101])],
            ProtocolError::FrameTooLarge { len: 101, max: 100 },
            1009,
        ),
        (
            vec![
                server_frame(false, OpCode::Binary, &[0; 100]),
                server_frame(true, OpCode::Continuation, &[0; 51]),
            ],
            ProtocolError::MessageTooLarge { len: 151, max: 150 },
            1009,
        ),
        (
            vec![
                server_frame(false, OpCode::Binary, b""),
                server_frame(false, OpCode::Continuation, b""),
                server_frame(false, OpCode::Continuation, b""),
                server_frame(true, OpCode::Continuation, b""),
            ],
            ProtocolError::TooManyFragments { max: 3 },
            1008,
        ),
    ];
    for (frames, error, code) in cases {
        let (outcome, at) = feed_frames(&mut Decoder::new(Role::Client, limits), &frames);
        assert_eq!(at, Some(frames.len() - 1));
        assert_error(outcome.error.as_ref(), &error, code);
    }
}
