//! Structured protocol: bad input answers the documented ERROR codes, ten
//! errors close with 4007, an oversized message with 1009, a missing PONG
//! with 4006; a random flood of garbage never takes the server down.

mod protocol_common;

use std::time::{Duration, Instant};

use protocol_common::*;
use serde_json::json;
use switchboard::protocol::ProtocolConfig;

both_transports!(
    bad_input_answers_the_documented_codes,
    ten_errors_close_with_4007,
    an_oversized_message_closes_with_1009,
    a_missing_pong_closes_with_4006,
    answered_pings_keep_the_connection_open,
);

async fn bad_input_answers_the_documented_codes(t: Transport) {
    let h = Harness::start(t, mount(protocol(ProtocolConfig::default()))).await;
    let (mut ws, _) = h.connect().await;
    ws.send_text("not json").await;
    ws.expect_error("invalid_json", None).await;
    ws.send_text("[1, 2]").await;
    ws.expect_error("invalid_json", None).await;
    ws.send_text(r#"{"id":"x1","payload":{}}"#).await;
    ws.expect_error("unknown_type", Some("x1")).await;
    ws.send_text(r#"{"type":"SHOUT","id":"x2"}"#).await;
    ws.expect_error("unknown_type", Some("x2")).await;
    ws.send_text(r#"{"type":"SUBSCRIBE","id":"x3","payload":{}}"#)
        .await;
    let e = ws.expect_error("invalid_message", Some("x3")).await;
    assert!(
        e["payload"]["message"]
            .as_str()
            .unwrap()
            .contains("subscriptions"),
        "{e}"
    );
    ws.send_text(r#"{"type":"PING","id":42}"#).await;
    ws.expect_error("invalid_message", None).await;
    ws.socket.send_binary(b"{\"type\":\"PING\"}").await.unwrap();
    ws.expect_error("invalid_message", None).await;
    // Still usable.
    ws.send("PING", json!({})).await;
    ws.expect("PONG").await;
}

async fn ten_errors_close_with_4007(t: Transport) {
    let h = Harness::start(t, mount(protocol(ProtocolConfig::default()))).await;
    let (mut ws, _) = h.connect().await;
    for i in 0..10 {
        ws.send_text(&format!("garbage {i}")).await;
        ws.expect_error("invalid_json", None).await;
    }
    ws.expect_disconnect(4007).await;
}

async fn an_oversized_message_closes_with_1009(t: Transport) {
    let h = Harness::start(t, mount(protocol(ProtocolConfig::default()))).await;
    let (mut ws, _) = h.connect().await;
    // 64 KiB is the limit: a message just under it is handled...
    let under = format!(
        r#"{{"type":"PING","payload":{{"pad":"{}"}}}}"#,
        "x".repeat(64 * 1024 - 40)
    );
    assert!(under.len() <= 64 * 1024);
    ws.send_text(&under).await;
    ws.expect("PONG").await;
    // ...one byte over closes the connection.
    let over = "x".repeat(64 * 1024 + 1);
    ws.send_text(&over).await;
    ws.expect_close(1009).await;
}

async fn a_missing_pong_closes_with_4006(t: Transport) {
    let config = ProtocolConfig::default()
        .with_heartbeat(Duration::from_millis(200), Duration::from_millis(200));
    let h = Harness::start(t, mount(protocol(config))).await;
    let (mut ws, ack) = h.connect().await;
    assert_eq!(ack["payload"]["heartbeat_interval"], 0.2);
    let started = Instant::now();
    let ping = ws.expect("PING").await;
    assert_eq!(ping["payload"], json!({}));
    // No PONG: closed about 200 ms later.
    ws.expect_disconnect(4006).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(150) && took < Duration::from_secs(2),
        "{took:?}"
    );
}

async fn answered_pings_keep_the_connection_open(t: Transport) {
    let config = ProtocolConfig::default()
        .with_heartbeat(Duration::from_millis(100), Duration::from_millis(150));
    let h = Harness::start(t, mount(protocol(config))).await;
    let (mut ws, _) = h.connect().await;
    for _ in 0..4 {
        let ping = ws.expect("PING").await;
        let id = ping["id"].as_str().unwrap().to_owned();
        ws.socket
            .send_json(&json!({"type": "PONG", "correlation_id": id}))
            .await
            .unwrap();
    }
    // Still open: a client PING is answered.
    let id = ws.send("PING", json!({})).await;
    loop {
        let m = ws.recv().await;
        if m["type"] == "PONG" {
            assert_eq!(m["correlation_id"], id);
            break;
        }
        assert_eq!(m["type"], "PING");
    }
}

/// A random flood of garbage: every message is answered with an ERROR (or
/// a reply), the connection closes with 4007 at the limit, and the server
/// keeps serving others.
#[tokio::test]
async fn random_garbage_never_breaks_the_server() {
    let h = Harness::start(
        Transport::Memory,
        mount(protocol(ProtocolConfig::default())),
    )
    .await;
    let mut seed = 0x2545_f491_u32;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    let pieces = [
        "{",
        "}",
        "[",
        "]",
        "\"type\"",
        ":",
        ",",
        "\"SUBSCRIBE\"",
        "\"payload\"",
        "null",
        "1e999",
        "\"id\"",
        "\"\\u0000\"",
        "{\"subscriptions\":",
        "\"ACTION\"",
        "true",
        "-0",
        "\"é\"",
    ];
    for _ in 0..20 {
        let (mut ws, _) = h.connect().await;
        let mut errors = 0;
        loop {
            let n = next() % 12;
            let text: String = (0..n)
                .map(|_| pieces[next() as usize % pieces.len()])
                .collect();
            ws.send_text(&text).await;
            let reply = ws.recv().await;
            if reply["type"] == "ERROR" {
                errors += 1;
                if errors == 10 {
                    ws.expect_disconnect(4007).await;
                    break;
                }
            }
        }
    }
    let (mut ws, _) = h.connect().await;
    ws.send("PING", json!({})).await;
    ws.expect("PONG").await;
}
