//! docs/security.md's examples: the configured chat route (connected to
//! with the page's own test helper), your own session backend, and a guard.

#[macro_use]
mod support;

use switchboard::{TestError, TestSocket};

fn refused(result: Result<TestSocket, TestError>) -> (u16, String) {
    match result {
        Err(TestError::Rejected { status, reason, .. }) => (status.as_u16(), reason),
        Err(other) => panic!("not refused: {other}"),
        Ok(_) => panic!("accepted, but should have been refused"),
    }
}

#[allow(dead_code)]
mod configured {
    snippet!("security-config");

    /// The page's test helper, next to the app it tests.
    mod page {
        snippet!("security-testing");

        use super::app;
        use crate::support::{SECRET, token};
        use serde_json::json;

        fn claims(permissions: &[&str]) -> serde_json::Value {
            json!({"iss": "https://auth.example.com", "aud": "chat", "permissions": permissions})
        }

        #[tokio::test]
        async fn a_writer_from_the_app_is_greeted_and_a_reader_is_refused() {
            let writer = token("alice", claims(&["chat:write"]));
            let mut ws = connect(app(SECRET).unwrap(), &writer).await.unwrap();
            assert_eq!(ws.protocol(), Some("switchboard"));
            assert_eq!(ws.recv_text().await.unwrap(), "hello alice");

            let reader = token("bob", claims(&["chat:read"]));
            let (status, reason) = crate::refused(connect(app(SECRET).unwrap(), &reader).await);
            assert_eq!((status, reason.as_str()), (403, "Permission denied"));
            let wrong_issuer = token("eve", json!({"iss": "https://elsewhere", "aud": "chat"}));
            let (status, reason) =
                crate::refused(connect(app(SECRET).unwrap(), &wrong_issuer).await);
            assert_eq!(status, 401);
            assert!(reason.contains("wrong issuer"), "{reason}");
        }
    }
}

#[allow(dead_code)]
mod sessions {
    snippet!("security-sessions");

    use switchboard::security::{IsAuthenticated, Security};
    use switchboard::{Error, RouteConfig, Switchboard, TestClient, WebSocketUpgrade};

    async fn whoami(ws: WebSocketUpgrade, identity: Identity) -> Result<(), Error> {
        let ws = ws.accept().await?;
        ws.send_text(identity.user_id().to_string()).await
    }

    #[tokio::test]
    async fn a_known_session_signs_in_and_an_unknown_one_is_refused() {
        let security = Security::new()
            .authenticate(Sessions)
            .guard(IsAuthenticated);
        let app = Switchboard::new().route_with(
            "/ws",
            RouteConfig::default().with_security(security),
            whoami,
        );
        let client = TestClient::new(app);
        let mut ws = client
            .request("/ws")
            .bearer("s3cr3t")
            .connect()
            .await
            .unwrap();
        assert_eq!(ws.recv_text().await.unwrap(), "alice");
        let (status, reason) =
            crate::refused(client.request("/ws").bearer("guess").connect().await);
        assert_eq!(
            (status, reason.as_str()),
            (401, "Invalid token: unknown session")
        );
    }
}

#[allow(dead_code)]
mod guard {
    snippet!("security-guard");

    use crate::support::{SECRET, token};
    use serde_json::json;
    use switchboard::security::{JwtAuth, Security};
    use switchboard::{Error, RouteConfig, Switchboard, TestClient, WebSocketUpgrade};

    async fn inbox(ws: WebSocketUpgrade) -> Result<(), Error> {
        ws.accept().await?.send_text("your inbox").await
    }

    #[tokio::test]
    async fn users_open_their_own_inbox_only() {
        let security = Security::new()
            .authenticate(JwtAuth::hs256(SECRET))
            .guard(own_inbox);
        let app = Switchboard::new().route_with(
            "/ws/inbox/{user}",
            RouteConfig::default().with_security(security),
            inbox,
        );
        let client = TestClient::new(app);
        let alice = token("alice", json!({}));
        let mut ws = client
            .request("/ws/inbox/alice")
            .bearer(&alice)
            .connect()
            .await
            .unwrap();
        assert_eq!(ws.recv_text().await.unwrap(), "your inbox");
        let other = client
            .request("/ws/inbox/bob")
            .bearer(&alice)
            .connect()
            .await;
        assert_eq!(crate::refused(other).0, 403);
        assert_eq!(
            crate::refused(client.connect("/ws/inbox/alice").await).0,
            401
        );
    }
}
