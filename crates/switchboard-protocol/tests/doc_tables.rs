//! docs/protocol.md is the contract: its tables of message types, error
//! codes, close codes and connection states must list exactly what this
//! crate exports, in the same order.

use switchboard_protocol::{
    CloseCode, ConnectionState, Direction, ErrorCode, MessageType, NotRecovered, Reconnect,
};

const DOC: &str = include_str!("../../../docs/protocol.md");

/// The rows of the first table whose header row is exactly `header`, as
/// trimmed cells (escaped `\|` kept as `|`).
fn table(header: &[&str]) -> Vec<Vec<String>> {
    let mut lines = DOC.lines().peekable();
    while let Some(line) = lines.next() {
        if cells(line)
            .iter()
            .map(String::as_str)
            .eq(header.iter().copied())
        {
            lines.next(); // the |---| row
            return lines
                .take_while(|l| l.trim_start().starts_with('|'))
                .map(cells)
                .collect();
        }
    }
    panic!("docs/protocol.md has no table with header {header:?}");
}

fn cells(line: &str) -> Vec<String> {
    let line = line.trim();
    if !line.starts_with('|') {
        return Vec::new();
    }
    line.replace("\\|", "\u{0}")
        .trim_matches('|')
        .split('|')
        .map(|c| c.trim().replace('\u{0}', "|"))
        .collect()
}

/// `` `NAME` `` → `NAME`.
fn unquote(cell: &str) -> &str {
    cell.trim_matches('`')
}

#[test]
fn message_types_match_the_table() {
    let rows = table(&["type", "direction", "payload", "reply"]);
    let documented: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (unquote(&r[0]), r[1].as_str()))
        .collect();
    let ours: Vec<(&str, &str)> = MessageType::ALL
        .iter()
        .map(|t| (t.as_str(), t.direction().as_str()))
        .collect();
    assert_eq!(documented, ours);
    // Every direction is one of the three spellings.
    for (_, direction) in &documented {
        assert!(
            [
                Direction::ClientToServer,
                Direction::ServerToClient,
                Direction::Both
            ]
            .iter()
            .any(|d| d.as_str() == *direction),
            "{direction}"
        );
    }
}

#[test]
fn error_codes_match_the_table() {
    let rows = table(&["code", "when"]);
    let documented: Vec<&str> = rows.iter().map(|r| unquote(&r[0])).collect();
    let ours: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(documented, ours);
}

#[test]
fn recovery_reasons_match_the_table() {
    let rows = table(&["`reason`", "when"]);
    let documented: Vec<&str> = rows.iter().map(|r| unquote(&r[0])).collect();
    let ours: Vec<&str> = NotRecovered::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(documented, ours);
}

#[test]
fn close_codes_match_the_table() {
    let rows = table(&["code", "meaning", "should the client reconnect?"]);
    let documented: Vec<(u16, Reconnect)> = rows
        .iter()
        .map(|r| {
            let code = r[0]
                .parse()
                .unwrap_or_else(|_| panic!("close code {:?}", r[0]));
            let advice = r[2].to_lowercase();
            let reconnect = if advice.starts_with("no") {
                Reconnect::No
            } else if advice.contains("fresh token") {
                Reconnect::WithNewToken
            } else if advice.starts_with("yes") {
                Reconnect::Yes
            } else {
                panic!("reconnect advice for {code}: {advice:?}")
            };
            (code, reconnect)
        })
        .collect();
    let ours: Vec<(u16, Reconnect)> = CloseCode::ALL
        .iter()
        .map(|c| (c.code(), c.reconnect()))
        .collect();
    assert_eq!(documented, ours);
}

#[test]
fn connection_states_match_the_document() {
    let section = DOC
        .split("### Connection states")
        .nth(1)
        .expect("a Connection states section");
    let section = section.split("\n#").next().unwrap_or(section);
    // Every `lower_case` word in code style, in order.
    let mut documented: Vec<&str> = section
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        .collect();
    documented.dedup();
    let ours: Vec<&str> = ConnectionState::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(documented, ours);
}

#[test]
fn every_documented_example_parses_as_its_type() {
    let examples = DOC
        .split("## Examples")
        .nth(1)
        .expect("an Examples section");
    let mut seen = Vec::new();
    for line in examples.lines().filter(|l| l.starts_with('{')) {
        let envelope: switchboard_protocol::Envelope =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        // Serialising gives back the same JSON (field order aside).
        let again = serde_json::to_value(&envelope).unwrap();
        let original: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(again, original, "{line}");
        seen.push(envelope.kind());
    }
    for kind in MessageType::ALL {
        assert!(seen.contains(&kind), "no example of {kind}");
    }
}
