//! Every RFC 6455 framing rule the decoder enforces, each checked for the
//! exact `ProtocolError` and the close code it maps to.

mod common;

use common::{
    MASK, assert_error, client_frame, feed_bytewise, feed_frames, feed_whole, raw_frame,
    raw_header_64, server_frame,
};
use switchboard_ws::{
    CloseCode, CloseFrame, Decoder, Limits, Message, OpCode, ProtocolError, Role,
};

fn server() -> Decoder {
    Decoder::new(Role::Server, Limits::default())
}

fn client() -> Decoder {
    Decoder::new(Role::Client, Limits::default())
}

/// One rejected input: the role reading it, the bytes, the error and close code.
#[derive(Debug)]
struct Case {
    name: &'static str,
    role: Role,
    bytes: Vec<u8>,
    error: ProtocolError,
    code: u16,
}

/// Runs each case whole and byte by byte: both must give exactly the error.
#[track_caller]
fn check_cases(cases: &[Case]) {
    for case in cases {
        for (how, outcome) in [
            (
                "whole",
                feed_whole(&mut Decoder::new(case.role, Limits::default()), &case.bytes),
            ),
            (
                "bytewise",
                feed_bytewise(&mut Decoder::new(case.role, Limits::default()), &case.bytes),
            ),
        ] {
            assert!(
                outcome.messages.is_empty(),
                "{} ({how}): unexpected messages {:?}",
                case.name,
                outcome.messages
            );
            assert_eq!(
                outcome.error.as_ref(),
                Some(&case.error),
                "{} ({how})",
                case.name
            );
            assert_error(outcome.error.as_ref(), &case.error, case.code);
        }
    }
}

#[test]
fn unmasked_client_frames_close_with_1002() {
    let cases: Vec<Case> = [OpCode::Text, OpCode::Binary, OpCode::Ping, OpCode::Close]
        .into_iter()
        .map(|op| Case {
            name: "unmasked client frame",
            role: Role::Server,
            bytes: server_frame(true, op, b""),
            error: ProtocolError::UnmaskedFrame,
            code: 1002,
        })
        .chain([Case {
            name: "unmasked continuation inside a masked message",
            role: Role::Server,
            bytes: [
                client_frame(false, OpCode::Text, b"a"),
                server_frame(true, OpCode::Continuation, b"b"),
            ]
            .concat(),
            error: ProtocolError::UnmaskedFrame,
            code: 1002,
        }])
        .collect();
    check_cases(&cases);
}

#[test]
fn masked_server_frames_in_client_role_close_with_1002() {
    let cases: Vec<Case> = [OpCode::Text, OpCode::Binary, OpCode::Pong, OpCode::Close]
        .into_iter()
        .map(|op| Case {
            name: "masked server frame",
            role: Role::Client,
            bytes: client_frame(true, op, b"x"),
            error: ProtocolError::MaskedFrame,
            code: 1002,
        })
        .collect();
    check_cases(&cases);
}

#[test]
fn reserved_bits_close_with_1002() {
    // FIN + text, with RSV1 (0x40), RSV2 (0x20), RSV3 (0x10) and all three.
    let cases: Vec<Case> = [0x40u8, 0x20, 0x10, 0x70, 0x60, 0x30]
        .into_iter()
        .flat_map(|rsv| {
            [
                Case {
                    name: "rsv on a text frame",
                    role: Role::Server,
                    bytes: raw_frame(0x80 | rsv | 0x1, b"hi", Some(MASK)),
                    error: ProtocolError::ReservedBits,
                    code: 1002,
                },
                Case {
                    name: "rsv on a ping",
                    role: Role::Server,
                    bytes: raw_frame(0x80 | rsv | 0x9, b"", Some(MASK)),
                    error: ProtocolError::ReservedBits,
                    code: 1002,
                },
                Case {
                    name: "rsv on a server frame",
                    role: Role::Client,
                    bytes: raw_frame(0x80 | rsv | 0x2, b"hi", None),
                    error: ProtocolError::ReservedBits,
                    code: 1002,
                },
            ]
        })
        .collect();
    check_cases(&cases);
}

#[test]
fn reserved_opcodes_close_with_1002() {
    let cases: Vec<Case> = [0x3u8, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF]
        .into_iter()
        .flat_map(|op| {
            [
                Case {
                    name: "reserved opcode, final",
                    role: Role::Server,
                    bytes: raw_frame(0x80 | op, b"abc", Some(MASK)),
                    error: ProtocolError::ReservedOpcode(op),
                    code: 1002,
                },
                Case {
                    name: "reserved opcode, not final",
                    role: Role::Server,
                    bytes: raw_frame(op, b"", Some(MASK)),
                    error: ProtocolError::ReservedOpcode(op),
                    code: 1002,
                },
                Case {
                    name: "reserved opcode, client role",
                    role: Role::Client,
                    bytes: raw_frame(0x80 | op, b"abc", None),
                    error: ProtocolError::ReservedOpcode(op),
                    code: 1002,
                },
            ]
        })
        .collect();
    check_cases(&cases);
}

