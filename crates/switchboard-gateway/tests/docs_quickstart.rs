//! README.md's commands and docs/quickstart.md's walkthrough, run as
//! written against the real binary: the gateway each starts, curl, and the
//! quick start's Python client (`examples/python/listen.py`, needing
//! `websockets`: `$SWITCHBOARD_PYTHON` or `python3`).

mod support;

use serde_json::Value;
use support::Gateway;
use support::shell::{Shell, is_setup, python_with, require_tool};
use switchboard_docs::markdown::{Block, tagged};

/// The gateway a documented `cargo run ... -- serve` line starts: the same
/// binary with the same arguments, on a free port.
fn start(line: &str) -> Gateway {
    let args = line
        .strip_prefix("cargo run --release -p switchboard-gateway -- ")
        .unwrap_or_else(|| panic!("not the gateway's cargo run: {line}"));
    let args: Vec<&str> = args.split_whitespace().collect();
    assert_eq!(args.first(), Some(&"serve"), "{line}");
    Gateway::start(&args[1..])
}

fn from(file: &str, tag: &str) -> Vec<Block> {
    tagged(tag).into_iter().filter(|b| b.file == file).collect()
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_commands_start_a_gateway_and_publish_to_it() {
    if !require_tool(
        "curl",
        "--version",
        "the_readme_commands_start_a_gateway_and_publish_to_it",
    ) {
        return;
    }
    let blocks = from("README.md", "readme");
    let [serve, publish] = &blocks[..] else {
        panic!("README.md: two `sh readme` blocks, the gateway and curl: {blocks:?}");
    };
    let gw = start(serve.commands()[0]);
    let mut client = gw.ws_client().connect("/ws/broadcast").await.unwrap();
    gw.wait_for_room("broadcast", 1).await;

    let shell = Shell::new().replace("127.0.0.1:8080", &gw.addr.to_string());
    let answer = shell.run_ok(publish.commands()[0]);
    assert_eq!(
        json(&answer),
        serde_json::json!({"local": 1, "forwarded": true})
    );
    assert_eq!(client.recv_text().await.unwrap(), "hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quickstart_walkthrough_works_as_written() {
    let test = "the_quickstart_walkthrough_works_as_written";
    if !require_tool("curl", "--version", test) {
        return;
    }
    let Some(python) = python_with(&["websockets"], test) else {
        return;
    };
    let file = "docs/quickstart.md";
    let sh = from(file, "quickstart")
        .into_iter()
        .filter(|b| b.lang == "sh")
        .collect::<Vec<_>>();
    let [serve, client, publish] = &sh[..] else {
        panic!("{file}: three `sh quickstart` blocks (gateway, client, curl): {sh:?}");
    };
    let subscribe = &from(file, "quickstart")
        .into_iter()
        .find(|b| b.lang == "json")
        .expect("the SUBSCRIBE the client sends");
    let arrives = &from(file, "quickstart")
        .into_iter()
        .find(|b| b.lang == "text")
        .expect("what the client prints");

    // 1. Start the gateway.
    let gw = start(serve.commands()[0]);
    let url = format!("ws://{}/ws", gw.addr);

    // 2. The demo page is served (a browser is the reader's part); a
    // second client subscribed to public:lobby stands in for it.
    let page = gw.get("/?name=alice&room=lobby").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<title>Switchboard"), "{}", page.body);
    let mut demo = gw
        .ws_client()
        .request("/ws")
        .protocol("switchboard.v1")
        .connect()
        .await
        .unwrap();
    let _ack: Value = demo.recv_json().await.unwrap();
    demo.send_text(
        r#"{"type":"SUBSCRIBE","id":"demo","payload":{"subscriptions":["public:lobby"]}}"#,
    )
    .await
    .unwrap();
    let joined: Value = support::published::next_publication(&mut demo).await;
    assert_eq!(joined["type"], "SUBSCRIBE_SUCCESS", "{joined}");

    // 3. Connect the client: its set-up lines are the reader's; the rest runs.
    let lines: Vec<&str> = client
        .commands()
        .into_iter()
        .filter(|l| !is_setup(l))
        .collect();
    let [listen] = lines[..] else {
        panic!(
            "{}: one command besides the set-up: {lines:?}",
            client.location()
        );
    };
    let shell = Shell::new()
        .replace("127.0.0.1:8080", &gw.addr.to_string())
        .replace("target/quickstart-venv/bin/python", &python)
        .env("SWITCHBOARD_WS_URL", &url);
    let mut running = shell.spawn(listen);
    let connected = running.line_where("connected:", |l| l.starts_with("connected: "));
    assert_eq!(
        json(&connected["connected: ".len()..])["type"],
        "CONNECT_ACK"
    );

    // 4. It subscribes with what the page shows, and is answered.
    let sent = running.line_where("> (the SUBSCRIBE)", |l| l.starts_with("> "));
    assert_eq!(
        json(&sent[2..]),
        json(&subscribe.text),
        "{}",
        subscribe.location()
    );
    let answer = running.line_where("< SUBSCRIBE_SUCCESS", |l| {
        l.starts_with("< ") && l.contains("SUBSCRIBE_")
    });
    let answer = json(&answer[2..]);
    assert_eq!(answer["type"], "SUBSCRIBE_SUCCESS", "{answer}");
    assert_eq!(answer["payload"]["channel"], "public:lobby");
    gw.wait_for_room("public:lobby", 2).await;

    // 5. Publish with curl: queued for the two of them, offset 1.
    let published = json(&shell.run_ok(publish.commands()[0]));
    assert_eq!(published["local"], 2, "{published}");
    assert_eq!(published["forwarded"], true);
    assert_eq!(published["offset"], 1);
    assert!(published["id"].is_string() && published["epoch"].is_string());

    // 6. It arrives, as the page shows it (the id and time are the run's own).
    let shown = json(arrives.text.trim().strip_prefix("< ").expect("a `< ` line"));
    let got = running.line_where("< EVENT greeting", |l| {
        l.starts_with("< ") && l.contains(r#""event":"greeting""#)
    });
    let got = json(&got[2..]);
    for field in ["type", "payload", "offset"] {
        assert_eq!(
            got[field],
            shown[field],
            "{field}: {got} vs {}",
            arrives.location()
        );
    }
    assert_eq!(got["id"], published["id"]);
    let on_demo: Value = support::published::next_publication(&mut demo).await;
    assert_eq!(on_demo["payload"], shown["payload"]);
}
