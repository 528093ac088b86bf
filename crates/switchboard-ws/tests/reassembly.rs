//! Reassembly: control frames interleaved in a fragmented message come out in
//! order and the message still completes; partial input (one byte at a time,
//! or any chunking) gives exactly the messages the whole input gives.

mod common;

use common::{
    client_frame, feed_bytewise, feed_chunked, feed_frames, feed_whole, frame, server_frame,
};
use switchboard_ws::{CloseCode, CloseFrame, Decoder, Limits, Message, OpCode, Role};

fn server() -> Decoder {
    Decoder::new(Role::Server, Limits::default())
}

#[test]
fn control_frames_inside_a_fragmented_message_come_out_in_order_and_the_message_completes() {
    let frames = vec![
        client_frame(false, OpCode::Text, b"Hel"),
        client_frame(true, OpCode::Ping, b"p1"),
        client_frame(false, OpCode::Continuation, b"lo, "),
        client_frame(true, OpCode::Pong, b"p2"),
        client_frame(true, OpCode::Ping, b""),
        client_frame(false, OpCode::Continuation, b""),
        client_frame(true, OpCode::Continuation, b"world"),
        client_frame(true, OpCode::Close, &[0x03, 0xE8]),
    ];
    let expected = vec![
        Message::Ping(b"p1".as_slice().into()),
        Message::Pong(b"p2".as_slice().into()),
        Message::Ping(b"".as_slice().into()),
        Message::Text("Hello, world".into()),
        Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: String::new(),
        })),
    ];
    let (outcome, at) = feed_frames(&mut server(), &frames);
    assert_eq!(at, None);
    assert_eq!(outcome.messages, expected);
    let all = frames.concat();
    assert_eq!(feed_whole(&mut server(), &all).messages, expected);
    assert_eq!(feed_bytewise(&mut server(), &all).messages, expected);
}

#[test]
fn each_control_frame_is_returned_as_soon_as_it_is_complete() {
    let mut decoder = server();
    let mut src = bytes::BytesMut::new();
    src.extend_from_slice(&client_frame(false, OpCode::Binary, b"ab"));
    assert_eq!(decoder.decode(&mut src), Ok(None));
    src.extend_from_slice(&client_frame(true, OpCode::Ping, b"now"));
    assert_eq!(
        decoder.decode(&mut src),
        Ok(Some(Message::Ping(b"now".as_slice().into())))
    );
    assert_eq!(decoder.decode(&mut src), Ok(None));
    src.extend_from_slice(&client_frame(true, OpCode::Continuation, b"cd"));
    assert_eq!(
        decoder.decode(&mut src),
        Ok(Some(Message::Binary(b"abcd".as_slice().into())))
    );
    assert!(src.is_empty());
}

#[test]
fn close_frame_inside_a_fragmented_message_is_returned_at_once() {
    let frames = vec![
        client_frame(false, OpCode::Text, b"half"),
        client_frame(true, OpCode::Close, &[0x03, 0xE9, b'b', b'y', b'e']),
    ];
    let (outcome, at) = feed_frames(&mut server(), &frames);
    assert_eq!(at, None);
    assert_eq!(
        outcome.messages,
        vec![Message::Close(Some(CloseFrame {
            code: CloseCode::Away,
            reason: "bye".to_owned(),
        }))]
    );
}

