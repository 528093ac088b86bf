//! Authentication backends, token sources, guards, and what handlers see.

mod security_common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::StatusCode;
use security_common::*;
use serde_json::json;
use switchboard::security::{
    ApiKeyAuth, AuthError, AuthRequest, Authenticator, GuardContext, HasPermission, Identity,
    IsAdmin, IsAuthenticated, JwtAuth, Security, TokenSource, permission_denied,
};
use switchboard::{
    Error, Hub, RouteConfig, ServerConfig, Switchboard, TestClient, WebSocketUpgrade,
};

fn secured(security: Security) -> (switchboard::App, Calls) {
    app(
        ServerConfig::default(),
        RouteConfig::default().with_security(security),
    )
}

#[tokio::test]
async fn a_jwt_identity_reaches_the_handler_and_the_hub() {
    let (app, calls) = secured(Security::new().authenticate(JwtAuth::hs256(SECRET)));
    let hub = app.hub().clone();
    let token = hs256(&json!({
        "sub": "alice",
        "exp": now() + 3600,
        "permissions": ["chat:read"],
        "scope": "chat:write  rooms:list",
        "admin": true,
    }));
    let (report, _ws) = accepted(TestClient::new(app).request("/ws").bearer(&token)).await;
    assert_eq!(report["user"], "alice");
    assert_eq!(report["hub_user"], "alice");
    assert_eq!(
        report["permissions"],
        json!(["chat:read", "chat:write", "rooms:list"])
    );
    assert_eq!(report["admin"], true);
    let id = switchboard::ConnectionId(report["id"].as_u64().unwrap());
    assert_eq!(hub.user_connections("alice"), vec![id]);
    assert_eq!(calls.get(), 1);
}

#[tokio::test]
async fn without_a_guard_a_client_without_token_is_anonymous() {
    let (app, _) = secured(Security::new().authenticate(JwtAuth::hs256(SECRET)));
    let (report, _ws) = accepted(TestClient::new(app).request("/ws")).await;
    assert_eq!(report["user"], serde_json::Value::Null);
    assert_eq!(report["hub_user"], serde_json::Value::Null);
}

#[tokio::test]
async fn a_missing_token_is_401_authentication_required() {
    let (app, calls) = secured(
        Security::new()
            .authenticate(JwtAuth::hs256(SECRET))
            .guard(IsAuthenticated),
    );
    let headers = refused(
        TestClient::new(app).request("/ws"),
        StatusCode::UNAUTHORIZED,
        "Authentication required",
    )
    .await;
    assert_eq!(headers["www-authenticate"], "Bearer");
    assert_eq!(calls.get(), 0);
}

