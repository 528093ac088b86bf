//! `fanout` and `cross-instance`: one publisher → N subscribers; and the all-to-all mode
//! (uWebSockets' broadcast_test shape).
//!
//! Messages are self-describing (see [`crate::payload`]), so every subscriber computes the
//! one-way latency of every delivery and accounts for missing, duplicated and out-of-order
//! messages per publisher.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::{Notify, watch};

use crate::common::{ConnectPhase, connect_many};
use crate::http::HttpPoster;
use crate::payload::{self, Format, Stamp};
use crate::seq::{Observed, SeqTotals, SeqTracker};
use crate::stats::{CpuSampler, Latency, LatencySummary, ServerCpu, fmt_rate};
use crate::target::Target;
use crate::ws::{ConnectOptions, OP_BINARY, OP_CLOSE, OP_TEXT, WsConn, encode_frame};

/// How messages are published.
#[derive(Debug, Clone)]
pub enum Publisher {
    /// As a WebSocket client sending to this URL (its own echoes are read and discarded).
    Ws(Target),
    /// As HTTP POSTs of a body template in which `{payload}` is replaced by the text payload.
    Http {
        /// The POST URL.
        target: Target,
        /// Body with a `{payload}` placeholder (inserted raw, so quote it for JSON).
        body_template: String,
        /// Content-Type header.
        content_type: String,
        /// Extra header lines.
        headers: Vec<String>,
    },
}

/// Fan-out settings.
#[derive(Debug, Clone)]
pub struct FanoutConfig {
    /// Subscriber URLs; subscribers are spread over them round-robin.
    pub sub_targets: Vec<Target>,
    /// Number of subscribers.
    pub subscribers: usize,
    /// Sent by each subscriber right after connecting (e.g. a subscribe command).
    pub subscribe_msg: Option<String>,
    /// The publisher.
    pub publisher: Publisher,
    /// Message size in bytes (minimum; the header may make it longer).
    pub size: usize,
    /// Payload encoding.
    pub format: Format,
    /// Publishes per second (0 = as fast as the window allows).
    pub rate: f64,
    /// Messages published but not yet delivered to every subscriber, at most.
    pub window: usize,
    /// A message not complete after this long no longer holds a window slot.
    pub msg_timeout: Duration,
    /// Publishing time.
    pub duration: Duration,
    /// Wait after connecting (and subscribing) before publishing.
    pub settle: Duration,
    /// Time allowed after publishing stops for the last deliveries.
    pub drain: Duration,
    /// Stop after this many publishes.
    pub max_messages: Option<u64>,
    /// Server processes to sample.
    pub server_pids: Vec<u32>,
    /// Other processes to sample separately (e.g. the redis-server behind the gateways).
    pub aux_pids: Vec<u32>,
    /// Concurrent connection attempts.
    pub connect_concurrency: usize,
    /// `"fanout"` or `"cross-instance"`.
    pub scenario: &'static str,
    /// Offer permessage-deflate and inflate what the server compresses.
    pub deflate: bool,
}

/// Per-URL delivery latency.
#[derive(Debug, Clone, Serialize)]
pub struct PerUrl {
    /// Subscriber URL.
    pub url: String,
    /// Subscribers connected to it.
    pub subscribers: usize,
    /// Deliveries inside the window.
    pub deliveries: u64,
    /// Publish → delivery latency.
    pub latency: LatencySummary,
}

