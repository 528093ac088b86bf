//! Presence (Switchboard only; docs/protocol.md "Presence", docs/scaling.md):
//!
//! * `presence-storm`: churners loop connect → `CONNECT_ACK` → `SUBSCRIBE` → `SUBSCRIBE_SUCCESS`
//!   → RST on one channel. Run it against a gateway whose config keeps presence for the channel
//!   and one whose config does not: the difference is what presence costs a subscribe and an
//!   unsubscribe. With `--redis-port` it also reads `INFO commandstats` before and after: Redis
//!   commands (scripts' inner calls included) per cycle.
//! * `presence-stats`: fills a channel's presence in Redis with `--members` entries (the layout
//!   of docs/scaling.md, written directly with pipelined `HSET`/`HINCRBY`, no sockets), checks
//!   that the gateway counts them exactly, and times `GET
//!   /api/v1/channels/{channel}/presence/stats` (one keep-alive connection, one request at a
//!   time) and, with `--ws`, the protocol's `PRESENCE_STATS`.
//!
//! `presence-kill` (time from SIGKILL to the last leave event) is in `presence_kill.rs`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use crate::histmem::redis_command;
use crate::http::HttpPoster;
use crate::stats::{CpuSampler, Latency, LatencySummary, ServerCpu};
use crate::target::Target;
use crate::ws::{ConnectOptions, OP_CLOSE, OP_TEXT, WsConn};

/// A structured-protocol client (`/ws`): JSON messages, `PING` answered on the way.
#[derive(Debug)]
pub struct ProtoClient {
    /// The WebSocket connection.
    pub conn: WsConn,
    next_id: u64,
}

impl ProtoClient {
    /// Connects and waits for `CONNECT_ACK`.
    pub async fn connect(target: &Target, timeout: Duration) -> anyhow::Result<ProtoClient> {
        let opts = ConnectOptions {
            read_buffer: 8 * 1024,
            timeout: Some(timeout),
            ..ConnectOptions::default()
        };
        let conn = WsConn::connect(target, &opts)
            .await
            .map_err(|e| anyhow::anyhow!("connect {target}: {e}"))?;
        let mut c = ProtoClient { conn, next_id: 0 };
        let ack = c.next_json().await?;
        anyhow::ensure!(
            ack["type"] == "CONNECT_ACK",
            "expected CONNECT_ACK first, got {ack}"
        );
        Ok(c)
    }

    /// Sends `{type, id, payload}`; returns the id.
    pub async fn send(&mut self, kind: &str, payload: Value) -> anyhow::Result<String> {
        self.next_id += 1;
        let id = format!("b{}", self.next_id);
        let msg = json!({"type": kind, "id": id, "payload": payload});
        self.conn.send(OP_TEXT, &serde_json::to_vec(&msg)?).await?;
        Ok(id)
    }

    /// Subscribes to `channel` and waits for `SUBSCRIBE_SUCCESS`.
    pub async fn subscribe(&mut self, channel: &str, join_leave: bool) -> anyhow::Result<()> {
        let entry = if join_leave {
            json!({"channel": channel, "join_leave": true})
        } else {
            json!(channel)
        };
        self.send("SUBSCRIBE", json!({"subscriptions": [entry]}))
            .await?;
        loop {
            let v = self.next_json().await?;
            match v["type"].as_str() {
                Some("SUBSCRIBE_SUCCESS") => return Ok(()),
                Some("SUBSCRIBE_FAILURE") | Some("ERROR") => {
                    anyhow::bail!("subscribe refused: {v}")
                }
                _ => {}
            }
        }
    }

