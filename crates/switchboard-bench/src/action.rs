//! `action`: structured-protocol `ACTION` round trips (docs/protocol.md).
//! N connections to a structured endpoint each send an `ACTION` and wait
//! for its `ACTION_RESULT` (one in flight per connection), for a duration:
//! actions per second, round-trip latency, server CPU per action. Used to
//! compare an action answered by the gateway's rpc proxy (docs/proxy.md)
//! with the built-in `chat.send`, in the same run.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::stats::{CpuSampler, Latency, LatencySummary, ServerCpu, fmt_rate};
use crate::target::Target;
use crate::ws::{ConnectOptions, OP_CLOSE, OP_TEXT, WsConn};

/// What to run.
#[derive(Debug, Clone)]
pub struct ActionConfig {
    /// A structured endpoint.
    pub target: Target,
    /// Connections, each with one action in flight.
    pub connections: usize,
    /// The action's name.
    pub action: String,
    /// Its `data` (JSON).
    pub data: serde_json::Value,
    /// Measurement window (after `warmup`).
    pub duration: Duration,
    /// Round trips before measuring.
    pub warmup: Duration,
    /// Server processes to sample.
    pub server_pids: Vec<u32>,
}

/// Result.
#[derive(Debug, Clone, Serialize)]
pub struct ActionReport {
    /// Always `"action"`.
    pub scenario: &'static str,
    /// Target URL.
    pub url: String,
    /// The action's name.
    pub action: String,
    /// Connections.
    pub connections: usize,
    /// Window, seconds.
    pub duration_s: f64,
    /// `ACTION_RESULT`s received in the window.
    pub results: u64,
    /// `ERROR`s (or anything else) received in answer.
    pub errors: u64,
    /// First few unexpected answers.
    pub first_errors: Vec<String>,
    /// results / duration.
    pub actions_per_sec: f64,
    /// Send → `ACTION_RESULT`.
    pub latency: LatencySummary,
    /// Server CPU over the window.
    pub server_cpu: Option<ServerCpu>,
    /// Actions per server CPU-second.
    pub actions_per_server_cpu_sec: Option<f64>,
    /// Server CPU per action, microseconds.
    pub server_cpu_us_per_action: Option<f64>,
}

impl ActionReport {
    /// Human-readable summary.
    pub fn human(&self) -> String {
        let mut s = format!(
            "action {} {} — {} connections, {:.1} s\n  results: {} ({} /s), errors {}\n  latency: {}\n",
            self.url,
            self.action,
            self.connections,
            self.duration_s,
            self.results,
            fmt_rate(self.actions_per_sec),
            self.errors,
            self.latency.human()
        );
        if let (Some(cpu), Some(r), Some(us)) = (
            self.server_cpu,
            self.actions_per_server_cpu_sec,
            self.server_cpu_us_per_action,
        ) {
            s.push_str(&format!(
                "  server CPU: {:.2} s ({:.0}% of a core), {us:.1} µs/action, {} actions per server CPU-second\n",
                cpu.cpu_seconds,
                cpu.utilisation * 100.0,
                fmt_rate(r)
            ));
        }
        for e in &self.first_errors {
            s.push_str(&format!("  unexpected: {e}\n"));
        }
        s
    }
}

#[derive(Debug, Default)]
struct Worker {
    results: u64,
    errors: u64,
    first_errors: Vec<String>,
    latency: Latency,
}

