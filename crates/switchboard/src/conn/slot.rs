//! Hand-offs between the server and a handler: where a handshake's answer
//! goes, and where an upgrade or socket returns when the handler is done.

use std::sync::Arc;

use bytes::BytesMut;
use parking_lot::Mutex;
use tokio::task::JoinHandle;

use super::reader::ReaderCell;
use crate::delivery::Shared;
use crate::error::Rejection;
use crate::hub::ConnectionId;
use crate::transport::Transport;

/// What the server gets back from a handler.
#[derive(Debug, Default)]
pub(crate) enum SlotState {
    /// The handler still holds the upgrade or the socket.
    #[default]
    Held,
    /// The handler dropped the upgrade without accepting it.
    Unaccepted {
        io: Pending,
        rejection: Option<Rejection>,
    },
    /// The socket was accepted; its reader is the server's again once the
    /// socket is dropped.
    Accepted {
        id: ConnectionId,
        reader: Arc<ReaderCell>,
        shared: Arc<Shared>,
        writer: JoinHandle<()>,
    },
}

/// Where an upgrade or a socket returns to when the handler drops it.
#[derive(Debug, Default)]
pub(crate) struct Slot(Mutex<SlotState>);

impl Slot {
    pub(crate) fn set(&self, state: SlotState) {
        *self.0.lock() = state;
    }

    pub(crate) fn take(&self) -> SlotState {
        std::mem::take(&mut *self.0.lock())
    }
}

/// A connection waiting for the answer to its handshake: where the answer
/// goes, and where the socket's stream comes from once it is `101`.
#[derive(Debug)]
pub(crate) enum Pending {
    /// A stream we read the request head from ourselves (our listener,
    /// [`crate::App::serve_connection`]): the answer is written to it, and
    /// `leftover` holds what the client sent after the head.
    Stream { io: Transport, leftover: BytesMut },
    /// A request an HTTP server (hyper, under axum or any tower stack)
    /// read: it writes the answer we hand it, then gives the stream over.
    #[cfg(feature = "hyper")]
    Http(super::hyper_io::HttpPending),
}
