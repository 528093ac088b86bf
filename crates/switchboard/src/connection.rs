//! One connection's life: the handshake under a deadline, routing, the
//! handler, and the close.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::FutureExt;
use http::{HeaderValue, StatusCode, header};
use switchboard_ws::handshake::{self, HeadScanner};
use switchboard_ws::{CloseCode, CloseFrame};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::error::Rejection;
use crate::extract::RequestContext;
use crate::handler::Outcome;
use crate::request::RequestInfo;
use crate::security;
use crate::server::AppInner;
use crate::socket::{Ended, Reader};
use crate::transport::Transport;
use crate::upgrade::{Pending, Slot, SlotState, SocketContext, WebSocketUpgrade};

/// Most bytes read and thrown away after an error response, so that the
/// response is not lost to a TCP reset over unread request bytes.
const LINGER_BYTES: usize = 64 * 1024;

pub(crate) async fn serve(app: Arc<AppInner>, io: Transport, addr: SocketAddr) {
    let _guard = app.track();
    let Ok(_permit) = Arc::clone(&app.permits).try_acquire_owned() else {
        respond_stream(io, &at_capacity()).await;
        return;
    };
    // The handshake runs in its own allocation, freed when it is done:
    // otherwise its state would size this future for the connection's life.
    let Some(admitted) = Box::pin(handshake(&app, io, addr)).await else {
        return;
    };
    run(&app, admitted).await;
}

/// Serves a request whose head an HTTP server (hyper) already read, through
/// the same routing, checks, handler and close as [`serve`]; the answer goes
/// back through `pending`.
#[cfg(feature = "hyper")]
pub(crate) async fn serve_parsed(
    app: Arc<AppInner>,
    parts: http::request::Parts,
    pending: Pending,
    addr: SocketAddr,
) {
    let _guard = app.track();
    let Ok(_permit) = Arc::clone(&app.permits).try_acquire_owned() else {
        respond(pending, &at_capacity()).await;
        return;
    };
    // Our own reader takes only HTTP/1.1 (RFC 6455 §4.1); so do we here.
    let routed = if parts.version == http::Version::HTTP_11 {
        route(&app, parts, addr)
    } else {
        Err(switchboard_ws::HandshakeError::Malformed.into())
    };
    let checked = match routed {
        Ok(routed) => Box::pin(admit(&app, routed)).await,
        Err(rejection) => Err(rejection),
    };
    match checked {
        Ok(admitted) => run(&app, admitted.with(pending)).await,
        Err(rejection) => respond(pending, &rejection).await,
    }
}

/// The refusal when [`crate::ServerConfig::max_connections`] are open.
fn at_capacity() -> Rejection {
    Rejection::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "Server at connection capacity",
    )
    .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
}

/// Runs the handler of an admitted request, then the close.
async fn run(app: &Arc<AppInner>, admitted: Admitted<Pending>) {
    let Admitted {
        io,
        info,
        route,
        accept_key,
        protocol,
        admission,
    } = admitted;
    run_handler(app, io, info, route, accept_key, protocol).await;
    drop(admission);
}

/// A request that passed every check before the handler, and (once known)
/// where its answer goes.
struct Admitted<Io = ()> {
    io: Io,
    info: Arc<RequestInfo>,
    route: usize,
    accept_key: String,
    protocol: Option<String>,
    /// Holds this connection's places under the caps until it ends.
    admission: security::Admission,
}

impl Admitted {
    fn with(self, io: Pending) -> Admitted<Pending> {
        Admitted {
            io,
            info: self.info,
            route: self.route,
            accept_key: self.accept_key,
            protocol: self.protocol,
            admission: self.admission,
        }
    }
}

