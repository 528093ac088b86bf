//! `connect-storm`: C concurrent churners looping connect → upgrade → close.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::stats::{CpuSampler, Latency, LatencySummary, ServerCpu, fmt_rate};
use crate::target::Target;
use crate::ws::{ConnectError, ConnectOptions, WsConn};

/// How a churner ends each connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CloseMode {
    /// TCP RST right after the 101 (SO_LINGER 0): no TIME_WAIT, so the port range never runs
    /// out. This is what the research measurements used.
    Rst,
    /// Send a WebSocket close frame and wait (≤ 1 s) for the server to close.
    Frame,
}

/// Connect-storm settings.
#[derive(Debug, Clone)]
pub struct StormConfig {
    /// Where to connect.
    pub target: Target,
    /// Concurrent churners.
    pub concurrency: usize,
    /// Measurement window.
    pub duration: Duration,
    /// `Authorization: Bearer <token>` to send, if any.
    pub bearer: Option<String>,
    /// Label for the auth mode in the report.
    pub auth_label: &'static str,
    /// How to close.
    pub close: CloseMode,
    /// Source addresses to spread over (empty: let the kernel pick).
    pub source_ips: Vec<IpAddr>,
    /// Stop after this many handshakes.
    pub max_handshakes: Option<u64>,
    /// Server processes to sample.
    pub server_pids: Vec<u32>,
    /// Offer permessage-deflate and inflate what the server compresses.
    pub deflate: bool,
}

/// Connect-storm result.
#[derive(Debug, Clone, Serialize)]
pub struct StormReport {
    /// Always `"connect-storm"`.
    pub scenario: &'static str,
    /// Target URL.
    pub url: String,
    /// Churners.
    pub concurrency: usize,
    /// `none`, `bearer` or `hs256`.
    pub auth: &'static str,
    /// Close mode.
    pub close: CloseMode,
    /// Window, seconds.
    pub duration_s: f64,
    /// Successful upgrades (101 with a valid accept key).
    pub handshakes: u64,
    /// Whether permessage-deflate was offered (`--deflate`).
    pub deflate_offered: bool,
    /// Handshakes in which the server agreed to permessage-deflate.
    pub deflate_negotiated: u64,
    /// handshakes / duration.
    pub handshakes_per_sec: f64,
    /// Upgrades refused with an HTTP status.
    pub refused_status: BTreeMap<u16, u64>,
    /// I/O errors, timeouts and bad handshakes.
    pub errors: u64,
    /// First few error messages.
    pub first_errors: Vec<String>,
    /// Connect start → 101 received.
    pub latency: LatencySummary,
    /// Server CPU over the window.
    pub server_cpu: Option<ServerCpu>,
    /// Handshakes per server CPU-second.
    pub handshakes_per_server_cpu_sec: Option<f64>,
    /// Server CPU per handshake, microseconds.
    pub server_cpu_us_per_handshake: Option<f64>,
    /// The generator's own CPU over the window.
    pub generator_cpu: Option<ServerCpu>,
}

impl StormReport {
    /// Human-readable summary.
    pub fn human(&self) -> String {
        let mut s = format!(
            "connect-storm {} — {} churners, auth {}, close {:?}, {:.1} s\n  handshakes: {} ({} /s), refused {:?}, errors {}\n  latency: {}\n",
            self.url,
            self.concurrency,
            self.auth,
            self.close,
            self.duration_s,
            self.handshakes,
            fmt_rate(self.handshakes_per_sec),
            self.refused_status,
            self.errors,
            self.latency.human()
        );
        if self.deflate_offered {
            s.push_str(&format!(
                "  permessage-deflate agreed in {} of {} handshakes\n",
                self.deflate_negotiated, self.handshakes
            ));
        }
        if let (Some(cpu), Some(r), Some(us)) = (
            self.server_cpu,
            self.handshakes_per_server_cpu_sec,
            self.server_cpu_us_per_handshake,
        ) {
            s.push_str(&format!(
                "  server CPU: {:.2} s ({:.0}% of a core), {us:.1} µs/handshake, {} handshakes per server CPU-second\n",
                cpu.cpu_seconds,
                cpu.utilisation * 100.0,
                fmt_rate(r)
            ));
        }
        if let Some(g) = self.generator_cpu {
            s.push_str(&format!(
                "  generator CPU: {:.0}% of a core\n",
                g.utilisation * 100.0
            ));
        }
        for e in &self.first_errors {
            s.push_str(&format!("  error: {e}\n"));
        }
        s
    }
}

#[derive(Debug, Default)]
struct ChurnResult {
    ok: u64,
    deflate: u64,
    refused: BTreeMap<u16, u64>,
    errors: u64,
    first_errors: Vec<String>,
    hist: Latency,
}

