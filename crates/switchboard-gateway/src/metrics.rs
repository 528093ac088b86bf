//! Metrics in the Prometheus text format (`GET /metrics`).
//!
//! Three sources: the hub's own counters (`Hub::stats().snapshot()`,
//! `connection_count()`), hub hooks (connections opened, and closed by
//! code), and what the gateway sees itself (HTTP requests, publishes, broker
//! calls, and handshake refusals, read from the framework's
//! `handshake refused` debug event by [`RejectionLayer`]).
//!
//! Every label has a small fixed set of values: nothing a client sends
//! (a path, a room, a reason string) becomes a label as is.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use switchboard::{CloseFrame, ConnectionInfo, Hub, HubHooks};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// Upper bounds of the broker publish latency histogram, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Close codes counted by value; any other is counted as `other`.
const KNOWN_CODES: [u16; 18] = [
    1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 4001, 4002, 4003,
    4004, 4005,
];

/// The gateway's own counters. Shared by the hub hooks, the HTTP API and
/// the rejection layer.
#[derive(Debug)]
pub(crate) struct Metrics {
    started: Instant,
    opened: AtomicU64,
    closed: Mutex<BTreeMap<&'static str, u64>>,
    rejections: Mutex<BTreeMap<&'static str, u64>>,
    http: Mutex<BTreeMap<(String, u16), u64>>,
    publishes: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    broker_errors: AtomicU64,
    latency: Histogram,
    listening: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            opened: AtomicU64::new(0),
            closed: Mutex::default(),
            rejections: Mutex::default(),
            http: Mutex::default(),
            publishes: Mutex::default(),
            broker_errors: AtomicU64::new(0),
            latency: Histogram::default(),
            listening: AtomicBool::new(false),
        }
    }
}

/// What the renderer needs to know about the broker, read at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BrokerState {
    pub(crate) kind: &'static str,
    pub(crate) up: bool,
    pub(crate) redis: Option<switchboard_redis::RedisStats>,
}

impl Metrics {
    pub(crate) fn set_listening(&self, listening: bool) {
        self.listening.store(listening, Ordering::Release);
    }

    pub(crate) fn is_listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    pub(crate) fn rejected(&self, reason: &'static str) {
        *self.rejections.lock().entry(reason).or_default() += 1;
    }

    pub(crate) fn http_request(&self, route: &str, status: u16) {
        let mut http = self.http.lock();
        match http.get_mut(&(route.to_owned(), status)) {
            Some(n) => *n += 1,
            None => {
                http.insert((route.to_owned(), status), 1);
            }
        }
    }

    /// A publish through the API: its target kind and result (`ok`,
    /// `broker_error`).
    pub(crate) fn published(&self, target: &'static str, result: &'static str) {
        *self.publishes.lock().entry((target, result)).or_default() += 1;
    }

