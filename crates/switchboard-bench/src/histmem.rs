//! `history-memory`: what keeping history costs per channel.
//!
//! Publishes `--entries` raw texts of `--size` bytes to each of `--channels` channels through
//! the HTTP API (`POST /api/v1/publish`, `{"target":{"room":..},"text":..}`), nobody
//! subscribed, and reads memory before and after: the gateway's VmRSS and RssAnon
//! (`/proc/<pid>/status`, `--server-pid`) and, with `--redis-port`, Redis's `used_memory`
//! (`INFO memory`) and key count (`DBSIZE`). Run it once against a gateway that keeps history
//! for those channels and once against one that does not: the difference is the history.
//!
//! Redis is only ever reached on 127.0.0.1.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::http::HttpPoster;
use crate::stats::{Latency, LatencySummary, status_kib};
use crate::target::Target;

/// Settings.
#[derive(Debug, Clone)]
pub struct HistMemConfig {
    /// The publish URL, e.g. `http://127.0.0.1:8080/api/v1/publish`.
    pub api: Target,
    /// Extra HTTP header lines.
    pub api_headers: Vec<String>,
    /// Channels to fill.
    pub channels: usize,
    /// Publications per channel.
    pub entries: usize,
    /// Bytes per publication (raw text).
    pub size: usize,
    /// Channel names are `<prefix><n>`.
    pub prefix: String,
    /// Keep-alive connections publishing at once.
    pub concurrency: usize,
    /// The gateway.
    pub server_pid: Option<u32>,
    /// A redis-server on 127.0.0.1 to read `INFO memory` from.
    pub redis_port: Option<u16>,
    /// Channels filled before the first reading (not counted: they warm up the paths and the
    /// allocator).
    pub warmup_channels: usize,
    /// Wait before each reading.
    pub settle: Duration,
}

/// Memory of one process or server, before and after.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Delta {
    /// Before, bytes.
    pub before: u64,
    /// After, bytes.
    pub after: u64,
    /// `(after - before) / channels`, bytes (negative if memory went down).
    pub per_channel: f64,
    /// `(after - before) / (channels × entries)`, bytes.
    pub per_entry: f64,
}

impl Delta {
    fn new(before: u64, after: u64, channels: usize, entries: usize) -> Delta {
        let d = after as f64 - before as f64;
        Delta {
            before,
            after,
            per_channel: d / channels.max(1) as f64,
            per_entry: d / (channels * entries).max(1) as f64,
        }
    }
}

/// Result.
#[derive(Debug, Clone, Serialize)]
pub struct HistMemReport {
    /// Always `"history-memory"`.
    pub scenario: &'static str,
    /// Publish URL.
    pub api: String,
    /// Channels filled.
    pub channels: usize,
    /// Publications per channel.
    pub entries: usize,
    /// Bytes per publication.
    pub entry_bytes: usize,
    /// Publications made (counted ones, warm-up excluded).
    pub published: u64,
    /// Publishes that did not answer 2xx.
    pub publish_errors: u64,
    /// How many publishes answered with an `offset` (the channel keeps history).
    pub with_offset: u64,
    /// Publishing time, seconds.
    pub seconds: f64,
    /// Publishes per second.
    pub publishes_per_sec: f64,
    /// One publish.
    pub publish_latency: LatencySummary,
    /// The gateway's VmRSS.
    pub vmrss: Option<Delta>,
    /// The gateway's RssAnon.
    pub rss_anon: Option<Delta>,
    /// Redis `used_memory`.
    pub redis_used_memory: Option<Delta>,
    /// Redis key count before and after.
    pub redis_keys: Option<(u64, u64)>,
    /// `GET /api/v1/channels/<first channel>/history?limit=1000` after the run: status and the
    /// number of publications it lists.
    pub history_check: Option<(u16, usize)>,
    /// First few errors.
    pub errors: Vec<String>,
}

impl HistMemReport {
    /// Human-readable summary.
    pub fn human(&self) -> String {
        let mut s = format!(
            "history-memory {} — {} channels × {} publications × {} B: published {} ({} errors, {} with an offset) in {:.1} s ({:.0}/s)\n  one publish: {}\n",
            self.api,
            self.channels,
            self.entries,
            self.entry_bytes,
            self.published,
            self.publish_errors,
            self.with_offset,
            self.seconds,
            self.publishes_per_sec,
            self.publish_latency.human(),
        );
        let line = |name: &str, d: &Option<Delta>| {
            d.map(|d| {
                format!(
                    "  {name}: {} → {} bytes: {:.0} B per channel, {:.1} B per publication\n",
                    d.before, d.after, d.per_channel, d.per_entry
                )
            })
            .unwrap_or_default()
        };
        s.push_str(&line("gateway VmRSS", &self.vmrss));
        s.push_str(&line("gateway RssAnon", &self.rss_anon));
        s.push_str(&line("redis used_memory", &self.redis_used_memory));
        if let Some((a, b)) = self.redis_keys {
            s.push_str(&format!("  redis keys: {a} → {b}\n"));
        }
        if let Some((st, n)) = self.history_check {
            s.push_str(&format!(
                "  history of the first channel: HTTP {st}, {n} publications\n"
            ));
        }
        for e in &self.errors {
            s.push_str(&format!("  error: {e}\n"));
        }
        s
    }
}

