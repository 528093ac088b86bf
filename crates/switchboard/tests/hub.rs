//! The hub (issue 5): room, user and direct sends and what they return,
//! fan-out order, slow-consumer eviction, closing users and connections,
//! the registry emptying as connections end, lifecycle hooks, typed state
//! and the counters.

mod hub_common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use hub_common::{
    StalledClient, Tag, bounded, command, connect_member, eventually, member, member_app,
    next_text, spawn_server,
};
use switchboard::ws::frame::encode_client_frame;
use switchboard::ws::{Decoder, Limits, OpCode, Role};
use switchboard::{
    CloseCode, CloseFrame, ConnectionId, ConnectionInfo, Hub, HubHooks, Outgoing, Room,
    RouteConfig, ServerConfig, Switchboard, TestClient, TestError, TestSocket, UserId,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Reads text messages until `marker` and returns those before it.
async fn texts_until(socket: &mut TestSocket, marker: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let text = next_text(socket).await;
        if text == marker {
            return seen;
        }
        seen.push(text);
    }
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

fn rooms(names: &[&str]) -> Vec<Room> {
    names.iter().map(|&n| Room::from(n)).collect()
}

#[tokio::test]
async fn room_sends_reach_each_member_exactly_once_and_non_members_never() {
    bounded(Duration::from_secs(10), async {
        let hub = Hub::new();
        let client = TestClient::new(member_app(&hub));
        let (mut a, a_id) = connect_member(&client, &["r1"], None).await;
        let (mut b, b_id) = connect_member(&client, &["r1", "r2"], None).await;
        let (mut c, _) = connect_member(&client, &["r2"], None).await;
        let (mut d, _) = connect_member(&client, &["r3"], None).await;
        let (mut e, _) = connect_member(&client, &[], None).await;

        // From a handler, through the `Hub` extractor, except the sender.
        assert_eq!(command(&mut c, "say:r2:m0").await, "reached:1");

        assert_eq!(hub.send_to_room("r1", &Outgoing::text("m1"), None), 2);
        // b is in both rooms: one copy.
        assert_eq!(
            hub.send_to_rooms(["r1", "r2"], &Outgoing::text("m2"), None),
            3
        );
        assert_eq!(hub.send_to_room("r1", &Outgoing::text("m3"), Some(a_id)), 1);
        assert_eq!(
            hub.send_to_rooms(["r1", "r2", "r3", "r2"], &Outgoing::text("m4"), Some(b_id)),
            3
        );
        assert_eq!(hub.send_to_room("nobody", &Outgoing::text("lost"), None), 0);
        assert_eq!(
            hub.send_to_rooms(Vec::<Room>::new(), &Outgoing::text("lost"), None),
            0
        );
        // Excluding a non-member changes nothing.
        assert_eq!(hub.send_to_room("r3", &Outgoing::text("m5"), Some(a_id)), 1);
        assert_eq!(hub.broadcast(&Outgoing::text("end"), None), 5);

        assert_eq!(texts_until(&mut a, "end").await, ["m1", "m2", "m4"]);
        assert_eq!(texts_until(&mut b, "end").await, ["m0", "m1", "m2", "m3"]);
        assert_eq!(texts_until(&mut c, "end").await, ["m2", "m4"]);
        assert_eq!(texts_until(&mut d, "end").await, ["m4", "m5"]);
        assert_eq!(texts_until(&mut e, "end").await, Vec::<String>::new());
    })
    .await;
}

#[tokio::test]
async fn direct_user_and_broadcast_sends_return_how_many_they_reached() {
    bounded(Duration::from_secs(10), async {
        let hub = Hub::new();
        let client = TestClient::new(member_app(&hub));
        let (mut ann1, ann1_id) = connect_member(&client, &[], Some("ann")).await;
        let (mut ann2, _) = connect_member(&client, &[], Some("ann")).await;
        let (mut bob, bob_id) = connect_member(&client, &[], Some("bob")).await;
        let (mut anon, _) = connect_member(&client, &[], None).await;

        assert_eq!(hub.send_to(ann1_id, &Outgoing::text("direct")), 1);
        assert_eq!(
            hub.send_to(ConnectionId(u64::MAX), &Outgoing::text("lost")),
            0
        );
        assert_eq!(hub.send_to_user("ann", &Outgoing::text("ann-all"), None), 2);
        assert_eq!(
            hub.send_to_user("ann", &Outgoing::text("ann-other"), Some(ann1_id)),
            1
        );
        assert_eq!(hub.send_to_user("nobody", &Outgoing::text("lost"), None), 0);
        assert_eq!(hub.broadcast(&Outgoing::text("not-bob"), Some(bob_id)), 3);
        assert_eq!(hub.broadcast(&Outgoing::json(&["end"]).unwrap(), None), 4);

        let end = r#"["end"]"#;
        assert_eq!(
            texts_until(&mut ann1, end).await,
            ["direct", "ann-all", "not-bob"]
        );
        assert_eq!(
            texts_until(&mut ann2, end).await,
            ["ann-all", "ann-other", "not-bob"]
        );
        assert_eq!(texts_until(&mut bob, end).await, Vec::<String>::new());
        assert_eq!(texts_until(&mut anon, end).await, ["not-bob"]);

        // Binary messages go out as binary.
        assert_eq!(hub.send_to(bob_id, &Outgoing::binary(&b"\x00\xff"[..])), 1);
        assert_eq!(
            bob.recv().await.unwrap(),
            switchboard::ws::Message::Binary(Bytes::from_static(b"\x00\xff"))
        );
    })
    .await;
}

#[tokio::test]
async fn registry_queries_describe_connections_rooms_and_users() {
    bounded(Duration::from_secs(10), async {
        let hub = Hub::new();
        let client = TestClient::new(member_app(&hub));
        let (mut ann, ann_id) = connect_member(&client, &["a", "b"], Some("ann")).await;
        let (anon, anon_id) = connect_member(&client, &["b"], None).await;

        assert_eq!(hub.connection_count(), 2);
        let info = hub.info(ann_id).expect("ann is registered");
        assert_eq!(info.id, ann_id);
        assert_eq!(info.user, Some(UserId::from("ann")));
        assert_eq!(info.path, "/ws");
        assert_eq!(info.client_addr.ip().to_string(), "127.0.0.1");
        assert_eq!(hub.info(anon_id).expect("anon is registered").user, None);
        assert!(hub.info(ConnectionId(u64::MAX)).is_none());
        let ids: BTreeSet<_> = hub.connections().iter().map(|c| c.id).collect();
        assert_eq!(ids, BTreeSet::from([ann_id, anon_id]));

        assert_eq!(sorted(hub.rooms_of(ann_id)), rooms(&["a", "b"]));
        assert_eq!(sorted(hub.room_members("b")), sorted(vec![ann_id, anon_id]));
        assert_eq!(hub.room_size("a"), 1);
        assert_eq!(hub.room_size("b"), 2);
        assert_eq!(hub.room_size("zzz"), 0);
        assert_eq!(
            sorted(hub.rooms()),
            vec![(Room::from("a"), 1), (Room::from("b"), 2)]
        );
        assert_eq!(hub.user_connections("ann"), [ann_id]);
        assert!(hub.user_connections("nobody").is_empty());

        // Joining twice and leaving twice report no change; an emptied room disappears.
        assert_eq!(command(&mut ann, "join:b").await, "join:b:false");
        assert_eq!(command(&mut ann, "leave:a").await, "leave:a:true");
        assert_eq!(command(&mut ann, "leave:a").await, "leave:a:false");
        assert_eq!(sorted(hub.rooms()), vec![(Room::from("b"), 2)]);
        assert_eq!(hub.rooms_of(ann_id), rooms(&["b"]));

        // The hub's own join and leave, from outside any handler.
        assert!(hub.join(anon_id, "c"));
        assert!(!hub.join(anon_id, "c"));
        assert_eq!(hub.room_members("c"), [anon_id]);
        assert!(hub.leave(anon_id, "c"));
        assert_eq!(hub.room_size("c"), 0);
        assert!(!hub.join(ConnectionId(u64::MAX), "c"));
        assert_eq!(hub.room_size("c"), 0);

        // Identifying later moves the connection between users.
        assert!(hub.identify(anon_id, UserId::from("carol")));
        assert_eq!(hub.user_connections("carol"), [anon_id]);
        assert!(hub.identify(anon_id, UserId::from("dave")));
        assert!(hub.user_connections("carol").is_empty());
        assert_eq!(hub.info(anon_id).unwrap().user, Some(UserId::from("dave")));

        // A connection that ends leaves every index.
        assert_eq!(
            anon.close(CloseCode::Normal, "")
                .await
                .unwrap()
                .map(|f| f.code),
            Some(CloseCode::Normal)
        );
        assert!(eventually(Duration::from_secs(3), || hub.connection_count() == 1).await);
        assert!(hub.info(anon_id).is_none());
        assert!(hub.rooms_of(anon_id).is_empty());
        assert_eq!(hub.room_members("b"), [ann_id]);
        assert!(hub.user_connections("dave").is_empty());
        assert_eq!(hub.send_to(anon_id, &Outgoing::text("gone")), 0);
        assert!(!hub.identify(anon_id, UserId::from("erin")));
        assert!(hub.user_connections("erin").is_empty());
        drop(ann);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_publisher_reaches_every_subscriber_in_order_without_loss_or_duplicates() {
    const SUBSCRIBERS: usize = 20;
    const MESSAGES: u32 = 2_000;
    bounded(Duration::from_secs(15), async {
        let hub = Hub::new();
        let client = TestClient::new(member_app(&hub));
        let mut readers = Vec::new();
        for _ in 0..SUBSCRIBERS {
            let (mut socket, _) = connect_member(&client, &["seq"], None).await;
            readers.push(tokio::spawn(async move {
                let mut got = Vec::with_capacity(MESSAGES as usize);
                loop {
                    let text = next_text(&mut socket).await;
                    if text == "end" {
                        return got;
                    }
                    got.push(text.parse::<u32>().expect("a sequence number"));
                }
            }));
        }
        let publisher = {
            let hub = hub.clone();
            tokio::spawn(async move {
                for seq in 0..MESSAGES {
                    let reached = hub.send_to_room("seq", &Outgoing::text(seq.to_string()), None);
                    assert_eq!(reached, SUBSCRIBERS, "message {seq}");
                    if seq % 100 == 99 {
                        tokio::task::yield_now().await;
                    }
                }
                assert_eq!(
                    hub.send_to_room("seq", &Outgoing::text("end"), None),
                    SUBSCRIBERS
                );
            })
        };
        publisher.await.expect("publisher");
        let expected: Vec<u32> = (0..MESSAGES).collect();
        for (i, reader) in readers.into_iter().enumerate() {
            let got = reader.await.expect("reader");
            assert_eq!(got.len(), expected.len(), "subscriber {i} count");
            assert!(
                got == expected,
                "subscriber {i} saw loss, duplicates or reordering"
            );
        }
        let stats = hub.stats().snapshot();
        assert_eq!(stats.slow_consumer_evictions, 0);
        assert_eq!(stats.drops, 0);
    })
    .await;
}

/// Reads a raw server-to-client stream until EOF or a close frame; returns
/// the number of data messages and the close frame if one came. Binary
/// messages must be numbered 0, 1, 2, ... (see [`numbered`]).
async fn drain_raw(
    stream: &mut tokio::net::TcpStream,
    mut buf: BytesMut,
    within: Duration,
) -> (usize, Option<Option<CloseFrame>>) {
    let limits = Limits::default()
        .with_max_message_size(64 << 20)
        .with_max_frame_size(64 << 20);
    let mut decoder = Decoder::new(Role::Client, limits);
    let (mut data, mut binary) = (0, 0);
    tokio::time::timeout(within, async {
        loop {
            while let Some(message) = decoder.decode(&mut buf).expect("well-formed frames") {
                match message {
                    switchboard::ws::Message::Close(frame) => return (data, Some(frame)),
                    switchboard::ws::Message::Text(_) => data += 1,
                    switchboard::ws::Message::Binary(payload) => {
                        // What does arrive is the publisher's sequence, in order.
                        assert_eq!(payload[..4], (binary as u32).to_be_bytes());
                        binary += 1;
                        data += 1;
                    }
                    _ => {}
                }
            }
            buf.reserve(64 * 1024);
            match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return (data, None),
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("the stream ends or closes in time")
}

/// A binary message of `len` bytes starting with `seq` (big-endian).
fn numbered(seq: u32, len: usize) -> Outgoing {
    let mut payload = vec![0u8; len];
    payload[..4].copy_from_slice(&seq.to_be_bytes());
    Outgoing::binary(payload)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_consumer_is_evicted_without_slowing_the_room_or_the_publisher() {
    const HEALTHY: usize = 5;
    const MESSAGES: u32 = 5_000;
    const LAG: u32 = 16;
    bounded(Duration::from_secs(20), async {
        let hub = Hub::new();
        let recorder = Recorder::default();
        hub.add_hooks(recorder.clone());
        let app = Switchboard::new()
            .with_hub(hub.clone())
            .with_config(ServerConfig::default().with_close_timeout(Duration::from_secs(1)))
            .route_with(
                "/ws",
                RouteConfig::default().with_max_queue_bytes(64 * 1024),
                member,
            );
        let addr = spawn_server(app).await;
        let client = TestClient::tcp(addr);

        let mut healthy_ids = Vec::new();
        let mut readers = Vec::new();
        let progress: Arc<Vec<AtomicUsize>> =
            Arc::new((0..HEALTHY).map(|_| AtomicUsize::new(0)).collect());
        for i in 0..HEALTHY {
            let (mut socket, id) = connect_member(&client, &["feed"], None).await;
            healthy_ids.push(id);
            let progress = Arc::clone(&progress);
            readers.push(tokio::spawn(async move {
                for seq in 0..MESSAGES {
                    let data = socket.recv_bytes().await.expect("healthy subscriber reads");
                    assert_eq!(data.len(), 1024);
                    assert_eq!(data[..4], seq.to_be_bytes(), "subscriber {i}");
                    progress[i].store(seq as usize + 1, Ordering::Release);
                }
                socket
            }));
        }
        let mut stalled = StalledClient::connect(addr, "/ws?rooms=feed").await;
        assert!(
            eventually(Duration::from_secs(5), || hub.room_size("feed")
                == HEALTHY + 1)
            .await
        );
        let stalled_id = hub
            .room_members("feed")
            .into_iter()
            .find(|id| !healthy_ids.contains(id))
            .expect("the stalled member");

        let started = Instant::now();
        let (mut in_send, mut slowest) = (Duration::ZERO, Duration::ZERO);
        for seq in 0..MESSAGES {
            let message = numbered(seq, 1024);
            let t = Instant::now();
            let reached = hub.send_to_room("feed", &message, None);
            let took = t.elapsed();
            in_send += took;
            slowest = slowest.max(took);
            assert!(
                reached == HEALTHY || reached == HEALTHY + 1,
                "reached {reached}"
            );
            if seq % LAG == LAG - 1 {
                // Pace to the healthy readers: after each burst of LAG, wait
                // until they have the burst before it, so at most 2 × LAG
                // messages (about 33 KiB) are in flight to each.
                let floor = (seq + 1 - LAG) as usize;
                let deadline = Instant::now() + Duration::from_secs(5);
                while progress.iter().any(|p| p.load(Ordering::Acquire) < floor) {
                    assert!(
                        Instant::now() < deadline,
                        "healthy readers stopped at message {seq}"
                    );
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
        let total = started.elapsed();
        assert!(
            in_send < Duration::from_secs(2) && slowest < Duration::from_millis(250),
            "publishing blocked: {in_send:?} in sends, slowest {slowest:?}, total {total:?}"
        );

        let stats = hub.stats().snapshot();
        assert_eq!(stats.slow_consumer_evictions, 1, "{stats:?}");
        let mut healthy = Vec::new();
        for reader in readers {
            healthy.push(
                reader
                    .await
                    .expect("every healthy subscriber got every message"),
            );
        }
        // The evicted connection leaves the registry once its writer gives up
        // (the 1 s close timeout) and the connection task ends.
        assert!(
            eventually(Duration::from_secs(5), || hub.connection_count() == HEALTHY).await,
            "the evicted connection is still registered: {}",
            hub.connection_count()
        );
        assert!(hub.info(stalled_id).is_none());
        assert_eq!(
            sorted(hub.room_members("feed")),
            sorted(healthy_ids.clone())
        );
        assert_eq!(
            recorder.disconnect_code(stalled_id),
            Some(4002),
            "{:?}",
            recorder.events_of(stalled_id)
        );
        for id in &healthy_ids {
            assert_eq!(recorder.disconnect_code(*id), None);
        }

        // The stalled client finally reads. Its writer gave up while the
        // socket was full, so the 4002 close frame was never written: it sees
        // what the kernel buffered, then EOF (see
        // `evicted_client_that_resumes_reading_in_time_sees_4002`).
        let leftover = std::mem::take(&mut stalled.leftover);
        let (data, close) = drain_raw(&mut stalled.stream, leftover, Duration::from_secs(5)).await;
        match &close {
            None => {}
            Some(Some(frame)) if frame.code == CloseCode::Application(4002) => {}
            other => panic!("after {data} messages, expected EOF or a 4002 close, got {other:?}"),
        }
        eprintln!("stalled client read {data} messages then {close:?}; {in_send:?} in sends");

        // The healthy ones are still subscribed and served.
        assert_eq!(
            hub.send_to_room("feed", &Outgoing::text("after"), None),
            HEALTHY
        );
        for socket in &mut healthy {
            assert_eq!(next_text(socket).await, "after");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evicted_client_that_resumes_reading_in_time_sees_4002() {
    bounded(Duration::from_secs(15), async {
        let hub = Hub::new();
        let recorder = Recorder::default();
        hub.add_hooks(recorder.clone());
        let app = Switchboard::new()
            .with_hub(hub.clone())
            .with_config(ServerConfig::default().with_close_timeout(Duration::from_secs(5)))
            .route_with(
                "/ws",
                RouteConfig::default().with_max_queue_bytes(64 * 1024),
                member,
            );
        let addr = spawn_server(app).await;
        let mut stalled = StalledClient::connect(addr, "/ws?rooms=feed").await;
        assert!(eventually(Duration::from_secs(5), || hub.room_size("feed") == 1).await);
        let id = hub.room_members("feed")[0];

        let mut sent = 0u32;
        while hub.stats().snapshot().slow_consumer_evictions == 0 {
            assert!(sent < 100_000, "never evicted");
            hub.send_to_room("feed", &numbered(sent, 1024), None);
            sent += 1;
            if sent.is_multiple_of(64) {
                tokio::task::yield_now().await;
            }
        }
        // Evicted: nothing more is queued for it.
        assert_eq!(hub.send_to(id, &Outgoing::text("late")), 0);

        // Reading now, within the close timeout, lets the blocked write
        // finish; the rest of the queue is dropped and the close follows.
        let leftover = std::mem::take(&mut stalled.leftover);
        let (data, close) = drain_raw(&mut stalled.stream, leftover, Duration::from_secs(4)).await;
        let frame = close
            .unwrap_or_else(|| panic!("EOF after {data} of {sent} messages, no close frame"))
            .expect("a close frame with a code");
        assert_eq!(frame.code, CloseCode::Application(4002));
        assert_eq!(frame.reason, "slow consumer");
        assert!(data < sent as usize, "the queue was dropped, not delivered");

        // Answer the close; the connection ends with 4002.
        let reply = encode_client_frame(OpCode::Close, &frame.to_payload(), [1, 2, 3, 4]);
        stalled.stream.write_all(&reply).await.unwrap();
        assert!(eventually(Duration::from_secs(3), || hub.connection_count() == 0).await);
        assert_eq!(recorder.disconnect_code(id), Some(4002));
    })
    .await;
}

#[tokio::test]
async fn close_user_closes_every_connection_of_that_user_only() {
    bounded(Duration::from_secs(10), async {
        let hub = Hub::new();
        let client = TestClient::new(member_app(&hub));
        let mut alice = Vec::new();
        for _ in 0..3 {
            alice.push(connect_member(&client, &["lobby"], Some("alice")).await.0);
        }
        let (mut bob, bob_id) = connect_member(&client, &["lobby"], Some("bob")).await;
        let (mut carol, carol_id) = connect_member(&client, &["lobby"], Some("carol")).await;

        let kicked = hub.close_user("alice", CloseCode::Application(4100), "kicked");
        assert_eq!(kicked, 3);
        assert_eq!(
            hub.close_user("nobody", CloseCode::Application(4100), "kicked"),
            0
        );
        for socket in &mut alice {
            let frame = socket.recv_close().await.expect("alice is closed");
            assert_eq!(
                frame,
                Some(CloseFrame::new(CloseCode::Application(4100), "kicked"))
            );
        }
        assert!(eventually(Duration::from_secs(3), || hub.connection_count() == 2).await);
        assert!(hub.user_connections("alice").is_empty());
        assert_eq!(
            sorted(hub.room_members("lobby")),
            sorted(vec![bob_id, carol_id])
        );

        // The others are still open and reachable.
        assert_eq!(
            hub.send_to_room("lobby", &Outgoing::text("still here"), None),
            2
        );
        assert_eq!(next_text(&mut bob).await, "still here");
        assert_eq!(next_text(&mut carol).await, "still here");
        assert_eq!(command(&mut bob, "join:x").await, "join:x:true");

        // `close` ends one connection with the given code.
        assert!(hub.close(bob_id, CloseCode::Application(4101), "bye bob"));
        assert_eq!(
            bob.recv_close().await.unwrap(),
            Some(CloseFrame::new(CloseCode::Application(4101), "bye bob"))
        );
        assert!(eventually(Duration::from_secs(3), || hub.connection_count() == 1).await);
        assert!(!hub.close(bob_id, CloseCode::Application(4101), "again"));
        assert!(!hub.close(ConnectionId(u64::MAX), CloseCode::Normal, ""));
        assert_eq!(hub.room_members("lobby"), [carol_id]);
        assert_eq!(command(&mut carol, "join:x").await, "join:x:true");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_membership_is_left_behind_when_connections_end_in_any_way() {
    const CLIENTS: usize = 50;
    bounded(Duration::from_secs(15), async {
        let hub = Hub::new();
        let addr = spawn_server(member_app(&hub)).await;
        let client = TestClient::tcp(addr);
        let mut sockets = Vec::new();
        for i in 0..CLIENTS {
            let r = format!("r{}", i % 5);
            let s = format!("s{}", i % 7);
            let user = format!("u{}", i % 10);
            let user = (i % 2 == 0).then_some(user.as_str());
            let (socket, _) = connect_member(&client, &["all", &r, &s], user).await;
            sockets.push(socket);
        }
        assert_eq!(hub.connection_count(), CLIENTS);
        assert_eq!(hub.room_size("all"), CLIENTS);
        assert_eq!(hub.rooms().len(), 1 + 5 + 7);

        let mut endings = Vec::new();
        for (i, mut socket) in sockets.into_iter().enumerate() {
            endings.push(tokio::spawn(async move {
                match i % 4 {
                    // A clean close from the client.
                    0 => {
                        socket
                            .close(CloseCode::Normal, "")
                            .await
                            .expect("clean close");
                    }
                    // The TCP socket just goes away.
                    1 => drop(socket),
                    // The handler returns; the server closes.
                    2 => {
                        socket.send_text("quit").await.unwrap();
                        socket.recv_close().await.expect("server close");
                    }
                    // The client closes with an application code.
                    _ => {
                        socket
                            .close(CloseCode::Application(4000), "leaving")
                            .await
                            .expect("close 4000");
                    }
                }
            }));
        }
        for ending in endings {
            ending.await.unwrap();
        }
        let empty = eventually(Duration::from_secs(5), || {
            hub.connection_count() == 0
                && hub.rooms().is_empty()
                && (0..10).all(|u| hub.user_connections(format!("u{u}")).is_empty())
        })
        .await;
        assert!(
            empty,
            "left behind: {} connections, rooms {:?}",
            hub.connection_count(),
            hub.rooms()
        );
        assert!(hub.connections().is_empty());
        assert_eq!(hub.room_size("all"), 0);
    })
    .await;
}

/// One hook call, as the recorder saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Connect(ConnectionId, Option<String>),
    Join(ConnectionId, String),
    Leave(ConnectionId, String),
    Error(ConnectionId),
    Disconnect(ConnectionId, u16),
}

impl Event {
    fn id(&self) -> ConnectionId {
        match self {
            Self::Connect(id, _)
            | Self::Join(id, _)
            | Self::Leave(id, _)
            | Self::Error(id)
            | Self::Disconnect(id, _) => *id,
        }
    }
}

/// Hooks that record every call.
#[derive(Debug, Clone, Default)]
struct Recorder {
    events: Arc<Mutex<Vec<Event>>>,
    errors: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    fn push(&self, event: Event) {
        self.events.lock().unwrap().push(event);
    }

    fn events_of(&self, id: ConnectionId) -> Vec<Event> {
        let events = self.events.lock().unwrap();
        events.iter().filter(|e| e.id() == id).cloned().collect()
    }

    fn disconnect_code(&self, id: ConnectionId) -> Option<u16> {
        self.events_of(id).iter().find_map(|e| match e {
            Event::Disconnect(_, code) => Some(*code),
            _ => None,
        })
    }

    /// Waits until `id` has disconnected, and returns its events.
    async fn ended(&self, id: ConnectionId) -> Vec<Event> {
        let ended = eventually(Duration::from_secs(5), || {
            self.disconnect_code(id).is_some()
        })
        .await;
        assert!(ended, "no on_disconnect for {id}: {:?}", self.events_of(id));
        self.events_of(id)
    }
}

impl HubHooks for Recorder {
    fn on_connect(&self, hub: &Hub, info: &ConnectionInfo) {
        // The connection is registered by the time the hook runs.
        assert!(hub.info(info.id).is_some());
        let user = info.user.as_ref().map(|u| u.as_str().to_owned());
        self.push(Event::Connect(info.id, user));
    }
    fn on_disconnect(&self, hub: &Hub, info: &ConnectionInfo, close: &CloseFrame) {
        // ... and gone from the registry when this one runs.
        assert!(hub.info(info.id).is_none());
        self.push(Event::Disconnect(info.id, close.code.as_u16()));
    }
    fn on_error(&self, _hub: &Hub, info: &ConnectionInfo, error: &switchboard::Error) {
        self.errors.lock().unwrap().push(error.to_string());
        self.push(Event::Error(info.id));
    }
    fn on_join(&self, _hub: &Hub, id: ConnectionId, room: &Room) {
        self.push(Event::Join(id, room.to_string()));
    }
    fn on_leave(&self, _hub: &Hub, id: ConnectionId, room: &Room) {
        self.push(Event::Leave(id, room.to_string()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_hooks_fire_with_the_close_code() {
    use Event::{Connect, Disconnect, Error, Join, Leave};
    bounded(Duration::from_secs(15), async {
        let hub = Hub::new();
        let recorder = Recorder::default();
        hub.add_hooks(recorder.clone());
        let addr = spawn_server(member_app(&hub)).await;
        let client = TestClient::tcp(addr);
        let s = |name: &str| name.to_owned();

        // Joins, an explicit leave, then a clean close from the client (1000).
        let (mut a, a_id) = connect_member(&client, &["a", "b"], Some("ann")).await;
        assert_eq!(command(&mut a, "leave:a").await, "leave:a:true");
        // No change, no hook.
        assert_eq!(command(&mut a, "join:b").await, "join:b:false");
        assert_eq!(command(&mut a, "leave:zzz").await, "leave:zzz:false");
        a.close(CloseCode::Normal, "bye").await.unwrap();
        assert_eq!(
            recorder.ended(a_id).await,
            [
                Connect(a_id, Some(s("ann"))),
                Join(a_id, s("a")),
                Join(a_id, s("b")),
                Leave(a_id, s("a")),
                Leave(a_id, s("b")),
                Disconnect(a_id, 1000),
            ]
        );

        // The TCP socket dropped without a close frame (1006).
        let (b, b_id) = connect_member(&client, &["c"], None).await;
        drop(b);
        assert_eq!(
            recorder.ended(b_id).await,
            [
                Connect(b_id, None),
                Join(b_id, s("c")),
                Leave(b_id, s("c")),
                Disconnect(b_id, 1006),
            ]
        );

        // The handler returns an error (closed with 1011).
        let (mut c, c_id) = connect_member(&client, &["d"], None).await;
        c.send_text("fail").await.unwrap();
        let frame = c.recv_close().await.unwrap().expect("a close code");
        assert_eq!(frame.code, CloseCode::InternalError);
        assert_eq!(
            recorder.ended(c_id).await,
            [
                Connect(c_id, None),
                Join(c_id, s("d")),
                Error(c_id),
                Leave(c_id, s("d")),
                Disconnect(c_id, 1011),
            ]
        );
        let errors = recorder.errors.lock().unwrap().clone();
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].contains("the handler failed on purpose"),
            "{errors:?}"
        );

        // The client closes with its own code; the server closes another.
        let (d, d_id) = connect_member(&client, &[], None).await;
        d.close(CloseCode::Application(4000), "done").await.unwrap();
        assert_eq!(
            recorder.ended(d_id).await,
            [Connect(d_id, None), Disconnect(d_id, 4000)]
        );
        let (mut e, e_id) = connect_member(&client, &[], None).await;
        assert!(hub.close(e_id, CloseCode::Application(4100), "kicked"));
        e.recv_close().await.unwrap();
        assert_eq!(
            recorder.ended(e_id).await,
            [Connect(e_id, None), Disconnect(e_id, 4100)]
        );

        // Joins and leaves through the hub fire the same hooks.
        let (_f, f_id) = connect_member(&client, &[], None).await;
        assert!(hub.join(f_id, "x"));
        assert!(hub.leave(f_id, "x"));
        assert_eq!(
            recorder.events_of(f_id),
            [Connect(f_id, None), Join(f_id, s("x")), Leave(f_id, s("x"))]
        );
    })
    .await;
}

#[tokio::test]
async fn typed_state_round_trips_per_connection() {
    bounded(Duration::from_secs(10), async {
        let hub = Hub::new();
        let client = TestClient::new(member_app(&hub));
        let (mut s, id) = connect_member(&client, &[], None).await;
        let (_other, other_id) = connect_member(&client, &[], None).await;

        assert_eq!(hub.state::<Tag>(id), None);
        assert_eq!(command(&mut s, "state").await, "state:none");
        assert!(hub.set_state(id, Tag("gold".into())));
        assert_eq!(hub.state::<Tag>(id), Some(Tag("gold".into())));
        // The handler sees it through `ws.hub()`.
        assert_eq!(command(&mut s, "state").await, "state:gold");

        // One value per type; another type sits beside it.
        assert!(hub.set_state(id, 42u32));
        assert!(hub.set_state(id, Tag("silver".into())));
        assert_eq!(hub.state::<Tag>(id), Some(Tag("silver".into())));
        assert_eq!(hub.state::<u32>(id), Some(42));
        assert_eq!(hub.state::<u64>(id), None);

        // Per connection.
        assert_eq!(hub.state::<Tag>(other_id), None);
        assert!(!hub.set_state(ConnectionId(u64::MAX), Tag("x".into())));
        assert_eq!(hub.state::<Tag>(ConnectionId(u64::MAX)), None);

        // Gone with the connection.
        s.send_text("quit").await.unwrap();
        s.recv_close().await.unwrap();
        assert!(eventually(Duration::from_secs(3), || hub.info(id).is_none()).await);
        assert_eq!(hub.state::<Tag>(id), None);
        assert!(!hub.set_state(id, Tag("late".into())));
    })
    .await;
}

#[tokio::test]
async fn stats_count_a_known_workload() {
    bounded(Duration::from_secs(10), async {
        let hub = Hub::new();
        let client = TestClient::new(member_app(&hub));
        let (mut a, a_id) = connect_member(&client, &["s"], None).await;
        let (mut b, b_id) = connect_member(&client, &["s"], None).await;
        // A fresh hub numbers from 1: the greetings "id:1" and "id:2" are
        // 2-byte header + 4-byte text frames.
        assert_eq!((a_id, b_id), (ConnectionId(1), ConnectionId(2)));
        let out_is = |messages: u64, bytes: u64| {
            let s = hub.stats().snapshot();
            s.messages_out == messages && s.bytes_out == bytes
        };
        assert!(eventually(Duration::from_secs(3), || out_is(2, 12)).await);
        assert_eq!(hub.stats().snapshot().messages_in, 0);

        // In: three texts of 3, 4 and 0 bytes (ignored by the handler).
        for text in ["abc", "defg", ""] {
            a.send_text(text).await.unwrap();
        }
        assert!(
            eventually(Duration::from_secs(3), || hub
                .stats()
                .snapshot()
                .messages_in
                == 3)
            .await
        );
        assert_eq!(hub.stats().snapshot().bytes_in, 7);

        // Out: 2 × (2 + 5), 2 × (4 + 200), 1 × (10 + 70,000).
        assert_eq!(hub.send_to_room("s", &Outgoing::text("hello"), None), 2);
        assert_eq!(
            hub.send_to_rooms(["s", "s"], &Outgoing::text("x".repeat(200)), None),
            2
        );
        assert_eq!(hub.send_to(a_id, &Outgoing::binary(vec![7u8; 70_000])), 1);
        assert_eq!(hub.send_to_room("empty", &Outgoing::text("none"), None), 0);
        assert_eq!(next_text(&mut a).await, "hello");
        assert_eq!(next_text(&mut a).await.len(), 200);
        assert_eq!(a.recv_bytes().await.unwrap().len(), 70_000);
        assert_eq!(next_text(&mut b).await, "hello");
        assert_eq!(next_text(&mut b).await.len(), 200);
        let bytes = 12 + 2 * 7 + 2 * 204 + 70_010;
        assert!(
            eventually(Duration::from_secs(3), || out_is(7, bytes)).await,
            "{:?}",
            hub.stats().snapshot()
        );
        let s = hub.stats().snapshot();
        assert_eq!(
            (s.deliveries, s.drops, s.slow_consumer_evictions),
            (5, 0, 0)
        );
        assert_eq!((s.messages_in, s.bytes_in), (3, 7));

        // A send to a closing connection is a drop; its close frame
        // (2 + 2 + "bye") is written like any frame.
        assert!(hub.close(b_id, CloseCode::Application(4100), "bye"));
        assert_eq!(hub.send_to(b_id, &Outgoing::text("late")), 0);
        assert_eq!(
            b.recv_close().await.unwrap().unwrap().code,
            CloseCode::Application(4100)
        );
        // A clean close from the client: the server's echo is 2 + 2 bytes.
        a.close(CloseCode::Normal, "").await.unwrap();
        let bytes = bytes + 7 + 4;
        assert!(
            eventually(Duration::from_secs(3), || out_is(9, bytes)).await,
            "{:?}",
            hub.stats().snapshot()
        );
        let s = hub.stats().snapshot();
        assert_eq!(
            (s.deliveries, s.drops, s.slow_consumer_evictions),
            (5, 1, 0)
        );
        assert_eq!((s.messages_in, s.bytes_in), (3, 7));
    })
    .await;
}

#[tokio::test]
async fn a_handshake_the_handler_refuses_is_never_registered() {
    bounded(Duration::from_secs(10), async {
        let hub = Hub::new();
        let recorder = Recorder::default();
        hub.add_hooks(recorder.clone());
        let app =
            member_app(&hub).route("/refuse", |ws: switchboard::WebSocketUpgrade| async move {
                Err::<(), _>(
                    ws.with_user("mallory")
                        .reject(http::StatusCode::FORBIDDEN, "no"),
                )
            });
        let client = TestClient::new(app);
        match client.connect("/refuse").await {
            Err(TestError::Rejected { status, .. }) => assert_eq!(status.as_u16(), 403),
            other => panic!("expected a 403, got {other:?}"),
        }
        assert_eq!(hub.connection_count(), 0);
        assert!(hub.user_connections("mallory").is_empty());
        assert!(recorder.events.lock().unwrap().is_empty());
    })
    .await;
}
