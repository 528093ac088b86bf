//! The WebSocket endpoints the gateway serves: what each protocol does, the
//! built-in set, and mounting them on the app.

use switchboard::broker::{Cluster, Payload, Target};
use switchboard::{Error, Message, Outgoing, Room, RouteConfig, Switchboard, WebSocketUpgrade};

use crate::config::{EndpointKind, EndpointPlan};

/// Whether this build serves the structured protocol (docs/protocol.md).
/// It is being written alongside the gateway; until it lands, `/ws` is not
/// served and `protocol = "structured"` is refused with a clear error.
pub(crate) const STRUCTURED_AVAILABLE: bool = false;

/// The room `/ws/broadcast` connections share.
pub(crate) const BROADCAST_ROOM: &str = "broadcast";

/// The endpoints served when the config declares none.
pub(crate) fn builtin(defaults: &RouteConfig) -> Vec<EndpointPlan> {
    let mut endpoints = Vec::new();
    if STRUCTURED_AVAILABLE {
        endpoints.push(EndpointPlan {
            path: "/ws".to_owned(),
            kind: EndpointKind::Structured,
            route: defaults.clone(),
        });
    }
    endpoints.push(EndpointPlan {
        path: "/ws/echo".to_owned(),
        kind: EndpointKind::Echo,
        route: defaults.clone(),
    });
    endpoints.push(EndpointPlan {
        path: "/ws/broadcast".to_owned(),
        kind: EndpointKind::Broadcast {
            room: BROADCAST_ROOM.to_owned(),
        },
        route: defaults.clone(),
    });
    endpoints
}

/// Adds every endpoint to `app`. `cluster` is given when a network broker
/// joins instances: broadcast endpoints then reach every instance.
pub(crate) fn mount(
    mut app: Switchboard,
    endpoints: Vec<EndpointPlan>,
    cluster: Option<&Cluster>,
) -> Switchboard {
    for endpoint in endpoints {
        let EndpointPlan { path, kind, route } = endpoint;
        app = match kind {
            EndpointKind::Echo => app.route_with(&path, route, echo),
            EndpointKind::Broadcast { room } => {
                let room = Room::from(room);
                let cluster = cluster.cloned();
                app.route_with(&path, route, move |ws: WebSocketUpgrade| {
                    broadcast(ws, room.clone(), cluster.clone())
                })
            }
            // Refused at validation while STRUCTURED_AVAILABLE is false.
            EndpointKind::Structured => app,
        };
    }
    app
}

/// Sends every text and binary message back unchanged. Conformance runs and
/// benchmarks use this endpoint (`/ws/echo`): keep it stable.
async fn echo(ws: WebSocketUpgrade) -> Result<(), Error> {
    let mut ws = ws.accept().await?;
    while let Some(message) = ws.recv().await? {
        ws.send(message).await?;
    }
    Ok(())
}

/// Every message a client sends goes to every client in the room, the
/// sender included: encoded once, shared by all (benchmarks use it). With a
/// network broker it reaches the room's members on every instance.
async fn broadcast(
    ws: WebSocketUpgrade,
    room: Room,
    cluster: Option<Cluster>,
) -> Result<(), Error> {
    let mut ws = ws.accept().await?;
    ws.join(room.clone());
    while let Some(message) = ws.recv().await? {
        match &cluster {
            None => {
                let outgoing = match message {
                    Message::Text(text) => Outgoing::text(text),
                    Message::Binary(data) => Outgoing::binary(data),
                };
                ws.hub().send_to_room(room.clone(), &outgoing, None);
            }
            Some(cluster) => {
                let payload = match message {
                    Message::Text(text) => Payload::Text(text),
                    Message::Binary(data) => Payload::Binary(data),
                };
                if let Err(e) = cluster.publish(Target::Room(room.clone()), payload).await {
                    // Local members got it; other instances did not.
                    tracing::warn!(error = %e, "broadcast not forwarded to other instances");
                }
            }
        }
    }
    Ok(())
}
