//! Connections an instance held when it died: what the application
//! recorded about them ([`Cluster::record_connection`]), handed to a
//! surviving instance once each, so that it can do what the dead one could
//! not (the gateway sends the backend's disconnect notifications).
//!
//! [`Cluster::record_connection`]: crate::broker::Cluster::record_connection

use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::Value;

use crate::broker::ConnectionAddr;

/// One connection of a dead instance, with what was recorded about it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LostConnection {
    /// Its cluster address (on the dead instance).
    pub connection: ConnectionAddr,
    /// The latest record of it.
    pub record: Value,
}

impl LostConnection {
    /// A lost connection and its record.
    pub fn new(connection: ConnectionAddr, record: Value) -> Self {
        Self { connection, record }
    }
}

type Handler = Arc<dyn Fn(Vec<LostConnection>) + Send + Sync>;

/// The handlers of lost connections.
#[derive(Default)]
pub(crate) struct LostHandlers(Mutex<Vec<Handler>>);

impl std::fmt::Debug for LostHandlers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LostHandlers({})", self.0.lock().len())
    }
}

impl LostHandlers {
    pub(crate) fn add(&self, handler: Handler) {
        self.0.lock().push(handler);
    }

    pub(crate) fn call(&self, lost: Vec<LostConnection>) {
        let handlers = self.0.lock().clone();
        if let Some((last, others)) = handlers.split_last() {
            for handler in others {
                handler(lost.clone());
            }
            last(lost);
        }
    }
}