/// Reads the head under the deadline, routes and validates it, and runs the
/// security pipeline; answers the client itself when any of it refuses.
async fn handshake(
    app: &Arc<AppInner>,
    mut io: Transport,
    addr: SocketAddr,
) -> Option<Admitted<Pending>> {
    let config = &app.config;
    let head = tokio::time::timeout(config.handshake_timeout, async {
        wait_for_request(app, &io).await?;
        read_head(&mut io, &config.handshake_limits).await
    })
    .await;
    let (mut buf, head_len) = match head {
        Err(_elapsed) => {
            let rejection = Rejection::new(StatusCode::REQUEST_TIMEOUT, "Handshake timed out");
            respond_stream(io, &rejection).await;
            return None;
        }
        Ok(Err(HeadError::Io)) => return None,
        Ok(Err(HeadError::Reject(rejection))) => {
            respond_stream(io, &rejection).await;
            return None;
        }
        Ok(Ok(head)) => head,
    };
    let leftover = buf.split_off(head_len);
    let parsed = upgrade(app, &buf, addr);
    if let (Some(fallback), Err(rejection)) = (&app.fallback, &parsed)
        && rejection.status == StatusCode::NOT_FOUND
    {
        // Not a WebSocket route: the application's HTTP service answers,
        // reading the request from the bytes we already took off the socket.
        buf.unsplit(leftover);
        let io = Rewind::new(buf.freeze(), io);
        tokio::spawn((fallback.0)(Box::new(io), addr));
        return None;
    }
    // Do not keep an empty leftover's share of the head's allocation alive.
    drop(buf);
    let leftover = if leftover.is_empty() {
        BytesMut::new()
    } else {
        leftover
    };
    let checked = match parsed {
        Ok(routed) => admit(app, routed).await,
        Err(rejection) => Err(rejection),
    };
    match checked {
        Ok(admitted) => Some(admitted.with(Pending::Stream { io, leftover })),
        Err(rejection) => {
            respond_stream(io, &rejection).await;
            None
        }
    }
}

/// Waits until a TCP client has sent something (or closed). A connection
/// that has sent nothing when shutdown starts (browsers open spare
/// connections ahead of time) is closed then, so it does not hold up the
/// drain until its handshake deadline. Other streams go straight to reading
/// the head.
async fn wait_for_request(app: &AppInner, io: &Transport) -> Result<(), HeadError> {
    let Transport::Tcp(stream) = io else {
        return Ok(());
    };
    // Readiness can be reported before anything arrived: peek to be sure.
    let sent = || {
        let mut byte = [std::mem::MaybeUninit::uninit(); 1];
        socket2::SockRef::from(stream).peek(&mut byte).map(|_| ())
    };
    let mut shutdown = app.shutdown.subscribe();
    loop {
        tokio::select! {
            biased;
            ready = stream.readable() => ready.map_err(|_| HeadError::Io)?,
            _ = shutdown.wait_for(Option::is_some) => {
                return sent().map_err(|_| HeadError::Io);
            }
        }
        match stream.try_io(tokio::io::Interest::READABLE, sent) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return Err(HeadError::Io),
            Ok(()) => return Ok(()),
        }
    }
}

/// Origin, rate limits, caps, authentication, guards: the security
/// pipeline for a routed request, whichever server read it.
async fn admit(app: &AppInner, routed: Routed) -> Result<Admitted, Rejection> {
    let (mut info, route, accept_key, protocol) = routed;
    let route_config = &app.routes[route].config;
    let admission = security::admit(&app.config, route_config, &mut info).await?;
    Ok(Admitted {
        io: (),
        info: Arc::new(info),
        route,
        accept_key,
        protocol,
        admission,
    })
}

enum HeadError {
    Io,
    Reject(Rejection),
}

/// Reads until the end of the request head; returns the buffer and the head length.
async fn read_head(
    io: &mut Transport,
    limits: &handshake::HandshakeLimits,
) -> Result<(BytesMut, usize), HeadError> {
    let mut buf = BytesMut::with_capacity(1024);
    let mut scanner = HeadScanner::default();
    loop {
        if io.read_buf(&mut buf).await.map_err(|_| HeadError::Io)? == 0 {
            return Err(HeadError::Io);
        }
        match scanner.scan(&buf, limits.max_header_bytes) {
            Ok(Some(len)) => return Ok((buf, len)),
            Ok(None) => {}
            Err(e) => return Err(HeadError::Reject(e.into())),
        }
        if buf.capacity() - buf.len() < 512 {
            buf.reserve(buf.len().min(limits.max_header_bytes));
        }
    }
}

