//! The pending upgrade a handler receives, and accepting it: the `101`,
//! the connection's queue and writer, its registration in the hub.

use std::sync::Arc;

use http::StatusCode;
use switchboard_ws::deflate::{DeflateParams, negotiate};
use switchboard_ws::{Decoder, Role, handshake};
use tokio::io::AsyncWriteExt;

use super::reader::{Reader, ReaderCell};
use super::slot::{Pending, Slot, SlotState};
use super::socket::WebSocket;
use crate::config::RouteConfig;
use crate::delivery::{Compression, PeerProbe, Sender, Shared, WriterOptions, run_writer};
use crate::error::{Error, Rejection};
use crate::hub::{ConnectionInfo, Hub, UserId};
use crate::request::RequestInfo;

/// Server settings an accepted socket needs.
#[derive(Debug, Clone)]
pub(crate) struct SocketContext {
    pub(crate) route: Arc<RouteConfig>,
    pub(crate) close_timeout: std::time::Duration,
    pub(crate) hub: Hub,
}

/// A WebSocket upgrade that passed every check and waits for the handler to
/// accept it. Dropping it without accepting answers `500` (or the rejection
/// given to [`WebSocketUpgrade::reject`]).
///
/// One pointer wide: a handler's future keeps its arguments for the whole
/// connection, so the upgrade's state lives in an allocation of its own.
pub struct WebSocketUpgrade(Box<Upgrade>);

/// What a [`WebSocketUpgrade`] holds until it is accepted or dropped.
struct Upgrade {
    io: Option<Pending>,
    accept_key: String,
    protocol: Option<String>,
    info: Arc<RequestInfo>,
    cx: SocketContext,
    slot: Arc<Slot>,
    rejection: Option<Rejection>,
    user: Option<UserId>,
}

impl std::fmt::Debug for WebSocketUpgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocketUpgrade")
            .field("path", &self.0.info.path())
            .field("protocol", &self.0.protocol)
            .finish_non_exhaustive()
    }
}

impl WebSocketUpgrade {
    pub(crate) fn new(
        io: Pending,
        accept_key: String,
        protocol: Option<String>,
        info: Arc<RequestInfo>,
        cx: SocketContext,
        slot: Arc<Slot>,
    ) -> Self {
        Self(Box::new(Upgrade {
            io: Some(io),
            accept_key,
            protocol,
            info,
            cx,
            slot,
            rejection: None,
            user: None,
        }))
    }

    /// The subprotocol the server picked from the client's offer and the
    /// route's list, if any. [`WebSocketUpgrade::accept`] answers with it.
    pub fn protocol(&self) -> Option<&str> {
        self.0.protocol.as_deref()
    }

    /// The subprotocols the client offered, in its order.
    pub fn offered_protocols(&self) -> Vec<String> {
        handshake::offered_protocols(self.0.info.headers())
            .map(str::to_owned)
            .collect()
    }

    /// The request.
    pub fn request(&self) -> &RequestInfo {
        &self.0.info
    }

    /// Chooses the subprotocol to answer with instead of the negotiated one.
    /// It must be one the client offered; otherwise this returns an error
    /// and the handshake is refused with 400.
    pub fn with_protocol(mut self, protocol: &str) -> Result<Self, Error> {
        if !handshake::offered_protocols(self.0.info.headers()).any(|p| p == protocol) {
            let rejection = Rejection::new(
                StatusCode::BAD_REQUEST,
                format!("subprotocol {protocol:?} was not offered"),
            );
            self.0.rejection = Some(rejection.clone());
            return Err(Error::Rejected(rejection));
        }
        self.0.protocol = Some(protocol.to_owned());
        Ok(self)
    }

    /// Refuses the handshake with `status` and `reason`. Return the error
    /// from the handler.
    pub fn reject(mut self, status: StatusCode, reason: impl Into<String>) -> Error {
        let rejection = Rejection::new(status, reason);
        self.0.rejection = Some(rejection.clone());
        Error::Rejected(rejection)
    }

