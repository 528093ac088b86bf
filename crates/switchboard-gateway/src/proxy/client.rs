//! One proxy's HTTP transport: a keep-alive connection pool (HTTP/1.1, or
//! HTTP/2 with prior knowledge), the proxy's timeout and concurrency limit,
//! static headers, the body's HMAC-SHA256 signature, a request id, and the
//! answer's size limit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue, USER_AGENT};
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use sha2::Sha256;
use tokio::sync::Semaphore;

use super::ProxyKind;
use super::metrics::ProxyMetrics;
use crate::config::Secret;

/// The header carrying `sha256=<hex>`: HMAC-SHA256 of the body with the
/// proxy's secret.
pub(crate) const SIGNATURE_HEADER: &str = "x-switchboard-signature";
/// The header carrying the call's id (also in the gateway's logs).
pub(crate) const REQUEST_ID_HEADER: &str = "x-request-id";

/// One proxy's settings, checked (see `config::proxy`).
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) url: Uri,
    pub(crate) timeout: Duration,
    pub(crate) max_in_flight: usize,
    pub(crate) max_response_size: usize,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) secret: Option<Secret>,
    pub(crate) http2: bool,
}

/// Why a call failed: the `kind` label of `switchboard_proxy_errors_total`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    /// No connection, or it broke before an answer came.
    #[error("backend unreachable: {0}")]
    Unreachable(String),
    /// No whole answer within the proxy's timeout (waiting for a free slot
    /// under `max_in_flight` included).
    #[error("backend timed out")]
    Timeout,
    /// An answer other than 200.
    #[error("backend answered HTTP {0}")]
    Status(u16),
    /// An answer over `max_response_size` (refused before reading it all).
    #[error("backend answer over {0} bytes")]
    TooLarge(usize),
    /// Not JSON, or not the documented shape.
    #[error("invalid backend answer: {0}")]
    Invalid(String),
}

impl CallError {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Unreachable(_) => "unreachable",
            Self::Timeout => "timeout",
            Self::Status(_) => "status",
            Self::TooLarge(_) => "too_large",
            Self::Invalid(_) => "invalid",
        }
    }
}

/// A backend URL with its pool, limits and signing key.
pub(crate) struct Backend {
    kind: ProxyKind,
    settings: Settings,
    client: Client<HttpConnector, Full<Bytes>>,
    permits: Arc<Semaphore>,
    metrics: Arc<ProxyMetrics>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("kind", &self.kind)
            .field("url", &self.settings.url)
            .finish_non_exhaustive()
    }
}

impl Backend {
    pub(crate) fn new(kind: ProxyKind, settings: Settings, metrics: Arc<ProxyMetrics>) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(settings.timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(settings.max_in_flight)
            .http2_only(settings.http2)
            .build(connector);
        Self {
            kind,
            permits: Arc::new(Semaphore::new(settings.max_in_flight)),
            settings,
            client,
            metrics,
        }
    }

    pub(crate) fn kind(&self) -> ProxyKind {
        self.kind
    }

    pub(crate) fn metrics(&self) -> &ProxyMetrics {
        &self.metrics
    }

    /// POSTs `body` and returns the answer's JSON, under the timeout and
    /// the concurrency limit; counted and timed per proxy. Failures are
    /// logged with the request id.
    pub(crate) async fn call(&self, body: &impl Serialize) -> Result<serde_json::Value, CallError> {
        let request_id = request_id();
        let started = Instant::now();
        self.metrics.started(self.kind);
        let result = tokio::time::timeout(self.settings.timeout, self.exchange(body, &request_id))
            .await
            .unwrap_or(Err(CallError::Timeout));
        let elapsed = started.elapsed();
        self.metrics.finished(
            self.kind,
            elapsed,
            result.as_ref().err().map(CallError::kind),
        );
        match &result {
            Ok(_) => tracing::debug!(
                proxy = self.kind.as_str(),
                request_id,
                elapsed_ms = elapsed.as_secs_f64() * 1e3,
                "proxy call"
            ),
            Err(e) => tracing::warn!(
                proxy = self.kind.as_str(),
                request_id,
                error = %e,
                elapsed_ms = elapsed.as_secs_f64() * 1e3,
                "proxy call failed"
            ),
        }
        result
    }

    async fn exchange(
        &self,
        body: &impl Serialize,
        request_id: &str,
    ) -> Result<serde_json::Value, CallError> {
        let body = serde_json::to_vec(body)
            .map(Bytes::from)
            .map_err(|e| CallError::Invalid(format!("request did not serialise: {e}")))?;
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| CallError::Unreachable("closed".to_owned()))?;
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(self.settings.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(
                USER_AGENT,
                concat!("switchboard/", env!("CARGO_PKG_VERSION")),
            )
            .header(REQUEST_ID_HEADER, request_id);
        if let Some(secret) = &self.settings.secret {
            request = request.header(
                SIGNATURE_HEADER,
                signature(secret.expose().as_bytes(), &body),
            );
        }
        for (name, value) in &self.settings.headers {
            request = request.header(name, value);
        }
        let request = request
            .body(Full::new(body))
            .map_err(|e| CallError::Invalid(format!("request: {e}")))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| CallError::Unreachable(error_chain(&e)))?;
        let status = response.status();
        if status != hyper::StatusCode::OK {
            return Err(CallError::Status(status.as_u16()));
        }
        let max = self.settings.max_response_size;
        let declared = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > max as u64) {
            return Err(CallError::TooLarge(max));
        }
        let bytes = Limited::new(response.into_body(), max)
            .collect()
            .await
            .map_err(|e| {
                if e.downcast_ref::<LengthLimitError>().is_some() {
                    CallError::TooLarge(max)
                } else {
                    CallError::Unreachable(e.to_string())
                }
            })?
            .to_bytes();
        serde_json::from_slice(&bytes).map_err(|e| CallError::Invalid(format!("not JSON: {e}")))
    }
}

/// A fresh request id: this process's random prefix and a counter (unique
/// across calls and restarts, without a syscall per call as a v4 UUID
/// takes).
fn request_id() -> String {
    static PREFIX: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| uuid::Uuid::new_v4().simple().to_string()[..16].to_owned());
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{n}", *PREFIX)
}

/// `sha256=<hex of HMAC-SHA256(secret, body)>`.
pub(crate) fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256>>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for byte in digest {
        use std::fmt::Write as _;
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// An error and its sources, on one line (hyper's own message is terse).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_in_hex() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
