//! The broker test suite: one set of behaviours every [`Broker`] must show,
//! run against each backend through a [`BrokerFactory`].
//!
//! Each case starts two or three real servers on `127.0.0.1:0`, each with its
//! own [`Hub`] and [`Cluster`], connects clients over TCP and checks what
//! they receive. "Exactly once" is checked with a fence: after the expected
//! messages, a marker is published from the same instance, and once it has
//! arrived nothing else may arrive for a quiet period.
//!
//! Use [`broker_suite!`](crate::broker_suite) in an integration test file
//! to get one `#[tokio::test]` per case:
//!
//! ```ignore
//! async fn factory() -> Option<MyFactory> { Some(MyFactory::new()) }
//! switchboard::broker_suite!(factory);
//! ```
//!
//! Every case panics on failure and is bounded by [`CASE_TIMEOUT`].

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Deserialize;
use switchboard_ws::CloseCode;

use super::{TestClient, TestSocket};
use crate::broker::presence::PresenceConfig;
use crate::broker::stream::{Epoch, HistoryConfig, Joined, StreamPosition, Want};
use crate::broker::{Broker, BrokerError, Cluster, ConnectionAddr, Payload, Target};
use crate::conn::{Query, ShutdownHandle, Switchboard, WebSocketUpgrade};
use crate::delivery::Outgoing;
use crate::hub::{ConnectionId, Hub};
use switchboard_ws::Message;

/// The longest any one case may run.
pub const CASE_TIMEOUT: Duration = Duration::from_secs(25);

/// How long a socket must stay silent after a fence.
const QUIET: Duration = Duration::from_millis(150);

/// Makes brokers that share one backend, so that the clusters they join see
/// each other.
pub trait BrokerFactory: Send + Sync {
    /// The broker type.
    type Broker: Broker;

    /// A new, unstarted broker on the shared backend.
    fn broker(&self) -> impl Future<Output = Self::Broker> + Send;

    /// The longest cluster-wide counts may lag behind a change.
    fn count_delay(&self) -> Duration {
        Duration::from_secs(3)
    }
}

/// Generates one `#[tokio::test]` per suite case. `$factory` is an async
/// function returning `Option<impl BrokerFactory>`; `None` skips every case
/// (the function should say why, loudly).
#[macro_export]
macro_rules! broker_suite {
    ($factory:path) => {
        $crate::broker_suite!(@cases $factory;
            room_messages_reach_members_on_every_instance_once,
            user_messages_reach_every_connection_of_the_user,
            connection_messages_reach_only_that_connection,
            broadcast_reaches_every_connection_once,
            except_leaves_one_connection_out,
            close_reaches_connections_on_other_instances,
            leaving_the_last_member_stops_room_messages,
            messages_from_one_instance_keep_their_order,
            text_and_binary_payloads_arrive_intact,
            counts_span_every_instance,
            publish_fails_before_start_and_after_shutdown,
        );
        $crate::broker_suite!(@presence $factory;
            presence_lists_and_counts_members_on_every_instance,
            users_join_with_their_first_connection_and_leave_with_their_last,
            a_user_back_within_the_grace_sends_neither_leave_nor_join,
            connection_mode_announces_every_connection,
        );
        $crate::broker_suite!(@streams $factory;
            stream_publications_reach_every_instance_in_offset_order,
            a_subscriber_recovers_on_another_instance,
            idempotent_publishes_go_out_once,
            the_latest_publications_are_replayed_at_subscribe_time,
            members_who_joined_directly_still_get_publications,
        );
    };
    (@cases $factory:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(factory) = $factory().await else { return };
                $crate::testing::broker::$case(&factory).await;
            }
        )*
    };
    (@presence $factory:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(factory) = $factory().await else { return };
                $crate::testing::presence::$case(&factory).await;
            }
        )*
    };
    (@streams $factory:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(factory) = $factory().await else { return };
                $crate::testing::streams::$case(&factory).await;
            }
        )*
    };
}

/// One running instance: a server on `127.0.0.1:0` with its hub and cluster.
#[derive(Debug)]
pub struct TestNode {
    /// This instance's cluster member.
    pub cluster: Cluster,
    /// Where the server listens.
    pub addr: SocketAddr,
    shutdown: ShutdownHandle,
    server: tokio::task::JoinHandle<()>,
}