type Routed = (RequestInfo, usize, String, Option<String>);

/// Parses, routes and validates the request; everything that may refuse it
/// before the handler runs.
fn upgrade(app: &AppInner, head: &[u8], addr: SocketAddr) -> Result<Routed, Rejection> {
    let head = bytes::Bytes::copy_from_slice(head);
    let parts = handshake::parse_request_shared(&head, &app.config.handshake_limits)?;
    route(app, parts, addr)
}

/// Routes and validates a parsed request head, and picks the subprotocol.
fn route(
    app: &AppInner,
    parts: http::request::Parts,
    addr: SocketAddr,
) -> Result<Routed, Rejection> {
    let matched = app
        .router
        .at(parts.uri.path())
        .map_err(|_| Rejection::new(StatusCode::NOT_FOUND, "Not Found"))?;
    let index = *matched.value;
    let params = matched
        .params
        .iter()
        .map(|(k, v)| {
            let value = percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned();
            (k.to_owned(), value)
        })
        .collect();
    let route = &app.routes[index];
    let accept_key = handshake::validate_upgrade(&parts)?;
    let protocol =
        handshake::select_protocol(&parts.headers, &route.config.protocols).map(str::to_owned);
    if protocol.is_none() && route.config.require_protocol {
        let supported = route.config.protocols.join(", ");
        return Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            format!("No supported subprotocol offered; this endpoint speaks: {supported}"),
        ));
    }
    let info = RequestInfo {
        uri: parts.uri,
        headers: parts.headers,
        client_addr: addr,
        params,
        route: route.pattern.clone(),
        user: None,
        client_ip: addr.ip(),
        identity: None,
    };
    Ok((info, index, accept_key, protocol))
}

async fn run_handler(
    app: &Arc<AppInner>,
    io: Pending,
    info: Arc<RequestInfo>,
    index: usize,
    accept_key: String,
    protocol: Option<String>,
) {
    let route = &app.routes[index];
    let slot = Arc::new(Slot::default());
    let cx = SocketContext {
        route: Arc::clone(&route.config),
        close_timeout: app.config.close_timeout,
        hub: app.hub.clone(),
    };
    let upgrade = WebSocketUpgrade::new(
        io,
        accept_key,
        protocol,
        Arc::clone(&info),
        cx,
        Arc::clone(&slot),
    );
    let request = RequestContext {
        info,
        upgrade: Some(upgrade),
        hub: app.hub.clone(),
    };
    let outcome = std::panic::AssertUnwindSafe(route.handler.call(request))
        .catch_unwind()
        .await;
    let outcome = outcome.unwrap_or_else(|_| {
        tracing::error!(route = %route.pattern, "handler panicked");
        Outcome::Done(Err(crate::Error::close(
            CloseCode::InternalError,
            "internal error",
        )))
    });
    // The close runs in its own allocation: its state is only needed at the
    // end, and would otherwise size this future for the connection's life.
    Box::pin(finish(app, route, slot.take(), outcome)).await;
}

