//! Helpers shared by the hub tests: a "member" handler driven by text
//! commands, connecting members (in memory or over TCP), a raw TCP client
//! that completes the handshake and then never reads, and bounded waits.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use serde::Deserialize;
use switchboard::{
    ConnectionId, Error, Hub, Outgoing, Query, Server, Switchboard, TestClient, TestSocket,
    WebSocketUpgrade,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Typed per-connection state the member handler can read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tag(pub(crate) String);

/// Query of the member route: rooms to join (comma-separated) and a user.
#[derive(Debug, Deserialize)]
pub(crate) struct MemberParams {
    rooms: Option<String>,
    user: Option<String>,
}

/// The member handler. Registers under `user` if given, joins `rooms`,
/// sends `id:<connection id>` once joined, then obeys text commands:
///
/// - `join:<room>` / `leave:<room>`: replies `join:<room>:<bool>` / `leave:<room>:<bool>`
/// - `say:<room>:<text>`: sends `<text>` to the room except itself
///   (through the `Hub` extractor), replies `reached:<n>`
/// - `state`: replies `state:<tag>` or `state:none` (through `ws.hub()`)
/// - `quit`: the handler returns `Ok` (the server closes with 1000)
/// - `fail`: the handler returns an I/O error (the server closes with 1011)
///
/// Anything else is ignored.
pub(crate) async fn member(
    ws: WebSocketUpgrade,
    hub: Hub,
    Query(params): Query<MemberParams>,
) -> Result<(), Error> {
    let ws = match params.user {
        Some(user) => ws.with_user(user),
        None => ws,
    };
    let mut ws = ws.accept().await?;
    for room in params.rooms.iter().flat_map(|r| r.split(',')) {
        if !room.is_empty() {
            ws.join(room);
        }
    }
    ws.send_text(format!("id:{}", ws.id())).await?;
    while let Some(text) = ws.recv_text().await? {
        let text = text.as_str();
        if let Some(room) = text.strip_prefix("join:") {
            let joined = ws.join(room);
            ws.send_text(format!("join:{room}:{joined}")).await?;
        } else if let Some(room) = text.strip_prefix("leave:") {
            let left = ws.leave(room);
            ws.send_text(format!("leave:{room}:{left}")).await?;
        } else if let Some(rest) = text.strip_prefix("say:") {
            let (room, said) = rest.split_once(':').unwrap_or((rest, ""));
            let reached = hub.send_to_room(room, &Outgoing::text(said.to_owned()), Some(ws.id()));
            ws.send_text(format!("reached:{reached}")).await?;
        } else if text == "state" {
            let reply = match ws.hub().state::<Tag>(ws.id()) {
                Some(Tag(tag)) => format!("state:{tag}"),
                None => "state:none".to_owned(),
            };
            ws.send_text(reply).await?;
        } else if text == "quit" {
            return Ok(());
        } else if text == "fail" {
            return Err(Error::Io(std::io::Error::other(
                "the handler failed on purpose",
            )));
        }
    }
    Ok(())
}

/// An app with the member handler on `/ws`, sharing `hub`.
pub(crate) fn member_app(hub: &Hub) -> Switchboard {
    Switchboard::new()
        .with_hub(hub.clone())
        .route("/ws", member)
}

/// The path of the member route for `rooms` and an optional `user`.
pub(crate) fn member_path(rooms: &[&str], user: Option<&str>) -> String {
    let mut path = format!("/ws?rooms={}", rooms.join(","));
    if let Some(user) = user {
        path.push_str("&user=");
        path.push_str(user);
    }
    path
}

/// Connects a member and returns the socket and its connection id (after
/// its joins are done).
pub(crate) async fn connect_member(
    client: &TestClient,
    rooms: &[&str],
    user: Option<&str>,
) -> (TestSocket, ConnectionId) {
    let mut socket = client
        .connect(&member_path(rooms, user))
        .await
        .expect("member handshake");
    let id = read_id(&mut socket).await;
    (socket, id)
}

/// Reads the `id:<n>` greeting of the member handler.
pub(crate) async fn read_id(socket: &mut TestSocket) -> ConnectionId {
    let text = socket.recv_text().await.expect("id greeting");
    let id = text
        .strip_prefix("id:")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("expected id:<n>, got {text:?}"));
    ConnectionId(id)
}

/// The next text message, as a `String`.
pub(crate) async fn next_text(socket: &mut TestSocket) -> String {
    match socket.recv().await {
        Ok(switchboard::ws::Message::Text(text)) => text.as_str().to_owned(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

/// Sends a command and returns the handler's reply.
pub(crate) async fn command(socket: &mut TestSocket, text: &str) -> String {
    socket.send_text(text).await.expect("send command");
    next_text(socket).await
}

/// Binds `app` on an ephemeral loopback port and spawns `run()`.
pub(crate) async fn spawn_server(app: Switchboard) -> SocketAddr {
    let server: Server = app.bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = server.local_addr();
    tokio::spawn(server.run());
    addr
}

/// Polls `condition` every 5 ms until it holds or `within` passes; returns
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
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Runs a test body under a deadline, so a deadlock fails instead of hanging.
pub(crate) async fn bounded<T>(within: Duration, body: impl Future<Output = T>) -> T {
    tokio::time::timeout(within, body)
        .await
        .unwrap_or_else(|_| panic!("test did not finish within {within:?}"))
}

/// A raw TCP client that completes the upgrade handshake and then reads
/// nothing, with a small receive buffer so the server's writes back up soon.
#[derive(Debug)]
pub(crate) struct StalledClient {
    pub(crate) stream: TcpStream,
    /// Bytes that arrived after the response head while reading it.
    pub(crate) leftover: BytesMut,
}

impl StalledClient {
    pub(crate) async fn connect(addr: SocketAddr, path: &str) -> Self {
        let socket = TcpSocket::new_v4().expect("socket");
        // Before connecting, so the window is advertised small from the start.
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        let mut stream = socket.connect(addr).await.expect("connect");
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .expect("send request");
        let mut buf = BytesMut::with_capacity(1024);
        let head_len = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    return pos + 4;
                }
                let n = stream.read_buf(&mut buf).await.expect("read response");
                assert!(n > 0, "closed before the response head: {buf:?}");
            }
        })
        .await
        .expect("response head in time");
        assert!(
            buf.starts_with(b"HTTP/1.1 101"),
            "expected 101, got {:?}",
            String::from_utf8_lossy(&buf[..head_len])
        );
        let leftover = buf.split_off(head_len);
        Self { stream, leftover }
    }
}
