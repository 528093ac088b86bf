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

/// The start of every script: the channel's epoch, made afresh (and the
/// stream emptied) when the channel has none, or when Redis restarted
/// since the epoch began and is not durable (ARGV[8] is '0'; ARGV[9] is the
/// server's `run_id`, empty when unknown). KEYS[1] is the meta hash,
/// KEYS[2] the stream, ARGV[6] a fresh epoch.
const EPOCH: &str = r#"
local meta, stream = KEYS[1], KEYS[2]
local epoch = redis.call('HGET', meta, 'e')
if epoch and ARGV[8] == '0' and ARGV[9] ~= '' then
  local boot = redis.call('HGET', meta, 'r')
  if boot and boot ~= ARGV[9] then epoch = nil end
end
if not epoch then
  epoch = ARGV[6]
  redis.call('DEL', stream)
  redis.call('HSET', meta, 'e', epoch, 'o', 0, 'r', ARGV[9])
end
"#;

/// Appends a publication. KEYS: meta, stream, idempotency key (or "").
/// ARGV: the message (a JSON object), size, ttl ms, meta ttl ms, the
/// pub/sub channel, a fresh epoch, the idempotency window ms, durable,
/// run id. Returns `{epoch, offset, duplicate}`.
const APPEND: &str = r#"
local idem = KEYS[3]
if idem ~= '' then
  local seen = redis.call('GET', idem)
  if seen then
    local space = string.find(seen, ' ', 1, true)
    return {string.sub(seen, 1, space - 1), tonumber(string.sub(seen, space + 1)), 1}
  end
end
"#;

const APPEND_REST: &str = r#"
local offset = redis.call('HINCRBY', meta, 'o', 1)
local message = '{"offset":' .. offset .. ',"epoch":"' .. epoch .. '",' .. string.sub(ARGV[1], 2)
local now = redis.call('TIME')
local ms = now[1] * 1000 + math.floor(now[2] / 1000)
redis.call('XADD', stream, 'MAXLEN', ARGV[2], offset .. '-0', 'd', message, 't', ms)
redis.call('PEXPIRE', stream, ARGV[3])
redis.call('PEXPIRE', meta, ARGV[4])
if idem ~= '' then
  redis.call('SET', idem, epoch .. ' ' .. offset, 'PX', ARGV[7])
end
redis.call('PUBLISH', ARGV[5], message)
return {epoch, offset, 0}
"#;

/// Reads a stream. KEYS: meta, stream. ARGV: the meta ttl ms, the epoch
/// and offset to read after, the limit, 1 for newest first, a fresh epoch
/// (for a channel without one), the ttl ms (older entries are not
/// returned), durable, run id. Returns `{epoch, latest offset, id,
/// message, id, message, ...}`.
const READ: &str = r#"
redis.call('PEXPIRE', meta, ARGV[1])
local top = redis.call('HGET', meta, 'o') or '0'
local out = {epoch, tostring(top)}
local limit = tonumber(ARGV[4])
if limit > 0 then
  local after = 0
  if ARGV[2] == epoch then after = tonumber(ARGV[3]) end
  local entries
  if ARGV[5] == '1' then
    entries = redis.call('XREVRANGE', stream, '+', '(' .. after .. '-0', 'COUNT', limit)
  else
    entries = redis.call('XRANGE', stream, '(' .. after .. '-0', '+', 'COUNT', limit)
  end
  local now = redis.call('TIME')
  local oldest = now[1] * 1000 + math.floor(now[2] / 1000) - tonumber(ARGV[7])
  for _, entry in ipairs(entries) do
    local fields = entry[2]
    local message, at
    for i = 1, #fields, 2 do
      if fields[i] == 'd' then message = fields[i + 1] end
      if fields[i] == 't' then at = tonumber(fields[i + 1]) end
    end
    if message and (not at or at >= oldest) then
      table.insert(out, entry[1])
      table.insert(out, message)
    end
  end
end
return out
"#;

/// Publishes once per key. KEYS: the key. ARGV: the pub/sub channel, the
/// message, the window ms. Returns 1 when published, 0 for a retry.
const ONCE: &str = r#"
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[3]) then
  redis.call('PUBLISH', ARGV[1], ARGV[2])
  return 1
end
return 0
"#;

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
            append: Script::new(&format!("{APPEND}{EPOCH}{APPEND_REST}")),
            read: Script::new(&format!("{EPOCH}{READ}")),
            once: Script::new(ONCE),
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
    let (epoch, offset, duplicate): (String, u64, u8) = shared
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
            Ok(Envelope {
                body: Body::Message(payload),
                ..
            }) => publications.push(Publication { offset, payload }),
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
