//! An app's WebSocket routes as a tower [`Service`](tower::Service), to
//! mount them in an axum `Router` or any hyper server: one port for the
//! application's HTTP routes and its WebSocket endpoints, with the
//! application's server as the listener (feature `hyper`; feature `axum`
//! also reads axum's client address).
//!
//! ```no_run
//! # use switchboard::{Error, Path, Switchboard, WebSocketUpgrade};
//! # async fn chat(ws: WebSocketUpgrade, Path(room): Path<String>) -> Result<(), Error> { Ok(()) }
//! # async fn run() -> std::io::Result<()> {
//! use std::net::SocketAddr;
//! use axum::routing::get;
//!
//! let ws = Switchboard::new().route("/ws/chat/{room}", chat).into_app();
//! let app = axum::Router::new()
//!     .route("/api/health", get(|| async { "ok" }))
//!     .route_service("/ws/chat/{room}", ws.service());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await
//! # }
//! ```
//!
//! The request hyper read goes through exactly what a connection to
//! Switchboard's own listener goes through: routing and path parameters,
//! [`ServerConfig::max_connections`](crate::ServerConfig::max_connections),
//! the security pipeline, the handler, subprotocol and permessage-deflate
//! negotiation, the hub, limits, keepalive and close codes. Refusals have
//! the same status, reason and headers. See [`WebSocketService`] for the
//! client address, paths, and shutdown.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use crate::connection;
use crate::error::{Error, Rejection};
use crate::extract::ClientAddr;
use crate::server::App;
use crate::transport::Transport;
use crate::upgrade::Pending;

/// An [`App`]'s WebSocket routes as a tower `Service<http::Request<B>>`,
/// for an axum `Router` (`route_service`, `fallback_service`,
/// `nest_service`) or any hyper server. Build it with [`App::service`];
/// clones share the app.
///
/// # The client address
/// Rate limits, per-address caps, trusted proxies and
/// [`ClientAddr`] need the peer's address, which only the server that
/// accepted the connection knows. The service takes it from the request's
/// extensions, in this order:
/// - axum's `ConnectInfo<SocketAddr>` (feature `axum`): serve the router
///   with `into_make_service_with_connect_info::<SocketAddr>()`;
/// - a [`ClientAddr`]: insert it yourself when serving with hyper directly
///   (`req.extensions_mut().insert(ClientAddr(peer))`).
///
/// A request with neither is refused with `500 Client address unknown` and
/// an error is logged: the service does not guess, since counting every
/// client under one made-up address would let one client exhaust the limits
/// for all. With a reverse proxy in front, the address is the proxy's and
/// [`ServerConfig::trusted_proxies`](crate::ServerConfig::trusted_proxies)
/// applies as on Switchboard's own listener.
///
/// # Paths
/// Routes match the request's path as the service receives it. axum's
/// `route_service` and `fallback_service` pass it whole; `nest_service("/ws", ..)`
/// strips the prefix, so the app's routes are then written without it.
/// A path that matches no route is `404 Not Found`; a request to a route
/// that does not ask for an upgrade is `426 Upgrade Required`.
///
/// # The server
/// The server must be HTTP/1.1 with upgrades: `axum::serve` is; with
/// hyper's `http1::Builder`, call `serve_connection(..).with_upgrades()`.
/// Requests in other HTTP versions are refused with 400, as Switchboard's
/// own listener does. A server that cannot hand the connection over
/// (no upgrade in the request's extensions) gets `500` when the handler
/// accepts.
///
/// The HTTP server reads the request head under its own limits and
/// timeouts, and sets up the socket (`TCP_NODELAY`): the app's
/// `handshake_timeout`, `handshake_limits` and `nodelay` settings apply to
/// its own listener only.
///
/// # Shutdown
/// Connections served through the service count in
/// [`App::connection_count`], and the app's [`ShutdownHandle`](crate::ShutdownHandle)
/// closes them with 1001 (or the code given) like any other; ones that
/// complete their handshake afterwards are closed at once. The HTTP
/// server's own graceful shutdown does not wait for them (hyper hands an
/// upgraded connection over and forgets it): start the app's shutdown,
/// stop the HTTP server, then wait on [`ShutdownHandle::drained`](crate::ShutdownHandle::drained)
/// under a timeout (`examples/axum-router.rs` shows it).
#[derive(Debug, Clone)]
pub struct WebSocketService {
    app: App,
}

impl App {
    /// This app's WebSocket routes as a tower `Service`, to mount in an axum
    /// `Router` or serve with hyper: see [`WebSocketService`].
    pub fn service(&self) -> WebSocketService {
        WebSocketService { app: self.clone() }
    }
}

impl<B> tower::Service<Request<B>> for WebSocketService {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let upgrade = request.extensions_mut().remove::<OnUpgrade>();
        let client_addr = client_addr(request.extensions());
        // The body of an upgrade request is empty; nothing is read from it.
        let (parts, _body) = request.into_parts();
        let app = Arc::clone(&self.app.0);
        ResponseFuture(Box::pin(async move {
            let Some(addr) = client_addr else {
                tracing::error!(
                    path = %parts.uri.path(),
                    "WebSocket request without a client address: serve axum with \
                     `into_make_service_with_connect_info::<SocketAddr>()` (feature `axum`), \
                     or insert a `switchboard::ClientAddr` into the request's extensions"
                );
                let rejection =
                    Rejection::new(StatusCode::INTERNAL_SERVER_ERROR, "Client address unknown");
                return Ok(refusal(&rejection));
            };
            let (respond, answer) = oneshot::channel();
            let pending = Pending::Http(HttpPending { respond, upgrade });
            // The connection outlives this request: it runs in its own task,
            // which answers through `respond` once the handler decides.
            tokio::spawn(connection::serve_parsed(app, parts, pending, addr));
            Ok(answer.await.unwrap_or_else(|_| {
                refusal(&Rejection::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The connection ended before the handshake was answered",
                ))
            }))
        }))
    }
}

