//! `switchboard-bench`: loopback-only WebSocket load generator.

// No `unwrap` outside tests: a failure says what went wrong (`expect`)
// or is handled.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use switchboard_bench::action::{self, ActionConfig};
use switchboard_bench::common::source_ips;
use switchboard_bench::echo::{self, EchoConfig, PipelineMode};
use switchboard_bench::fanout::{self, AllToAllConfig, FanoutConfig, Publisher};
use switchboard_bench::histmem::{self, HistMemConfig};
use switchboard_bench::idle::{self, IdleConfig};
use switchboard_bench::payload::Format;
use switchboard_bench::presence::{
    self, StatsConfig as PresenceStatsConfig, StormConfig as PresenceStormConfig,
};
use switchboard_bench::presence_kill::{self, KillConfig};
use switchboard_bench::recovery::{self, RecoveryConfig};
use switchboard_bench::storm::{self, CloseMode, StormConfig};
use switchboard_bench::target::{Scheme, Target, parse_target_with_scheme};
use switchboard_bench::{jwt, probe};

/// Loopback-only WebSocket load generator for Switchboard and its peers.
///
/// Every scenario is bounded in time and in count, and refuses any target whose host is not
/// 127.0.0.0/8, ::1 or localhost.
#[derive(Debug, Parser)]
#[command(name = "switchboard-bench", version)]
struct Cli {
    /// Print the result as one JSON object on stdout (the human summary goes to stderr).
    #[arg(long, global = true)]
    json: bool,
    /// Worker threads for the generator (1 = current-thread runtime, the default; the
    /// generator is meant to be pinned to one core).
    #[arg(long, global = true, default_value_t = 1)]
    threads: usize,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// N connections echoing messages (uWebSockets load_test semantics with --in-flight 1).
    Echo(EchoArgs),
    /// C concurrent churners looping connect → upgrade → close.
    ConnectStorm(StormArgs),
    /// Hold N idle connections and measure the server's VmRSS growth per connection.
    Idle(IdleArgs),
    /// One publisher → N subscribers (or --all-to-all).
    Fanout(FanoutArgs),
    /// Fan-out with subscribers spread over two instances (give --url twice).
    CrossInstance(FanoutArgs),
    /// Try one upgrade; exit 0 on 101, 2 on another HTTP status, 1 if unreachable.
    Probe(ProbeArgs),
    /// Streams: a client misses N publications on a channel with history and recovers them
    /// (Switchboard's structured protocol at /ws and its HTTP publish API).
    Recovery(RecoveryArgs),
    /// Streams: memory per channel after N publications to each of M channels (HTTP API).
    HistoryMemory(HistMemArgs),
    /// Structured-protocol ACTION round trips (one in flight per connection).
    Action(ActionArgs),
    /// Presence: churners loop connect → SUBSCRIBE → RST on one channel (presence on or off
    /// is the gateway's config); with --redis-port, Redis commands per cycle.
    PresenceStorm(PresenceStormArgs),
    /// Presence: fill a channel's presence in Redis and time GET …/presence/stats (and
    /// PRESENCE_STATS with --ws).
    PresenceStats(PresenceStatsArgs),
    /// Presence: SIGKILL one gateway and time the last leave event on another.
    PresenceKill(PresenceKillArgs),
}

