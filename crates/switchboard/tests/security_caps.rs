//! Caps on open connections per client address and per user.

mod security_common;

use std::time::Duration;

use http::StatusCode;
use security_common::*;
use switchboard::security::{IsAuthenticated, JwtAuth, Security};
use switchboard::testing::TestRequest;
use switchboard::{CloseCode, RouteConfig, ServerConfig, TestClient, TestSocket};

async fn close(ws: TestSocket) {
    ws.close(CloseCode::Normal, "").await.unwrap();
}

/// Retries `request()` until it is accepted: a closed connection gives its
/// place back when the server has finished with it.
async fn accepted_soon(request: impl Fn() -> TestRequest) -> TestSocket {
    for _ in 0..100 {
        if let Ok(mut ws) = request().connect().await {
            ws.recv_json::<serde_json::Value>().await.unwrap();
            return ws;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the cap was not released");
}

#[tokio::test]
async fn per_ip_cap_refuses_with_503_until_a_connection_closes() {
    let route = RouteConfig::default().with_security(Security::new().max_connections_per_ip(2));
    let (app, calls) = app(ServerConfig::default(), route);
    let client = TestClient::new(app);
    let me = addr("198.51.100.1:1");
    let (_, a) = accepted(client.request("/ws").client_addr(me)).await;
    let (_, _b) = accepted(client.request("/ws").client_addr(me)).await;
    let headers = refused(
        client.request("/ws").client_addr(me),
        StatusCode::SERVICE_UNAVAILABLE,
        "Too many connections from this address",
    )
    .await;
    assert_eq!(headers["retry-after"], "5");
    assert_eq!(calls.get(), 2);
    // Other addresses are not affected.
    let (_, _c) = accepted(client.request("/ws").client_addr(addr("198.51.100.2:1"))).await;
    close(a).await;
    let _d = accepted_soon(|| client.request("/ws").client_addr(me)).await;
    assert_eq!(calls.get(), 4);
}

#[tokio::test]
async fn per_user_cap_counts_authenticated_users_only() {
    let security = Security::new()
        .authenticate(JwtAuth::hs256(SECRET))
        .max_connections_per_user(1);
    let (app, calls) = app(
        ServerConfig::default(),
        RouteConfig::default().with_security(security),
    );
    let client = TestClient::new(app);
    let alice = hs256(&claims("alice"));
    let (report, first) = accepted(client.request("/ws").bearer(&alice)).await;
    assert_eq!(report["user"], "alice");
    let headers = refused(
        client.request("/ws").bearer(&alice),
        StatusCode::SERVICE_UNAVAILABLE,
        "Too many connections for this user",
    )
    .await;
    assert_eq!(headers["retry-after"], "5");
    // Another user, and anonymous clients, are not affected.
    let (_, _bob) = accepted(client.request("/ws").bearer(&hs256(&claims("bob")))).await;
    let (_, _anon1) = accepted(client.request("/ws")).await;
    let (_, _anon2) = accepted(client.request("/ws")).await;
    assert_eq!(calls.get(), 4);
    close(first).await;
    let _again = accepted_soon(|| client.request("/ws").bearer(&alice)).await;
}

#[tokio::test]
async fn server_wide_caps_count_across_routes() {
    let server = ServerConfig::default()
        .with_max_connections_per_ip(1)
        .with_max_connections_per_user(1)
        .with_security(Security::new().authenticate(JwtAuth::hs256(SECRET)));
    let route =
        RouteConfig::default().with_security(Security::new().authenticate(JwtAuth::hs256(SECRET)));
    let (app, calls) = app(server, route);
    let client = TestClient::new(app);
    let (_, _ws) = accepted(client.request("/ws").client_addr(addr("198.51.100.1:1"))).await;
    refused(
        client
            .request("/ws/default")
            .client_addr(addr("198.51.100.1:2")),
        StatusCode::SERVICE_UNAVAILABLE,
        "Too many connections from this address",
    )
    .await;
    let carol = hs256(&claims("carol"));
    let (_, _ws) = accepted(
        client
            .request("/ws/default")
            .client_addr(addr("198.51.100.2:1"))
            .bearer(&carol),
    )
    .await;
    refused(
        client
            .request("/ws")
            .client_addr(addr("198.51.100.3:1"))
            .bearer(&carol),
        StatusCode::SERVICE_UNAVAILABLE,
        "Too many connections for this user",
    )
    .await;
    assert_eq!(calls.get(), 2);
}

#[tokio::test]
async fn the_per_ip_cap_comes_before_authentication_and_the_per_user_cap_after() {
    let security = Security::new()
        .authenticate(JwtAuth::hs256(SECRET))
        .guard(IsAuthenticated)
        .max_connections_per_ip(1)
        .max_connections_per_user(1);
    let (app, calls) = app(
        ServerConfig::default(),
        RouteConfig::default().with_security(security),
    );
    let client = TestClient::new(app);
    let me = addr("198.51.100.1:1");
    let (_, _ws) = accepted(
        client
            .request("/ws")
            .client_addr(me)
            .bearer(&hs256(&claims("dave"))),
    )
    .await;
    // At the address cap, even a bad token is not looked at.
    refused(
        client.request("/ws").client_addr(me).bearer("garbage"),
        StatusCode::SERVICE_UNAVAILABLE,
        "Too many connections from this address",
    )
    .await;
    // From elsewhere, the same user is at his cap; a bad token is refused
    // by authentication before the user cap is reached.
    let elsewhere = addr("198.51.100.2:1");
    refused(
        client
            .request("/ws")
            .client_addr(elsewhere)
            .bearer("garbage"),
        StatusCode::UNAUTHORIZED,
        "Invalid token: malformed token",
    )
    .await;
    refused(
        client
            .request("/ws")
            .client_addr(elsewhere)
            .bearer(&hs256(&claims("dave"))),
        StatusCode::SERVICE_UNAVAILABLE,
        "Too many connections for this user",
    )
    .await;
    assert_eq!(calls.get(), 1);
}

#[tokio::test]
async fn the_counters_belong_to_the_app_and_a_copied_config_keeps_every_limit() {
    // Configuration is plain data: the cap's counters live in the app
    // built from it, so a copy of the config is an independent template
    // (it used to carry an empty `OnceLock` of counters that a clone reset).
    let server = ServerConfig::default().with_max_connections_per_ip(1);
    let (first, _) = app(server, RouteConfig::default());
    let me = addr("198.51.100.1:1");
    let (_, _held) = accepted(
        TestClient::new(first.clone())
            .request("/ws")
            .client_addr(me),
    )
    .await;

    // A clone of the app is the same app: the same counters.
    refused(
        TestClient::new(first.clone())
            .request("/ws/default")
            .client_addr(me),
        StatusCode::SERVICE_UNAVAILABLE,
        "Too many connections from this address",
    )
    .await;

    // An app built from a copy of the running app's config has the same
    // limit and counts for itself.
    let (second, _) = app(first.config().clone(), RouteConfig::default());
    let second = TestClient::new(second);
    let (_, _other) = accepted(second.request("/ws").client_addr(me)).await;
    refused(
        second.request("/ws/default").client_addr(me),
        StatusCode::SERVICE_UNAVAILABLE,
        "Too many connections from this address",
    )
    .await;
    assert_eq!(first.config().max_connections_per_ip, Some(1));
}
