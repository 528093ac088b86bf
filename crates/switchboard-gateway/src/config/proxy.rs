//! `[proxy]` and `endpoints[].proxy`: the backend proxy of structured
//! endpoints (docs/proxy.md), checked into a [`ProxyPlan`].

use std::collections::BTreeMap;
use std::time::Duration;

use hyper::header::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use switchboard::protocol::{ActionPattern, ChannelPattern};

use super::plan::{EndpointKind, EndpointPlan, Problems};
use super::units::{Secret, Size, Span};
use super::{Config, ProtocolName};
use crate::proxy::Settings;

/// The proxy section. The keys outside the per-proxy tables are defaults
/// for every proxy; each proxy may set its own.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ProxySection {
    pub(crate) timeout: Span,
    pub(crate) max_in_flight: usize,
    pub(crate) max_response_size: Size,
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) secret: Option<Secret>,
    pub(crate) secret_env: Option<String>,
    pub(crate) http2: bool,
    pub(crate) connect: Option<ProxyTable>,
    pub(crate) refresh: Option<ProxyTable>,
    pub(crate) subscribe: Option<ProxyTable>,
    pub(crate) rpc: Option<ProxyTable>,
    pub(crate) disconnect: Option<ProxyTable>,
    pub(crate) unsubscribe: Option<ProxyTable>,
}

impl Default for ProxySection {
    fn default() -> Self {
        Self {
            timeout: Span::secs(5),
            max_in_flight: 1024,
            max_response_size: Size(1 << 20),
            headers: BTreeMap::new(),
            secret: None,
            secret_env: None,
            http2: false,
            connect: None,
            refresh: None,
            subscribe: None,
            rpc: None,
            disconnect: None,
            unsubscribe: None,
        }
    }
}

/// One proxy (`[proxy.rpc]`). The keys of the section may be overridden;
/// the rest belong to one proxy each (checked).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ProxyTable {
    pub(crate) url: Option<String>,
    pub(crate) timeout: Option<Span>,
    pub(crate) max_in_flight: Option<usize>,
    pub(crate) max_response_size: Option<Size>,
    /// Added to the section's headers (same name: this one).
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) http2: Option<bool>,
    /// connect: handshake headers sent to the backend, besides Cookie and
    /// Authorization.
    pub(crate) forward_headers: Option<Vec<String>>,
    /// connect: `after` (JWT and API keys first) or `before`.
    pub(crate) order: Option<Order>,
    /// connect: `close` (101, then close 1008/1013) or `status` (403/401/503).
    pub(crate) refuse_with: Option<RefuseWith>,
    /// refresh: how long before `expires_at` to ask.
    pub(crate) before: Option<Span>,
    /// subscribe: the channel patterns the backend decides.
    pub(crate) channels: Option<Vec<String>>,
    /// rpc: the action names (`orders.*`) the backend answers.
    pub(crate) actions: Option<Vec<String>>,
    /// disconnect, unsubscribe: queue capacity, events per batch, how long
    /// a failed batch is retried.
    pub(crate) queue: Option<usize>,
    pub(crate) batch: Option<usize>,
    pub(crate) retry_for: Option<Span>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Order {
    After,
    Before,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RefuseWith {
    Close,
    Status,
}

/// The checked proxies of one structured endpoint.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProxyPlan {
    pub(crate) connect: Option<ConnectPlan>,
    pub(crate) refresh: Option<RefreshPlan>,
    pub(crate) subscribe: Option<SubscribePlan>,
    pub(crate) rpc: Option<RpcPlan>,
    pub(crate) disconnect: Option<NotifyPlan>,
    pub(crate) unsubscribe: Option<NotifyPlan>,
}

