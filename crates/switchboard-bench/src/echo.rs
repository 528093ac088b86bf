//! `echo`: N connections, each keeping `in_flight` messages outstanding (1 = uWebSockets'
//! load_test semantics), every echo verified byte-for-byte.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::common::{ConnectPhase, connect_many};
use crate::payload::{echo_matches, echo_stamp, echo_stamp_len, echo_template};
use crate::stats::{CpuSampler, Latency, LatencySummary, ServerCpu, fmt_rate};
use crate::target::Target;
use crate::ws::{ConnectOptions, OP_BINARY, OP_CLOSE, OP_TEXT, WsConn, apply_mask, encode_frame};

/// How a connection with several messages in flight sends new ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PipelineMode {
    /// Sliding window: every echo received is replaced at once (after each read, as many new
    /// messages as echoes arrived go out in one write).
    Window,
    /// Batches: send `in_flight` messages in one write, wait for all their echoes, repeat
    /// (the shape of HTTP pipelining benchmarks).
    Batch,
}

/// Echo scenario settings.
#[derive(Debug, Clone)]
pub struct EchoConfig {
    /// Where to connect.
    pub target: Target,
    /// Number of connections.
    pub connections: usize,
    /// Payload bytes per message.
    pub size: usize,
    /// Messages outstanding per connection (pipelining depth).
    pub in_flight: usize,
    /// How the pipeline is refilled.
    pub pipeline: PipelineMode,
    /// Binary frames (else text).
    pub binary: bool,
    /// Measurement window.
    pub duration: Duration,
    /// Traffic before the window starts (not counted).
    pub warmup: Duration,
    /// Stop sending after this many messages in total.
    pub max_messages: Option<u64>,
    /// Server processes whose CPU to sample over the window.
    pub server_pids: Vec<u32>,
    /// Concurrent connection attempts.
    pub connect_concurrency: usize,
    /// Offer permessage-deflate and inflate what the server compresses.
    pub deflate: bool,
}

/// Echo scenario result.
#[derive(Debug, Clone, Serialize)]
pub struct EchoReport {
    /// Always `"echo"`.
    pub scenario: &'static str,
    /// Target URL.
    pub url: String,
    /// Connections requested.
    pub connections: usize,
    /// Connections established.
    pub connected: usize,
    /// Payload bytes.
    pub size: usize,
    /// Pipelining depth.
    pub in_flight: usize,
    /// Pipeline refill mode.
    pub pipeline: PipelineMode,
    /// `"text"` or `"binary"`.
    pub mode: &'static str,
    /// Window length, seconds.
    pub duration_s: f64,
    /// Echoes received inside the window.
    pub messages: u64,
    /// messages / duration.
    pub msgs_per_sec: f64,
    /// All echoes checked byte-for-byte (window, warm-up and drain).
    pub verified: u64,
    /// Echoes that differed from what was sent (any is an error).
    pub mismatches: u64,
    /// Connections that failed or were closed by the server during the run.
    pub connection_errors: u64,
    /// First few error messages.
    pub errors: Vec<String>,
    /// Round-trip latency inside the window.
    pub latency: LatencySummary,
    /// Connect phase (`connect.deflate_negotiated`: connections with permessage-deflate).
    pub connect: ConnectPhase,
    /// Whether permessage-deflate was offered (`--deflate`).
    pub deflate_offered: bool,
    /// Server CPU over the window (if `--server-pid` given).
    pub server_cpu: Option<ServerCpu>,
    /// Server CPU per echoed message, microseconds.
    pub server_cpu_us_per_msg: Option<f64>,
    /// Messages per server CPU-second.
    pub msgs_per_server_cpu_sec: Option<f64>,
    /// The generator's own CPU over the window (near 1.0: the generator was the limit).
    pub generator_cpu: Option<ServerCpu>,
}