#[derive(Debug, Args)]
struct PresenceStormArgs {
    /// The structured endpoint, e.g. ws://127.0.0.1:8080/ws
    #[arg(long, value_parser = parse_ws)]
    url: Target,
    /// The channel every cycle subscribes to.
    #[arg(long, default_value = "public:bench-presence")]
    channel: String,
    /// Concurrent churners.
    #[arg(long, short = 'c', default_value_t = 16)]
    concurrency: usize,
    /// Unmeasured seconds first.
    #[arg(long, value_parser = parse_secs, default_value = "1")]
    warmup: Duration,
    /// Measured seconds.
    #[arg(long, value_parser = parse_secs, default_value = "5")]
    duration: Duration,
    /// Wait after the window before the last CPU and Redis readings.
    #[arg(long, value_parser = parse_secs, default_value = "1")]
    settle: Duration,
    /// Ask for join and leave events in each SUBSCRIBE.
    #[arg(long)]
    join_leave: bool,
    /// How long each connection stays subscribed before its RST.
    #[arg(long, value_parser = parse_secs, default_value = "0")]
    hold: Duration,
    /// Redis on 127.0.0.1 (INFO commandstats before and after).
    #[arg(long)]
    redis_port: Option<u16>,
    /// What the gateway runs with, for the report (e.g. "presence on, memory").
    #[arg(long, default_value = "")]
    label: String,
    /// Server process(es) to sample.
    #[arg(long)]
    server_pid: Vec<u32>,
}

#[derive(Debug, Args)]
struct PresenceStatsArgs {
    /// The gateway's HTTP address, e.g. http://127.0.0.1:8080
    #[arg(long, value_parser = parse_http)]
    api: Target,
    /// The structured endpoint, to time PRESENCE_STATS too.
    #[arg(long, value_parser = parse_ws)]
    ws: Option<Target>,
    /// The channel to fill (it must keep presence).
    #[arg(long, default_value = "public:bench-big")]
    channel: String,
    /// Members written to Redis.
    #[arg(long, default_value_t = 100_000)]
    members: usize,
    /// Redis on 127.0.0.1.
    #[arg(long)]
    redis_port: u16,
    /// The gateway's Redis prefix ([broker] prefix).
    #[arg(long, default_value = "sb")]
    redis_prefix: String,
    /// Measured requests (each way).
    #[arg(long, default_value_t = 5000)]
    requests: usize,
    /// Unmeasured requests first.
    #[arg(long, default_value_t = 200)]
    warmup: usize,
    /// Server process(es) to sample.
    #[arg(long)]
    server_pid: Vec<u32>,
    /// Hard limit for the whole run.
    #[arg(long, value_parser = parse_secs, default_value = "120")]
    max_time: Duration,
}

#[derive(Debug, Args)]
struct PresenceKillArgs {
    /// The victim's structured endpoint.
    #[arg(long, value_parser = parse_ws)]
    victim: Target,
    /// The survivor's structured endpoint.
    #[arg(long, value_parser = parse_ws)]
    survivor: Target,
    /// The victim's PID: SIGKILL is sent to it (a process you started).
    #[arg(long)]
    kill_pid: u32,
    /// Clients on the victim.
    #[arg(long, short = 'n', default_value_t = 100)]
    clients: usize,
    /// A channel with presence and join/leave events.
    #[arg(long, default_value = "public:bench-kill")]
    channel: String,
    /// Longest wait for the joins, and for the leaves after the kill.
    #[arg(long, value_parser = parse_secs, default_value = "30")]
    timeout: Duration,
    /// The gateways' lease_ttl (reported only).
    #[arg(long, value_parser = parse_secs, default_value = "8")]
    lease_ttl: Duration,
    /// Accepted for bench/run's uniformity; not sampled.
    #[arg(long)]
    server_pid: Vec<u32>,
}

