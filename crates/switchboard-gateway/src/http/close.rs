//! The close code and reason of the API's disconnects (`POST
//! /api/v1/disconnect`, `DELETE /api/v1/connections/{id}` and `DELETE
//! /api/v1/users/{user}/connections`).
//!
//! The codes accepted are those of the protocol's close-code table
//! (`switchboard_protocol::CloseCode`, docs/protocol.md) that may appear in
//! a close frame, and the ranges RFC 6455 leaves to libraries and
//! applications: the check and its error message both come from here.

use std::ops::RangeInclusive;

use serde::Deserialize;
use switchboard::CloseCode;
use switchboard::protocol::wire::CloseCode as Table;
use utoipa::IntoParams;

use super::error::ApiError;

/// Codes for libraries (3000-3999) and applications (4000-4999).
const OPEN_RANGE: RangeInclusive<u16> = 3000..=4999;

/// The code when none is given.
const DEFAULT_CODE: u16 = 1000;

/// The reason when none is given.
const DEFAULT_REASON: &str = "disconnected by the server";

/// The longest reason a close frame carries.
const MAX_REASON: usize = 123;

/// The table's codes below the open ranges that may be sent (1006 only
/// ever describes a lost connection), in the table's order.
fn table_codes() -> impl Iterator<Item = u16> {
    Table::ALL
        .into_iter()
        .map(Table::code)
        .filter(|n| *n < *OPEN_RANGE.start() && CloseCode::from(*n).is_sendable())
}

/// Whether the API sends `code`.
fn accepted(code: u16) -> bool {
    OPEN_RANGE.contains(&code) || table_codes().any(|n| n == code)
}

/// The codes accepted, as the error message and the docs list them:
/// `1000, 1001, ..., 1013 or 3000-4999`.
pub(super) fn accepted_codes() -> String {
    let listed: Vec<String> = table_codes().map(|n| n.to_string()).collect();
    format!(
        "{} or {}-{}",
        listed.join(", "),
        OPEN_RANGE.start(),
        OPEN_RANGE.end()
    )
}

/// A close code and reason, from a body or a query string.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct CloseSpec {
    /// Close code: 1000 (default), 1001, 1002, 1003, 1007, 1008, 1009, 1011, 1012, 1013 or 3000-4999.
    #[serde(default)]
    pub(super) code: Option<u16>,
    /// Close reason, at most 123 bytes.
    #[serde(default)]
    pub(super) reason: Option<String>,
}

impl CloseSpec {
    /// The code and reason to close with; 400 naming the field otherwise.
    pub(super) fn resolve(&self) -> Result<(CloseCode, String), ApiError> {
        let code = self.code.unwrap_or(DEFAULT_CODE);
        if !accepted(code) {
            return Err(ApiError::bad_request(format!(
                "code: {code} cannot be sent: use {}",
                accepted_codes()
            )));
        }
        let reason = self
            .reason
            .clone()
            .unwrap_or_else(|| DEFAULT_REASON.to_owned());
        if reason.len() > MAX_REASON {
            return Err(ApiError::bad_request(format!(
                "reason: at most {MAX_REASON} bytes (a close frame's limit)"
            )));
        }
        Ok((CloseCode::from(code), reason))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_codes_accepted_are_the_tables_sendable_ones_and_the_open_ranges() {
        assert_eq!(
            accepted_codes(),
            "1000, 1001, 1002, 1003, 1007, 1008, 1009, 1011, 1012, 1013 or 3000-4999"
        );
        for code in 0..=u16::MAX {
            let listed = OPEN_RANGE.contains(&code) || table_codes().any(|n| n == code);
            assert_eq!(accepted(code), listed, "{code}");
            if listed {
                assert!(CloseCode::from(code).is_sendable(), "{code}");
            }
        }
        for refused in [999, 1004, 1005, 1006, 1010, 1014, 1015, 2999, 5000] {
            assert!(!accepted(refused), "{refused}");
        }
    }

    #[test]
    fn the_documented_list_is_the_accepted_one() {
        // Every description of a close code in the OpenAPI document (the
        // fields' doc comments) lists exactly the codes accepted.
        let doc: serde_json::Value =
            serde_json::from_str(super::super::openapi::json()).expect("JSON");
        let expected = format!(
            "Close code: 1000 (default), {}.",
            accepted_codes().trim_start_matches("1000, ")
        );
        fn walk(value: &serde_json::Value, found: &mut Vec<String>) {
            match value {
                serde_json::Value::Object(map) => {
                    if let Some(serde_json::Value::String(d)) = map.get("description")
                        && d.starts_with("Close code:")
                    {
                        found.push(d.clone());
                    }
                    map.values().for_each(|v| walk(v, found));
                }
                serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, found)),
                _ => {}
            }
        }
        let mut found = Vec::new();
        walk(&doc, &mut found);
        assert!(found.len() >= 3, "{found:?}");
        for description in found {
            assert_eq!(description, expected);
        }
    }
}
