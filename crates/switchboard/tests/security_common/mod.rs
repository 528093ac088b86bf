//! Shared by the security tests: a route that counts handler calls and
//! reports what the handshake decided, token signing, and fixtures.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderMap, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use switchboard::security::Identity;
use switchboard::testing::TestRequest;
use switchboard::{
    App, Error, RouteConfig, ServerConfig, Switchboard, TestError, WebSocketUpgrade,
};

pub const SECRET: &str = "an HS256 test secret of 32+ bytes!";

pub const RSA_PRIVATE: &str = include_str!("../fixtures/rsa_private.pem");
pub const RSA_PUBLIC: &str = include_str!("../fixtures/rsa_public.pem");
pub const RSA2_PRIVATE: &str = include_str!("../fixtures/rsa2_private.pem");
pub const EC256_PRIVATE: &str = include_str!("../fixtures/ec256_private.pem");
pub const EC256_PUBLIC: &str = include_str!("../fixtures/ec256_public.pem");
pub const EC384_PRIVATE: &str = include_str!("../fixtures/ec384_private.pem");
pub const EC384_PUBLIC: &str = include_str!("../fixtures/ec384_public.pem");
pub const ED_PRIVATE: &str = include_str!("../fixtures/ed25519_private.pem");
pub const ED_PUBLIC: &str = include_str!("../fixtures/ed25519_public.pem");

/// Counts the times the handler body ran.
#[derive(Debug, Clone, Default)]
pub struct Calls(Arc<AtomicUsize>);

impl Calls {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    pub fn record(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// The handler every test route runs: counts the call, sends what the
/// handshake decided as JSON, then echoes until the client closes.
pub async fn whoami(
    calls: Calls,
    ws: WebSocketUpgrade,
    identity: Option<Identity>,
) -> Result<(), Error> {
    calls.record();
    let mut ws = ws.accept().await?;
    let request = ws.request();
    let report = json!({
        "user": identity.as_ref().map(|i| i.user_id().to_string()),
        "hub_user": request.user().map(ToString::to_string),
        "permissions": identity.as_ref().map(|i| i.permissions().collect::<Vec<_>>()),
        "admin": identity.as_ref().map(Identity::is_admin),
        "client_ip": request.client_ip().to_string(),
        "protocol": ws.protocol(),
        "id": ws.id().0,
    });
    ws.send_json(&report).await?;
    while let Some(message) = ws.recv().await? {
        ws.send(message).await?;
    }
    Ok(())
}

/// An app with `/ws` (configured by `route`) and `/ws/default` (the
/// server's defaults), both counting into the returned `Calls`.
pub fn app(server: ServerConfig, route: RouteConfig) -> (App, Calls) {
    let calls = Calls::default();
    let (a, b) = (calls.clone(), calls.clone());
    let app = Switchboard::new()
        .with_config(server)
        .route_with(
            "/ws",
            route,
            move |ws: WebSocketUpgrade, id: Option<Identity>| whoami(a.clone(), ws, id),
        )
        .route(
            "/ws/default",
            move |ws: WebSocketUpgrade, id: Option<Identity>| whoami(b.clone(), ws, id),
        )
        .into_app();
    (app, calls)
}

/// Connects and expects a refusal with exactly `status` and `body`;
/// returns the response headers.
pub async fn refused(request: TestRequest, status: StatusCode, body: &str) -> HeaderMap {
    match request.connect().await {
        Err(TestError::Rejected {
            status: got,
            reason,
            headers,
        }) => {
            assert_eq!((got, reason.as_str()), (status, body));
            headers
        }
        Ok(_) => panic!("expected {status} {body:?}, the handshake succeeded"),
        Err(e) => panic!("expected {status} {body:?}, got {e}"),
    }
}

/// Connects, expects success, and returns the handler's report and the socket.
pub async fn accepted(request: TestRequest) -> (Value, switchboard::TestSocket) {
    let mut ws = request
        .connect()
        .await
        .unwrap_or_else(|e| panic!("expected the handshake to succeed, got {e}"));
    let report: Value = ws.recv_json().await.expect("the handler's report");
    (report, ws)
}

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Claims for `sub`, expiring in an hour.
pub fn claims(sub: &str) -> Value {
    json!({ "sub": sub, "exp": now() + 3600 })
}

pub fn sign_with(header: &Header, claims: &Value, key: &EncodingKey) -> String {
    jsonwebtoken::encode(header, claims, key).expect("signing")
}

pub fn hs256(claims: &Value) -> String {
    sign_with(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
}

pub fn rs256(claims: &Value, kid: Option<&str>) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    sign_with(
        &header,
        claims,
        &EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap(),
    )
}

/// A JWT from raw header and payload JSON and a raw signature, for attacks.
pub fn raw_token(header: &Value, payload: &Value, signature: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.{}",
        b64.encode(header.to_string()),
        b64.encode(payload.to_string()),
        b64.encode(signature)
    )
}
