//! Peer servers run side by side with Switchboard in the benchmarks.
//!
//! Each peer serves, on one listener:
//! * `/ws/broadcast`: every text/binary message a client sends is sent to every connected
//!   broadcast client, the sender included;
//! * any other path: an echo endpoint (every text/binary message sent back unchanged).
//!
//! Peers run on a `current_thread` tokio runtime (the server side of these benchmarks is one
//! core) and set `TCP_NODELAY` on accepted sockets.

pub mod fastws;
pub mod tungstenite;

use std::net::SocketAddr;

use crate::target::check_loopback_addr;

/// The broadcast path.
pub const BROADCAST_PATH: &str = "/ws/broadcast";

/// Binds a listener for a peer, refusing non-loopback addresses.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    check_loopback_addr(addr)?;
    let sock = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    sock.set_reuseaddr(true)?;
    sock.bind(addr)?;
    Ok(sock.listen(4096)?)
}

/// Runs a peer binary: parses `--listen ADDR`, binds, prints `listening on ADDR`, serves
/// forever on a `current_thread` runtime.
pub fn main_with<F, Fut>(name: &str, serve: F) -> anyhow::Result<()>
where
    F: FnOnce(tokio::net::TcpListener) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut args = std::env::args().skip(1);
    let mut listen: Option<String> = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" => listen = args.next(),
            s if s.starts_with("--listen=") => listen = Some(s["--listen=".len()..].to_owned()),
            "-h" | "--help" => {
                println!(
                    "{name}: echo on any path, broadcast on {BROADCAST_PATH}\n\nUsage: {name} --listen 127.0.0.1:PORT"
                );
                return Ok(());
            }
            other => {
                anyhow::bail!("unknown argument {other:?} (usage: {name} --listen 127.0.0.1:PORT)")
            }
        }
    }
    let listen: SocketAddr = listen
        .as_deref()
        .unwrap_or("127.0.0.1:9001")
        .parse()
        .map_err(|e| anyhow::anyhow!("bad --listen address: {e}"))?;
    // Hold up to the hard limit of file descriptors (idle scenario: thousands of sockets).
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = bind(listen).await?;
        println!("{name} listening on {}", listener.local_addr()?);
        serve(listener).await
    })
}
