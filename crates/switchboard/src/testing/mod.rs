//! The test kit (feature `testkit`): an in-process test client that drives
//! the real handshake and codec over an in-memory pipe (no TCP port) or over
//! TCP to a running server, and the shared broker test suite ([`broker`]).
//!
//! ```toml
//! [dev-dependencies]
//! switchboard = { path = "...", features = ["testkit"] }
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use switchboard_ws::frame::encode_client_frame;
use switchboard_ws::handshake::{self, HandshakeLimits, HeadScanner};
use switchboard_ws::{
    CloseCode, CloseFrame, Decoder, Limits, Message, OpCode, ProtocolError, Role, Utf8Bytes,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::conn::{App, Switchboard};
use crate::transport::Io;

pub mod broker;
pub mod presence;
pub mod streams;

/// Why a test client operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestError {
    /// The server refused the handshake.
    #[error("handshake rejected with {status}: {reason}")]
    Rejected {
        /// The HTTP status.
        status: StatusCode,
        /// The response body.
        reason: String,
        /// The response headers.
        headers: HeaderMap,
    },
    /// Nothing arrived within the client's timeout. The connection is still open.
    #[error("timed out waiting for the server")]
    Timeout,
    /// The server closed the connection (the close frame, if it sent one).
    #[error("connection closed: {0:?}")]
    Closed(Option<CloseFrame>),
    /// The server broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    /// A message of the other type arrived.
    #[error("unexpected message: {0:?}")]
    Unexpected(Message),
    /// A message was not the JSON the test expected.
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A socket error.
    #[error("io error: {0}")]
    Io(#[from] std::io::Error),
}

/// Where a test request goes.
#[derive(Debug, Clone)]
enum Target {
    InMemory(App),
    Tcp(SocketAddr),
}

/// Connects test sockets to an app, in memory or over TCP.
#[derive(Debug, Clone)]
pub struct TestClient {
    target: Target,
    timeout: Duration,
}

impl TestClient {
    /// A client for `app`, connected through an in-memory pipe: no port is opened.
    pub fn new(app: impl Into<App>) -> Self {
        Self {
            target: Target::InMemory(app.into()),
            timeout: Duration::from_secs(5),
        }
    }

    /// A client for a server listening on `addr`, over real TCP.
    pub fn tcp(addr: SocketAddr) -> Self {
        Self {
            target: Target::Tcp(addr),
            timeout: Duration::from_secs(5),
        }
    }

    /// How long receives wait before [`TestError::Timeout`]. Default 5 s.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Starts a request to `path` (which may include a query string).
    pub fn request(&self, path: &str) -> TestRequest {
        TestRequest {
            client: self.clone(),
            path: path.to_owned(),
            query: Vec::new(),
            headers: HeaderMap::new(),
            client_addr: SocketAddr::from(([127, 0, 0, 1], 40000)),
            protocols: Vec::new(),
        }
    }

    /// Connects to `path` with no extra headers.
    pub async fn connect(&self, path: &str) -> Result<TestSocket, TestError> {
        self.request(path).connect().await
    }
}

impl From<Switchboard> for App {
    fn from(app: Switchboard) -> Self {
        app.into_app()
    }
}

/// A handshake request being built.
#[derive(Debug)]
pub struct TestRequest {
    client: TestClient,
    path: String,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    client_addr: SocketAddr,
    protocols: Vec<String>,
}

impl TestRequest {
    /// Adds a header.
    ///
    /// # Panics
    /// If the name or value is not valid in HTTP.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("valid header name");
        let value = HeaderValue::from_str(value).expect("valid header value");
        self.headers.append(name, value);
        self
    }

    /// Adds a query parameter (percent-encoded for you).
    pub fn query(mut self, name: &str, value: &str) -> Self {
        self.query.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the `Origin` header, as a browser would.
    pub fn origin(self, origin: &str) -> Self {
        self.header("origin", origin)
    }

    /// Sends `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// Adds a cookie to the `Cookie` header (call again for more).
    ///
    /// # Panics
    /// If the name or value is not valid in a header.
    pub fn cookie(mut self, name: &str, value: &str) -> Self {
        let pair = format!("{name}={value}");
        let cookie = match self.headers.get(http::header::COOKIE) {
            Some(existing) => format!("{}; {pair}", existing.to_str().expect("valid cookie")),
            None => pair,
        };
        let value = HeaderValue::from_str(&cookie).expect("valid cookie");
        self.headers.insert(http::header::COOKIE, value);
        self
    }

    /// Offers permessage-deflate, as browsers do
    /// (`permessage-deflate; client_max_window_bits`).
    pub fn deflate(self) -> Self {
        self.header(
            "sec-websocket-extensions",
            "permessage-deflate; client_max_window_bits",
        )
    }

    /// Offers a subprotocol (call again to offer more, in order of preference).
    pub fn protocol(mut self, protocol: &str) -> Self {
        self.protocols.push(protocol.to_owned());
        self
    }

    /// The client address the server sees (in-memory connections only).
    pub fn client_addr(mut self, addr: SocketAddr) -> Self {
        self.client_addr = addr;
        self
    }

    /// Performs the handshake.
    pub async fn connect(mut self) -> Result<TestSocket, TestError> {
        if !self.protocols.is_empty() {
            let value =
                HeaderValue::from_str(&self.protocols.join(", ")).expect("valid protocol names");
            self.headers
                .insert(http::header::SEC_WEBSOCKET_PROTOCOL, value);
        }
        let mut path = self.path.clone();
        for (i, (k, v)) in self.query.iter().enumerate() {
            path.push(if i == 0 && !path.contains('?') {
                '?'
            } else {
                '&'
            });
            path.push_str(&encode(k));
            path.push('=');
            path.push_str(&encode(v));
        }
        let (mut io, host): (Box<dyn Io>, String) = match &self.client.target {
            Target::InMemory(app) => {
                let (client, server) = tokio::io::duplex(64 * 1024);
                tokio::spawn(app.serve_connection(server, self.client_addr));
                (Box::new(client), "switchboard.test".to_owned())
            }
            Target::Tcp(addr) => {
                let stream = TcpStream::connect(addr).await?;
                stream.set_nodelay(true)?;
                (Box::new(stream), addr.to_string())
            }
        };
        let key = handshake::client_key(*uuid::Uuid::new_v4().as_bytes());
        // A `host` header set on the request replaces the default one.
        let mut headers = self.headers.clone();
        let host = headers
            .remove(http::header::HOST)
            .and_then(|v| v.to_str().ok().map(str::to_owned))
            .unwrap_or(host);
        let request = handshake::client_request(&host, &path, &key, &headers);
        io.write_all(&request).await?;
        let timeout = self.client.timeout;
        let (mut buf, head_len) = tokio::time::timeout(timeout, read_response_head(&mut io))
            .await
            .map_err(|_| TestError::Timeout)??;
        let leftover = buf.split_off(head_len);
        let parts = handshake::parse_response(&buf, &HandshakeLimits::default())
            .map_err(|e| TestError::Io(std::io::Error::other(e)))?;
        if parts.status != StatusCode::SWITCHING_PROTOCOLS {
            let length = parts
                .headers
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            let mut body = leftover.to_vec();
            while body.len() < length {
                let mut chunk = [0u8; 1024];
                match tokio::time::timeout(timeout, io.read(&mut chunk)).await {
                    Ok(Ok(n)) if n > 0 => body.extend_from_slice(&chunk[..n]),
                    _ => break,
                }
            }
            return Err(TestError::Rejected {
                status: parts.status,
                reason: String::from_utf8_lossy(&body).into_owned(),
                headers: parts.headers,
            });
        }
        let accept = parts
            .headers
            .get(http::header::SEC_WEBSOCKET_ACCEPT)
            .map(HeaderValue::as_bytes);
        if accept != Some(handshake::accept_key(key.as_bytes()).as_bytes()) {
            return Err(TestError::Io(std::io::Error::other(
                "bad Sec-WebSocket-Accept",
            )));
        }
        let protocol = parts
            .headers
            .get(http::header::SEC_WEBSOCKET_PROTOCOL)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let extensions = parts
            .headers
            .get(http::header::SEC_WEBSOCKET_EXTENSIONS)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut decoder = Decoder::new(
            Role::Client,
            Limits::default()
                .with_max_message_size(64 << 20)
                .with_max_fragments(100_000),
        );
        if let Some(ext) = extensions
            .as_deref()
            .filter(|e| e.starts_with("permessage-deflate"))
        {
            decoder = decoder.with_deflate(ext.contains("server_no_context_takeover"));
        }
        Ok(TestSocket {
            io,
            buf: leftover,
            decoder,
            extensions,
            timeout,
            protocol,
            headers: parts.headers,
            mask_seed: 0x9E37_79B9,
        })
    }
}

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

async fn read_response_head(io: &mut Box<dyn Io>) -> Result<(BytesMut, usize), TestError> {
    let mut buf = BytesMut::with_capacity(1024);
    let mut scanner = HeadScanner::default();
    loop {
        if io.read_buf(&mut buf).await? == 0 {
            return Err(TestError::Closed(None));
        }
        if let Some(len) = scanner
            .scan(&buf, 64 * 1024)
            .map_err(|e| TestError::Io(std::io::Error::other(e)))?
        {
            return Ok((buf, len));
        }
    }
}

/// The client end of a test connection.
pub struct TestSocket {
    extensions: Option<String>,
    io: Box<dyn Io>,
    buf: BytesMut,
    decoder: Decoder,
    timeout: Duration,
    protocol: Option<String>,
    headers: HeaderMap,
    mask_seed: u32,
}

impl std::fmt::Debug for TestSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestSocket")
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

impl TestSocket {
    /// The subprotocol the server chose.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The `101` response headers.
    pub fn response_headers(&self) -> &HeaderMap {
        &self.headers
    }

    fn next_mask(&mut self) -> [u8; 4] {
        // xorshift: masks need not be secret here, only varied.
        let mut x = self.mask_seed;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.mask_seed = x;
        x.to_be_bytes()
    }

    async fn send_frame(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), TestError> {
        let mask = self.next_mask();
        let frame = encode_client_frame(opcode, payload, mask);
        self.io.write_all(&frame).await?;
        Ok(())
    }

    /// Sends a text message.
    pub async fn send_text(&mut self, text: &str) -> Result<(), TestError> {
        self.send_frame(OpCode::Text, text.as_bytes()).await
    }

    /// The `Sec-WebSocket-Extensions` the server answered with.
    pub fn extensions(&self) -> Option<&str> {
        self.extensions.as_deref()
    }

    /// Sends a text message compressed with permessage-deflate (RSV1 set),
    /// without context takeover. Works only when deflate was negotiated;
    /// otherwise the server must refuse it with 1002.
    pub async fn send_compressed_text(&mut self, text: &str) -> Result<(), TestError> {
        let packed =
            switchboard_ws::deflate::Compressor::new(6, 15).compress(text.as_bytes(), true);
        self.send_compressed_raw(OpCode::Text, &packed).await
    }

    /// Sends `packed` as the payload of one compressed frame (RSV1 set), as is:
    /// for tests of corrupt or hostile compressed data.
    pub async fn send_compressed_raw(
        &mut self,
        opcode: OpCode,
        packed: &[u8],
    ) -> Result<(), TestError> {
        let mask = self.next_mask();
        let header = switchboard_ws::FrameHeader {
            fin: true,
            rsv1: true,
            opcode,
            mask: Some(mask),
            payload_len: packed.len() as u64,
        }
        .encode();
        let mut frame = header.as_slice().to_vec();
        let start = frame.len();
        frame.extend_from_slice(packed);
        switchboard_ws::mask::apply_mask(&mut frame[start..], mask);
        self.io.write_all(&frame).await?;
        Ok(())
    }

    /// Sends a binary message.
    pub async fn send_binary(&mut self, data: &[u8]) -> Result<(), TestError> {
        self.send_frame(OpCode::Binary, data).await
    }

    /// Sends `value` as JSON text.
    pub async fn send_json<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), TestError> {
        let text = serde_json::to_string(value)?;
        self.send_text(&text).await
    }

    /// Sends a ping.
    pub async fn ping(&mut self, payload: &[u8]) -> Result<(), TestError> {
        self.send_frame(OpCode::Ping, payload).await
    }

    /// Writes raw bytes: for tests of malformed frames.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), TestError> {
        self.io.write_all(bytes).await?;
        Ok(())
    }

    /// Sends a close frame without waiting for the reply.
    pub async fn send_close(&mut self, code: CloseCode, reason: &str) -> Result<(), TestError> {
        let payload = CloseFrame::new(code, reason).to_payload();
        self.send_frame(OpCode::Close, &payload).await
    }

    /// The next frame of any kind, control frames included, without answering pings.
    pub async fn recv_message(&mut self) -> Result<Message, TestError> {
        let timeout = self.timeout;
        tokio::time::timeout(timeout, async {
            loop {
                if let Some(message) = self.decoder.decode(&mut self.buf)? {
                    return Ok(message);
                }
                if self.buf.capacity() - self.buf.len() < 1024 {
                    self.buf.reserve(8192);
                }
                if self.io.read_buf(&mut self.buf).await? == 0 {
                    return Err(TestError::Closed(None));
                }
            }
        })
        .await
        .map_err(|_| TestError::Timeout)?
    }

    /// The next data message; pings are answered, pongs skipped. A close
    /// frame is [`TestError::Closed`] with the server's code and reason
    /// (the close is acknowledged first, as a real client would).
    pub async fn recv(&mut self) -> Result<Message, TestError> {
        loop {
            match self.recv_message().await? {
                Message::Ping(payload) => self.send_frame(OpCode::Pong, &payload).await?,
                Message::Pong(_) => {}
                Message::Close(frame) => {
                    let reply = frame
                        .as_ref()
                        .map(CloseFrame::to_payload)
                        .unwrap_or_default();
                    let _ = self.send_frame(OpCode::Close, &reply).await;
                    return Err(TestError::Closed(frame));
                }
                data => return Ok(data),
            }
        }
    }

    /// The next message, which must be text.
    pub async fn recv_text(&mut self) -> Result<Utf8Bytes, TestError> {
        match self.recv().await? {
            Message::Text(text) => Ok(text),
            other => Err(TestError::Unexpected(other)),
        }
    }

    /// The next message, which must be binary.
    pub async fn recv_bytes(&mut self) -> Result<Bytes, TestError> {
        match self.recv().await? {
            Message::Binary(data) => Ok(data),
            other => Err(TestError::Unexpected(other)),
        }
    }

    /// The next message, parsed as JSON.
    pub async fn recv_json<T: DeserializeOwned>(&mut self) -> Result<T, TestError> {
        match self.recv().await? {
            Message::Text(text) => Ok(serde_json::from_str(&text)?),
            Message::Binary(data) => Ok(serde_json::from_slice(&data)?),
            other => Err(TestError::Unexpected(other)),
        }
    }

    /// Skips data messages until the server's close frame, and returns it
    /// (`None` for a close frame without a code).
    pub async fn recv_close(&mut self) -> Result<Option<CloseFrame>, TestError> {
        loop {
            match self.recv().await {
                Ok(_) => {}
                Err(TestError::Closed(frame)) => return Ok(frame),
                Err(e) => return Err(e),
            }
        }
    }

    /// Closes with `code` and `reason` and returns the server's reply frame.
    pub async fn close(
        mut self,
        code: CloseCode,
        reason: &str,
    ) -> Result<Option<CloseFrame>, TestError> {
        self.send_close(code, reason).await?;
        self.recv_close().await
    }

    /// Waits until the server closes the TCP connection (reads return EOF).
    pub async fn wait_eof(&mut self) -> Result<(), TestError> {
        let timeout = self.timeout;
        tokio::time::timeout(timeout, async {
            let mut sink = [0u8; 4096];
            loop {
                if self.io.read(&mut sink).await? == 0 {
                    return Ok(());
                }
            }
        })
        .await
        .map_err(|_| TestError::Timeout)?
    }
}