#[derive(Debug, Args)]
struct RecoveryArgs {
    /// The structured endpoint, e.g. ws://127.0.0.1:8080/ws
    #[arg(long, value_parser = parse_ws)]
    url: Target,
    /// The publish URL, e.g. http://127.0.0.1:8080/api/v1/publish
    #[arg(long, value_parser = parse_http)]
    api: Target,
    /// Extra HTTP header line for the API, e.g. "Authorization: Bearer KEY" (repeatable).
    #[arg(long)]
    http_header: Vec<String>,
    /// A channel with history the client may subscribe to.
    #[arg(long, default_value = "public:bench-recovery")]
    channel: String,
    /// Publications missed per iteration.
    #[arg(long, default_value_t = 100)]
    messages: usize,
    /// Padding bytes in each publication's data (with 0, an EVENT arrives as about 200 bytes).
    #[arg(long, default_value_t = 0)]
    pad: usize,
    /// Measured iterations.
    #[arg(long, default_value_t = 200)]
    iterations: usize,
    /// Unmeasured iterations first.
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// Longest one recovery may take.
    #[arg(long, value_parser = parse_secs, default_value = "10")]
    timeout: Duration,
    /// Server process(es) to sample.
    #[arg(long)]
    server_pid: Vec<u32>,
    /// Hard limit for the whole run.
    #[arg(long, value_parser = parse_secs, default_value = "300")]
    max_time: Duration,
}

#[derive(Debug, Args)]
struct HistMemArgs {
    /// The publish URL, e.g. http://127.0.0.1:8080/api/v1/publish
    #[arg(long, value_parser = parse_http)]
    api: Target,
    /// Extra HTTP header line for the API (repeatable).
    #[arg(long)]
    http_header: Vec<String>,
    /// Channels to fill.
    #[arg(long, default_value_t = 1000)]
    channels: usize,
    /// Publications per channel.
    #[arg(long, default_value_t = 100)]
    entries: usize,
    /// Bytes per publication (raw text).
    #[arg(long, short = 's', default_value_t = 200)]
    size: usize,
    /// Channel names are PREFIX<n>.
    #[arg(long, default_value = "public:mem-")]
    prefix: String,
    /// Keep-alive connections publishing at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Channels filled before the first reading (not counted).
    #[arg(long, default_value_t = 20)]
    warmup_channels: usize,
    /// Wait before each memory reading.
    #[arg(long, value_parser = parse_secs, default_value = "1")]
    settle: Duration,
    /// The gateway process (VmRSS, RssAnon).
    #[arg(long)]
    server_pid: Option<u32>,
    /// A redis-server on 127.0.0.1:PORT to read INFO memory from.
    #[arg(long)]
    redis_port: Option<u16>,
    /// Hard limit for the whole run.
    #[arg(long, value_parser = parse_secs, default_value = "300")]
    max_time: Duration,
}

#[derive(Debug, Args)]
struct ActionArgs {
    /// A structured endpoint (loopback only), e.g. ws://127.0.0.1:8080/ws.
    #[arg(long, value_parser = parse_ws)]
    url: Target,
    /// Connections, each with one action in flight.
    #[arg(long, short = 'n', default_value_t = 16)]
    connections: usize,
    /// The action's name.
    #[arg(long, default_value = "chat.send")]
    action: String,
    /// The action's data, as JSON.
    #[arg(long, default_value = r#"{"room":"public:bench","text":"hello"}"#)]
    data: String,
    /// Measurement window.
    #[arg(long, value_parser = parse_secs, default_value = "5")]
    duration: Duration,
    /// Round trips before measuring.
    #[arg(long, value_parser = parse_secs, default_value = "1")]
    warmup: Duration,
    /// Server process(es) to sample.
    #[arg(long)]
    server_pid: Vec<u32>,
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, mult) = if let Some(v) = s.strip_suffix("ms") {
        (v, 0.001)
    } else if let Some(v) = s.strip_suffix('s') {
        (v, 1.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|e| format!("bad duration {s:?}: {e}"))?;
    if !(0.0..=3600.0).contains(&(v * mult)) {
        return Err(format!("duration {s:?} out of range (0..3600 s)"));
    }
    Ok(Duration::from_secs_f64(v * mult))
}

fn parse_ws(s: &str) -> Result<Target, String> {
    parse_target_with_scheme(s, Scheme::Ws).map_err(|e| e.to_string())
}

fn parse_http(s: &str) -> Result<Target, String> {
    parse_target_with_scheme(s, Scheme::Http).map_err(|e| e.to_string())
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    Text,
    Binary,
}

