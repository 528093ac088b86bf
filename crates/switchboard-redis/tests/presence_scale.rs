//! Presence of a 100,000-member channel (issue 18), on a private
//! `redis-server`: the members are written by the test helper
//! (`switchboard_redis::testkit::fill_presence`, the layout the broker's
//! scripts keep), not by 100,000 sockets. Counts are exact and cost the
//! same Redis commands as on a 10-member channel; the member list stops at
//! `max_members`; a real join and leave afterwards keep the counts exact.
//!
//! Timing belongs in the benchmarks (docs/benchmarks.md, "Presence"); the
//! one time ratio checked here has a bound wide enough for a shared machine.

mod support;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use support::{RedisFactory, raw};
use switchboard::broker::presence::{
    JoinLeave, Member, PresenceConfig, PresenceRule, PresenceStats,
};
use switchboard::protocol::ChannelPattern;
use switchboard::testing::broker::{TestNode, eventually};
use switchboard::{ConnectionAddr, ConnectionId, InstanceId, Room, UserId};
use switchboard_redis::testkit::fill_presence;

const BIG: usize = 100_000;
const SMALL: usize = 10;
const MAX_MEMBERS: usize = 500;
/// Stats calls per measurement.
const CALLS: u64 = 200;

/// `n` members on `instance`: connections `2k` and `2k + 1` are user
/// `user-k`'s, except that every tenth connection is anonymous. Returns
/// them and their distinct users.
fn members(instance: &str, n: usize) -> (Vec<Member>, u64) {
    let instance = InstanceId::new(instance).expect("a valid instance id");
    let mut users = HashSet::new();
    let members = (0..n)
        .map(|i| {
            let addr = ConnectionAddr::new(instance.clone(), ConnectionId(i as u64 + 1));
            let user = (i % 10 != 9).then(|| format!("user-{}", i / 2));
            if let Some(u) = &user {
                users.insert(u.clone());
            }
            Member::new(addr, user.map(UserId::from)).with_info(Some(
                serde_json::json!({"client": {"name": "fill", "version": "1"}}),
            ))
        })
        .collect();
    (members, users.len() as u64)
}

/// `cmdstat_<name>` → calls, from `INFO commandstats`.
async fn command_calls(conn: &mut redis::aio::MultiplexedConnection) -> HashMap<String, u64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .expect("INFO commandstats");
    info.lines()
        .filter_map(|l| l.strip_prefix("cmdstat_"))
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let calls = rest
                .strip_prefix("calls=")?
                .split(',')
                .next()?
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}

fn delta(before: &HashMap<String, u64>, after: &HashMap<String, u64>, name: &str) -> u64 {
    after.get(name).copied().unwrap_or(0) - before.get(name).copied().unwrap_or(0)
}

/// Commands whose cost grows with a hash's size.
const SCANS: [&str; 5] = ["hgetall", "hvals", "hkeys", "hscan", "scan"];