/// A connected client: its socket and its connection's addresses.
#[derive(Debug)]
pub struct Member {
    /// The client socket.
    pub socket: TestSocket,
    /// The connection's id on its instance.
    pub id: ConnectionId,
    /// The connection's cluster-wide address.
    pub addr: ConnectionAddr,
}

#[derive(Debug, Deserialize)]
struct MemberParams {
    rooms: Option<String>,
    user: Option<String>,
}

/// Joins `rooms`, answers `id:<n>`, then obeys `join:<room>` and
/// `leave:<room>` (answering `ok`) until the client goes.
async fn member(
    ws: WebSocketUpgrade,
    Query(params): Query<MemberParams>,
) -> Result<(), crate::error::Error> {
    let ws = match params.user {
        Some(user) => ws.with_user(user),
        None => ws,
    };
    let mut ws = ws.accept().await?;
    for room in params.rooms.iter().flat_map(|r| r.split(',')) {
        if !room.is_empty() {
            ws.join(room);
        }
    }
    ws.send_text(format!("id:{}", ws.id())).await?;
    while let Some(text) = ws.recv_text().await? {
        if let Some(room) = text.strip_prefix("join:") {
            ws.join(room);
        } else if let Some(room) = text.strip_prefix("leave:") {
            ws.leave(room);
        } else {
            continue;
        }
        ws.send_text("ok").await?;
    }
    Ok(())
}

/// Subscribes to `channel` (a channel with history) through the cluster,
/// as the query asks (`recover=<epoch>:<offset>` or `last=<n>`): the
/// socket gets `joined <epoch> <offset> <recovered|fresh|lost:<reason>>`,
/// then the replay and live publications as they are sent.
async fn stream_member(
    cluster: Cluster,
    ws: WebSocketUpgrade,
    Query(params): Query<StreamParams>,
) -> Result<(), crate::error::Error> {
    let mut ws = ws.accept().await?;
    let room = crate::hub::Room::from(params.channel.as_str());
    let want = match (
        params.recover.as_deref().and_then(|r| r.split_once(':')),
        params.last,
    ) {
        (Some((epoch, offset)), _) => Want::Recover(StreamPosition::new(
            Epoch::new(epoch),
            offset.parse().unwrap_or(0),
        )),
        (None, Some(n)) => Want::Last(n),
        (None, None) => Want::Live,
    };
    let ack = |joined: &Joined| {
        let how = match &joined.recovered {
            None => "fresh".to_owned(),
            Some(Ok(())) => "recovered".to_owned(),
            Some(Err(why)) => format!("lost:{}", why.as_str()),
        };
        let position = &joined.position;
        Some(Outgoing::text(format!(
            "joined {} {} {how}",
            position.epoch, position.offset
        )))
    };
    if let Err(e) = cluster.join_stream(ws.id(), &room, want, ack).await {
        ws.send_text(format!("failed {e}")).await?;
    }
    while ws.recv().await?.is_some() {}
    Ok(())
}

#[derive(Debug, Deserialize)]
struct StreamParams {
    channel: String,
    recover: Option<String>,
    last: Option<usize>,
}

impl TestNode {
    /// Starts a server whose cluster uses `broker`, and starts the cluster.
    pub async fn start(broker: impl Broker) -> Self {
        Self::start_with_history(broker, HistoryConfig::default()).await
    }

    /// Starts a server whose cluster uses `broker` and keeps history as
    /// `history` says. Besides `/ws/member`, it serves `/ws/stream`
    /// ([`TestNode::subscribe`]).
    pub async fn start_with_history(broker: impl Broker, history: HistoryConfig) -> Self {
        Self::start_with(broker, history, PresenceConfig::default()).await
    }

    /// Starts a server whose cluster uses `broker` and keeps presence as
    /// `presence` says.
    pub async fn start_with_presence(broker: impl Broker, presence: PresenceConfig) -> Self {
        Self::start_with(broker, HistoryConfig::default(), presence).await
    }

    async fn start_with(
        broker: impl Broker,
        history: HistoryConfig,
        presence: PresenceConfig,
    ) -> Self {
        let hub = Hub::new();
        let cluster = Cluster::builder(hub.clone(), broker)
            .history(history)
            .presence(presence)
            .build();
        cluster.start().await.expect("broker starts");
        let streams = cluster.clone();
        let server = Switchboard::new()
            .with_hub(hub)
            .route("/ws/member", member)
            .route(
                "/ws/stream",
                move |ws: WebSocketUpgrade, query: Query<StreamParams>| {
                    stream_member(streams.clone(), ws, query)
                },
            )
            .bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = server.local_addr();
        let shutdown = server.shutdown_handle();
        let server = tokio::spawn(async move {
            let _ = server.run().await;
        });
        Self {
            cluster,
            addr,
            shutdown,
            server,
        }
    }

