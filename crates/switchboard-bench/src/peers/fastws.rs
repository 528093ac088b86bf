//! fastwebsockets 0.10 peer through hyper's HTTP/1 upgrade, as its own examples do.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use fastwebsockets::{
    FragmentCollector, FragmentCollectorRead, Frame, OpCode, Payload, WebSocketError, upgrade,
};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

use super::BROADCAST_PATH;

type Peers = Arc<Mutex<HashMap<u64, UnboundedSender<(OpCode, Bytes)>>>>;

/// Serves echo and broadcast on `listener` until it fails.
pub async fn serve(listener: TcpListener) -> anyhow::Result<()> {
    let peers: Peers = Arc::default();
    let ids = Arc::new(AtomicU64::new(0));
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let peers = peers.clone();
        let ids = ids.clone();
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let service = service_fn(move |req| {
                let peers = peers.clone();
                let id = ids.fetch_add(1, Ordering::Relaxed);
                async move { server_upgrade(req, peers, id) }
            });
            let _ = http1::Builder::new()
                .serve_connection(io, service)
                .with_upgrades()
                .await;
        });
    }
}

fn server_upgrade(
    mut req: Request<Incoming>,
    peers: Peers,
    id: u64,
) -> Result<Response<Empty<Bytes>>, WebSocketError> {
    let broadcast = req.uri().path() == BROADCAST_PATH;
    let (response, fut) = upgrade::upgrade(&mut req)?;
    tokio::task::spawn(async move {
        let _ = if broadcast {
            tokio::task::unconstrained(handle_broadcast(fut, peers, id)).await
        } else {
            tokio::task::unconstrained(handle_echo(fut)).await
        };
    });
    Ok(response)
}

/// The echo loop of fastwebsockets' `examples/echo_server.rs`.
async fn handle_echo(fut: upgrade::UpgradeFut) -> Result<(), WebSocketError> {
    let mut ws = FragmentCollector::new(fut.await?);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Close => break,
            OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
            _ => {}
        }
    }
    Ok(())
}

/// Broadcast with the split API (`unstable-split`, as in `examples/echo_server_split.rs`):
/// a reader that fans out to every connection's unbounded queue, and a writer per connection.
async fn handle_broadcast(
    fut: upgrade::UpgradeFut,
    peers: Peers,
    id: u64,
) -> Result<(), WebSocketError> {
    let ws = fut.await?;
    let (rx, mut tx) = ws.split(tokio::io::split);
    let mut rx = FragmentCollectorRead::new(rx);
    let (out_tx, mut out_rx) = unbounded_channel::<(OpCode, Bytes)>();
    peers.lock().insert(id, out_tx.clone());
    let writer = tokio::spawn(tokio::task::unconstrained(async move {
        while let Some((op, bytes)) = out_rx.recv().await {
            let frame = Frame::new(true, op, None, Payload::Borrowed(&bytes));
            if tx.write_frame(frame).await.is_err() {
                break;
            }
            if op == OpCode::Close {
                break;
            }
        }
    }));
    let result = async {
        loop {
            // Obligated writes (pong, close reply) go through this connection's own queue.
            let own = out_tx.clone();
            let frame = rx
                .read_frame::<_, WebSocketError>(&mut move |f: Frame<'_>| {
                    let r = own
                        .send((f.opcode, Bytes::copy_from_slice(&f.payload)))
                        .map_err(|_| WebSocketError::ConnectionClosed);
                    async move { r }
                })
                .await?;
            match frame.opcode {
                OpCode::Close => break,
                OpCode::Text | OpCode::Binary => {
                    let bytes = Bytes::copy_from_slice(&frame.payload);
                    for q in peers.lock().values() {
                        let _ = q.send((frame.opcode, bytes.clone()));
                    }
                }
                _ => {}
            }
        }
        Ok::<(), WebSocketError>(())
    }
    .await;
    peers.lock().remove(&id);
    drop(out_tx);
    let _ = writer.await;
    result
}
