//! Shared by the structured-protocol tests: an app with the protocol at
//! `/ws`, a test authenticator, both transports (in memory and TCP), and a
//! JSON client that reads envelopes.
#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use switchboard::protocol::{ChannelRules, ProtocolConfig, StructuredProtocol};
use switchboard::security::{AuthError, AuthRequest, Authenticator, Identity, Security};
use switchboard::{
    CloseCode, CloseFrame, Hub, RouteConfig, Switchboard, TestClient, TestError, TestSocket,
};

/// Tokens: `alice-key`, `bob-key`, `admin-key` (never expire);
/// `exp:<user>:<ms>` (expires in `<ms>` ms); `down` (the identity service
/// is unavailable); anything else is invalid.
#[derive(Debug, Clone, Copy)]
pub struct TestAuth;

impl Authenticator for TestAuth {
    async fn authenticate(&self, request: &AuthRequest<'_>) -> Result<Option<Identity>, AuthError> {
        let Some(token) = request.token() else {
            return Ok(None);
        };
        match token {
            "alice-key" => Ok(Some(
                Identity::new("alice").with_permissions(["chat:write", "billing:read"]),
            )),
            "bob-key" => Ok(Some(Identity::new("bob"))),
            "admin-key" => Ok(Some(Identity::new("root").with_admin(true))),
            "down" => Err(AuthError::Unavailable("identity service down".into())),
            _ => match token.strip_prefix("exp:").and_then(|r| r.split_once(':')) {
                Some((user, ms)) => {
                    let ms: u64 = ms.parse().map_err(|_| AuthError::invalid("bad expiry"))?;
                    let at = SystemTime::now() + Duration::from_millis(ms);
                    Ok(Some(Identity::new(user).with_expiry(at)))
                }
                None => Err(AuthError::invalid("unknown key")),
            },
        }
    }
}

/// The security every test route uses: any origin, [`TestAuth`].
pub fn security() -> Security {
    Security::new().allow_any_origin().authenticate(TestAuth)
}

/// The protocol with `config` and the default rules.
pub fn protocol(config: ProtocolConfig) -> StructuredProtocol {
    StructuredProtocol::new(config).channels(ChannelRules::default())
}

/// `protocol` mounted at `/ws` with [`security`].
pub fn mount(protocol: StructuredProtocol) -> Switchboard {
    protocol.route(
        Switchboard::new(),
        "/ws",
        RouteConfig::default().with_security(security()),
    )
}

/// Where the test client connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Memory,
    Tcp,
}

/// A running app and a client for it.
#[derive(Debug)]
pub struct Harness {
    pub client: TestClient,
    pub hub: Hub,
}

impl Harness {
    pub async fn start(transport: Transport, app: Switchboard) -> Self {
        Self::start_with_hub(transport, app, Hub::new()).await
    }

    /// Like [`Harness::start`], with the app on `hub` (a cluster's).
    pub async fn start_with_hub(transport: Transport, app: Switchboard, hub: Hub) -> Self {
        let app = app.with_hub(hub.clone());
        let client = match transport {
            Transport::Memory => TestClient::new(app),
            Transport::Tcp => {
                let server = app.bind("127.0.0.1:0").await.expect("bind loopback");
                let addr = server.local_addr();
                tokio::spawn(server.run());
                TestClient::tcp(addr)
            }
        };
        Self { client, hub }
    }

    /// Connects anonymously and reads the `CONNECT_ACK`.
    pub async fn connect(&self) -> (Client, Value) {
        self.connect_with(None).await
    }

    /// Connects with `Authorization: Bearer <token>` (if any) and reads
    /// the `CONNECT_ACK`.
    pub async fn connect_with(&self, token: Option<&str>) -> (Client, Value) {
        let mut request = self.client.request("/ws").protocol("switchboard.v1");
        if let Some(token) = token {
            request = request.bearer(token);
        }
        let socket = request.connect().await.expect("handshake");
        assert_eq!(socket.protocol(), Some("switchboard.v1"));
        let mut client = Client { socket, next: 0 };
        let ack = client.expect("CONNECT_ACK").await;
        (client, ack)
    }

