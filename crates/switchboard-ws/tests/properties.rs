//! Property tests for the decoder and frame headers.
//!
//! Case counts are kept moderate so that the whole file runs in a few
//! seconds in a debug build.

mod common;

use bytes::BytesMut;
use common::{Outcome, drain, feed_chunked, frame};
use proptest::prelude::*;
use proptest::sample::Index;
use switchboard_ws::frame::MAX_HEADER_LEN;
use switchboard_ws::{Decoder, FrameHeader, Limits, Message, OpCode, ProtocolError, Role};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Sorted cut positions (possibly repeated, giving empty fragments) turned
/// into the fragments of `payload`. Always at least one fragment.
fn split_at_cuts<'a>(payload: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let mut positions: Vec<usize> = cuts.iter().map(|c| c.index(payload.len() + 1)).collect();
    positions.sort_unstable();
    let mut fragments = Vec::with_capacity(positions.len() + 1);
    let mut start = 0;
    for at in positions {
        fragments.push(&payload[start..at]);
        start = at;
    }
    fragments.push(&payload[start..]);
    fragments
}

/// The frames of one data message split into `fragments`, masked in turn
/// with `masks` (or unmasked in client role).
fn fragment_frames(
    opcode: OpCode,
    fragments: &[&[u8]],
    masks: &[[u8; 4]],
    role: Role,
) -> Vec<Vec<u8>> {
    let last = fragments.len() - 1;
    fragments
        .iter()
        .enumerate()
        .map(|(i, payload)| {
            let op = if i == 0 { opcode } else { OpCode::Continuation };
            let mask = match role {
                Role::Server => Some(masks[i % masks.len()]),
                Role::Client => None,
            };
            frame(i == last, op, payload, mask)
        })
        .collect()
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::Server), Just(Role::Client)]
}

/// A data message: text (any Unicode) or binary (any bytes).
fn data_message() -> impl Strategy<Value = (OpCode, Vec<u8>)> {
    prop_oneof![
        "\\PC{0,200}".prop_map(|s: String| (OpCode::Text, s.into_bytes())),
        prop::collection::vec(any::<u8>(), 0..1500).prop_map(|b| (OpCode::Binary, b)),
    ]
}

fn expected_message(opcode: OpCode, payload: &[u8]) -> Message {
    match opcode {
        OpCode::Text => Message::Text(String::from_utf8(payload.to_vec()).unwrap().into()),
        _ => Message::Binary(payload.to_vec().into()),
    }
}

proptest! {
    #![proptest_config(config(128))]

    /// Any message, split into any fragmentation (empty fragments and cuts
    /// inside code points included) with random masks and fed in random
    /// chunks, reassembles byte-identically.
    #[test]
    fn any_fragmentation_reassembles_byte_identically(
        (opcode, payload) in data_message(),
        cuts in prop::collection::vec(any::<Index>(), 0..12),
        masks in prop::collection::vec(any::<[u8; 4]>(), 1..13),
        chunks in prop::collection::vec(1usize..200, 1..8),
        role in role(),
    ) {
        let fragments = split_at_cuts(&payload, &cuts);
        let bytes = fragment_frames(opcode, &fragments, &masks, role).concat();
        let expected = Outcome { messages: vec![expected_message(opcode, &payload)], error: None };
        let whole = feed_chunked(&mut Decoder::new(role, Limits::default()), &bytes, &[bytes.len()]);
        prop_assert_eq!(&whole, &expected);
        let chunked = feed_chunked(&mut Decoder::new(role, Limits::default()), &bytes, &chunks);
        prop_assert_eq!(&chunked, &expected);
    }

    /// Pings and pongs interleaved anywhere inside a fragmented message are
    /// returned in order, before the message, which still completes intact.
    #[test]
    fn any_interleaving_of_ping_and_pong_inside_a_fragmented_message_is_accepted(
        (opcode, payload) in data_message(),
        cuts in prop::collection::vec(any::<Index>(), 1..10),
        masks in prop::collection::vec(any::<[u8; 4]>(), 1..13),
        controls in prop::collection::vec(
            (any::<bool>(), prop::collection::vec(any::<u8>(), 0..=125), any::<Index>()),
            0..10,
        ),
        chunks in prop::collection::vec(1usize..100, 1..8),
        role in role(),
    ) {
        let fragments = split_at_cuts(&payload, &cuts);
        let data = fragment_frames(opcode, &fragments, &masks, role);
        // Controls go after fragment `k`, for k before the final fragment.
        let mut after: Vec<Vec<(bool, &Vec<u8>)>> = vec![Vec::new(); data.len()];
        for (ping, body, at) in &controls {
            after[at.index(data.len() - 1)].push((*ping, body));
        }
        let mut bytes = Vec::new();
        let mut expected = Vec::new();
        for (i, frame_bytes) in data.iter().enumerate() {
            bytes.extend_from_slice(frame_bytes);
            for (j, (ping, body)) in after[i].iter().enumerate() {
                let op = if *ping { OpCode::Ping } else { OpCode::Pong };
                let mask = (role == Role::Server).then(|| masks[(i + j) % masks.len()]);
                bytes.extend_from_slice(&frame(true, op, body, mask));
                expected.push(if *ping {
                    Message::Ping(body.to_vec().into())
                } else {
                    Message::Pong(body.to_vec().into())
                });
            }
        }
        expected.push(expected_message(opcode, &payload));
        let expected = Outcome { messages: expected, error: None };
        let whole = feed_chunked(&mut Decoder::new(role, Limits::default()), &bytes, &[bytes.len()]);
        prop_assert_eq!(&whole, &expected);
        let chunked = feed_chunked(&mut Decoder::new(role, Limits::default()), &bytes, &chunks);
        prop_assert_eq!(&chunked, &expected);
    }
}

