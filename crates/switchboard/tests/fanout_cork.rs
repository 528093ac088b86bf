//! Corked fan-out (issue 20) over real TCP sockets: a room send queues for
//! every member without waking its writer task, and one flush writes each
//! socket after the publisher yields. These check that nothing is held back
//! or reordered whatever the publisher does next: a task that never yields
//! to a socket, a thread with no runtime, a runtime shut down before its
//! flush ran; that a connection's own sends and hub sends keep their order;
//! and that what a full socket did not take reaches it in order later.

mod hub_common;

use std::net::SocketAddr;
use std::time::Duration;

use hub_common::{StalledClient, bounded, member_app, member_path, spawn_server};
use switchboard::ws::OpCode;
use switchboard::ws::frame::encode_client_frame;
use switchboard::ws::{Decoder, Limits, Message, Role};
use switchboard::{Error, Hub, Outgoing, Switchboard, WebSocketUpgrade};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A binary message of `len` bytes starting with `seq` (big-endian).
fn numbered(seq: u32, len: usize) -> Outgoing {
    let mut payload = vec![0u8; len];
    payload[..4].copy_from_slice(&seq.to_be_bytes());
    payload[len - 1] = 0xEE;
    Outgoing::binary(payload)
}

/// Reads `count` data messages from a raw client, within `within`.
async fn read_messages(client: &mut StalledClient, count: usize, within: Duration) -> Vec<Message> {
    let limits = Limits::default()
        .with_max_message_size(64 << 20)
        .with_max_frame_size(64 << 20);
    let mut decoder = Decoder::new(Role::Client, limits);
    let mut buf = std::mem::take(&mut client.leftover);
    let mut got = Vec::with_capacity(count);
    tokio::time::timeout(within, async {
        loop {
            while let Some(message) = decoder.decode(&mut buf).expect("well-formed frames") {
                got.push(message);
                if got.len() == count {
                    return;
                }
            }
            buf.reserve(64 * 1024);
            let n = client.stream.read_buf(&mut buf).await.expect("read");
            assert!(n > 0, "closed after {} of {count} messages", got.len());
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only {} of {count} messages arrived in time", got.len()));
    client.leftover = buf;
    got
}

/// Checks that `messages` are the numbered messages `0..` of `len` bytes.
fn assert_numbered(messages: &[Message], len: usize, who: &str) {
    for (i, message) in messages.iter().enumerate() {
        let Message::Binary(payload) = message else {
            panic!("{who}: message {i} is not binary: {message:?}");
        };
        assert_eq!(payload.len(), len, "{who}: message {i} length");
        assert_eq!(
            payload[..4],
            (i as u32).to_be_bytes(),
            "{who}: message {i} out of order"
        );
        assert_eq!(payload[len - 1], 0xEE, "{who}: message {i} cut short");
    }
}

/// Connects `n` raw clients to the member route in `room` (each has joined
/// once its `id:` greeting arrived).
async fn members(addr: SocketAddr, room: &str, n: usize) -> Vec<StalledClient> {
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        let mut client = StalledClient::connect(addr, &member_path(&[room], None)).await;
        let greeting = read_messages(&mut client, 1, Duration::from_secs(5)).await;
        assert!(matches!(&greeting[0], Message::Text(t) if t.as_str().starts_with("id:")));
        clients.push(client);
    }
    clients
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_from_a_task_that_never_yields_to_a_socket_reaches_every_member_in_order() {
    const MEMBERS: usize = 40;
    const MESSAGES: u32 = 300;
    const LEN: usize = 100;
    bounded(Duration::from_secs(30), async {
        let hub = Hub::new();
        let addr = spawn_server(member_app(&hub)).await;
        let mut clients = members(addr, "burst", MEMBERS).await;
        // Publishes the whole burst without yielding, then waits on a timer
        // only: nothing but the corked flush can put these on the wire.
        let publisher = {
            let hub = hub.clone();
            tokio::spawn(async move {
                for seq in 0..MESSAGES {
                    assert_eq!(
                        hub.send_to_room("burst", &numbered(seq, LEN), None),
                        MEMBERS
                    );
                }
                tokio::time::sleep(Duration::from_secs(60)).await;
            })
        };
        // 30,000 bytes each against a 4 KiB receive buffer: most sockets
        // fill, and the rest goes through the writer task.
        for (i, client) in clients.iter_mut().enumerate() {
            let got = read_messages(client, MESSAGES as usize, Duration::from_secs(10)).await;
            assert_numbered(&got, LEN, &format!("member {i}"));
        }
        publisher.abort();
        let stats = hub.stats().snapshot();
        assert_eq!(stats.drops, 0);
        assert_eq!(stats.slow_consumer_evictions, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_from_a_thread_without_a_runtime_and_from_a_runtime_shut_down_at_once_arrive() {
    bounded(Duration::from_secs(20), async {
        let hub = Hub::new();
        let addr = spawn_server(member_app(&hub)).await;
        let mut clients = members(addr, "outside", 5).await;
        let from_threads = {
            let hub = hub.clone();
            tokio::task::spawn_blocking(move || {
                // No runtime on this thread: the writers are woken at once.
                std::thread::scope(|scope| {
                    scope.spawn(|| {
                        assert_eq!(hub.send_to_room("outside", &numbered(0, 64), None), 5);
                    });
                });
                // A runtime whose `block_on` returns before its flush task
                // ran, then is dropped: the dropped task flushes.
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .expect("runtime");
                runtime.block_on(async {
                    assert_eq!(hub.send_to_room("outside", &numbered(1, 64), None), 5);
                });
                drop(runtime);
            })
        };
        from_threads.await.expect("publishing threads");
        // And the connections are not left corked: a later send flows too.
        assert_eq!(hub.send_to_room("outside", &numbered(2, 64), None), 5);
        for (i, client) in clients.iter_mut().enumerate() {
            let got = read_messages(client, 3, Duration::from_secs(5)).await;
            assert_numbered(&got, 64, &format!("member {i}"));
        }
    })
    .await;
}

/// On `go`, interleaves the socket's own sends (written directly) with hub
/// sends to itself (corked) and a pipelined burst of both.
async fn interleave(ws: WebSocketUpgrade) -> Result<(), Error> {
    let mut ws = ws.accept().await?;
    let id = ws.id();
    while let Some(text) = ws.recv_text().await? {
        if text.as_str() != "go" {
            continue;
        }
        for round in 0..50 {
            ws.send_text(format!("{round}:a")).await?;
            ws.hub().send_to(id, &Outgoing::text(format!("{round}:b")));
            ws.hub().send_to(id, &Outgoing::text(format!("{round}:c")));
            ws.send_text(format!("{round}:d")).await?;
            if round % 7 == 0 {
                tokio::task::yield_now().await;
            }
        }
    }
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn a_connections_own_sends_and_hub_sends_to_it_keep_their_order() {
    bounded(Duration::from_secs(20), async {
        let app = Switchboard::new().route("/order", interleave);
        let addr = spawn_server(app).await;
        let mut client = StalledClient::connect(addr, "/order").await;
        let frame = encode_client_frame(OpCode::Text, b"go", [1, 2, 3, 4]);
        client.stream.write_all(&frame).await.expect("send go");
        let got = read_messages(&mut client, 200, Duration::from_secs(10)).await;
        let texts: Vec<String> = got
            .iter()
            .map(|m| match m {
                Message::Text(t) => t.as_str().to_owned(),
                other => panic!("expected text, got {other:?}"),
            })
            .collect();
        let expected: Vec<String> = (0..50)
            .flat_map(|round| ["a", "b", "c", "d"].map(|step| format!("{round}:{step}")))
            .collect();
        assert_eq!(texts, expected);
    })
    .await;
}