#[derive(Debug, Clone)]
pub(crate) struct ConnectPlan {
    pub(crate) settings: Settings,
    pub(crate) forward_headers: Vec<HeaderName>,
    pub(crate) first: bool,
    pub(crate) refuse_with_close: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct RefreshPlan {
    pub(crate) settings: Settings,
    pub(crate) before: Duration,
}

#[derive(Debug, Clone)]
pub(crate) struct SubscribePlan {
    pub(crate) settings: Settings,
    pub(crate) channels: Vec<ChannelPattern>,
}

#[derive(Debug, Clone)]
pub(crate) struct RpcPlan {
    pub(crate) settings: Settings,
    pub(crate) actions: Vec<ActionPattern>,
}

#[derive(Debug, Clone)]
pub(crate) struct NotifyPlan {
    pub(crate) settings: Settings,
    pub(crate) queue: usize,
    pub(crate) batch: usize,
    pub(crate) retry_for: Duration,
}

/// Checks a proxy section (`at` is `proxy` or `endpoints[2].proxy`);
/// `auth_timeout` is the endpoint's, which the connect proxy must beat.
pub(crate) fn plan(
    at: &str,
    s: &ProxySection,
    auth_timeout: Duration,
    p: &mut Problems,
) -> ProxyPlan {
    let secret = match (&s.secret, &s.secret_env) {
        (Some(_), Some(_)) => {
            p.push(
                format!("{at}.secret_env"),
                "set secret or secret_env, not both",
            );
            None
        }
        (Some(secret), None) => Some(secret.clone()),
        (None, Some(var)) => match std::env::var(var) {
            Ok(value) if !value.is_empty() => Some(Secret::new(value)),
            _ => {
                p.push(
                    format!("{at}.secret_env"),
                    format!("the environment variable {var} is not set"),
                );
                None
            }
        },
        (None, None) => None,
    };
    if secret.as_ref().is_some_and(|s| s.expose().len() < 16) {
        p.push(
            format!("{at}.secret"),
            "too short: use at least 16 characters",
        );
    }
    let defaults = Defaults { s, secret };
    let connect = s.connect.as_ref().and_then(|t| {
        let key = format!("{at}.connect");
        only(&key, t, &["forward_headers", "order", "refuse_with"], p);
        let settings = defaults.settings(&key, t, p)?;
        if settings.timeout >= auth_timeout {
            p.push(
                format!("{key}.timeout"),
                format!(
                    "{} is not shorter than the endpoint's security.auth_timeout ({}): the backend's answer would come too late",
                    Span(settings.timeout),
                    Span(auth_timeout)
                ),
            );
        }
        let mut forward = vec![hyper::header::COOKIE, hyper::header::AUTHORIZATION];
        for (i, name) in t.forward_headers.iter().flatten().enumerate() {
            match HeaderName::from_bytes(name.as_bytes()) {
                Ok(name) if !forward.contains(&name) => forward.push(name),
                Ok(_) => {}
                Err(_) => p.push(
                    format!("{key}.forward_headers[{i}]"),
                    format!("{name:?} is not a header name"),
                ),
            }
        }
        Some(ConnectPlan {
            settings,
            forward_headers: forward,
            first: t.order == Some(Order::Before),
            refuse_with_close: t.refuse_with != Some(RefuseWith::Status),
        })
    });
    let refresh = s.refresh.as_ref().and_then(|t| {
        let key = format!("{at}.refresh");
        only(&key, t, &["before"], p);
        let before = t.before.unwrap_or(Span::secs(60)).0;
        Some(RefreshPlan {
            settings: defaults.settings(&key, t, p)?,
            before,
        })
    });
    let subscribe = s.subscribe.as_ref().and_then(|t| {
        let key = format!("{at}.subscribe");
        only(&key, t, &["channels"], p);
        let channels = patterns(&format!("{key}.channels"), t.channels.as_deref(), p, |s| {
            ChannelPattern::new(s).map_err(|e| e.to_string())
        });
        Some(SubscribePlan {
            settings: defaults.settings(&key, t, p)?,
            channels,
        })
    });
    let rpc = s.rpc.as_ref().and_then(|t| {
        let key = format!("{at}.rpc");
        only(&key, t, &["actions"], p);
        let actions = patterns(&format!("{key}.actions"), t.actions.as_deref(), p, |s| {
            ActionPattern::new(s)
        });
        Some(RpcPlan {
            settings: defaults.settings(&key, t, p)?,
            actions,
        })
    });
    let notify = |name: &str, t: &ProxyTable, p: &mut Problems| {
        let key = format!("{at}.{name}");
        only(&key, t, &["queue", "batch", "retry_for"], p);
        let queue = t.queue.unwrap_or(10_000);
        let batch = t.batch.unwrap_or(100);
        for (k, v) in [("queue", queue), ("batch", batch)] {
            if v == 0 {
                p.push(format!("{key}.{k}"), "must be at least 1");
            }
        }
        Some(NotifyPlan {
            settings: defaults.settings(&key, t, p)?,
            queue,
            batch,
            retry_for: t.retry_for.unwrap_or(Span::secs(30)).0,
        })
    };
    let disconnect = s
        .disconnect
        .as_ref()
        .and_then(|t| notify("disconnect", t, p));
    let unsubscribe = s
        .unsubscribe
        .as_ref()
        .and_then(|t| notify("unsubscribe", t, p));
    ProxyPlan {
        connect,
        refresh,
        subscribe,
        rpc,
        disconnect,
        unsubscribe,
    }
}

struct Defaults<'a> {
    s: &'a ProxySection,
    secret: Option<Secret>,
}