/// The peer's address from the request's extensions (see [`WebSocketService`]).
fn client_addr(extensions: &http::Extensions) -> Option<SocketAddr> {
    #[cfg(feature = "axum")]
    if let Some(axum::extract::ConnectInfo(addr)) =
        extensions.get::<axum::extract::ConnectInfo<SocketAddr>>()
    {
        return Some(*addr);
    }
    extensions.get::<ClientAddr>().map(|ClientAddr(addr)| *addr)
}

/// The future of [`WebSocketService`]'s response: resolves once the route's
/// handler accepts (`101`) or the handshake is refused.
pub struct ResponseFuture(
    Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, Infallible>> + Send>>,
);

impl std::fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResponseFuture")
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<ResponseBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx)
    }
}

/// The body of [`WebSocketService`]'s responses: empty for `101`, the
/// plain-text reason of a refusal otherwise.
#[derive(Debug, Default)]
pub struct ResponseBody(Option<Bytes>);

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.take().map(|data| Ok(http_body::Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_none()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.0.as_ref().map_or(0, |data| data.len() as u64))
    }
}

/// A request hyper read, waiting for its answer: the channel to the
/// service's response future, and the stream hyper hands over after `101`.
#[derive(Debug)]
pub(crate) struct HttpPending {
    respond: oneshot::Sender<Response<ResponseBody>>,
    upgrade: Option<OnUpgrade>,
}

impl HttpPending {
    /// Whether the server can hand the connection over after `101`.
    pub(crate) fn upgradable(&self) -> Result<(), Rejection> {
        if self.upgrade.is_some() {
            return Ok(());
        }
        tracing::error!(
            "the HTTP server cannot upgrade this connection: serve HTTP/1.1 with upgrades \
             (axum::serve; hyper's serve_connection(..).with_upgrades())"
        );
        Err(Rejection::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The server cannot upgrade this connection",
        ))
    }

    /// Answers with the refusal, as Switchboard's own listener would.
    pub(crate) fn refuse(self, rejection: &Rejection) {
        // The client may be gone already; then there is no one to tell.
        let _ = self.respond.send(refusal(rejection));
    }

    /// Answers `101` and waits for the server to hand the stream over.
    pub(crate) async fn switch(
        self,
        accept: &str,
        protocol: Option<&str>,
        extensions: Option<&str>,
    ) -> Result<(Transport, BytesMut), Error> {
        let Some(upgrade) = self.upgrade else {
            return Err(Error::Rejected(self.upgradable().unwrap_err()));
        };
        let mut response = Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::UPGRADE, "websocket")
            .header(header::CONNECTION, "Upgrade")
            .header(header::SEC_WEBSOCKET_ACCEPT, accept);
        if let Some(protocol) = protocol {
            response = response.header(header::SEC_WEBSOCKET_PROTOCOL, protocol);
        }
        if let Some(extensions) = extensions {
            response = response.header(header::SEC_WEBSOCKET_EXTENSIONS, extensions);
        }
        let response = response
            .body(ResponseBody::default())
            .map_err(std::io::Error::other)?;
        if self.respond.send(response).is_err() {
            return Err(std::io::Error::from(std::io::ErrorKind::ConnectionAborted).into());
        }
        let upgraded = upgrade.await.map_err(std::io::Error::other)?;
        Ok(into_transport(upgraded))
    }
}

/// A refusal as an HTTP response: the same status, headers and plain-text
/// body Switchboard's own listener writes.
fn refusal(rejection: &Rejection) -> Response<ResponseBody> {
    let body = Bytes::copy_from_slice(rejection.reason.as_bytes());
    let mut response = Response::new(ResponseBody(Some(body)));
    *response.status_mut() = rejection.status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    for (name, value) in &rejection.headers {
        headers.append(name.clone(), value.clone());
    }
    response
}

/// The upgraded stream as a transport: a plain hyper server over
/// `TokioIo<TcpStream>` gives the socket back (split without a lock, as on
/// our own listener); anything else (axum's server wraps the stream) is
/// used through hyper's `Upgraded`.
fn into_transport(upgraded: Upgraded) -> (Transport, BytesMut) {
    match upgraded.downcast::<TokioIo<TcpStream>>() {
        Ok(parts) => (
            Transport::Tcp(parts.io.into_inner()),
            BytesMut::from(parts.read_buf),
        ),
        Err(upgraded) => (
            Transport::Other(Box::new(SyncIo(parking_lot::Mutex::new(TokioIo::new(
                upgraded,
            ))))),
            BytesMut::new(),
        ),
    }
}

/// Makes a `Send` stream `Sync`, as [`crate::Io`] asks, without locking:
/// it is only ever used through `Pin<&mut Self>`, so `Mutex::get_mut`
/// reaches the stream with no lock taken. (hyper's `Upgraded` is not `Sync`.)
struct SyncIo<T>(parking_lot::Mutex<T>);

impl<T: AsyncRead + Unpin> AsyncRead for SyncIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(self.get_mut().0.get_mut()).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for SyncIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(self.get_mut().0.get_mut()).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(self.get_mut().0.get_mut()).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        // Nothing ever holds the lock, so this never finds it taken.
        self.0.try_lock().is_some_and(|io| io.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(self.get_mut().0.get_mut()).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(self.get_mut().0.get_mut()).poll_shutdown(cx)
    }
}
