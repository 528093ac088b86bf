//! The TCP listener: accepts connections until shutdown, then drains.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, ToSocketAddrs};

use super::accept;
use super::app::{App, ShutdownHandle, Switchboard};
use crate::error::Error;
use crate::transport::Transport;

impl Switchboard {
    /// Binds a TCP listener; call [`Server::run`] to accept connections.
    pub async fn bind(self, addr: impl ToSocketAddrs) -> Result<Server, Error> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Server {
            listener,
            app: self.into_app(),
        })
    }

    /// Binds and serves until the process ends.
    pub async fn serve(self, addr: impl ToSocketAddrs) -> Result<(), Error> {
        self.bind(addr).await?.run().await
    }
}

/// A bound listener with its app.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    app: App,
}

impl Server {
    /// The address the listener is bound to (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The app this server runs.
    pub fn app(&self) -> &App {
        &self.app
    }

    /// A handle that starts graceful shutdown.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.app.shutdown_handle()
    }

    /// Accepts connections until shutdown is started through a
    /// [`ShutdownHandle`], then drains (bounded by the shutdown timeout).
    pub async fn run(self) -> Result<(), Error> {
        self.run_until(std::future::pending()).await
    }

    /// Like [`Server::run`], and also starts shutdown (1001) when `signal` completes.
    pub async fn run_until(self, signal: impl Future<Output = ()> + Send) -> Result<(), Error> {
        let app = Arc::clone(&self.app.0);
        let handle = self.app.shutdown_handle();
        let mut shutdown = app.shutdown.subscribe();
        tokio::pin!(signal);
        loop {
            tokio::select! {
                accepted = self.listener.accept() => {
                    let (stream, addr) = match accepted {
                        Ok(pair) => pair,
                        Err(e) => {
                            // EMFILE and friends: back off briefly instead of spinning.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    if app.config.nodelay {
                        let _ = stream.set_nodelay(true);
                    }
                    tokio::spawn(accept::serve(Arc::clone(&app), Transport::Tcp(stream), addr));
                }
                () = &mut signal => handle.shutdown(),
                _ = shutdown.changed() => {}
            }
            if handle.is_shutting_down() {
                break;
            }
        }
        drop(self.listener);
        let _ = tokio::time::timeout(app.config.shutdown_timeout, handle.drained()).await;
        Ok(())
    }
}
