//! Switchboard's benchmark harness: a loopback-only WebSocket load generator
//! (`switchboard-bench`) and the peer servers it is compared with.
//!
//! Every target URL goes through [`target::parse_target`], which refuses anything that is not
//! `127.0.0.0/8`, `::1` or `localhost`.

pub mod action;
pub mod common;
pub mod echo;
pub mod fanout;
pub mod histmem;
pub mod http;
pub mod idle;
pub mod jwt;
pub mod payload;
pub mod peers;
pub mod presence;
pub mod presence_kill;
pub mod recovery;
pub mod seq;
pub mod stats;
pub mod storm;
pub mod target;
pub mod ws;

/// Probes a WebSocket URL: `Ok(101)` if the upgrade succeeds, `Ok(status)` if the server
/// answered another HTTP status, `Err` if it could not be reached.
pub async fn probe(
    target: &target::Target,
    timeout: std::time::Duration,
) -> Result<u16, ws::ConnectError> {
    let opts = ws::ConnectOptions {
        timeout: Some(timeout),
        read_buffer: 1024,
        ..ws::ConnectOptions::default()
    };
    match ws::WsConn::connect(target, &opts).await {
        Ok(c) => {
            c.close(std::time::Duration::from_millis(100)).await;
            Ok(101)
        }
        Err(ws::ConnectError::Status(s)) => Ok(s),
        Err(e) => Err(e),
    }
}