/// Any header the parser can accept: control frames are final and at most
/// 125 bytes, lengths stay below 2^63.
fn valid_header() -> impl Strategy<Value = FrameHeader> {
    let opcode = prop::sample::select(vec![
        OpCode::Continuation,
        OpCode::Text,
        OpCode::Binary,
        OpCode::Close,
        OpCode::Ping,
        OpCode::Pong,
    ]);
    let len = prop_oneof![0u64..126, 126u64..=65_535, 65_536u64..(1 << 63)];
    (
        opcode,
        any::<bool>(),
        any::<bool>(),
        any::<Option<[u8; 4]>>(),
        len,
    )
        .prop_map(|(opcode, fin, rsv1, mask, len)| FrameHeader {
            fin: fin || opcode.is_control(),
            rsv1,
            opcode,
            mask,
            payload_len: if opcode.is_control() { len % 126 } else { len },
        })
}

proptest! {
    #![proptest_config(config(512))]

    /// Encoding a header and parsing it back gives the same header, using
    /// exactly the encoded bytes; every strict prefix asks for more.
    #[test]
    fn frame_header_encode_then_parse_is_identity(
        header in valid_header(),
        trailer in prop::collection::vec(any::<u8>(), 0..8),
    ) {
        let encoded = header.encode();
        let bytes = [encoded.as_slice(), &trailer].concat();
        prop_assert_eq!(
            FrameHeader::parse(&bytes),
            Ok(Some((header, encoded.as_slice().len())))
        );
        for cut in 0..encoded.as_slice().len() {
            prop_assert_eq!(FrameHeader::parse(&encoded.as_slice()[..cut]), Ok(None));
        }
    }

    /// Whatever the bytes, a parsed header re-encodes to exactly the bytes it
    /// was parsed from (lengths are minimal, RSV2/RSV3 never pass).
    #[test]
    fn parsed_headers_re_encode_to_their_input(bytes in prop::collection::vec(any::<u8>(), 0..16)) {
        match FrameHeader::parse(&bytes) {
            Ok(Some((header, used))) => {
                prop_assert!(used <= bytes.len());
                let encoded = header.encode();
                prop_assert_eq!(encoded.as_slice(), &bytes[..used]);
            }
            Ok(None) => prop_assert!(bytes.len() < MAX_HEADER_LEN),
            Err(e) => prop_assert_eq!(e.close_code().as_u16(), 1002),
        }
    }
}