    /// Connects and authenticates with `token` in an `AUTHENTICATE`.
    pub async fn login(&self, token: &str) -> Client {
        let (mut client, _) = self.connect().await;
        let id = client
            .send("AUTHENTICATE", json!({"auth": {"token": token}}))
            .await;
        let success = client.expect("AUTHENTICATE_SUCCESS").await;
        assert_eq!(success["correlation_id"], id);
        client
    }
}

/// A client speaking the protocol over a test socket.
#[derive(Debug)]
pub struct Client {
    pub socket: TestSocket,
    next: u64,
}

impl Client {
    /// Sends `{type, id, payload}`; returns the id.
    pub async fn send(&mut self, kind: &str, payload: Value) -> String {
        self.next += 1;
        let id = format!("c{}", self.next);
        let message = json!({"type": kind, "id": id, "payload": payload});
        self.socket.send_json(&message).await.expect("send");
        id
    }

    /// Sends raw text.
    pub async fn send_text(&mut self, text: &str) {
        self.socket.send_text(text).await.expect("send");
    }

    /// The next envelope, checked for the fields every server message has.
    pub async fn recv(&mut self) -> Value {
        let text = match self.socket.recv_text().await {
            Ok(text) => text,
            Err(e) => panic!("expected a message, got {e:?}"),
        };
        let value: Value = serde_json::from_str(&text).expect("JSON from the server");
        let id = value["id"]
            .as_str()
            .expect("every server message has an id");
        assert!(uuid::Uuid::parse_str(id).is_ok(), "id {id} is a UUID");
        assert!(
            value["timestamp"].as_f64().is_some_and(|t| t > 1.7e9),
            "{value}"
        );
        value
    }

    /// The next envelope, which must have type `kind`.
    pub async fn expect(&mut self, kind: &str) -> Value {
        let value = self.recv().await;
        assert_eq!(value["type"], kind, "{value}");
        value
    }

    /// The next envelope, skipping server `PING`s (unanswered).
    pub async fn recv_skipping_pings(&mut self) -> Value {
        loop {
            let value = self.recv().await;
            if value["type"] != "PING" {
                return value;
            }
        }
    }

    /// An `ERROR` with `code`, answering `correlation`.
    pub async fn expect_error(&mut self, code: &str, correlation: Option<&str>) -> Value {
        let error = self.expect("ERROR").await;
        assert_eq!(error["payload"]["code"], code, "{error}");
        assert_eq!(error["correlation_id"].as_str(), correlation, "{error}");
        assert!(error["payload"]["message"].is_string());
        error
    }

    /// `DISCONNECT {code}` and then the close frame with `code`.
    pub async fn expect_disconnect(&mut self, code: u16) {
        let disconnect = self.recv_skipping_pings().await;
        assert_eq!(disconnect["type"], "DISCONNECT", "{disconnect}");
        assert_eq!(disconnect["payload"]["code"], code);
        self.expect_close(code).await;
    }

    /// The server's close frame, with `code` (data messages before it are an error).
    pub async fn expect_close(&mut self, code: u16) -> CloseFrame {
        match self.socket.recv().await {
            Err(TestError::Closed(Some(frame))) => {
                assert_eq!(frame.code, CloseCode::from(code), "{frame:?}");
                frame
            }
            other => panic!("expected a {code} close, got {other:?}"),
        }
    }

    /// Nothing arrives for `ms` milliseconds.
    pub async fn expect_silence(&mut self, ms: u64) {
        if let Ok(got) = tokio::time::timeout(Duration::from_millis(ms), self.socket.recv()).await {
            panic!("expected silence, got {got:?}");
        }
    }
}

/// Waits (up to 2 s) until `condition` holds.
pub async fn eventually(condition: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while !condition() {
        assert!(std::time::Instant::now() < deadline, "condition never held");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs an async scenario over both transports as two tests.
#[macro_export]
macro_rules! both_transports {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use super::*;

                #[tokio::test]
                async fn in_memory() {
                    super::$name(Transport::Memory).await;
                }

                #[tokio::test]
                async fn over_tcp() {
                    super::$name(Transport::Tcp).await;
                }
            }
        )*
    };
}
