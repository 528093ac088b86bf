//! docs/guide.md's examples: each is a whole `src/main.rs`; these tests
//! connect to the app it builds and check what the guide says it does.

#[macro_use]
mod support;

use switchboard::{TestError, TestSocket};

/// The status of a refused handshake (panics when it was not refused).
fn refused(result: Result<TestSocket, TestError>) -> u16 {
    match result {
        Err(TestError::Rejected { status, .. }) => status.as_u16(),
        Err(other) => panic!("not refused: {other}"),
        Ok(_) => panic!("accepted, but should have been refused"),
    }
}

#[allow(dead_code)]
mod routes {
    snippet!("guide-routes");

    #[tokio::test]
    async fn path_query_and_address_reach_the_handler() {
        let client = switchboard::TestClient::new(app());
        let mut ws = client
            .request("/ws/acme/rooms/7?since=3")
            .client_addr("127.0.0.1:40000".parse().unwrap())
            .connect()
            .await
            .unwrap();
        assert_eq!(
            ws.recv_text().await.unwrap(),
            "acme/7 since Some(3) from 127.0.0.1:40000"
        );
        let close = ws.recv_close().await.unwrap().unwrap();
        assert_eq!(close.code, switchboard::CloseCode::Normal);
        // Not a u64: 400 before the handler runs.
        assert_eq!(
            super::refused(client.connect("/ws/acme/rooms/seven").await),
            400
        );
    }
}

#[allow(dead_code)]
mod subprotocols {
    snippet!("guide-subprotocols");

    #[tokio::test]
    async fn the_client_choice_is_answered_and_none_is_refused() {
        let client = switchboard::TestClient::new(app());
        let mut ws = client
            .request("/ws/chat")
            .protocol("chat.v1")
            .connect()
            .await
            .unwrap();
        assert_eq!(ws.protocol(), Some("chat.v1"));
        ws.send_text("hi").await.unwrap();
        assert_eq!(ws.recv_text().await.unwrap(), "chat.v1: hi");
        assert_eq!(super::refused(client.connect("/ws/chat").await), 400);
    }
}

