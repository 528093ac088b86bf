//! The protocol hooks behind the refresh proxy and the notifications.

use std::sync::Arc;
use std::time::SystemTime;

use serde_json::Value;
use switchboard::CloseFrame;
use switchboard::protocol::wire::Channel;
use switchboard::protocol::{Connection, ProtocolHooks};
use switchboard::security::Identity;

use super::lost;
use super::notify::Notifier;
use super::refresh::Refresher;
use super::wire::{self, Context, DisconnectEvent, UnsubscribeEvent};

#[derive(Debug)]
pub(crate) struct ProxyHooks {
    pub(crate) context: Arc<Context>,
    pub(crate) disconnect: Option<Arc<Notifier>>,
    pub(crate) unsubscribe: Option<Arc<Notifier>>,
    pub(crate) refresh: Option<Arc<Refresher>>,
    /// Keep a record of each connection in the broker, so that another
    /// instance sends its disconnect if this one dies (`lost`).
    pub(crate) records: bool,
}

impl ProxyHooks {
    /// Records what a lost connection's disconnect event needs.
    fn record(&self, conn: &Connection) {
        if self.records {
            let record = lost::record(&self.context, conn);
            self.context.cluster().record_connection(conn.id(), &record);
        }
    }
}

impl ProtocolHooks for ProxyHooks {
    fn on_open(&self, conn: &Connection) {
        if let Some(refresh) = &self.refresh {
            refresh.schedule(conn);
        }
        self.record(conn);
    }

    fn on_authenticated(&self, conn: &Connection, _identity: &Identity, _refreshed: bool) {
        if let Some(refresh) = &self.refresh {
            refresh.schedule(conn);
        }
        self.record(conn);
    }

    fn on_subscribe(&self, conn: &Connection, _channel: &Channel) {
        self.record(conn);
    }

    fn on_unsubscribe(&self, conn: &Connection, channel: &Channel) {
        self.record(conn);
        if let Some(notifier) = &self.unsubscribe {
            let event = UnsubscribeEvent {
                caller: self.context.caller(conn),
                channel: channel.as_str().to_owned(),
                at: wire::unix_seconds(SystemTime::now()),
            };
            notifier.push(serde_json::to_value(event).unwrap_or(Value::Null));
        }
    }

    fn on_close(&self, conn: &Connection, close: &CloseFrame) {
        if let Some(refresh) = &self.refresh {
            refresh.cancel(conn.id());
        }
        if self.records {
            self.context.cluster().forget_connection(conn.id());
        }
        let Some(notifier) = &self.disconnect else {
            return;
        };
        let hub = conn.hub();
        let duration = hub
            .info(conn.id())
            .and_then(|info| SystemTime::now().duration_since(info.connected_at).ok())
            .map_or(0.0, |d| d.as_secs_f64());
        let event = DisconnectEvent {
            caller: self.context.caller(conn),
            code: close.code.as_u16(),
            reason: close.reason.to_string(),
            duration,
            channels: hub
                .rooms_of(conn.id())
                .iter()
                .map(|room| room.as_str().to_owned())
                .collect(),
            at: wire::unix_seconds(SystemTime::now()),
        };
        notifier.push(serde_json::to_value(event).unwrap_or(Value::Null));
    }
}
