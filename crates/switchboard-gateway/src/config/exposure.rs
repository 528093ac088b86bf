//! What the gateway exposes, and to whom: the hosts it answers to, the
//! origins that may call its API from a browser, where `/metrics` and the
//! demo page are served. A gateway reachable from other hosts (it listens
//! beyond loopback, or `server.public` says a proxy on this host forwards
//! to it) opens nothing by accident.

use std::net::SocketAddr;

use switchboard::security::{HostPolicy, OriginPolicy};

use super::Config;
use super::plan::Problems;

/// Where `/metrics` is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetricsPlan {
    Off,
    /// On the main port; `key` when it needs the API key.
    Main {
        key: bool,
    },
    /// On its own address (not on the main port), without a key.
    Own(SocketAddr),
}

/// The exposure rules, checked.
#[derive(Debug, Clone)]
pub(crate) struct ExposurePlan {
    /// Reachable from other hosts.
    pub(crate) public: bool,
    pub(crate) hosts: HostPolicy,
    /// The names of `hosts`, for the summary (`*` for any).
    pub(crate) host_names: Vec<String>,
    /// Origins that may call the API from a browser.
    pub(crate) cors: OriginPolicy,
    pub(crate) cors_origins: Vec<String>,
    pub(crate) metrics: MetricsPlan,
    pub(crate) demo: bool,
}

pub(crate) fn exposure_plan(config: &Config, api_keys: usize, p: &mut Problems) -> ExposurePlan {
    let listen = config.server.listen;
    let public = config.server.public || !listen.ip().is_loopback();

    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    if !listen.ip().is_unspecified() && !names.contains(&listen.ip().to_string()) {
        names.push(listen.ip().to_string());
    }
    names.extend(config.http.allowed_hosts.iter().cloned());
    let (hosts, host_names) = match HostPolicy::allow_list(&names) {
        Ok(policy) if policy.is_any() => (policy, vec!["*".to_owned()]),
        // Listening on every address: clients reach it by any of this
        // host's addresses. A rebinding page can only send its own name.
        Ok(policy) => (
            policy.allow_ip_literals(listen.ip().is_unspecified()),
            names,
        ),
        Err(e) => {
            p.push("http.allowed_hosts", e.to_string());
            (HostPolicy::any(), names)
        }
    };

    let cors = match OriginPolicy::allow_list(&config.api.cors_origins) {
        Ok(policy) => policy,
        Err(e) => {
            p.push("api.cors_origins", e.to_string());
            OriginPolicy::allow_list(Vec::<String>::new()).unwrap_or_default()
        }
    };

    let m = &config.metrics;
    let metrics = match (m.enabled, m.listen) {
        (false, _) => MetricsPlan::Off,
        (true, Some(own)) => {
            if own == listen {
                p.push(
                    "metrics.listen",
                    "must differ from server.listen (leave it out to serve /metrics there)",
                );
            }
            MetricsPlan::Own(own)
        }
        (true, None) if public && (api_keys == 0 || !config.api.enabled) => {
            p.push(
                "metrics",
                format!(
                    "the gateway is reachable beyond this host ({}) and /metrics would be open to anyone: set metrics.listen (a private address), api.keys (then /metrics needs a key), or metrics.enabled = false",
                    reach(listen, config.server.public)
                ),
            );
            MetricsPlan::Main { key: true }
        }
        (true, None) => MetricsPlan::Main { key: public },
    };

    ExposurePlan {
        public,
        hosts,
        host_names,
        cors,
        cors_origins: config.api.cors_origins.clone(),
        metrics,
        demo: config.demo.enabled.unwrap_or(!public),
    }
}

/// Why the gateway counts as reachable from other hosts.
fn reach(listen: SocketAddr, forced: bool) -> String {
    if forced {
        format!("server.public = true on {listen}")
    } else {
        format!("listening on {listen}")
    }
}

impl ExposurePlan {
    /// One line: what is exposed and where (printed by `serve` at start
    /// and by `config check`).
    pub(crate) fn summary(&self, listen: SocketAddr, api: bool, api_keys: usize) -> String {
        let scope = if self.public {
            "reachable from other hosts"
        } else {
            "this host only (loopback)"
        };
        let hosts = self.host_names.join(", ");
        let api = match (api, api_keys) {
            (false, _) => "off".to_owned(),
            (true, 0) => "open (loopback, no key)".to_owned(),
            (true, n) => format!("key required ({n} key(s))"),
        };
        let cors = if self.cors_origins.is_empty() {
            "none".to_owned()
        } else {
            self.cors_origins.join(", ")
        };
        let metrics = match self.metrics {
            MetricsPlan::Off => "off".to_owned(),
            MetricsPlan::Main { key: true } => "on the main port, key required".to_owned(),
            MetricsPlan::Main { key: false } => "on the main port, open".to_owned(),
            MetricsPlan::Own(addr) => format!("on {addr} only"),
        };
        let demo = if self.demo { "on" } else { "off" };
        format!(
            "exposure: {scope} on {listen}; hosts: {hosts}; api: {api}; api cors origins: {cors}; metrics: {metrics}; demo page: {demo}"
        )
    }
}