    /// Connects a member in `rooms` (and as `user`), and waits until the
    /// broker listens for them.
    pub async fn connect(&self, rooms: &[&str], user: Option<&str>) -> Member {
        let member = self.connect_unsynced(rooms, user).await;
        self.cluster.sync().await.expect("broker syncs");
        member
    }

    /// Connects a member without waiting for the broker.
    pub async fn connect_unsynced(&self, rooms: &[&str], user: Option<&str>) -> Member {
        let mut request = TestClient::tcp(self.addr).request("/ws/member");
        if !rooms.is_empty() {
            request = request.query("rooms", &rooms.join(","));
        }
        if let Some(user) = user {
            request = request.query("user", user);
        }
        let mut socket = request.connect().await.expect("member connects");
        let hello = next_text(&mut socket).await;
        let id = hello
            .strip_prefix("id:")
            .and_then(|n| n.parse().ok())
            .map(ConnectionId)
            .unwrap_or_else(|| panic!("expected id:<n>, got {hello:?}"));
        Member {
            socket,
            id,
            addr: self.cluster.address(id),
        }
    }

    /// Stops the cluster and the server. Does not wait for clients the
    /// test still holds to finish closing.
    pub async fn stop(self) {
        self.cluster.shutdown().await;
        self.shutdown.shutdown();
        self.server.abort();
    }
}

impl TestNode {
    /// Subscribes a client to `channel` through `/ws/stream` with `query`
    /// (`recover=<epoch>:<offset>`, `last=<n>`, or nothing); returns the
    /// socket and its `joined ...` line.
    pub async fn subscribe(&self, channel: &str, query: &[(&str, &str)]) -> (TestSocket, String) {
        let mut request = TestClient::tcp(self.addr)
            .request("/ws/stream")
            .query("channel", channel);
        for (name, value) in query {
            request = request.query(name, value);
        }
        let mut socket = request.connect().await.expect("stream member connects");
        let joined = next_text(&mut socket).await;
        (socket, joined)
    }
}

impl Member {
    /// Sends a command (`join:<room>`, `leave:<room>`) and waits for `ok`.
    pub async fn command(&mut self, command: &str) {
        self.socket.send_text(command).await.expect("send command");
        assert_eq!(
            next_text(&mut self.socket).await,
            "ok",
            "reply to {command}"
        );
    }
}

