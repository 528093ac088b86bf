//! Inbound limits and framing rules over real TCP, with hand-built frames:
//! each violation gets the right close code, and then the server closes the
//! TCP connection too. Also: the outbound queue stays bounded when a client
//! floods pings and does not read the pongs.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{FIN, close_frame, echo, frame, header, spawn_server};
use switchboard::{
    CloseCode, Error, Limits, RouteConfig, Switchboard, TestClient, TestSocket, WebSocketUpgrade,
};

const TIMEOUT: Duration = Duration::from_secs(3);

const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CONTINUATION: u8 = 0x0;
const PING: u8 = 0x9;

fn routes() -> Switchboard {
    Switchboard::new()
        .route("/ws/echo", echo)
        .route_with(
            "/ws/small",
            RouteConfig::default().with_limits(Limits::default().with_max_message_size(1024)),
            echo,
        )
        .route_with(
            "/ws/frag",
            RouteConfig::default().with_limits(Limits::default().with_max_fragments(4)),
            echo,
        )
}

async fn connect(path: &str) -> (common::Running, TestSocket) {
    let server = spawn_server(routes()).await;
    let socket = TestClient::tcp(server.addr)
        .with_timeout(TIMEOUT)
        .connect(path)
        .await
        .unwrap();
    (server, socket)
}

/// Sends `bytes` raw on `path`, expects a close with `code`, then TCP EOF.
async fn expect_close(path: &str, bytes: &[u8], code: CloseCode) {
    let (_server, mut socket) = connect(path).await;
    socket.send_raw(bytes).await.unwrap();
    let frame = common::close_frame_of(&mut socket).await;
    assert_eq!(frame.code, code, "close frame: {frame:?}");
    socket
        .wait_eof()
        .await
        .expect("the server closes TCP after its close frame");
}

