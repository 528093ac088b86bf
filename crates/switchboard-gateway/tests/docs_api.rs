//! operations.md's curl calls to the HTTP API, run as written against the
//! real gateway (on the embedded defaults, where loopback needs no key),
//! with a `/ws` subscriber of `public:news` and a `/ws/broadcast` client
//! to receive them.

mod support;

use serde_json::Value;
use support::Gateway;
use support::shell::{Shell, require_tool};
use switchboard_docs::markdown::tagged;

/// The block's commands (a `curl` line and the lines that continue it),
/// each with the answer its `# → ` comment shows, when that is JSON.
fn commands(text: &str) -> Vec<(String, Option<Value>)> {
    let mut out: Vec<(String, Option<Value>)> = Vec::new();
    let mut open = false;
    for line in text.lines() {
        if line.starts_with("curl ") {
            out.push((line.to_owned(), None));
            open = true;
        } else if let Some(answer) = line.strip_prefix("# → ") {
            if let (Some(last), Ok(value)) = (out.last_mut(), serde_json::from_str(answer)) {
                last.1 = Some(value);
            }
            open = false;
        } else if line.starts_with('#') || line.trim().is_empty() {
            open = false;
        } else if open {
            let last = out.last_mut().expect("a command");
            last.0.push('\n');
            last.0.push_str(line);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_api_calls_answer_as_shown() {
    if !require_tool(
        "curl",
        "--version",
        "the_documented_api_calls_answer_as_shown",
    ) {
        return;
    }
    let gw = Gateway::start(&[]);
    let mut news = gw
        .ws_client()
        .request("/ws")
        .protocol("switchboard.v1")
        .connect()
        .await
        .unwrap();
    let _ack: Value = news.recv_json().await.unwrap();
    news.send_text(r#"{"type":"SUBSCRIBE","id":"n","payload":{"subscriptions":["public:news"]}}"#)
        .await
        .unwrap();
    let joined: Value = support::published::next_publication(&mut news).await;
    assert_eq!(joined["type"], "SUBSCRIBE_SUCCESS");
    let mut broadcast = gw.ws_client().connect("/ws/broadcast").await.unwrap();
    gw.wait_for_room("broadcast", 1).await;

    let shell = Shell::new()
        .replace("localhost:8080", &gw.addr.to_string())
        .env("KEY", "");
    let block = &tagged("api")[0];
    let calls = commands(&block.text);
    assert!(calls.len() >= 5, "{}: {calls:?}", block.location());
    for (command, shown) in &calls {
        let answer: Value = serde_json::from_str(&shell.run_ok(command))
            .unwrap_or_else(|e| panic!("{command}: not JSON: {e}"));
        assert!(answer.get("error").is_none(), "{command}: {answer}");
        if let Some(shown) = shown {
            let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
            assert_eq!(keys(&answer), keys(shown), "{command}: {answer}");
        }
        if command.contains("idempotency_key") {
            // "a retry: ... "duplicate": true", the first attempt's offset.
            let retry: Value = serde_json::from_str(&shell.run_ok(command)).unwrap();
            assert_eq!(retry["duplicate"], true, "{retry}");
            assert_eq!(retry["offset"], answer["offset"]);
            assert_eq!(retry["local"], 0);
        }
    }
    // What the subscribers got: the two events (once each), and the text.
    for _ in 0..2 {
        let event: Value = support::published::next_publication(&mut news).await;
        assert_eq!(event["payload"]["event"], "article.published", "{event}");
        assert_eq!(event["payload"]["channel"], "public:news");
    }
    assert_eq!(broadcast.recv_text().await.unwrap(), "hello");
}
