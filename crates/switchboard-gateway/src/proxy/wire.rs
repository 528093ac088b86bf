//! The JSON bodies of the proxies (docs/proxy.md has each with examples).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard::broker::Cluster;
use switchboard::protocol::Connection;

use super::client::CallError;

/// What every call about a connection says about it.
#[derive(Debug)]
pub(crate) struct Context {
    cluster: Cluster,
    endpoint: String,
}

impl Context {
    pub(crate) fn new(cluster: Cluster, endpoint: &str) -> Self {
        Self {
            cluster,
            endpoint: endpoint.to_owned(),
        }
    }

    pub(crate) fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    pub(crate) fn caller(&self, conn: &Connection) -> Caller {
        let identity = conn.identity();
        Caller {
            connection: self.cluster.address(conn.id()).to_string(),
            user: identity.as_ref().map(|i| i.user_id().to_string()),
            meta: identity.map_or(Value::Null, |i| i.meta().clone()),
            client: Client {
                ip: conn.request().client_ip().to_string(),
            },
            endpoint: self.endpoint.clone(),
        }
    }
}

/// The connection a call is about.
#[derive(Debug, Serialize)]
pub(crate) struct Caller {
    /// Its cluster address (`gw-1/42`): what the HTTP API takes.
    pub(crate) connection: String,
    /// The user id; `null` for an anonymous connection.
    pub(crate) user: Option<String>,
    /// The metadata the connect proxy gave it (`null`: none).
    pub(crate) meta: Value,
    pub(crate) client: Client,
    /// The endpoint's path pattern (`/ws`).
    pub(crate) endpoint: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct Client {
    /// The client address (after trusted-proxy resolution).
    pub(crate) ip: String,
}

/// `POST connect`.
#[derive(Debug, Serialize)]
pub(crate) struct ConnectRequest<'a> {
    pub(crate) client: Client,
    pub(crate) endpoint: &'a str,
    pub(crate) path: &'a str,
    pub(crate) path_params: BTreeMap<&'a str, &'a str>,
    /// The forwarded headers, names in lower case.
    pub(crate) headers: BTreeMap<&'a str, &'a str>,
    /// The token the endpoint's token sources found (or `AUTHENTICATE`'s).
    pub(crate) token: Option<&'a str>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ConnectResult {
    /// `null` or absent: anonymous.
    #[serde(default)]
    pub(crate) user: Option<String>,
    #[serde(default)]
    pub(crate) expires_at: Option<f64>,
    #[serde(default)]
    pub(crate) permissions: Vec<String>,
    #[serde(default)]
    pub(crate) admin: bool,
    #[serde(default)]
    pub(crate) channels: Vec<String>,
    #[serde(default)]
    pub(crate) meta: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ConnectError {
    pub(crate) message: String,
    /// 401 or 403 (the default).
    #[serde(default)]
    pub(crate) status: Option<u16>,
}

/// `POST rpc`.
#[derive(Debug, Serialize)]
pub(crate) struct RpcRequest<'a> {
    pub(crate) action: &'a str,
    pub(crate) data: Value,
    #[serde(flatten)]
    pub(crate) caller: Caller,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RpcError {
    #[serde(default)]
    pub(crate) code: Option<String>,
    pub(crate) message: String,
    #[serde(default)]
    pub(crate) temporary: bool,
}

/// `POST subscribe`.
#[derive(Debug, Serialize)]
pub(crate) struct SubscribeRequest<'a> {
    pub(crate) channel: &'a str,
    #[serde(flatten)]
    pub(crate) caller: Caller,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct SubscribeResult {
    #[serde(default)]
    pub(crate) data: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Refusal {
    pub(crate) message: String,
}

/// `POST refresh`.
#[derive(Debug, Serialize)]
pub(crate) struct RefreshRequest {
    pub(crate) expires_at: f64,
    #[serde(flatten)]
    pub(crate) caller: Caller,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RefreshResult {
    #[serde(default)]
    pub(crate) expires_at: Option<f64>,
    #[serde(default)]
    pub(crate) expired: bool,
    #[serde(default)]
    pub(crate) meta: Option<Value>,
}

/// A disconnect notification (one of a batch's `events`).
#[derive(Debug, Serialize)]
pub(crate) struct DisconnectEvent {
    #[serde(flatten)]
    pub(crate) caller: Caller,
    /// The close code and reason.
    pub(crate) code: u16,
    pub(crate) reason: String,
    /// Seconds the connection lived.
    pub(crate) duration: f64,
    /// The channels it was subscribed to.
    pub(crate) channels: Vec<String>,
    /// When it ended, seconds since the Unix epoch.
    pub(crate) at: f64,
}

/// An unsubscribe notification.
#[derive(Debug, Serialize)]
pub(crate) struct UnsubscribeEvent {
    #[serde(flatten)]
    pub(crate) caller: Caller,
    pub(crate) channel: String,
    pub(crate) at: f64,
}

/// The body of a notification batch.
#[derive(Debug, Serialize)]
pub(crate) struct Batch<'a> {
    pub(crate) events: &'a [Value],
}

/// The backend's answer: `{"result": ...}` or `{"error": ...}`, nothing
/// else.
#[derive(Debug)]
pub(crate) enum Answer<R, E> {
    Result(R),
    Error(E),
}

impl<R: serde::de::DeserializeOwned, E: serde::de::DeserializeOwned> Answer<R, E> {
    pub(crate) fn read(value: Value) -> Result<Self, CallError> {
        let Value::Object(mut map) = value else {
            return Err(CallError::Invalid("not a JSON object".to_owned()));
        };
        let invalid = |what: &str, e: serde_json::Error| CallError::Invalid(format!("{what}: {e}"));
        match (map.remove("error"), map.remove("result")) {
            (Some(error), _) if !error.is_null() => serde_json::from_value(error)
                .map(Self::Error)
                .map_err(|e| invalid("error", e)),
            (_, Some(result)) => serde_json::from_value(result)
                .map(Self::Result)
                .map_err(|e| invalid("result", e)),
            _ => Err(CallError::Invalid(
                "neither \"result\" nor \"error\"".to_owned(),
            )),
        }
    }
}

pub(crate) fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A time from the wire, if it is a sane one.
pub(crate) fn from_unix_seconds(secs: f64) -> Option<SystemTime> {
    (secs.is_finite() && (0.0..1e11).contains(&secs))
        .then(|| UNIX_EPOCH + Duration::from_secs_f64(secs))
}