/// Sequences that make a text invalid when inserted at a character boundary.
const INVALID: &[&[u8]] = &[
    &[0xFF],
    &[0xFE],
    &[0x80],
    &[0xBF, 0x80],
    &[0xC0, 0x80],
    &[0xC1, 0xBF],
    &[0xE0, 0x80, 0x80],
    &[0xED, 0xA0, 0x80],
    &[0xED, 0xBF, 0xBF],
    &[0xF0, 0x80, 0x80, 0x80],
    &[0xF4, 0x90, 0x80, 0x80],
    &[0xF5, 0x80, 0x80, 0x80],
    &[0xF8, 0x88, 0x80, 0x80, 0x80],
    &[0xC3],
    &[0xE2, 0x82],
    &[0xF0, 0x9F, 0x98],
];

/// The index of the fragment on which a streaming validator must fail: the
/// first whose prefix holds an invalid sequence, or the last fragment if the
/// text only ends inside a code point. `None` if the text is valid.
fn breaking_fragment(fragments: &[&[u8]]) -> Option<usize> {
    let mut prefix = Vec::new();
    for (i, fragment) in fragments.iter().enumerate() {
        prefix.extend_from_slice(fragment);
        if let Err(e) = std::str::from_utf8(&prefix)
            && (e.error_len().is_some() || i + 1 == fragments.len())
        {
            return Some(i);
        }
    }
    None
}

/// Feeds the frames one at a time and returns the index of the frame on
/// which the decoder failed, with the error.
fn failing_frame(role: Role, frames: &[Vec<u8>]) -> Option<(usize, ProtocolError)> {
    let mut decoder = Decoder::new(role, Limits::default());
    let mut src = BytesMut::new();
    let mut messages = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        src.extend_from_slice(f);
        if let Err(e) = drain(&mut decoder, &mut src, &mut messages) {
            return Some((i, e));
        }
    }
    None
}

proptest! {
    #![proptest_config(config(256))]

    /// Invalid UTF-8 inserted anywhere in a text, under any fragmentation,
    /// gives InvalidUtf8 (1007) on the fragment where the text breaks.
    #[test]
    fn invalid_utf8_anywhere_in_any_fragmentation_yields_invalid_utf8(
        text in "\\PC{0,60}",
        at in any::<Index>(),
        bad in prop::sample::select(INVALID),
        cuts in prop::collection::vec(any::<Index>(), 0..10),
        masks in prop::collection::vec(any::<[u8; 4]>(), 1..4),
        chunks in prop::collection::vec(1usize..40, 1..6),
        role in role(),
    ) {
        let boundaries: Vec<usize> = text
            .char_indices()
            .map(|(i, _)| i)
            .chain([text.len()])
            .collect();
        let at = boundaries[at.index(boundaries.len())];
        let payload = [&text.as_bytes()[..at], bad, &text.as_bytes()[at..]].concat();
        prop_assert!(std::str::from_utf8(&payload).is_err());
        let fragments = split_at_cuts(&payload, &cuts);
        let frames = fragment_frames(OpCode::Text, &fragments, &masks, role);
        let expected = breaking_fragment(&fragments);
        prop_assert!(expected.is_some());
        let failure = failing_frame(role, &frames);
        prop_assert_eq!(failure.as_ref().map(|(i, _)| *i), expected);
        let (_, err) = failure.unwrap();
        prop_assert_eq!(&err, &ProtocolError::InvalidUtf8);
        prop_assert_eq!(err.close_code().as_u16(), 1007);
        let chunked = feed_chunked(&mut Decoder::new(role, Limits::default()), &frames.concat(), &chunks);
        prop_assert_eq!(chunked.error, Some(ProtocolError::InvalidUtf8));
        prop_assert!(chunked.messages.is_empty());
    }

    /// Random bytes as text: a streaming validator agrees with std on every
    /// prefix: accepted when valid, rejected on the breaking fragment when not.
    #[test]
    fn random_text_bytes_are_judged_like_std_fragment_by_fragment(
        payload in prop::collection::vec(
            prop_oneof![3 => 0x20u8..0x7F, 2 => 0x80u8..=0xFF, 1 => 0xC2u8..=0xF4],
            0..40,
        ),
        cuts in prop::collection::vec(any::<Index>(), 0..8),
    ) {
        let fragments = split_at_cuts(&payload, &cuts);
        let frames = fragment_frames(OpCode::Text, &fragments, &[[1, 2, 3, 4]], Role::Server);
        let failure = failing_frame(Role::Server, &frames);
        match breaking_fragment(&fragments) {
            Some(i) => prop_assert_eq!(failure, Some((i, ProtocolError::InvalidUtf8))),
            None => {
                prop_assert_eq!(failure, None);
                let outcome = feed_chunked(&mut Decoder::new(Role::Server, Limits::default()), &frames.concat(), &[]);
                prop_assert_eq!(outcome.messages, vec![expected_message(OpCode::Text, &payload)]);
            }
        }
    }
}