#[test]
fn control_frames_over_125_bytes_close_with_1002() {
    let mut cases = Vec::new();
    for op in [OpCode::Ping, OpCode::Pong, OpCode::Close] {
        for len in [126usize, 127, 1000, 65_536] {
            cases.push(Case {
                name: "control frame over 125 bytes",
                role: Role::Server,
                bytes: client_frame(true, op, &vec![b'a'; len]),
                error: ProtocolError::ControlFrameTooLarge,
                code: 1002,
            });
        }
    }
    check_cases(&cases);
}

#[test]
fn control_frame_over_125_bytes_is_rejected_on_the_first_two_bytes() {
    // 0x89 = FIN + ping, 0xFE = mask bit + 126 (16-bit length follows).
    let mut src = bytes::BytesMut::from(&[0x89u8, 0xFE][..]);
    let err = server().decode(&mut src).unwrap_err();
    assert_error(Some(&err), &ProtocolError::ControlFrameTooLarge, 1002);
}

#[test]
fn control_frames_of_exactly_125_bytes_are_accepted() {
    let payload = vec![b'p'; 125];
    let outcome = feed_whole(
        &mut server(),
        &[
            client_frame(true, OpCode::Ping, &payload),
            client_frame(true, OpCode::Pong, &payload),
        ]
        .concat(),
    );
    assert_eq!(outcome.error, None);
    assert_eq!(
        outcome.messages,
        vec![
            Message::Ping(payload.clone().into()),
            Message::Pong(payload.into())
        ]
    );
}

#[test]
fn fragmented_control_frames_close_with_1002() {
    let cases: Vec<Case> = [OpCode::Ping, OpCode::Pong, OpCode::Close]
        .into_iter()
        .flat_map(|op| {
            [
                Case {
                    name: "control frame without FIN",
                    role: Role::Server,
                    bytes: client_frame(false, op, b""),
                    error: ProtocolError::FragmentedControlFrame,
                    code: 1002,
                },
                Case {
                    name: "control frame without FIN inside a fragmented message",
                    role: Role::Server,
                    bytes: [
                        client_frame(false, OpCode::Binary, b"a"),
                        client_frame(false, op, b"x"),
                    ]
                    .concat(),
                    error: ProtocolError::FragmentedControlFrame,
                    code: 1002,
                },
            ]
        })
        .collect();
    check_cases(&cases);
}

#[test]
fn continuation_without_a_started_message_closes_with_1002() {
    let cases = vec![
        Case {
            name: "final continuation first",
            role: Role::Server,
            bytes: client_frame(true, OpCode::Continuation, b"abc"),
            error: ProtocolError::UnexpectedContinuation,
            code: 1002,
        },
        Case {
            name: "non-final continuation first",
            role: Role::Server,
            bytes: client_frame(false, OpCode::Continuation, b""),
            error: ProtocolError::UnexpectedContinuation,
            code: 1002,
        },
        Case {
            name: "continuation in client role",
            role: Role::Client,
            bytes: server_frame(true, OpCode::Continuation, b"x"),
            error: ProtocolError::UnexpectedContinuation,
            code: 1002,
        },
    ];
    check_cases(&cases);
}

#[test]
fn continuation_after_a_completed_message_closes_with_1002() {
    for first_fin in [true, false] {
        // Either a single-frame message, or a fragmented one that completes.
        let mut frames = vec![client_frame(
            first_fin,
            OpCode::Text,
            if first_fin { b"done" } else { b"do" },
        )];
        if !first_fin {
            frames.push(client_frame(true, OpCode::Continuation, b"ne"));
        }
        frames.push(client_frame(true, OpCode::Continuation, b"more"));
        let (outcome, at) = feed_frames(&mut server(), &frames);
        assert_eq!(at, Some(frames.len() - 1));
        assert_eq!(outcome.messages, vec![Message::Text("done".into())]);
        assert_error(
            outcome.error.as_ref(),
            &ProtocolError::UnexpectedContinuation,
            1002,
        );
    }
}

#[test]
fn new_data_frame_while_a_fragmented_message_is_open_closes_with_1002() {
    for (first, second) in [
        (OpCode::Text, OpCode::Text),
        (OpCode::Text, OpCode::Binary),
        (OpCode::Binary, OpCode::Text),
        (OpCode::Binary, OpCode::Binary),
    ] {
        for second_fin in [true, false] {
            let frames = vec![
                client_frame(false, first, b"ab"),
                client_frame(false, OpCode::Continuation, b"cd"),
                client_frame(second_fin, second, b"ef"),
            ];
            let (outcome, at) = feed_frames(&mut server(), &frames);
            assert_eq!(at, Some(2), "{first:?} then {second:?}");
            assert!(outcome.messages.is_empty());
            assert_error(
                outcome.error.as_ref(),
                &ProtocolError::ExpectedContinuation,
                1002,
            );
        }
    }
}