#[derive(Debug, Args)]
struct EchoArgs {
    /// WebSocket URL (loopback only), e.g. ws://127.0.0.1:9001/ws/echo
    #[arg(long, value_parser = parse_ws)]
    url: Target,
    /// Connections.
    #[arg(long, short = 'c', default_value_t = 100)]
    connections: usize,
    /// Payload bytes per message.
    #[arg(long, short = 's', default_value_t = 20)]
    size: usize,
    /// Messages in flight per connection (pipelining depth; 1 = load_test).
    #[arg(long, default_value_t = 1)]
    in_flight: usize,
    /// With --in-flight > 1: `window` replaces every echo at once (sliding window), `batch`
    /// sends --in-flight messages in one write and waits for all of them.
    #[arg(long, value_enum, default_value_t = PipelineMode::Window)]
    pipeline: PipelineMode,
    /// Frame type.
    #[arg(long, value_enum, default_value_t = Mode::Binary)]
    mode: Mode,
    /// Measurement window (e.g. 5, 5s, 500ms).
    #[arg(long, value_parser = parse_secs, default_value = "5")]
    duration: Duration,
    /// Traffic before the window (not counted).
    #[arg(long, value_parser = parse_secs, default_value = "1")]
    warmup: Duration,
    /// Stop after this many messages in total.
    #[arg(long)]
    max_messages: Option<u64>,
    /// Server process(es) whose CPU to sample over the window.
    #[arg(long)]
    server_pid: Vec<u32>,
    /// Concurrent connection attempts.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    /// Offer permessage-deflate and inflate compressed echoes.
    #[arg(long)]
    deflate: bool,
}

#[derive(Debug, Args)]
struct StormArgs {
    /// WebSocket URL (loopback only).
    #[arg(long, value_parser = parse_ws)]
    url: Target,
    /// Concurrent churners.
    #[arg(long, short = 'c', default_value_t = 32)]
    concurrency: usize,
    /// Duration.
    #[arg(long, value_parser = parse_secs, default_value = "5")]
    duration: Duration,
    /// Send `Authorization: Bearer TOKEN`.
    #[arg(long, conflicts_with = "jwt_hs256_secret")]
    bearer: Option<String>,
    /// Make an HS256 JWT with this secret and send it as a bearer token.
    #[arg(long)]
    jwt_hs256_secret: Option<String>,
    /// `sub` claim of the generated JWT.
    #[arg(long, default_value = "bench")]
    jwt_sub: String,
    /// How each connection is ended.
    #[arg(long, value_enum, default_value_t = CloseMode::Rst)]
    close: CloseMode,
    /// Spread churners over this many source addresses 127.0.0.2.. (0 = kernel's choice).
    #[arg(long, default_value_t = 0)]
    source_ips: usize,
    /// Stop after this many handshakes.
    #[arg(long)]
    max_handshakes: Option<u64>,
    /// Server process(es) to sample.
    #[arg(long)]
    server_pid: Vec<u32>,
    /// Offer permessage-deflate in every handshake.
    #[arg(long)]
    deflate: bool,
}

#[derive(Debug, Args)]
struct IdleArgs {
    /// WebSocket URL (loopback only).
    #[arg(long, value_parser = parse_ws)]
    url: Target,
    /// Connections to hold (at most 200,000).
    #[arg(long, short = 'c', default_value_t = 5000)]
    connections: usize,
    /// Source addresses 127.0.0.2.. to spread over (default: one per 20,000 connections).
    #[arg(long)]
    source_ips: Option<usize>,
    /// Server process whose /proc/<pid>/status VmRSS to read.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Wait after connecting before reading memory.
    #[arg(long, value_parser = parse_secs, default_value = "1")]
    settle: Duration,
    /// Keep holding after the reading.
    #[arg(long, value_parser = parse_secs, default_value = "0")]
    hold: Duration,
    /// Concurrent connection attempts.
    #[arg(long, default_value_t = 128)]
    connect_concurrency: usize,
    /// Offer permessage-deflate on every connection.
    #[arg(long)]
    deflate: bool,
}