/// Runs the scenario.
pub async fn run(config: ActionConfig) -> anyhow::Result<ActionReport> {
    let opts = ConnectOptions {
        extra_headers: vec!["Sec-WebSocket-Protocol: switchboard.v1".to_owned()],
        read_buffer: 16 * 1024,
        timeout: Some(Duration::from_secs(10)),
        ..ConnectOptions::default()
    };
    let mut conns = Vec::with_capacity(config.connections);
    for _ in 0..config.connections {
        let mut conn = WsConn::connect(&config.target, &opts).await?;
        // CONNECT_ACK first.
        read_text(&mut conn).await?;
        conns.push(conn);
    }
    let warm_until = Instant::now() + config.warmup;
    let measure_until = warm_until + config.duration;
    let mut tasks = Vec::with_capacity(conns.len());
    for (i, conn) in conns.into_iter().enumerate() {
        let action = config.action.clone();
        let data = config.data.clone();
        tasks.push(tokio::spawn(async move {
            worker(conn, i, &action, &data, warm_until, measure_until).await
        }));
    }
    tokio::time::sleep_until(warm_until.into()).await;
    let sampler = CpuSampler::start(&config.server_pids);
    let mut total = Worker::default();
    for task in tasks {
        let w = task.await??;
        total.results += w.results;
        total.errors += w.errors;
        for e in w.first_errors {
            if total.first_errors.len() < 5 {
                total.first_errors.push(e);
            }
        }
        total.latency.merge(&w.latency);
    }
    let server_cpu = sampler.and_then(|s| s.finish());
    let secs = config.duration.as_secs_f64();
    let per_cpu = server_cpu
        .filter(|c| c.cpu_seconds > 0.0)
        .map(|c| total.results as f64 / c.cpu_seconds);
    Ok(ActionReport {
        scenario: "action",
        url: config.target.url(),
        action: config.action,
        connections: config.connections,
        duration_s: secs,
        results: total.results,
        errors: total.errors,
        first_errors: total.first_errors,
        actions_per_sec: total.results as f64 / secs,
        latency: total.latency.summary(),
        server_cpu,
        actions_per_server_cpu_sec: per_cpu,
        server_cpu_us_per_action: per_cpu.map(|r| 1e6 / r),
    })
}

async fn worker(
    mut conn: WsConn,
    index: usize,
    action: &str,
    data: &serde_json::Value,
    warm_until: Instant,
    measure_until: Instant,
) -> anyhow::Result<Worker> {
    let mut w = Worker::default();
    let mut n: u64 = 0;
    loop {
        let now = Instant::now();
        if now >= measure_until {
            break;
        }
        n += 1;
        let id = format!("b{index}-{n}");
        let message = serde_json::json!({"type": "ACTION", "id": id, "payload": {"action": action, "data": data}});
        let sent = Instant::now();
        conn.send(OP_TEXT, message.to_string().as_bytes()).await?;
        // Skip anything that is not the answer (PING, EVENTs chat.send causes).
        let answer = loop {
            let text = read_text(&mut conn).await?;
            let value: serde_json::Value = serde_json::from_str(&text)?;
            if value["correlation_id"] == id.as_str() {
                break value;
            }
            if value["type"] == "PING" {
                let pong = serde_json::json!({"type": "PONG", "correlation_id": value["id"]});
                conn.send(OP_TEXT, pong.to_string().as_bytes()).await?;
            }
        };
        if sent < warm_until {
            continue;
        }
        if answer["type"] == "ACTION_RESULT" {
            w.results += 1;
            w.latency.record(sent.elapsed());
        } else {
            w.errors += 1;
            if w.first_errors.len() < 5 {
                w.first_errors.push(answer.to_string());
            }
        }
    }
    conn.close(Duration::from_millis(200)).await;
    Ok(w)
}

/// The next text message (pongs sent for pings; a close is an error).
async fn read_text(conn: &mut WsConn) -> anyhow::Result<String> {
    loop {
        while let Some(msg) = conn.reader.next_message()? {
            match msg.opcode {
                OP_TEXT => {
                    return Ok(String::from_utf8_lossy(conn.reader.payload(&msg)).into_owned());
                }
                OP_CLOSE => anyhow::bail!("the server closed the connection"),
                _ => {}
            }
        }
        conn.flush_pongs().await?;
        if conn.fill().await? == 0 {
            anyhow::bail!("connection closed");
        }
    }
}