/// `CALLS` stats reads of `room`: their time, and the `HLEN` and scanning
/// commands Redis ran meanwhile (the broker's own heartbeats included).
async fn measure_stats(
    node: &TestNode,
    conn: &mut redis::aio::MultiplexedConnection,
    room: &Room,
    want: PresenceStats,
) -> (Duration, u64, u64) {
    let before = command_calls(conn).await;
    let started = Instant::now();
    for _ in 0..CALLS {
        let stats = node.cluster.presence_stats(room).await.expect("stats");
        assert_eq!(stats, want, "{room}");
    }
    let took = started.elapsed();
    let after = command_calls(conn).await;
    let scans = SCANS.iter().map(|c| delta(&before, &after, c)).sum();
    (took, delta(&before, &after, "hlen"), scans)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_of_100k_members_counts_in_o1_and_lists_at_most_max_members() {
    let Some(f) = RedisFactory::start() else {
        return;
    };
    let pattern = ChannelPattern::new("p:*").expect("a valid pattern");
    let config = PresenceConfig::new()
        .rule(PresenceRule::new(pattern).with_join_leave(JoinLeave::User))
        .with_max_members(MAX_MEMBERS);
    let node = TestNode::start_with_presence(f.make(), config).await;
    let mut conn = raw(&f.server).await;

    let (big, small) = (Room::from("p:big"), Room::from("p:small"));
    let (big_members, big_users) = members("filler-big", BIG);
    let (small_members, small_users) = members("filler-small", SMALL);
    let filled = Instant::now();
    // A lease far longer than the test: nobody reaps the fake instances.
    let lease = Duration::from_secs(3600);
    fill_presence(&mut conn, "sb", &big, &big_members, lease)
        .await
        .expect("fill 100k");
    fill_presence(&mut conn, "sb", &small, &small_members, lease)
        .await
        .expect("fill 10");
    eprintln!("filled {BIG} + {SMALL} members in {:?}", filled.elapsed());
    assert_eq!(
        big_users, 50_000,
        "two connections per user (one of them anonymous for 1 in 5)"
    );

    // Exact counts, through the broker and the cluster alike.
    let want_big = PresenceStats::new(BIG as u64, big_users);
    let want_small = PresenceStats::new(SMALL as u64, small_users);
    assert_eq!(
        node.cluster.presence_stats(&big).await.expect("stats"),
        want_big
    );
    assert_eq!(
        node.cluster.presence_stats(&small).await.expect("stats"),
        want_small
    );

    // O(1): the same Redis commands per call at 100,000 members as at 10
    // (two HLEN; nothing that walks a hash), and no time ratio to speak of.
    let _ = measure_stats(&node, &mut conn, &small, want_small).await; // warm-up
    let (t_small, hlen_small, scans_small) =
        measure_stats(&node, &mut conn, &small, want_small).await;
    let (t_big, hlen_big, scans_big) = measure_stats(&node, &mut conn, &big, want_big).await;
    eprintln!(
        "{CALLS} stats calls: 10 members {t_small:?} ({hlen_small} HLEN), \
         100,000 members {t_big:?} ({hlen_big} HLEN)"
    );
    // Heartbeats (the lease script) may add a few HLEN of their own.
    for (n, hlen) in [(SMALL, hlen_small), (BIG, hlen_big)] {
        assert!(
            (2 * CALLS..2 * CALLS + 20).contains(&hlen),
            "{n} members: {hlen} HLEN for {CALLS} stats calls (2 each expected)"
        );
    }
    assert_eq!((scans_small, scans_big), (0, 0), "stats never scan a hash");
    assert!(
        t_big < t_small * 10 + Duration::from_millis(200),
        "stats at 100,000 members took {t_big:?} against {t_small:?} at 10: not O(1)"
    );

    // The member list stops at max_members; the counts stay whole; reading
    // it walks about max_members entries, not 100,000.
    let before = command_calls(&mut conn).await;
    let presence = node.cluster.presence(&big).await.expect("presence");
    let after = command_calls(&mut conn).await;
    assert_eq!(presence.stats, want_big);
    assert_eq!(presence.members.len(), MAX_MEMBERS);
    let distinct: HashSet<String> = presence
        .members
        .iter()
        .map(|m| m.connection.to_string())
        .collect();
    assert_eq!(distinct.len(), MAX_MEMBERS, "no member listed twice");
    assert!(
        presence
            .members
            .iter()
            .all(|m| m.connection.instance.as_str() == "filler-big"),
        "only filled members"
    );
    let hscans = delta(&before, &after, "hscan");
    assert!(
        (1..=4).contains(&hscans),
        "{hscans} HSCAN calls for {MAX_MEMBERS} of {BIG} members"
    );
    assert_eq!(delta(&before, &after, "hvals"), 0, "never HVALS a big hash");
    let small_list = node.cluster.presence(&small).await.expect("presence");
    assert_eq!(
        small_list.members.len(),
        SMALL,
        "a small channel is listed whole"
    );

    // A real join and leave on top of 100,000: a new user, then one of the
    // filled users with a third connection.
    let settle = Duration::from_secs(5);
    let expect = |stats: PresenceStats| {
        let node = &node;
        let big = &big;
        async move {
            eventually(settle, &format!("p:big counts {stats:?}"), || async {
                Ok(node.cluster.presence_stats(big).await? == stats)
            })
            .await;
        }
    };
    let alice = node.connect(&["p:big"], Some("alice")).await;
    expect(PresenceStats::new(BIG as u64 + 1, big_users + 1)).await;
    let again = node.connect(&["p:big"], Some("user-7")).await;
    expect(PresenceStats::new(BIG as u64 + 2, big_users + 1)).await;
    let _ = alice
        .socket
        .close(switchboard::ws::CloseCode::Normal, "bye")
        .await;
    expect(PresenceStats::new(BIG as u64 + 1, big_users)).await;
    let _ = again
        .socket
        .close(switchboard::ws::CloseCode::Normal, "bye")
        .await;
    expect(want_big).await;
    let users_key_count: u64 = redis::cmd("HGET")
        .arg("sb:v1:presence:{p:big}:users")
        .arg("user-7")
        .query_async(&mut conn)
        .await
        .expect("HGET");
    assert_eq!(
        users_key_count, 2,
        "user-7 is back to its two filled connections"
    );
    node.stop().await;
}
