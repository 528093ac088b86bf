//! `recovery`: how long a client that missed N publications on a channel with history takes
//! to get them back (Switchboard's streams, docs/protocol.md "Streams and recovery").
//!
//! One client speaks the structured protocol at `/ws`. It subscribes to a channel with history
//! and notes the stream's epoch and offset from `SUBSCRIBE_SUCCESS`. Then, per iteration:
//!
//! 1. it disconnects (close frame);
//! 2. N publications are made through the HTTP API (`POST /api/v1/publish`, one `EVENT` each,
//!    keep-alive, one after the other; every answer must be 2xx and carry the next offset);
//! 3. it reconnects, waits for `CONNECT_ACK`, and sends `SUBSCRIBE` with
//!    `{"channel": .., "recover": {"epoch", "offset"}}`;
//! 4. the time from writing that `SUBSCRIBE` to reading the N-th replayed publication is one
//!    sample. `SUBSCRIBE_SUCCESS` must say `recovered: true`, and the publications must be
//!    exactly offsets `offset+1 ..= offset+N`, in order, each once, with the data published.
//!
//! Its position is then the last offset it read, and the next iteration starts.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use crate::http::HttpPoster;
use crate::stats::{CpuSampler, Latency, LatencySummary, ServerCpu, cpu_ticks};
use crate::target::Target;
use crate::ws::{ConnectOptions, OP_CLOSE, OP_TEXT, WsConn};

/// Recovery settings.
#[derive(Debug, Clone)]
pub struct RecoveryConfig {
    /// The structured endpoint, e.g. `ws://127.0.0.1:8080/ws`.
    pub ws: Target,
    /// The publish URL, e.g. `http://127.0.0.1:8080/api/v1/publish`.
    pub api: Target,
    /// Extra HTTP header lines for the API (e.g. `Authorization: Bearer ...`).
    pub api_headers: Vec<String>,
    /// A channel with history that the client may subscribe to.
    pub channel: String,
    /// Publications missed per iteration (must not exceed the channel's size or the gateway's
    /// recovery limit).
    pub messages: usize,
    /// Bytes of padding in each publication's data (the EVENT as received is about 200 bytes
    /// plus this).
    pub pad: usize,
    /// Measured iterations.
    pub iterations: usize,
    /// Iterations before those (not measured).
    pub warmup: usize,
    /// Longest one recovery may take before it counts as failed.
    pub timeout: Duration,
    /// Server processes to sample.
    pub server_pids: Vec<u32>,
}

/// Recovery result.
#[derive(Debug, Clone, Serialize)]
pub struct RecoveryReport {
    /// Always `"recovery"`.
    pub scenario: &'static str,
    /// Structured endpoint.
    pub url: String,
    /// Publish URL.
    pub api: String,
    /// The channel.
    pub channel: String,
    /// Publications missed per iteration.
    pub messages: usize,
    /// Measured iterations attempted.
    pub iterations: usize,
    /// Warm-up iterations.
    pub warmup: usize,
    /// Iterations that recovered every publication, in order, each once.
    pub recovered: u64,
    /// Iterations answered `recovered: false` (with the reasons below).
    pub not_recovered: u64,
    /// Iterations that failed otherwise (timeout, wrong offset, wrong data, I/O).
    pub failed: u64,
    /// `reason`s of `recovered: false`.
    pub not_recovered_reasons: Vec<String>,
    /// The stream's epoch seen first, and whether it ever changed.
    pub epoch: String,
    /// The epoch changed during the run.
    pub epoch_changed: bool,
    /// Average size of a replayed publication as received (bytes of the text frame).
    pub publication_bytes: f64,
    /// Publications replayed in measured iterations.
    pub replayed: u64,
    /// Publications that arrived with an unexpected offset or data (each fails its iteration).
    pub wrong: u64,
    /// `SUBSCRIBE` written → N-th replayed publication read, per measured iteration.
    pub latency: LatencySummary,
    /// `SUBSCRIBE` written → `SUBSCRIBE_SUCCESS` read.
    pub ack_latency: LatencySummary,
    /// TCP connect started → N-th replayed publication read (handshake and `CONNECT_ACK`
    /// included).
    pub reconnect_latency: LatencySummary,
    /// One HTTP publish (request written → answer read).
    pub publish_latency: LatencySummary,
    /// Publishes that did not answer 2xx with the next offset.
    pub publish_errors: u64,
    /// Wall time of the measured iterations, seconds.
    pub duration_s: f64,
    /// Server CPU over the measured iterations (publishing included).
    pub server_cpu: Option<ServerCpu>,
    /// Server CPU spent between writing `SUBSCRIBE` and reading the N-th publication, per
    /// recovery, in microseconds (summed over iterations from `/proc/<pid>/stat`; clock-tick
    /// resolution per iteration, so only the average is meaningful).
    pub server_cpu_us_per_recovery: Option<f64>,
    /// First few errors.
    pub errors: Vec<String>,
}