    /// Registers the connection in the hub under `user` once accepted
    /// (what authentication does for you).
    pub fn with_user(mut self, user: impl Into<UserId>) -> Self {
        self.0.user = Some(user.into());
        self
    }

    /// Completes the handshake (`101 Switching Protocols`) and returns the socket.
    pub fn accept(self) -> impl Future<Output = Result<WebSocket, Error>> + Send + 'static {
        // The handshake's state lives in an allocation of its own while it
        // runs: inline, it would size the handler's future (which waits on
        // it) for the whole connection.
        Box::pin(self.complete())
    }

    async fn complete(mut self) -> Result<WebSocket, Error> {
        let Some(pending) = self.0.io.take() else {
            return Err(Error::Closed);
        };
        let route = &self.0.cx.route;
        let deflate = route
            .compression
            .as_ref()
            .and_then(|config| negotiate(self.0.info.headers(), config));
        let extensions = deflate.as_ref().map(DeflateParams::response_header);
        let (io, leftover) = match pending {
            Pending::Stream { mut io, leftover } => {
                let response = handshake::switching_protocols(
                    &self.0.accept_key,
                    self.0.protocol.as_deref(),
                    extensions.as_deref(),
                );
                io.write_all(&response).await?;
                (io, leftover)
            }
            #[cfg(feature = "hyper")]
            Pending::Http(pending) => {
                if let Err(rejection) = pending.upgradable() {
                    // Answered with this status when the upgrade is dropped.
                    self.0.io = Some(Pending::Http(pending));
                    self.0.rejection = Some(rejection.clone());
                    return Err(Error::Rejected(rejection));
                }
                pending
                    .switch(
                        &self.0.accept_key,
                        self.0.protocol.as_deref(),
                        extensions.as_deref(),
                    )
                    .await?
            }
        };
        let (read, write) = io.split();
        let hub = &self.0.cx.hub;
        let id = hub.next_id();
        let shared = Shared::new(
            route.max_queue_bytes,
            id.0,
            hub.stats_handle(),
            Compression::negotiated(deflate),
        );
        let mut decoder = Decoder::new(Role::Server, route.limits);
        if let Some(params) = &deflate {
            decoder = decoder.with_deflate(params.client_no_context_takeover);
        }
        let reader = ReaderCell::new(Reader::new(read, leftover, decoder), Arc::clone(&shared));
        let probe: Arc<dyn PeerProbe> = reader.clone();
        let writer = tokio::spawn(run_writer(
            Arc::clone(&shared),
            write,
            WriterOptions {
                keepalive: route.keepalive,
                close_timeout: self.0.cx.close_timeout,
                probe: Some(probe),
            },
        ));
        self.0.slot.set(SlotState::Accepted {
            id,
            reader: Arc::clone(&reader),
            shared: Arc::clone(&shared),
            writer,
        });
        let sender = Sender::new(shared);
        hub.register(
            sender.clone(),
            ConnectionInfo {
                id,
                user: self.0.user.take().or_else(|| self.0.info.user.clone()),
                client_addr: self.0.info.client_addr(),
                path: self.0.info.path().to_owned(),
                connected_at: std::time::SystemTime::now(),
            },
        );
        if let Some(at) = self.0.info.identity().and_then(|i| i.closes_at()) {
            crate::security::arm(hub, id, at);
        }
        Ok(WebSocket::new(
            reader,
            sender,
            Arc::clone(&self.0.info),
            self.0.protocol.take(),
            id,
            hub.clone(),
        ))
    }
}

impl Drop for WebSocketUpgrade {
    fn drop(&mut self) {
        if let Some(io) = self.0.io.take() {
            self.0.slot.set(SlotState::Unaccepted {
                io,
                rejection: self.0.rejection.take(),
            });
        }
    }
}
