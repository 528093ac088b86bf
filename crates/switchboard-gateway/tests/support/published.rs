//! What a `/ws` subscriber gets next (a reply, a publication), past the presence
//! events (`switchboard.join`, `switchboard.leave`: the gateway's
//! `[presence]` sends them on `public:*` by default).

use serde_json::Value;
use switchboard::TestSocket;

/// The next message that is not a presence event.
pub async fn next_publication(ws: &mut TestSocket) -> Value {
    loop {
        let message: Value = ws.recv_json().await.expect("a message");
        let event = message["payload"]["event"].as_str().unwrap_or("");
        if !matches!(event, "switchboard.join" | "switchboard.leave") {
            return message;
        }
    }
}