impl RecoveryReport {
    /// Human-readable summary.
    pub fn human(&self) -> String {
        let mut s = format!(
            "recovery {} (publish {}) — channel {}, {} publications missed per iteration, {} iterations (+{} warm-up)\n  recovered {}, not recovered {} {:?}, failed {}, wrong publications {}, publish errors {}\n  SUBSCRIBE → last replayed publication: {}\n  SUBSCRIBE → SUBSCRIBE_SUCCESS: {}\n  connect → last replayed publication: {}\n  one HTTP publish: {}\n  publication size {:.0} B, epoch {}{}\n",
            self.url,
            self.api,
            self.channel,
            self.messages,
            self.iterations,
            self.warmup,
            self.recovered,
            self.not_recovered,
            self.not_recovered_reasons,
            self.failed,
            self.wrong,
            self.publish_errors,
            self.latency.human(),
            self.ack_latency.human(),
            self.reconnect_latency.human(),
            self.publish_latency.human(),
            self.publication_bytes,
            self.epoch,
            if self.epoch_changed {
                " (changed during the run)"
            } else {
                ""
            },
        );
        if let Some(us) = self.server_cpu_us_per_recovery {
            s.push_str(&format!(
                "  server CPU per recovery: {:.0} µs (SUBSCRIBE → last publication)\n",
                us
            ));
        }
        for e in &self.errors {
            s.push_str(&format!("  error: {e}\n"));
        }
        s
    }
}

/// A stream position.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Position {
    epoch: String,
    offset: u64,
}

/// One recovery's timings.
#[derive(Debug, Clone, Copy)]
struct Timings {
    to_last: Duration,
    to_ack: Duration,
    from_connect: Duration,
    cpu_ticks: u64,
    bytes: u64,
}

enum Outcome {
    Recovered(Timings),
    NotRecovered(String, Position),
}

struct Client {
    conn: WsConn,
    next_id: u64,
}

impl Client {
    async fn connect(target: &Target) -> anyhow::Result<Client> {
        let opts = ConnectOptions {
            read_buffer: 64 * 1024,
            timeout: Some(Duration::from_secs(10)),
            ..ConnectOptions::default()
        };
        let conn = WsConn::connect(target, &opts)
            .await
            .map_err(|e| anyhow::anyhow!("connect {target}: {e}"))?;
        let mut c = Client { conn, next_id: 0 };
        // The server sends CONNECT_ACK at once.
        let ack = c.next_json().await?;
        anyhow::ensure!(
            ack["type"] == "CONNECT_ACK",
            "expected CONNECT_ACK first, got {ack}"
        );
        Ok(c)
    }

    /// Sends `SUBSCRIBE` for one channel entry; returns when it was written.
    async fn subscribe(&mut self, entry: Value) -> anyhow::Result<Instant> {
        self.next_id += 1;
        let msg = json!({
            "type": "SUBSCRIBE",
            "id": format!("bench-{}", self.next_id),
            "payload": {"subscriptions": [entry]},
        });
        let text = serde_json::to_vec(&msg)?;
        self.conn.send(OP_TEXT, &text).await?;
        Ok(Instant::now())
    }

