//! One connection's life: the handshake under a deadline, routing, the
//! handler, and the close.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::FutureExt;
use futures_util::future::Either;
use http::{HeaderValue, StatusCode, header};
use switchboard_ws::handshake::{self, HeadScanner};
use switchboard_ws::{CloseCode, CloseFrame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::OwnedSemaphorePermit;

use super::app::{App, AppInner, Route, TrackerGuard};
use super::extract::RequestContext;
use super::handler::Outcome;
use super::reader::{Ended, Reader};
use super::rewind::Rewind;
use super::slot::{Pending, Slot, SlotState};
use super::upgrade::{SocketContext, WebSocketUpgrade};
use crate::delivery::Shared;
use crate::error::{Error, Rejection, RejectionKind};
use crate::request::RequestInfo;
use crate::security::Admission;
use crate::transport::{Io, Transport, discard};

impl App {
    /// Serves one connection that you accepted yourself (over TLS, a Unix
    /// socket, an in-memory pipe): the handshake, the route's handler, the
    /// close. Counts against [`crate::ServerConfig::max_connections`].
    /// Spawn the returned future (it borrows nothing) or await it.
    pub fn serve_connection<S: Io>(
        &self,
        io: S,
        client_addr: SocketAddr,
    ) -> impl Future<Output = ()> + Send + 'static {
        serve(
            Arc::clone(&self.0),
            Transport::Other(Box::new(io)),
            client_addr,
        )
    }
}

/// One connection, from its first byte to the close.
///
/// Not an `async fn`: its arguments would stay in the connection's future
/// for its whole life. The handshake (with the stream and the address) runs
/// in an allocation of its own, freed when it is done (see [`run_admitted`]).
pub(crate) fn serve(
    app: Arc<AppInner>,
    io: Transport,
    addr: SocketAddr,
) -> impl Future<Output = ()> + Send + 'static {
    let admitting = Box::pin(admit_stream(Arc::clone(&app), io, addr));
    run_admitted(app, admitting)
}

/// Serves a request whose head an HTTP server (hyper) already read, through
/// the same routing, checks, handler and close as [`serve`]; the answer goes
/// back through `pending`.
#[cfg(feature = "hyper")]
pub(crate) fn serve_parsed(
    app: Arc<AppInner>,
    parts: http::request::Parts,
    pending: Pending,
    addr: SocketAddr,
) -> impl Future<Output = ()> + Send + 'static {
    let admitting = Box::pin(admit_parsed(Arc::clone(&app), parts, pending, addr));
    run_admitted(app, admitting)
}

/// A connection that passed the handshake and every check, with its places
/// under the connection cap and in the shutdown's count.
struct Entered {
    admitted: Admitted<Pending>,
    _tracked: TrackerGuard,
    _permit: OwnedSemaphorePermit,
}

/// Waits for `admitting` (boxed, so that its state and arguments are freed
/// when it is done), then runs the handler and the close: the future kept
/// for the connection's life holds the app, the entry and the handler's run.
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn keeps its arguments twice in its future"
)]
fn run_admitted(
    app: Arc<AppInner>,
    admitting: Pin<Box<impl Future<Output = Option<Entered>>>>,
) -> impl Future<Output = ()> {
    // An `async` block, not an `async fn`: it keeps what it captures once.
    async move {
        let Some(Entered {
            admitted,
            _tracked,
            _permit,
        }) = admitting.await
        else {
            return;
        };
        run(&app, admitted).await;
    }
}

/// Takes a place under the connection cap, then runs the handshake; `None`
/// when the client was answered already (refused, or gone).
async fn admit_stream(app: Arc<AppInner>, io: Transport, addr: SocketAddr) -> Option<Entered> {
    let tracked = app.track();
    let Ok(permit) = Arc::clone(&app.permits).try_acquire_owned() else {
        refuse_stream(&app, io, addr, &at_capacity()).await;
        return None;
    };
    let admitted = handshake(&app, io, addr).await?;
    Some(Entered {
        admitted,
        _tracked: tracked,
        _permit: permit,
    })
}

