//! The app builder, the listener, and graceful shutdown.

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use switchboard_ws::{CloseCode, CloseFrame};
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::{Notify, Semaphore, watch};

use crate::config::{RouteConfig, ServerConfig};
use crate::connection;
use crate::error::Error;
use crate::handler::{Erased, ErasedHandler, Handler};
use crate::hub::Hub;
use crate::transport::{Io, Transport};

/// One route: its pattern, handler and settings.
pub(crate) struct Route {
    pub(crate) pattern: String,
    pub(crate) handler: Arc<dyn ErasedHandler>,
    pub(crate) config: Arc<RouteConfig>,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("pattern", &self.pattern)
            .finish_non_exhaustive()
    }
}

/// Builds a Switchboard app: routes, then settings, then [`Switchboard::bind`].
///
/// ```no_run
/// use switchboard::{Path, Switchboard, WebSocketUpgrade, Error};
///
/// async fn chat(ws: WebSocketUpgrade, Path(room_id): Path<u64>) -> Result<(), Error> {
///     let mut ws = ws.accept().await?;
///     while let Some(text) = ws.recv_text().await? {
///         ws.send_text(format!("{room_id}: {text}")).await?;
///     }
///     Ok(())
/// }
///
/// # async fn run() -> Result<(), Error> {
/// Switchboard::new().route("/ws/chat/{room_id}", chat).serve("127.0.0.1:8080").await
/// # }
/// ```
#[derive(Debug, Default)]
pub struct Switchboard {
    routes: Vec<(String, Option<RouteConfig>, Arc<dyn ErasedHandler>)>,
    config: ServerConfig,
    hub: Option<Hub>,
    fallback: Option<Fallback>,
}

/// The HTTP fallback, with a `Debug` that says only that it is there.
#[derive(Clone)]
pub(crate) struct Fallback(pub(crate) HttpFallback);

impl std::fmt::Debug for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpFallback")
    }
}

/// Serves a connection whose first request is not for a WebSocket route:
/// the stream replays the request bytes already read. Build it from any
/// HTTP server, for example hyper serving an axum `Router`:
///
/// ```ignore
/// let fallback: HttpFallback = Arc::new(move |io, _addr| {
///     let service = TowerToHyperService::new(router.clone());
///     Box::pin(async move {
///         let _ = http1::Builder::new().serve_connection(TokioIo::new(io), service).await;
///     })
/// });
/// ```
pub type HttpFallback = Arc<
    dyn Fn(Box<dyn Io>, SocketAddr) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>>
        + Send
        + Sync,
>;

impl std::fmt::Debug for dyn ErasedHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Handler")
    }
}

impl Switchboard {
    /// An app with no routes and default settings.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a route with the default route settings.
    ///
    /// Patterns are paths with `{name}` segments for parameters
    /// (`/ws/chat/{room_id}`) and an optional final `{*rest}` catch-all.
    ///
    /// # Panics
    /// On an invalid pattern or one that conflicts with an earlier route,
    /// when the app is built.
    pub fn route<H, T>(self, pattern: &str, handler: H) -> Self
    where
        H: Handler<T>,
        T: 'static,
    {
        self.add(pattern, None, handler)
    }

    /// Adds a route with its own settings (subprotocols, limits, queue size, keepalive).
    pub fn route_with<H, T>(self, pattern: &str, config: RouteConfig, handler: H) -> Self
    where
        H: Handler<T>,
        T: 'static,
    {
        self.add(pattern, Some(config), handler)
    }

    fn add<H: Handler<T>, T: 'static>(
        mut self,
        pattern: &str,
        config: Option<RouteConfig>,
        handler: H,
    ) -> Self {
        let handler = Arc::new(Erased {
            handler,
            _args: PhantomData,
        });
        self.routes.push((pattern.to_owned(), config, handler));
        self
    }

    /// Uses `hub` as this app's hub, to share it with other parts of the
    /// program (an HTTP API, background tasks). By default the app makes its own.
    pub fn with_hub(mut self, hub: Hub) -> Self {
        self.hub = Some(hub);
        self
    }

    /// Serves plain HTTP requests for paths that are not WebSocket routes
    /// (an HTTP API, health checks, a page) on the same port, through
    /// `fallback`. Without one, such requests get 404.
    pub fn with_http_fallback(mut self, fallback: HttpFallback) -> Self {
        self.fallback = Some(Fallback(fallback));
        self
    }

    /// Replaces the server settings.
    pub fn with_config(mut self, config: ServerConfig) -> Self {
        self.config = config;
        self
    }

    /// Builds the app without a listener: for the test client, or to serve
    /// connections you accept yourself ([`App::serve_connection`]).
    pub fn into_app(self) -> App {
        let mut router = matchit::Router::new();
        let mut routes = Vec::with_capacity(self.routes.len());
        for (index, (pattern, config, handler)) in self.routes.into_iter().enumerate() {
            if let Err(e) = router.insert(pattern.clone(), index) {
                panic!("invalid route {pattern:?}: {e}");
            }
            let config = Arc::new(config.unwrap_or_else(|| self.config.route.clone()));
            routes.push(Route {
                pattern,
                handler,
                config,
            });
        }
        let (shutdown, _) = watch::channel(None);
        App(Arc::new(AppInner {
            permits: Arc::new(Semaphore::new(self.config.max_connections)),
            config: self.config,
            router,
            routes,
            shutdown,
            tracker: Tracker::default(),
            hub: self.hub.unwrap_or_default(),
            fallback: self.fallback,
        }))
    }

    /// Binds a TCP listener; call [`Server::run`] to accept connections.
    pub async fn bind(self, addr: impl ToSocketAddrs) -> Result<Server, Error> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Server {
            listener,
            app: self.into_app(),
        })
    }

    /// Binds and serves until the process ends.
    pub async fn serve(self, addr: impl ToSocketAddrs) -> Result<(), Error> {
        self.bind(addr).await?.run().await
    }
}

