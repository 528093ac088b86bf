//! Subscribing a connection to a channel with history: where the stream
//! stands, a replay of what the connection missed, then live publications,
//! with nothing lost or doubled in between; and reading a stream.

use std::sync::Arc;

use super::stream::{
    Cell, History, HistoryQuery, Joined, Plan, StreamLimits, StreamPosition, Want,
};
use super::{BrokerError, Cluster, Topic};
use crate::delivery::Outgoing;
use crate::hub::{ConnectionId, Hub, Room};

/// How often a join retries when the channel's cursor is dropped under it
/// (its last subscriber left at that moment).
const ATTEMPTS: usize = 8;

impl Cluster {
    /// Whether `room` keeps a history (a [`super::stream::HistoryRule`] matches it).
    pub fn keeps_history(&self, room: &Room) -> bool {
        self.node()
            .streams()
            .config()
            .rule_for(room.as_str())
            .is_some()
    }

    /// The stream limits of `room`, when it keeps a history.
    fn limits_for(&self, room: &Room) -> Option<StreamLimits> {
        let config = self.node().streams().config();
        let rule = config.rule_for(room.as_str())?;
        Some(StreamLimits::new(rule, config))
    }

    /// Reads `room`'s stream; `Ok(None)` when it keeps no history.
    pub async fn history(
        &self,
        room: &Room,
        query: &HistoryQuery,
    ) -> Result<Option<History>, BrokerError> {
        let Some(limits) = self.limits_for(room) else {
            return Ok(None);
        };
        self.broker().history(room, query, &limits).await.map(Some)
    }

    /// Subscribes connection `id` to `room`, a channel with history, as
    /// `want` says, and joins it to the hub room.
    ///
    /// The connection gets, in this order: the frame `ack` builds from the
    /// outcome (`SUBSCRIBE_SUCCESS`, say), the replay, then every live
    /// publication after the position in [`Joined::position`]: none
    /// missing, none twice. A recovery replays all it was asked for or
    /// nothing ([`Joined::recovered`] says which, and why). `Err` when the
    /// stream could not be read (the broker is down): the connection is
    /// not subscribed.
    pub async fn join_stream<F>(
        &self,
        id: ConnectionId,
        room: &Room,
        want: Want,
        ack: F,
    ) -> Result<Joined, BrokerError>
    where
        F: FnOnce(&Joined) -> Option<Outgoing>,
    {
        let limits = self
            .limits_for(room)
            .ok_or(BrokerError::Unsupported("history for this channel"))?;
        let streams = self.node().streams();
        let limit = streams.config().recovery_limit;
        let hub = self.hub();
        let mut ack = Some(ack);
        for _ in 0..ATTEMPTS {
            let (cell, made) = streams.get_or_create(room);
            if made {
                self.node().touch(&Topic::Room(room.clone()));
            }
            if let Err(e) = self.start_cursor(&cell, room, &limits).await {
                self.release(room);
                return Err(e);
            }
            let (at, from, all_or_nothing) = {
                let mut cursor = cell.cursor.lock();
                if cursor.is_closed() {
                    continue;
                }
                match cursor.plan(id, &want, limit) {
                    None => continue,
                    Some(Plan::Now(joined)) => {
                        let joined_hub = switch(hub, id, room, &joined, ack.take(), &[]);
                        drop(cursor);
                        if !joined_hub {
                            self.release(room);
                        }
                        return Ok(joined);
                    }
                    Some(Plan::Replay {
                        at,
                        from,
                        all_or_nothing,
                    }) => (at, from, all_or_nothing),
                }
            };
            let mut guard = Abandon {
                cluster: self,
                cell: &cell,
                room,
                id,
                armed: true,
            };
            let count = (at.offset - from + 1) as usize;
            let since = StreamPosition::new(at.epoch.clone(), from - 1);
            let query = HistoryQuery::after(Some(since), count);
            let read = self.broker().history(room, &query, &limits).await.ok();
            guard.armed = false;
            let (joined, joined_hub) = {
                let mut cursor = cell.cursor.lock();
                let (joined, frames) = cursor.finish(id, &at, from, all_or_nothing, read);
                let joined_hub = switch(hub, id, room, &joined, ack.take(), &frames);
                (joined, joined_hub)
            };
            if !joined_hub {
                self.release(room);
            }
            return Ok(joined);
        }
        Err(BrokerError::Unavailable(format!(
            "the cursor of {room} kept closing"
        )))
    }

    /// Reads where `room`'s stream stands and starts its cursor there, once
    /// (after the broker listens for the room, so that nothing published
    /// after the read is missed).
    async fn start_cursor(
        &self,
        cell: &Arc<Cell>,
        room: &Room,
        limits: &StreamLimits,
    ) -> Result<(), BrokerError> {
        cell.started
            .get_or_try_init(|| async {
                self.sync().await?;
                let query = HistoryQuery::position();
                let history = self.broker().history(room, &query, limits).await?;
                cell.cursor.lock().go_live(self.hub(), history.position);
                Ok::<(), BrokerError>(())
            })
            .await
            .map(drop)
    }

    /// Drops `room`'s cursor if nothing needs it any more.
    fn release(&self, room: &Room) {
        if self.node().streams().release_if_unused(self.hub(), room) {
            self.node().touch(&Topic::Room(room.clone()));
        }
    }
}

/// Sends the acknowledgement and what the connection is owed, and joins it
/// to the hub room, under the cursor's lock: no live publication can come
/// between. False when the connection is gone.
fn switch(
    hub: &Hub,
    id: ConnectionId,
    room: &Room,
    joined: &Joined,
    ack: Option<impl FnOnce(&Joined) -> Option<Outgoing>>,
    frames: &[Outgoing],
) -> bool {
    if let Some(frame) = ack.and_then(|ack| ack(joined)) {
        hub.send_to(id, &frame);
    }
    for frame in frames {
        hub.send_to(id, frame);
    }
    hub.join(id, room.clone()) || hub.rooms_of(id).contains(room)
}

/// Undoes a join that was dropped while it read the stream (its connection
/// went away): live publications are no longer held for it.
struct Abandon<'a> {
    cluster: &'a Cluster,
    cell: &'a Arc<Cell>,
    room: &'a Room,
    id: ConnectionId,
    armed: bool,
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.cell.cursor.lock().abandon(self.id);
            self.cluster.release(self.room);
        }
    }
}