impl EchoReport {
    /// Human-readable summary.
    pub fn human(&self) -> String {
        let mut s = format!(
            "echo {} — {} conns × {} B {}, {} in flight ({:?}), {:.1} s\n  throughput: {} msg/s ({} echoes in window)\n  verified: {} echoes, {} mismatches, {} connection errors\n  latency: {}\n",
            self.url,
            self.connected,
            self.size,
            self.mode,
            self.in_flight,
            self.pipeline,
            self.duration_s,
            fmt_rate(self.msgs_per_sec),
            self.messages,
            self.verified,
            self.mismatches,
            self.connection_errors,
            self.latency.human(),
        );
        if self.deflate_offered {
            s.push_str(&format!(
                "  permessage-deflate agreed on {} of {} connections\n",
                self.connect.deflate_negotiated, self.connect.established
            ));
        }
        if let (Some(cpu), Some(per), Some(rate)) = (
            self.server_cpu,
            self.server_cpu_us_per_msg,
            self.msgs_per_server_cpu_sec,
        ) {
            s.push_str(&format!(
                "  server CPU: {:.2} s ({:.0}% of a core), {per:.2} µs/msg, {} msg per server CPU-second\n",
                cpu.cpu_seconds,
                cpu.utilisation * 100.0,
                fmt_rate(rate)
            ));
        }
        if let Some(g) = self.generator_cpu {
            s.push_str(&format!(
                "  generator CPU: {:.0}% of a core\n",
                g.utilisation * 100.0
            ));
        }
        for e in &self.errors {
            s.push_str(&format!("  error: {e}\n"));
        }
        s
    }
}

#[derive(Debug, Default)]
struct ConnResult {
    counted: u64,
    verified: u64,
    mismatches: u64,
    hist: Latency,
    error: Option<String>,
}

#[derive(Debug)]
struct Shared {
    start: Instant,
    end: Instant,
    hard_deadline: Instant,
    budget: Option<AtomicU64>,
    size: usize,
    in_flight: usize,
    batch: bool,
    opcode: u8,
}

impl Shared {
    /// Takes up to `n` messages from the budget.
    fn take(&self, n: usize) -> usize {
        match &self.budget {
            None => n,
            Some(b) => {
                let mut cur = b.load(Ordering::Relaxed);
                loop {
                    let take = cur.min(n as u64);
                    if take == 0 {
                        return 0;
                    }
                    match b.compare_exchange_weak(
                        cur,
                        cur - take,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => return take as usize,
                        Err(v) => cur = v,
                    }
                }
            }
        }
    }
}

/// Runs the echo scenario.
pub async fn run(cfg: EchoConfig) -> anyhow::Result<EchoReport> {
    anyhow::ensure!(cfg.connections > 0, "need at least one connection");
    anyhow::ensure!(cfg.in_flight > 0, "in-flight must be at least 1");
    let opts = ConnectOptions {
        read_buffer: (cfg.size * 2 + 64).clamp(4096, 1 << 20),
        timeout: Some(Duration::from_secs(10)),
        deflate: cfg.deflate,
        ..ConnectOptions::default()
    };
    let targets = vec![cfg.target.clone()];
    let (conns, connect) = connect_many(
        &targets,
        cfg.connections,
        &opts,
        cfg.connect_concurrency,
        None,
    )
    .await;
    let mut errors: Vec<String> = connect.first_errors.clone();
    anyhow::ensure!(
        !conns.is_empty(),
        "no connection could be opened: {:?}",
        errors
    );
    let connected = conns.len();

    let start = Instant::now() + cfg.warmup;
    let end = start + cfg.duration;
    let shared = Arc::new(Shared {
        start,
        end,
        hard_deadline: end + Duration::from_secs(3),
        budget: cfg.max_messages.map(AtomicU64::new),
        size: cfg.size,
        in_flight: cfg.in_flight,
        batch: cfg.pipeline == PipelineMode::Batch,
        opcode: if cfg.binary { OP_BINARY } else { OP_TEXT },
    });
    let mut handles = Vec::with_capacity(connected);
    for (i, (_, c)) in conns.into_iter().enumerate() {
        let sh = shared.clone();
        handles.push(tokio::spawn(echo_conn(c, i, sh)));
    }
    tokio::time::sleep_until(start.into()).await;
    let sampler = CpuSampler::start(&cfg.server_pids);
    let own = CpuSampler::start(&[std::process::id()]);
    tokio::time::sleep_until(end.into()).await;
    let server_cpu = sampler.and_then(|s| s.finish());
    let generator_cpu = own.and_then(|s| s.finish());

    let mut total = ConnResult::default();
    let mut connection_errors = connect.failed;
    for h in handles {
        let r = h.await.unwrap_or_else(|e| ConnResult {
            error: Some(format!("task failed: {e}")),
            ..ConnResult::default()
        });
        total.counted += r.counted;
        total.verified += r.verified;
        total.mismatches += r.mismatches;
        total.hist.merge(&r.hist);
        if let Some(e) = r.error {
            connection_errors += 1;
            if errors.len() < 5 {
                errors.push(e);
            }
        }
    }
    let secs = cfg.duration.as_secs_f64();
    let msgs_per_sec = total.counted as f64 / secs;
    let (per_msg, per_cpu) = match server_cpu {
        Some(c) if total.counted > 0 && c.cpu_seconds > 0.0 => (
            Some(c.cpu_seconds * 1e6 / total.counted as f64),
            Some(total.counted as f64 / c.cpu_seconds),
        ),
        _ => (None, None),
    };
    Ok(EchoReport {
        scenario: "echo",
        url: cfg.target.url(),
        connections: cfg.connections,
        connected,
        size: cfg.size,
        in_flight: cfg.in_flight,
        pipeline: cfg.pipeline,
        mode: if cfg.binary { "binary" } else { "text" },
        duration_s: secs,
        messages: total.counted,
        msgs_per_sec,
        verified: total.verified,
        mismatches: total.mismatches,
        connection_errors,
        errors,
        latency: total.hist.summary(),
        connect,
        deflate_offered: cfg.deflate,
        server_cpu,
        server_cpu_us_per_msg: per_msg,
        msgs_per_server_cpu_sec: per_cpu,
        generator_cpu,
    })
}

