//! The Python package (`clients/python`, `switchboard_rt.redis`) publishes
//! to rooms with history with its own copy of the append script, shipped
//! in its wheel. The copy must be this crate's script, byte for byte: a
//! different script would put different keys or messages in the same
//! streams.

use std::path::PathBuf;

use switchboard_redis::streams::APPEND_SCRIPT;

#[test]
fn the_python_package_ships_the_same_append_script() {
    let copy = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../clients/python/src/switchboard_rt/scripts/append.lua");
    let python =
        std::fs::read_to_string(&copy).unwrap_or_else(|e| panic!("read {}: {e}", copy.display()));
    assert!(
        python == APPEND_SCRIPT,
        "{} differs from crates/switchboard-redis/src/scripts/append.lua: copy it over \
         (cp crates/switchboard-redis/src/scripts/append.lua {}) and check what \
         switchboard_rt.redis passes as KEYS and ARGV against the script's header",
        copy.display(),
        copy.display()
    );
}