#[test]
fn length_with_the_most_significant_bit_set_closes_with_1002() {
    let cases: Vec<Case> = [1u64 << 63, u64::MAX, (1 << 63) | 200]
        .into_iter()
        .flat_map(|len| {
            [
                Case {
                    name: "64-bit length with MSB set",
                    role: Role::Server,
                    bytes: raw_header_64(0x82, len, Some(MASK)),
                    error: ProtocolError::InvalidLength,
                    code: 1002,
                },
                Case {
                    name: "64-bit length with MSB set, client role",
                    role: Role::Client,
                    bytes: raw_header_64(0x81, len, None),
                    error: ProtocolError::InvalidLength,
                    code: 1002,
                },
            ]
        })
        .collect();
    check_cases(&cases);
}

#[test]
fn non_minimal_length_encodings_close_with_1002() {
    let mut sixteen = vec![0x82, 0x80 | 126, 0, 125];
    sixteen.extend_from_slice(&MASK);
    let cases = vec![
        Case {
            name: "16-bit length under 126",
            role: Role::Server,
            bytes: sixteen,
            error: ProtocolError::InvalidLength,
            code: 1002,
        },
        Case {
            name: "64-bit length under 65536",
            role: Role::Server,
            bytes: raw_header_64(0x82, 65_535, Some(MASK)),
            error: ProtocolError::InvalidLength,
            code: 1002,
        },
    ];
    check_cases(&cases);
}

#[test]
fn one_byte_close_payload_closes_with_1002() {
    let cases: Vec<Case> = [0x03u8, 0xE8, 0x00]
        .into_iter()
        .map(|byte| Case {
            name: "one-byte close payload",
            role: Role::Server,
            bytes: client_frame(true, OpCode::Close, &[byte]),
            error: ProtocolError::InvalidClosePayload,
            code: 1002,
        })
        .collect();
    check_cases(&cases);
}

#[test]
fn invalid_close_codes_close_with_1002() {
    let cases: Vec<Case> = [
        0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65_535,
    ]
    .into_iter()
    .flat_map(|code| {
        [
            Case {
                name: "invalid close code",
                role: Role::Server,
                bytes: client_frame(true, OpCode::Close, &code.to_be_bytes()),
                error: ProtocolError::InvalidCloseCode(code),
                code: 1002,
            },
            Case {
                name: "invalid close code with a reason",
                role: Role::Client,
                bytes: server_frame(
                    true,
                    OpCode::Close,
                    &[&code.to_be_bytes()[..], b"bye"].concat(),
                ),
                error: ProtocolError::InvalidCloseCode(code),
                code: 1002,
            },
        ]
    })
    .collect();
    check_cases(&cases);
}

#[test]
fn valid_close_codes_are_accepted_with_their_reason() {
    for code in [
        1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
        4000, 4999,
    ] {
        let payload = [&code.to_be_bytes()[..], "bye ✓".as_bytes()].concat();
        let outcome = feed_whole(&mut server(), &client_frame(true, OpCode::Close, &payload));
        assert_eq!(outcome.error, None, "code {code}");
        assert_eq!(
            outcome.messages,
            vec![Message::Close(Some(CloseFrame {
                code: CloseCode::from(code),
                reason: "bye ✓".to_owned(),
            }))],
            "code {code}"
        );
    }
}

#[test]
fn empty_close_payload_is_a_close_without_status() {
    let outcome = feed_whole(&mut server(), &client_frame(true, OpCode::Close, b""));
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.messages, vec![Message::Close(None)]);
}

#[test]
fn close_reason_that_is_not_utf8_closes_with_1007() {
    let cases: Vec<Case> = [
        &[0xFFu8][..],
        &[b'o', b'k', 0xC0, 0x80],
        &[0xED, 0xA0, 0x80],
        // A truncated code point: the close frame is complete, so it is final.
        &[b'x', 0xE2, 0x82],
    ]
    .into_iter()
    .map(|reason| Case {
        name: "close reason not UTF-8",
        role: Role::Server,
        bytes: client_frame(
            true,
            OpCode::Close,
            &[&1000u16.to_be_bytes()[..], reason].concat(),
        ),
        error: ProtocolError::InvalidUtf8,
        code: 1007,
    })
    .collect();
    check_cases(&cases);
}

#[test]
fn a_valid_frame_before_a_bad_one_is_still_delivered() {
    let bytes = [
        client_frame(true, OpCode::Text, b"first"),
        raw_frame(0x83, b"", Some(MASK)),
        client_frame(true, OpCode::Text, b"never"),
    ]
    .concat();
    let outcome = feed_whole(&mut server(), &bytes);
    assert_eq!(outcome.messages, vec![Message::Text("first".into())]);
    assert_error(
        outcome.error.as_ref(),
        &ProtocolError::ReservedOpcode(3),
        1002,
    );
}

#[test]
fn client_role_reads_unmasked_server_frames() {
    let outcome = feed_whole(
        &mut client(),
        &[
            server_frame(true, OpCode::Text, b"hello"),
            server_frame(true, OpCode::Ping, b"p"),
            server_frame(true, OpCode::Binary, &[0, 1, 2]),
        ]
        .concat(),
    );
    assert_eq!(outcome.error, None);
    assert_eq!(
        outcome.messages,
        vec![
            Message::Text("hello".into()),
            Message::Ping(b"p".as_slice().into()),
            Message::Binary(vec![0, 1, 2].into()),
        ]
    );
}
