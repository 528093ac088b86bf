//! The parser takes whatever a client sends: random bytes, random JSON,
//! and valid messages with fields mangled. It must never panic, and must
//! classify every failure with one of the three input error codes.

use proptest::prelude::*;
use serde_json::{Value, json};
use switchboard_protocol::{ErrorCode, MessageType, parse, parse_slice};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,20}".prop_map(Value::from),
        prop::sample::select(MessageType::ALL.to_vec()).prop_map(|t| Value::from(t.as_str())),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("type".to_owned()),
                    Just("payload".to_owned()),
                    Just("id".to_owned()),
                    Just("timestamp".to_owned()),
                    Just("correlation_id".to_owned()),
                    Just("subscriptions".to_owned()),
                    Just("action".to_owned()),
                    Just("auth".to_owned()),
                    Just("token".to_owned()),
                    "[a-z_]{1,8}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A well-formed envelope of a random type with a random payload.
fn envelope_like() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(MessageType::ALL.to_vec()),
        json_value(),
        prop::option::of(".{0,70}"),
    )
        .prop_map(
            |(kind, payload, id)| json!({"type": kind.as_str(), "payload": payload, "id": id}),
        )
}

fn check(result: Result<switchboard_protocol::Envelope, switchboard_protocol::ParseError>) {
    if let Err(e) = result {
        assert!(
            matches!(
                e.code,
                ErrorCode::InvalidJson | ErrorCode::UnknownType | ErrorCode::InvalidMessage
            ),
            "{e:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_strings_never_panic(text in ".{0,200}") {
        check(parse(&text));
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        check(parse_slice(&bytes));
    }

    #[test]
    fn random_json_never_panics(value in json_value()) {
        check(parse(&value.to_string()));
    }

    #[test]
    fn random_envelopes_never_panic(value in envelope_like()) {
        let text = value.to_string();
        check(parse(&text));
        // Truncated input is still handled.
        for cut in [1, text.len() / 2, text.len().saturating_sub(1)] {
            if let Some(prefix) = text.get(..cut) {
                check(parse(prefix));
            }
        }
    }
}

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(parse(&deep).unwrap_err().code, ErrorCode::InvalidJson);
    let deep_payload = format!(
        r#"{{"type":"ACTION","id":"a","payload":{{"action":"x","data":{}{}}}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert_eq!(
        parse(&deep_payload).unwrap_err().code,
        ErrorCode::InvalidJson
    );
}
