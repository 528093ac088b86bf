//! One server, one port: an existing axum app's routes and Switchboard's
//! WebSocket routes side by side.
//!
//! ```sh
//! cargo run -p switchboard-gateway --example axum-mount
//! # WebSocket clients join a room:   ws://127.0.0.1:3000/ws/rooms/lobby
//! # the axum app publishes to it:
//! curl -X POST 127.0.0.1:3000/rooms/lobby/messages -d 'hello from axum'
//! curl 127.0.0.1:3000/rooms/lobby                    # {"room":"lobby","members":1}
//! ```
//!
//! Switchboard owns the listener. A request for a WebSocket route is
//! upgraded as usual; any other request (plain HTTP to any other path) is
//! handed, with the bytes already read replayed, to the `HttpFallback`:
//! here hyper's HTTP/1.1 server running the axum `Router`. Both share the
//! hub, so axum handlers can send to WebSocket clients.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use switchboard::{Error, HttpFallback, Hub, Outgoing, Switchboard, WebSocketUpgrade};

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

/// Serves `router` over each connection Switchboard hands over.
fn fallback(router: Router) -> HttpFallback {
    Arc::new(move |io, _addr| {
        let service = TowerToHyperService::new(router.clone());
        Box::pin(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(io), service)
                .await;
        })
    })
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let addr: SocketAddr = std::env::var("ADDR")
        .ok()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 3000)));
    let hub = Hub::new();
    let server = Switchboard::new()
        .route("/ws/rooms/{room}", room)
        .with_hub(hub.clone())
        .with_http_fallback(fallback(http_app(hub)))
        .bind(addr)
        .await?;
    println!("http and ws on {}", server.local_addr());
    server
        .run_until(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}
