//! Presence of a 100,000-member channel with the in-memory broker
//! (issue 18): the members are added through the broker's own
//! `presence_add`, not by 100,000 sockets. Counts are exact and as quick
//! at 100,000 members as at 10; the member list stops at `max_members`; a
//! real join and leave afterwards keep the counts exact. The Redis broker
//! has the same test in crates/switchboard-redis/tests/presence_scale.rs.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use switchboard::broker::MemoryBroker;
use switchboard::broker::presence::{
    JoinLeave, Member, PresenceConfig, PresenceRule, PresenceStats,
};
use switchboard::protocol::ChannelPattern;
use switchboard::testing::broker::{TestNode, eventually};
use switchboard::ws::CloseCode;
use switchboard::{ConnectionAddr, ConnectionId, InstanceId, Room, UserId};

const BIG: usize = 100_000;
const SMALL: usize = 10;
const MAX_MEMBERS: usize = 500;
const CALLS: u32 = 2_000;

/// Adds `n` members to `room` through the broker (connections `2k` and
/// `2k + 1` are `user-k`'s, every tenth one anonymous); returns the
/// distinct users.
async fn fill(node: &TestNode, room: &Room, n: usize) -> u64 {
    let instance = InstanceId::new("filler").expect("a valid instance id");
    let mut users = HashSet::new();
    for i in 0..n {
        let addr = ConnectionAddr::new(instance.clone(), ConnectionId(i as u64 + 1));
        let user = (i % 10 != 9).then(|| UserId::from(format!("user-{}", i / 2)));
        if let Some(u) = &user {
            users.insert(u.clone());
        }
        node.cluster
            .broker()
            .presence_add(room, &Member::new(addr, user), JoinLeave::Off)
            .await
            .expect("presence_add");
    }
    users.len() as u64
}

async fn time_stats(node: &TestNode, room: &Room, want: PresenceStats) -> Duration {
    let started = Instant::now();
    for _ in 0..CALLS {
        assert_eq!(
            node.cluster.presence_stats(room).await.expect("stats"),
            want
        );
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_of_100k_members_counts_in_o1_and_lists_at_most_max_members() {
    let pattern = ChannelPattern::new("p:*").expect("a valid pattern");
    let config = PresenceConfig::new()
        .rule(PresenceRule::new(pattern).with_join_leave(JoinLeave::User))
        .with_max_members(MAX_MEMBERS);
    let node = TestNode::start_with_presence(MemoryBroker::new(), config).await;
    let (big, small) = (Room::from("p:big"), Room::from("p:small"));
    let filled = Instant::now();
    let big_users = fill(&node, &big, BIG).await;
    let small_users = fill(&node, &small, SMALL).await;
    eprintln!("filled {BIG} + {SMALL} members in {:?}", filled.elapsed());
    assert_eq!(big_users, 50_000);

    let want_big = PresenceStats::new(BIG as u64, big_users);
    let want_small = PresenceStats::new(SMALL as u64, small_users);
    let _ = time_stats(&node, &small, want_small).await;
    let t_small = time_stats(&node, &small, want_small).await;
    let t_big = time_stats(&node, &big, want_big).await;
    eprintln!("{CALLS} stats calls: 10 members {t_small:?}, 100,000 members {t_big:?}");
    assert!(
        t_big < t_small * 10 + Duration::from_millis(200),
        "stats at 100,000 members took {t_big:?} against {t_small:?} at 10: not O(1)"
    );

    let presence = node.cluster.presence(&big).await.expect("presence");
    assert_eq!(presence.stats, want_big);
    assert_eq!(presence.members.len(), MAX_MEMBERS);
    let distinct: HashSet<String> = presence
        .members
        .iter()
        .map(|m| m.connection.to_string())
        .collect();
    assert_eq!(distinct.len(), MAX_MEMBERS, "no member listed twice");
    let small_list = node.cluster.presence(&small).await.expect("presence");
    assert_eq!(small_list.members.len(), SMALL);

    let expect = |stats: PresenceStats| {
        let (node, big) = (&node, &big);
        async move {
            eventually(
                Duration::from_secs(5),
                &format!("p:big counts {stats:?}"),
                || async { Ok(node.cluster.presence_stats(big).await? == stats) },
            )
            .await;
        }
    };
    let alice = node.connect(&["p:big"], Some("alice")).await;
    expect(PresenceStats::new(BIG as u64 + 1, big_users + 1)).await;
    let again = node.connect(&["p:big"], Some("user-7")).await;
    expect(PresenceStats::new(BIG as u64 + 2, big_users + 1)).await;
    let _ = alice.socket.close(CloseCode::Normal, "bye").await;
    expect(PresenceStats::new(BIG as u64 + 1, big_users)).await;
    let _ = again.socket.close(CloseCode::Normal, "bye").await;
    expect(want_big).await;
    node.stop().await;
}