    /// A broker call (publish, close, count) and how long it took.
    pub(crate) fn broker_call(&self, elapsed: Duration, ok: bool) {
        self.latency.observe(elapsed);
        if !ok {
            self.broker_errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The metrics page.
    pub(crate) fn render(&self, hub: &Hub, broker: BrokerState) -> String {
        let mut out = String::with_capacity(4096);
        let stats = hub.stats().snapshot();
        let w = &mut out;
        metric(w, "switchboard_info", "gauge", "The gateway's version.");
        let _ = writeln!(
            w,
            "switchboard_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        single(
            w,
            "switchboard_uptime_seconds",
            "gauge",
            "Seconds since the gateway started.",
            self.started.elapsed().as_secs_f64(),
        );
        single(
            w,
            "switchboard_listening",
            "gauge",
            "1 while the gateway accepts connections.",
            u8::from(self.is_listening()),
        );
        single(
            w,
            "switchboard_connections",
            "gauge",
            "Open WebSocket connections on this instance.",
            hub.connection_count(),
        );
        metric(
            w,
            "switchboard_handshakes_total",
            "counter",
            "WebSocket handshakes by outcome (rejected: see switchboard_handshake_rejections_total).",
        );
        let opened = self.opened.load(Ordering::Relaxed);
        let rejections = self.rejections.lock().clone();
        let _ = writeln!(
            w,
            "switchboard_handshakes_total{{outcome=\"accepted\"}} {opened}"
        );
        let _ = writeln!(
            w,
            "switchboard_handshakes_total{{outcome=\"rejected\"}} {}",
            rejections.values().sum::<u64>()
        );
        metric(
            w,
            "switchboard_handshake_rejections_total",
            "counter",
            "Refused handshakes by reason.",
        );
        for (reason, n) in &rejections {
            let _ = writeln!(
                w,
                "switchboard_handshake_rejections_total{{reason=\"{reason}\"}} {n}"
            );
        }
        metric(
            w,
            "switchboard_connections_closed_total",
            "counter",
            "Closed connections by close code (1006: dropped without a close frame).",
        );
        for (code, n) in self.closed.lock().iter() {
            let _ = writeln!(
                w,
                "switchboard_connections_closed_total{{code=\"{code}\"}} {n}"
            );
        }
        let counters = [
            (
                "switchboard_messages_received_total",
                "Data messages received from clients.",
                stats.messages_in,
            ),
            (
                "switchboard_bytes_received_total",
                "Payload bytes received from clients.",
                stats.bytes_in,
            ),
            (
                "switchboard_frames_sent_total",
                "Frames written to clients (data and control).",
                stats.messages_out,
            ),
            (
                "switchboard_bytes_sent_total",
                "Bytes written to clients, frame headers included.",
                stats.bytes_out,
            ),
            (
                "switchboard_deliveries_total",
                "Messages queued for a connection by the hub (one per recipient).",
                stats.deliveries,
            ),
            (
                "switchboard_delivery_drops_total",
                "Messages the hub could not queue (connection closing or full).",
                stats.drops,
            ),
            (
                "switchboard_slow_consumer_evictions_total",
                "Connections closed with 4002 because their outbound queue overflowed.",
                stats.slow_consumer_evictions,
            ),
        ];
        for (name, help, value) in counters {
            single(w, name, "counter", help, value);
        }
        self.render_http(w);
        self.render_broker(w, broker);
        out
    }

    fn render_http(&self, w: &mut String) {
        metric(
            w,
            "switchboard_http_requests_total",
            "counter",
            "HTTP requests served by the gateway, by route and status.",
        );
        for ((route, status), n) in self.http.lock().iter() {
            let _ = writeln!(
                w,
                "switchboard_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        metric(
            w,
            "switchboard_api_publishes_total",
            "counter",
            "Publishes through the HTTP API, by target kind and result.",
        );
        for ((target, result), n) in self.publishes.lock().iter() {
            let _ = writeln!(
                w,
                "switchboard_api_publishes_total{{target=\"{target}\",result=\"{result}\"}} {n}"
            );
        }
    }

    fn render_broker(&self, w: &mut String, broker: BrokerState) {
        metric(
            w,
            "switchboard_broker_up",
            "gauge",
            "1 while the broker is connected (always 1 for the in-memory broker once started).",
        );
        let _ = writeln!(
            w,
            "switchboard_broker_up{{broker=\"{}\"}} {}",
            broker.kind,
            u8::from(broker.up)
        );
        single(
            w,
            "switchboard_broker_errors_total",
            "counter",
            "Broker calls from the HTTP API that failed.",
            self.broker_errors.load(Ordering::Relaxed),
        );
        self.latency.render(
            w,
            "switchboard_broker_call_duration_seconds",
            "Time of broker calls from the HTTP API (publish, disconnect, counts), local delivery included.",
        );
        if let Some(redis) = broker.redis {
            let counters = [
                ("published", "Envelopes Redis accepted.", redis.published),
                (
                    "publish_failures",
                    "Publishes Redis did not take.",
                    redis.publish_failures,
                ),
                ("received", "Messages received from Redis.", redis.received),
                (
                    "delivered",
                    "Local deliveries of messages from Redis.",
                    redis.delivered,
                ),
                (
                    "malformed",
                    "Messages from Redis dropped as invalid.",
                    redis.malformed,
                ),
                (
                    "subscriber_connects",
                    "Subscriber connections made (1 + reconnects).",
                    redis.subscriber_connects,
                ),
                (
                    "publisher_connects",
                    "Publisher connections made (1 + reconnects).",
                    redis.publisher_connects,
                ),
            ];
            for (name, help, value) in counters {
                single(
                    w,
                    &format!("switchboard_redis_{name}_total"),
                    "counter",
                    help,
                    value,
                );
            }
            single(
                w,
                "switchboard_redis_subscriptions",
                "gauge",
                "Redis channels subscribed to now.",
                redis.subscriptions,
            );
        }
    }
}

fn metric(w: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(w, "# HELP {name} {help}");
    let _ = writeln!(w, "# TYPE {name} {kind}");
}

fn single(w: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    metric(w, name, kind, help);
    let _ = writeln!(w, "{name} {value}");
}

/// A fixed-bucket latency histogram.
#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    fn render(&self, w: &mut String, name: &str, help: &str) {
        metric(w, name, "histogram", help);
        let mut cumulative = 0;
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(w, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(w, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(w, "{name}_sum {sum}");
        let _ = writeln!(w, "{name}_count {count}");
    }
}

/// Counts connections as the hub sees them.
#[derive(Debug)]
pub(crate) struct MetricsHooks(pub(crate) Arc<Metrics>);

impl HubHooks for MetricsHooks {
    fn on_connect(&self, _hub: &Hub, _info: &ConnectionInfo) {
        self.0.opened.fetch_add(1, Ordering::Relaxed);
    }

    fn on_disconnect(&self, _hub: &Hub, _info: &ConnectionInfo, close: &CloseFrame) {
        let code = u16::from(close.code);
        let label = KNOWN_CODES
            .iter()
            .position(|c| *c == code)
            .map_or("other", |i| CODE_LABELS[i]);
        *self.0.closed.lock().entry(label).or_default() += 1;
    }
}

const CODE_LABELS: [&str; 18] = [
    "1000", "1001", "1002", "1003", "1005", "1006", "1007", "1008", "1009", "1010", "1011", "1012",
    "1013", "4001", "4002", "4003", "4004", "4005",
];

/// Counts refused handshakes from the framework's `handshake refused` debug
/// event (target `switchboard::connection`, fields `status` and `reason`).
/// Install it with a filter that lets that event through whatever the log
/// level (see `logging`).
#[derive(Debug)]
pub(crate) struct RejectionLayer(pub(crate) Arc<Metrics>);

/// The target the framework logs refusals under.
pub(crate) const REFUSAL_TARGET: &str = "switchboard::connection";

impl<S: Subscriber> Layer<S> for RejectionLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() != REFUSAL_TARGET {
            return;
        }
        let mut fields = RefusalFields::default();
        event.record(&mut fields);
        if fields.message == "handshake refused" {
            self.0.rejected(classify(&fields.status, &fields.reason));
        }
    }
}

#[derive(Default)]
struct RefusalFields {
    message: String,
    status: String,
    reason: String,
}

impl Visit for RefusalFields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let slot = match field.name() {
            "message" => &mut self.message,
            "status" => &mut self.status,
            "reason" => &mut self.reason,
            _ => return,
        };
        *slot = format!("{value:?}");
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_debug(field, &format_args!("{value}"));
    }
}

