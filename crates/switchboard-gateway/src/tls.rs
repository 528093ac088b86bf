//! `wss://` without a proxy: a TCP accept loop that wraps each connection
//! in rustls and hands it to the app, and stops when shutdown starts.

use std::sync::Arc;
use std::time::Duration;

use switchboard::App;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::shutdown::Trigger;

/// Accepts until shutdown starts, then waits for the connections to drain
/// (at most `drain`). The TLS handshake is bounded by `handshake_timeout`,
/// like the WebSocket handshake that follows it.
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
        tokio::spawn(async move {
            match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => app.serve_connection(tls, addr).await,
                Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(drain, trigger.handle().drained()).await;
}
