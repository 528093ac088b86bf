//! The gateway's built-in routes.

use switchboard::{Error, Message, Outgoing, Switchboard, WebSocketUpgrade};

/// The room `/ws/broadcast` connections share.
const BROADCAST_ROOM: &str = "broadcast";

/// The routes every gateway serves.
pub(crate) fn app() -> Switchboard {
    Switchboard::new()
        .route("/ws/echo", echo)
        .route("/ws/broadcast", broadcast)
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

/// Every message a client sends goes to every client connected here,
/// the sender included: encoded once, shared by all (benchmarks use it).
async fn broadcast(ws: WebSocketUpgrade) -> Result<(), Error> {
    let mut ws = ws.accept().await?;
    ws.join(BROADCAST_ROOM);
    while let Some(message) = ws.recv().await? {
        let outgoing = match message {
            Message::Text(text) => Outgoing::text(text),
            Message::Binary(data) => Outgoing::binary(data),
        };
        ws.hub().send_to_room(BROADCAST_ROOM, &outgoing, None);
    }
    Ok(())
}
