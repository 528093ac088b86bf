//! Origin checks: the first step, before anything else can spend resources.

mod security_common;

use http::StatusCode;
use security_common::*;
use switchboard::security::{OriginPolicy, Security};
use switchboard::{RouteConfig, ServerConfig, TestClient};

const HOST_ORIGIN: &str = "http://switchboard.test"; // The in-memory client's Host.

#[tokio::test]
async fn cross_origin_is_refused_by_default_with_403() {
    let (app, calls) = app(ServerConfig::default(), RouteConfig::default());
    let client = TestClient::new(app);
    for path in ["/ws", "/ws/default"] {
        let request = client.request(path).origin("https://evil.example");
        refused(request, StatusCode::FORBIDDEN, "Origin not allowed").await;
    }
    assert_eq!(calls.get(), 0);
}

#[tokio::test]
async fn same_origin_and_originless_clients_are_accepted_by_default() {
    let (app, calls) = app(ServerConfig::default(), RouteConfig::default());
    let client = TestClient::new(app);
    accepted(client.request("/ws").origin(HOST_ORIGIN)).await;
    accepted(client.request("/ws")).await;
    assert_eq!(calls.get(), 2);
}

#[tokio::test]
async fn a_missing_origin_can_be_refused() {
    let route = RouteConfig::default().with_security(Security::new().deny_missing_origin());
    let (app, calls) = app(ServerConfig::default(), route);
    let client = TestClient::new(app);
    refused(
        client.request("/ws"),
        StatusCode::FORBIDDEN,
        "Origin not allowed",
    )
    .await;
    assert_eq!(calls.get(), 0);
    accepted(client.request("/ws").origin(HOST_ORIGIN)).await;
}

#[tokio::test]
async fn allow_lists_accept_exact_origins_and_anchored_subdomains_only() {
    let security =
        Security::new().allow_origins(["https://app.example.com", "https://*.example.org"]);
    let (app, calls) = app(
        ServerConfig::default(),
        RouteConfig::default().with_security(security),
    );
    let client = TestClient::new(app);
    for good in [
        "https://app.example.com",
        "https://chat.example.org",
        "https://a.b.example.org",
    ] {
        accepted(client.request("/ws").origin(good)).await;
    }
    assert_eq!(calls.get(), 3);
    for bad in [
        "http://app.example.com",
        "https://app.example.com:8443",
        "https://app.example.com.evil.net",
        "https://evilapp.example.com",
        "https://example.org",
        "https://notexample.org",
        HOST_ORIGIN, // An allow-list replaces same-origin.
        "null",
    ] {
        refused(
            client.request("/ws").origin(bad),
            StatusCode::FORBIDDEN,
            "Origin not allowed",
        )
        .await;
    }
    assert_eq!(calls.get(), 3);
}

#[tokio::test]
async fn any_origin_when_asked() {
    let route = RouteConfig::default().with_security(Security::new().allow_any_origin());
    let (app, _) = app(ServerConfig::default(), route);
    accepted(
        TestClient::new(app)
            .request("/ws")
            .origin("https://anywhere.example"),
    )
    .await;
}

#[tokio::test]
async fn routes_without_their_own_security_use_the_servers() {
    let server = ServerConfig::default().with_security(
        Security::new().origins(OriginPolicy::allow_list(["https://app.example.com"]).unwrap()),
    );
    // `/ws` has its own settings for something else, and no security of its
    // own: it keeps the server's rules too.
    let route = RouteConfig::default().with_protocols(["chat"]);
    let (app, calls) = app(server, route);
    let client = TestClient::new(app);
    for path in ["/ws", "/ws/default"] {
        accepted(client.request(path).origin("https://app.example.com")).await;
        refused(
            client.request(path).origin(HOST_ORIGIN),
            StatusCode::FORBIDDEN,
            "Origin not allowed",
        )
        .await;
    }
    assert_eq!(calls.get(), 2);
}

#[tokio::test]
async fn several_origin_headers_are_refused() {
    let (app, calls) = app(ServerConfig::default(), RouteConfig::default());
    let request = TestClient::new(app)
        .request("/ws")
        .origin(HOST_ORIGIN)
        .origin(HOST_ORIGIN);
    refused(request, StatusCode::FORBIDDEN, "Origin not allowed").await;
    assert_eq!(calls.get(), 0);
}

#[tokio::test]
async fn a_host_the_server_does_not_answer_to_is_refused_with_421_before_the_origin() {
    // DNS rebinding: a page on evil.example made its name point here; the
    // browser sends Host: evil.example and an Origin that matches it.
    let hosts =
        switchboard::security::HostPolicy::allow_list(["switchboard.test", "*.example.com"])
            .unwrap();
    let (app, calls) = app(
        ServerConfig::default().with_allowed_hosts(hosts),
        RouteConfig::default(),
    );
    let client = TestClient::new(app);
    let rebinding = client
        .request("/ws")
        .header("host", "evil.example:8080")
        .origin("http://evil.example:8080");
    refused(
        rebinding,
        StatusCode::MISDIRECTED_REQUEST,
        "Host not allowed",
    )
    .await;
    accepted(client.request("/ws").header("host", "app.example.com")).await;
    accepted(client.request("/ws")).await;
    assert_eq!(calls.get(), 2);
}