/// The next text message; panics on anything else.
pub async fn next_text(socket: &mut TestSocket) -> String {
    match socket.recv().await {
        Ok(Message::Text(text)) => text.as_str().to_owned(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

/// Panics if anything arrives within the quiet period.
pub async fn expect_silence(socket: &mut TestSocket, who: &str) {
    if let Ok(got) = tokio::time::timeout(QUIET, socket.recv()).await {
        panic!("{who}: expected nothing more, got {got:?}");
    }
}

/// Expects exactly `texts` in order, then the fence, then silence.
async fn expect_exactly(member: &mut Member, texts: &[&str], fence: &str, who: &str) {
    for text in texts.iter().chain([&fence]) {
        match member.socket.recv().await {
            Ok(Message::Text(got)) => assert_eq!(got.as_str(), *text, "{who}"),
            other => panic!("{who}: expected {text:?}, got {other:?}"),
        }
    }
    expect_silence(&mut member.socket, who).await;
}

async fn publish(node: &TestNode, target: Target, text: &str) -> usize {
    node.cluster
        .publish(target, text)
        .await
        .unwrap_or_else(|e| panic!("publish {text:?}: {e}"))
        .local
}

async fn nodes<F: BrokerFactory>(factory: &F, n: usize) -> Vec<TestNode> {
    let mut nodes = Vec::with_capacity(n);
    for _ in 0..n {
        nodes.push(TestNode::start(factory.broker().await).await);
    }
    nodes
}

pub(crate) async fn stop_all(nodes: Vec<TestNode>) {
    for node in nodes {
        node.stop().await;
    }
}

pub(crate) async fn bounded(case: impl Future<Output = ()>) {
    if tokio::time::timeout(CASE_TIMEOUT, case).await.is_err() {
        panic!("case did not finish within {CASE_TIMEOUT:?}");
    }
}

/// A room publish from an instance with no member, then from one with
/// members, reaches each member once; a non-member gets nothing.
pub async fn room_messages_reach_members_on_every_instance_once<F: BrokerFactory>(factory: &F) {
    bounded(async {
        let n = nodes(factory, 3).await;
        let mut a1 = n[0].connect(&["r"], None).await;
        let mut a2 = n[0].connect(&["r", "other"], None).await;
        let mut b1 = n[1].connect(&["r"], None).await;
        let mut c1 = n[2].connect(&["other"], None).await;

        assert_eq!(publish(&n[2], Target::room("r"), "from-c").await, 0);
        // Order holds per publisher only: let from-c arrive everywhere first.
        for m in [&mut a1, &mut a2, &mut b1] {
            assert_eq!(next_text(&mut m.socket).await, "from-c");
        }
        assert_eq!(publish(&n[0], Target::room("r"), "from-a").await, 2);
        publish(&n[0], Target::room("r"), "fence").await;
        for (m, who) in [(&mut a1, "a1"), (&mut a2, "a2"), (&mut b1, "b1")] {
            expect_exactly(m, &["from-a"], "fence", who).await;
        }
        publish(&n[0], Target::room("other"), "other-fence").await;
        assert_eq!(next_text(&mut c1.socket).await, "other-fence");
        expect_silence(&mut c1.socket, "c1").await;
        stop_all(n).await;
    })
    .await;
}

/// A user publish reaches each of the user's connections on every
/// instance once, and nobody else.
pub async fn user_messages_reach_every_connection_of_the_user<F: BrokerFactory>(factory: &F) {
    bounded(async {
        let n = nodes(factory, 3).await;
        let mut u_a = n[0].connect(&[], Some("u")).await;
        let mut u_b1 = n[1].connect(&[], Some("u")).await;
        let mut u_b2 = n[1].connect(&[], Some("u")).await;
        let mut v_c = n[2].connect(&[], Some("v")).await;

        assert_eq!(publish(&n[2], Target::user("u"), "for-u").await, 0);
        publish(&n[2], Target::user("u"), "fence").await;
        for (m, who) in [(&mut u_a, "u_a"), (&mut u_b1, "u_b1"), (&mut u_b2, "u_b2")] {
            expect_exactly(m, &["for-u"], "fence", who).await;
        }
        assert_eq!(publish(&n[1], Target::user("v"), "for-v").await, 0);
        assert_eq!(next_text(&mut v_c.socket).await, "for-v");
        expect_silence(&mut v_c.socket, "v_c").await;
        stop_all(n).await;
    })
    .await;
}

/// A publish to one connection reaches it, on its own instance or
/// another, and no other connection; to a local one it stays local.
pub async fn connection_messages_reach_only_that_connection<F: BrokerFactory>(factory: &F) {
    bounded(async {
        let n = nodes(factory, 2).await;
        let mut a1 = n[0].connect(&["r"], None).await;
        let mut a2 = n[0].connect(&["r"], None).await;
        let mut b1 = n[1].connect(&["r"], None).await;

        let remote = n[1]
            .cluster
            .publish(Target::Connection(a1.addr.clone()), "remote")
            .await
            .expect("publish to a remote connection");
        assert_eq!((remote.local, remote.forwarded), (0, true));
        assert_eq!(next_text(&mut a1.socket).await, "remote");
        let local = n[0]
            .cluster
            .publish(Target::Connection(a1.addr.clone()), "local")
            .await
            .expect("publish to a local connection");
        assert_eq!((local.local, local.forwarded), (1, false));
        publish(&n[1], Target::Connection(a1.addr.clone()), "fence").await;
        expect_exactly(&mut a1, &["local"], "fence", "a1").await;
        expect_silence(&mut a2.socket, "a2").await;
        expect_silence(&mut b1.socket, "b1").await;
        stop_all(n).await;
    })
    .await;
}

/// A broadcast reaches every connection on every instance once.
pub async fn broadcast_reaches_every_connection_once<F: BrokerFactory>(factory: &F) {
    bounded(async {
        let n = nodes(factory, 3).await;
        let mut members = [
            n[0].connect(&[], None).await,
            n[1].connect(&["r"], None).await,
            n[1].connect(&[], Some("u")).await,
            n[2].connect(&[], None).await,
        ];
        assert_eq!(publish(&n[1], Target::All, "all").await, 2);
        publish(&n[1], Target::All, "fence").await;
        for (i, m) in members.iter_mut().enumerate() {
            expect_exactly(m, &["all"], "fence", &format!("member {i}")).await;
        }
        stop_all(n).await;
    })
    .await;
}

/// `publish_except` leaves out the given connection, wherever it is.
pub async fn except_leaves_one_connection_out<F: BrokerFactory>(factory: &F) {
    bounded(async {
        let n = nodes(factory, 2).await;
        let mut a1 = n[0].connect(&["r"], None).await;
        let mut b1 = n[1].connect(&["r"], None).await;
        let mut b2 = n[1].connect(&["r"], None).await;

        let published = n[0]
            .cluster
            .publish_except(Target::room("r"), "not-b1", b1.addr.clone())
            .await
            .expect("publish_except");
        assert_eq!(published.local, 1);
        n[0].cluster
            .publish_except(Target::room("r"), "not-a1", a1.addr.clone())
            .await
            .expect("publish_except");
        publish(&n[0], Target::room("r"), "fence").await;
        expect_exactly(&mut a1, &["not-b1"], "fence", "a1").await;
        expect_exactly(&mut b1, &["not-a1"], "fence", "b1").await;
        expect_exactly(&mut b2, &["not-b1", "not-a1"], "fence", "b2").await;
        stop_all(n).await;
    })
    .await;
}

/// Close commands reach a connection and a user's connections on other
/// instances, with their code and reason; others stay open.
pub async fn close_reaches_connections_on_other_instances<F: BrokerFactory>(factory: &F) {
    bounded(async {
        let n = nodes(factory, 2).await;
        let mut a1 = n[0].connect(&[], None).await;
        let mut a2 = n[0].connect(&[], Some("u")).await;
        let mut b1 = n[1].connect(&[], Some("u")).await;
        let mut b2 = n[1].connect(&["r"], None).await;

        let closed = n[1]
            .cluster
            .close(
                Target::Connection(a1.addr.clone()),
                CloseCode::Application(4000),
                "kicked",
            )
            .await
            .expect("close a remote connection");
        assert_eq!(closed.local, 0);
        let frame = a1.socket.recv_close().await.expect("a1 closed");
        let frame = frame.expect("a close frame with a code");
        assert_eq!(
            (frame.code.as_u16(), frame.reason.as_str()),
            (4000, "kicked")
        );

        let closed = n[1]
            .cluster
            .close(Target::user("u"), CloseCode::Application(4001), "banned")
            .await
            .expect("close a user");
        assert_eq!(closed.local, 1);
        for (m, who) in [(&mut a2, "a2"), (&mut b1, "b1")] {
            let frame = m.socket.recv_close().await.expect(who).expect(who);
            assert_eq!(frame.code.as_u16(), 4001, "{who}");
        }
        publish(&n[0], Target::room("r"), "still-open").await;
        assert_eq!(next_text(&mut b2.socket).await, "still-open");
        stop_all(n).await;
    })
    .await;
}

/// Once the last local member leaves a room, the instance no longer gets
/// its messages; once a member joins again, it does.
pub async fn leaving_the_last_member_stops_room_messages<F: BrokerFactory>(factory: &F) {
    bounded(async {
        let n = nodes(factory, 2).await;
        let mut b1 = n[1].connect(&["r"], None).await;
        publish(&n[0], Target::room("r"), "before").await;
        assert_eq!(next_text(&mut b1.socket).await, "before");

        b1.command("leave:r").await;
        n[1].cluster.sync().await.expect("sync");
        publish(&n[0], Target::room("r"), "while-out").await;
        publish(&n[0], Target::Connection(b1.addr.clone()), "fence").await;
        assert_eq!(next_text(&mut b1.socket).await, "fence");
        expect_silence(&mut b1.socket, "b1").await;

        b1.command("join:r").await;
        n[1].cluster.sync().await.expect("sync");
        publish(&n[0], Target::room("r"), "after").await;
        assert_eq!(next_text(&mut b1.socket).await, "after");
        stop_all(n).await;
    })
    .await;
}

/// Messages published in sequence by one instance arrive in that order.
pub async fn messages_from_one_instance_keep_their_order<F: BrokerFactory>(factory: &F) {
    bounded(async {
        let n = nodes(factory, 2).await;
        let mut b1 = n[1].connect(&["r"], Some("u")).await;
        for i in 0..200 {
            let target = if i % 2 == 0 {
                Target::room("r")
            } else {
                Target::user("u")
            };
            publish(&n[0], target, &format!("m{i}")).await;
        }
        for i in 0..200 {
            assert_eq!(next_text(&mut b1.socket).await, format!("m{i}"));
        }
        stop_all(n).await;
    })
    .await;
}

/// Text with quotes, escapes and non-ASCII, every byte value in binary,
/// and an empty message all arrive unchanged.
pub async fn text_and_binary_payloads_arrive_intact<F: BrokerFactory>(factory: &F) {
    bounded(async {
        let n = nodes(factory, 2).await;
        let mut b1 = n[1].connect(&["r"], None).await;
        let text = "quote \" backslash \\ newline \n tab \t nul \u{0} é 日本 🎉";
        let binary: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        for payload in [
            Payload::text(text),
            Payload::binary(binary.clone()),
            Payload::text(""),
            Payload::binary(Bytes::new()),
        ] {
            n[0].cluster
                .publish(Target::room("r"), payload)
                .await
                .expect("publish");
        }
        let got: Vec<Message> = {
            let mut got = Vec::new();
            for _ in 0..4 {
                got.push(b1.socket.recv().await.expect("message"));
            }
            got
        };
        assert!(
            matches!(&got[0], Message::Text(t) if t.as_str() == text),
            "{:?}",
            got[0]
        );
        assert!(
            matches!(&got[1], Message::Binary(b) if b[..] == binary[..]),
            "{:?}",
            got[1]
        );
        assert!(
            matches!(&got[2], Message::Text(t) if t.is_empty()),
            "{:?}",
            got[2]
        );
        assert!(
            matches!(&got[3], Message::Binary(b) if b.is_empty()),
            "{:?}",
            got[3]
        );
        stop_all(n).await;
    })
    .await;
}

/// Connection counts and room sizes read on any instance cover every
/// instance, and follow disconnects, within the factory's count delay.
pub async fn counts_span_every_instance<F: BrokerFactory>(factory: &F) {
    bounded(async {
        let n = nodes(factory, 3).await;
        let _a1 = n[0].connect(&["r"], None).await;
        let _a2 = n[0].connect(&["r", "s"], None).await;
        let b1 = n[1].connect(&["r"], None).await;
        let _c1 = n[2].connect(&[], None).await;

        let delay = factory.count_delay();
        for node in &n {
            eventually(delay, "4 connections, r = 3, s = 1", || async {
                let conns = node.cluster.connection_count().await?;
                let r = node.cluster.room_size("r").await?;
                let s = node.cluster.room_size("s").await?;
                Ok((conns, r, s) == (4, 3, 1))
            })
            .await;
        }
        b1.socket
            .close(CloseCode::Normal, "bye")
            .await
            .expect("b1 closes");
        for node in &n {
            eventually(delay, "3 connections, r = 2", || async {
                let conns = node.cluster.connection_count().await?;
                let r = node.cluster.room_size("r").await?;
                Ok((conns, r) == (3, 2))
            })
            .await;
        }
        stop_all(n).await;
    })
    .await;
}

/// Publishing before `start` and after `shutdown` is an error, never a
/// silent success.
pub async fn publish_fails_before_start_and_after_shutdown<F: BrokerFactory>(factory: &F) {
    bounded(async {
        let cluster = Cluster::new(Hub::new(), factory.broker().await);
        let err = cluster
            .publish(Target::room("r"), "early")
            .await
            .expect_err("publish before start");
        assert!(matches!(err.source, BrokerError::NotStarted), "{err}");

        cluster.start().await.expect("start");
        cluster
            .publish(Target::room("r"), "running")
            .await
            .expect("publish while running");
        cluster.shutdown().await;
        let err = cluster
            .publish(Target::room("r"), "late")
            .await
            .expect_err("publish after shutdown");
        assert!(matches!(err.source, BrokerError::Stopped), "{err}");
    })
    .await;
}

/// Polls `check` until it returns `Ok(true)`, for at most `within`.
pub async fn eventually<C, Fut>(within: Duration, what: &str, mut check: C)
where
    C: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, BrokerError>>,
{
    let deadline = Instant::now() + within;
    loop {
        let last = check().await;
        if matches!(last, Ok(true)) {
            return;
        }
        if Instant::now() >= deadline {
            panic!("not true within {within:?}: {what} (last check: {last:?})");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
