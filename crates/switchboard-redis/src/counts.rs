//! Cluster-wide counts: each instance reports its own in a Redis hash that
//! expires unless refreshed, and readers add up the other instances'.
//!
//! Keys (prefix `sb`):
//! - `sb:v1:counts:<instance>`: a hash with `conns` (live connections) and
//!   `room:<name>` (local members of each room with any), expiring after
//!   `count_ttl` unless the instance's heartbeat refreshes it.
//! - `sb:v1:instances`: the set of instance ids that have reported.
//!
//! Every heartbeat an instance writes `conns` and the rooms whose size
//! changed since the last heartbeat (one MULTI, a few commands), and
//! refreshes the expiry; after a reconnect, or when its hash expired, it
//! rewrites the whole hash. A reader sends `SMEMBERS` and then one pipelined
//! `HGET` per other instance: two round trips, O(instances), whatever the
//! number of connections or rooms. Its own instance's share is read from
//! the local hub, exactly.

use redis::aio::MultiplexedConnection;
use switchboard::Room;
use switchboard::broker::{BrokerError, InstanceId, LocalNode, Topic, TopicWatch};

use crate::broker::Shared;

/// The hash field of a room's size.
fn room_field(room: &Room) -> String {
    format!("room:{room}")
}

const CONNS: &str = "conns";

/// Fields per HSET in a full rewrite.
const BATCH: usize = 1000;

/// Writes this instance's counts.
#[derive(Debug)]
pub(crate) struct CountWriter {
    key: String,
    instances: String,
    instance: String,
    ttl_ms: u64,
    full: bool,
}

impl CountWriter {
    pub(crate) fn new(shared: &Shared, instance: &InstanceId) -> Self {
        Self {
            key: shared.names.counts_key(instance),
            instances: shared.names.instances_key(),
            instance: instance.to_string(),
            ttl_ms: u64::try_from(shared.config.count_ttl.as_millis()).unwrap_or(u64::MAX),
            full: true,
        }
    }

    /// The next write rewrites the whole hash.
    pub(crate) fn rewrite_all(&mut self) {
        self.full = true;
    }

    /// One heartbeat's write.
    pub(crate) async fn write(
        &mut self,
        mut conn: MultiplexedConnection,
        node: &LocalNode,
        watch: &TopicWatch,
    ) -> redis::RedisResult<()> {
        if !self.full {
            let rooms: Vec<Room> = watch
                .take()
                .into_iter()
                .filter_map(|topic| match topic {
                    Topic::Room(room) => Some(room),
                    Topic::User(_) => None,
                })
                .collect();
            let hub = node.hub();
            let mut pipe = redis::pipe();
            pipe.atomic().cmd("EXISTS").arg(&self.key);
            pipe.cmd("HSET")
                .arg(&self.key)
                .arg(CONNS)
                .arg(hub.connection_count())
                .ignore();
            for room in rooms {
                match hub.room_size(room.clone()) {
                    0 => pipe
                        .cmd("HDEL")
                        .arg(&self.key)
                        .arg(room_field(&room))
                        .ignore(),
                    n => pipe
                        .cmd("HSET")
                        .arg(&self.key)
                        .arg(room_field(&room))
                        .arg(n)
                        .ignore(),
                };
            }
            self.refresh(&mut pipe);
            let (existed,): (bool,) = pipe.query_async(&mut conn).await?;
            if existed {
                return Ok(());
            }
            // The hash had expired (a heartbeat came too late): what was just
            // written is only the changes, so write everything.
            self.full = true;
        }
        watch.clear();
        let hub = node.hub();
        let mut fields: Vec<(String, usize)> = vec![(CONNS.to_owned(), hub.connection_count())];
        fields.extend(hub.rooms().into_iter().map(|(r, n)| (room_field(&r), n)));
        let mut pipe = redis::pipe();
        pipe.atomic().cmd("DEL").arg(&self.key).ignore();
        for chunk in fields.chunks(BATCH) {
            pipe.cmd("HSET").arg(&self.key).arg(chunk).ignore();
        }
        self.refresh(&mut pipe);
        pipe.query_async::<()>(&mut conn).await?;
        self.full = false;
        Ok(())
    }

    fn refresh(&self, pipe: &mut redis::Pipeline) {
        pipe.cmd("PEXPIRE")
            .arg(&self.key)
            .arg(self.ttl_ms)
            .ignore()
            .cmd("SADD")
            .arg(&self.instances)
            .arg(&self.instance)
            .ignore();
    }

    /// Removes this instance's counts (on shutdown). Best effort: if Redis
    /// is unreachable, the hash expires by itself.
    pub(crate) async fn withdraw(&self, mut conn: MultiplexedConnection) {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("DEL")
            .arg(&self.key)
            .ignore()
            .cmd("SREM")
            .arg(&self.instances)
            .arg(&self.instance)
            .ignore();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(1),
            pipe.query_async::<()>(&mut conn),
        )
        .await;
    }
}

/// Live connections on the other instances.
pub(crate) async fn remote_connections(shared: &Shared) -> Result<usize, BrokerError> {
    let values = read_field(shared, CONNS.to_owned()).await?;
    // An instance in the set without a `conns` field has expired: forget it.
    let gone: Vec<&String> = values
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(id, _)| id)
        .collect();
    if !gone.is_empty() {
        let key = shared.names.instances_key();
        let _ = shared
            .with_publisher(|mut conn| async move {
                redis::cmd("SREM")
                    .arg(key)
                    .arg(gone)
                    .query_async::<()>(&mut conn)
                    .await
            })
            .await;
    }
    Ok(values.iter().filter_map(|(_, v)| *v).sum())
}

/// Members of `room` on the other instances.
pub(crate) async fn remote_room_size(shared: &Shared, room: &Room) -> Result<usize, BrokerError> {
    let values = read_field(shared, room_field(room)).await?;
    Ok(values.iter().filter_map(|(_, v)| *v).sum())
}

/// `field` of every other instance's counts hash.
async fn read_field(
    shared: &Shared,
    field: String,
) -> Result<Vec<(String, Option<usize>)>, BrokerError> {
    let me = shared.instance.get().map(InstanceId::as_str).unwrap_or("");
    let instances_key = shared.names.instances_key();
    let ids: Vec<String> = shared
        .with_publisher(|mut conn| async move {
            redis::cmd("SMEMBERS")
                .arg(instances_key)
                .query_async(&mut conn)
                .await
        })
        .await?;
    let others: Vec<String> = ids.into_iter().filter(|id| id != me).collect();
    if others.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for id in &others {
        let key = InstanceId::new(id)
            .map(|id| shared.names.counts_key(&id))
            .unwrap_or_default();
        pipe.cmd("HGET").arg(key).arg(&field);
    }
    let values: Vec<Option<usize>> = shared
        .with_publisher(|mut conn| async move { pipe.query_async(&mut conn).await })
        .await?;
    Ok(others.into_iter().zip(values).collect())
}