#[derive(Debug, Args)]
struct FanoutArgs {
    /// Subscriber URL(s); subscribers are spread over them round-robin (cross-instance: two).
    #[arg(long = "url", value_parser = parse_ws, required = true)]
    urls: Vec<Target>,
    /// Subscribers (all-to-all: clients).
    #[arg(long, short = 'n', default_value_t = 1000)]
    subscribers: usize,
    /// Publish as a WebSocket client to this URL (default: the first --url).
    #[arg(long, value_parser = parse_ws, conflicts_with = "publish_http")]
    publish_url: Option<Target>,
    /// Publish with HTTP POSTs to this URL instead.
    #[arg(long, value_parser = parse_http)]
    publish_http: Option<Target>,
    /// HTTP body template; `{payload}` is replaced by the text payload (inserted raw).
    #[arg(long, default_value = r#"{"topic":"bench","data":"{payload}"}"#)]
    http_body: String,
    /// HTTP Content-Type.
    #[arg(long, default_value = "application/json")]
    http_content_type: String,
    /// Extra HTTP header line for the publisher, e.g. "Authorization: Bearer x" (repeatable).
    #[arg(long)]
    http_header: Vec<String>,
    /// Text sent by every subscriber after connecting (e.g. a subscribe command).
    #[arg(long)]
    subscribe_msg: Option<String>,
    /// Message size in bytes (the header may make a message longer).
    #[arg(long, short = 's', default_value_t = 64)]
    size: usize,
    /// Payload format (default: text; binary for --all-to-all; json: ~chat traffic, for
    /// compression runs).
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Publishes per second (0 = as fast as the window allows).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Messages published but not yet delivered to every subscriber, at most.
    #[arg(long, default_value_t = 8)]
    window: usize,
    /// Publishing time / measurement window.
    #[arg(long, value_parser = parse_secs, default_value = "5")]
    duration: Duration,
    /// Wait after subscribing before publishing.
    #[arg(long, value_parser = parse_secs, default_value = "500ms")]
    settle: Duration,
    /// Time allowed for the last deliveries after publishing stops.
    #[arg(long, value_parser = parse_secs, default_value = "2")]
    drain: Duration,
    /// A message not complete after this long stops holding a window slot.
    #[arg(long, value_parser = parse_secs, default_value = "1")]
    msg_timeout: Duration,
    /// Stop after this many publishes (all-to-all: rounds).
    #[arg(long)]
    max_messages: Option<u64>,
    /// All-to-all: every client sends one message per round, every client receives all.
    #[arg(long)]
    all_to_all: bool,
    /// All-to-all: warm-up before the window.
    #[arg(long, value_parser = parse_secs, default_value = "500ms")]
    warmup: Duration,
    /// All-to-all: a round not complete after this long aborts the run.
    #[arg(long, value_parser = parse_secs, default_value = "2")]
    round_timeout: Duration,
    /// Server process(es) to sample (cross-instance: both).
    #[arg(long)]
    server_pid: Vec<u32>,
    /// Other process(es) to sample separately, e.g. the redis-server behind the gateways.
    #[arg(long)]
    aux_pid: Vec<u32>,
    /// Concurrent connection attempts.
    #[arg(long, default_value_t = 128)]
    connect_concurrency: usize,
    /// Offer permessage-deflate (subscribers and publisher) and inflate what arrives
    /// compressed; the publisher itself sends uncompressed.
    #[arg(long)]
    deflate: bool,
}

#[derive(Debug, Args)]
struct ProbeArgs {
    /// WebSocket URL (loopback only).
    #[arg(long, value_parser = parse_ws)]
    url: Target,
    /// Per-attempt time limit.
    #[arg(long, value_parser = parse_secs, default_value = "2")]
    timeout: Duration,
    /// Keep retrying while the server is unreachable, up to this long.
    #[arg(long, value_parser = parse_secs, default_value = "0")]
    wait: Duration,
}

