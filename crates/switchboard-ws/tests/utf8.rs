//! UTF-8 validation of text messages: in a single frame, across fragments
//! (the error comes on the fragment where the text breaks, not at FIN), and
//! code points split across fragment boundaries.

mod common;

use common::{assert_error, client_frame, feed_bytewise, feed_frames, feed_whole};
use switchboard_ws::{Decoder, Limits, Message, OpCode, ProtocolError, Role};

fn server() -> Decoder {
    Decoder::new(Role::Server, Limits::default())
}

/// Byte sequences that are not UTF-8 wherever they appear in a text.
const INVALID: &[(&str, &[u8])] = &[
    ("0xFF", &[0xFF]),
    ("0xFE", &[0xFE]),
    ("lone continuation byte", &[0x80]),
    ("overlong NUL", &[0xC0, 0x80]),
    ("overlong slash", &[0xE0, 0x80, 0xAF]),
    ("UTF-16 surrogate", &[0xED, 0xA0, 0x80]),
    ("above U+10FFFF", &[0xF4, 0x90, 0x80, 0x80]),
    ("five-byte form", &[0xF8, 0x88, 0x80, 0x80, 0x80]),
    ("lead byte then ASCII", &[0xE2, b'A']),
];

#[test]
fn invalid_utf8_in_a_single_text_frame_closes_with_1007() {
    for (name, bad) in INVALID {
        for text in [bad.to_vec(), [b"hello ", *bad, b" world"].concat()] {
            for outcome in [
                feed_whole(&mut server(), &client_frame(true, OpCode::Text, &text)),
                feed_bytewise(&mut server(), &client_frame(true, OpCode::Text, &text)),
            ] {
                assert!(outcome.messages.is_empty(), "{name}");
                assert_error(outcome.error.as_ref(), &ProtocolError::InvalidUtf8, 1007);
            }
        }
    }
}

#[test]
fn truncated_code_point_at_the_end_of_a_single_text_frame_closes_with_1007() {
    for text in [&b"ab\xE2\x82"[..], b"\xF0\x9F\x98", b"\xC3"] {
        let outcome = feed_whole(&mut server(), &client_frame(true, OpCode::Text, text));
        assert_error(outcome.error.as_ref(), &ProtocolError::InvalidUtf8, 1007);
    }
}

#[test]
fn invalid_utf8_is_rejected_on_the_first_fragment_where_it_appears() {
    for (name, bad) in INVALID {
        let frames = vec![
            client_frame(false, OpCode::Text, &[b"ok ", *bad].concat()),
            client_frame(false, OpCode::Continuation, b"still open"),
            client_frame(true, OpCode::Continuation, b"end"),
        ];
        let (outcome, at) = feed_frames(&mut server(), &frames);
        assert_eq!(at, Some(0), "{name}: error must come on the first fragment");
        assert_error(outcome.error.as_ref(), &ProtocolError::InvalidUtf8, 1007);
    }
}

#[test]
fn invalid_utf8_in_a_middle_fragment_is_rejected_there_not_at_fin() {
    for (name, bad) in INVALID {
        let frames = vec![
            client_frame(false, OpCode::Text, b"valid start "),
            client_frame(false, OpCode::Continuation, &[b"x", *bad, b"y"].concat()),
            client_frame(false, OpCode::Continuation, b"more"),
            client_frame(true, OpCode::Continuation, b"end"),
        ];
        let (outcome, at) = feed_frames(&mut server(), &frames);
        assert_eq!(
            at,
            Some(1),
            "{name}: error must come on the second fragment"
        );
        assert!(outcome.messages.is_empty());
        assert_error(outcome.error.as_ref(), &ProtocolError::InvalidUtf8, 1007);
    }
}

#[test]
fn code_point_cut_at_a_fragment_end_and_broken_by_the_next_fragment_fails_on_that_fragment() {
    // "€" is E2 82 AC; a fragment ends after E2 82 (a valid prefix), and the
    // next, non-final fragment goes on with ASCII instead of the last byte.
    let frames = vec![
        client_frame(false, OpCode::Text, b"price: \xE2\x82"),
        client_frame(false, OpCode::Continuation, b"A"),
        client_frame(true, OpCode::Continuation, b"end"),
    ];
    let (outcome, at) = feed_frames(&mut server(), &frames);
    assert_eq!(at, Some(1));
    assert_error(outcome.error.as_ref(), &ProtocolError::InvalidUtf8, 1007);
}