/// A refusal's label, from its reason (the security pipeline's fixed
/// texts) or else its status.
pub(crate) fn classify(status: &str, reason: &str) -> &'static str {
    let reason = reason.trim_matches('"');
    match reason {
        "Origin not allowed" => return "origin",
        "Rate limit exceeded" => return "rate_limit",
        "Too many connections from this address" => return "ip_cap",
        "Too many connections for this user" => return "user_cap",
        "Authentication unavailable" => return "auth_unavailable",
        "Authentication required" => return "auth_required",
        "Permission denied" => return "permission_denied",
        "Server at connection capacity" => return "capacity",
        "Handshake timed out" => return "handshake_timeout",
        _ if reason.starts_with("Invalid token") => return "invalid_token",
        _ => {}
    }
    match status.split_whitespace().next().unwrap_or("") {
        "400" => "bad_request",
        "401" => "unauthorized",
        "403" => "forbidden",
        "404" => "not_found",
        "405" => "method_not_allowed",
        "408" => "handshake_timeout",
        "426" => "upgrade_required",
        "429" => "rate_limit",
        "431" => "headers_too_large",
        "503" => "unavailable",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_classified_into_a_fixed_set() {
        assert_eq!(classify("403 Forbidden", "Origin not allowed"), "origin");
        assert_eq!(
            classify("401 Unauthorized", "Invalid token: token expired"),
            "invalid_token"
        );
        assert_eq!(
            classify("426 Upgrade Required", "whatever"),
            "upgrade_required"
        );
        assert_eq!(classify("418 I'm a teapot", "?"), "other");
    }

    #[test]
    fn the_page_is_prometheus_text() {
        let metrics = Metrics::default();
        metrics.rejected("origin");
        metrics.http_request("/api/v1/publish", 200);
        metrics.published("room", "ok");
        metrics.broker_call(Duration::from_millis(3), true);
        let page = metrics.render(
            &Hub::new(),
            BrokerState {
                kind: "memory",
                up: true,
                redis: None,
            },
        );
        assert!(page.contains("switchboard_connections 0\n"), "{page}");
        assert!(page.contains("switchboard_handshake_rejections_total{reason=\"origin\"} 1\n"));
        assert!(page.contains("switchboard_handshakes_total{outcome=\"rejected\"} 1\n"));
        assert!(page.contains(
            "switchboard_http_requests_total{route=\"/api/v1/publish\",status=\"200\"} 1\n"
        ));
        assert!(page.contains("switchboard_broker_call_duration_seconds_bucket{le=\"0.005\"} 1\n"));
        assert!(page.contains("switchboard_broker_call_duration_seconds_count 1\n"));
        // Every sample line is `name{labels} value` under a # TYPE.
        for line in page.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.rsplit_once(' ').unwrap();
            assert!(name.starts_with("switchboard_"), "{line}");
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