/// A stream that uses every length form, fragmentation, interleaved control
/// frames and several masks.
fn mixed_stream(mask: impl Fn(usize) -> Option<[u8; 4]>) -> (Vec<u8>, Vec<Message>) {
    let big: Vec<u8> = (0..70_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let medium = "é€😀".repeat(40);
    let frames = [
        frame(true, OpCode::Text, b"hello", mask(0)),
        frame(true, OpCode::Binary, &big, mask(1)),
        frame(false, OpCode::Text, &medium.as_bytes()[..7], mask(2)),
        frame(true, OpCode::Ping, b"keepalive", mask(3)),
        frame(
            false,
            OpCode::Continuation,
            &medium.as_bytes()[7..200],
            mask(4),
        ),
        frame(false, OpCode::Continuation, b"", mask(5)),
        frame(
            true,
            OpCode::Continuation,
            &medium.as_bytes()[200..],
            mask(6),
        ),
        frame(true, OpCode::Binary, b"", mask(7)),
        frame(false, OpCode::Binary, &big[..300], mask(8)),
        frame(true, OpCode::Continuation, &big[300..], mask(9)),
        frame(true, OpCode::Pong, b"", mask(10)),
        frame(true, OpCode::Close, &[0x0F, 0xA0, b'o', b'k'], mask(11)),
    ]
    .concat();
    let messages = vec![
        Message::Text("hello".into()),
        Message::Binary(big.clone().into()),
        Message::Ping(b"keepalive".as_slice().into()),
        Message::Text(medium.into()),
        Message::Binary(Vec::new().into()),
        Message::Binary(big.into()),
        Message::Pong(Vec::new().into()),
        Message::Close(Some(CloseFrame {
            code: CloseCode::Application(4000),
            reason: "ok".to_owned(),
        })),
    ];
    (frames, messages)
}

#[test]
fn byte_at_a_time_gives_the_same_messages_as_whole_input() {
    let (bytes, expected) = mixed_stream(|i| Some([i as u8, 0xA5, 0x5A, !(i as u8)]));
    let whole = feed_whole(&mut server(), &bytes);
    assert_eq!(whole.error, None);
    assert_eq!(whole.messages, expected);
    let bytewise = feed_bytewise(&mut server(), &bytes);
    assert_eq!(bytewise, whole);
}

#[test]
fn byte_at_a_time_gives_the_same_messages_as_whole_input_in_client_role() {
    let (bytes, expected) = mixed_stream(|_| None);
    let whole = feed_whole(&mut Decoder::new(Role::Client, Limits::default()), &bytes);
    assert_eq!(whole.error, None);
    assert_eq!(whole.messages, expected);
    let bytewise = feed_bytewise(&mut Decoder::new(Role::Client, Limits::default()), &bytes);
    assert_eq!(bytewise, whole);
}

#[test]
fn any_fixed_chunk_size_gives_the_same_messages_as_whole_input() {
    let (bytes, expected) = mixed_stream(|i| Some([0x11 * i as u8, 2, 3, 4]));
    for size in [2, 3, 5, 7, 13, 125, 126, 127, 4096, 65_536, 70_010] {
        let outcome = feed_chunked(&mut server(), &bytes, &[size]);
        assert_eq!(outcome.error, None, "chunk size {size}");
        assert_eq!(outcome.messages, expected, "chunk size {size}");
    }
    // Irregular sizes that cut headers at every offset.
    let outcome = feed_chunked(&mut server(), &bytes, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    assert_eq!(outcome.messages, expected);
}

#[test]
fn error_after_valid_messages_is_the_same_byte_at_a_time() {
    let bytes = [
        client_frame(true, OpCode::Text, b"one"),
        client_frame(false, OpCode::Binary, b"two"),
        client_frame(true, OpCode::Ping, b"p"),
        server_frame(true, OpCode::Continuation, b"unmasked"),
    ]
    .concat();
    let whole = feed_whole(&mut server(), &bytes);
    let bytewise = feed_bytewise(&mut server(), &bytes);
    assert_eq!(whole, bytewise);
    assert_eq!(
        whole.messages,
        vec![
            Message::Text("one".into()),
            Message::Ping(b"p".as_slice().into())
        ]
    );
    assert_eq!(
        whole.error,
        Some(switchboard_ws::ProtocolError::UnmaskedFrame)
    );
}

#[test]
fn a_decoder_without_a_fragmented_message_is_small() {
    // Part of every connection: the state of a fragmented message and the
    // inflater live in allocations of their own while they exist (48 bytes
    // measured; 200 with both inline).
    let size = std::mem::size_of::<Decoder>();
    assert!(size <= 56, "the decoder is {size} bytes");
}