/// [`admit_stream`] for a request hyper parsed.
#[cfg(feature = "hyper")]
async fn admit_parsed(
    app: Arc<AppInner>,
    parts: http::request::Parts,
    pending: Pending,
    addr: SocketAddr,
) -> Option<Entered> {
    let tracked = app.track();
    let Ok(permit) = Arc::clone(&app.permits).try_acquire_owned() else {
        refuse(&app, pending, addr, &at_capacity()).await;
        return None;
    };
    // Our own reader takes only HTTP/1.1 (RFC 6455 §4.1); so do we here.
    let routed = if parts.version == http::Version::HTTP_11 {
        route(&app, parts, addr)
    } else {
        Err(switchboard_ws::HandshakeError::Malformed.into())
    };
    let checked = match routed {
        Ok(routed) => admit(&app, routed).await,
        Err(rejection) => Err(rejection),
    };
    match checked {
        Ok(admitted) => Some(Entered {
            admitted: admitted.with(pending),
            _tracked: tracked,
            _permit: permit,
        }),
        Err(rejection) => {
            refuse(&app, pending, addr, &rejection).await;
            None
        }
    }
}

/// The refusal when [`crate::ServerConfig::max_connections`] are open.
fn at_capacity() -> Rejection {
    Rejection::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "Server at connection capacity",
    )
    .with_kind(RejectionKind::Capacity)
    .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
}

/// Runs the handler of an admitted request, then the close. Not an `async
/// fn`, so that the request's parts, moved into the handler's upgrade, are
/// not kept a second time in the connection's future.
fn run(app: &Arc<AppInner>, admitted: Admitted<Pending>) -> impl Future<Output = ()> + Send + '_ {
    let Admitted {
        io,
        info,
        route,
        accept_key,
        protocol,
        admission,
        refusal,
    } = admitted;
    let handling = match refusal {
        None => Either::Left(run_handler(app, io, info, route, accept_key, protocol)),
        Some(close) => Either::Right(Box::pin(refuse_upgraded(
            app, io, info, route, accept_key, protocol, close,
        ))),
    };
    async move {
        handling.await;
        drop(admission);
    }
}