fn concat(frames: &[Vec<u8>]) -> Vec<u8> {
    frames.concat()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_over_the_message_limit_closes_1009() {
    expect_close(
        "/ws/small",
        &frame(FIN | BINARY, &[7; 1025], true),
        CloseCode::TooBig,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_at_the_limit_is_delivered() {
    let (_server, mut socket) = connect("/ws/small").await;
    socket.send_binary(&[7; 1024]).await.unwrap();
    assert_eq!(socket.recv_bytes().await.unwrap().len(), 1024);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragments_adding_up_past_the_message_limit_close_1009() {
    let bytes = concat(&[
        frame(TEXT, &[b'a'; 600], true),
        frame(FIN | CONTINUATION, &[b'b'; 600], true),
    ]);
    expect_close("/ws/small", &bytes, CloseCode::TooBig).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_fragments_than_allowed_close_1008() {
    let mut frames = vec![frame(TEXT, b"", true)];
    for _ in 0..4 {
        frames.push(frame(CONTINUATION, b"", true));
    }
    frames.push(frame(FIN | CONTINUATION, b"", true));
    expect_close("/ws/frag", &concat(&frames), CloseCode::Policy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_in_exactly_the_allowed_fragments_is_delivered() {
    let (_server, mut socket) = connect("/ws/frag").await;
    let bytes = concat(&[
        frame(TEXT, b"a", true),
        frame(CONTINUATION, b"", true),
        frame(CONTINUATION, b"b", true),
        frame(FIN | CONTINUATION, b"c", true),
    ]);
    socket.send_raw(&bytes).await.unwrap();
    assert_eq!(socket.recv_text().await.unwrap(), "abc");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_text_closes_1007() {
    expect_close(
        "/ws/echo",
        &frame(FIN | TEXT, b"ok \xff\xfe", true),
        CloseCode::InvalidPayload,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_in_a_later_fragment_closes_1007() {
    let bytes = concat(&[
        frame(TEXT, b"hello ", true),
        frame(CONTINUATION, b"world ", true),
        frame(FIN | CONTINUATION, b"\xc3\x28", true),
    ]);
    expect_close("/ws/echo", &bytes, CloseCode::InvalidPayload).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_point_split_across_fragments_is_valid() {
    let (_server, mut socket) = connect("/ws/echo").await;
    // "é" is C3 A9; split between the two frames.
    let bytes = concat(&[
        frame(TEXT, b"caf\xc3", true),
        frame(FIN | CONTINUATION, b"\xa9", true),
    ]);
    socket.send_raw(&bytes).await.unwrap();
    assert_eq!(socket.recv_text().await.unwrap(), "café");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_code_point_at_the_end_of_a_message_closes_1007() {
    let bytes = concat(&[
        frame(TEXT, b"caf", true),
        frame(FIN | CONTINUATION, b"\xc3", true),
    ]);
    expect_close("/ws/echo", &bytes, CloseCode::InvalidPayload).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_frame_over_125_bytes_closes_1002() {
    expect_close(
        "/ws/echo",
        &frame(FIN | PING, &[1; 126], true),
        CloseCode::Protocol,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragmented_control_frame_closes_1002() {
    expect_close(
        "/ws/echo",
        &frame(PING, b"no fin", true),
        CloseCode::Protocol,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmasked_client_frame_closes_1002() {
    expect_close(
        "/ws/echo",
        &frame(FIN | TEXT, b"naked", false),
        CloseCode::Protocol,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsv1_bit_without_an_extension_closes_1002() {
    expect_close(
        "/ws/echo",
        &frame(FIN | 0x40 | TEXT, b"deflated?", true),
        CloseCode::Protocol,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsv2_and_rsv3_bits_close_1002() {
    expect_close(
        "/ws/echo",
        &frame(FIN | 0x20 | TEXT, b"x", true),
        CloseCode::Protocol,
    )
    .await;
    expect_close(
        "/ws/echo",
        &frame(FIN | 0x10 | BINARY, b"x", true),
        CloseCode::Protocol,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_data_and_control_opcodes_close_1002() {
    expect_close(
        "/ws/echo",
        &frame(FIN | 0x3, b"x", true),
        CloseCode::Protocol,
    )
    .await;
    expect_close(
        "/ws/echo",
        &frame(FIN | 0xB, b"x", true),
        CloseCode::Protocol,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continuation_without_a_message_closes_1002() {
    expect_close(
        "/ws/echo",
        &frame(FIN | CONTINUATION, b"orphan", true),
        CloseCode::Protocol,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_data_frame_inside_a_fragmented_message_closes_1002() {
    let bytes = concat(&[frame(TEXT, b"one", true), frame(FIN | TEXT, b"two", true)]);
    expect_close("/ws/echo", &bytes, CloseCode::Protocol).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_minimal_length_encoding_closes_1002() {
    // Five bytes announced with the 16-bit form.
    let mut bytes = vec![FIN | BINARY, 0x80 | 126, 0, 5];
    bytes.extend_from_slice(&common::MASK);
    bytes.extend_from_slice(&[0; 5]);
    expect_close("/ws/echo", &bytes, CloseCode::Protocol).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_with_code_1005_closes_1002() {
    expect_close(
        "/ws/echo",
        &close_frame(&1005u16.to_be_bytes()),
        CloseCode::Protocol,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_with_code_999_closes_1002() {
    expect_close(
        "/ws/echo",
        &close_frame(&999u16.to_be_bytes()),
        CloseCode::Protocol,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_with_a_one_byte_payload_closes_1002() {
    expect_close("/ws/echo", &close_frame(&[3]), CloseCode::Protocol).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_reason_with_invalid_utf8_closes_1007() {
    let mut payload = 1000u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"bye \xff");
    expect_close(
        "/ws/echo",
        &close_frame(&payload),
        CloseCode::InvalidPayload,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_between_fragments_is_answered_and_the_message_completes() {
    let (_server, mut socket) = connect("/ws/echo").await;
    let bytes = concat(&[
        frame(TEXT, b"frag", true),
        frame(FIN | PING, b"mid", true),
        frame(FIN | CONTINUATION, b"ment", true),
    ]);
    socket.send_raw(&bytes).await.unwrap();
    assert_eq!(
        socket.recv_message().await.unwrap(),
        switchboard::ws::Message::Pong(bytes::Bytes::from_static(b"mid"))
    );
    assert_eq!(socket.recv_text().await.unwrap(), "fragment");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_announced_in_pieces_then_violating_still_closes() {
    // The header of an oversized frame arrives one byte at a time.
    let (_server, mut socket) = connect("/ws/small").await;
    for byte in header(FIN | BINARY, 4096, true) {
        socket.send_raw(&[byte]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(common::close_code(&mut socket).await, CloseCode::TooBig);
    socket.wait_eof().await.unwrap();
}

/// A client that floods pings and never reads the pongs must not make the
/// server queue pongs without bound: pongs go through the same byte-bounded
/// queue as everything else, so the server should stop reading (or drop the
/// client) once the queue is full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_flood_from_a_client_that_does_not_read_keeps_the_queue_bounded() {
    const QUEUE: usize = 64 * 1024;
    let max_seen = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&max_seen);
    let app = Switchboard::new().route_with(
        "/ws/echo",
        RouteConfig::default().with_max_queue_bytes(QUEUE),
        move |ws: WebSocketUpgrade| {
            let seen = Arc::clone(&seen);
            async move {
                let mut ws = ws.accept().await?;
                let sender = ws.sender();
                let sampler = tokio::spawn(async move {
                    while !sender.is_closed() {
                        seen.fetch_max(sender.queued_bytes(), Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                });
                let result = async {
                    while let Some(message) = ws.recv().await? {
                        ws.send(message).await?;
                    }
                    Ok::<(), Error>(())
                }
                .await;
                sampler.abort();
                result
            }
        },
    );
    let server = spawn_server(app).await;
    let mut socket = TestClient::tcp(server.addr)
        .with_timeout(TIMEOUT)
        .connect("/ws/echo")
        .await
        .unwrap();
    // 1 MiB of 125-byte pings per write, 24 MiB in all; the client never reads.
    let ping = frame(FIN | PING, &[b'p'; 125], true);
    let batch: Vec<u8> = ping.repeat((1 << 20) / ping.len());
    let flood = tokio::time::timeout(Duration::from_secs(8), async {
        for _ in 0..24 {
            if socket.send_raw(&batch).await.is_err() {
                break;
            }
        }
    })
    .await;
    // Either the writes stalled (the server stopped reading: bounded) or they
    // all went through; in both cases the queue must have stayed small.
    let _ = flood;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let max = max_seen.load(Ordering::Relaxed);
    assert!(
        max <= 16 * QUEUE,
        "outbound queue reached {max} bytes with max_queue_bytes = {QUEUE}"
    );
}
