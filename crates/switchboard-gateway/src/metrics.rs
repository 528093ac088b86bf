//! Metrics in the Prometheus text format 0.0.4 (`GET /metrics`), encoded by
//! `prometheus-client`.
//!
//! Three sources: the hub's own counters (`Hub::stats().snapshot()`,
//! `connection_count()`), read at scrape time; hub hooks (connections
//! opened, and closed by code) and the engine's refusal hook (refused
//! handshakes by [`RejectionKind`]); and what the gateway sees itself (HTTP
//! requests, publishes, broker calls). No metric reads log text.
//!
//! Every label has a small fixed set of values: nothing a client sends
//! (a path, a room, a reason string) becomes a label as is.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use switchboard::{CloseCode, CloseFrame, ConnectionInfo, Hub, HubHooks, RejectionKind};

use crate::http::Route;

/// Upper bounds of the broker publish latency histogram, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Version {
    version: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

const ACCEPTED: Outcome = Outcome {
    outcome: "accepted",
};
const REJECTED: Outcome = Outcome {
    outcome: "rejected",
};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Closed {
    code: CloseLabel,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpRequest {
    route: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Publish {
    target: &'static str,
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Broker {
    broker: &'static str,
}

/// The `code` label of a closed connection: the number of every RFC 6455
/// code the codec names (1005 and 1010 included, which only peers send) and
/// of every code in the close-code table (`switchboard::codes`, 4001-4007);
/// `other` for the rest (an application's own 3000-4999 codes), so the
/// label keeps a small fixed set of values.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub(crate) enum CloseLabel {
    Code(u16),
    Other,
}

impl CloseLabel {
    pub(crate) fn of(code: CloseCode) -> Self {
        let rfc = match code {
            CloseCode::Normal
            | CloseCode::Away
            | CloseCode::Protocol
            | CloseCode::Unsupported
            | CloseCode::NoStatus
            | CloseCode::Abnormal
            | CloseCode::InvalidPayload
            | CloseCode::Policy
            | CloseCode::TooBig
            | CloseCode::MandatoryExtension
            | CloseCode::InternalError
            | CloseCode::Restart
            | CloseCode::TryAgainLater
            | CloseCode::BadGateway
            | CloseCode::Tls => true,
            CloseCode::Library(_) | CloseCode::Application(_) | CloseCode::Reserved(_) => false,
        };
        if rfc || switchboard::codes::entry(code).is_some() {
            Self::Code(code.as_u16())
        } else {
            Self::Other
        }
    }
}

impl EncodeLabelValue for CloseLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> std::fmt::Result {
        use std::fmt::Write as _;
        match self {
            Self::Code(code) => write!(encoder, "{code}"),
            Self::Other => encoder.write_str("other"),
        }
    }
}

/// The gateway's own counters. Shared by the hub hooks, the refusal hook
/// and the HTTP side.
#[derive(Debug)]
pub(crate) struct Metrics {
    started: Instant,
    handshakes: Family<Outcome, Counter>,
    rejections: Family<Reason, Counter>,
    closed: Family<Closed, Counter>,
    http: Family<HttpRequest, Counter>,
    publishes: Family<Publish, Counter>,
    broker_errors: Counter,
    latency: Histogram,
    listening: AtomicBool,
    /// The backend proxy's (`switchboard_proxy_*`).
    pub(crate) proxy: std::sync::Arc<crate::proxy::ProxyMetrics>,
}

impl Default for Metrics {
    fn default() -> Self {
        let handshakes = Family::default();
        // Both outcomes show from the start, 0 until counted.
        let _ = handshakes.get_or_create(&ACCEPTED);
        let _ = handshakes.get_or_create(&REJECTED);
        Self {
            started: Instant::now(),
            handshakes,
            rejections: Family::default(),
            closed: Family::default(),
            http: Family::default(),
            publishes: Family::default(),
            broker_errors: Counter::default(),
            latency: Histogram::new(LATENCY_BUCKETS),
            listening: AtomicBool::new(false),
            proxy: std::sync::Arc::default(),
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

    /// A refused handshake (from the engine's refusal hook).
    pub(crate) fn rejected(&self, kind: RejectionKind) {
        self.handshakes.get_or_create(&REJECTED).inc();
        self.rejections
            .get_or_create(&Reason {
                reason: kind.as_str(),
            })
            .inc();
    }

    /// A connection the hub registered.
    fn accepted(&self) {
        self.handshakes.get_or_create(&ACCEPTED).inc();
    }

    /// A connection that ended with `code`.
    pub(crate) fn closed(&self, code: CloseCode) {
        self.closed
            .get_or_create(&Closed {
                code: CloseLabel::of(code),
            })
            .inc();
    }

    /// An HTTP request: the route it matched (`None`: none did) and its status.
    pub(crate) fn http_request(&self, route: Option<Route>, status: u16) {
        self.http
            .get_or_create(&HttpRequest {
                route: route.map_or("unmatched", Route::path),
                status,
            })
            .inc();
    }

    /// A publish through the API: its target kind and result (`ok`,
    /// `broker_error`).
    pub(crate) fn published(&self, target: &'static str, result: &'static str) {
        self.publishes
            .get_or_create(&Publish { target, result })
            .inc();
    }

    /// A broker call (publish, close, count) and how long it took.
    pub(crate) fn broker_call(&self, elapsed: Duration, ok: bool) {
        self.latency.observe(elapsed.as_secs_f64());
        if !ok {
            self.broker_errors.inc();
        }
    }

    /// The metrics page. The registry is built per scrape: the gateway's
    /// own metrics are shared handles, the hub's and the broker's values
    /// are read now. (The help texts have no final period: the encoder
    /// adds one.)
    pub(crate) fn render(&self, hub: &Hub, broker: BrokerState) -> String {
        let stats = hub.stats().snapshot();
        let mut r = Registry::default();
        let info = Family::<Version, Gauge>::default();
        info.get_or_create(&Version {
            version: env!("CARGO_PKG_VERSION"),
        })
        .set(1);
        r.register("switchboard_info", "The gateway's version", info);
        r.register(
            "switchboard_uptime_seconds",
            "Seconds since the gateway started",
            ConstGauge::new(self.started.elapsed().as_secs_f64()),
        );
        r.register(
            "switchboard_listening",
            "1 while the gateway accepts connections",
            ConstGauge::new(i64::from(self.is_listening())),
        );
        r.register(
            "switchboard_connections",
            "Open WebSocket connections on this instance",
            ConstGauge::new(hub.connection_count() as u64),
        );
        r.register(
            "switchboard_handshakes",
            "WebSocket handshakes by outcome (rejected: see switchboard_handshake_rejections_total)",
            self.handshakes.clone(),
        );
        r.register(
            "switchboard_handshake_rejections",
            "Refused handshakes by reason",
            self.rejections.clone(),
        );
        r.register(
            "switchboard_connections_closed",
            "Closed connections by close code (1006: dropped without a close frame)",
            self.closed.clone(),
        );
        let counters = [
            (
                "switchboard_messages_received",
                "Data messages received from clients",
                stats.messages_in,
            ),
            (
                "switchboard_bytes_received",
                "Payload bytes received from clients",
                stats.bytes_in,
            ),
            (
                "switchboard_frames_sent",
                "Frames written to clients (data and control)",
                stats.messages_out,
            ),
            (
                "switchboard_bytes_sent",
                "Bytes written to clients, frame headers included",
                stats.bytes_out,
            ),
            (
                "switchboard_deliveries",
                "Messages queued for a connection by the hub (one per recipient)",
                stats.deliveries,
            ),
            (
                "switchboard_delivery_drops",
                "Messages the hub could not queue (connection closing or full)",
                stats.drops,
            ),
            (
                "switchboard_slow_consumer_evictions",
                "Connections closed with 4002 because their outbound queue overflowed",
                stats.slow_consumer_evictions,
            ),
        ];
        for (name, help, value) in counters {
            r.register(name, help, ConstCounter::new(value));
        }
        r.register(
            "switchboard_http_requests",
            "HTTP requests served by the gateway, by route and status",
            self.http.clone(),
        );
        r.register(
            "switchboard_api_publishes",
            "Publishes through the HTTP API, by target kind and result",
            self.publishes.clone(),
        );
        self.register_broker(&mut r, broker);
        self.proxy.register(&mut r);
        let mut out = String::with_capacity(4096);
        prometheus_client::encoding::prometheus_text::encode(&mut out, &r)
            .expect("writing to a String cannot fail");
        out
    }

    fn register_broker(&self, r: &mut Registry, broker: BrokerState) {
        let up = Family::<Broker, Gauge>::default();
        up.get_or_create(&Broker {
            broker: broker.kind,
        })
        .set(i64::from(broker.up));
        r.register(
            "switchboard_broker_up",
            "1 while the broker is connected (always 1 for the in-memory broker once started)",
            up,
        );
        r.register(
            "switchboard_broker_errors",
            "Broker calls from the HTTP API that failed",
            self.broker_errors.clone(),
        );
        r.register(
            "switchboard_broker_call_duration_seconds",
            "Time of broker calls from the HTTP API (publish, disconnect, counts), local delivery included",
            self.latency.clone(),
        );
        let Some(redis) = broker.redis else {
            return;
        };
        let counters = [
            ("published", "Envelopes Redis accepted", redis.published),
            (
                "publish_failures",
                "Publishes Redis did not take",
                redis.publish_failures,
            ),
            ("received", "Messages received from Redis", redis.received),
            (
                "delivered",
                "Local deliveries of messages from Redis",
                redis.delivered,
            ),
            (
                "malformed",
                "Messages from Redis dropped as invalid",
                redis.malformed,
            ),
            (
                "subscriber_connects",
                "Subscriber connections made (1 + reconnects)",
                redis.subscriber_connects,
            ),
            (
                "publisher_connects",
                "Publisher connections made (1 + reconnects)",
                redis.publisher_connects,
            ),
        ];
        for (name, help, value) in counters {
            r.register(
                format!("switchboard_redis_{name}"),
                help,
                ConstCounter::new(value),
            );
        }
        r.register(
            "switchboard_redis_subscriptions",
            "Redis channels subscribed to now",
            ConstGauge::new(redis.subscriptions),
        );
    }
}

/// Counts connections as the hub sees them.
#[derive(Debug)]
pub(crate) struct MetricsHooks(pub(crate) std::sync::Arc<Metrics>);

impl HubHooks for MetricsHooks {
    fn on_connect(&self, _hub: &Hub, _info: &ConnectionInfo) {
        self.0.accepted();
    }

    fn on_disconnect(&self, _hub: &Hub, _info: &ConnectionInfo, close: &CloseFrame) {
        self.0.closed(close.code);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(metrics: &Metrics) -> String {
        metrics.render(
            &Hub::new(),
            BrokerState {
                kind: "memory",
                up: true,
                redis: None,
            },
        )
    }

    #[test]
    fn close_codes_are_labelled_from_the_rfc_and_the_table() {
        let metrics = Metrics::default();
        for code in [1000, 1005, 1010, 1014, 4001, 4005, 4006, 4007, 4403, 3000] {
            metrics.closed(CloseCode::from(code));
        }
        let page = page(&metrics);
        for code in [
            "1000", "1005", "1010", "1014", "4001", "4005", "4006", "4007",
        ] {
            let line = format!("switchboard_connections_closed_total{{code=\"{code}\"}} 1\n");
            assert!(page.contains(&line), "{line}{page}");
        }
        // 4403 and 3000 are an application's own: one `other` series.
        assert!(page.contains("switchboard_connections_closed_total{code=\"other\"} 2\n"));
        // Every code Switchboard sends has its own label.
        for entry in switchboard_protocol_table() {
            assert_eq!(
                CloseLabel::of(CloseCode::from(entry)),
                CloseLabel::Code(entry)
            );
        }
    }

    /// Every number in the close-code table, through the framework's
    /// re-export.
    fn switchboard_protocol_table() -> Vec<u16> {
        switchboard::protocol::wire::CloseCode::ALL
            .iter()
            .map(|c| c.code())
            .collect()
    }

    #[test]
    fn refusals_are_counted_by_kind_with_the_documented_labels() {
        let metrics = Metrics::default();
        for kind in RejectionKind::ALL {
            metrics.rejected(kind);
        }
        let page = page(&metrics);
        for kind in RejectionKind::ALL {
            let line = format!(
                "switchboard_handshake_rejections_total{{reason=\"{}\"}} 1\n",
                kind.as_str()
            );
            assert!(page.contains(&line), "{line}{page}");
        }
        let rejected = format!(
            "switchboard_handshakes_total{{outcome=\"rejected\"}} {}\n",
            RejectionKind::ALL.len()
        );
        assert!(page.contains(&rejected), "{page}");
        assert!(page.contains("switchboard_handshakes_total{outcome=\"accepted\"} 0\n"));
    }

    #[test]
    fn the_page_is_prometheus_text() {
        let metrics = Metrics::default();
        metrics.rejected(RejectionKind::Origin);
        metrics.http_request(Some(Route::Publish), 200);
        metrics.http_request(None, 404);
        metrics.published("room", "ok");
        metrics.broker_call(Duration::from_millis(3), true);
        let page = page(&metrics);
        let lines = [
            "# HELP switchboard_info The gateway's version.\n",
            "# TYPE switchboard_info gauge\n",
            "switchboard_connections 0\n",
            "# TYPE switchboard_connections gauge\n",
            "# HELP switchboard_handshakes_total WebSocket handshakes by outcome (rejected: see switchboard_handshake_rejections_total).\n",
            "# TYPE switchboard_handshakes_total counter\n",
            "switchboard_handshake_rejections_total{reason=\"origin\"} 1\n",
            "switchboard_handshakes_total{outcome=\"rejected\"} 1\n",
            "switchboard_http_requests_total{route=\"/api/v1/publish\",status=\"200\"} 1\n",
            "switchboard_http_requests_total{route=\"unmatched\",status=\"404\"} 1\n",
            "switchboard_api_publishes_total{target=\"room\",result=\"ok\"} 1\n",
            "switchboard_broker_up{broker=\"memory\"} 1\n",
            "# TYPE switchboard_broker_call_duration_seconds histogram\n",
            "switchboard_broker_call_duration_seconds_bucket{le=\"0.0025\"} 0\n",
            "switchboard_broker_call_duration_seconds_bucket{le=\"0.005\"} 1\n",
            "switchboard_broker_call_duration_seconds_bucket{le=\"1\"} 1\n",
            "switchboard_broker_call_duration_seconds_bucket{le=\"+Inf\"} 1\n",
            "switchboard_broker_call_duration_seconds_count 1\n",
            "# TYPE switchboard_slow_consumer_evictions_total counter\n",
        ];
        for line in lines {
            assert!(page.contains(line), "{line}{page}");
        }
        assert!(
            page.contains(&format!(
                "switchboard_info{{version=\"{}\"}} 1\n",
                env!("CARGO_PKG_VERSION")
            )),
            "{page}"
        );
        // Every sample line is `name{labels} value`, under its # TYPE, and
        // no metric family is left without its HELP.
        let mut typed = std::collections::HashSet::new();
        for line in page.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                typed.insert(rest.split(' ').next().unwrap().to_owned());
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').unwrap();
            let name = series.split('{').next().unwrap();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|f| typed.contains(*f)))
                .unwrap_or(name);
            assert!(typed.contains(family), "no # TYPE before {line}");
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
        assert_eq!(
            page.matches("# HELP ").count(),
            page.matches("# TYPE ").count()
        );
    }
}
