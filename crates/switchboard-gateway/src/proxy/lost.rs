//! Disconnect notifications for the connections of a dead instance: each
//! connection's record lives in the broker (`Cluster::record_connection`),
//! and the instance that declares its holder dead sends its `disconnect`
//! event, once, with code 1006 and reason `instance lost`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{Value, json};
use switchboard::broker::presence::LostConnection;
use switchboard::protocol::Connection;

use super::notify::Notifier;
use super::wire::{self, Context};

/// The close code a lost connection's disconnect event carries: the
/// client saw its connection drop without a close frame.
pub(crate) const LOST_CODE: u16 = 1006;
/// Its reason.
pub(crate) const LOST_REASON: &str = "instance lost";

/// What a disconnect event of `conn` needs, as the broker keeps it.
pub(crate) fn record(context: &Context, conn: &Connection) -> Value {
    let mut record = serde_json::to_value(context.caller(conn)).unwrap_or_else(|_| json!({}));
    let hub = conn.hub();
    let connected_at = hub
        .info(conn.id())
        .map_or(0.0, |info| wire::unix_seconds(info.connected_at));
    let channels: Vec<String> = hub
        .rooms_of(conn.id())
        .iter()
        .map(|room| room.as_str().to_owned())
        .filter(|room| !room.starts_with('#'))
        .collect();
    if let Value::Object(map) = &mut record {
        map.insert("connected_at".to_owned(), json!(connected_at));
        map.insert("channels".to_owned(), json!(channels));
    }
    record
}

/// Sends the disconnect events of lost connections to the disconnect
/// proxy of the endpoint each was on.
#[derive(Debug, Default, Clone)]
pub(crate) struct LostNotifier {
    by_endpoint: HashMap<String, Arc<Notifier>>,
}

impl LostNotifier {
    pub(crate) fn add(&mut self, endpoint: &str, notifier: Arc<Notifier>) {
        self.by_endpoint.insert(endpoint.to_owned(), notifier);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_endpoint.is_empty()
    }

    pub(crate) fn notify(&self, lost: Vec<LostConnection>) {
        let now = SystemTime::now();
        for connection in lost {
            let Value::Object(mut event) = connection.record else {
                continue;
            };
            let endpoint = event.get("endpoint").and_then(Value::as_str).unwrap_or("");
            let Some(notifier) = self.by_endpoint.get(endpoint) else {
                continue;
            };
            let notifier = Arc::clone(notifier);
            let connected_at = event
                .remove("connected_at")
                .and_then(|v| v.as_f64())
                .unwrap_or(0.0);
            let at = wire::unix_seconds(now);
            event.insert("code".to_owned(), json!(LOST_CODE));
            event.insert("reason".to_owned(), json!(LOST_REASON));
            event.insert("duration".to_owned(), json!((at - connected_at).max(0.0)));
            event.insert("at".to_owned(), json!(at));
            notifier.push(Value::Object(event));
        }
    }
}
