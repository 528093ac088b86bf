//! The demo page and the client bundle it loads, health checks, metrics and
//! the OpenAPI document.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::Shared;

/// The demo chat page.
const DEMO: &str = include_str!("../../assets/index.html");

/// The TypeScript client (`clients/js`) bundled into one ES module by
/// `npm run bundle` there (a test in its `npm test` checks this copy is up
/// to date). The demo page imports it from `/switchboard-client.js`.
pub(crate) const CLIENT_JS: &str = include_str!("../../assets/switchboard-client.js");

/// [`CLIENT_JS`]'s entity tag: a 64-bit FNV-1a hash of its bytes, so a new
/// bundle gets a new tag while an unchanged one keeps it across restarts.
const CLIENT_JS_ETAG: &str = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    const TAG: [u8; 18] = {
        let bytes = CLIENT_JS.as_bytes();
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let mut i = 0;
        while i < bytes.len() {
            hash ^= bytes[i] as u64;
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
            i += 1;
        }
        let mut tag = [b'"'; 18];
        let mut j = 0;
        while j < 16 {
            tag[1 + j] = HEX[((hash >> (60 - 4 * j)) & 0xf) as usize];
            j += 1;
        }
        tag
    };
    match std::str::from_utf8(&TAG) {
        Ok(tag) => tag,
        Err(_) => panic!("hex digits are UTF-8"),
    }
};

/// `GET /`.
#[utoipa::path(
    get,
    path = "/",
    summary = "The demo chat page (when demo.enabled).",
    responses((status = 200, description = "HTML", body = String, content_type = "text/html"))
)]
pub(super) async fn demo() -> Html<&'static str> {
    Html(DEMO)
}

/// `GET /switchboard-client.js`: [`CLIENT_JS`]. `no-cache` with an ETag:
/// browsers keep it but ask again each time (a 304 when unchanged), so a
/// new gateway never runs its page against an old client.
#[utoipa::path(
    get,
    path = "/switchboard-client.js",
    summary = "The TypeScript client (clients/js) bundled as one ES module, which the demo page imports (when demo.enabled). Sent with an ETag and `Cache-Control: no-cache`; a matching If-None-Match answers 304.",
    responses(
        (status = 200, description = "JavaScript (ES module)", body = String, content_type = "text/javascript"),
        (status = 304, description = "Not modified (If-None-Match matched the ETag)"),
    )
)]
pub(super) async fn client_js(request: HeaderMap) -> Response {
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/javascript; charset=utf-8"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (header::ETAG, HeaderValue::from_static(CLIENT_JS_ETAG)),
    ];
    let matches = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == CLIENT_JS_ETAG || tag == "*");
    if matches {
        (StatusCode::NOT_MODIFIED, headers).into_response()
    } else {
        (headers, CLIENT_JS).into_response()
    }
}

/// `GET /healthz`: the process serves HTTP. Always 200.
#[utoipa::path(
    get,
    path = "/healthz",
    summary = "Liveness: 200 whenever the process serves HTTP.",
    responses((status = 200, description = "ok", body = String, content_type = "text/plain"))
)]
pub(super) async fn healthz() -> &'static str {
    "ok\n"
}

/// The answer of `/readyz`.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Readiness {
    ready: bool,
    listening: bool,
    shutting_down: bool,
    broker: BrokerReadiness,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct BrokerReadiness {
    /// `memory` or `redis`.
    r#type: &'static str,
    connected: bool,
}

/// `GET /readyz`: 200 when listening, not shutting down, and the broker is
/// connected; 503 otherwise, with which of them failed.
#[utoipa::path(
    get,
    path = "/readyz",
    summary = "Readiness: 200 when listening, not shutting down and the broker is connected.",
    responses(
        (status = 200, description = "ready", body = Readiness),
        (status = 503, description = "not ready", body = Readiness),
    )
)]
pub(super) async fn readyz(State(shared): State<Shared>) -> Response {
    let ready = shared.ready();
    let status = if ready.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Readiness {
        ready: ready.is_ready(),
        listening: ready.listening,
        shutting_down: ready.shutting_down,
        broker: BrokerReadiness {
            r#type: ready.broker.kind,
            connected: ready.broker.up,
        },
    };
    (status, Json(body)).into_response()
}

/// `GET /metrics`: Prometheus text format 0.0.4.
#[utoipa::path(
    get,
    path = "/metrics",
    summary = "Prometheus metrics, text format 0.0.4 (when metrics.enabled).",
    responses((status = 200, description = "metrics", body = String, content_type = "text/plain"))
)]
pub(super) async fn metrics(State(shared): State<Shared>) -> Response {
    let page = shared.metrics.render(&shared.hub, shared.broker.state());
    (
        [(
            header::CONTENT_TYPE,
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        )],
        page,
    )
        .into_response()
}

/// `GET /api/v1/openapi.json`: the document generated from the route table
/// and the handlers' types.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    summary = "This document.",
    responses((status = 200, description = "OpenAPI 3", body = Object, content_type = "application/json"))
)]
pub(super) async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        super::openapi::json(),
    )
        .into_response()
}