/// Runs the connect storm.
pub async fn run(cfg: StormConfig) -> anyhow::Result<StormReport> {
    anyhow::ensure!(cfg.concurrency > 0, "need at least one churner");
    let mut extra_headers = Vec::new();
    if let Some(tok) = &cfg.bearer {
        extra_headers.push(format!("Authorization: Bearer {tok}"));
    }
    let start = Instant::now();
    let end = start + cfg.duration;
    let budget = Arc::new(AtomicU64::new(cfg.max_handshakes.unwrap_or(u64::MAX)));
    let sampler = CpuSampler::start(&cfg.server_pids);
    let own = CpuSampler::start(&[std::process::id()]);
    let mut handles = Vec::new();
    for i in 0..cfg.concurrency {
        let opts = ConnectOptions {
            extra_headers: extra_headers.clone(),
            source_ip: if cfg.source_ips.is_empty() {
                None
            } else {
                Some(cfg.source_ips[i % cfg.source_ips.len()])
            },
            read_buffer: 1024,
            timeout: Some(Duration::from_secs(5)),
            deflate: cfg.deflate,
        };
        let target = cfg.target.clone();
        let budget = budget.clone();
        let close = cfg.close;
        handles.push(tokio::spawn(async move {
            churn(target, opts, end, budget, close).await
        }));
    }
    let mut total = ChurnResult::default();
    for h in handles {
        let Ok(r) = h.await else {
            total.errors += 1;
            continue;
        };
        total.ok += r.ok;
        total.deflate += r.deflate;
        total.errors += r.errors;
        for (k, v) in r.refused {
            *total.refused.entry(k).or_default() += v;
        }
        for e in r.first_errors {
            if total.first_errors.len() < 5 {
                total.first_errors.push(e);
            }
        }
        total.hist.merge(&r.hist);
    }
    let server_cpu = sampler.and_then(|s| s.finish());
    let generator_cpu = own.and_then(|s| s.finish());
    let wall = start.elapsed().as_secs_f64().max(1e-9);
    let (per_cpu, us_per) = match server_cpu {
        Some(c) if total.ok > 0 && c.cpu_seconds > 0.0 => (
            Some(total.ok as f64 / c.cpu_seconds),
            Some(c.cpu_seconds * 1e6 / total.ok as f64),
        ),
        _ => (None, None),
    };
    Ok(StormReport {
        scenario: "connect-storm",
        url: cfg.target.url(),
        concurrency: cfg.concurrency,
        auth: cfg.auth_label,
        close: cfg.close,
        duration_s: wall,
        handshakes: total.ok,
        deflate_offered: cfg.deflate,
        deflate_negotiated: total.deflate,
        handshakes_per_sec: total.ok as f64 / wall,
        refused_status: total.refused,
        errors: total.errors,
        first_errors: total.first_errors,
        latency: total.hist.summary(),
        server_cpu,
        handshakes_per_server_cpu_sec: per_cpu,
        server_cpu_us_per_handshake: us_per,
        generator_cpu,
    })
}

async fn churn(
    target: Target,
    opts: ConnectOptions,
    end: Instant,
    budget: Arc<AtomicU64>,
    close: CloseMode,
) -> ChurnResult {
    let mut r = ChurnResult::default();
    let mut consecutive_errors = 0u32;
    while Instant::now() < end {
        if budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(1))
            .is_err()
        {
            break;
        }
        let t0 = Instant::now();
        let remaining = end.saturating_duration_since(t0);
        let attempt = tokio::time::timeout(
            remaining + Duration::from_secs(1),
            WsConn::connect(&target, &opts),
        )
        .await;
        match attempt {
            Ok(Ok(c)) => {
                r.hist.record(t0.elapsed());
                r.ok += 1;
                r.deflate += u64::from(c.deflate.is_some());
                consecutive_errors = 0;
                match close {
                    CloseMode::Rst => c.abort(),
                    CloseMode::Frame => c.close(Duration::from_secs(1)).await,
                }
            }
            Ok(Err(ConnectError::Status(s))) => {
                *r.refused.entry(s).or_default() += 1;
            }
            Ok(Err(e)) => {
                r.errors += 1;
                consecutive_errors += 1;
                if r.first_errors.len() < 3 {
                    r.first_errors.push(e.to_string());
                }
            }
            Err(_) => {
                r.errors += 1;
                consecutive_errors += 1;
            }
        }
        if consecutive_errors > 0 {
            // Back off a little so a dead server does not turn into a busy loop.
            tokio::time::sleep(Duration::from_millis(u64::from(consecutive_errors.min(50)))).await;
        }
    }
    r
}
