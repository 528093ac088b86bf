//! One server, one port, axum as the listener: an existing axum app with
//! Switchboard's WebSocket routes mounted in its `Router`.
//!
//! ```sh
//! cargo run -p switchboard-gateway --example axum-router
//! # WebSocket clients join a room:   ws://127.0.0.1:3000/ws/rooms/lobby
//! # the axum app publishes to it:
//! curl -X POST 127.0.0.1:3000/rooms/lobby/messages -d 'hello from axum'
//! curl 127.0.0.1:3000/rooms/lobby                    # {"room":"lobby","members":1}
//! ```
//!
//! `App::service()` (feature `axum` of `switchboard`) is a tower `Service`:
//! axum reads the request and hands it over, and Switchboard runs the same
//! routing, security, handler and hub as on its own listener, then takes
//! the connection over after `101`. `into_make_service_with_connect_info`
//! gives it the client's address (for rate limits and per-address caps).
//! The mirror image, Switchboard owning the listener and passing other
//! requests to axum, is `examples/axum-mount.rs`.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use switchboard::{Error, Hub, Outgoing, Switchboard, WebSocketUpgrade};

/// A WebSocket chat room: what a client sends goes to everyone in the room.
async fn room(
    ws: WebSocketUpgrade,
    switchboard::Path(room): switchboard::Path<String>,
) -> Result<(), Error> {
    let mut ws = ws.accept().await?;
    ws.join(room.as_str());
    while let Some(text) = ws.recv_text().await? {
        ws.hub()
            .send_to_room(room.as_str(), &Outgoing::text(text), None);
    }
    Ok(())
}

/// The existing HTTP app: its own routes, and one that publishes to a room.
fn http_app(hub: Hub) -> Router {
    Router::new()
        .route("/", get(|| async { "hello from axum\n" }))
        .route(
            "/rooms/{room}",
            get(
                |State(hub): State<Hub>, Path(room): Path<String>| async move {
                    let members = hub.room_size(room.as_str());
                    axum::Json(serde_json::json!({ "room": room, "members": members }))
                },
            ),
        )
        .route(
            "/rooms/{room}/messages",
            post(
                |State(hub): State<Hub>, Path(room): Path<String>, body: String| async move {
                    let reached = hub.send_to_room(room.as_str(), &Outgoing::text(body), None);
                    format!("sent to {reached} clients\n")
                },
            ),
        )
        .with_state(hub)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr: SocketAddr = std::env::var("ADDR")
        .ok()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 3000)));
    let ws = Switchboard::new()
        .route("/ws/rooms/{room}", room)
        .into_app();
    let app = http_app(ws.hub().clone()).route_service("/ws/rooms/{room}", ws.service());

    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("http and ws on {}", listener.local_addr()?);
    // On Ctrl-C, WebSocket clients get 1001 after what is queued for them,
    // and axum::serve returns once they are gone (or the app's shutdown
    // timeout passed): axum itself does not track the connections it
    // handed over.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(ws.graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    }))
    .await?;
    Ok(())
}
