//! Presence in Redis: who is subscribed to each channel with presence.
//!
//! Keys (prefix `sb`; `{<channel>}` keeps a channel's keys in one slot):
//! - `sb:v1:presence:{<channel>}:members`: hash, connection address →
//!   member JSON. `HLEN` is the connection count: O(1).
//! - `sb:v1:presence:{<channel>}:users`: hash, user id → that user's
//!   connections in the channel. `HLEN` is the distinct users: O(1).
//! - `sb:v1:presence:pending` (zset, score = when the grace ends) and
//!   `sb:v1:presence:pending:data` (hash): leaves held for their grace,
//!   by `<channel>\n<user>`.
//! - `sb:v1:presence:instance:<id>`: hash, `<channel>\n<address>` → `''`:
//!   an instance's entries, for removing them when it dies (`lease`).
//!
//! Adding and removing a member is one script each, O(1); a leave held for
//! its grace is taken by exactly one instance (`presence_due.lua`). Listing
//! members is O(members returned).

use std::collections::HashSet;
use std::time::Duration;

use redis::Script;
use switchboard::Room;
use switchboard::broker::presence::{
    JoinLeave, Member, Presence, PresenceChange, PresenceConfig, PresenceEvent, PresenceStats,
};
use switchboard::broker::{BrokerError, ConnectionAddr, InstanceId};

use crate::broker::Shared;
use crate::wire::Names;

/// Held leaves taken per sweep.
const DUE_BATCH: usize = 500;

/// Scripts per pipeline when many entries change at once.
pub(crate) const BATCH: usize = 200;

/// The presence scripts, hashed once.
#[derive(Debug)]
pub(crate) struct Scripts {
    pub(crate) add: Script,
    pub(crate) remove: Script,
    due: Script,
    read: Script,
}

impl Default for Scripts {
    fn default() -> Self {
        Self {
            add: Script::new(include_str!("scripts/presence_add.lua")),
            remove: Script::new(include_str!("scripts/presence_remove.lua")),
            due: Script::new(include_str!("scripts/presence_due.lua")),
            read: Script::new(include_str!("scripts/presence_read.lua")),
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn bad_answer(what: &str) -> BrokerError {
    BrokerError::Backend(format!("unexpected answer from Redis to {what}").into())
}

fn member_from(json: &str) -> Result<Member, BrokerError> {
    serde_json::from_str(json).map_err(|_| bad_answer("a presence read"))
}

/// `<channel>\n<rest>`, as the index and the held leaves name entries.
fn field(room: &Room, rest: &str) -> String {
    format!("{room}\n{rest}")
}

/// The script invocation that adds `member` (`mode` as the script takes it).
pub(crate) fn add_call<'a>(
    scripts: &'a Scripts,
    names: &Names,
    instance: &InstanceId,
    room: &Room,
    member: &Member,
    mode: &str,
) -> redis::ScriptInvocation<'a> {
    let mut call = scripts.add.prepare_invoke();
    call.key(names.presence_members_key(room))
        .key(names.presence_users_key(room))
        .key(names.presence_pending_key())
        .key(names.presence_pending_data_key())
        .key(names.presence_index_key(instance))
        .arg(member.connection.to_string())
        .arg(member.to_json())
        .arg(member.user.as_ref().map_or("", |u| u.as_str()))
        .arg(mode)
        .arg(room.as_str());
    call
}

/// The script invocation that removes `addr`, listed in `index`.
pub(crate) fn remove_call<'a>(
    scripts: &'a Scripts,
    names: &Names,
    index: &str,
    room: &Room,
    addr: &str,
    mode: JoinLeave,
    grace: Duration,
) -> redis::ScriptInvocation<'a> {
    let mut call = scripts.remove.prepare_invoke();
    call.key(names.presence_members_key(room))
        .key(names.presence_users_key(room))
        .key(names.presence_pending_key())
        .key(names.presence_pending_data_key())
        .key(index)
        .arg(addr)
        .arg(mode.as_str())
        .arg(room.as_str())
        .arg(millis(grace));
    call
}

pub(crate) async fn add(
    shared: &Shared,
    room: &Room,
    member: &Member,
    mode: JoinLeave,
) -> Result<bool, BrokerError> {
    let instance = &member.connection.instance;
    let call = add_call(
        &shared.presence,
        &shared.names,
        instance,
        room,
        member,
        mode.as_str(),
    );
    let due: u8 = shared
        .with_publisher(|mut conn| async move { call.invoke_async(&mut conn).await })
        .await?;
    Ok(due == 1)
}

pub(crate) async fn remove(
    shared: &Shared,
    room: &Room,
    addr: &ConnectionAddr,
    mode: JoinLeave,
    grace: Duration,
) -> Result<Option<Member>, BrokerError> {
    let index = shared.names.presence_index_key(&addr.instance);
    let text = addr.to_string();
    let call = remove_call(
        &shared.presence,
        &shared.names,
        &index,
        room,
        &text,
        mode,
        grace,
    );
    let left: Option<String> = shared
        .with_publisher(|mut conn| async move { call.invoke_async(&mut conn).await })
        .await?;
    left.as_deref().map(member_from).transpose()
}

