//! permessage-deflate end to end: negotiation, compressed messages both
//! ways, compress-once fan-out, context takeover, and bad compressed input.

use std::time::Duration;

use switchboard::ws::OpCode;
use switchboard::ws::deflate::Compressor;
use switchboard::{
    CloseCode, DeflateConfig, Error, Hub, Limits, Outgoing, RouteConfig, Switchboard, TestClient,
    TestError, WebSocketUpgrade,
};

async fn echo(ws: WebSocketUpgrade) -> Result<(), Error> {
    let mut ws = ws.accept().await?;
    while let Some(message) = ws.recv().await? {
        ws.send(message).await?;
    }
    Ok(())
}

fn compressed_route(config: DeflateConfig) -> RouteConfig {
    RouteConfig::default()
        .with_compression(Some(config))
        .with_limits(Limits::default().with_max_message_size(1 << 20))
}

fn app(config: DeflateConfig) -> Switchboard {
    Switchboard::new().route_with("/ws/echo", compressed_route(config), echo)
}

#[tokio::test]
async fn browser_offer_negotiates_no_context_takeover_both_ways() {
    let client = TestClient::new(app(DeflateConfig::default()));
    let ws = client
        .request("/ws/echo")
        .deflate()
        .connect()
        .await
        .unwrap();
    assert_eq!(
        ws.extensions(),
        Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
    );
}

#[tokio::test]
async fn no_offer_or_no_config_means_no_extension() {
    let client = TestClient::new(app(DeflateConfig::default()));
    let ws = client.connect("/ws/echo").await.unwrap();
    assert_eq!(ws.extensions(), None);
    let plain = TestClient::new(Switchboard::new().route("/ws/echo", echo));
    let ws = plain.request("/ws/echo").deflate().connect().await.unwrap();
    assert_eq!(ws.extensions(), None);
}

#[tokio::test]
async fn invalid_offer_is_declined_not_refused() {
    let client = TestClient::new(app(DeflateConfig::default()));
    let ws = client
        .request("/ws/echo")
        .header(
            "sec-websocket-extensions",
            "permessage-deflate; server_max_window_bits=99",
        )
        .connect()
        .await
        .unwrap();
    assert_eq!(ws.extensions(), None);
}

#[tokio::test]
async fn compressed_messages_round_trip_and_large_replies_are_compressed() {
    let hub = Hub::new();
    let client = TestClient::new(app(DeflateConfig::default()).with_hub(hub.clone()));
    let mut ws = client
        .request("/ws/echo")
        .deflate()
        .connect()
        .await
        .unwrap();
    let big = "switchboard compresses this line well. ".repeat(500);
    ws.send_compressed_text(&big).await.unwrap();
    assert_eq!(ws.recv_text().await.unwrap(), big.as_str());
    // Small messages go uncompressed (below min_size) and still round-trip.
    ws.send_text("hi").await.unwrap();
    assert_eq!(ws.recv_text().await.unwrap(), "hi");
    let stats = hub.stats().snapshot();
    assert_eq!(
        stats.bytes_in,
        (big.len() + 2) as u64,
        "inflated sizes count as received"
    );
    assert!(
        stats.bytes_out < (big.len() / 4) as u64,
        "the {}-byte reply went out compressed: {} bytes on the wire",
        big.len(),
        stats.bytes_out
    );
}

#[tokio::test]
async fn a_broadcast_reaches_every_compressed_and_plain_subscriber() {
    let hub = Hub::new();
    let route = compressed_route(DeflateConfig::default());
    let app = Switchboard::new().with_hub(hub.clone()).route_with(
        "/ws/room",
        route,
        |ws: WebSocketUpgrade| async move {
            let mut ws = ws.accept().await?;
            ws.join("room");
            ws.send_text("joined").await?;
            while ws.recv().await?.is_some() {}
            Ok::<(), Error>(())
        },
    );
    let client = TestClient::new(app);
    let mut compressed = Vec::new();
    for _ in 0..3 {
        let mut ws = client
            .request("/ws/room")
            .deflate()
            .connect()
            .await
            .unwrap();
        assert_eq!(ws.recv_text().await.unwrap(), "joined");
        compressed.push(ws);
    }
    let mut plain = client.connect("/ws/room").await.unwrap();
    assert_eq!(plain.recv_text().await.unwrap(), "joined");
    let message = format!("{{\"event\":\"tick\",\"data\":\"{}\"}}", "abc".repeat(1000));
    let before = hub.stats().snapshot().bytes_out;
    assert_eq!(
        hub.send_to_room("room", &Outgoing::text(message.as_str()), None),
        4
    );
    for ws in &mut compressed {
        assert_eq!(ws.recv_text().await.unwrap(), message.as_str());
    }
    assert_eq!(plain.recv_text().await.unwrap(), message.as_str());
    let wire = hub.stats().snapshot().bytes_out - before;
    assert!(
        wire < (message.len() + 3 * (message.len() / 4)) as u64,
        "three compressed copies and one plain: {wire} bytes for a {}-byte message",
        message.len()
    );
}

#[tokio::test]
async fn server_context_takeover_keeps_messages_in_order() {
    let config = DeflateConfig::default().with_server_context_takeover(true);
    let client = TestClient::new(app(config));
    let mut ws = client
        .request("/ws/echo")
        .deflate()
        .connect()
        .await
        .unwrap();
    assert_eq!(
        ws.extensions(),
        Some("permessage-deflate; client_no_context_takeover")
    );
    for i in 0..50 {
        let text = format!("message {i}: {}", "repeated words ".repeat(40));
        ws.send_text(&text).await.unwrap();
        assert_eq!(ws.recv_text().await.unwrap(), text.as_str());
    }
}

#[tokio::test]
async fn corrupt_compressed_data_closes_with_1007() {
    let client = TestClient::new(app(DeflateConfig::default()));
    let mut ws = client
        .request("/ws/echo")
        .deflate()
        .connect()
        .await
        .unwrap();
    ws.send_compressed_raw(OpCode::Text, &[0xff, 0xff, 0xff, 0xff, 0x00])
        .await
        .unwrap();
    let close = ws.recv_close().await.unwrap().unwrap();
    assert_eq!(close.code, CloseCode::InvalidPayload);
}

#[tokio::test]
async fn rsv1_without_negotiation_closes_with_1002() {
    let client = TestClient::new(app(DeflateConfig::default()));
    let mut ws = client.connect("/ws/echo").await.unwrap();
    ws.send_compressed_text(&"x".repeat(1000)).await.unwrap();
    let close = ws.recv_close().await.unwrap().unwrap();
    assert_eq!(close.code, CloseCode::Protocol);
}

#[tokio::test]
async fn inflated_size_over_the_limit_closes_with_1009() {
    let client =
        TestClient::new(app(DeflateConfig::default())).with_timeout(Duration::from_secs(10));
    let mut ws = client
        .request("/ws/echo")
        .deflate()
        .connect()
        .await
        .unwrap();
    // 2 MiB of zeros compresses to about 2 KiB; the limit is 1 MiB inflated.
    let packed = Compressor::new(9, 15).compress(&vec![0u8; 2 << 20], true);
    assert!(packed.len() < 16 * 1024);
    ws.send_compressed_raw(OpCode::Binary, &packed)
        .await
        .unwrap();
    match ws.recv().await {
        Err(TestError::Closed(Some(frame))) => assert_eq!(frame.code, CloseCode::TooBig),
        other => panic!("expected close 1009, got {other:?}"),
    }
}
