//! A frame header announcing 1 GiB is refused from the header alone: close
//! 1009, TCP closed, and the server (running in this process) does not
//! allocate for it. Alone in its own test binary so that no other test's
//! allocations blur the resident-set measurement.

mod common;

use std::time::Duration;

use common::{FIN, echo, header, spawn_server};
use switchboard::{CloseCode, Switchboard, TestClient};

/// This process' resident set size in KiB, from `/proc/self/status`.
fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_header_announcing_1_gib_closes_1009_without_allocating() {
    let server = spawn_server(Switchboard::new().route("/ws/echo", echo)).await;
    let client = TestClient::tcp(server.addr).with_timeout(Duration::from_secs(3));
    // Warm up: one full connection, so the runtime's own allocations are done.
    let mut warm = client.connect("/ws/echo").await.unwrap();
    warm.send_text("warm").await.unwrap();
    assert_eq!(warm.recv_text().await.unwrap(), "warm");

    let before = vm_rss_kib();
    let mut socket = client.connect("/ws/echo").await.unwrap();
    let mut bytes = header(FIN | 0x2, 1 << 30, true);
    // A little of the announced payload, as an attacker would start sending.
    bytes.extend_from_slice(&[0u8; 4096]);
    socket.send_raw(&bytes).await.unwrap();
    let frame = common::close_frame_of(&mut socket).await;
    assert_eq!(frame.code, CloseCode::TooBig, "{frame:?}");
    socket.wait_eof().await.expect("TCP closed after the close");
    let after = vm_rss_kib();
    let grown_kib = after.saturating_sub(before);
    assert!(
        grown_kib < 32 * 1024,
        "RSS grew by {grown_kib} KiB ({before} -> {after})"
    );
    // The server is still healthy for others.
    warm.send_text("still").await.unwrap();
    assert_eq!(warm.recv_text().await.unwrap(), "still");
}