async fn echo_conn(mut c: WsConn, id: usize, sh: Arc<Shared>) -> ConnResult {
    let mut res = ConnResult::default();
    if let Err(e) = echo_loop(&mut c, id, &sh, &mut res).await {
        res.error = Some(e);
        c.abort();
        return res;
    }
    c.close(Duration::from_millis(200)).await;
    res
}

async fn echo_loop(
    c: &mut WsConn,
    id: usize,
    sh: &Shared,
    res: &mut ConnResult,
) -> Result<(), String> {
    let template = echo_template(sh.size, id);
    let mut frame = Vec::with_capacity(sh.size + 14);
    encode_frame(&mut frame, sh.opcode, &template, c.mask);
    let hl = frame.len() - sh.size;
    let k = echo_stamp_len(sh.size);
    let mask = c.mask;
    let mut inflight: VecDeque<(u64, Instant)> = VecDeque::with_capacity(sh.in_flight);
    let mut next_seq = 0u64;
    let mut out: Vec<u8> = Vec::new();
    let mut to_send = sh.take(sh.in_flight);
    let hard = tokio::time::sleep_until(sh.hard_deadline.into());
    tokio::pin!(hard);
    loop {
        if to_send > 0 {
            let now = Instant::now();
            if to_send == 1 {
                let seq = next_seq;
                next_seq += 1;
                let stamp = &mut frame[hl..hl + k];
                echo_stamp(seq, stamp);
                apply_mask(stamp, mask, 0);
                c.write_all(&frame)
                    .await
                    .map_err(|e| format!("write: {e}"))?;
                inflight.push_back((seq, now));
            } else {
                out.clear();
                for _ in 0..to_send {
                    let seq = next_seq;
                    next_seq += 1;
                    let stamp = &mut frame[hl..hl + k];
                    echo_stamp(seq, stamp);
                    apply_mask(stamp, mask, 0);
                    out.extend_from_slice(&frame);
                    inflight.push_back((seq, now));
                }
                c.write_all(&out).await.map_err(|e| format!("write: {e}"))?;
            }
            to_send = 0;
        }
        if inflight.is_empty() {
            return Ok(());
        }
        let n = tokio::select! {
            biased;
            r = c.fill() => r.map_err(|e| format!("read: {e}"))?,
            _ = &mut hard => {
                return Err(format!("timed out with {} echoes outstanding", inflight.len()));
            }
        };
        if n == 0 {
            return Err(format!(
                "server closed the connection with {} echoes outstanding",
                inflight.len()
            ));
        }
        let now = Instant::now();
        let sending = now < sh.end;
        let mut received = 0usize;
        while let Some(m) = c.reader.next_message().map_err(|e| e.to_string())? {
            match m.opcode {
                OP_TEXT | OP_BINARY => {
                    let Some((seq, sent)) = inflight.pop_front() else {
                        res.mismatches += 1;
                        continue;
                    };
                    if m.opcode == sh.opcode && echo_matches(c.reader.payload(&m), &template, seq) {
                        res.verified += 1;
                    } else {
                        res.mismatches += 1;
                    }
                    if now >= sh.start && now < sh.end {
                        res.counted += 1;
                        res.hist.record(now - sent);
                    }
                    received += 1;
                }
                OP_CLOSE => return Err("server sent a close frame".to_owned()),
                _ => {}
            }
        }
        c.flush_pongs().await.map_err(|e| format!("write: {e}"))?;
        if sending && received > 0 {
            if !sh.batch {
                to_send = sh.take(received);
            } else if inflight.is_empty() {
                to_send = sh.take(sh.in_flight);
            }
        }
    }
}
