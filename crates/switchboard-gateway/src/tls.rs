//! `wss://` without a proxy: a TCP accept loop that wraps each connection
//! in rustls and hands it to the app, and stops when shutdown starts.

use std::mem::MaybeUninit;
use std::sync::Arc;
use std::time::Duration;

use switchboard::App;
use tokio::io::Interest;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

use crate::shutdown::Trigger;

/// Accepts until shutdown starts, then waits for the connections to finish
/// (at most `drain`). The TLS handshake is bounded by `handshake_timeout`,
/// like the WebSocket handshake that follows it.
///
/// At shutdown, a connection that has not sent its ClientHello yet
/// (browsers open spare connections ahead of time) is closed at once; one
/// whose TLS handshake is under way finishes it, and the app then closes it
/// with the shutdown's code.
pub(crate) async fn serve(
    app: App,
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    trigger: Trigger,
    handshake_timeout: Duration,
    drain: Duration,
) {
    let acceptor = TlsAcceptor::from(config);
    let nodelay = app.config().nodelay;
    // Every connection's task holds a sender; once shutdown has started and
    // ours is dropped, `recv` returns `None` when the last task has ended.
    let (alive, mut all_ended) = mpsc::channel::<()>(1);
    loop {
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = trigger.started() => break,
        };
        if nodelay {
            let _ = stream.set_nodelay(true);
        }
        let acceptor = acceptor.clone();
        let app = app.clone();
        let trigger = trigger.clone();
        let alive = alive.clone();
        tokio::spawn(async move {
            let _alive = alive;
            let handshake = tokio::time::timeout(handshake_timeout, async {
                if !wait_for_hello(&stream, &trigger).await {
                    return None;
                }
                Some(acceptor.accept(stream).await)
            });
            match handshake.await {
                Ok(Some(Ok(tls))) => app.serve_connection(tls, addr).await,
                Ok(Some(Err(e))) => tracing::debug!(error = %e, "TLS handshake failed"),
                Ok(None) => tracing::debug!("closed at shutdown before its TLS handshake"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
        });
    }
    drop(listener);
    drop(alive);
    let _ = tokio::time::timeout(drain, all_ended.recv()).await;
}

/// Waits until the client has sent something (the start of its
/// ClientHello) or closed. `false` when shutdown started first with
/// nothing sent: the caller closes the connection then, instead of holding
/// the drain until the handshake deadline.
async fn wait_for_hello(stream: &TcpStream, trigger: &Trigger) -> bool {
    // Readiness can be reported before anything arrived: peek to be sure.
    let sent = || {
        let mut byte = [MaybeUninit::uninit(); 1];
        socket2::SockRef::from(stream).peek(&mut byte).map(|_| ())
    };
    loop {
        tokio::select! {
            biased;
            ready = stream.readable() => {
                if ready.is_err() {
                    // The TLS handshake reports it.
                    return true;
                }
            }
            () = trigger.started() => return sent().is_ok(),
        }
        match stream.try_io(Interest::READABLE, sent) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            _ => return true,
        }
    }
}
