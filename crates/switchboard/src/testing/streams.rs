//! The broker suite's cases for channels with history: every backend must
//! append, carry positions, answer reads and recognise retries the same way.

use std::time::Duration;

use switchboard_ws::Message;

use super::TestSocket;
use super::broker::{BrokerFactory, TestNode, bounded, expect_silence, next_text};
use crate::broker::stream::{HistoryConfig, HistoryRule, IdempotencyKey};
use crate::broker::{Payload, PublishOptions, Target};
use crate::protocol::ChannelPattern;

/// History for `s:*`: 1,000 kept, recovery up to 1,000.
fn history() -> HistoryConfig {
    let pattern = ChannelPattern::new("s:*").expect("a valid pattern");
    HistoryConfig::new()
        .rule(HistoryRule::new(pattern).with_size(1000))
        .with_recovery_limit(1000)
}

async fn stream_nodes<F: BrokerFactory>(factory: &F, n: usize) -> Vec<TestNode> {
    let mut nodes = Vec::with_capacity(n);
    for _ in 0..n {
        nodes.push(TestNode::start_with_history(factory.broker().await, history()).await);
    }
    nodes
}

/// `joined <epoch> <offset> <how>`, split.
fn joined(line: &str) -> (String, u64, String) {
    let parts: Vec<&str> = line.split(' ').collect();
    match parts.as_slice() {
        ["joined", epoch, offset, how] => (
            (*epoch).to_owned(),
            offset.parse().expect("an offset"),
            (*how).to_owned(),
        ),
        _ => panic!("expected `joined <epoch> <offset> <how>`, got {line:?}"),
    }
}

/// The next `count` publications as (offset, text).
async fn publications(socket: &mut TestSocket, count: usize) -> Vec<(u64, String)> {
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let text = next_text(socket).await;
        let value: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        let offset = value["offset"]
            .as_u64()
            .unwrap_or_else(|| panic!("no offset: {text}"));
        out.push((offset, value["n"].to_string()));
    }
    out
}

/// Offsets `from`, `from + 1`, ... with nothing missing or repeated.
fn assert_consecutive(got: &[(u64, String)], from: u64, who: &str) {
    for (i, (offset, _)) in got.iter().enumerate() {
        assert_eq!(*offset, from + i as u64, "{who}: {got:?}");
    }
}

