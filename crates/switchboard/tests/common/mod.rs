//! Helpers shared by the integration tests: a server bound on loopback,
//! raw HTTP exchanges over a real `TcpStream`, hand-built client frames, an
//! echo handler, and bounded waits.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use switchboard::ws::handshake::{HandshakeLimits, HeadScanner, parse_response};
use switchboard::{
    CloseCode, CloseFrame, Error, Server, ShutdownHandle, Switchboard, TestError, TestSocket,
    WebSocketUpgrade,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// A masking key with no zero byte, so masking always changes the payload.
pub(crate) const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// FIN bit of the first header byte.
pub(crate) const FIN: u8 = 0x80;

/// A well-formed upgrade request's headers, after the request line and Host.
pub(crate) const UPGRADE_HEADERS: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

/// The echo handler: sends every message back until the peer closes.
pub(crate) async fn echo(ws: WebSocketUpgrade) -> Result<(), Error> {
    let mut ws = ws.accept().await?;
    while let Some(message) = ws.recv().await? {
        ws.send(message).await?;
    }
    Ok(())
}

/// A server bound on `127.0.0.1:0`, running in a spawned task.
#[derive(Debug)]
pub(crate) struct Running {
    pub(crate) addr: SocketAddr,
    pub(crate) app: switchboard::App,
    pub(crate) shutdown: ShutdownHandle,
    pub(crate) task: JoinHandle<Result<(), Error>>,
}

/// Binds `app` on an ephemeral loopback port and spawns `run()`.
pub(crate) async fn spawn_server(app: Switchboard) -> Running {
    let server: Server = app.bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = server.local_addr();
    let app = server.app().clone();
    let shutdown = server.shutdown_handle();
    let task = tokio::spawn(server.run());
    Running {
        addr,
        app,
        shutdown,
        task,
    }
}

/// A parsed HTTP response read off a raw TCP connection.
#[derive(Debug)]
pub(crate) struct RawResponse {
    pub(crate) status: u16,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: String,
    /// The bytes after the head: the body, or for a 101 the first frames.
    pub(crate) rest: Vec<u8>,
}

impl RawResponse {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Writes `request` to a fresh connection to `addr` and reads the response
/// until the server closes (bounded by `within`).
pub(crate) async fn raw_exchange(addr: SocketAddr, request: &[u8]) -> RawResponse {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    // The server may answer (and stop reading) before all of a large request
    // is written; what it answered is what matters.
    let _ = stream.write_all(request).await;
    read_response(&mut stream, Duration::from_secs(3)).await
}

/// Reads one HTTP response head and its `Content-Length` body.
pub(crate) async fn read_response(stream: &mut TcpStream, within: Duration) -> RawResponse {
    tokio::time::timeout(within, async {
        let mut buf = BytesMut::with_capacity(1024);
        let mut scanner = HeadScanner::default();
        let head_len = loop {
            let n = stream.read_buf(&mut buf).await.expect("read response");
            if let Some(len) = scanner.scan(&buf, 64 * 1024).expect("response head") {
                break len;
            }
            assert!(
                n > 0,
                "connection closed before a full response head: {buf:?}"
            );
        };
        let parts = parse_response(&buf[..head_len], &HandshakeLimits::default())
            .expect("valid response head");
        let length: usize = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = buf.split_off(head_len).to_vec();
        while body.len() < length {
            let mut chunk = [0u8; 1024];
            let n = stream.read(&mut chunk).await.expect("read body");
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        RawResponse {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: String::from_utf8_lossy(&body).into_owned(),
            rest: body,
        }
    })
    .await
    .expect("response within the deadline")
}

/// A GET upgrade request for `path` with `extra` header lines (each ending in CRLF).
pub(crate) fn upgrade_request(path: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{UPGRADE_HEADERS}{extra}\r\n")
}

/// A frame with a raw first byte (FIN, RSV1-3, opcode), the length encoded
/// minimally, and the payload masked with [`MASK`] when `masked`.
pub(crate) fn frame(first_byte: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = header(first_byte, payload.len() as u64, masked);
    let start = out.len();
    out.extend_from_slice(payload);
    if masked {
        for (i, b) in out[start..].iter_mut().enumerate() {
            *b ^= MASK[i % 4];
        }
    }
    out
}

/// A frame header alone announcing `len` bytes of payload.
pub(crate) fn header(first_byte: u8, len: u64, masked: bool) -> Vec<u8> {
    let mask_bit = if masked { 0x80 } else { 0 };
    let mut out = vec![first_byte];
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if len <= u64::from(u16::MAX) {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&len.to_be_bytes());
    }
    if masked {
        out.extend_from_slice(&MASK);
    }
    out
}

/// A masked close frame with a raw payload (code bytes and reason).
pub(crate) fn close_frame(payload: &[u8]) -> Vec<u8> {
    frame(FIN | 0x8, payload, true)
}

/// Receives until the server's close frame and returns its code.
pub(crate) async fn close_code(socket: &mut TestSocket) -> CloseCode {
    match socket.recv_close().await {
        Ok(Some(frame)) => frame.code,
        other => panic!("expected a close frame with a code, got {other:?}"),
    }
}

/// Receives until the server's close frame and returns it.
pub(crate) async fn close_frame_of(socket: &mut TestSocket) -> CloseFrame {
    match socket.recv_close().await {
        Ok(Some(frame)) => frame,
        other => panic!("expected a close frame with a code, got {other:?}"),
    }
}

/// The status, reason and headers of a refused handshake.
pub(crate) fn rejected(result: Result<TestSocket, TestError>) -> (u16, String, http::HeaderMap) {
    match result {
        Err(TestError::Rejected {
            status,
            reason,
            headers,
        }) => (status.as_u16(), reason, headers),
        Ok(socket) => panic!("expected the handshake to be refused, it succeeded: {socket:?}"),
        Err(e) => panic!("expected the handshake to be refused, got {e}"),
    }
}

/// Polls `condition` every 10 ms until it holds or `within` passes; returns
/// whether it held.
pub(crate) async fn eventually(within: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if condition() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
