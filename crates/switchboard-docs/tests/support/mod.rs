//! What the docs tests share: including a snippet, signing a token,
//! waiting for the hub.

#![allow(dead_code, unreachable_pub, unused_macros)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use switchboard::Hub;

/// Includes the Rust block of README.md or docs/*.md tagged `$tag` (the
/// build script wrote it to `OUT_DIR/snippets/<tag>.rs`). Use it inside a
/// module: the snippet's items become the module's.
macro_rules! snippet {
    ($tag:literal) => {
        include!(concat!(env!("OUT_DIR"), "/snippets/", $tag, ".rs"));
    };
}

/// A secret for HS256 (32 bytes or more), as `JWT_SECRET` would hold it.
pub const SECRET: &str = "a test secret of at least thirty-two bytes";

/// An HS256 token for `user`, valid for an hour, with `extra` claims.
pub fn token(user: &str, extra: Value) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut claims = json!({ "sub": user, "iat": now, "exp": now + 3600 });
    if let (Some(claims), Value::Object(extra)) = (claims.as_object_mut(), extra) {
        claims.extend(extra);
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("an HS256 token")
}

/// Waits until `room` has `n` members in `hub` (a handler joins after the
/// handshake completes).
pub async fn wait_for_room(hub: &Hub, room: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while hub.room_size(room) != n {
        assert!(
            Instant::now() < deadline,
            "{room} never had {n} member(s): {}",
            hub.room_size(room)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Prints straight to stderr, past the test harness's capture: a skipped
/// check must be seen.
pub fn loud(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{line}");
}