/// The guide's warning: a `Path<u64>` handler on a route without a
/// parameter refuses every client.
#[tokio::test]
async fn a_path_handler_on_a_route_without_parameters_refuses_with_400() {
    use switchboard::{Error, Path, Switchboard, TestClient, WebSocketUpgrade};
    async fn chat(ws: WebSocketUpgrade, Path(room): Path<u64>) -> Result<(), Error> {
        ws.accept().await?.send_text(room.to_string()).await
    }
    let client = TestClient::new(Switchboard::new().route("/ws/chat", chat));
    match client.connect("/ws/chat").await {
        Err(TestError::Rejected { status, reason, .. }) => {
            assert_eq!(status.as_u16(), 400);
            assert!(
                reason.contains("the route has 0 path parameters"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
}

/// The socket table: `recv_json` takes text or binary; `recv_text` refuses
/// binary with 1003; JSON that does not fit closes with 1007.
#[tokio::test]
async fn recv_json_takes_text_and_binary_and_recv_text_refuses_binary() {
    use serde::Deserialize;
    use switchboard::{CloseCode, Error, Switchboard, TestClient, WebSocketUpgrade};

    #[derive(Deserialize)]
    struct Move {
        x: i32,
    }
    async fn moves(ws: WebSocketUpgrade) -> Result<(), Error> {
        let mut ws = ws.accept().await?;
        while let Some(m) = ws.recv_json::<Move>().await? {
            ws.send_text(format!("x={}", m.x)).await?;
        }
        Ok(())
    }
    async fn texts(ws: WebSocketUpgrade) -> Result<(), Error> {
        let mut ws = ws.accept().await?;
        while let Some(text) = ws.recv_text().await? {
            ws.send_text(text).await?;
        }
        Ok(())
    }
    let client = TestClient::new(
        Switchboard::new()
            .route("/moves", moves)
            .route("/texts", texts),
    );
    let mut ws = client.connect("/moves").await.unwrap();
    ws.send_text(r#"{"x": 1}"#).await.unwrap();
    assert_eq!(ws.recv_text().await.unwrap(), "x=1");
    ws.send_binary(br#"{"x": 2}"#).await.unwrap();
    assert_eq!(ws.recv_text().await.unwrap(), "x=2");
    ws.send_text(r#"{"y": 3}"#).await.unwrap();
    let close = ws.recv_close().await.unwrap().unwrap();
    assert_eq!(close.code, CloseCode::InvalidPayload);

    let mut ws = client.connect("/texts").await.unwrap();
    ws.send_binary(b"bytes").await.unwrap();
    let close = ws.recv_close().await.unwrap().unwrap();
    assert_eq!(close.code, CloseCode::Unsupported);
}

#[allow(dead_code)]
mod hub {
    snippet!("guide-hub");

    #[tokio::test]
    async fn the_hub_reaches_the_lobby_from_outside_a_handler() {
        let hub = Hub::new();
        let client = switchboard::TestClient::new(app(&hub));
        let mut a = client.connect("/ws/lobby").await.unwrap();
        let mut b = client.connect("/ws/lobby").await.unwrap();
        crate::support::wait_for_room(&hub, "lobby", 2).await;
        // What `announce` does every ten seconds.
        let reached = hub.send_to_room("lobby", &Outgoing::text("still here"), None);
        assert_eq!(reached, 2);
        assert_eq!(a.recv_text().await.unwrap(), "still here");
        assert_eq!(b.recv_text().await.unwrap(), "still here");
    }
}

#[allow(dead_code)]
mod compression {
    snippet!("guide-compression");

    #[tokio::test]
    async fn clients_that_offer_deflate_get_it_and_others_do_not() {
        let client = switchboard::TestClient::new(app());
        let mut ws = client
            .request("/ws/reports")
            .deflate()
            .connect()
            .await
            .unwrap();
        let agreed = ws.extensions().expect("an extension was agreed");
        assert!(agreed.starts_with("permessage-deflate"), "{agreed}");
        ws.send_text("daily").await.unwrap();
        let report = ws.recv_text().await.unwrap();
        assert!(report.starts_with("report daily: all quiet."), "{report}");
        assert_eq!(
            report.len(),
            "report daily: ".len() + "all quiet. ".len() * 100
        );

        let plain = client.connect("/ws/reports").await.unwrap();
        assert_eq!(plain.extensions(), None);
    }
}

#[allow(dead_code)]
mod security {
    snippet!("guide-security");

    use super::refused;
    use crate::support::{SECRET, token};
    use serde_json::json;
    use switchboard::TestClient;

    #[tokio::test]
    async fn a_token_for_chat_from_the_app_origin_is_greeted() {
        let client = TestClient::new(app(SECRET));
        let good = token("alice", json!({ "aud": "chat" }));
        let mut ws = client
            .request("/ws/chat")
            .origin("https://app.example.com")
            .bearer(&good)
            .connect()
            .await
            .unwrap();
        assert_eq!(ws.recv_text().await.unwrap(), "hello alice");
        ws.send_text("hi").await.unwrap();
        assert_eq!(ws.recv_text().await.unwrap(), "hi");

        // A browser: the token as a subprotocol next to `chat`.
        let ws = client
            .request("/ws/chat")
            .origin("https://app.example.com")
            .protocol("chat")
            .protocol(&format!("bearer.{good}"))
            .connect()
            .await
            .unwrap();
        assert_eq!(ws.protocol(), Some("chat"));

        let no_token = client
            .request("/ws/chat")
            .origin("https://app.example.com")
            .connect()
            .await;
        assert_eq!(refused(no_token), 401);
        let elsewhere = client
            .request("/ws/chat")
            .origin("https://evil.example.net")
            .bearer(&good)
            .connect()
            .await;
        assert_eq!(refused(elsewhere), 403);
        let wrong_audience = client
            .request("/ws/chat")
            .origin("https://app.example.com")
            .bearer(&token("alice", json!({ "aud": "billing" })))
            .connect()
            .await;
        assert_eq!(refused(wrong_audience), 401);
    }
}

#[allow(dead_code)]
mod structured {
    snippet!("guide-structured");

    use crate::support::{SECRET, token};
    use switchboard::TestClient;

    async fn next(ws: &mut switchboard::TestSocket) -> Value {
        ws.recv_json().await.unwrap()
    }

    #[tokio::test]
    async fn a_signed_in_client_subscribes_and_calls_chat_send() {
        let client = TestClient::new(app(SECRET));
        let mut ws = client
            .request("/ws")
            .origin("https://app.example.com")
            .protocol("switchboard.v1")
            .bearer(&token("alice", json!({})))
            .connect()
            .await
            .unwrap();
        let ack = next(&mut ws).await;
        assert_eq!(ack["type"], "CONNECT_ACK");
        assert_eq!(ack["payload"]["authenticated"], true);
        assert_eq!(ack["payload"]["user_id"], "alice");

        ws.send_json(&json!({"type": "SUBSCRIBE", "id": "s1",
            "payload": {"subscriptions": ["team:red", "private:x"]}}))
            .await
            .unwrap();
        let mut answers = [next(&mut ws).await, next(&mut ws).await];
        answers.sort_by_key(|a| a["payload"]["channel"].to_string());
        assert_eq!(answers[0]["type"], "SUBSCRIBE_FAILURE");
        assert_eq!(answers[0]["payload"]["code"], "forbidden");
        assert_eq!(answers[1]["type"], "SUBSCRIBE_SUCCESS");
        assert_eq!(answers[1]["payload"]["channel"], "team:red");

        ws.send_json(&json!({"type": "ACTION", "id": "a1",
            "payload": {"action": "chat.send", "data": {"text": "hi"}}}))
            .await
            .unwrap();
        let result = next(&mut ws).await;
        assert_eq!(result["type"], "ACTION_RESULT");
        assert_eq!(result["correlation_id"], "a1");
        assert_eq!(
            result["payload"]["data"],
            json!({"from": "alice", "echo": {"text": "hi"}})
        );
    }

    #[tokio::test]
    async fn a_client_without_a_token_must_authenticate() {
        let client = TestClient::new(app(SECRET));
        let mut ws = client
            .request("/ws")
            .origin("https://app.example.com")
            .connect()
            .await
            .unwrap();
        let ack = next(&mut ws).await;
        assert_eq!(ack["payload"]["requires_auth"], true);
        ws.send_json(&json!({"type": "ACTION", "id": "a1",
            "payload": {"action": "chat.send", "data": {}}}))
            .await
            .unwrap();
        let error = next(&mut ws).await;
        assert_eq!(error["payload"]["code"], "not_authenticated");
        ws.send_json(&json!({"type": "AUTHENTICATE", "id": "t1",
            "payload": {"auth": {"token": token("bob", json!({}))}}}))
            .await
            .unwrap();
        let success = next(&mut ws).await;
        assert_eq!(success["type"], "AUTHENTICATE_SUCCESS");
        assert_eq!(success["payload"]["user_id"], "bob");
    }
}

#[allow(dead_code)]
mod axum_router {
    snippet!("guide-axum");

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn health_and_websocket_share_the_port() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let service = app().into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, service).await });

        let mut http = tokio::net::TcpStream::connect(addr).await.unwrap();
        http.write_all(b"GET /api/health HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        http.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("ok"), "{answer}");

        let mut ws = switchboard::TestClient::tcp(addr)
            .connect("/ws/chat/lobby")
            .await
            .unwrap();
        ws.send_text("hi").await.unwrap();
        assert_eq!(ws.recv_text().await.unwrap(), "lobby: hi");
    }
}