/// Answers a handler that never accepted, or runs the close of one that did,
/// and removes the connection from the hub.
async fn finish(
    app: &Arc<AppInner>,
    route: &crate::server::Route,
    state: SlotState,
    outcome: Outcome,
) {
    match state {
        SlotState::Held => {}
        SlotState::Unaccepted { io, rejection } => {
            let rejection = rejection.unwrap_or_else(|| match outcome {
                Outcome::Rejected(r) | Outcome::Done(Err(crate::Error::Rejected(r))) => r,
                Outcome::Done(_) => Rejection::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The handler did not accept the connection",
                ),
            });
            respond(io, &rejection).await;
        }
        SlotState::Accepted {
            id,
            reader,
            shared,
            writer,
        } => {
            let frame = match &outcome {
                Outcome::Done(Ok(())) | Outcome::Rejected(_) => {
                    CloseFrame::new(CloseCode::Normal, "")
                }
                Outcome::Done(Err(e)) => {
                    if !matches!(e, crate::Error::Disconnected(_) | crate::Error::Closed) {
                        tracing::debug!(route = %route.pattern, error = %e, "handler returned an error");
                    }
                    e.close_frame()
                }
            };
            shared.push_close(frame);
            let mut ended = None;
            if let Some(mut reader) = reader {
                let close_timeout = app.config.close_timeout;
                let _ = tokio::time::timeout(close_timeout, async {
                    while let Ok(Some(_)) =
                        std::future::poll_fn(|cx| reader.poll_recv(&shared, cx)).await
                    {
                    }
                })
                .await;
                let _ = writer.await;
                reader.discard_until_eof(Duration::from_millis(500)).await;
                ended = reader.ended.take();
            } else {
                let _ = writer.await;
            }
            let close = match ended {
                Some(Ended::Peer(frame)) => frame,
                _ => shared
                    .close_sent()
                    .unwrap_or_else(|| CloseFrame::new(CloseCode::Abnormal, "connection lost")),
            };
            let error = match &outcome {
                Outcome::Done(Err(e))
                    if !matches!(e, crate::Error::Disconnected(_) | crate::Error::Closed) =>
                {
                    Some(e)
                }
                _ => None,
            };
            app.hub.unregister(id, &close, error);
        }
    }
}

/// Answers a refused handshake, on whichever side it came in.
async fn respond(io: Pending, rejection: &Rejection) {
    match io {
        Pending::Stream { io, .. } => respond_stream(io, rejection).await,
        #[cfg(feature = "hyper")]
        Pending::Http(pending) => {
            tracing::debug!(status = %rejection.status, reason = %rejection.reason, "handshake refused");
            pending.refuse(rejection);
        }
    }
}

/// Writes an HTTP error response and closes, reading and discarding a little
/// of what the client still sends so the response is not lost to a reset.
async fn respond_stream(io: Transport, rejection: &Rejection) {
    // Boxed: refusals are rare, and their state should not size every
    // connection's future.
    Box::pin(respond_now(io, rejection)).await;
}

async fn respond_now(mut io: Transport, rejection: &Rejection) {
    tracing::debug!(status = %rejection.status, reason = %rejection.reason, "handshake refused");
    let response =
        handshake::error_response(rejection.status, &rejection.reason, &rejection.headers);
    if io.write_all(&response).await.is_err() {
        return;
    }
    let _ = io.shutdown().await;
    discard(&mut io, Duration::from_millis(500)).await;
}

pub(crate) async fn discard<R: AsyncRead + Unpin + ?Sized>(io: &mut R, within: Duration) {
    let _ = tokio::time::timeout(within, async {
        // On the heap: this runs once per connection, at its end, and an
        // array here would be part of every connection's future while idle.
        let mut sink = vec![0u8; 1024];
        let mut total = 0;
        while total < LINGER_BYTES {
            match io.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    })
    .await;
}

impl Reader {
    /// After the close, reads until the peer closes its side, so our close
    /// is not lost to a reset over unread bytes.
    pub(crate) async fn discard_until_eof(&mut self, within: Duration) {
        discard(self.io_mut(), within).await;
    }
}

/// A stream that first replays bytes already read from it.
struct Rewind {
    prefix: bytes::Bytes,
    inner: Transport,
}

impl Rewind {
    fn new(prefix: bytes::Bytes, inner: Transport) -> Self {
        Self { prefix, inner }
    }
}

impl tokio::io::AsyncRead for Rewind {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            let chunk = self.prefix.split_to(n);
            buf.put_slice(&chunk);
            return std::task::Poll::Ready(Ok(()));
        }
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Rewind {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
