//! Connections close with 4003 when their token expires, unless refreshed.

mod security_common;

use std::time::{Duration, Instant, SystemTime};

use security_common::*;
use serde_json::json;
use switchboard::security::{self, ApiKeyAuth, Identity, JwtAuth, Security};
use switchboard::{ConnectionId, RouteConfig, ServerConfig, TestClient, TestError, codes};

fn jwt_app() -> (switchboard::App, Calls) {
    let jwt = JwtAuth::hs256(SECRET).leeway(Duration::ZERO);
    app(
        ServerConfig::default(),
        RouteConfig::default().with_security(Security::new().authenticate(jwt)),
    )
}

#[tokio::test]
async fn an_expiring_token_closes_the_connection_with_4003() {
    let (app, _) = jwt_app();
    let hub = app.hub().clone();
    let token = hs256(&json!({ "sub": "kate", "exp": now() + 1 }));
    let started = Instant::now();
    let (report, mut ws) = accepted(TestClient::new(app).request("/ws").bearer(&token)).await;
    let id = ConnectionId(report["id"].as_u64().unwrap());
    assert!(security::expires_at(&hub, id).is_some());
    // Still usable before expiry.
    ws.send_text("ping").await.unwrap();
    assert_eq!(ws.recv_text().await.unwrap(), "ping");
    match ws.recv().await {
        Err(TestError::Closed(Some(frame))) => {
            assert_eq!(frame.code, codes::TOKEN_EXPIRED);
            assert_eq!(frame.reason, "token expired");
        }
        other => panic!("expected a 4003 close, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_refresh_pushes_the_expiry_back() {
    let (app, _) = jwt_app();
    let hub = app.hub().clone();
    let token = hs256(&json!({ "sub": "leo", "exp": now() + 1 }));
    let (report, mut ws) = accepted(TestClient::new(app).request("/ws").bearer(&token)).await;
    let id = ConnectionId(report["id"].as_u64().unwrap());
    let new_expiry = SystemTime::now() + Duration::from_millis(2500);
    assert!(security::refresh(&hub, id, Some(new_expiry)));
    assert_eq!(security::expires_at(&hub, id), Some(new_expiry));
    // Past the token's own exp, the connection is still open...
    tokio::time::sleep(Duration::from_millis(2100)).await;
    ws.send_text("still here").await.unwrap();
    assert_eq!(ws.recv_text().await.unwrap(), "still here");
    // ...until the refreshed time.
    match ws.recv().await {
        Err(TestError::Closed(Some(frame))) => assert_eq!(frame.code, codes::TOKEN_EXPIRED),
        other => panic!("expected a 4003 close, got {other:?}"),
    }
}

#[tokio::test]
async fn refreshing_to_never_cancels_the_close_and_expiry_can_be_added_later() {
    let keys = ApiKeyAuth::new().key("k-static-key-0001", Identity::new("svc"));
    let route = RouteConfig::default().with_security(
        Security::new()
            .authenticate(JwtAuth::hs256(SECRET).leeway(Duration::ZERO))
            .authenticate(keys),
    );
    let (app, _) = app(ServerConfig::default(), route);
    let hub = app.hub().clone();
    let client = TestClient::new(app).with_timeout(Duration::from_millis(1500));

    let token = hs256(&json!({ "sub": "mia", "exp": now() + 1 }));
    let (report, mut jwt_ws) = accepted(client.request("/ws").bearer(&token)).await;
    let jwt_id = ConnectionId(report["id"].as_u64().unwrap());
    assert!(security::refresh(&hub, jwt_id, None));
    assert_eq!(security::expires_at(&hub, jwt_id), None);

    // An API key does not expire, until told to.
    let (report, mut key_ws) = accepted(client.request("/ws").bearer("k-static-key-0001")).await;
    let key_id = ConnectionId(report["id"].as_u64().unwrap());
    assert_eq!(security::expires_at(&hub, key_id), None);
    assert!(security::refresh(
        &hub,
        key_id,
        Some(SystemTime::now() + Duration::from_millis(300))
    ));

    match key_ws.recv().await {
        Err(TestError::Closed(Some(frame))) => assert_eq!(frame.code, codes::TOKEN_EXPIRED),
        other => panic!("expected a 4003 close, got {other:?}"),
    }
    // The JWT connection outlives its token's exp.
    assert!(matches!(jwt_ws.recv().await, Err(TestError::Timeout)));
    jwt_ws.send_text("alive").await.unwrap();
    assert_eq!(jwt_ws.recv_text().await.unwrap(), "alive");
    assert!(!security::refresh(&hub, ConnectionId(u64::MAX), None));
}