    /// The next text message as JSON (answering pings on the way). Also returns its size.
    async fn next_message(&mut self) -> anyhow::Result<(Value, usize)> {
        loop {
            match self.conn.reader.next_message() {
                Ok(Some(m)) => match m.opcode {
                    OP_TEXT => {
                        let bytes = self.conn.reader.payload(&m);
                        let v: Value = serde_json::from_slice(bytes)
                            .map_err(|e| anyhow::anyhow!("not JSON from the server: {e}"))?;
                        let n = bytes.len();
                        if v["type"] == "PING" {
                            // The protocol's heartbeat: answer it.
                            let pong = json!({"type": "PONG", "correlation_id": v["id"]});
                            let pong = serde_json::to_vec(&pong)?;
                            self.conn.send(OP_TEXT, &pong).await?;
                            continue;
                        }
                        return Ok((v, n));
                    }
                    OP_CLOSE => anyhow::bail!("the server closed the connection"),
                    _ => {
                        self.conn.flush_pongs().await?;
                        continue;
                    }
                },
                Ok(None) => {}
                Err(e) => anyhow::bail!("{e}"),
            }
            if self.conn.fill().await? == 0 {
                anyhow::bail!("the server closed the connection");
            }
        }
    }

    async fn next_json(&mut self) -> anyhow::Result<Value> {
        Ok(self.next_message().await?.0)
    }
}

/// Subscribes without recovery and returns the stream's position.
async fn first_subscribe(target: &Target, channel: &str) -> anyhow::Result<(Client, Position)> {
    let mut c = Client::connect(target).await?;
    c.subscribe(json!(channel)).await?;
    loop {
        let v = c.next_json().await?;
        match v["type"].as_str() {
            Some("SUBSCRIBE_SUCCESS") => {
                let p = &v["payload"];
                let (Some(epoch), Some(offset)) = (p["epoch"].as_str(), p["offset"].as_u64())
                else {
                    anyhow::bail!(
                        "SUBSCRIBE_SUCCESS without epoch and offset: does {channel} keep history? {v}"
                    );
                };
                let pos = Position {
                    epoch: epoch.to_owned(),
                    offset,
                };
                return Ok((c, pos));
            }
            Some("SUBSCRIBE_FAILURE") | Some("ERROR") => anyhow::bail!("subscribe refused: {v}"),
            _ => {}
        }
    }
}