/// Sends one command (as a RESP array of bulk strings) to Redis on 127.0.0.1 and returns the
/// reply's payload: a bulk string's bytes, or an integer's / simple string's text.
pub async fn redis_command(port: u16, args: &[&str]) -> anyhow::Result<String> {
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    let mut s = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr)).await??;
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    let read = async {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let n = s.read(&mut chunk).await?;
            anyhow::ensure!(n > 0, "redis closed the connection");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(v) = parse_reply(&buf)? {
                return Ok(v);
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read).await?
}

/// Parses one complete RESP reply, `Ok(None)` if more bytes are needed.
fn parse_reply(buf: &[u8]) -> anyhow::Result<Option<String>> {
    let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") else {
        return Ok(None);
    };
    let line = std::str::from_utf8(&buf[1..eol])?;
    match buf.first() {
        Some(b'+') | Some(b':') => Ok(Some(line.to_owned())),
        Some(b'-') => anyhow::bail!("redis error: {line}"),
        Some(b'$') => {
            let len: usize = line.parse()?;
            let start = eol + 2;
            if buf.len() < start + len + 2 {
                return Ok(None);
            }
            Ok(Some(
                String::from_utf8_lossy(&buf[start..start + len]).into_owned(),
            ))
        }
        _ => anyhow::bail!("unexpected redis reply {:?}", String::from_utf8_lossy(buf)),
    }
}

/// `used_memory` from `INFO memory`.
async fn redis_used_memory(port: u16) -> anyhow::Result<u64> {
    let info = redis_command(port, &["INFO", "memory"]).await?;
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no used_memory in INFO memory"))
}

struct Shared {
    next: AtomicUsize,
    published: AtomicU64,
    errors: AtomicU64,
    with_offset: AtomicU64,
}

/// What one fill did.
struct Filled {
    published: u64,
    errors: u64,
    with_offset: u64,
    hist: Latency,
    messages: Vec<String>,
}

/// Publishes `entries` texts to every channel `from..to`, `concurrency` channels at a time.
async fn fill(cfg: &HistMemConfig, prefix: &str, from: usize, to: usize) -> Filled {
    let shared = Arc::new(Shared {
        next: AtomicUsize::new(from),
        published: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        with_offset: AtomicU64::new(0),
    });
    let mut tasks = Vec::new();
    for _ in 0..cfg.concurrency.max(1) {
        let shared = shared.clone();
        let cfg = cfg.clone();
        let prefix = prefix.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut poster = HttpPoster::new(
                cfg.api.clone(),
                "application/json".to_owned(),
                cfg.api_headers.clone(),
            );
            let path = cfg.api.path.clone();
            let mut hist = Latency::new();
            let mut errors = Vec::new();
            let mut answer = Vec::new();
            loop {
                let ch = shared.next.fetch_add(1, Ordering::Relaxed);
                if ch >= to {
                    break;
                }
                let room = format!("{prefix}{ch}");
                for e in 0..cfg.entries {
                    // Exactly `size` bytes of text, different per publication.
                    let mut text = format!("{room}/{e}/");
                    text.truncate(cfg.size);
                    while text.len() < cfg.size {
                        text.push('x');
                    }
                    let body = json!({"target": {"room": room}, "text": text}).to_string();
                    let t = Instant::now();
                    match poster
                        .request("POST", &path, body.as_bytes(), Some(&mut answer))
                        .await
                    {
                        Ok(s) if (200..300).contains(&s) => {
                            hist.record(t.elapsed());
                            shared.published.fetch_add(1, Ordering::Relaxed);
                            if answer.windows(9).any(|w| w == b"\"offset\":") {
                                shared.with_offset.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Ok(s) => {
                            shared.errors.fetch_add(1, Ordering::Relaxed);
                            if errors.len() < 3 {
                                errors.push(format!(
                                    "publish answered HTTP {s}: {}",
                                    String::from_utf8_lossy(&answer)
                                ));
                            }
                        }
                        Err(e) => {
                            shared.errors.fetch_add(1, Ordering::Relaxed);
                            if errors.len() < 3 {
                                errors.push(format!("publish: {e}"));
                            }
                        }
                    }
                }
            }
            (hist, errors)
        }));
    }
    let mut hist = Latency::new();
    let mut errors = Vec::new();
    for t in tasks {
        match t.await {
            Ok((h, e)) => {
                hist.merge(&h);
                errors.extend(e);
            }
            Err(e) => errors.push(format!("task failed: {e}")),
        }
    }
    errors.truncate(5);
    Filled {
        published: shared.published.load(Ordering::Relaxed),
        errors: shared.errors.load(Ordering::Relaxed),
        with_offset: shared.with_offset.load(Ordering::Relaxed),
        hist,
        messages: errors,
    }
}