#[tokio::test]
async fn an_invalid_token_is_401_even_without_a_guard() {
    let (app, calls) = secured(Security::new().authenticate(JwtAuth::hs256(SECRET)));
    let headers = refused(
        TestClient::new(app).request("/ws").bearer("not-a-jwt"),
        StatusCode::UNAUTHORIZED,
        "Invalid token: malformed token",
    )
    .await;
    assert_eq!(
        headers["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    assert_eq!(calls.get(), 0);
}

#[tokio::test]
async fn tokens_are_read_from_the_configured_sources_only() {
    let security = Security::new()
        .authenticate(JwtAuth::hs256(SECRET))
        .tokens_from([
            TokenSource::query("access_token"),
            TokenSource::cookie("sb_token"),
            TokenSource::protocol("bearer."),
        ])
        .guard(IsAuthenticated);
    let route = RouteConfig::default()
        .with_protocols(["switchboard"])
        .with_security(security);
    let (app, calls) = app(ServerConfig::default(), route);
    let client = TestClient::new(app);
    let token = hs256(&claims("erin"));

    let (report, _ws) = accepted(client.request("/ws").query("access_token", &token)).await;
    assert_eq!(report["user"], "erin");
    let (report, _ws) = accepted(
        client
            .request("/ws")
            .cookie("theme", "dark")
            .cookie("sb_token", &token),
    )
    .await;
    assert_eq!(report["user"], "erin");

    // The browser convention: a real subprotocol plus a token entry. The
    // server answers with the real one, never with the token.
    let (report, ws) = accepted(
        client
            .request("/ws")
            .protocol("switchboard")
            .protocol(&format!("bearer.{token}")),
    )
    .await;
    assert_eq!(report["user"], "erin");
    assert_eq!(report["protocol"], "switchboard");
    assert_eq!(ws.protocol(), Some("switchboard"));

    // Not a configured source: anonymous, so the guard refuses.
    refused(
        client.request("/ws").bearer(&token),
        StatusCode::UNAUTHORIZED,
        "Authentication required",
    )
    .await;
    assert_eq!(calls.get(), 3);
}

#[tokio::test]
async fn api_keys_map_to_identities() {
    let keys = ApiKeyAuth::new()
        .key(
            "k-billing-0123456789",
            Identity::new("billing").with_permissions(["publish"]),
        )
        .key("k-ops-9876543210", Identity::new("ops").with_admin(true));
    let (app, calls) = secured(Security::new().authenticate(keys).guard(IsAuthenticated));
    let client = TestClient::new(app);
    let (report, _ws) = accepted(client.request("/ws").bearer("k-ops-9876543210")).await;
    assert_eq!(
        (report["user"].as_str(), report["admin"].as_bool()),
        (Some("ops"), Some(true))
    );
    let (report, _ws) = accepted(client.request("/ws").bearer("k-billing-0123456789")).await;
    assert_eq!(report["permissions"], json!(["publish"]));
    for wrong in [
        "k-billing-012345678",
        "k-billing-0123456789x",
        "K-OPS-9876543210",
    ] {
        refused(
            client.request("/ws").bearer(wrong),
            StatusCode::UNAUTHORIZED,
            "Invalid token: unknown API key",
        )
        .await;
    }
    assert_eq!(calls.get(), 2);
}

#[tokio::test]
async fn several_authenticators_are_tried_in_order() {
    let security = Security::new()
        .authenticate(JwtAuth::hs256(SECRET))
        .authenticate(ApiKeyAuth::new().key("k-service-abcdef", Identity::new("service")))
        .guard(IsAuthenticated);
    let (app, _) = secured(security);
    let client = TestClient::new(app);
    let (report, _ws) = accepted(client.request("/ws").bearer(&hs256(&claims("frank")))).await;
    assert_eq!(report["user"], "frank");
    let (report, _ws) = accepted(client.request("/ws").bearer("k-service-abcdef")).await;
    assert_eq!(report["user"], "service");
    // Neither: the first refusal's reason.
    refused(
        client.request("/ws").bearer("k-nope"),
        StatusCode::UNAUTHORIZED,
        "Invalid token: malformed token",
    )
    .await;
}

/// A custom backend: looks the token up asynchronously.
struct Sessions {
    down: bool,
    delay: Duration,
}

impl Authenticator for Sessions {
    async fn authenticate(&self, request: &AuthRequest<'_>) -> Result<Option<Identity>, AuthError> {
        tokio::time::sleep(self.delay).await;
        if self.down {
            return Err(AuthError::Unavailable("session store down".into()));
        }
        match request.token() {
            None => Ok(None),
            Some("session-grace") => Ok(Some(
                Identity::new("grace").with_permissions(["chat:write"]),
            )),
            Some(_) => Err(AuthError::invalid("unknown session")),
        }
    }
}

#[tokio::test]
async fn custom_authenticators_run_asynchronously() {
    let sessions = Sessions {
        down: false,
        delay: Duration::from_millis(1),
    };
    let (app, calls) = secured(
        Security::new()
            .authenticate(sessions)
            .guard(IsAuthenticated),
    );
    let client = TestClient::new(app);
    let (report, _ws) = accepted(client.request("/ws").bearer("session-grace")).await;
    assert_eq!(report["user"], "grace");
    refused(
        client.request("/ws").bearer("session-mallory"),
        StatusCode::UNAUTHORIZED,
        "Invalid token: unknown session",
    )
    .await;
    assert_eq!(calls.get(), 1);
}

#[tokio::test]
async fn an_unavailable_or_slow_backend_is_503() {
    let down = Sessions {
        down: true,
        delay: Duration::ZERO,
    };
    let (app, calls) = secured(Security::new().authenticate(down));
    let headers = refused(
        TestClient::new(app).request("/ws").bearer("session-grace"),
        StatusCode::SERVICE_UNAVAILABLE,
        "Authentication unavailable",
    )
    .await;
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(calls.get(), 0);

    let slow = Sessions {
        down: false,
        delay: Duration::from_secs(30),
    };
    let security = Security::new()
        .authenticate(slow)
        .auth_timeout(Duration::from_millis(50));
    let (app, calls) = secured(security);
    refused(
        TestClient::new(app).request("/ws").bearer("session-grace"),
        StatusCode::SERVICE_UNAVAILABLE,
        "Authentication unavailable",
    )
    .await;
    assert_eq!(calls.get(), 0);
}

#[tokio::test]
async fn is_admin_reads_the_flag_or_a_configured_claim() {
    let jwt = JwtAuth::hs256(SECRET);
    let (app, calls) = secured(
        Security::new()
            .authenticate(jwt.clone())
            .guard(IsAdmin::default()),
    );
    let client = TestClient::new(app);
    let admin = hs256(&json!({ "sub": "root", "exp": now() + 60, "admin": true }));
    accepted(client.request("/ws").bearer(&admin)).await;
    refused(
        client.request("/ws").bearer(&hs256(&claims("user"))),
        StatusCode::FORBIDDEN,
        "Permission denied",
    )
    .await;
    refused(
        client.request("/ws"),
        StatusCode::UNAUTHORIZED,
        "Authentication required",
    )
    .await;
    assert_eq!(calls.get(), 1);

    // Which claim counts is configurable: on the authenticator...
    let roles = jwt.clone().admin_claim("roles", "admin");
    let (app, _) = secured(
        Security::new()
            .authenticate(roles)
            .guard(IsAdmin::default()),
    );
    let client = TestClient::new(app);
    let with_role = hs256(&json!({ "sub": "ann", "exp": now() + 60, "roles": ["staff", "admin"] }));
    accepted(client.request("/ws").bearer(&with_role)).await;
    refused(
        client.request("/ws").bearer(&admin),
        StatusCode::FORBIDDEN,
        "Permission denied",
    )
    .await;
    // ...or on the guard.
    let (app, _) = secured(
        Security::new()
            .authenticate(jwt)
            .guard(IsAdmin::claim("roles", "admin")),
    );
    accepted(TestClient::new(app).request("/ws").bearer(&with_role)).await;
}

#[tokio::test]
async fn has_permission_reads_the_permissions_array_and_the_scope() {
    let (app, calls) = secured(
        Security::new()
            .authenticate(JwtAuth::hs256(SECRET))
            .guard(HasPermission("chat:write")),
    );
    let client = TestClient::new(app);
    let listed = hs256(&json!({ "sub": "a", "exp": now() + 60, "permissions": ["chat:write"] }));
    let scoped = hs256(&json!({ "sub": "b", "exp": now() + 60, "scope": "chat:read chat:write" }));
    let neither =
        hs256(&json!({ "sub": "c", "exp": now() + 60, "scope": "chat:read chat:writer" }));
    accepted(client.request("/ws").bearer(&listed)).await;
    accepted(client.request("/ws").bearer(&scoped)).await;
    refused(
        client.request("/ws").bearer(&neither),
        StatusCode::FORBIDDEN,
        "Permission denied",
    )
    .await;
    refused(
        client.request("/ws"),
        StatusCode::UNAUTHORIZED,
        "Authentication required",
    )
    .await;
    assert_eq!(calls.get(), 2);
}

#[tokio::test]
async fn custom_guards_are_closures_over_the_identity_and_request() {
    // Users may only open their own inbox.
    let calls = Calls::default();
    let counted = calls.clone();
    let security =
        Security::new()
            .authenticate(JwtAuth::hs256(SECRET))
            .guard(|cx: &GuardContext<'_>| {
                let identity = cx.require_identity()?;
                match cx.request().path_param("user") {
                    Some(user) if user == identity.user_id().as_str() => Ok(()),
                    _ => Err(permission_denied()),
                }
            });
    let app = Switchboard::new().route_with(
        "/ws/inbox/{user}",
        RouteConfig::default().with_security(security),
        move |ws: WebSocketUpgrade, id: Option<Identity>| whoami(counted.clone(), ws, id),
    );
    let client = TestClient::new(app);
    let token = hs256(&claims("gina"));
    accepted(client.request("/ws/inbox/gina").bearer(&token)).await;
    refused(
        client.request("/ws/inbox/hank").bearer(&token),
        StatusCode::FORBIDDEN,
        "Permission denied",
    )
    .await;
    refused(
        client.request("/ws/inbox/gina"),
        StatusCode::UNAUTHORIZED,
        "Authentication required",
    )
    .await;
    assert_eq!(calls.get(), 1);
}

#[tokio::test]
async fn the_identity_extractor_refuses_anonymous_clients() {
    let calls = Calls::default();
    let counted = calls.clone();
    let handler = move |ws: WebSocketUpgrade, identity: Identity, hub: Hub| {
        let counted = counted.clone();
        async move {
            counted.record();
            let ws = ws.accept().await?;
            assert_eq!(
                hub.info(ws.id()).unwrap().user.unwrap().as_str(),
                identity.user_id().as_str()
            );
            ws.send_text(identity.user_id().as_str()).await?;
            Ok::<(), Error>(())
        }
    };
    let security = Security::new().authenticate(JwtAuth::hs256(SECRET));
    let app = Switchboard::new().route_with(
        "/ws",
        RouteConfig::default().with_security(security),
        handler,
    );
    let client = TestClient::new(app);
    refused(
        client.request("/ws"),
        StatusCode::UNAUTHORIZED,
        "Authentication required",
    )
    .await;
    assert_eq!(calls.get(), 0);
    let mut ws = client
        .request("/ws")
        .bearer(&hs256(&claims("ivy")))
        .connect()
        .await
        .unwrap();
    assert_eq!(ws.recv_text().await.unwrap(), "ivy");
    assert_eq!(calls.get(), 1);
}

/// Collects everything logged, at every level.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn query_tokens_never_reach_the_logs() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);

    let security = Security::new()
        .authenticate(JwtAuth::hs256(SECRET))
        .tokens_from([TokenSource::query("token")])
        .guard(IsAuthenticated);
    let (app, _) = secured(security);
    let client = TestClient::new(app);
    let good = hs256(&claims("judy"));
    let expired = hs256(&json!({ "sub": "judy", "exp": now() - 3600 }));
    let (_, ws) = accepted(client.request("/ws").query("token", &good)).await;
    ws.close(switchboard::CloseCode::Normal, "").await.unwrap();
    refused(
        client.request("/ws").query("token", &expired),
        StatusCode::UNAUTHORIZED,
        "Invalid token: token expired",
    )
    .await;
    refused(
        client.request("/ws").query("token", "secret-garbage-1234"),
        StatusCode::UNAUTHORIZED,
        "Invalid token: malformed token",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("handshake refused"),
        "nothing was logged:\n{logs}"
    );
    for secret in [
        good.as_str(),
        expired.as_str(),
        "secret-garbage-1234",
        "token=",
    ] {
        assert!(!logs.contains(secret), "{secret:?} was logged:\n{logs}");
    }
}

#[tokio::test]
async fn request_debug_output_redacts_credentials() {
    let handler = |ws: WebSocketUpgrade| async move {
        let ws = ws.accept().await?;
        ws.send_text(format!("{:?}", ws.request())).await?;
        Ok::<(), Error>(())
    };
    let route = RouteConfig::default().with_protocols(["switchboard"]);
    let app = Switchboard::new().route_with("/ws", route, handler);
    let mut ws = TestClient::new(app)
        .request("/ws")
        .query("token", "query-secret")
        .bearer("header-secret")
        .cookie("sb", "cookie-secret")
        .protocol("switchboard")
        .protocol("bearer.protocol-secret")
        .header("x-trace", "visible")
        .connect()
        .await
        .unwrap();
    let debug = ws.recv_text().await.unwrap().to_string();
    assert!(
        debug.contains("[redacted]") && debug.contains("visible"),
        "{debug}"
    );
    for secret in [
        "query-secret",
        "header-secret",
        "cookie-secret",
        "protocol-secret",
    ] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
}
