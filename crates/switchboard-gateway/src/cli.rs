//! Command-line interface.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use switchboard::{DeflateConfig, Limits, RouteConfig, ServerConfig};

/// Switchboard: a real-time WebSocket gateway.
#[derive(Debug, Parser)]
#[command(version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the gateway.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "SWITCHBOARD_LISTEN")]
    pub(crate) listen: SocketAddr,
    /// Largest inbound message (and frame) in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    pub(crate) max_message_size: usize,
    /// Most frames one inbound message may be split into.
    #[arg(long, default_value_t = 128)]
    pub(crate) max_fragments: usize,
    /// Turn permessage-deflate off (it is on when the client offers it).
    #[arg(long)]
    pub(crate) no_compression: bool,
    /// Most connections open at once.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) max_connections: usize,
    /// Worker threads (default: one per core).
    #[arg(long)]
    pub(crate) workers: Option<usize>,
}

pub(crate) fn serve(args: ServeArgs) -> anyhow::Result<()> {
    raise_fd_limit();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(workers) = args.workers {
        runtime.worker_threads(workers);
    }
    runtime.build()?.block_on(run(args))
}

async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let compression = (!args.no_compression).then(DeflateConfig::default);
    let route = RouteConfig::default()
        .with_compression(compression)
        .with_limits(
            Limits::default()
                .with_max_message_size(args.max_message_size)
                .with_max_fragments(args.max_fragments),
        );
    let config = ServerConfig::default()
        .with_max_connections(args.max_connections)
        .with_route_defaults(route)
        .with_shutdown_timeout(Duration::from_secs(10));
    let server = crate::routes::app()
        .with_config(config)
        .bind(args.listen)
        .await?;
    tracing::info!(addr = %server.local_addr(), "switchboard listening; echo at /ws/echo");
    println!("listening on ws://{}", server.local_addr());
    server.run_until(shutdown_signal()).await?;
    tracing::info!("shut down");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            let _ = ctrl_c.await;
            return;
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Each connection is a file descriptor; the usual soft limit of 1024 is far
/// below what a gateway holds.
fn raise_fd_limit() {
    if let Ok((soft, hard)) = rlimit::Resource::NOFILE.get() {
        if soft < hard {
            let _ = rlimit::Resource::NOFILE.set(hard, hard);
        }
    }
}
