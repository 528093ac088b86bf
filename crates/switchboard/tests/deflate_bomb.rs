//! A compression bomb: a small compressed frame that would inflate to 64 MiB.
//! Its own test binary, so no other test disturbs the memory reading.

use switchboard::ws::OpCode;
use switchboard::ws::deflate::Compressor;
use switchboard::{
    CloseCode, DeflateConfig, Error, RouteConfig, Switchboard, TestClient, TestError,
    WebSocketUpgrade,
};

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("linux /proc");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS");
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compression_bomb_closes_with_1009_without_inflating_it() {
    let route = RouteConfig::default().with_compression(Some(DeflateConfig::default()));
    let server = Switchboard::new()
        .route_with("/ws/echo", route, |ws: WebSocketUpgrade| async move {
            let mut ws = ws.accept().await?;
            while let Some(m) = ws.recv().await? {
                ws.send(m).await?;
            }
            Ok::<(), Error>(())
        })
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr();
    tokio::spawn(server.run());

    // 64 MiB of zeros: about 64 KiB compressed, well under the 1 MiB frame
    // limit, and 64 times the 1 MiB message limit once inflated.
    let bomb = {
        let mut c = Compressor::new(9, 15);
        c.compress(&vec![0u8; 64 << 20], true)
    };
    assert!(bomb.len() < 1 << 20, "bomb is {} bytes", bomb.len());
    let before = rss_bytes();
    let mut ws = TestClient::tcp(addr)
        .request("/ws/echo")
        .deflate()
        .connect()
        .await
        .unwrap();
    ws.send_compressed_raw(OpCode::Binary, &bomb).await.unwrap();
    match ws.recv().await {
        Err(TestError::Closed(Some(frame))) => assert_eq!(frame.code, CloseCode::TooBig),
        other => panic!("expected close 1009, got {other:?}"),
    }
    let grown = rss_bytes().saturating_sub(before);
    assert!(
        grown < 24 << 20,
        "RSS grew by {} KiB for a bomb that inflates to 64 MiB",
        grown / 1024
    );
}