    /// The next text message as JSON.
    pub async fn next_json(&mut self) -> anyhow::Result<Value> {
        loop {
            match self.conn.reader.next_message() {
                Ok(Some(m)) => match m.opcode {
                    OP_TEXT => {
                        let v: Value = serde_json::from_slice(self.conn.reader.payload(&m))
                            .map_err(|e| anyhow::anyhow!("not JSON from the server: {e}"))?;
                        if v["type"] == "PING" {
                            let pong = json!({"type": "PONG", "correlation_id": v["id"]});
                            self.conn.send(OP_TEXT, &serde_json::to_vec(&pong)?).await?;
                            continue;
                        }
                        return Ok(v);
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
}

/// `INFO commandstats` as command → calls.
pub async fn command_calls(port: u16) -> anyhow::Result<HashMap<String, u64>> {
    let info = redis_command(port, &["INFO", "commandstats"]).await?;
    Ok(parse_commandstats(&info))
}

/// Parses `cmdstat_<name>:calls=N,...` lines.
pub fn parse_commandstats(info: &str) -> HashMap<String, u64> {
    info.lines()
        .filter_map(|l| l.trim().strip_prefix("cmdstat_"))
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let calls = rest
                .strip_prefix("calls=")?
                .split(',')
                .next()?
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}

/// The calls per command between two snapshots (commands that ran at least once).
fn calls_delta(before: &HashMap<String, u64>, after: &HashMap<String, u64>) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

// ---------------------------------------------------------------- presence-storm

/// `presence-storm` settings.
#[derive(Debug, Clone)]
pub struct StormConfig {
    /// The structured endpoint, e.g. `ws://127.0.0.1:8080/ws`.
    pub ws: Target,
    /// The channel every cycle subscribes to.
    pub channel: String,
    /// Churners.
    pub concurrency: usize,
    /// Unmeasured seconds first.
    pub warmup: Duration,
    /// Measured seconds.
    pub duration: Duration,
    /// Wait after the window before the last readings (the last disconnects' clean-up).
    pub settle: Duration,
    /// Ask for join and leave events in each `SUBSCRIBE`.
    pub join_leave: bool,
    /// How long each connection stays subscribed before its RST (0: at once).
    pub hold: Duration,
    /// Redis on 127.0.0.1 to read `INFO commandstats` from.
    pub redis_port: Option<u16>,
    /// What the gateway was configured with (for the report only).
    pub label: String,
    /// Server process(es) to sample.
    pub server_pids: Vec<u32>,
}

/// `presence-storm` result.
#[derive(Debug, Clone, Serialize)]
pub struct StormReport {
    /// Always `"presence-storm"`.
    pub scenario: &'static str,
    /// What the gateway was configured with.
    pub label: String,
    /// Endpoint.
    pub url: String,
    /// Channel.
    pub channel: String,
    /// Churners.
    pub concurrency: usize,
    /// `join_leave: true` in each `SUBSCRIBE`.
    pub join_leave: bool,
    /// Seconds each connection stays subscribed before its RST.
    pub hold_s: f64,
    /// Completed cycles (handshake + `SUBSCRIBE_SUCCESS`) in the window.
    pub cycles: u64,
    /// Failed cycles in the window.
    pub errors: u64,
    /// Window, seconds.
    pub duration_s: f64,
    /// Cycles per second.
    pub cycles_per_sec: f64,
    /// Connect → `SUBSCRIBE_SUCCESS`, per cycle.
    pub cycle_latency: LatencySummary,
    /// Server CPU over the window plus the settle time.
    pub server_cpu: Option<ServerCpu>,
    /// Cycles per server CPU-second.
    pub cycles_per_server_cpu_sec: Option<f64>,
    /// Redis commands in the window plus the settle time (scripts' inner calls included).
    pub redis_calls: Option<u64>,
    /// `redis_calls` / cycles: Redis operations per subscribe + unsubscribe.
    pub redis_calls_per_cycle: Option<f64>,
    /// The commands, most frequent first, with their calls per cycle.
    pub redis_commands_per_cycle: Vec<(String, f64)>,
    /// First few errors.
    pub error_samples: Vec<String>,
}

impl StormReport {
    /// Human-readable summary.
    pub fn human(&self) -> String {
        let mut s = format!(
            "presence-storm {} [{}] — channel {}, {} churners, join_leave {}, hold {:.3} s\n  {} cycles (connect → SUBSCRIBE_SUCCESS → RST) in {:.1} s = {:.0}/s, {} errors\n  cycle latency: {}\n",
            self.url,
            self.label,
            self.channel,
            self.concurrency,
            self.join_leave,
            self.hold_s,
            self.cycles,
            self.duration_s,
            self.cycles_per_sec,
            self.errors,
            self.cycle_latency.human(),
        );
        if let (Some(cpu), Some(per)) = (&self.server_cpu, self.cycles_per_server_cpu_sec) {
            s.push_str(&format!(
                "  server CPU {:.2} s ({:.0}% of a core): {:.0} cycles per server CPU-second\n",
                cpu.cpu_seconds,
                cpu.utilisation * 100.0,
                per
            ));
        }
        if let (Some(calls), Some(per)) = (self.redis_calls, self.redis_calls_per_cycle) {
            let top: Vec<String> = self
                .redis_commands_per_cycle
                .iter()
                .take(8)
                .map(|(c, n)| format!("{c} {n:.2}"))
                .collect();
            s.push_str(&format!(
                "  Redis: {calls} commands = {per:.2} per cycle ({})\n",
                top.join(", ")
            ));
        }
        for e in &self.error_samples {
            s.push_str(&format!("  error: {e}\n"));
        }
        s
    }
}

struct StormShared {
    measuring: AtomicBool,
    stop: AtomicBool,
    cycles: AtomicU64,
    errors: AtomicU64,
}

async fn cycle(cfg: &StormConfig) -> anyhow::Result<()> {
    let mut c = ProtoClient::connect(&cfg.ws, Duration::from_secs(5)).await?;
    tokio::time::timeout(
        Duration::from_secs(5),
        c.subscribe(&cfg.channel, cfg.join_leave),
    )
    .await
    .map_err(|_| anyhow::anyhow!("no SUBSCRIBE_SUCCESS within 5 s"))??;
    if !cfg.hold.is_zero() {
        tokio::time::sleep(cfg.hold).await;
    }
    c.conn.abort();
    Ok(())
}

/// Runs `presence-storm`.
pub async fn run_storm(cfg: StormConfig) -> anyhow::Result<StormReport> {
    let shared = Arc::new(StormShared {
        measuring: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        cycles: AtomicU64::new(0),
        errors: AtomicU64::new(0),
    });
    let mut tasks = Vec::new();
    for _ in 0..cfg.concurrency.max(1) {
        let (shared, cfg) = (shared.clone(), cfg.clone());
        tasks.push(tokio::spawn(async move {
            let mut hist = Latency::new();
            let mut samples = Vec::new();
            while !shared.stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let res = cycle(&cfg).await;
                let measured = shared.measuring.load(Ordering::Relaxed);
                match res {
                    Ok(()) if measured => {
                        hist.record(t.elapsed());
                        shared.cycles.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(()) => {}
                    Err(e) => {
                        if measured {
                            shared.errors.fetch_add(1, Ordering::Relaxed);
                        }
                        if samples.len() < 3 {
                            samples.push(format!("{e:#}"));
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            (hist, samples)
        }));
    }
    tokio::time::sleep(cfg.warmup).await;
    let redis_before = match cfg.redis_port {
        Some(p) => Some(command_calls(p).await?),
        None => None,
    };
    let sampler = CpuSampler::start(&cfg.server_pids);
    let started = Instant::now();
    shared.measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(cfg.duration).await;
    shared.measuring.store(false, Ordering::Relaxed);
    let duration_s = started.elapsed().as_secs_f64();
    let cycles = shared.cycles.load(Ordering::Relaxed);
    let errors = shared.errors.load(Ordering::Relaxed);
    shared.stop.store(true, Ordering::Relaxed);
    let mut hist = Latency::new();
    let mut error_samples = Vec::new();
    for t in tasks {
        let (h, s) = t.await?;
        hist.merge(&h);
        error_samples.extend(s);
    }
    error_samples.truncate(5);
    tokio::time::sleep(cfg.settle).await;
    let server_cpu = sampler.and_then(|s| s.finish());
    let (redis_calls, redis_commands_per_cycle) = match (cfg.redis_port, &redis_before) {
        (Some(p), Some(before)) => {
            let after = command_calls(p).await?;
            let delta = calls_delta(before, &after);
            // The two INFO calls of the measurement itself are not the gateway's.
            let total = delta
                .iter()
                .filter(|(c, _)| c != "info")
                .map(|(_, n)| n)
                .sum::<u64>();
            let per = delta
                .into_iter()
                .filter(|(c, _)| c != "info")
                .map(|(c, n)| (c, n as f64 / cycles.max(1) as f64))
                .collect();
            (Some(total), per)
        }
        _ => (None, Vec::new()),
    };
    Ok(StormReport {
        scenario: "presence-storm",
        label: cfg.label.clone(),
        url: cfg.ws.url(),
        channel: cfg.channel.clone(),
        concurrency: cfg.concurrency,
        join_leave: cfg.join_leave,
        hold_s: cfg.hold.as_secs_f64(),
        cycles,
        errors,
        duration_s,
        cycles_per_sec: cycles as f64 / duration_s,
        cycle_latency: hist.summary(),
        cycles_per_server_cpu_sec: server_cpu
            .filter(|c| c.cpu_seconds > 0.0)
            .map(|c| cycles as f64 / c.cpu_seconds),
        server_cpu,
        redis_calls_per_cycle: redis_calls.map(|n| n as f64 / cycles.max(1) as f64),
        redis_calls,
        redis_commands_per_cycle,
        error_samples,
    })
}

// ---------------------------------------------------------------- presence-stats

/// `presence-stats` settings.
#[derive(Debug, Clone)]
pub struct StatsConfig {
    /// The gateway's HTTP base, e.g. `http://127.0.0.1:8080` (paths are added).
    pub api: Target,
    /// The structured endpoint, for `PRESENCE_STATS` (optional).
    pub ws: Option<Target>,
    /// The channel to fill.
    pub channel: String,
    /// Members to write.
    pub members: usize,
    /// Redis on 127.0.0.1.
    pub redis_port: u16,
    /// The gateway's Redis key prefix (`[broker] prefix`).
    pub redis_prefix: String,
    /// Measured requests (each way).
    pub requests: usize,
    /// Unmeasured requests first.
    pub warmup: usize,
    /// Server process(es) to sample.
    pub server_pids: Vec<u32>,
}

/// `presence-stats` result.
#[derive(Debug, Clone, Serialize)]
pub struct StatsReport {
    /// Always `"presence-stats"`.
    pub scenario: &'static str,
    /// The stats URL.
    pub url: String,
    /// The channel.
    pub channel: String,
    /// Members written.
    pub members: usize,
    /// Distinct users among them.
    pub users: u64,
    /// Time to write them, seconds.
    pub fill_s: f64,
    /// Answers that did not say exactly `members` connections and `users` users.
    pub wrong_answers: u64,
    /// Requests that failed (not 200, I/O).
    pub errors: u64,
    /// `GET …/presence/stats`: request written → answer read.
    pub http_latency: LatencySummary,
    /// `PRESENCE_STATS` written → `PRESENCE_RESULT` read (with `--ws`).
    pub ws_latency: Option<LatencySummary>,
    /// Redis commands per HTTP stats request (`INFO commandstats`, measured separately).
    pub redis_calls_per_request: f64,
    /// Which commands.
    pub redis_commands_per_request: Vec<(String, f64)>,
    /// Server CPU over the measured requests.
    pub server_cpu: Option<ServerCpu>,
    /// First few errors.
    pub error_samples: Vec<String>,
}

impl StatsReport {
    /// Human-readable summary.
    pub fn human(&self) -> String {
        let mut s = format!(
            "presence-stats {} — {} members ({} users) written in {:.2} s; wrong answers {}, errors {}\n  GET presence/stats: {}\n",
            self.url,
            self.members,
            self.users,
            self.fill_s,
            self.wrong_answers,
            self.errors,
            self.http_latency.human(),
        );
        if let Some(ws) = &self.ws_latency {
            s.push_str(&format!("  PRESENCE_STATS: {}\n", ws.human()));
        }
        let cmds: Vec<String> = self
            .redis_commands_per_request
            .iter()
            .map(|(c, n)| format!("{c} {n:.2}"))
            .collect();
        s.push_str(&format!(
            "  Redis per stats request: {:.2} commands ({})\n",
            self.redis_calls_per_request,
            cmds.join(", ")
        ));
        for e in &self.error_samples {
            s.push_str(&format!("  error: {e}\n"));
        }
        s
    }
}

/// Writes `cfg.members` members of instance `bench-filler` into the channel's presence with
/// `switchboard_redis::testkit::fill_presence` (the broker's own layout, docs/scaling.md
/// "Presence"): two connections per user, every tenth anonymous, a lease for the fake
/// instance that outlasts the run (so nobody reaps its members). Returns the distinct users.
async fn fill(cfg: &StatsConfig) -> anyhow::Result<u64> {
    use switchboard::broker::presence::Member;
    use switchboard::{ConnectionAddr, ConnectionId, InstanceId, Room, UserId};

    let instance = InstanceId::new("bench-filler")?;
    let mut users = std::collections::HashSet::new();
    let members: Vec<Member> = (0..cfg.members)
        .map(|k| {
            let addr = ConnectionAddr::new(instance.clone(), ConnectionId(k as u64 + 1));
            let user = (k % 10 != 9).then(|| format!("user-{}", k / 2));
            if let Some(u) = &user {
                users.insert(u.clone());
            }
            Member::new(addr, user.map(UserId::from))
        })
        .collect();
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", cfg.redis_port))?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    switchboard_redis::testkit::fill_presence(
        &mut conn,
        &cfg.redis_prefix,
        &Room::from(cfg.channel.as_str()),
        &members,
        Duration::from_secs(3600),
    )
    .await
    .map_err(|e| anyhow::anyhow!("filling the presence: {e}"))?;
    Ok(users.len() as u64)
}

/// `/api/v1/channels/<channel>/presence/stats`, `:` percent-encoded.
fn stats_path(channel: &str) -> String {
    let enc: String = channel
        .chars()
        .map(|c| match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '-' | '_' | '.' | '~' => c.to_string(),
            other => {
                let mut b = [0u8; 4];
                other
                    .encode_utf8(&mut b)
                    .bytes()
                    .map(|x| format!("%{x:02X}"))
                    .collect()
            }
        })
        .collect();
    format!("/api/v1/channels/{enc}/presence/stats")
}

/// Runs `presence-stats`.
pub async fn run_stats(cfg: StatsConfig) -> anyhow::Result<StatsReport> {
    anyhow::ensure!(cfg.requests > 0, "--requests must be at least 1");
    let filled = Instant::now();
    let users = fill(&cfg).await?;
    let fill_s = filled.elapsed().as_secs_f64();
    let path = stats_path(&cfg.channel);
    let mut poster = HttpPoster::new(cfg.api.clone(), "application/json".to_owned(), Vec::new());
    let mut answer = Vec::new();
    let (mut wrong, mut errors) = (0u64, 0u64);
    let mut error_samples = Vec::new();
    let mut http = Latency::new();
    let want = (cfg.members as u64, users);
    let check = |answer: &[u8], extra: u64, wrong: &mut u64, samples: &mut Vec<String>| {
        let v: Value = serde_json::from_slice(answer).unwrap_or(Value::Null);
        let got = (v["connections"].as_u64(), v["users"].as_u64());
        if got != (Some(want.0 + extra), Some(want.1)) {
            *wrong += 1;
            if samples.len() < 5 {
                samples.push(format!(
                    "answer {v} (expected {} connections, {} users)",
                    want.0 + extra,
                    want.1
                ));
            }
        }
    };
    // Redis commands per request, measured apart (commandstats reads are not in the timings).
    let before = command_calls(cfg.redis_port).await?;
    const PROBE: usize = 100;
    for _ in 0..PROBE {
        answer.clear();
        poster.request("GET", &path, b"", Some(&mut answer)).await?;
    }
    let after = command_calls(cfg.redis_port).await?;
    let delta: Vec<(String, u64)> = calls_delta(&before, &after)
        .into_iter()
        .filter(|(c, _)| c != "info")
        .collect();
    let redis_calls_per_request = delta.iter().map(|(_, n)| *n).sum::<u64>() as f64 / PROBE as f64;
    let redis_commands_per_request = delta
        .into_iter()
        .map(|(c, n)| (c, n as f64 / PROBE as f64))
        .collect();
    let sampler = CpuSampler::start(&cfg.server_pids);
    for i in 0..cfg.warmup + cfg.requests {
        answer.clear();
        let t = Instant::now();
        let res = poster.request("GET", &path, b"", Some(&mut answer)).await;
        let elapsed = t.elapsed();
        match res {
            Ok(200) => {
                if i >= cfg.warmup {
                    http.record(elapsed);
                    check(&answer, 0, &mut wrong, &mut error_samples);
                }
            }
            Ok(s) => {
                errors += 1;
                if error_samples.len() < 5 {
                    error_samples.push(format!("HTTP {s}: {}", String::from_utf8_lossy(&answer)));
                }
            }
            Err(e) => {
                errors += 1;
                if error_samples.len() < 5 {
                    error_samples.push(format!("GET: {e}"));
                }
            }
        }
    }
    let mut ws_latency = None;
    if let Some(ws) = &cfg.ws {
        let mut c = ProtoClient::connect(ws, Duration::from_secs(5)).await?;
        c.subscribe(&cfg.channel, false).await?;
        let mut hist = Latency::new();
        for i in 0..cfg.warmup + cfg.requests {
            let t = Instant::now();
            let id = c
                .send("PRESENCE_STATS", json!({"channel": cfg.channel}))
                .await?;
            let v = loop {
                let v = c.next_json().await?;
                if v["correlation_id"] == id.as_str() {
                    break v;
                }
            };
            let elapsed = t.elapsed();
            anyhow::ensure!(
                v["type"] == "PRESENCE_RESULT",
                "PRESENCE_STATS answered {v}"
            );
            if i >= cfg.warmup {
                hist.record(elapsed);
                // The client itself is one more connection (anonymous: no user); its own
                // arrival may still be on its way during the warm-up.
                let payload = serde_json::to_vec(&v["payload"])?;
                check(&payload, 1, &mut wrong, &mut error_samples);
            }
        }
        c.conn.abort();
        ws_latency = Some(hist.summary());
    }
    Ok(StatsReport {
        scenario: "presence-stats",
        url: cfg.api.with_path(&path).url(),
        channel: cfg.channel.clone(),
        members: cfg.members,
        users,
        fill_s,
        wrong_answers: wrong,
        errors,
        http_latency: http.summary(),
        ws_latency,
        redis_calls_per_request,
        redis_commands_per_request,
        server_cpu: sampler.and_then(|s| s.finish()),
        error_samples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commandstats_and_paths() {
        let info = "# Commandstats\r\ncmdstat_hlen:calls=12,usec=3,usec_per_call=0.25,rejected_calls=0,failed_calls=0\r\ncmdstat_evalsha:calls=4,usec=40\r\n";
        let m = parse_commandstats(info);
        assert_eq!(m.get("hlen"), Some(&12));
        assert_eq!(m.get("evalsha"), Some(&4));
        let before: HashMap<String, u64> = [("hlen".to_owned(), 2)].into();
        assert_eq!(
            calls_delta(&before, &m),
            vec![("hlen".to_owned(), 10), ("evalsha".to_owned(), 4)]
        );
        assert_eq!(
            stats_path("public:big room"),
            "/api/v1/channels/public%3Abig%20room/presence/stats"
        );
    }
}