impl Defaults<'_> {
    fn settings(&self, key: &str, t: &ProxyTable, p: &mut Problems) -> Option<Settings> {
        let s = self.s;
        let timeout = t.timeout.unwrap_or(s.timeout).0;
        if timeout.is_zero() {
            p.push(format!("{key}.timeout"), "must be more than 0");
        }
        let max_in_flight = t.max_in_flight.unwrap_or(s.max_in_flight);
        if max_in_flight == 0 {
            p.push(format!("{key}.max_in_flight"), "must be at least 1");
        }
        let max_response_size = t.max_response_size.unwrap_or(s.max_response_size).0;
        if max_response_size == 0 {
            p.push(
                format!("{key}.max_response_size"),
                "must be at least 1 byte",
            );
        }
        let mut headers = Vec::new();
        let mut merged = s.headers.clone();
        merged.extend(t.headers.clone());
        for (name, value) in &merged {
            match (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                (Ok(name), Ok(value)) => headers.push((name, value)),
                _ => p.push(
                    format!("{key}.headers"),
                    format!("{name:?} is not a valid header name and value"),
                ),
            }
        }
        let Some(url) = &t.url else {
            p.push(format!("{key}.url"), "required: the backend URL to POST to");
            return None;
        };
        let uri = match url.parse::<hyper::Uri>() {
            Ok(uri) if uri.scheme_str() == Some("http") && uri.host().is_some() => uri,
            Ok(uri) if uri.scheme_str() == Some("https") => {
                p.push(
                    format!("{key}.url"),
                    format!("{uri}: https is not supported yet: use http on a private network (or a local TLS-terminating proxy)"),
                );
                return None;
            }
            _ => {
                p.push(
                    format!("{key}.url"),
                    format!("{url:?} is not an http:// URL"),
                );
                return None;
            }
        };
        Some(Settings {
            url: uri,
            timeout,
            max_in_flight: max_in_flight.max(1),
            max_response_size: max_response_size.max(1),
            headers,
            secret: self.secret.clone(),
            http2: t.http2.unwrap_or(s.http2),
        })
    }
}

/// Complains about keys of other proxies set in `t`.
fn only(key: &str, t: &ProxyTable, allowed: &[&str], p: &mut Problems) {
    let set = [
        ("forward_headers", t.forward_headers.is_some()),
        ("order", t.order.is_some()),
        ("refuse_with", t.refuse_with.is_some()),
        ("before", t.before.is_some()),
        ("channels", t.channels.is_some()),
        ("actions", t.actions.is_some()),
        ("queue", t.queue.is_some()),
        ("batch", t.batch.is_some()),
        ("retry_for", t.retry_for.is_some()),
    ];
    for (name, present) in set {
        if present && !allowed.contains(&name) {
            p.push(
                format!("{key}.{name}"),
                "not a setting of this proxy (docs/configuration.md, [proxy])",
            );
        }
    }
}

fn patterns<T>(
    key: &str,
    list: Option<&[String]>,
    p: &mut Problems,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Vec<T> {
    let Some(list) = list.filter(|l| !l.is_empty()) else {
        p.push(key, "required: at least one pattern");
        return Vec::new();
    };
    list.iter()
        .enumerate()
        .filter_map(|(i, s)| parse(s).map_err(|e| p.push(format!("{key}[{i}]"), e)).ok())
        .collect()
}

/// Gives each structured endpoint its proxy plan: its own
/// `endpoints[i].proxy`, else `[proxy]`. (The built-in endpoints take
/// `[proxy]`.)
pub(super) fn apply(config: &Config, endpoints: &mut [EndpointPlan], p: &mut Problems) {
    let server_timeout = config.security.auth_timeout.0;
    let shared = config
        .proxy
        .as_ref()
        .map(|s| plan("proxy", s, server_timeout, p));
    let sections = config.endpoints.as_deref().unwrap_or_default();
    for (i, endpoint) in endpoints.iter_mut().enumerate() {
        let own = sections.get(i).and_then(|e| {
            let section = e.proxy.as_ref()?;
            let at = format!("endpoints[{i}].proxy");
            if e.protocol != ProtocolName::Structured {
                p.push(at, "only for protocol = \"structured\"");
                return None;
            }
            let timeout = e
                .security
                .as_ref()
                .map_or(server_timeout, |s| s.auth_timeout.0);
            Some(plan(&at, section, timeout, p))
        });
        if let EndpointKind::Structured(structured) = &mut endpoint.kind {
            structured.proxy = own.or_else(|| shared.clone());
        }
    }
}