/// Fan-out result.
#[derive(Debug, Clone, Serialize)]
pub struct FanoutReport {
    /// `"fanout"` or `"cross-instance"`.
    pub scenario: &'static str,
    /// Subscriber URLs.
    pub urls: Vec<String>,
    /// Publisher description.
    pub publisher: String,
    /// Subscribers requested.
    pub subscribers: usize,
    /// Connect phase.
    pub connect: ConnectPhase,
    /// Message size actually sent (bytes).
    pub message_bytes: usize,
    /// Payload encoding.
    pub format: Format,
    /// Whether permessage-deflate was offered (`--deflate`).
    pub deflate_offered: bool,
    /// Subscribers on which permessage-deflate was agreed.
    pub deflate_negotiated: usize,
    /// Requested publish rate (0 = unlimited).
    pub rate: f64,
    /// Window.
    pub window: usize,
    /// Publishing time, seconds.
    pub duration_s: f64,
    /// Messages published.
    pub published: u64,
    /// Publishes that failed (HTTP status ≥ 300 or I/O error).
    pub publish_errors: u64,
    /// Publish request latency (HTTP publisher only).
    pub publish_latency: Option<LatencySummary>,
    /// Deliveries inside the window.
    pub deliveries: u64,
    /// Deliveries / duration.
    pub deliveries_per_sec: f64,
    /// Of the deliveries in the window, those that arrived compressed (RSV1).
    pub compressed_deliveries: u64,
    /// Bytes the subscribers read from their sockets in the window (WebSocket frames: headers
    /// and payload as sent, compressed or not; TCP/IP headers not included).
    pub wire_bytes: u64,
    /// `wire_bytes / deliveries`.
    pub wire_bytes_per_delivery: Option<f64>,
    /// Messages delivered to every subscriber.
    pub complete_messages: u64,
    /// Publish → delivery latency, every delivery in the window.
    pub latency: LatencySummary,
    /// Publish → delivery to the last subscriber, per complete message.
    pub last_subscriber_latency: LatencySummary,
    /// Per subscriber URL.
    pub per_url: Vec<PerUrl>,
    /// Missing / duplicated / out-of-order accounting.
    pub sequence: SeqTotals,
    /// Messages that did not parse as a bench payload (e.g. subscribe acks).
    pub foreign_messages: u64,
    /// Subscribers that failed or were closed during the run.
    pub subscriber_errors: u64,
    /// First few error messages.
    pub errors: Vec<String>,
    /// Server CPU over the window.
    pub server_cpu: Option<ServerCpu>,
    /// Deliveries per server CPU-second.
    pub deliveries_per_server_cpu_sec: Option<f64>,
    /// Server CPU per delivery, microseconds.
    pub server_cpu_us_per_delivery: Option<f64>,
    /// The generator's own CPU over the window.
    pub generator_cpu: Option<ServerCpu>,
    /// CPU of the `--aux-pid` processes over the window (e.g. redis-server).
    pub aux_cpu: Option<ServerCpu>,
    /// Deliveries per CPU-second of the servers and the `--aux-pid` processes together.
    pub deliveries_per_server_and_aux_cpu_sec: Option<f64>,
    /// Stream offsets carried by the deliveries (channels with history).
    pub offsets: OffsetTotals,
}

/// What the subscribers saw of stream offsets: a channel with history delivers a JSON object
/// with `"offset":N` first, N growing by one per publication.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct OffsetTotals {
    /// Deliveries (all, not only in the window) that carried an offset.
    pub deliveries_with_offset: u64,
    /// Deliveries whose offset was not the previous one plus one on the same subscriber.
    pub non_consecutive: u64,
}