#[test]
fn prefix_that_can_never_complete_fails_on_its_own_fragment() {
    // Each of these ends a fragment with bytes that are incomplete but already
    // impossible: no continuation can make them valid.
    for tail in [
        &[0xF0u8, 0x80][..], // F0 needs 90..BF next
        &[0xED, 0xA0],       // surrogate range
        &[0xF4, 0x90],       // above U+10FFFF
        &[0xF5],             // never a lead byte
        &[0xE0, 0x9F],       // overlong three-byte form
    ] {
        let frames = vec![
            client_frame(false, OpCode::Text, &[b"ab", tail].concat()),
            client_frame(true, OpCode::Continuation, &[0x80, 0x80]),
        ];
        let (outcome, at) = feed_frames(&mut server(), &frames);
        assert_eq!(at, Some(0), "tail {tail:02x?}");
        assert_error(outcome.error.as_ref(), &ProtocolError::InvalidUtf8, 1007);
    }
}

#[test]
fn code_point_left_incomplete_at_fin_closes_with_1007() {
    let frames = vec![
        client_frame(false, OpCode::Text, b"ab\xE2\x82"),
        client_frame(true, OpCode::Continuation, b""),
    ];
    let (outcome, at) = feed_frames(&mut server(), &frames);
    assert_eq!(at, Some(1));
    assert_error(outcome.error.as_ref(), &ProtocolError::InvalidUtf8, 1007);
}

#[test]
fn code_point_split_across_two_fragments_is_accepted() {
    for text in ["€", "é", "😀", "a€b", "日本語"] {
        let bytes = text.as_bytes();
        for cut in 1..bytes.len() {
            let frames = vec![
                client_frame(false, OpCode::Text, &bytes[..cut]),
                client_frame(true, OpCode::Continuation, &bytes[cut..]),
            ];
            let (outcome, at) = feed_frames(&mut server(), &frames);
            assert_eq!(at, None, "{text} cut at {cut}");
            assert_eq!(outcome.messages, vec![Message::Text(text.into())]);
        }
    }
}

#[test]
fn four_byte_code_point_split_one_byte_per_fragment_is_accepted() {
    let bytes = "😀".as_bytes();
    let frames = vec![
        client_frame(false, OpCode::Text, &bytes[..1]),
        client_frame(false, OpCode::Continuation, &bytes[1..2]),
        client_frame(false, OpCode::Continuation, b""),
        client_frame(false, OpCode::Continuation, &bytes[2..3]),
        client_frame(true, OpCode::Continuation, &bytes[3..]),
    ];
    let (outcome, at) = feed_frames(&mut server(), &frames);
    assert_eq!(at, None);
    assert_eq!(outcome.messages, vec![Message::Text("😀".into())]);
}

#[test]
fn split_code_point_survives_control_frames_between_its_halves() {
    let bytes = "€".as_bytes();
    let frames = vec![
        client_frame(false, OpCode::Text, &bytes[..2]),
        client_frame(true, OpCode::Ping, b"\xFF not text"),
        client_frame(true, OpCode::Continuation, &bytes[2..]),
    ];
    let (outcome, at) = feed_frames(&mut server(), &frames);
    assert_eq!(at, None);
    assert_eq!(
        outcome.messages,
        vec![
            Message::Ping(b"\xFF not text".as_slice().into()),
            Message::Text("€".into())
        ]
    );
}

#[test]
fn binary_messages_are_not_checked_for_utf8() {
    let outcome = feed_whole(
        &mut server(),
        &[
            client_frame(false, OpCode::Binary, &[0xFF, 0xE2]),
            client_frame(true, OpCode::Continuation, &[0x80, 0xC0]),
        ]
        .concat(),
    );
    assert_eq!(outcome.error, None);
    assert_eq!(
        outcome.messages,
        vec![Message::Binary(vec![0xFF, 0xE2, 0x80, 0xC0].into())]
    );
}
