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
use switchboard::broker::{BrokerError, LocalNode};

use crate::broker::{Shared, stopped};
use crate::presence::{BATCH, remove_all};
use crate::stats::bump;

/// How long a tombstone outlives the death it marks.
const TOMBSTONE: Duration = Duration::from_secs(3600);

#[derive(Debug)]
pub(crate) struct Scripts {
    renew: Script,
    reap: Script,
    /// Drops an instance from the reaping set once its hash is empty.
    done: Script,
}

impl Default for Scripts {
    fn default() -> Self {
        Self {
            renew: Script::new(include_str!("scripts/lease.lua")),
            reap: Script::new(include_str!("scripts/reap.lua")),
            done: Script::new(
                "if redis.call('HLEN', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[1]) end return 1",
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
    loop {
        tokio::select! {
            _ = tick.tick() => {}
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

/// Removes every entry a dead instance left, announcing the leaves.
async fn clean_up(shared: &Shared, node: &LocalNode, id: &str) -> Result<(), BrokerError> {
    let names = &shared.names;
    let key = names.presence_reaping_key(id);
    loop {
        let page: (String, Vec<String>) = {
            let key = key.clone();
            shared
                .with_publisher(|mut conn| async move {
                    redis::cmd("HSCAN")
                        .arg(key)
                        .arg(0)
                        .arg("COUNT")
                        .arg(BATCH)
                        .query_async(&mut conn)
                        .await
                })
                .await?
        };
        let entries: Vec<(Room, String)> = page
            .1
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
    let script = &shared.leases.done;
    shared
        .with_publisher(|mut conn| async move {
            script
                .key(key)
                .key(names.reaping_key())
                .arg(id)
                .invoke_async::<u8>(&mut conn)
                .await
        })
        .await?;
    Ok(())
}
