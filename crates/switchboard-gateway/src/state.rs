//! What the HTTP side and the runtime share: the hub, the cluster and its
//! broker, the metrics, the API settings, and the shutdown trigger.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use switchboard::Hub;
use switchboard::broker::Cluster;
use switchboard::protocol::StructuredChannels;
use switchboard_redis::RedisBroker;

use crate::config::{ApiPlan, ExposurePlan};
use crate::metrics::{BrokerState, Metrics};
use crate::shutdown::Trigger;

/// Shared by every HTTP request. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Shared(Arc<Inner>);

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) hub: Hub,
    pub(crate) cluster: Cluster,
    pub(crate) broker: BrokerHandle,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) api: ApiPlan,
    /// The structured endpoints' channels (the API wraps bare text to them).
    pub(crate) structured: StructuredChannels,
    /// What is exposed, to whom.
    pub(crate) exposure: ExposurePlan,
    /// Starts graceful shutdown (the listener's handle is attached once
    /// it is bound).
    pub(crate) shutdown: Trigger,
}

impl std::ops::Deref for Shared {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Shared {
    pub(crate) fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }

    /// Whether the gateway can take traffic: listening, not shutting down,
    /// and the broker connected.
    pub(crate) fn ready(&self) -> Readiness {
        Readiness {
            listening: self.metrics.is_listening(),
            shutting_down: self.shutdown.is_shutting_down(),
            broker: self.broker.state(),
        }
    }
}

/// The answer of `/readyz`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Readiness {
    pub(crate) listening: bool,
    pub(crate) shutting_down: bool,
    pub(crate) broker: BrokerState,
}

impl Readiness {
    pub(crate) fn is_ready(&self) -> bool {
        self.listening && !self.shutting_down && self.broker.up
    }
}

/// The broker as the gateway watches it.
#[derive(Debug)]
pub(crate) struct BrokerHandle {
    redis: Option<RedisBroker>,
    started: AtomicBool,
}

impl BrokerHandle {
    pub(crate) fn memory() -> Self {
        Self {
            redis: None,
            started: AtomicBool::new(false),
        }
    }

    pub(crate) fn redis(broker: RedisBroker) -> Self {
        Self {
            redis: Some(broker),
            started: AtomicBool::new(false),
        }
    }

    pub(crate) fn set_started(&self) {
        self.started.store(true, Ordering::Release);
    }

    pub(crate) fn state(&self) -> BrokerState {
        let started = self.started.load(Ordering::Acquire);
        match &self.redis {
            None => BrokerState {
                kind: "memory",
                up: started,
                redis: None,
            },
            Some(redis) => BrokerState {
                kind: "redis",
                up: started && redis.is_connected(),
                redis: Some(redis.stats()),
            },
        }
    }
}