/// Counts live connections so shutdown can wait for them.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    live: AtomicUsize,
    idle: Notify,
}

/// Held by each connection task while it runs.
#[derive(Debug)]
pub(crate) struct TrackerGuard(Arc<AppInner>);

impl Drop for TrackerGuard {
    fn drop(&mut self) {
        if self.0.tracker.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.tracker.idle.notify_waiters();
        }
    }
}

#[derive(Debug)]
pub(crate) struct AppInner {
    pub(crate) config: ServerConfig,
    pub(crate) router: matchit::Router<usize>,
    pub(crate) routes: Vec<Route>,
    pub(crate) shutdown: watch::Sender<Option<CloseFrame>>,
    pub(crate) permits: Arc<Semaphore>,
    pub(crate) tracker: Tracker,
    pub(crate) hub: Hub,
    pub(crate) fallback: Option<Fallback>,
}

impl AppInner {
    pub(crate) fn track(self: &Arc<Self>) -> TrackerGuard {
        self.tracker.live.fetch_add(1, Ordering::AcqRel);
        TrackerGuard(Arc::clone(self))
    }
}

/// A built app: cheap to clone, shared by every connection.
#[derive(Debug, Clone)]
pub struct App(pub(crate) Arc<AppInner>);

impl App {
    /// Serves one connection that you accepted yourself (over TLS, a Unix
    /// socket, an in-memory pipe): the handshake, the route's handler, the
    /// close. Counts against [`ServerConfig::max_connections`].
    pub async fn serve_connection<S: Io>(&self, io: S, client_addr: SocketAddr) {
        connection::serve(
            Arc::clone(&self.0),
            Transport::Other(Box::new(io)),
            client_addr,
        )
        .await;
    }

    /// Connections open now, handshakes included.
    pub fn connection_count(&self) -> usize {
        self.0.tracker.live.load(Ordering::Acquire)
    }

    /// A handle that starts graceful shutdown.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(Arc::clone(&self.0))
    }

    /// The hub of this app's connections.
    pub fn hub(&self) -> &Hub {
        &self.0.hub
    }

    /// The server settings.
    pub fn config(&self) -> &ServerConfig {
        &self.0.config
    }
}

/// Starts graceful shutdown: every open connection is sent a close frame
/// (after what is already queued for it), and [`Server::run`] stops accepting
/// and returns once they are gone or [`ServerConfig::shutdown_timeout`] passed.
#[derive(Debug, Clone)]
pub struct ShutdownHandle(Arc<AppInner>);

impl ShutdownHandle {
    /// Shuts down with 1001 (going away).
    pub fn shutdown(&self) {
        self.shutdown_with(CloseCode::Away, "server shutting down");
    }

    /// Shuts down with 1012 (restart): clients should reconnect soon.
    pub fn restart(&self) {
        self.shutdown_with(CloseCode::Restart, "server restarting");
    }

    /// Shuts down with the given code and reason.
    pub fn shutdown_with(&self, code: CloseCode, reason: &str) {
        let frame = CloseFrame::new(code, reason);
        self.0.shutdown.send_replace(Some(frame.clone()));
        self.0.hub.close_all(&frame);
    }

    /// Whether shutdown has started.
    pub fn is_shutting_down(&self) -> bool {
        self.0.shutdown.borrow().is_some()
    }

    /// Waits until every connection has finished.
    pub async fn drained(&self) {
        loop {
            let idle = self.0.tracker.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.0.tracker.live.load(Ordering::Acquire) == 0 {
                return;
            }
            idle.await;
        }
    }
}

/// A bound listener with its app.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    app: App,
}

impl Server {
    /// The address the listener is bound to (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The app this server runs.
    pub fn app(&self) -> &App {
        &self.app
    }

    /// A handle that starts graceful shutdown.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.app.shutdown_handle()
    }

    /// Accepts connections until shutdown is started through a
    /// [`ShutdownHandle`], then drains (bounded by the shutdown timeout).
    pub async fn run(self) -> Result<(), Error> {
        self.run_until(std::future::pending()).await
    }

    /// Like [`Server::run`], and also starts shutdown (1001) when `signal` completes.
    pub async fn run_until(self, signal: impl Future<Output = ()> + Send) -> Result<(), Error> {
        let app = Arc::clone(&self.app.0);
        let handle = self.app.shutdown_handle();
        let mut shutdown = app.shutdown.subscribe();
        tokio::pin!(signal);
        loop {
            tokio::select! {
                accepted = self.listener.accept() => {
                    let (stream, addr) = match accepted {
                        Ok(pair) => pair,
                        Err(e) => {
                            // EMFILE and friends: back off briefly instead of spinning.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    if app.config.nodelay {
                        let _ = stream.set_nodelay(true);
                    }
                    tokio::spawn(connection::serve(Arc::clone(&app), Transport::Tcp(stream), addr));
                }
                () = &mut signal => handle.shutdown(),
                _ = shutdown.changed() => {}
            }
            if handle.is_shutting_down() {
                break;
            }
        }
        drop(self.listener);
        let _ = tokio::time::timeout(app.config.shutdown_timeout, handle.drained()).await;
        Ok(())
    }
}
