//! Running the gateway from a [`Plan`]: the hub and the broker, the app and
//! its HTTP side, the listener (TCP or TLS), and the shutdown.

use std::sync::Arc;

use anyhow::Context as _;
use switchboard::broker::{BrokerError, Cluster, MemoryBroker};
use switchboard::{Hub, Switchboard};
use tokio::net::TcpListener;

use crate::config::{BrokerPlan, MetricsPlan, Plan};
use crate::metrics::{Metrics, MetricsHooks};
use crate::shutdown::{self, Trigger};
use crate::state::{BrokerHandle, Inner, Shared};
use crate::{endpoints, http, proxy, tls};

/// Serves until shutdown has drained; `Ok` means exit 0.
pub(crate) async fn run(plan: Plan) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::default());
    let hub = Hub::new();
    hub.add_hooks(MetricsHooks(Arc::clone(&metrics)));
    let history = plan.history.config.clone();
    tracing::info!("{}", plan.history.summary());
    let presence = plan.presence.config.clone();
    tracing::info!("{}", plan.presence.summary());
    let (cluster, broker, distributed) = match plan.broker {
        BrokerPlan::Memory => {
            let memory = MemoryBroker::with_history_memory(plan.history.max_memory);
            let cluster = Cluster::builder(hub.clone(), memory)
                .instance(plan.instance.clone())
                .history(history)
                .presence(presence)
                .build();
            (cluster, BrokerHandle::memory(), false)
        }
        BrokerPlan::Redis { broker, url } => {
            tracing::info!(url, instance = %plan.instance, "broker: redis");
            let cluster = Cluster::builder(hub.clone(), broker.clone())
                .instance(plan.instance.clone())
                .history(history)
                .presence(presence)
                .build();
            (cluster, BrokerHandle::redis(broker), true)
        }
    };
    let shared = Shared::new(Inner {
        hub: hub.clone(),
        cluster: cluster.clone(),
        broker,
        metrics: Arc::clone(&metrics),
        api: plan.api.clone(),
        structured: plan.structured.clone(),
        exposure: plan.exposure.clone(),
        shutdown: Trigger::default(),
    });
    let paths: Vec<String> = plan.endpoints.iter().map(|e| e.path.clone()).collect();
    let mut proxies = proxy::Running::default();
    let app = endpoints::mount(
        Switchboard::new(),
        plan.endpoints,
        &cluster,
        distributed,
        &plan.server.security,
        &metrics.proxy,
        &mut proxies,
    )
    .with_hub(hub)
    .with_config(plan.server.clone())
    .on_refusal({
        let metrics = Arc::clone(&metrics);
        move |rejection, _addr| metrics.rejected(rejection.kind)
    })
    .with_http_fallback(http::fallback(http::router(shared.clone())));
    proxies.report_lost(&cluster);

    // Plain TCP goes through the framework's own listener (its TCP fast
    // path); TLS through ours, which wraps each stream first.
    let (listener, addr, handle) = if plan.tls.is_some() {
        let listener = TcpListener::bind(plan.listen)
            .await
            .with_context(|| format!("cannot listen on {}", plan.listen))?;
        let addr = listener.local_addr()?;
        let app = app.into_app();
        let handle = app.shutdown_handle();
        (Listener::Tls(app, listener), addr, handle)
    } else {
        let server = app
            .bind(plan.listen)
            .await
            .with_context(|| format!("cannot listen on {}", plan.listen))?;
        let addr = server.local_addr();
        let handle = server.shutdown_handle();
        (Listener::Tcp(server), addr, handle)
    };
    let trigger = shared.shutdown.clone();
    trigger.attach(handle);
    let metrics_task = match plan.exposure.metrics {
        MetricsPlan::Own(own) => {
            let listener = TcpListener::bind(own)
                .await
                .with_context(|| format!("cannot listen on {own} (metrics.listen)"))?;
            let router = http::metrics_router(shared.clone());
            Some(tokio::spawn(http::serve_plain(listener, router)))
        }
        _ => None,
    };
    tokio::spawn(shutdown::watch_signals(
        trigger.clone(),
        plan.restart_on_shutdown,
    ));
    start_broker(shared.clone());

    let scheme = if plan.tls.is_some() { "wss" } else { "ws" };
    tracing::info!(
        %addr,
        endpoints = ?paths,
        api = plan.api.enabled,
        api_key = !plan.api.keys.is_empty(),
        tls = plan.tls.is_some(),
        "switchboard listening"
    );
    tracing::info!(
        "{}",
        plan.exposure
            .summary(addr, plan.api.enabled, plan.api.keys.len())
    );
    // One line on stdout for scripts and tests: the address actually bound.
    println!("listening on {scheme}://{addr}");
    metrics.set_listening(true);

    match (listener, plan.tls) {
        (Listener::Tls(app, listener), Some(config)) => {
            let timeout = plan.server.handshake_timeout;
            let drain = plan.server.shutdown_timeout;
            tls::serve(app, listener, config, trigger, timeout, drain).await;
        }
        // Accepts until the trigger starts shutdown (the framework watches
        // the same handle), then drains within the shutdown timeout.
        (Listener::Tcp(server), _) => server.run_until(std::future::pending()).await?,
        (Listener::Tls(..), None) => unreachable!("a TLS listener without TLS settings"),
    }
    metrics.set_listening(false);
    if let Some(task) = metrics_task {
        task.abort();
    }
    // Disconnect notifications of the connections shutdown closed.
    proxies.drain(std::time::Duration::from_secs(5)).await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), cluster.shutdown()).await;
    tracing::info!("shut down");
    Ok(())
}

enum Listener {
    Tcp(switchboard::Server),
    Tls(switchboard::App, TcpListener),
}

/// Connects the broker in the background: the gateway serves (and
/// `/readyz` says 503) while a network broker is still unreachable.
fn start_broker(shared: Shared) {
    tokio::spawn(async move {
        match shared.cluster.start().await {
            Ok(()) => {
                shared.broker.set_started();
                tracing::info!("broker started");
            }
            Err(e @ (BrokerError::Unavailable(_) | BrokerError::Timeout(_))) => {
                // The Redis broker keeps reconnecting; readiness follows it.
                shared.broker.set_started();
                tracing::warn!(error = %e, "broker not reachable yet; retrying in the background");
            }
            Err(e) => tracing::error!(error = %e, "broker failed to start"),
        }
    });
}
