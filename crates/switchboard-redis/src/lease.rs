//! Instance leases: how the cluster notices a dead instance and cleans up
//! after it.
//!
//! Every heartbeat an instance renews its lease (`sb:v1:leases`, a zset of
//! instance id → when the lease ends, in Redis time). An instance whose
//! lease ran out (killed, frozen, cut off from Redis for longer than
//! `lease_ttl`) is declared dead by the first other instance to see it
//! (`reap.lua`, once per death): its tombstone `sb:v1:dead:<id>` is set,
//! its counts are withdrawn, and its presence entries are moved aside and
//! removed one by one, each by whoever deletes it, with the leave events
//! they make. A reaper that dies midway leaves the rest for the next.
//!
//! An instance only declares others dead after holding its own lease for
//! a whole `lease_ttl` without a failure, so after a Redis outage (when
//! every lease ran out) nobody is declared dead for it. A frozen instance
//! that wakes up finds its tombstone: it closes its connections with 1012
//! (`LocalNode::declared_dead`), drops the tombstone and starts again.
//!
//! Bound: an instance is declared dead within `lease_ttl + heartbeat` of
//! its last renewal (9 s with the defaults), and its leaves follow at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::Script;
use switchboard::Room;
use switchboard::broker::presence::LostConnection;
use switchboard::broker::{BrokerError, ConnectionAddr, InstanceId, LocalNode};
use switchboard::hub::ConnectionId;

use crate::broker::{Shared, stopped};
use crate::presence::{BATCH, remove_all};
use crate::stats::bump;

/// How long a tombstone outlives the death it marks.
const TOMBSTONE: Duration = Duration::from_secs(3600);

#[derive(Debug)]
pub(crate) struct Scripts {
    renew: Script,
    reap: Script,
    /// Drops an instance from the reaping set once its hashes are empty.
    done: Script,
    /// Takes one record: its JSON, to whoever deletes it.
    take: Script,
}

