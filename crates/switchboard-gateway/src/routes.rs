//! The gateway's built-in routes.

use switchboard::{Error, Switchboard, WebSocketUpgrade};

/// The routes every gateway serves.
pub(crate) fn app() -> Switchboard {
    Switchboard::new().route("/ws/echo", echo)
}

/// Sends every text and binary message back unchanged. Conformance runs and
/// benchmarks use this route: keep it stable.
async fn echo(ws: WebSocketUpgrade) -> Result<(), Error> {
    let mut ws = ws.accept().await?;
    while let Some(message) = ws.recv().await? {
        ws.send(message).await?;
    }
    Ok(())
}