/// Random limits: frame, message and fragment limits, small enough to hit.
fn limits() -> impl Strategy<Value = Limits> {
    (0usize..3000, 0usize..6000, 0usize..10).prop_map(|(frame, message, fragments)| {
        let mut limits = Limits::default()
            .with_max_frame_size(frame)
            .with_max_fragments(fragments);
        limits.max_message_size = message;
        limits
    })
}

/// The first byte of a frame: mostly valid FIN/opcode combinations, some
/// arbitrary (reserved bits and opcodes).
fn first_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        20 => (any::<bool>(), prop::sample::select(vec![0u8, 1, 2, 8, 9, 10]))
            .prop_map(|(fin, op)| (u8::from(fin || op >= 8) << 7) | op),
        1 => (any::<bool>(), prop::sample::select(vec![8u8, 9, 10]))
            .prop_map(|(fin, op)| (u8::from(fin) << 7) | op),
        1 => any::<u8>(),
    ]
}

/// One frame on the wire, as `role` expects to read it (masking broken now
/// and then): announced length from tiny to huge (control frames mostly
/// within 125), the payload bytes actually present possibly fewer (the
/// stream then runs on into the next frame or ends).
fn wire_frame(max_frame: usize, role: Role) -> impl Strategy<Value = Vec<u8>> {
    (
        first_byte(),
        prop_oneof![30 => Just(false), 1 => Just(true)],
        prop_oneof![10 => Just(false), 1 => Just(true)],
        prop_oneof![
            4 => 0u64..=125,
            4 => 0u64..=(2 * max_frame as u64 + 300),
            1 => 65_536u64..(1 << 40),
            1 => any::<u64>(),
        ],
        any::<[u8; 4]>(),
        any::<bool>(),
        any::<u8>(),
    )
        .prop_map(
            move |(b0, break_mask_rule, oversize_control, len, mask, ascii, seed)| {
                let masked = (role == Role::Server) != break_mask_rule;
                let control = b0 & 0x08 != 0;
                let len = if control && !oversize_control {
                    len % 126
                } else {
                    len
                };
                let mut out = vec![b0];
                let mask_bit = if masked { 0x80 } else { 0 };
                if len < 126 {
                    out.push(mask_bit | len as u8);
                } else if len <= 65_535 {
                    out.push(mask_bit | 126);
                    out.extend_from_slice(&(len as u16).to_be_bytes());
                } else {
                    out.push(mask_bit | 127);
                    out.extend_from_slice(&len.to_be_bytes());
                }
                if masked {
                    out.extend_from_slice(&mask);
                }
                let present = len.min(8192) as usize;
                out.extend((0..present).map(|i| {
                    let b = (i as u8).wrapping_mul(31).wrapping_add(seed);
                    let b = if ascii { b'a' + b % 26 } else { b };
                    b ^ if masked { mask[i % 4] } else { 0 }
                }));
                out
            },
        )
}

/// A byte stream for `role`: structured frames, with raw garbage now and
/// then, its end possibly cut off.
fn wire_stream(max_frame: usize, role: Role) -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(
            prop_oneof![
                15 => wire_frame(max_frame, role),
                1 => prop::collection::vec(any::<u8>(), 0..20),
            ],
            0..12,
        ),
        any::<Index>(),
    )
        .prop_map(|(parts, cut)| {
            let bytes = parts.concat();
            let end = bytes.len() - cut.index(bytes.len() + 1) / 4;
            bytes[..end].to_vec()
        })
}