struct Reading {
    vmrss: Option<u64>,
    anon: Option<u64>,
    redis: Option<u64>,
    keys: Option<u64>,
}

async fn read_memory(cfg: &HistMemConfig) -> Reading {
    tokio::time::sleep(cfg.settle).await;
    let kib = |field: &str| {
        cfg.server_pid
            .and_then(|p| status_kib(p, field).ok())
            .map(|k| k * 1024)
    };
    let (redis, keys) = match cfg.redis_port {
        Some(port) => (
            redis_used_memory(port).await.ok(),
            redis_command(port, &["DBSIZE"])
                .await
                .ok()
                .and_then(|v| v.parse().ok()),
        ),
        None => (None, None),
    };
    Reading {
        vmrss: kib("VmRSS"),
        anon: kib("RssAnon"),
        redis,
        keys,
    }
}

/// Runs the scenario.
pub async fn run(cfg: HistMemConfig) -> anyhow::Result<HistMemReport> {
    anyhow::ensure!(
        cfg.channels > 0 && cfg.entries > 0,
        "need channels and entries"
    );
    if cfg.warmup_channels > 0 {
        let warm = format!("{}warmup-", cfg.prefix);
        let warm = fill(&cfg, &warm, 0, cfg.warmup_channels).await;
        if let Some(e) = warm.messages.first() {
            anyhow::bail!("warm-up publishing failed: {e}");
        }
    }
    let before = read_memory(&cfg).await;
    let t0 = Instant::now();
    let filled = fill(&cfg, &cfg.prefix, 0, cfg.channels).await;
    let seconds = t0.elapsed().as_secs_f64();
    let after = read_memory(&cfg).await;
    let delta = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => Some(Delta::new(a, b, cfg.channels, cfg.entries)),
        _ => None,
    };
    // Does the first channel keep what was published?
    let mut poster = HttpPoster::new(
        cfg.api.clone(),
        "application/json".to_owned(),
        cfg.api_headers.clone(),
    );
    let mut page = Vec::new();
    let history_path = format!(
        "/api/v1/channels/{}0/history?limit=1000",
        cfg.prefix.replace(':', "%3A")
    );
    let history_check = match poster
        .request("GET", &history_path, b"", Some(&mut page))
        .await
    {
        Ok(st) => {
            let v: serde_json::Value = serde_json::from_slice(&page).unwrap_or_default();
            let n = v["publications"].as_array().map(Vec::len).unwrap_or(0);
            Some((st, n))
        }
        Err(_) => None,
    };
    let published = filled.published;
    Ok(HistMemReport {
        scenario: "history-memory",
        api: cfg.api.url(),
        channels: cfg.channels,
        entries: cfg.entries,
        entry_bytes: cfg.size,
        published,
        publish_errors: filled.errors,
        with_offset: filled.with_offset,
        seconds,
        publishes_per_sec: published as f64 / seconds.max(1e-9),
        publish_latency: filled.hist.summary(),
        vmrss: delta(before.vmrss, after.vmrss),
        rss_anon: delta(before.anon, after.anon),
        redis_used_memory: delta(before.redis, after.redis),
        redis_keys: before.keys.zip(after.keys),
        history_check,
        errors: filled.messages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp_replies() {
        assert_eq!(parse_reply(b":42\r\n").unwrap(), Some("42".to_owned()));
        assert_eq!(parse_reply(b"+OK\r\n").unwrap(), Some("OK".to_owned()));
        assert_eq!(parse_reply(b"$5\r\nhel").unwrap(), None);
        assert_eq!(
            parse_reply(b"$5\r\nhello\r\n").unwrap(),
            Some("hello".to_owned())
        );
        assert!(parse_reply(b"-ERR no\r\n").is_err());
        assert_eq!(parse_reply(b":4").unwrap(), None);
    }

    #[test]
    fn deltas() {
        let d = Delta::new(1000, 3000, 10, 100);
        assert_eq!(d.per_channel, 200.0);
        assert_eq!(d.per_entry, 2.0);
        assert!(Delta::new(3000, 1000, 10, 1).per_channel < 0.0);
    }
}
