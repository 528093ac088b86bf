//! The broker suite's cases for presence: every backend must list and
//! count members cluster-wide and decide joins and leaves the same way.

use std::time::Duration;

use switchboard_ws::{CloseCode, Message};

use super::TestSocket;
use super::broker::{BrokerFactory, Member, TestNode, bounded, eventually, stop_all};
use crate::broker::BrokerError;
use crate::broker::presence::{JoinLeave, PresenceConfig, PresenceRule, PresenceStats};
use crate::hub::Room;
use crate::protocol::ChannelPattern;

/// The events room of `p:room` (what `SUBSCRIBE` with `join_leave` joins).
const EVENTS: &str = "#presence:p:room";

/// How long the workers may take to apply a change everywhere.
const SETTLE: Duration = Duration::from_secs(5);

fn config(join_leave: JoinLeave, grace: Duration) -> PresenceConfig {
    let pattern = ChannelPattern::new("p:*").expect("a valid pattern");
    PresenceConfig::new()
        .rule(PresenceRule::new(pattern).with_join_leave(join_leave))
        .with_grace(grace)
}

async fn presence_nodes<F: BrokerFactory>(
    factory: &F,
    n: usize,
    presence: &PresenceConfig,
) -> Vec<TestNode> {
    let mut nodes = Vec::with_capacity(n);
    for _ in 0..n {
        nodes.push(TestNode::start_with_presence(factory.broker().await, presence.clone()).await);
    }
    nodes
}

/// Waits until every node counts `stats` in `room`.
async fn settle(nodes: &[TestNode], room: &str, stats: PresenceStats) {
    let room = Room::from(room);
    for node in nodes {
        eventually(SETTLE, &format!("{room} counts {stats:?}"), || async {
            Ok(node.cluster.presence_stats(&room).await? == stats)
        })
        .await;
    }
}

/// The join and leave events `socket` gets within `quiet` of silence, as
/// `join:<user>` / `leave:<user>` (`-` for anonymous).
async fn events(socket: &mut TestSocket, quiet: Duration) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(got) = tokio::time::timeout(quiet, socket.recv()).await {
        let Ok(Message::Text(text)) = got else {
            panic!("expected text, got {got:?}");
        };
        let value: serde_json::Value =
            serde_json::from_str(text.as_str()).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        let payload = &value["payload"];
        let kind = match payload["event"].as_str() {
            Some("switchboard.join") => "join",
            Some("switchboard.leave") => "leave",
            _ => continue,
        };
        assert_eq!(value["type"], "EVENT", "{text}");
        assert!(payload["channel"].is_string(), "{text}");
        assert!(payload["data"]["connection"].is_string(), "{text}");
        let user = payload["data"]["user"].as_str().unwrap_or("-");
        out.push(format!("{kind}:{user}"));
    }
    out
}

async fn close(member: Member) {
    let _ = member.socket.close(CloseCode::Normal, "bye").await;
}

/// Members on three instances: every instance lists them all and counts
/// connections and distinct users alike; a channel without presence says
/// so rather than answering an empty list.
pub async fn presence_lists_and_counts_members_on_every_instance<F: BrokerFactory>(factory: &F) {
    bounded(async {
        let presence = config(JoinLeave::Off, Duration::ZERO);
        let n = presence_nodes(factory, 3, &presence).await;
        let a1 = n[0].connect(&["p:lobby"], Some("alice")).await;
        let a2 = n[1].connect(&["p:lobby", "other"], Some("alice")).await;
        let b = n[2].connect(&["p:lobby"], Some("bob")).await;
        let anon = n[0].connect(&["p:lobby"], None).await;
        settle(&n, "p:lobby", PresenceStats::new(4, 2)).await;
        let lobby = Room::from("p:lobby");
        for node in &n {
            let presence = node.cluster.presence(&lobby).await.expect("presence");
            let mut got: Vec<String> = presence
                .members
                .iter()
                .map(|m| {
                    format!(
                        "{}={}",
                        m.connection,
                        m.user.as_ref().map_or("-", |u| u.as_str())
                    )
                })
                .collect();
            got.sort();
            let mut want = vec![
                format!("{}=alice", a1.addr),
                format!("{}=alice", a2.addr),
                format!("{}=bob", b.addr),
                format!("{}=-", anon.addr),
            ];
            want.sort();
            assert_eq!(got, want);
        }
        let err = n[0]
            .cluster
            .presence(&Room::from("other"))
            .await
            .expect_err("no presence rule for `other`");
        assert!(matches!(err, BrokerError::NoPresence(_)), "{err}");
        let empty = n[1]
            .cluster
            .presence(&Room::from("p:empty"))
            .await
            .expect("presence");
        assert!(empty.members.is_empty() && empty.stats == PresenceStats::default());

        close(a1).await;
        settle(&n, "p:lobby", PresenceStats::new(3, 2)).await;
        close(a2).await;
        close(anon).await;
        settle(&n, "p:lobby", PresenceStats::new(1, 1)).await;
        drop(b);
        stop_all(n).await;
    })
    .await;
}

