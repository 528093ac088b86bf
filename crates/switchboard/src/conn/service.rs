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

use http::{Request, Response, StatusCode};
use hyper::upgrade::OnUpgrade;
use tokio::sync::oneshot;

use super::accept;
use super::app::App;
use super::extract::ClientAddr;
use super::hyper_io::{HttpPending, ResponseBody, refusal};
use super::slot::Pending;
use crate::error::Rejection;

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
/// server's own graceful shutdown does not track them (hyper hands an
/// upgraded connection over and forgets it): give it
/// [`App::graceful_shutdown`] as its signal, which starts the app's
/// shutdown and completes once the WebSocket connections are gone:
/// `axum::serve(..).with_graceful_shutdown(app.graceful_shutdown(signal))`
/// (`examples/axum-router.rs` shows it).
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
                app.refused(&rejection, SocketAddr::from(([0, 0, 0, 0], 0)));
                return Ok(refusal(&rejection));
            };
            let (respond, answer) = oneshot::channel();
            let pending = Pending::Http(HttpPending::new(respond, upgrade));
            // The connection outlives this request: it runs in its own task,
            // which answers through `respond` once the handler decides.
            tokio::spawn(accept::serve_parsed(app, parts, pending, addr));
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
