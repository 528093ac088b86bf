//! Structured protocol: connecting, authenticating (in the handshake and
//! with AUTHENTICATE), failures, the deadline, refresh and expiry, and
//! DISCONNECT; over the in-memory client and over TCP.

mod protocol_common;

use std::time::{Duration, Instant};

use protocol_common::*;
use serde_json::json;
use switchboard::protocol::{Connection, ConnectionState, ProtocolConfig};
use switchboard::security;

both_transports!(
    connect_ack_on_open_and_on_connect,
    a_handshake_token_authenticates_at_once,
    before_auth_only_auth_messages_are_accepted,
    authenticate_registers_the_user,
    three_failed_authentications_close_with_4004,
    the_auth_deadline_closes_with_4005,
    an_unavailable_authenticator_does_not_count_as_a_failure,
    a_refresh_moves_the_expiry_and_warns_before_it,
    a_refresh_for_another_user_fails,
    an_expired_session_closes_with_4003,
    disconnect_closes_with_1000,
);

async fn connect_ack_on_open_and_on_connect(t: Transport) {
    let h = Harness::start(t, mount(protocol(ProtocolConfig::default()))).await;
    let (mut ws, ack) = h.connect().await;
    let p = &ack["payload"];
    assert_eq!(p["requires_auth"], false);
    assert_eq!(p["authenticated"], false);
    assert_eq!(p["user_id"], serde_json::Value::Null);
    assert_eq!(p["heartbeat_interval"], 25.0);
    assert_eq!(p["protocol_version"], 1);
    assert_eq!(p["server_version"], env!("CARGO_PKG_VERSION"));
    let connection_id: u64 = p["connection_id"].as_str().unwrap().parse().unwrap();
    assert!(ack.get("correlation_id").is_none(), "{ack}");

    let id = ws
        .send(
            "CONNECT",
            json!({"client": {"name": "test", "version": "1"}}),
        )
        .await;
    let again = ws.expect("CONNECT_ACK").await;
    assert_eq!(again["correlation_id"], id);
    assert_eq!(again["payload"]["connection_id"], p["connection_id"]);

    let ping = ws.send("PING", json!({})).await;
    let pong = ws.expect("PONG").await;
    assert_eq!(pong["correlation_id"], ping);
    assert_eq!(pong["payload"], json!({}));

    // The payload may be left out when empty.
    ws.send_text(r#"{"type":"PING","id":"bare"}"#).await;
    assert_eq!(ws.expect("PONG").await["correlation_id"], "bare");

    let conn = Connection::lookup(&h.hub, switchboard::ConnectionId(connection_id)).unwrap();
    assert_eq!(conn.state(), ConnectionState::Connected);
}

async fn a_handshake_token_authenticates_at_once(t: Transport) {
    let config = ProtocolConfig::default().with_require_auth(true);
    let h = Harness::start(t, mount(protocol(config))).await;
    let (mut ws, ack) = h.connect_with(Some("alice-key")).await;
    assert_eq!(ack["payload"]["requires_auth"], false);
    assert_eq!(ack["payload"]["authenticated"], true);
    assert_eq!(ack["payload"]["user_id"], "alice");
    // alice's key never expires.
    assert_eq!(ack["payload"]["expires_at"], serde_json::Value::Null);
    let alice = h.hub.user_connections("alice");
    assert_eq!(alice.len(), 1);
    let conn = Connection::lookup(&h.hub, alice[0]).unwrap();
    assert_eq!(conn.state(), ConnectionState::Authenticated);
    assert_eq!(conn.identity().unwrap().user_id().as_str(), "alice");
    let id = ws
        .send("SUBSCRIBE", json!({"subscriptions": ["user:alice:inbox"]}))
        .await;
    let ok = ws.expect("SUBSCRIBE_SUCCESS").await;
    assert_eq!(ok["correlation_id"], id);

    // A handshake token that expires: CONNECT_ACK says when, as
    // AUTHENTICATE_SUCCESS would, and the same time the server enforces.
    let before = std::time::SystemTime::now() + Duration::from_secs(60);
    let (_carol, ack) = h.connect_with(Some("exp:carol:60000")).await;
    assert_eq!(ack["payload"]["user_id"], "carol");
    let at = ack["payload"]["expires_at"].as_f64().expect("a number");
    let before = before
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((at - before).abs() < 5.0, "{at} vs {before}");
    let carol = h.hub.user_connections("carol");
    let enforced = security::expires_at(&h.hub, carol[0]).unwrap();
    let enforced = enforced
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((at - enforced).abs() < 0.001, "{at} vs {enforced}");

    // A handshake token that is present but wrong is refused with 401.
    let refused = h.client.request("/ws").bearer("nope").connect().await;
    assert!(
        matches!(refused, Err(switchboard::TestError::Rejected { status, .. }) if status == 401),
        "{refused:?}"
    );
}

async fn before_auth_only_auth_messages_are_accepted(t: Transport) {
    let config = ProtocolConfig::default().with_require_auth(true);
    let h = Harness::start(t, mount(protocol(config))).await;
    let (mut ws, ack) = h.connect().await;
    assert_eq!(ack["payload"]["requires_auth"], true);
    assert_eq!(ack["payload"]["authenticated"], false);

    let id = ws
        .send("SUBSCRIBE", json!({"subscriptions": ["public:news"]}))
        .await;
    ws.expect_error("not_authenticated", Some(&id)).await;
    let id = ws.send("ACTION", json!({"action": "x"})).await;
    ws.expect_error("not_authenticated", Some(&id)).await;
    let id = ws
        .send("UNSUBSCRIBE", json!({"subscriptions": ["public:news"]}))
        .await;
    ws.expect_error("not_authenticated", Some(&id)).await;

    // CONNECT and PING are fine.
    ws.send("CONNECT", json!({})).await;
    assert_eq!(
        ws.expect("CONNECT_ACK").await["payload"]["requires_auth"],
        true
    );
    ws.send("PING", json!({})).await;
    ws.expect("PONG").await;
    ws.send("PONG", json!({})).await;
    ws.expect_silence(100).await;
}

async fn authenticate_registers_the_user(t: Transport) {
    let config = ProtocolConfig::default().with_require_auth(true);
    let h = Harness::start(t, mount(protocol(config))).await;
    let (mut ws, ack) = h.connect().await;
    let connection_id: u64 = ack["payload"]["connection_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let id = ws
        .send("AUTHENTICATE", json!({"auth": {"token": "alice-key"}}))
        .await;
    let ok = ws.expect("AUTHENTICATE_SUCCESS").await;
    assert_eq!(ok["correlation_id"], id);
    assert_eq!(ok["payload"]["user_id"], "alice");
    assert_eq!(ok["payload"]["expires_at"], serde_json::Value::Null);
    assert_eq!(
        ok["payload"]["permissions"],
        json!(["billing:read", "chat:write"])
    );
    let id = switchboard::ConnectionId(connection_id);
    assert_eq!(h.hub.user_connections("alice"), vec![id]);
    assert_eq!(h.hub.info(id).unwrap().user.unwrap().as_str(), "alice");
    let conn = Connection::lookup(&h.hub, id).unwrap();
    assert_eq!(conn.state(), ConnectionState::Authenticated);
    assert_eq!(conn.user_id().unwrap().as_str(), "alice");

    // Now everything is allowed.
    ws.send("SUBSCRIBE", json!({"subscriptions": ["user:alice:inbox"]}))
        .await;
    ws.expect("SUBSCRIBE_SUCCESS").await;
}

async fn three_failed_authentications_close_with_4004(t: Transport) {
    let config = ProtocolConfig::default().with_require_auth(true);
    let h = Harness::start(t, mount(protocol(config))).await;
    let (mut ws, _) = h.connect().await;
    for left in [2, 1, 0] {
        let id = ws
            .send("AUTHENTICATE", json!({"auth": {"token": "wrong"}}))
            .await;
        let failure = ws.expect("AUTHENTICATE_FAILURE").await;
        assert_eq!(failure["correlation_id"], id);
        assert_eq!(failure["payload"]["code"], "auth_failed");
        assert_eq!(failure["payload"]["reason"], "Invalid token: unknown key");
        assert_eq!(failure["payload"]["attempts_left"], left);
    }
    ws.expect_disconnect(4004).await;
    // A missing token field is invalid_message, not an authentication failure.
    let (mut ws, _) = h.connect().await;
    let id = ws.send("AUTHENTICATE", json!({"auth": {}})).await;
    ws.expect_error("invalid_message", Some(&id)).await;
}

async fn the_auth_deadline_closes_with_4005(t: Transport) {
    let config = ProtocolConfig::default()
        .with_require_auth(true)
        .with_auth_deadline(Duration::from_millis(300));
    let h = Harness::start(t, mount(protocol(config))).await;
    let started = Instant::now();
    let (mut ws, _) = h.connect().await;
    // Pings do not postpone the deadline.
    ws.send("PING", json!({})).await;
    ws.expect("PONG").await;
    ws.expect_disconnect(4005).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(280) && took < Duration::from_secs(2),
        "{took:?}"
    );

    // Authenticating in time lifts the deadline.
    let mut ws = h.login("bob-key").await;
    ws.expect_silence(450).await;
}

async fn an_unavailable_authenticator_does_not_count_as_a_failure(t: Transport) {
    let config = ProtocolConfig::default().with_require_auth(true);
    let h = Harness::start(t, mount(protocol(config))).await;
    let (mut ws, _) = h.connect().await;
    for _ in 0..4 {
        ws.send("AUTHENTICATE", json!({"auth": {"token": "down"}}))
            .await;
        let failure = ws.expect("AUTHENTICATE_FAILURE").await;
        assert_eq!(failure["payload"]["reason"], "Authentication unavailable");
        assert_eq!(failure["payload"]["attempts_left"], 3);
    }
    ws.send("AUTHENTICATE", json!({"auth": {"token": "alice-key"}}))
        .await;
    ws.expect("AUTHENTICATE_SUCCESS").await;
}

async fn a_refresh_moves_the_expiry_and_warns_before_it(t: Transport) {
    let config = ProtocolConfig::default().with_session_warning(Duration::from_millis(500));
    let h = Harness::start(t, mount(protocol(config))).await;
    let (mut ws, ack) = h.connect().await;
    let id = switchboard::ConnectionId(
        ack["payload"]["connection_id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
    );
    let started = Instant::now();
    ws.send("AUTHENTICATE", json!({"auth": {"token": "exp:carol:800"}}))
        .await;
    let first = ws.expect("AUTHENTICATE_SUCCESS").await;
    let first_exp = first["payload"]["expires_at"].as_f64().unwrap();
    assert!(security::expires_at(&h.hub, id).is_some());

    // About 500 ms before the expiry: the warning.
    let warning = ws.expect("EVENT").await;
    assert_eq!(warning["payload"]["event"], "switchboard.session_expiring");
    assert_eq!(warning["payload"]["data"]["expires_at"], first_exp);
    let at = started.elapsed();
    assert!(
        at >= Duration::from_millis(250) && at < Duration::from_millis(700),
        "{at:?}"
    );

    let id2 = ws
        .send("AUTHENTICATE", json!({"auth": {"token": "exp:carol:5000"}}))
        .await;
    let refreshed = ws.expect("AUTHENTICATE_SUCCESS").await;
    assert_eq!(refreshed["correlation_id"], id2);
    assert_eq!(refreshed["payload"]["user_id"], "carol");
    assert!(refreshed["payload"]["expires_at"].as_f64().unwrap() > first_exp + 3.0);

    // Past the first expiry, still open.
    tokio::time::sleep(Duration::from_millis(900)).await;
    ws.send("PING", json!({})).await;
    ws.expect("PONG").await;
    let moved = security::expires_at(&h.hub, id).unwrap();
    assert!(moved > std::time::SystemTime::now() + Duration::from_secs(3));
    assert_eq!(h.hub.user_connections("carol"), vec![id]);
}

async fn a_refresh_for_another_user_fails(t: Transport) {
    let h = Harness::start(t, mount(protocol(ProtocolConfig::default()))).await;
    let mut ws = h.login("alice-key").await;
    ws.send("AUTHENTICATE", json!({"auth": {"token": "bob-key"}}))
        .await;
    let failure = ws.expect("AUTHENTICATE_FAILURE").await;
    assert_eq!(
        failure["payload"]["reason"],
        "A refresh must be for the same user"
    );
    assert_eq!(failure["payload"]["attempts_left"], 2);
    assert_eq!(h.hub.user_connections("alice").len(), 1);
    assert!(h.hub.user_connections("bob").is_empty());
    // Still alice.
    ws.send(
        "SUBSCRIBE",
        json!({"subscriptions": ["user:alice:x", "user:bob:x"]}),
    )
    .await;
    ws.expect("SUBSCRIBE_SUCCESS").await;
    assert_eq!(
        ws.expect("SUBSCRIBE_FAILURE").await["payload"]["code"],
        "forbidden"
    );
}

async fn an_expired_session_closes_with_4003(t: Transport) {
    let h = Harness::start(t, mount(protocol(ProtocolConfig::default()))).await;
    let (mut ws, _) = h.connect().await;
    ws.send("AUTHENTICATE", json!({"auth": {"token": "exp:dave:400"}}))
        .await;
    ws.expect("AUTHENTICATE_SUCCESS").await;
    // Less than the 30 s warning is left: the warning comes at once.
    let warning = ws.expect("EVENT").await;
    assert_eq!(warning["payload"]["event"], "switchboard.session_expiring");
    let frame = ws.expect_close(4003).await;
    assert_eq!(frame.reason, "token expired");
}

async fn disconnect_closes_with_1000(t: Transport) {
    let h = Harness::start(t, mount(protocol(ProtocolConfig::default()))).await;
    let (mut ws, _) = h.connect().await;
    ws.send("DISCONNECT", json!({"code": 1000, "reason": "bye"}))
        .await;
    ws.expect_close(1000).await;
    drop(ws);
    eventually(|| h.hub.connection_count() == 0).await;
}
