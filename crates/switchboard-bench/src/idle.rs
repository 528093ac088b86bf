//! `idle`: hold N upgraded connections open and measure the server's resident memory per
//! connection (VmRSS growth / N, from `/proc/<server-pid>/status`).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

use crate::common::{ConnectPhase, connect_many};
use crate::stats::{meminfo_kib, status_kib};
use crate::target::Target;
use crate::ws::{ConnectOptions, OP_CLOSE};

/// Idle-memory settings.
#[derive(Debug, Clone)]
pub struct IdleConfig {
    /// Where to connect.
    pub target: Target,
    /// Connections to hold.
    pub connections: usize,
    /// Source addresses to spread the connections over.
    pub source_ips: Vec<IpAddr>,
    /// The server process (memory is read from its `/proc/<pid>/status`).
    pub server_pid: Option<u32>,
    /// Wait after connecting before reading memory.
    pub settle: Duration,
    /// Keep holding this long after the reading (then check how many survived).
    pub hold: Duration,
    /// Concurrent connection attempts.
    pub connect_concurrency: usize,
    /// Offer permessage-deflate and inflate what the server compresses.
    pub deflate: bool,
}

/// Idle-memory result.
#[derive(Debug, Clone, Serialize)]
pub struct IdleReport {
    /// Always `"idle"`.
    pub scenario: &'static str,
    /// Target URL.
    pub url: String,
    /// Requested connections.
    pub connections: usize,
    /// Source addresses used.
    pub source_ips: Vec<String>,
    /// Connect phase (`connect.deflate_negotiated`: connections with permessage-deflate).
    pub connect: ConnectPhase,
    /// Whether permessage-deflate was offered (`--deflate`).
    pub deflate_offered: bool,
    /// Connections the server closed while held.
    pub closed_by_server: u64,
    /// Connections still open at the end.
    pub alive_at_end: u64,
    /// Server VmRSS before connecting, KiB.
    pub rss_before_kib: Option<u64>,
    /// Server VmRSS with all connections open, KiB.
    pub rss_after_kib: Option<u64>,
    /// Server RssAnon before/after, KiB.
    pub rss_anon_before_kib: Option<u64>,
    /// Server RssAnon after, KiB.
    pub rss_anon_after_kib: Option<u64>,
    /// (VmRSS after − before) / established connections, bytes.
    pub bytes_per_conn: Option<f64>,
    /// (RssAnon after − before) / established connections, bytes.
    pub anon_bytes_per_conn: Option<f64>,
    /// Growth of the kernel's Slab (machine-wide, both socket ends) per connection, bytes.
    pub kernel_slab_bytes_per_conn: Option<f64>,
}

impl IdleReport {
    /// Human-readable summary.
    pub fn human(&self) -> String {
        let opt = |v: Option<f64>| v.map_or("n/a".to_owned(), |b| format!("{b:.0} B"));
        format!(
            "idle {} — {} of {} connections established ({} failed) in {:.2} s from {:?}\n  server VmRSS: {:?} KiB → {:?} KiB: {} per connection (RssAnon: {})\n  kernel slab growth (both ends, machine-wide): {} per connection\n  closed by server while held: {}, alive at end: {}\n",
            self.url,
            self.connect.established,
            self.connections,
            self.connect.failed,
            self.connect.seconds,
            self.source_ips,
            self.rss_before_kib,
            self.rss_after_kib,
            opt(self.bytes_per_conn),
            opt(self.anon_bytes_per_conn),
            opt(self.kernel_slab_bytes_per_conn),
            self.closed_by_server,
            self.alive_at_end
        ) + &if self.deflate_offered {
            format!(
                "  permessage-deflate agreed on {} of {} connections\n",
                self.connect.deflate_negotiated, self.connect.established
            )
        } else {
            String::new()
        }
    }
}

/// Runs the idle scenario.
pub async fn run(cfg: IdleConfig) -> anyhow::Result<IdleReport> {
    anyhow::ensure!(cfg.connections > 0, "need at least one connection");
    let read = |field: &str| cfg.server_pid.and_then(|p| status_kib(p, field).ok());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before = read("VmRSS");
    let anon_before = read("RssAnon");
    let slab_before = meminfo_kib("Slab");

    let opts = ConnectOptions {
        read_buffer: 256,
        timeout: Some(Duration::from_secs(10)),
        deflate: cfg.deflate,
        ..ConnectOptions::default()
    };
    let ips = (!cfg.source_ips.is_empty()).then_some(cfg.source_ips.as_slice());
    let targets = vec![cfg.target.clone()];
    let (conns, connect) = connect_many(
        &targets,
        cfg.connections,
        &opts,
        cfg.connect_concurrency,
        ips,
    )
    .await;
    let established = conns.len() as u64;
    let closed = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut handles = Vec::with_capacity(conns.len());
    for (_, mut c) in conns {
        let closed = closed.clone();
        let mut stop = stop_rx.clone();
        handles.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.changed() => break,
                    r = c.fill() => {
                        let mut dead = !matches!(r, Ok(n) if n > 0);
                        while let Ok(Some(m)) = c.reader.next_message() {
                            if m.opcode == OP_CLOSE {
                                dead = true;
                            }
                        }
                        if dead || c.flush_pongs().await.is_err() {
                            closed.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    }
                }
            }
            c.abort();
        }));
    }
    tokio::time::sleep(cfg.settle).await;
    let rss_after = read("VmRSS");
    let anon_after = read("RssAnon");
    let slab_after = meminfo_kib("Slab");
    tokio::time::sleep(cfg.hold).await;
    let closed_by_server = closed.load(Ordering::Relaxed);
    let _ = stop_tx.send(true);
    for h in handles {
        let _ = h.await;
    }
    let per = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) if established > 0 => {
            Some((b as f64 - a as f64) * 1024.0 / established as f64)
        }
        _ => None,
    };
    Ok(IdleReport {
        scenario: "idle",
        url: cfg.target.url(),
        connections: cfg.connections,
        source_ips: cfg.source_ips.iter().map(ToString::to_string).collect(),
        connect,
        deflate_offered: cfg.deflate,
        closed_by_server,
        alive_at_end: established - closed_by_server,
        rss_before_kib: rss_before,
        rss_after_kib: rss_after,
        rss_anon_before_kib: anon_before,
        rss_anon_after_kib: anon_after,
        bytes_per_conn: per(rss_before, rss_after),
        anon_bytes_per_conn: per(anon_before, anon_after),
        kernel_slab_bytes_per_conn: per(slab_before, slab_after),
    })
}
