//! The app: its builder ([`Switchboard`]), the built app ([`App`]) with its
//! routes, counters and hub, and graceful shutdown.

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use switchboard_ws::{CloseCode, CloseFrame};
use tokio::sync::{Notify, Semaphore, watch};

use super::handler::{Erased, ErasedHandler, Handler};
use crate::config::{RouteConfig, ServerConfig};
use crate::error::Rejection;
use crate::hub::Hub;
use crate::security::{Counters, Gate};
use crate::transport::Io;

/// One route: its pattern, handler, settings, and its security gate (with
/// the counters behind its rate limit and caps).
pub(crate) struct Route {
    pub(crate) pattern: String,
    pub(crate) handler: Arc<dyn ErasedHandler>,
    pub(crate) config: Arc<RouteConfig>,
    pub(crate) gate: Gate,
}

/// Called on every refused handshake, with the refusal and the client's
/// address (see [`Switchboard::on_refusal`]).
pub type RefusalHook = Arc<dyn Fn(&Rejection, SocketAddr) + Send + Sync>;

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
    refusal_hooks: Vec<Hooked>,
}

/// A refusal hook, with a `Debug` that says only that it is there.
#[derive(Clone)]
pub(crate) struct Hooked(pub(crate) RefusalHook);

impl std::fmt::Debug for Hooked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefusalHook")
    }
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

    /// Calls `hook` on every refused handshake (routing, limits, security,
    /// a handler that refused), after the refusal is decided and before it
    /// is written; read [`Rejection::kind`] to count refusals by reason. It
    /// runs on the connection's task: keep it short. Hooks added earlier
    /// run first.
    pub fn on_refusal(
        mut self,
        hook: impl Fn(&Rejection, SocketAddr) + Send + Sync + 'static,
    ) -> Self {
        self.refusal_hooks.push(Hooked(Arc::new(hook)));
        self
    }

    /// Builds the app without a listener: for the test client, or to serve
    /// connections you accept yourself ([`App::serve_connection`]).
    ///
    /// # Panics
    /// On an invalid route pattern, or one that conflicts with an earlier route.
    pub fn into_app(self) -> App {
        let mut router = matchit::Router::new();
        let mut routes = Vec::with_capacity(self.routes.len());
        let server = &self.config;
        // Server-wide limits count across every route of this app.
        let counters = Arc::new(Counters::new(
            server.rate_limit,
            server.max_connections_per_ip,
            server.max_connections_per_user,
        ));
        for (index, (pattern, config, handler)) in self.routes.into_iter().enumerate() {
            if let Err(e) = router.insert(pattern.clone(), index) {
                panic!("invalid route {pattern:?}: {e}");
            }
            let config = Arc::new(config.unwrap_or_else(|| server.route.clone()));
            let security = config.security.as_ref().unwrap_or(&server.security).clone();
            let gate = Gate::new(
                security,
                server.allowed_hosts.clone(),
                server.trusted_proxies.clone(),
                Arc::clone(&counters),
            );
            routes.push(Route {
                pattern,
                handler,
                config,
                gate,
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
            refusal_hooks: self.refusal_hooks,
        }))
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
    pub(crate) refusal_hooks: Vec<Hooked>,
}

impl AppInner {
    /// Tells the refusal hooks.
    pub(crate) fn refused(&self, rejection: &Rejection, client: SocketAddr) {
        for hook in &self.refusal_hooks {
            (hook.0)(rejection, client);
        }
    }

    pub(crate) fn track(self: &Arc<Self>) -> TrackerGuard {
        self.tracker.live.fetch_add(1, Ordering::AcqRel);
        TrackerGuard(Arc::clone(self))
    }
}

/// A built app: cheap to clone, shared by every connection.
#[derive(Debug, Clone)]
pub struct App(pub(crate) Arc<AppInner>);

impl App {
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

    /// A shutdown signal for another server that serves this app's routes
    /// (`axum::serve(..).with_graceful_shutdown(app.graceful_shutdown(signal))`):
    /// once `signal` completes, the app starts its graceful shutdown (1001
    /// to every WebSocket client, after what is queued for it), and the
    /// returned future completes when every connection has finished or
    /// [`ServerConfig::shutdown_timeout`] passed. The other server thus
    /// stops only after the WebSocket connections it handed over, which it
    /// does not track itself; until then it keeps serving plain HTTP, and
    /// new WebSocket clients are closed at once.
    pub fn graceful_shutdown(
        &self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        let handle = self.shutdown_handle();
        let timeout = self.0.config.shutdown_timeout;
        async move {
            signal.await;
            handle.shutdown();
            let _ = tokio::time::timeout(timeout, handle.drained()).await;
        }
    }
}

/// Starts graceful shutdown: every open connection is sent a close frame
/// (after what is already queued for it), and [`Server::run`](crate::Server::run) stops accepting
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
