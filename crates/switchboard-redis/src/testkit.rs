//! Test and benchmark support, not part of the API (hidden from the
//! documentation, no stability promise): fills a channel's presence with
//! many members without a connection each.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use switchboard::Room;
use switchboard::broker::presence::Member;

use crate::wire::Names;

/// What [`fill_presence`] fails with: a bad prefix or a Redis error.
pub type FillError = Box<dyn std::error::Error + Send + Sync>;

/// Members written per pipelined `HSET`.
const CHUNK: usize = 1000;

/// Writes `members` into `room`'s presence under `prefix`, exactly as
/// `presence_add.lua` leaves it (docs/scaling.md, "Presence"): the
/// members hash (address → member JSON), the users hash (user → its
/// connections, added with `HINCRBY`), each member's instance index, and a
/// lease for each instance that has none, ending `lease_ttl` from Redis's
/// clock. No join events are sent.
///
/// The members must not be in the channel already (their users would be
/// counted twice). Their instances should not be live ones: a live
/// instance's resync removes entries it does not hold. A fake instance's
/// lease runs out after `lease_ttl`, and the cluster then removes its
/// members (with their leaves), as for a dead instance; give it a
/// `lease_ttl` longer than the test.
///
/// Writes are pipelined, 1,000 members per `HSET`: 100,000
/// members take a few hundred milliseconds.
///
/// # Errors
/// A bad `prefix`, or what Redis answers.
#[doc(hidden)]
pub async fn fill_presence<C>(
    conn: &mut C,
    prefix: &str,
    room: &Room,
    members: &[Member],
    lease_ttl: Duration,
) -> Result<(), FillError>
where
    C: redis::aio::ConnectionLike + Send,
{
    let names = Names::new(prefix)?;
    let members_key = names.presence_members_key(room);
    let users_key = names.presence_users_key(room);
    let mut users: HashMap<&str, u64> = HashMap::new();
    let mut instances = BTreeSet::new();
    for chunk in members.chunks(CHUNK) {
        let mut pipe = redis::pipe();
        let mut hset = redis::cmd("HSET");
        hset.arg(&members_key);
        let mut index: HashMap<String, Vec<String>> = HashMap::new();
        for m in chunk {
            let addr = m.connection.to_string();
            hset.arg(&addr).arg(m.to_json());
            if let Some(user) = &m.user {
                *users.entry(user.as_str()).or_default() += 1;
            }
            let instance = m.connection.instance.as_str();
            instances.insert(instance.to_owned());
            index
                .entry(names.presence_index_key_of(instance))
                .or_default()
                .push(format!("{room}\n{addr}"));
        }
        pipe.add_command(hset).ignore();
        for (key, fields) in index {
            let mut cmd = redis::cmd("HSET");
            cmd.arg(key);
            for f in fields {
                cmd.arg(f).arg("");
            }
            pipe.add_command(cmd).ignore();
        }
        pipe.query_async::<()>(conn).await?;
    }
    let counts: Vec<(&str, u64)> = users.into_iter().collect();
    for chunk in counts.chunks(CHUNK) {
        let mut pipe = redis::pipe();
        for (user, n) in chunk {
            pipe.cmd("HINCRBY")
                .arg(&users_key)
                .arg(*user)
                .arg(*n)
                .ignore();
        }
        pipe.query_async::<()>(conn).await?;
    }
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query_async(conn).await?;
    let ends = secs * 1000 + micros / 1000 + u64::try_from(lease_ttl.as_millis()).unwrap_or(0);
    let mut pipe = redis::pipe();
    for instance in instances {
        pipe.cmd("ZADD")
            .arg(names.leases_key())
            .arg("NX")
            .arg(ends)
            .arg(instance)
            .ignore();
    }
    pipe.query_async::<()>(conn).await?;
    Ok(())
}
