//! Channels with history in Redis: one Lua script per operation, so that
//! each is atomic.
//!
//! Keys of one channel share the hash tag `{<channel>}` (one Redis Cluster
//! slot):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `<prefix>:v1:meta:{<channel>}` | hash | `e`: the epoch, `o`: the latest offset; expires `meta_ttl` after the last publication |
//! | `<prefix>:v1:stream:{<channel>}` | stream | entry `<offset>-0` per publication, fields `d` (the message as published) and `t` (Redis time, ms); trimmed to `size`, expires `ttl` after the last publication |
//! | `<prefix>:v1:idem:{<channel>}:<key>` | string | `<epoch> <offset>` of the first publish with an idempotency key, for the idempotency window |
//! | `<prefix>:v1:once:<key>` | string | an idempotency key of a publish without history, for the window |
//!
//! A publish runs [`APPEND`]: with a key seen before, it answers the first
//! position and does nothing else; otherwise it takes the epoch (making one
//! if the channel has none: new channel, expired, or Redis lost its data),
//! increments the offset, adds the entry, refreshes the expiries, and
//! publishes the message with `"offset"` and `"epoch"` added in front, all
//! before it answers. So an answer means the stream holds the message.

use std::time::Duration;

use redis::Script;
use switchboard::Room;
use switchboard::broker::stream::{
    Appended, Epoch, History, HistoryQuery, IdempotencyKey, Publication, StreamLimits,
    StreamPosition,
};
use switchboard::broker::{Body, BrokerError, Envelope, Target};

use crate::broker::Shared;
use crate::wire::{self, Channel};

/// Appends a publication (`scripts/append.lua`, whose header lists its
/// keys and arguments). A worker outside the cluster may run it to publish
/// to a channel with history.
pub const APPEND_SCRIPT: &str = include_str!("scripts/append.lua");

/// Reads a stream (`scripts/read.lua`).
const READ_SCRIPT: &str = include_str!("scripts/read.lua");

/// Publishes once per idempotency key (`scripts/once.lua`).
const ONCE_SCRIPT: &str = include_str!("scripts/once.lua");

/// The scripts, hashed once.
#[derive(Debug)]
pub(crate) struct Scripts {
    append: Script,
    read: Script,
    once: Script,
}

impl Default for Scripts {
    fn default() -> Self {
        Self {
            append: Script::new(APPEND_SCRIPT),
            read: Script::new(READ_SCRIPT),
            once: Script::new(ONCE_SCRIPT),
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

fn protocol_error(what: &str) -> BrokerError {
    BrokerError::Backend(format!("unexpected answer from Redis to {what}").into())
}

/// Appends `envelope` (a message to a room) to the room's stream.
pub(crate) async fn append(
    shared: &Shared,
    envelope: &Envelope,
    limits: &StreamLimits,
    key: Option<&IdempotencyKey>,
) -> Result<Appended, BrokerError> {
    let Target::Room(room) = &envelope.target else {
        return Err(BrokerError::Unsupported("history for this target"));
    };
    if !matches!(envelope.body, Body::Message(_)) {
        return Err(BrokerError::Unsupported("history for this body"));
    }
    let names = &shared.names;
    let message = wire::encode(envelope).map_err(|e| BrokerError::Backend(e.into()))?;
    let idem = key.map_or_else(String::new, |k| names.idempotency_key(room, k));
    let channel = names.room(room);
    let script = &shared.scripts.append;
    let (durable, run_id) = (shared.config.durable, shared.run_id());
    let (epoch, offset, duplicate, _listening): (String, u64, u8, u64) = shared
        .with_publisher(|mut conn| async move {
            script
                .key(names.meta_key(room))
                .key(names.stream_key(room))
                .key(idem)
                .arg(message)
                .arg(limits.size)
                .arg(millis(limits.ttl))
                .arg(millis(limits.meta_ttl))
                .arg(channel)
                .arg(Epoch::random().as_str())
                .arg(millis(limits.idempotency_window))
                .arg(u8::from(durable))
                .arg(run_id.as_str())
                .invoke_async(&mut conn)
                .await
        })
        .await?;
    let position = StreamPosition::new(Epoch::new(epoch), offset);
    Ok(if duplicate == 1 {
        Appended::duplicate(position)
    } else {
        Appended::new(position)
    })
}

/// Reads `room`'s stream.
pub(crate) async fn read(
    shared: &Shared,
    room: &Room,
    query: &HistoryQuery,
    limits: &StreamLimits,
) -> Result<History, BrokerError> {
    let names = &shared.names;
    let (since_epoch, since_offset) = match &query.since {
        Some(since) => (since.epoch.to_string(), since.offset),
        None => (String::new(), 0),
    };
    let script = &shared.scripts.read;
    let (durable, run_id) = (shared.config.durable, shared.run_id());
    let answer: Vec<String> = shared
        .with_publisher(|mut conn| async move {
            script
                .key(names.meta_key(room))
                .key(names.stream_key(room))
                .arg(millis(limits.meta_ttl))
                .arg(since_epoch)
                .arg(since_offset)
                .arg(query.limit)
                .arg(u8::from(query.newest_first))
                .arg(Epoch::random().as_str())
                .arg(millis(limits.ttl))
                .arg(u8::from(durable))
                .arg(run_id.as_str())
                .invoke_async(&mut conn)
                .await
        })
        .await?;
    let [epoch, top, entries @ ..] = answer.as_slice() else {
        return Err(protocol_error("a history read"));
    };
    let top: u64 = top.parse().map_err(|_| protocol_error("a history read"))?;
    let mut publications = Vec::with_capacity(entries.len() / 2);
    for pair in entries.chunks_exact(2) {
        let offset = pair[0]
            .split_once('-')
            .and_then(|(offset, _)| offset.parse().ok())
            .ok_or_else(|| protocol_error("a history read"))?;
        match wire::decode(Channel::Room(room.clone()), pair[1].as_bytes()) {
            Ok(mut envelope) if matches!(envelope.body, Body::Message(_)) => {
                wire::to_channel_text(&shared.config.structured_channels, &mut envelope);
                if let Body::Message(payload) = envelope.body {
                    publications.push(Publication { offset, payload });
                }
            }
            Ok(_) | Err(_) => {
                tracing::warn!(channel = %room, offset, "skipped an unreadable stream entry");
            }
        }
    }
    Ok(History::new(
        StreamPosition::new(Epoch::new(epoch.as_str()), top),
        publications,
    ))
}

/// Publishes `envelope` unless `key` was used within `window`.
pub(crate) async fn publish_once(
    shared: &Shared,
    envelope: &Envelope,
    key: &IdempotencyKey,
    window: Duration,
) -> Result<bool, BrokerError> {
    let names = &shared.names;
    let channel = names
        .for_target(&envelope.target)
        .map_err(|e| BrokerError::Backend(e.into()))?;
    let message = wire::encode(envelope).map_err(|e| BrokerError::Backend(e.into()))?;
    let script = &shared.scripts.once;
    let sent: u8 = shared
        .with_publisher(|mut conn| async move {
            script
                .key(names.once_key(key))
                .arg(channel)
                .arg(message)
                .arg(millis(window))
                .invoke_async(&mut conn)
                .await
        })
        .await?;
    Ok(sent == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_and_read_decide_the_epoch_alike() {
        let start = APPEND_SCRIPT
            .find("-- The channel's epoch")
            .expect("the epoch block");
        let end = APPEND_SCRIPT.find("local offset").expect("the append");
        let block = &APPEND_SCRIPT[start..end];
        assert!(
            READ_SCRIPT.contains(block),
            "read.lua's epoch block differs"
        );
    }
}