/// A user's first connection anywhere in the cluster joins, their last
/// one leaves; connections in between send nothing.
pub async fn users_join_with_their_first_connection_and_leave_with_their_last<F: BrokerFactory>(
    factory: &F,
) {
    bounded(async {
        let presence = config(JoinLeave::User, Duration::ZERO);
        let n = presence_nodes(factory, 2, &presence).await;
        let mut watcher = n[0].connect(&["p:room", EVENTS], Some("watcher")).await;
        let quiet = Duration::from_millis(400);
        // Nobody hears their own arrival; a subscriber without the events
        // room hears nothing.
        assert_eq!(
            events(&mut watcher.socket, quiet).await,
            Vec::<String>::new()
        );
        let mut deaf = n[1].connect(&["p:room"], None).await;
        settle(&n, "p:room", PresenceStats::new(2, 1)).await;
        assert_eq!(events(&mut watcher.socket, quiet).await, ["join:-"]);

        let alice1 = n[1].connect(&["p:room"], Some("alice")).await;
        settle(&n, "p:room", PresenceStats::new(3, 2)).await;
        let alice2 = n[0].connect(&["p:room"], Some("alice")).await;
        settle(&n, "p:room", PresenceStats::new(4, 2)).await;
        close(alice1).await;
        settle(&n, "p:room", PresenceStats::new(3, 2)).await;
        assert_eq!(events(&mut watcher.socket, quiet).await, ["join:alice"]);
        close(alice2).await;
        settle(&n, "p:room", PresenceStats::new(2, 1)).await;
        assert_eq!(events(&mut watcher.socket, quiet).await, ["leave:alice"]);
        assert_eq!(
            events(&mut deaf.socket, Duration::from_millis(50)).await,
            Vec::<String>::new()
        );
        stop_all(n).await;
    })
    .await;
}

/// A reconnect within the grace (a page reload, on another instance)
/// sends neither the leave nor the join; a user who stays away leaves
/// once the grace is over.
pub async fn a_user_back_within_the_grace_sends_neither_leave_nor_join<F: BrokerFactory>(
    factory: &F,
) {
    bounded(async {
        let grace = Duration::from_millis(1500);
        let presence = config(JoinLeave::User, grace);
        let n = presence_nodes(factory, 2, &presence).await;
        let mut watcher = n[0].connect(&["p:room", EVENTS], None).await;
        let quiet = Duration::from_millis(300);
        let alice = n[0].connect(&["p:room"], Some("alice")).await;
        assert_eq!(events(&mut watcher.socket, quiet).await, ["join:alice"]);

        close(alice).await;
        settle(&n, "p:room", PresenceStats::new(1, 0)).await;
        let alice = n[1].connect(&["p:room"], Some("alice")).await;
        settle(&n, "p:room", PresenceStats::new(2, 1)).await;
        // Past the grace: still nothing.
        let past = grace + Duration::from_millis(500);
        assert_eq!(
            events(&mut watcher.socket, past).await,
            Vec::<String>::new()
        );

        close(alice).await;
        let started = std::time::Instant::now();
        let got = events(&mut watcher.socket, grace + Duration::from_millis(1500)).await;
        assert_eq!(got, ["leave:alice"]);
        assert!(started.elapsed() >= grace, "the leave waited for the grace");
        stop_all(n).await;
    })
    .await;
}

/// Per-connection events: every connection joins and leaves, at once.
pub async fn connection_mode_announces_every_connection<F: BrokerFactory>(factory: &F) {
    bounded(async {
        let presence = config(JoinLeave::Connection, Duration::from_secs(60));
        let n = presence_nodes(factory, 2, &presence).await;
        let mut watcher = n[0].connect(&["p:doc", "#presence:p:doc"], None).await;
        let quiet = Duration::from_millis(400);
        let c1 = n[0].connect(&["p:doc"], Some("carol")).await;
        let c2 = n[1].connect(&["p:doc"], Some("carol")).await;
        assert_eq!(
            events(&mut watcher.socket, quiet).await,
            ["join:carol", "join:carol"]
        );
        close(c1).await;
        close(c2).await;
        assert_eq!(
            events(&mut watcher.socket, quiet).await,
            ["leave:carol", "leave:carol"]
        );
        stop_all(n).await;
    })
    .await;
}