/// A scenario's outcome: JSON value, human text, and whether it is a failure.
struct Outcome {
    json: serde_json::Value,
    human: String,
    failed: bool,
}

impl Command {
    /// Hard wall-clock limit for the whole command.
    fn hard_limit(&self) -> Duration {
        let slack = Duration::from_secs(60);
        match self {
            Command::Echo(a) => a.warmup + a.duration + slack,
            Command::ConnectStorm(a) => a.duration + slack,
            Command::Idle(a) => a.settle + a.hold + slack + slack,
            Command::Fanout(a) | Command::CrossInstance(a) => {
                a.settle + a.warmup + a.duration + a.drain + slack
            }
            Command::Probe(a) => a.wait + a.timeout + Duration::from_secs(5),
            Command::Recovery(a) => a.max_time,
            Command::HistoryMemory(a) => a.max_time,
            Command::Action(a) => a.warmup + a.duration + slack,
            Command::PresenceStorm(a) => a.warmup + a.duration + a.settle + slack,
            Command::PresenceStats(a) => a.max_time,
            Command::PresenceKill(a) => a.timeout * 2 + slack,
        }
    }
}

async fn run(cmd: Command) -> anyhow::Result<Outcome> {
    match cmd {
        Command::Echo(a) => {
            let r = echo::run(EchoConfig {
                target: a.url,
                connections: a.connections,
                size: a.size,
                in_flight: a.in_flight,
                pipeline: a.pipeline,
                binary: matches!(a.mode, Mode::Binary),
                duration: a.duration,
                warmup: a.warmup,
                max_messages: a.max_messages,
                server_pids: a.server_pid,
                connect_concurrency: a.connect_concurrency,
                deflate: a.deflate,
            })
            .await?;
            Ok(Outcome {
                human: r.human(),
                failed: r.mismatches > 0 || r.messages == 0,
                json: serde_json::to_value(&r)?,
            })
        }
        Command::ConnectStorm(a) => {
            let (bearer, auth_label) = if let Some(secret) = &a.jwt_hs256_secret {
                let now = switchboard_bench::payload::unix_nanos() / 1_000_000_000;
                (
                    Some(jwt::hs256_token(secret.as_bytes(), &a.jwt_sub, now, 3600)),
                    "hs256",
                )
            } else if let Some(b) = a.bearer {
                (Some(b), "bearer")
            } else {
                (None, "none")
            };
            let ips = if a.url.addr.is_ipv4() {
                source_ips(a.source_ips)
            } else {
                Vec::new()
            };
            let r = storm::run(StormConfig {
                target: a.url,
                concurrency: a.concurrency,
                duration: a.duration,
                bearer,
                auth_label,
                close: a.close,
                source_ips: ips,
                max_handshakes: a.max_handshakes,
                server_pids: a.server_pid,
                deflate: a.deflate,
            })
            .await?;
            Ok(Outcome {
                human: r.human(),
                failed: r.handshakes == 0,
                json: serde_json::to_value(&r)?,
            })
        }
        Command::Idle(a) => {
            anyhow::ensure!(a.connections <= 200_000, "at most 200,000 idle connections");
            let ips = if a.url.addr.is_ipv4() {
                source_ips(
                    a.source_ips
                        .unwrap_or(a.connections.div_ceil(20_000))
                        .max(1),
                )
            } else {
                anyhow::ensure!(
                    a.connections <= 20_000,
                    "an IPv6 target cannot spread source addresses; use at most 20,000 connections"
                );
                Vec::new()
            };
            let r = idle::run(IdleConfig {
                target: a.url,
                connections: a.connections,
                source_ips: ips,
                server_pid: a.server_pid,
                settle: a.settle,
                hold: a.hold,
                connect_concurrency: a.connect_concurrency,
                deflate: a.deflate,
            })
            .await?;
            Ok(Outcome {
                human: r.human(),
                failed: r.connect.established == 0,
                json: serde_json::to_value(&r)?,
            })
        }
        Command::Fanout(a) => run_fanout(a, "fanout").await,
        Command::PresenceStorm(a) => {
            let r = presence::run_storm(PresenceStormConfig {
                ws: a.url,
                channel: a.channel,
                concurrency: a.concurrency,
                warmup: a.warmup,
                duration: a.duration,
                settle: a.settle,
                join_leave: a.join_leave,
                hold: a.hold,
                redis_port: a.redis_port,
                label: a.label,
                server_pids: a.server_pid,
            })
            .await?;
            Ok(Outcome {
                human: r.human(),
                failed: r.cycles == 0 || r.errors > r.cycles / 100,
                json: serde_json::to_value(&r)?,
            })
        }
        Command::PresenceStats(a) => {
            let r = presence::run_stats(PresenceStatsConfig {
                api: a.api,
                ws: a.ws,
                channel: a.channel,
                members: a.members,
                redis_port: a.redis_port,
                redis_prefix: a.redis_prefix,
                requests: a.requests,
                warmup: a.warmup,
                server_pids: a.server_pid,
            })
            .await?;
            Ok(Outcome {
                human: r.human(),
                failed: r.errors > 0 || r.wrong_answers > 0,
                json: serde_json::to_value(&r)?,
            })
        }
        Command::PresenceKill(a) => {
            let _ = a.server_pid;
            let r = presence_kill::run(KillConfig {
                victim: a.victim,
                survivor: a.survivor,
                kill_pid: a.kill_pid,
                clients: a.clients,
                channel: a.channel,
                timeout: a.timeout,
                lease_ttl: a.lease_ttl,
            })
            .await?;
            Ok(Outcome {
                human: r.human(),
                failed: r.kill_to_last_leave_s.is_none(),
                json: serde_json::to_value(&r)?,
            })
        }
        Command::Recovery(a) => {
            let r = recovery::run(RecoveryConfig {
                ws: a.url,
                api: a.api,
                api_headers: a.http_header,
                channel: a.channel,
                messages: a.messages,
                pad: a.pad,
                iterations: a.iterations,
                warmup: a.warmup,
                timeout: a.timeout,
                server_pids: a.server_pid,
            })
            .await?;
            Ok(Outcome {
                human: r.human(),
                failed: r.recovered == 0 || r.failed > 0 || r.wrong > 0,
                json: serde_json::to_value(&r)?,
            })
        }
        Command::HistoryMemory(a) => {
            let r = histmem::run(HistMemConfig {
                api: a.api,
                api_headers: a.http_header,
                channels: a.channels,
                entries: a.entries,
                size: a.size,
                prefix: a.prefix,
                concurrency: a.concurrency,
                server_pid: a.server_pid,
                redis_port: a.redis_port,
                warmup_channels: a.warmup_channels,
                settle: a.settle,
            })
            .await?;
            Ok(Outcome {
                human: r.human(),
                failed: r.published == 0 || r.publish_errors > 0,
                json: serde_json::to_value(&r)?,
            })
        }
        Command::CrossInstance(a) => {
            anyhow::ensure!(
                a.urls.len() == 2,
                "cross-instance needs exactly two --url (one per instance)"
            );
            anyhow::ensure!(!a.all_to_all, "cross-instance has no all-to-all mode");
            run_fanout(a, "cross-instance").await
        }
        Command::Probe(a) => {
            let deadline = std::time::Instant::now() + a.wait;
            loop {
                match probe(&a.url, a.timeout).await {
                    Ok(status) => {
                        let ok = status == 101;
                        return Ok(Outcome {
                            json: serde_json::json!({"scenario": "probe", "url": a.url.url(), "status": status}),
                            human: format!("probe {}: HTTP {status}\n", a.url),
                            failed: !ok,
                        });
                    }
                    Err(e) => {
                        if std::time::Instant::now() >= deadline {
                            anyhow::bail!("probe {}: {e}", a.url);
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        }
        Command::Action(a) => run_action(a).await,
    }
}

async fn run_action(a: ActionArgs) -> anyhow::Result<Outcome> {
    let data: serde_json::Value =
        serde_json::from_str(&a.data).map_err(|e| anyhow::anyhow!("--data: {e}"))?;
    let r = action::run(ActionConfig {
        target: a.url,
        connections: a.connections,
        action: a.action,
        data,
        duration: a.duration,
        warmup: a.warmup,
        server_pids: a.server_pid,
    })
    .await?;
    Ok(Outcome {
        human: r.human(),
        failed: r.results == 0 || r.errors > 0,
        json: serde_json::to_value(&r)?,
    })
}

async fn run_fanout(a: FanoutArgs, scenario: &'static str) -> anyhow::Result<Outcome> {
    if a.all_to_all {
        anyhow::ensure!(a.urls.len() == 1, "--all-to-all takes one --url");
        let r = fanout::run_all_to_all(AllToAllConfig {
            target: a.urls[0].clone(),
            clients: a.subscribers,
            size: a.size,
            format: a.format.unwrap_or(Format::Binary),
            duration: a.duration,
            warmup: a.warmup,
            round_timeout: a.round_timeout,
            max_rounds: a.max_messages,
            server_pids: a.server_pid,
            connect_concurrency: a.connect_concurrency,
            deflate: a.deflate,
        })
        .await?;
        return Ok(Outcome {
            human: r.human(),
            failed: r.rounds == 0,
            json: serde_json::to_value(&r)?,
        });
    }
    let publisher = match a.publish_http {
        Some(target) => Publisher::Http {
            target,
            body_template: a.http_body,
            content_type: a.http_content_type,
            headers: a.http_header,
        },
        None => Publisher::Ws(a.publish_url.unwrap_or_else(|| a.urls[0].clone())),
    };
    let r = fanout::run(FanoutConfig {
        sub_targets: a.urls,
        subscribers: a.subscribers,
        subscribe_msg: a.subscribe_msg,
        publisher,
        size: a.size,
        format: a.format.unwrap_or(Format::Text),
        rate: a.rate,
        window: a.window,
        msg_timeout: a.msg_timeout,
        duration: a.duration,
        settle: a.settle,
        drain: a.drain,
        max_messages: a.max_messages,
        server_pids: a.server_pid,
        aux_pids: a.aux_pid,
        connect_concurrency: a.connect_concurrency,
        scenario,
        deflate: a.deflate,
    })
    .await?;
    Ok(Outcome {
        human: r.human(),
        failed: r.deliveries == 0,
        json: serde_json::to_value(&r)?,
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Thousands of sockets for idle and fan-out.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let rt = if cli.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cli.threads)
            .enable_all()
            .build()
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let limit = cli.command.hard_limit();
    let json = cli.json;
    let result = rt.block_on(async move { tokio::time::timeout(limit, run(cli.command)).await });
    // Do not wait for stray tasks (e.g. connections the server never closed).
    rt.shutdown_timeout(Duration::from_millis(200));
    match result {
        Err(_) => {
            eprintln!("error: hard time limit of {limit:?} reached");
            ExitCode::from(3)
        }
        Ok(Err(e)) => {
            eprintln!("error: {e:#}");
            if json {
                println!("{}", serde_json::json!({"error": format!("{e:#}")}));
            }
            ExitCode::from(1)
        }
        Ok(Ok(out)) => {
            if json {
                eprint!("{}", out.human);
                println!("{}", out.json);
            } else {
                print!("{}", out.human);
            }
            if out.failed {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}