/// A refusal delivered after the upgrade ([`Rejection::with_close`]): the
/// socket is accepted and closed at once with the refusal's code and
/// reason; the route's handler never runs.
async fn refuse_upgraded(
    app: &Arc<AppInner>,
    io: Pending,
    info: Arc<RequestInfo>,
    index: usize,
    accept_key: String,
    protocol: Option<String>,
    close: CloseFrame,
) {
    let route = &app.routes[index];
    let slot = Arc::new(Slot::default());
    let cx = SocketContext {
        route: Arc::clone(&route.config),
        close_timeout: app.config.close_timeout,
        hub: app.hub.clone(),
    };
    let client = info.client_addr();
    // The subprotocol is agreed as usual: browsers fail (1006, no reason) a
    // socket that offered some and got none back.
    let upgrade = WebSocketUpgrade::new(io, accept_key, protocol, info, cx, Arc::clone(&slot));
    let outcome = match upgrade.accept().await {
        Ok(ws) => {
            drop(ws);
            Outcome::Done(Err(Error::Close(close)))
        }
        Err(e) => Outcome::Done(Err(e)),
    };
    finish(app, route, slot.take(), outcome, client).await;
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
    admission: Admission,
    /// A refusal to deliver after the upgrade, as this close.
    refusal: Option<CloseFrame>,
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
            refusal: self.refusal,
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
            refuse_stream(app, io, addr, &rejection).await;
            return None;
        }
        Ok(Err(HeadError::Io)) => return None,
        Ok(Err(HeadError::Reject(rejection))) => {
            refuse_stream(app, io, addr, &rejection).await;
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
            refuse_stream(app, io, addr, &rejection).await;
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
    let (admission, refusal) = match app.routes[route].gate.admit(&mut info).await {
        Ok(admission) => (admission, None),
        Err(rejection) => match &rejection.close {
            Some(close) => {
                app.refused(&rejection, info.client_addr);
                (Admission::default(), Some(close.clone()))
            }
            None => return Err(rejection),
        },
    };
    Ok(Admitted {
        io: (),
        info: Arc::new(info),
        route,
        accept_key,
        protocol,
        admission,
        refusal,
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
    let not_found = || Rejection::new(StatusCode::NOT_FOUND, "Not Found");
    let matched = app.router.at(parts.uri.path()).map_err(|_| not_found())?;
    // A `{param}` stands for a segment: `/ws/chat/` does not match
    // `/ws/chat/{room}` with an empty room.
    if matched.params.iter().any(|(_, value)| value.is_empty()) {
        return Err(not_found());
    }
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

/// Starts the route's handler on the upgrade; the returned future runs it,
/// then the close, and holds only what those need.
fn run_handler(
    app: &Arc<AppInner>,
    io: Pending,
    info: Arc<RequestInfo>,
    index: usize,
    accept_key: String,
    protocol: Option<String>,
) -> impl Future<Output = ()> + Send + '_ {
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
    let client = info.client_addr();
    let request = RequestContext {
        info,
        upgrade: Some(upgrade),
        hub: app.hub.clone(),
    };
    let handler = route.handler.call(request);
    async move {
        let outcome = std::panic::AssertUnwindSafe(handler).catch_unwind().await;
        let outcome = outcome.unwrap_or_else(|_| {
            tracing::error!(route = %route.pattern, "handler panicked");
            Outcome::Done(Err(Error::close(
                CloseCode::InternalError,
                "internal error",
            )))
        });
        // The close runs in its own allocation: its state is only needed at
        // the end, and would otherwise size this future for the connection's life.
        Box::pin(finish(app, route, slot.take(), outcome, client)).await;
    }
}

/// Answers a handler that never accepted, or runs the close of one that did,
/// and removes the connection from the hub.
async fn finish(
    app: &Arc<AppInner>,
    route: &Route,
    state: SlotState,
    outcome: Outcome,
    client: SocketAddr,
) {
    match state {
        SlotState::Held => {}
        SlotState::Unaccepted { io, rejection } => {
            let rejection = rejection.unwrap_or_else(|| match outcome {
                Outcome::Rejected(r) | Outcome::Done(Err(Error::Rejected(r))) => r,
                Outcome::Done(_) => Rejection::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The handler did not accept the connection",
                ),
            });
            refuse(app, io, client, &rejection).await;
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
                    if !matches!(e, Error::Disconnected(_) | Error::Closed) {
                        tracing::debug!(route = %route.pattern, error = %e, "handler returned an error");
                    }
                    e.close_frame()
                }
            };
            shared.push_close(frame);
            let ended = match reader.take_released() {
                Some(reader) => close_reading(app, reader, &shared, writer).await,
                None => {
                    // The handler gave its socket to a task that still holds it.
                    let _ = writer.await;
                    None
                }
            };
            let close = match ended {
                Some(Ended::Peer(frame)) => frame,
                _ => shared
                    .close_sent()
                    .unwrap_or_else(|| CloseFrame::new(CloseCode::Abnormal, "connection lost")),
            };
            let error = match &outcome {
                Outcome::Done(Err(e)) if !matches!(e, Error::Disconnected(_) | Error::Closed) => {
                    Some(e)
                }
                _ => None,
            };
            app.hub.unregister(id, &close, error);
        }
    }
}

/// Reads until the peer's close (within the close timeout), waits for the
/// writer, and drains what the peer still sends; returns how reading ended.
async fn close_reading(
    app: &AppInner,
    mut reader: Reader,
    shared: &Shared,
    writer: tokio::task::JoinHandle<()>,
) -> Option<Ended> {
    let _ = tokio::time::timeout(app.config.close_timeout, async {
        while let Ok(Some(_)) = std::future::poll_fn(|cx| reader.poll_recv(shared, cx)).await {}
    })
    .await;
    let _ = writer.await;
    reader.discard_until_eof(Duration::from_millis(500)).await;
    reader.ended.take()
}

/// Refuses a handshake, on whichever side it came in, after telling the
/// refusal hooks.
async fn refuse(app: &AppInner, io: Pending, client: SocketAddr, rejection: &Rejection) {
    app.refused(rejection, client);
    match io {
        Pending::Stream { io, .. } => respond_stream(io, rejection).await,
        #[cfg(feature = "hyper")]
        Pending::Http(pending) => {
            tracing::debug!(status = %rejection.status, reason = %rejection.reason, "handshake refused");
            pending.refuse(rejection);
        }
    }
}

/// Refuses a handshake on a stream we read ourselves.
async fn refuse_stream(app: &AppInner, io: Transport, client: SocketAddr, rejection: &Rejection) {
    app.refused(rejection, client);
    respond_stream(io, rejection).await;
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
