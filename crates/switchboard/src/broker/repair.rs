//! The repair task: reads back from a channel's stream what its cursor is
//! missing (after a gap, an epoch change, or a broker reconnection), and
//! tries again while the broker cannot answer.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::Broker;
use super::node::LocalNode;
use super::stream::{HistoryQuery, StreamLimits, gap_due};
use crate::hub::Room;

/// Publications read back per request.
pub(crate) const READ_CHUNK: usize = 1000;

/// How long to wait before reading again after the broker failed.
const RETRY: Duration = Duration::from_secs(1);

/// Runs until the cluster stops it.
pub(crate) async fn run(node: LocalNode, broker: Arc<dyn Broker>) {
    loop {
        for room in node.streams().due().await {
            repair(&node, &*broker, &room).await;
        }
    }
}

async fn repair(node: &LocalNode, broker: &dyn Broker, room: &Room) {
    let streams = node.streams();
    let config = streams.config();
    let (Some(cell), Some(rule)) = (streams.get(room), config.rule_for(room.as_str())) else {
        return;
    };
    let limits = StreamLimits::new(rule, config);
    let Some(since) = cell.cursor.lock().position() else {
        return;
    };
    let query = HistoryQuery::after(Some(since), READ_CHUNK);
    match broker.history(room, &query, &limits).await {
        Ok(history) => {
            let (more, gap) = {
                let mut cursor = cell.cursor.lock();
                let more = cursor.repair(node.hub(), history, READ_CHUNK);
                (more, gap_due(&cursor, config.repair_after))
            };
            if more {
                streams.schedule(room, Instant::now());
            } else if let Some(due) = gap {
                // Still missing something past what the stream had: give
                // it the wait again.
                streams.schedule(room, due.max(Instant::now() + config.repair_after));
            }
        }
        Err(e) => {
            tracing::warn!(channel = %room, error = %e, "could not read a stream back; retrying");
            streams.schedule(room, Instant::now() + RETRY);
        }
    }
}
