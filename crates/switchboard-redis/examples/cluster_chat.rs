//! A chat server that runs as many instances as you like behind one Redis.
//!
//! ```text
//! cargo run -p switchboard-redis --example cluster_chat -- 127.0.0.1:8081 redis://127.0.0.1:6379
//! cargo run -p switchboard-redis --example cluster_chat -- 127.0.0.1:8082 redis://127.0.0.1:6379
//! ```
//!
//! Connect to `/ws/chat/{room}?user=<name>` on either instance; every text
//! message goes to the room's members on every instance (not back to its
//! sender). `/who` answers with the room's size across the cluster.

use std::time::Duration;

use serde::Deserialize;
use switchboard::broker::{Cluster, Target};
use switchboard::{Error, Hub, Path, Query, Switchboard, WebSocketUpgrade};
use switchboard_redis::{RedisBroker, RedisConfig};

#[derive(Deserialize)]
struct Who {
    user: String,
}

async fn chat(
    cluster: Cluster,
    ws: WebSocketUpgrade,
    Path(room): Path<String>,
    Query(who): Query<Who>,
) -> Result<(), Error> {
    let mut ws = ws.with_user(who.user.as_str()).accept().await?;
    let me = cluster.address(ws.id());
    // Wait for the subscription, so nothing published from now on is missed.
    if let Err(e) = cluster.join(ws.id(), room.as_str()).await {
        tracing::warn!(error = %e, "joined locally; other instances not reachable yet");
    }
    while let Some(text) = ws.recv_text().await? {
        if text.as_str() == "/who" {
            let reply = match cluster.room_size(room.as_str()).await {
                Ok(n) => format!("{n} in {room}"),
                Err(e) => format!("count unavailable: {e}"),
            };
            ws.send_text(reply).await?;
            continue;
        }
        let line = format!("{}: {text}", who.user);
        if let Err(e) = cluster
            .publish_except(Target::room(room.as_str()), line, me.clone())
            .await
        {
            // Local members got it; other instances did not. Tell the sender.
            ws.send_text(format!("not delivered everywhere: {e}"))
                .await?;
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:8081".to_owned());
    let redis = args
        .next()
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned());

    let hub = Hub::new();
    let config = RedisConfig::new(redis).heartbeat(Duration::from_secs(1), Duration::from_secs(5));
    let cluster = Cluster::new(hub.clone(), RedisBroker::new(config)?);
    cluster.start().await?;

    let handler_cluster = cluster.clone();
    let server = Switchboard::new()
        .with_hub(hub)
        .route(
            "/ws/chat/{room}",
            move |ws: WebSocketUpgrade, room: Path<String>, who: Query<Who>| {
                chat(handler_cluster.clone(), ws, room, who)
            },
        )
        .bind(listen.as_str())
        .await?;
    println!(
        "instance {} on ws://{}/ws/chat/<room>?user=<name>",
        cluster.instance(),
        server.local_addr()
    );
    server
        .run_until(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    cluster.shutdown().await;
    Ok(())
}
