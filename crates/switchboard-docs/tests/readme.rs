//! README.md's chat server, tested the way docs/guide.md ("Testing with the
//! test client") tells a reader to test it: the guide's test module is
//! appended to the README's `src/main.rs`, here as there.

#[macro_use]
mod support;

#[allow(dead_code)]
mod chat {
    snippet!("readme-chat");
    snippet!("guide-testing");

    /// The README's `cargo run` serves the same app over TCP.
    #[tokio::test]
    async fn the_readme_chat_answers_over_tcp() {
        use switchboard::{TestClient, TestError};
        let server = app().bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr();
        tokio::spawn(server.run());
        let mut ws = TestClient::tcp(addr).connect("/ws/chat/42").await.unwrap();
        ws.send_text("hello").await.unwrap();
        assert_eq!(ws.recv_text().await.unwrap(), "42: hello");
        // A room that is no number is refused before the handler runs.
        let refused = TestClient::tcp(addr).connect("/ws/chat/lobby").await;
        assert!(
            matches!(&refused, Err(TestError::Rejected { status, .. }) if status.as_u16() == 400),
            "{refused:?}"
        );
    }
}
