//! Per-proxy metrics (`switchboard_proxy_*`, docs/operations.md): calls,
//! errors by kind, latency, calls in flight, notifications dropped.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::ProxyKind;

/// Upper bounds of the call latency histogram, in seconds.
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Proxy {
    proxy: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Failure {
    proxy: &'static str,
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Dropped {
    proxy: &'static str,
    reason: &'static str,
}

/// Shared by every proxy of every endpoint; labels are the proxy kinds.
#[derive(Debug)]
pub(crate) struct ProxyMetrics {
    calls: Family<Proxy, Counter>,
    errors: Family<Failure, Counter>,
    latency: Family<Proxy, Histogram, fn() -> Histogram>,
    in_flight: Family<Proxy, Gauge>,
    dropped: Family<Dropped, Counter>,
}

impl Default for ProxyMetrics {
    fn default() -> Self {
        Self {
            calls: Family::default(),
            errors: Family::default(),
            latency: Family::new_with_constructor(|| Histogram::new(BUCKETS)),
            in_flight: Family::default(),
            dropped: Family::default(),
        }
    }
}

/// Why notifications were given up on.
pub(crate) const QUEUE_FULL: &str = "queue_full";
pub(crate) const RETRIES_EXHAUSTED: &str = "retries_exhausted";

impl ProxyMetrics {
    pub(crate) fn started(&self, kind: ProxyKind) {
        let proxy = Proxy {
            proxy: kind.as_str(),
        };
        self.calls.get_or_create(&proxy).inc();
        self.in_flight.get_or_create(&proxy).inc();
    }

    pub(crate) fn finished(&self, kind: ProxyKind, elapsed: Duration, error: Option<&'static str>) {
        let proxy = Proxy {
            proxy: kind.as_str(),
        };
        self.in_flight.get_or_create(&proxy).dec();
        self.latency
            .get_or_create(&proxy)
            .observe(elapsed.as_secs_f64());
        if let Some(error) = error {
            self.errors
                .get_or_create(&Failure {
                    proxy: kind.as_str(),
                    kind: error,
                })
                .inc();
        }
    }

    pub(crate) fn dropped(&self, kind: ProxyKind, reason: &'static str, n: u64) {
        self.dropped
            .get_or_create(&Dropped {
                proxy: kind.as_str(),
                reason,
            })
            .inc_by(n);
    }

    pub(crate) fn register(&self, r: &mut Registry) {
        r.register(
            "switchboard_proxy_calls",
            "Calls to the application's backend, by proxy",
            self.calls.clone(),
        );
        r.register(
            "switchboard_proxy_errors",
            "Failed backend calls, by proxy and kind (unreachable, timeout, status, too_large, invalid)",
            self.errors.clone(),
        );
        r.register(
            "switchboard_proxy_call_duration_seconds",
            "Time of backend calls, by proxy",
            self.latency.clone(),
        );
        r.register(
            "switchboard_proxy_in_flight",
            "Backend calls under way, by proxy",
            self.in_flight.clone(),
        );
        r.register(
            "switchboard_proxy_notifications_dropped",
            "Disconnect and unsubscribe notifications given up on, by reason (queue_full, retries_exhausted)",
            self.dropped.clone(),
        );
    }
}
