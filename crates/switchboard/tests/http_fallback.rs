//! Plain HTTP requests for paths that are not WebSocket routes go to the
//! application's HTTP service on the same port, with the request intact.

use std::sync::Arc;

use switchboard::{Error, HttpFallback, Switchboard, TestClient, WebSocketUpgrade};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn echo(ws: WebSocketUpgrade) -> Result<(), Error> {
    let mut ws = ws.accept().await?;
    while let Some(m) = ws.recv().await? {
        ws.send(m).await?;
    }
    Ok(())
}

/// A tiny HTTP server: answers with the request line it read.
fn fallback() -> HttpFallback {
    Arc::new(|mut io, _addr| {
        Box::pin(async move {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                if io.read(&mut byte).await.unwrap_or(0) == 0 {
                    return;
                }
                head.push(byte[0]);
            }
            let line = String::from_utf8_lossy(&head)
                .lines()
                .next()
                .unwrap_or("")
                .to_owned();
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{line}",
                line.len()
            );
            let _ = io.write_all(response.as_bytes()).await;
            let _ = io.shutdown().await;
        })
    })
}

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\nx-long: {}\r\n\r\n",
        "a".repeat(3000)
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_requests_for_other_paths_reach_the_fallback_and_websockets_still_work() {
    let server = Switchboard::new()
        .route("/ws/echo", echo)
        .with_http_fallback(fallback())
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr();
    tokio::spawn(server.run());

    let response = get(addr, "/healthz?verbose=1").await;
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(
        response.ends_with("GET /healthz?verbose=1 HTTP/1.1"),
        "{response}"
    );

    // A plain GET to a WebSocket route is still 426, not the fallback's.
    let response = get(addr, "/ws/echo").await;
    assert!(response.starts_with("HTTP/1.1 426"), "{response}");

    let mut ws = TestClient::tcp(addr).connect("/ws/echo").await.unwrap();
    ws.send_text("still here").await.unwrap();
    assert_eq!(ws.recv_text().await.unwrap(), "still here");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_fallback_other_paths_are_404() {
    let server = Switchboard::new()
        .route("/ws/echo", echo)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr();
    tokio::spawn(server.run());
    let response = get(addr, "/healthz").await;
    assert!(response.starts_with("HTTP/1.1 404"), "{response}");
}