async fn publish_n(node: &TestNode, channel: &str, n: u64) -> u64 {
    let sent = node
        .cluster
        .publish(
            Target::room(channel),
            Payload::text(format!(r#"{{"n":{n}}}"#)),
        )
        .await
        .unwrap_or_else(|e| panic!("publish {n}: {e}"));
    sent.position.expect("a position").offset
}

/// Two instances publish to one channel at once: subscribers on both see
/// one sequence of offsets, 1 to 60, each once.
pub async fn stream_publications_reach_every_instance_in_offset_order<F: BrokerFactory>(
    factory: &F,
) {
    bounded(async {
        let n = stream_nodes(factory, 2).await;
        let (mut on_a, line) = n[0].subscribe("s:x", &[]).await;
        let (_, start, how) = joined(&line);
        assert_eq!((start, how.as_str()), (0, "fresh"));
        let (mut on_b, _) = n[1].subscribe("s:x", &[]).await;
        let (a, b) = (&n[0], &n[1]);
        let from_a = async {
            for i in 0..30 {
                publish_n(a, "s:x", i).await;
            }
        };
        let from_b = async {
            for i in 100..130 {
                publish_n(b, "s:x", i).await;
            }
        };
        tokio::join!(from_a, from_b);
        for (socket, who) in [(&mut on_a, "on a"), (&mut on_b, "on b")] {
            let got = publications(socket, 60).await;
            assert_consecutive(&got, 1, who);
            expect_silence(socket, who).await;
        }
        for node in n {
            node.stop().await;
        }
    })
    .await;
}

/// A subscriber leaves instance A; 20 publications from B; it comes back
/// to B with its position and gets exactly those 20, then live ones.
pub async fn a_subscriber_recovers_on_another_instance<F: BrokerFactory>(factory: &F) {
    bounded(async {
        let n = stream_nodes(factory, 2).await;
        let (mut socket, line) = n[0].subscribe("s:r", &[]).await;
        let (epoch, _, _) = joined(&line);
        publish_n(&n[0], "s:r", 1).await;
        assert_consecutive(&publications(&mut socket, 1).await, 1, "before");
        drop(socket);
        for i in 2..=21 {
            publish_n(&n[1], "s:r", i).await;
        }
        let recover = format!("{epoch}:1");
        let (mut socket, line) = n[1].subscribe("s:r", &[("recover", &recover)]).await;
        let (again, top, how) = joined(&line);
        assert_eq!(
            (again.as_str(), top, how.as_str()),
            (epoch.as_str(), 21, "recovered")
        );
        assert_consecutive(&publications(&mut socket, 20).await, 2, "replay");
        publish_n(&n[0], "s:r", 22).await;
        assert_consecutive(&publications(&mut socket, 1).await, 22, "live");
        expect_silence(&mut socket, "after").await;
        for node in n {
            node.stop().await;
        }
    })
    .await;
}

/// A retried publish with the same key goes out once, to a channel with
/// history (the first position is returned) and to one without.
pub async fn idempotent_publishes_go_out_once<F: BrokerFactory>(factory: &F) {
    bounded(async {
        let n = stream_nodes(factory, 2).await;
        let (mut stream, _) = n[1].subscribe("s:i", &[]).await;
        let mut plain = n[1].connect(&["plain"], None).await;
        for (target, payload) in [
            (Target::room("s:i"), r#"{"n":1}"#),
            (Target::room("plain"), "plain-1"),
        ] {
            let key = IdempotencyKey::new(&format!("key-{payload}")).expect("a key");
            let options = PublishOptions::new().idempotency_key(key);
            let first = n[0]
                .cluster
                .publish_with(target.clone(), payload, options.clone())
                .await
                .expect("first attempt");
            let retry = n[0]
                .cluster
                .publish_with(target, payload, options)
                .await
                .expect("retry");
            assert!(!first.duplicate && retry.duplicate, "{payload}");
            assert_eq!(first.position, retry.position);
        }
        assert_consecutive(&publications(&mut stream, 1).await, 1, "stream");
        expect_silence(&mut stream, "stream").await;
        assert_eq!(next_text(&mut plain.socket).await, "plain-1");
        expect_silence(&mut plain.socket, "plain").await;
        for node in n {
            node.stop().await;
        }
    })
    .await;
}

/// `last=3` replays the three latest publications, then live ones.
pub async fn the_latest_publications_are_replayed_at_subscribe_time<F: BrokerFactory>(factory: &F) {
    bounded(async {
        let n = stream_nodes(factory, 1).await;
        for i in 1..=10 {
            publish_n(&n[0], "s:l", i).await;
        }
        let (mut socket, line) = n[0].subscribe("s:l", &[("last", "3")]).await;
        let (_, top, how) = joined(&line);
        assert_eq!((top, how.as_str()), (10, "fresh"));
        assert_consecutive(&publications(&mut socket, 3).await, 8, "latest");
        publish_n(&n[0], "s:l", 11).await;
        assert_consecutive(&publications(&mut socket, 1).await, 11, "live");
        // A binary frame would be a bug: every frame here is JSON text.
        if let Ok(Ok(Message::Binary(b))) =
            tokio::time::timeout(Duration::from_millis(100), socket.recv()).await
        {
            panic!("unexpected binary frame {b:?}");
        }
        for node in n {
            node.stop().await;
        }
    })
    .await;
}

/// A connection that joined a channel with history directly (a hub join,
/// not a stream subscription) still gets its publications, as they arrive.
pub async fn members_who_joined_directly_still_get_publications<F: BrokerFactory>(factory: &F) {
    bounded(async {
        let n = stream_nodes(factory, 2).await;
        let mut direct = n[1].connect(&["s:d"], None).await;
        let mut local = n[0].connect(&["s:d"], None).await;
        publish_n(&n[0], "s:d", 1).await;
        for (socket, who) in [(&mut direct.socket, "remote"), (&mut local.socket, "local")] {
            let got = publications(socket, 1).await;
            assert_eq!(got[0].0, 1, "{who}");
        }
        for node in n {
            node.stop().await;
        }
    })
    .await;
}