/// Random limits, a role, and a stream for them.
fn limits_role_stream() -> impl Strategy<Value = (Limits, Role, Vec<u8>)> {
    (limits(), role()).prop_flat_map(|(limits, role)| {
        (
            Just(limits),
            Just(role),
            wire_stream(limits.max_frame_size, role),
        )
    })
}

/// Feeds `bytes` in chunks, handing the decoder a buffer with no spare room
/// each time (capacity == bytes held), so that any spare capacity after a
/// call was reserved by the decoder itself. Checks after every call that
/// the buffer holds at most what was fed plus one frame at the limit (or a
/// control frame) and its header. Returns the outcome.
fn feed_tight(
    decoder: &mut Decoder,
    bytes: &[u8],
    chunks: &[usize],
) -> Result<Outcome, TestCaseError> {
    let limits = *decoder.limits();
    let largest_frame = limits.max_frame_size.max(125) + MAX_HEADER_LEN;
    let mut src = BytesMut::new();
    let mut messages = Vec::new();
    let mut rest = bytes;
    let mut i = 0;
    while !rest.is_empty() {
        let size = chunks[i % chunks.len()].clamp(1, rest.len());
        i += 1;
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        let mut tight = BytesMut::with_capacity(src.len() + chunk.len());
        tight.extend_from_slice(&src);
        tight.extend_from_slice(chunk);
        src = tight;
        let fed = src.len();
        loop {
            let result = decoder.decode(&mut src);
            prop_assert!(
                src.capacity() <= fed + largest_frame,
                "capacity {} with {} bytes fed and a frame limit of {}",
                src.capacity(),
                fed,
                limits.max_frame_size
            );
            match result {
                Ok(Some(message)) => messages.push(message),
                Ok(None) => break,
                Err(e) => {
                    let code = e.close_code().as_u16();
                    prop_assert!([1002, 1007, 1008, 1009].contains(&code), "{e:?} -> {code}");
                    return Ok(Outcome {
                        messages,
                        error: Some(e),
                    });
                }
            }
        }
    }
    Ok(Outcome {
        messages,
        error: None,
    })
}

proptest! {
    #![proptest_config(config(256))]

    /// For random limits and random input, the decoder never panics, never
    /// reserves room for more than one frame at the limit plus its header,
    /// maps every error to 1002/1007/1008/1009, honours the limits on what
    /// it returns, and gives the same result whatever the chunking.
    #[test]
    fn decoder_never_reserves_past_the_frame_limit_and_never_panics(
        (limits, role, bytes) in limits_role_stream(),
        chunks in prop::collection::vec(prop_oneof![1usize..16, 1usize..3000], 1..6),
    ) {
        let chunked = feed_tight(&mut Decoder::new(role, limits), &bytes, &chunks)?;
        for message in &chunked.messages {
            match message {
                Message::Text(t) => prop_assert!(t.len() <= limits.max_message_size),
                Message::Binary(b) => prop_assert!(b.len() <= limits.max_message_size),
                Message::Ping(b) | Message::Pong(b) => prop_assert!(b.len() <= 125),
                Message::Close(c) => prop_assert!(c.as_ref().is_none_or(|c| c.reason.len() <= 123)),
            }
        }
        let whole = feed_tight(&mut Decoder::new(role, limits), &bytes, &[bytes.len().max(1)])?;
        prop_assert_eq!(&chunked, &whole);
        let bytewise = feed_chunked(&mut Decoder::new(role, limits), &bytes, &[1]);
        prop_assert_eq!(&bytewise, &whole);
    }

    /// The same on pure noise.
    #[test]
    fn decoder_never_panics_on_noise(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        limits in limits(),
        chunks in prop::collection::vec(1usize..64, 1..6),
        role in role(),
    ) {
        let chunked = feed_tight(&mut Decoder::new(role, limits), &bytes, &chunks)?;
        let whole = feed_tight(&mut Decoder::new(role, limits), &bytes, &[bytes.len().max(1)])?;
        prop_assert_eq!(chunked, whole);
    }
}