pub(crate) async fn due(shared: &Shared) -> Result<Vec<(Room, Member)>, BrokerError> {
    let names = &shared.names;
    let script = &shared.presence.due;
    let flat: Vec<String> = shared
        .with_publisher(|mut conn| async move {
            script
                .key(names.presence_pending_key())
                .key(names.presence_pending_data_key())
                .arg(DUE_BATCH)
                .invoke_async(&mut conn)
                .await
        })
        .await?;
    flat.chunks(2)
        .map(|pair| match pair {
            [field, member] => {
                let (room, _user) = field
                    .split_once('\n')
                    .ok_or_else(|| bad_answer("a sweep"))?;
                Ok((Room::from(room), member_from(member)?))
            }
            _ => Err(bad_answer("a sweep")),
        })
        .collect()
}

pub(crate) async fn read(
    shared: &Shared,
    room: &Room,
    max: usize,
) -> Result<Presence, BrokerError> {
    let names = &shared.names;
    let script = &shared.presence.read;
    let (conns, users, members): (u64, u64, Vec<String>) = shared
        .with_publisher(|mut conn| async move {
            script
                .key(names.presence_members_key(room))
                .key(names.presence_users_key(room))
                .arg(max)
                .invoke_async(&mut conn)
                .await
        })
        .await?;
    let members = members
        .iter()
        .map(|m| member_from(m))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Presence::new(members, PresenceStats::new(conns, users)))
}

pub(crate) async fn stats(shared: &Shared, room: &Room) -> Result<PresenceStats, BrokerError> {
    let names = &shared.names;
    let (conns, users): (u64, u64) = shared
        .with_publisher(|mut conn| async move {
            redis::pipe()
                .cmd("HLEN")
                .arg(names.presence_members_key(room))
                .cmd("HLEN")
                .arg(names.presence_users_key(room))
                .query_async(&mut conn)
                .await
        })
        .await?;
    Ok(PresenceStats::new(conns, users))
}

/// Makes `instance`'s entries what `local` says: the others are removed
/// (their due leaves returned), the missing ones added without events.
pub(crate) async fn resync(
    shared: &Shared,
    instance: &InstanceId,
    config: &PresenceConfig,
    local: &[(Room, Member)],
) -> Result<Vec<PresenceEvent>, BrokerError> {
    let names = &shared.names;
    let index = names.presence_index_key(instance);
    let listed: Vec<String> = {
        let index = index.clone();
        shared
            .with_publisher(|mut conn| async move {
                redis::cmd("HKEYS").arg(index).query_async(&mut conn).await
            })
            .await?
    };
    let here: HashSet<String> = local
        .iter()
        .map(|(room, m)| field(room, &m.connection.to_string()))
        .collect();
    let stale: Vec<(Room, String)> = listed
        .iter()
        .filter(|f| !here.contains(*f))
        .filter_map(|f| f.rsplit_once('\n'))
        .map(|(room, addr)| (Room::from(room), addr.to_owned()))
        .collect();
    let events = remove_all(shared, &index, config, &stale).await?;
    for chunk in local.chunks(BATCH) {
        let calls: Vec<_> = chunk
            .iter()
            .map(|(room, m)| add_call(&shared.presence, names, instance, room, m, "quiet"))
            .collect();
        let script = &shared.presence.add;
        shared
            .with_publisher(|mut conn| async move {
                let mut pipe = redis::pipe();
                pipe.load_script(script).ignore();
                for call in &calls {
                    pipe.invoke_script(call).ignore();
                }
                pipe.query_async::<()>(&mut conn).await
            })
            .await?;
    }
    Ok(events)
}

/// Removes `entries` (channel, address) listed in `index`, in pipelined
/// batches; returns the leaves due.
pub(crate) async fn remove_all(
    shared: &Shared,
    index: &str,
    config: &PresenceConfig,
    entries: &[(Room, String)],
) -> Result<Vec<PresenceEvent>, BrokerError> {
    let mut events = Vec::new();
    for chunk in entries.chunks(BATCH) {
        let calls: Vec<_> = chunk
            .iter()
            .map(|(room, addr)| {
                let mode = config
                    .rule_for(room.as_str())
                    .map_or(JoinLeave::Off, |r| r.join_leave);
                remove_call(
                    &shared.presence,
                    &shared.names,
                    index,
                    room,
                    addr,
                    mode,
                    config.grace,
                )
            })
            .collect();
        let script = &shared.presence.remove;
        let left: Vec<Option<String>> = shared
            .with_publisher(|mut conn| async move {
                let mut pipe = redis::pipe();
                pipe.load_script(script).ignore();
                for call in &calls {
                    pipe.invoke_script(call);
                }
                pipe.query_async(&mut conn).await
            })
            .await?;
        for ((room, _), member) in chunk.iter().zip(left) {
            if let Some(member) = member {
                let member = member_from(&member)?;
                events.push(PresenceEvent::new(
                    room.clone(),
                    PresenceChange::Leave,
                    member,
                ));
            }
        }
    }
    Ok(events)
}