/// One publication's body.
fn publish_body(channel: &str, i: u64, pad: &str) -> Vec<u8> {
    let body = json!({
        "target": {"room": channel},
        "message": {"type": "EVENT", "event": "bench.recovery", "data": {"i": i, "pad": pad}},
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

/// Reconnects, recovers from `pos`, and checks what arrives. `first_i` is the data `i` of the
/// first missed publication.
async fn recover(
    cfg: &RecoveryConfig,
    pos: &Position,
    first_i: u64,
    wrong: &mut u64,
) -> anyhow::Result<(Client, Outcome)> {
    let t_connect = Instant::now();
    let mut c = Client::connect(&cfg.ws).await?;
    let ticks0: u64 = cfg
        .server_pids
        .iter()
        .map(|&p| cpu_ticks(p).unwrap_or(0))
        .sum();
    let t0 = c
        .subscribe(json!({
            "channel": cfg.channel,
            "recover": {"epoch": pos.epoch, "offset": pos.offset},
        }))
        .await?;
    let mut ack = None;
    let mut got = 0usize;
    let mut bytes = 0u64;
    let top = pos.offset + cfg.messages as u64;
    while got < cfg.messages || ack.is_none() {
        let (v, n) = c.next_message().await?;
        match v["type"].as_str() {
            Some("SUBSCRIBE_SUCCESS") => {
                let p = &v["payload"];
                if p["recovered"] != true {
                    let reason = p["reason"].as_str().unwrap_or("(no reason)").to_owned();
                    let now = Position {
                        epoch: p["epoch"].as_str().unwrap_or_default().to_owned(),
                        offset: p["offset"].as_u64().unwrap_or(0),
                    };
                    return Ok((c, Outcome::NotRecovered(reason, now)));
                }
                anyhow::ensure!(
                    p["epoch"] == pos.epoch.as_str() && p["offset"].as_u64() == Some(top),
                    "SUBSCRIBE_SUCCESS names another position than the stream's: {v} (expected epoch {}, offset {top})",
                    pos.epoch
                );
                ack = Some(t0.elapsed());
            }
            Some("SUBSCRIBE_FAILURE") | Some("ERROR") => anyhow::bail!("recovery refused: {v}"),
            Some("EVENT") => {
                let expect_offset = pos.offset + got as u64 + 1;
                let expect_i = first_i + got as u64;
                if v["offset"].as_u64() != Some(expect_offset)
                    || v["payload"]["data"]["i"].as_u64() != Some(expect_i)
                    || v["payload"]["channel"] != cfg.channel.as_str()
                {
                    *wrong += 1;
                    anyhow::bail!(
                        "publication {} of the replay: expected offset {expect_offset} with i = {expect_i}, got offset {} with i = {}",
                        got + 1,
                        v["offset"],
                        v["payload"]["data"]["i"]
                    );
                }
                got += 1;
                bytes += n as u64;
            }
            _ => {}
        }
    }
    let to_last = t0.elapsed();
    let ticks1: u64 = cfg
        .server_pids
        .iter()
        .map(|&p| cpu_ticks(p).unwrap_or(0))
        .sum();
    Ok((
        c,
        Outcome::Recovered(Timings {
            to_last,
            to_ack: ack.unwrap_or_default(),
            from_connect: t_connect.elapsed(),
            cpu_ticks: ticks1.saturating_sub(ticks0),
            bytes,
        }),
    ))
}

/// Runs the recovery scenario.
pub async fn run(cfg: RecoveryConfig) -> anyhow::Result<RecoveryReport> {
    anyhow::ensure!(cfg.messages > 0, "--messages must be at least 1");
    anyhow::ensure!(cfg.iterations > 0, "--iterations must be at least 1");
    let (mut client, mut pos) = first_subscribe(&cfg.ws, &cfg.channel).await?;
    let first_epoch = pos.epoch.clone();
    let mut epoch_changed = false;
    let mut poster = HttpPoster::new(
        cfg.api.clone(),
        "application/json".to_owned(),
        cfg.api_headers.clone(),
    );
    let pad = "x".repeat(cfg.pad);
    let mut next_i = 0u64;
    let mut hist = Latency::new();
    let mut ack_hist = Latency::new();
    let mut reconnect_hist = Latency::new();
    let mut pub_hist = Latency::new();
    let (mut recovered, mut not_recovered, mut failed) = (0u64, 0u64, 0u64);
    let mut reasons: Vec<String> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    let (mut replayed, mut wrong, mut publish_errors) = (0u64, 0u64, 0u64);
    let mut bytes = 0u64;
    let mut recovery_ticks = 0u64;
    let mut sampler = None;
    let mut measured_start = Instant::now();
    let path = cfg.api.path.clone();
    let mut answer = Vec::new();
    for it in 0..cfg.warmup + cfg.iterations {
        let measured = it >= cfg.warmup;
        if it == cfg.warmup {
            sampler = CpuSampler::start(&cfg.server_pids);
            measured_start = Instant::now();
        }
        client.conn.close(Duration::from_millis(500)).await;
        // The missed publications.
        let first_i = next_i;
        let mut publish_ok = true;
        for k in 0..cfg.messages as u64 {
            let body = publish_body(&cfg.channel, next_i, &pad);
            next_i += 1;
            let t = Instant::now();
            let res = poster
                .request("POST", &path, &body, Some(&mut answer))
                .await;
            let elapsed = t.elapsed();
            let expected = pos.offset + k + 1;
            let problem = match res {
                Ok(s) if (200..300).contains(&s) => {
                    let v: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
                    if v["offset"].as_u64() == Some(expected) && v["epoch"] == pos.epoch.as_str() {
                        None
                    } else {
                        Some(format!(
                            "publish answered {} (expected offset {expected} in epoch {})",
                            String::from_utf8_lossy(&answer),
                            pos.epoch
                        ))
                    }
                }
                Ok(s) => Some(format!(
                    "publish answered HTTP {s}: {}",
                    String::from_utf8_lossy(&answer)
                )),
                Err(e) => Some(format!("publish: {e}")),
            };
            if measured {
                pub_hist.record(elapsed);
            }
            if let Some(p) = problem {
                publish_ok = false;
                publish_errors += 1;
                if errors.len() < 5 {
                    errors.push(p);
                }
                break;
            }
        }
        if publish_ok {
            let attempt =
                tokio::time::timeout(cfg.timeout, recover(&cfg, &pos, first_i, &mut wrong)).await;
            match attempt {
                Ok(Ok((c, Outcome::Recovered(t)))) => {
                    client = c;
                    pos.offset += cfg.messages as u64;
                    if measured {
                        recovered += 1;
                        replayed += cfg.messages as u64;
                        bytes += t.bytes;
                        recovery_ticks += t.cpu_ticks;
                        hist.record(t.to_last);
                        ack_hist.record(t.to_ack);
                        reconnect_hist.record(t.from_connect);
                    }
                    continue;
                }
                Ok(Ok((c, Outcome::NotRecovered(reason, now)))) => {
                    client = c;
                    if measured {
                        not_recovered += 1;
                    }
                    if !reasons.contains(&reason) {
                        reasons.push(reason);
                    }
                    // The subscription is live from the stream's position.
                    if now.epoch != pos.epoch {
                        epoch_changed = true;
                    }
                    pos = now;
                    continue;
                }
                Ok(Err(e)) => {
                    if errors.len() < 5 {
                        errors.push(format!("iteration {it}: {e:#}"));
                    }
                }
                Err(_) => {
                    if errors.len() < 5 {
                        errors.push(format!(
                            "iteration {it}: no complete recovery within {:?}",
                            cfg.timeout
                        ));
                    }
                }
            }
        }
        if measured {
            failed += 1;
        }
        // Start again from wherever the stream is now.
        let (c, p) = first_subscribe(&cfg.ws, &cfg.channel).await?;
        if p.epoch != pos.epoch {
            epoch_changed = true;
        }
        client = c;
        pos = p;
    }
    client.conn.close(Duration::from_millis(200)).await;
    let duration_s = measured_start.elapsed().as_secs_f64();
    let server_cpu = sampler.and_then(|s| s.finish());
    let tck = crate::stats::clock_ticks() as f64;
    let server_cpu_us_per_recovery = (!cfg.server_pids.is_empty() && recovered > 0)
        .then(|| recovery_ticks as f64 / tck * 1e6 / recovered as f64);
    Ok(RecoveryReport {
        scenario: "recovery",
        url: cfg.ws.url(),
        api: cfg.api.url(),
        channel: cfg.channel.clone(),
        messages: cfg.messages,
        iterations: cfg.iterations,
        warmup: cfg.warmup,
        recovered,
        not_recovered,
        failed,
        not_recovered_reasons: reasons,
        epoch: first_epoch,
        epoch_changed,
        publication_bytes: if replayed > 0 {
            bytes as f64 / replayed as f64
        } else {
            0.0
        },
        replayed,
        wrong,
        latency: hist.summary(),
        ack_latency: ack_hist.summary(),
        reconnect_latency: reconnect_hist.summary(),
        publish_latency: pub_hist.summary(),
        publish_errors,
        duration_s,
        server_cpu,
        server_cpu_us_per_recovery,
        errors,
    })
}
