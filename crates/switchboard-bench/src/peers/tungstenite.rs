//! tokio-tungstenite peer, default `WebSocketConfig` (the configuration the targets name).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::{SinkExt as _, StreamExt as _};
use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};

use super::BROADCAST_PATH;

type Peers = Arc<Mutex<HashMap<u64, UnboundedSender<Message>>>>;

/// Serves echo and broadcast on `listener` until it fails.
pub async fn serve(listener: TcpListener) -> anyhow::Result<()> {
    let peers: Peers = Arc::default();
    let ids = Arc::new(AtomicU64::new(0));
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and friends: keep serving the connections we have.
                eprintln!("accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let peers = peers.clone();
        let id = ids.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let _ = handle(stream, id, peers).await;
        });
    }
}

// The callback's error type is tungstenite's own `ErrorResponse`.
#[allow(clippy::result_large_err)]
async fn handle(
    stream: TcpStream,
    id: u64,
    peers: Peers,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    let mut path = String::new();
    let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        path = req.uri().path().to_owned();
        Ok(resp)
    };
    let mut ws = tokio_tungstenite::accept_hdr_async(stream, callback).await?;
    if path != BROADCAST_PATH {
        // Echo.
        while let Some(msg) = ws.next().await {
            let msg = msg?;
            if msg.is_text() || msg.is_binary() {
                ws.send(msg).await?;
            } else if msg.is_close() {
                break;
            }
        }
        return Ok(());
    }
    // Broadcast: the shape of tokio-tungstenite's own chat example (a map of unbounded
    // senders, one writer per connection).
    let (mut sink, mut source) = ws.split();
    let (tx, mut rx) = unbounded_channel::<Message>();
    peers.lock().insert(id, tx);
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if sink.feed(m).await.is_err() {
                return;
            }
            while let Ok(m) = rx.try_recv() {
                if sink.feed(m).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });
    while let Some(msg) = source.next().await {
        let Ok(msg) = msg else { break };
        if msg.is_text() || msg.is_binary() {
            for tx in peers.lock().values() {
                let _ = tx.send(msg.clone());
            }
        } else if msg.is_close() {
            break;
        }
    }
    peers.lock().remove(&id);
    writer.abort();
    Ok(())
}