impl Default for Scripts {
    fn default() -> Self {
        Self {
            renew: Script::new(include_str!("scripts/lease.lua")),
            reap: Script::new(include_str!("scripts/reap.lua")),
            done: Script::new(
                "if redis.call('HLEN', KEYS[1]) + redis.call('HLEN', KEYS[3]) == 0 then redis.call('SREM', KEYS[2], ARGV[1]) end return 1",
            ),
            take: Script::new(
                "local v = redis.call('HGET', KEYS[1], ARGV[1]) if v and redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then return v end return false",
            ),
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

pub(crate) async fn run(shared: Arc<Shared>, node: LocalNode) {
    let mut stop = shared.stop.subscribe();
    let mut tick = tokio::time::interval(shared.config.heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut healthy_since: Option<Instant> = None;
    let mut up = shared.publisher_up.subscribe();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            // A new publisher connection: renew at once, not a heartbeat later.
            Ok(()) = up.changed() => {
                if !*up.borrow_and_update() {
                    continue;
                }
            }
            () = stopped(&mut stop) => {
                // Give the lease up: whatever this instance leaves behind
                // is removed by the others at their next heartbeat.
                let _ = renew(&shared, &node, Duration::ZERO).await;
                return;
            }
        }
        match renew(&shared, &node, shared.config.lease_ttl).await {
            Ok(true) => {
                healthy_since.get_or_insert_with(Instant::now);
            }
            Ok(false) => {
                healthy_since = None;
                bump(&shared.counters.declared_dead, 1);
                node.declared_dead();
                let dead = shared.names.dead_key(node.instance().as_str());
                let _ = shared
                    .with_publisher(|mut conn| async move {
                        redis::cmd("DEL")
                            .arg(dead)
                            .query_async::<()>(&mut conn)
                            .await
                    })
                    .await;
                continue;
            }
            Err(_) => {
                healthy_since = None;
                continue;
            }
        }
        if healthy_since.is_some_and(|t| t.elapsed() >= shared.config.lease_ttl)
            && let Err(e) = reap(&shared, &node).await
        {
            tracing::debug!(error = %e, "reaping dead instances failed; retrying next heartbeat");
        }
    }
}

/// Renews this instance's lease for `ttl`; `Ok(false)` when it was
/// declared dead.
async fn renew(shared: &Shared, node: &LocalNode, ttl: Duration) -> Result<bool, BrokerError> {
    let names = &shared.names;
    let script = &shared.leases.renew;
    let id = node.instance().as_str();
    let alive: u8 = shared
        .with_publisher(|mut conn| async move {
            script
                .key(names.leases_key())
                .key(names.dead_key(id))
                .arg(id)
                .arg(millis(ttl))
                .invoke_async(&mut conn)
                .await
        })
        .await?;
    Ok(alive == 1)
}

/// Declares the instances whose lease ran out dead, then removes what
/// every dead instance left.
async fn reap(shared: &Shared, node: &LocalNode) -> Result<(), BrokerError> {
    let names = &shared.names;
    let me = node.instance().as_str();
    let (time, leases): ((u64, u64), Vec<(String, u64)>) = shared
        .with_publisher(|mut conn| async move {
            redis::pipe()
                .cmd("TIME")
                .cmd("ZRANGE")
                .arg(names.leases_key())
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES")
                .query_async(&mut conn)
                .await
        })
        .await?;
    let now = time.0 * 1000 + time.1 / 1000;
    for (id, _) in leases.iter().filter(|(id, end)| *end < now && id != me) {
        let script = &shared.leases.reap;
        let claimed: u8 = shared
            .with_publisher(|mut conn| async move {
                script
                    .key(names.leases_key())
                    .key(names.dead_key(id))
                    .key(names.presence_index_key_of(id))
                    .key(names.presence_reaping_key(id))
                    .key(names.counts_key_of(id))
                    .key(names.instances_key())
                    .key(names.reaping_key())
                    .key(names.records_key(id))
                    .key(names.records_reaping_key(id))
                    .arg(id)
                    .arg(millis(TOMBSTONE))
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        if claimed == 1 {
            bump(&shared.counters.reaped, 1);
            tracing::warn!(instance = %id, "declared instance dead: its lease ran out; removing its presence");
        }
    }
    let reaping: Vec<String> = shared
        .with_publisher(|mut conn| async move {
            redis::cmd("SMEMBERS")
                .arg(names.reaping_key())
                .query_async(&mut conn)
                .await
        })
        .await?;
    for id in reaping {
        clean_up(shared, node, &id).await?;
    }
    Ok(())
}

/// The first `HSCAN` page of a hash that is emptied as it is read (fields
/// and values, flat): each pass takes what it finds and removes it.
async fn first_page(shared: &Shared, key: &str) -> Result<Vec<String>, BrokerError> {
    let key = key.to_owned();
    let (_cursor, page): (String, Vec<String>) = shared
        .with_publisher(|mut conn| async move {
            redis::cmd("HSCAN")
                .arg(key)
                .arg(0)
                .arg("COUNT")
                .arg(BATCH)
                .query_async(&mut conn)
                .await
        })
        .await?;
    Ok(page)
}

/// Removes every entry a dead instance left, announcing the leaves.
async fn clean_up(shared: &Shared, node: &LocalNode, id: &str) -> Result<(), BrokerError> {
    let names = &shared.names;
    let key = names.presence_reaping_key(id);
    loop {
        let page = first_page(shared, &key).await?;
        let entries: Vec<(Room, String)> = page
            .chunks(2)
            .filter_map(|pair| pair.first())
            .filter_map(|field| field.rsplit_once('\n'))
            .map(|(room, addr)| (Room::from(room), addr.to_owned()))
            .collect();
        if entries.is_empty() {
            break;
        }
        let events = remove_all(shared, &key, node.presence_config(), &entries).await?;
        node.announce_presence(events);
    }
    hand_out_records(shared, node, id).await?;
    let script = &shared.leases.done;
    shared
        .with_publisher(|mut conn| async move {
            script
                .key(key)
                .key(names.reaping_key())
                .key(names.records_reaping_key(id))
                .arg(id)
                .invoke_async::<u8>(&mut conn)
                .await
        })
        .await?;
    Ok(())
}

/// Hands the connection records a dead instance left to this instance's
/// handlers, each taken by exactly one instance.
async fn hand_out_records(shared: &Shared, node: &LocalNode, id: &str) -> Result<(), BrokerError> {
    let key = shared.names.records_reaping_key(id);
    let Ok(instance) = InstanceId::new(id) else {
        return Ok(());
    };
    loop {
        let page = first_page(shared, &key).await?;
        let ids: Vec<String> = page.chunks(2).filter_map(|p| p.first().cloned()).collect();
        if ids.is_empty() {
            return Ok(());
        }
        let script = &shared.leases.take;
        let taken: Vec<Option<String>> = {
            let key = key.clone();
            let ids = ids.clone();
            shared
                .with_publisher(|mut conn| async move {
                    let calls: Vec<_> = ids
                        .iter()
                        .map(|field| {
                            let mut call = script.prepare_invoke();
                            call.key(&key).arg(field);
                            call
                        })
                        .collect();
                    let mut pipe = redis::pipe();
                    pipe.load_script(script).ignore();
                    for call in &calls {
                        pipe.invoke_script(call);
                    }
                    pipe.query_async(&mut conn).await
                })
                .await?
        };
        let lost: Vec<LostConnection> = ids
            .iter()
            .zip(taken)
            .filter_map(|(field, record)| {
                let record = serde_json::from_str(&record?).ok()?;
                let id = field.parse::<u64>().ok()?;
                let addr = ConnectionAddr::new(instance.clone(), ConnectionId(id));
                Some(LostConnection::new(addr, record))
            })
            .collect();
        node.lost_connections(lost);
    }
}
