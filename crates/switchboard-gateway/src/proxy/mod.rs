//! The backend proxy: clients talk to the application's own HTTP backend,
//! in any language, with no code in the gateway (docs/proxy.md).
//!
//! Each proxy is an HTTP POST of a documented JSON body to a URL of the
//! backend, per structured endpoint (`[proxy]`, `endpoints[].proxy`):
//! `connect` decides who a connection is (an [`switchboard::security::Authenticator`]),
//! `refresh` extends a session about to expire, `subscribe` decides
//! channels (a [`switchboard::protocol::ChannelAuthorizer`]), `rpc` answers
//! actions whose names match (`actions_matching`), and `disconnect` and
//! `unsubscribe` are notifications sent in batches from a bounded queue.
//!
//! # Layout
//! - `client`: one proxy's transport: the pooled HTTP client, timeout,
//!   concurrency limit, headers, signature, request id, size limit.
//! - `wire`: the request and answer bodies.
//! - `connect`, `rpc`, `subscribe`, `refresh`: one proxy each.
//! - `notify`: the queue, batches and retries of the notifications, and
//!   the protocol hooks that feed them (`hooks`).
//! - `metrics`: calls, errors by kind, latency, in flight, dropped.

mod client;
mod connect;
mod hooks;
mod lost;
mod metrics;
mod notify;
mod refresh;
mod rpc;
mod subscribe;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use switchboard::Security;
use switchboard::broker::Cluster;
use switchboard::protocol::{Access, ChannelRules, StructuredProtocol};

pub(crate) use client::{Backend, Settings};
pub(crate) use metrics::ProxyMetrics;

use crate::config::ProxyPlan;

/// Which proxy: the `proxy` label of the metrics, and the log field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ProxyKind {
    Connect,
    Refresh,
    Subscribe,
    Rpc,
    Disconnect,
    Unsubscribe,
}

impl ProxyKind {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Refresh => "refresh",
            Self::Subscribe => "subscribe",
            Self::Rpc => "rpc",
            Self::Disconnect => "disconnect",
            Self::Unsubscribe => "unsubscribe",
        }
    }
}

/// What outlives mounting: the notification queues, drained at shutdown.
#[derive(Debug, Default, Clone)]
pub(crate) struct Running {
    notifiers: Vec<Arc<notify::Notifier>>,
    /// The disconnect notifiers, by endpoint, for lost connections.
    lost: lost::LostNotifier,
}

impl Running {
    /// Waits (at most `within`) until every queued notification was sent or
    /// given up on: at shutdown, after the connections closed.
    /// With a broker that hands out the connections of dead instances:
    /// sends their disconnect events through the endpoints' disconnect
    /// proxies.
    pub(crate) fn report_lost(&self, cluster: &Cluster) {
        if self.lost.is_empty() {
            return;
        }
        let lost = self.lost.clone();
        cluster.on_lost_connections(move |connections| lost.notify(connections));
    }

    pub(crate) async fn drain(&self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        for notifier in &self.notifiers {
            notifier.drain(deadline).await;
        }
    }
}

/// What installing proxies needs besides the endpoint: the cluster (for
/// connection addresses), the metrics, and where the notification queues
/// go.
#[derive(Debug)]
pub(crate) struct Installer<'a> {
    pub(crate) cluster: &'a Cluster,
    /// Whether other instances share the cluster (records of connections
    /// are kept only then).
    pub(crate) distributed: bool,
    pub(crate) metrics: &'a Arc<ProxyMetrics>,
    pub(crate) running: &'a mut Running,
}

impl Installer<'_> {
    /// Wires an endpoint's proxies into its protocol and security: the
    /// connect proxy among the authenticators, subscribe rules before the
    /// static ones, rpc patterns, the hooks behind refresh and the
    /// notifications.
    pub(crate) fn install(
        &mut self,
        plan: &ProxyPlan,
        endpoint: &str,
        protocol: StructuredProtocol,
        rules: &ChannelRules,
        security: Security,
    ) -> (StructuredProtocol, Security) {
        install(plan, endpoint, protocol, rules, security, self)
    }
}

fn install(
    plan: &ProxyPlan,
    endpoint: &str,
    protocol: StructuredProtocol,
    rules: &ChannelRules,
    security: Security,
    installer: &mut Installer<'_>,
) -> (StructuredProtocol, Security) {
    let (cluster, metrics) = (installer.cluster, installer.metrics);
    let context = Arc::new(wire::Context::new(cluster.clone(), endpoint));
    let backend = |kind: ProxyKind, settings: &Settings| {
        Arc::new(Backend::new(kind, settings.clone(), Arc::clone(metrics)))
    };
    let mut security = security;
    if let Some(connect) = &plan.connect {
        let proxy = connect::ConnectProxy::new(
            backend(ProxyKind::Connect, &connect.settings),
            connect.forward_headers.clone(),
            connect.refuse_with_close,
        );
        security = if connect.first {
            security.authenticate_first(proxy)
        } else {
            security.authenticate(proxy)
        };
    }
    let mut protocol = protocol;
    if let Some(subscribe) = &plan.subscribe {
        let proxy = Arc::new(subscribe::SubscribeProxy::new(
            backend(ProxyKind::Subscribe, &subscribe.settings),
            Arc::clone(&context),
        ));
        let mut combined = ChannelRules::new();
        for pattern in &subscribe.channels {
            combined = combined.rule(
                pattern.clone(),
                Access::custom(subscribe::Shared(Arc::clone(&proxy))),
            );
        }
        for (pattern, access) in rules.rules() {
            combined = combined.rule(pattern.clone(), access.clone());
        }
        protocol = protocol.channels(combined);
    }
    if let Some(rpc) = &plan.rpc {
        let proxy = Arc::new(rpc::RpcProxy::new(
            backend(ProxyKind::Rpc, &rpc.settings),
            Arc::clone(&context),
        ));
        for pattern in &rpc.actions {
            let proxy = Arc::clone(&proxy);
            protocol = protocol.actions_matching(pattern.clone(), move |cx, data| {
                let proxy = Arc::clone(&proxy);
                async move { proxy.call(cx, data).await }
            });
        }
    }
    let notifier = |kind: ProxyKind, plan: &Option<crate::config::NotifyPlan>| {
        plan.as_ref().map(|n| {
            Arc::new(notify::Notifier::start(
                backend(kind, &n.settings),
                n.queue,
                n.batch,
                n.retry_for,
            ))
        })
    };
    let disconnect = notifier(ProxyKind::Disconnect, &plan.disconnect);
    let unsubscribe = notifier(ProxyKind::Unsubscribe, &plan.unsubscribe);
    installer
        .running
        .notifiers
        .extend(disconnect.iter().cloned());
    if let Some(notifier) = &disconnect {
        installer.running.lost.add(endpoint, Arc::clone(notifier));
    }
    let records = disconnect.is_some() && installer.distributed;
    installer
        .running
        .notifiers
        .extend(unsubscribe.iter().cloned());
    let refresh = plan.refresh.as_ref().map(|r| {
        Arc::new(refresh::Refresher::new(
            backend(ProxyKind::Refresh, &r.settings),
            Arc::clone(&context),
            r.before,
        ))
    });
    if disconnect.is_some() || unsubscribe.is_some() || refresh.is_some() {
        protocol = protocol.hooks(hooks::ProxyHooks {
            context,
            disconnect,
            unsubscribe,
            refresh,
            records,
        });
    }
    (protocol, security)
}