impl FanoutReport {
    /// Human-readable summary.
    pub fn human(&self) -> String {
        let mut s = format!(
            "{} {:?} — publisher {}, {} subscribers ({} connected), {} B {:?} messages, rate {}, window {}, {:.1} s\n  published {} ({} errors), deliveries {} = {} /s, complete messages {}\n  latency (every delivery): {}\n  latency (last subscriber): {}\n  missing {}, duplicated {}, out-of-order {}, foreign {}, subscriber errors {}\n",
            self.scenario,
            self.urls,
            self.publisher,
            self.subscribers,
            self.connect.established,
            self.message_bytes,
            self.format,
            if self.rate > 0.0 {
                format!("{}/s", self.rate)
            } else {
                "unlimited".to_owned()
            },
            self.window,
            self.duration_s,
            self.published,
            self.publish_errors,
            self.deliveries,
            fmt_rate(self.deliveries_per_sec),
            self.complete_messages,
            self.latency.human(),
            self.last_subscriber_latency.human(),
            self.sequence.missing,
            self.sequence.duplicated,
            self.sequence.out_of_order,
            self.foreign_messages,
            self.subscriber_errors,
        );
        if let Some(p) = &self.publish_latency {
            s.push_str(&format!("  publish request latency: {}\n", p.human()));
        }
        if self.deflate_offered {
            s.push_str(&format!(
                "  permessage-deflate agreed with {} of {} subscribers; {} of {} deliveries compressed\n",
                self.deflate_negotiated,
                self.connect.established,
                self.compressed_deliveries,
                self.deliveries
            ));
        }
        if let Some(b) = self.wire_bytes_per_delivery {
            s.push_str(&format!(
                "  on the wire: {b:.1} B per delivery ({} B read by subscribers in the window; payload {} B)\n",
                self.wire_bytes, self.message_bytes
            ));
        }
        if self.per_url.len() > 1 {
            for u in &self.per_url {
                s.push_str(&format!(
                    "  {} ({} subscribers): {}\n",
                    u.url,
                    u.subscribers,
                    u.latency.human()
                ));
            }
        }
        if let (Some(cpu), Some(r)) = (self.server_cpu, self.deliveries_per_server_cpu_sec) {
            s.push_str(&format!(
                "  server CPU: {:.2} s ({:.0}% of a core), {} deliveries per server CPU-second\n",
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
        if let (Some(a), Some(r)) = (self.aux_cpu, self.deliveries_per_server_and_aux_cpu_sec) {
            s.push_str(&format!(
                "  aux CPU: {:.2} s ({:.0}% of a core); {} deliveries per CPU-second of server and aux together\n",
                a.cpu_seconds,
                a.utilisation * 100.0,
                fmt_rate(r)
            ));
        }
        if self.offsets.deliveries_with_offset > 0 {
            s.push_str(&format!(
                "  stream offsets: {} deliveries carried one, {} not consecutive\n",
                self.offsets.deliveries_with_offset, self.offsets.non_consecutive
            ));
        }
        for e in &self.errors {
            s.push_str(&format!("  error: {e}\n"));
        }
        s
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    count: u32,
    max_latency_ns: u64,
}

#[derive(Debug)]
struct FanShared {
    n_subs: u32,
    format: Format,
    table: Mutex<Vec<Slot>>,
    completed: AtomicU64,
    notify: Notify,
    /// Window start/end, set when publishing starts.
    window: std::sync::OnceLock<(Instant, Instant)>,
}

#[derive(Debug, Default)]
struct SubResult {
    url_index: usize,
    deliveries_in_window: u64,
    compressed_in_window: u64,
    wire_bytes_in_window: u64,
    hist: Latency,
    trackers: HashMap<u32, SeqTracker>,
    foreign: u64,
    offsets: OffsetTotals,
    last_offset: Option<u64>,
    error: Option<String>,
}

/// Runs one-publisher fan-out.
pub async fn run(cfg: FanoutConfig) -> anyhow::Result<FanoutReport> {
    anyhow::ensure!(cfg.subscribers > 0, "need at least one subscriber");
    anyhow::ensure!(!cfg.sub_targets.is_empty(), "need a subscriber URL");
    anyhow::ensure!(cfg.window > 0, "window must be at least 1");
    if matches!(cfg.publisher, Publisher::Http { .. }) {
        anyhow::ensure!(
            cfg.format == Format::Text,
            "the HTTP publisher needs --format text"
        );
    }
    let opts = ConnectOptions {
        read_buffer: 16 * 1024,
        timeout: Some(Duration::from_secs(10)),
        deflate: cfg.deflate,
        ..ConnectOptions::default()
    };
    let (conns, connect) = connect_many(
        &cfg.sub_targets,
        cfg.subscribers,
        &opts,
        cfg.connect_concurrency,
        None,
    )
    .await;
    let mut errors = connect.first_errors.clone();
    anyhow::ensure!(
        !conns.is_empty(),
        "no subscriber could connect: {:?}",
        errors
    );
    let n_subs = conns.len();
    let mut subs_per_url = vec![0usize; cfg.sub_targets.len()];

    let shared = Arc::new(FanShared {
        n_subs: n_subs as u32,
        format: cfg.format,
        table: Mutex::new(Vec::new()),
        completed: AtomicU64::new(0),
        notify: Notify::new(),
        window: std::sync::OnceLock::new(),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut handles = Vec::with_capacity(n_subs);
    for (ti, mut c) in conns {
        subs_per_url[ti] += 1;
        if let Some(m) = &cfg.subscribe_msg
            && let Err(e) = c.send(OP_TEXT, m.as_bytes()).await
        {
            errors.push(format!("subscribe: {e}"));
        }
        handles.push(tokio::spawn(subscriber(
            c,
            ti,
            shared.clone(),
            stop_rx.clone(),
        )));
    }

    // The publisher. A WebSocket publisher on a broadcast endpoint also receives its own
    // messages: a separate task drains them.
    let mut drain_handle = None;
    let mut pub_writer = None;
    let mut pub_mask = [0u8; 4];
    let mut http_pub: Option<(HttpPoster, String)> = None;
    let publisher_desc = match &cfg.publisher {
        Publisher::Ws(t) => {
            let c = WsConn::connect(t, &opts)
                .await
                .map_err(|e| anyhow::anyhow!("publisher could not connect to {t}: {e}"))?;
            pub_mask = c.mask;
            let WsConn {
                stream, mut reader, ..
            } = c;
            let (mut rd, wr) = stream.into_split();
            let mut stop = stop_rx.clone();
            drain_handle = Some(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop.changed() => break,
                        r = reader.fill(&mut rd) => {
                            if !matches!(r, Ok(n) if n > 0) {
                                break;
                            }
                            while let Ok(Some(_)) = reader.next_message() {}
                        }
                    }
                }
            }));
            pub_writer = Some(wr);
            format!("ws {t}")
        }
        Publisher::Http {
            target,
            body_template,
            content_type,
            headers,
        } => {
            http_pub = Some((
                HttpPoster::new(target.clone(), content_type.clone(), headers.clone()),
                body_template.clone(),
            ));
            format!("http POST {target}")
        }
    };

    tokio::time::sleep(cfg.settle).await;
    let start = Instant::now();
    let end = start + cfg.duration;
    let _ = shared.window.set((start, end));
    let sampler = CpuSampler::start(&cfg.server_pids);
    let aux_sampler = CpuSampler::start(&cfg.aux_pids);
    let own = CpuSampler::start(&[std::process::id()]);

    let mut published = 0u64;
    let mut publish_errors = 0u64;
    let mut given_up = 0u64;
    let mut pub_hist = Latency::new();
    let mut body = Vec::new();
    let mut frame = Vec::new();
    let opcode = if cfg.format == Format::Binary {
        OP_BINARY
    } else {
        OP_TEXT
    };
    let max = cfg.max_messages.unwrap_or(u64::MAX);
    'publish: while published < max {
        let now = Instant::now();
        if now >= end {
            break;
        }
        // Window: wait while too many messages are outstanding.
        loop {
            let outstanding =
                published.saturating_sub(shared.completed.load(Ordering::Acquire) + given_up);
            if outstanding < cfg.window as u64 {
                break;
            }
            let notified = shared.notify.notified();
            let wait_until = (Instant::now() + cfg.msg_timeout).min(end);
            if tokio::time::timeout_at(wait_until.into(), notified)
                .await
                .is_err()
            {
                if Instant::now() >= end {
                    break 'publish;
                }
                // The oldest outstanding message is late: stop holding a slot for it.
                given_up += 1;
            }
        }
        if cfg.rate > 0.0 {
            let due = start + Duration::from_secs_f64(published as f64 / cfg.rate);
            if due >= end {
                break;
            }
            tokio::time::sleep_until(due.into()).await;
        }
        shared.table.lock().push(Slot::default());
        let stamp = Stamp {
            publisher: 0,
            seq: published,
            unix_nanos: payload::unix_nanos(),
        };
        payload::encode(&mut body, cfg.format, stamp, cfg.size);
        if let Some(wr) = pub_writer.as_mut() {
            use tokio::io::AsyncWriteExt as _;
            frame.clear();
            encode_frame(&mut frame, opcode, &body, pub_mask);
            if let Err(e) = wr.write_all(&frame).await {
                errors.push(format!("publisher write: {e}"));
                publish_errors += 1;
                published += 1;
                break;
            }
        } else if let Some((poster, tpl)) = http_pub.as_mut() {
            let text = std::str::from_utf8(&body).unwrap_or("");
            let req_body = tpl.replace("{payload}", text);
            let t0 = Instant::now();
            match poster.post(req_body.as_bytes()).await {
                Ok(s) if (200..300).contains(&s) => pub_hist.record(t0.elapsed()),
                Ok(s) => {
                    publish_errors += 1;
                    if errors.len() < 5 {
                        errors.push(format!("publish answered HTTP {s}"));
                    }
                }
                Err(e) => {
                    publish_errors += 1;
                    if errors.len() < 5 {
                        errors.push(format!("publish: {e}"));
                    }
                }
            }
        }
        published += 1;
    }
    let publish_end = Instant::now();
    let server_cpu = sampler.and_then(|s| s.finish());
    let aux_cpu = aux_sampler.and_then(|s| s.finish());
    let generator_cpu = own.and_then(|s| s.finish());

    // Drain: wait for the outstanding deliveries.
    let drain_deadline = Instant::now() + cfg.drain;
    while shared.completed.load(Ordering::Acquire) < published && Instant::now() < drain_deadline {
        let notified = shared.notify.notified();
        let _ = tokio::time::timeout_at(drain_deadline.into(), notified).await;
    }
    let _ = stop_tx.send(true);
    if let Some(h) = drain_handle {
        let _ = h.await;
    }
    drop(pub_writer);

    let mut published_map = HashMap::new();
    published_map.insert(0u32, published);
    let mut sequence = SeqTotals::default();
    let mut hist = Latency::new();
    let mut per_url_hist: Vec<Latency> = vec![Latency::new(); cfg.sub_targets.len()];
    let mut per_url_deliveries = vec![0u64; cfg.sub_targets.len()];
    let mut deliveries = 0u64;
    let mut compressed_deliveries = 0u64;
    let mut wire_bytes = 0u64;
    let mut foreign = 0u64;
    let mut offsets = OffsetTotals::default();
    let mut subscriber_errors = connect.failed;
    for h in handles {
        let r = match h.await {
            Ok(r) => r,
            Err(e) => SubResult {
                error: Some(format!("task failed: {e}")),
                ..SubResult::default()
            },
        };
        deliveries += r.deliveries_in_window;
        compressed_deliveries += r.compressed_in_window;
        wire_bytes += r.wire_bytes_in_window;
        hist.merge(&r.hist);
        per_url_hist[r.url_index].merge(&r.hist);
        per_url_deliveries[r.url_index] += r.deliveries_in_window;
        foreign += r.foreign;
        offsets.deliveries_with_offset += r.offsets.deliveries_with_offset;
        offsets.non_consecutive += r.offsets.non_consecutive;
        sequence.add_receiver(&r.trackers, &published_map);
        if let Some(e) = r.error {
            subscriber_errors += 1;
            if errors.len() < 5 {
                errors.push(e);
            }
        }
    }
    let mut last = Latency::new();
    let mut complete = 0u64;
    for s in shared.table.lock().iter() {
        if s.count >= shared.n_subs {
            complete += 1;
            last.record_ns(s.max_latency_ns);
        }
    }
    let secs = publish_end.duration_since(start).as_secs_f64().max(1e-9);
    let per_cpu = server_cpu
        .filter(|c| c.cpu_seconds > 0.0)
        .map(|c| deliveries as f64 / c.cpu_seconds);
    let us_per = server_cpu
        .filter(|_| deliveries > 0)
        .map(|c| c.cpu_seconds * 1e6 / deliveries as f64);
    let with_aux = match (server_cpu, aux_cpu) {
        (Some(s), Some(a)) if s.cpu_seconds + a.cpu_seconds > 0.0 => {
            Some(deliveries as f64 / (s.cpu_seconds + a.cpu_seconds))
        }
        _ => None,
    };
    let deflate_negotiated = connect.deflate_negotiated;
    Ok(FanoutReport {
        scenario: cfg.scenario,
        urls: cfg.sub_targets.iter().map(Target::url).collect(),
        publisher: publisher_desc,
        subscribers: cfg.subscribers,
        connect,
        message_bytes: body.len(),
        format: cfg.format,
        deflate_offered: cfg.deflate,
        deflate_negotiated,
        rate: cfg.rate,
        window: cfg.window,
        duration_s: secs,
        published,
        publish_errors,
        publish_latency: http_pub.map(|_| pub_hist.summary()),
        deliveries,
        deliveries_per_sec: deliveries as f64 / secs,
        compressed_deliveries,
        wire_bytes,
        wire_bytes_per_delivery: (deliveries > 0).then(|| wire_bytes as f64 / deliveries as f64),
        complete_messages: complete,
        latency: hist.summary(),
        last_subscriber_latency: last.summary(),
        per_url: cfg
            .sub_targets
            .iter()
            .enumerate()
            .map(|(i, t)| PerUrl {
                url: t.url(),
                subscribers: subs_per_url[i],
                deliveries: per_url_deliveries[i],
                latency: per_url_hist[i].summary(),
            })
            .collect(),
        sequence,
        foreign_messages: foreign,
        subscriber_errors,
        errors,
        server_cpu,
        deliveries_per_server_cpu_sec: per_cpu,
        server_cpu_us_per_delivery: us_per,
        generator_cpu,
        aux_cpu,
        deliveries_per_server_and_aux_cpu_sec: with_aux,
        offsets,
    })
}

async fn subscriber(
    mut c: WsConn,
    url_index: usize,
    sh: Arc<FanShared>,
    mut stop: watch::Receiver<bool>,
) -> SubResult {
    let mut r = SubResult {
        url_index,
        ..SubResult::default()
    };
    loop {
        let n = tokio::select! {
            biased;
            res = c.fill() => match res {
                Ok(n) => n,
                Err(e) => {
                    r.error = Some(format!("subscriber read: {e}"));
                    break;
                }
            },
            _ = stop.changed() => break,
        };
        if n == 0 {
            r.error = Some("server closed a subscriber".to_owned());
            break;
        }
        let now = Instant::now();
        let now_ns = payload::unix_nanos();
        let in_window = sh.window.get().is_some_and(|(s, e)| now >= *s && now < *e);
        if in_window {
            r.wire_bytes_in_window += n as u64;
        }
        loop {
            let m = match c.reader.next_message() {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => {
                    r.error = Some(e.to_string());
                    return r;
                }
            };
            let fmt = match m.opcode {
                OP_TEXT if sh.format.is_text() => sh.format,
                OP_TEXT => Format::Text,
                OP_BINARY => Format::Binary,
                OP_CLOSE => {
                    r.error = Some("server sent close to a subscriber".to_owned());
                    return r;
                }
                _ => continue,
            };
            let Some((st, offset)) =
                payload::decode_with_offset(c.reader.payload(&m), fmt).filter(|_| fmt == sh.format)
            else {
                r.foreign += 1;
                continue;
            };
            if let Some(o) = offset {
                r.offsets.deliveries_with_offset += 1;
                if r.last_offset.is_some_and(|last| o != last + 1) {
                    r.offsets.non_consecutive += 1;
                }
                r.last_offset = Some(o);
            }
            let obs = r.trackers.entry(st.publisher).or_default().observe(st.seq);
            if matches!(obs, Observed::Duplicate | Observed::Invalid) {
                continue;
            }
            let lat = now_ns.saturating_sub(st.unix_nanos);
            if in_window {
                r.deliveries_in_window += 1;
                r.compressed_in_window += u64::from(m.compressed);
                r.hist.record_ns(lat);
            }
            let mut table = sh.table.lock();
            if let Some(slot) = table.get_mut(st.seq as usize) {
                slot.count += 1;
                slot.max_latency_ns = slot.max_latency_ns.max(lat);
                if slot.count == sh.n_subs {
                    drop(table);
                    sh.completed.fetch_add(1, Ordering::AcqRel);
                    sh.notify.notify_one();
                }
            }
        }
        if c.flush_pongs().await.is_err() {
            break;
        }
    }
    c.abort();
    r
}

/// All-to-all settings (uWebSockets' broadcast_test shape).
#[derive(Debug, Clone)]
pub struct AllToAllConfig {
    /// The broadcast URL.
    pub target: Target,
    /// Number of clients (each sends and receives).
    pub clients: usize,
    /// Message size.
    pub size: usize,
    /// Payload encoding.
    pub format: Format,
    /// Measurement window.
    pub duration: Duration,
    /// Rounds before the window (not counted).
    pub warmup: Duration,
    /// A round not complete after this long aborts the run.
    pub round_timeout: Duration,
    /// Stop after this many rounds.
    pub max_rounds: Option<u64>,
    /// Server processes to sample.
    pub server_pids: Vec<u32>,
    /// Concurrent connection attempts.
    pub connect_concurrency: usize,
    /// Offer permessage-deflate and inflate what the server compresses.
    pub deflate: bool,
}

/// All-to-all result.
#[derive(Debug, Clone, Serialize)]
pub struct AllToAllReport {
    /// Always `"all-to-all"`.
    pub scenario: &'static str,
    /// URL.
    pub url: String,
    /// Clients requested.
    pub clients: usize,
    /// Connect phase.
    pub connect: ConnectPhase,
    /// Message size actually sent.
    pub message_bytes: usize,
    /// Window, seconds.
    pub duration_s: f64,
    /// Rounds completed in the window.
    pub rounds: u64,
    /// Rounds per second.
    pub rounds_per_sec: f64,
    /// rounds × N² in the window.
    pub deliveries: u64,
    /// Deliveries per second.
    pub deliveries_per_sec: f64,
    /// Send → delivery latency.
    pub latency: LatencySummary,
    /// Missing / duplicated / out-of-order accounting.
    pub sequence: SeqTotals,
    /// Whether a round timed out.
    pub stalled: bool,
    /// First few error messages.
    pub errors: Vec<String>,
    /// Server CPU over the window.
    pub server_cpu: Option<ServerCpu>,
    /// Deliveries per server CPU-second.
    pub deliveries_per_server_cpu_sec: Option<f64>,
    /// The generator's own CPU over the window.
    pub generator_cpu: Option<ServerCpu>,
}

impl AllToAllReport {
    /// Human-readable summary.
    pub fn human(&self) -> String {
        let mut s = format!(
            "all-to-all {} — {} clients ({} connected), {} B messages, {:.1} s\n  rounds {} ({:.0} /s), deliveries {} = {} /s\n  latency: {}\n  missing {}, duplicated {}, out-of-order {}, stalled {}\n",
            self.url,
            self.clients,
            self.connect.established,
            self.message_bytes,
            self.duration_s,
            self.rounds,
            self.rounds_per_sec,
            self.deliveries,
            fmt_rate(self.deliveries_per_sec),
            self.latency.human(),
            self.sequence.missing,
            self.sequence.duplicated,
            self.sequence.out_of_order,
            self.stalled
        );
        if let (Some(cpu), Some(r)) = (self.server_cpu, self.deliveries_per_server_cpu_sec) {
            s.push_str(&format!(
                "  server CPU: {:.2} s ({:.0}% of a core), {} deliveries per server CPU-second\n",
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
        for e in &self.errors {
            s.push_str(&format!("  error: {e}\n"));
        }
        s
    }
}

const STOP: u64 = u64::MAX;

#[derive(Debug)]
struct A2aShared {
    n: usize,
    size: usize,
    format: Format,
    done: AtomicUsize,
    notify: Notify,
    window: std::sync::OnceLock<(Instant, Instant)>,
}

#[derive(Debug, Default)]
struct A2aResult {
    sent: u64,
    trackers: HashMap<u32, SeqTracker>,
    hist: Latency,
    error: Option<String>,
}

/// Runs all-to-all.
pub async fn run_all_to_all(cfg: AllToAllConfig) -> anyhow::Result<AllToAllReport> {
    anyhow::ensure!(cfg.clients > 0, "need at least one client");
    let opts = ConnectOptions {
        read_buffer: 64 * 1024,
        timeout: Some(Duration::from_secs(10)),
        deflate: cfg.deflate,
        ..ConnectOptions::default()
    };
    let targets = vec![cfg.target.clone()];
    let (conns, connect) =
        connect_many(&targets, cfg.clients, &opts, cfg.connect_concurrency, None).await;
    let mut errors = connect.first_errors.clone();
    anyhow::ensure!(
        conns.len() == cfg.clients,
        "only {} of {} clients connected: {:?}",
        conns.len(),
        cfg.clients,
        errors
    );
    let n = conns.len();
    let shared = Arc::new(A2aShared {
        n,
        size: cfg.size,
        format: cfg.format,
        done: AtomicUsize::new(0),
        notify: Notify::new(),
        window: std::sync::OnceLock::new(),
    });
    let (round_tx, round_rx) = watch::channel(STOP - 1);
    let mut handles = Vec::with_capacity(n);
    for (i, (_, c)) in conns.into_iter().enumerate() {
        handles.push(tokio::spawn(a2a_client(
            c,
            i as u32,
            shared.clone(),
            round_rx.clone(),
        )));
    }
    let mut stalled = false;
    let mut round = 0u64;
    let mut rounds_in_window = 0u64;
    let max_rounds = cfg.max_rounds.unwrap_or(u64::MAX);
    let warm_end = Instant::now() + cfg.warmup;
    let end = warm_end + cfg.duration;
    let _ = shared.window.set((warm_end, end));
    let mut sampler = None;
    let mut own = None;
    let mut window_start = None;
    let mut window_end = None;
    while round < max_rounds {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if window_start.is_none() && now >= warm_end {
            window_start = Some(now);
            sampler = CpuSampler::start(&cfg.server_pids);
            own = CpuSampler::start(&[std::process::id()]);
        }
        shared.done.store(0, Ordering::Release);
        let _ = round_tx.send(round);
        round += 1;
        let all_done = async {
            while shared.done.load(Ordering::Acquire) < n {
                shared.notify.notified().await;
            }
        };
        if tokio::time::timeout(cfg.round_timeout, all_done)
            .await
            .is_err()
        {
            stalled = true;
            errors.push(format!(
                "round {} incomplete after {:?}: {} of {} clients done",
                round - 1,
                cfg.round_timeout,
                shared.done.load(Ordering::Acquire),
                n
            ));
            break;
        }
        if window_start.is_some() {
            rounds_in_window += 1;
            window_end = Some(Instant::now());
        }
    }
    let server_cpu = sampler.and_then(|s| s.finish());
    let generator_cpu = own.and_then(|s| s.finish());
    let _ = round_tx.send(STOP);
    let mut sequence = SeqTotals::default();
    let mut hist = Latency::new();
    let mut results = Vec::with_capacity(n);
    for h in handles {
        results.push(h.await.unwrap_or_else(|e| A2aResult {
            error: Some(format!("task failed: {e}")),
            ..A2aResult::default()
        }));
    }
    let published: HashMap<u32, u64> = results
        .iter()
        .enumerate()
        .map(|(i, r)| (i as u32, r.sent))
        .collect();
    for r in &results {
        sequence.add_receiver(&r.trackers, &published);
        hist.merge(&r.hist);
        if let Some(e) = &r.error
            && errors.len() < 5
        {
            errors.push(e.clone());
        }
    }
    let secs = match (window_start, window_end) {
        (Some(s), Some(e)) => e.duration_since(s).as_secs_f64().max(1e-9),
        _ => cfg.duration.as_secs_f64(),
    };
    let deliveries = rounds_in_window * (n as u64) * (n as u64);
    let per_cpu = server_cpu
        .filter(|c| c.cpu_seconds > 0.0)
        .map(|c| deliveries as f64 / c.cpu_seconds);
    let mut sample = Vec::new();
    payload::encode(
        &mut sample,
        cfg.format,
        Stamp {
            publisher: 0,
            seq: 0,
            unix_nanos: payload::unix_nanos(),
        },
        cfg.size,
    );
    Ok(AllToAllReport {
        scenario: "all-to-all",
        url: cfg.target.url(),
        clients: cfg.clients,
        connect,
        message_bytes: sample.len(),
        duration_s: secs,
        rounds: rounds_in_window,
        rounds_per_sec: rounds_in_window as f64 / secs,
        deliveries,
        deliveries_per_sec: deliveries as f64 / secs,
        latency: hist.summary(),
        sequence,
        stalled,
        errors,
        server_cpu,
        deliveries_per_server_cpu_sec: per_cpu,
        generator_cpu,
    })
}

async fn a2a_client(
    mut c: WsConn,
    id: u32,
    sh: Arc<A2aShared>,
    mut rounds: watch::Receiver<u64>,
) -> A2aResult {
    let mut r = A2aResult::default();
    let mut body = Vec::new();
    let mut frame = Vec::new();
    let opcode = if sh.format == Format::Binary {
        OP_BINARY
    } else {
        OP_TEXT
    };
    'rounds: loop {
        if rounds.changed().await.is_err() {
            break;
        }
        let round = *rounds.borrow_and_update();
        if round == STOP {
            break;
        }
        payload::encode(
            &mut body,
            sh.format,
            Stamp {
                publisher: id,
                seq: round,
                unix_nanos: payload::unix_nanos(),
            },
            sh.size,
        );
        frame.clear();
        encode_frame(&mut frame, opcode, &body, c.mask);
        if let Err(e) = c.write_all(&frame).await {
            r.error = Some(format!("write: {e}"));
            break;
        }
        r.sent += 1;
        let mut got = 0usize;
        // Messages of this round may already be buffered.
        loop {
            let now = Instant::now();
            let now_ns = payload::unix_nanos();
            let in_window = sh.window.get().is_some_and(|(s, e)| now >= *s && now < *e);
            loop {
                let m = match c.reader.next_message() {
                    Ok(Some(m)) => m,
                    Ok(None) => break,
                    Err(e) => {
                        r.error = Some(e.to_string());
                        break 'rounds;
                    }
                };
                if m.opcode == OP_CLOSE {
                    r.error = Some("server sent close".to_owned());
                    break 'rounds;
                }
                if m.opcode != opcode {
                    continue;
                }
                let Some(st) = payload::decode(c.reader.payload(&m), sh.format) else {
                    continue;
                };
                let obs = r.trackers.entry(st.publisher).or_default().observe(st.seq);
                if matches!(obs, Observed::Duplicate | Observed::Invalid) {
                    continue;
                }
                if in_window {
                    r.hist.record_ns(now_ns.saturating_sub(st.unix_nanos));
                }
                if st.seq == round {
                    got += 1;
                }
            }
            if got >= sh.n {
                break;
            }
            if c.flush_pongs().await.is_err() {
                r.error = Some("write failed".to_owned());
                break 'rounds;
            }
            tokio::select! {
                biased;
                res = c.fill() => match res {
                    Ok(0) => {
                        r.error = Some("server closed the connection".to_owned());
                        break 'rounds;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        r.error = Some(format!("read: {e}"));
                        break 'rounds;
                    }
                },
                _ = rounds.changed() => {
                    // Only STOP can come while a round is incomplete.
                    break 'rounds;
                }
            }
        }
        if sh.done.fetch_add(1, Ordering::AcqRel) + 1 >= sh.n {
            sh.notify.notify_one();
        }
    }
    c.abort();
    r
}
