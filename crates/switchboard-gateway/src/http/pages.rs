//! The demo page and the client bundle it loads, health checks, metrics and
//! the OpenAPI document.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

use crate::state::Shared;

/// The demo chat page.
const DEMO: &str = include_str!("../../assets/index.html");

/// The OpenAPI 3 description of every route (checked against
/// [`super::ROUTES`] by a test).
pub(crate) const OPENAPI: &str = include_str!("../../assets/openapi.json");

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
pub(super) async fn demo() -> Html<&'static str> {
    Html(DEMO)
}

/// `GET /switchboard-client.js`: [`CLIENT_JS`]. `no-cache` with an ETag:
/// browsers keep it but ask again each time (a 304 when unchanged), so a
/// new gateway never runs its page against an old client.
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
pub(super) async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: 200 when listening, not shutting down, and the broker is
/// connected; 503 otherwise, with which of them failed.
pub(super) async fn readyz(State(shared): State<Shared>) -> Response {
    let ready = shared.ready();
    let status = if ready.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "ready": ready.is_ready(),
        "listening": ready.listening,
        "shutting_down": ready.shutting_down,
        "broker": { "type": ready.broker.kind, "connected": ready.broker.up },
    });
    (status, Json(body)).into_response()
}

/// `GET /metrics`: Prometheus text format 0.0.4.
pub(super) async fn metrics(State(shared): State<Shared>) -> Response {
    let page = shared.metrics.render(&shared.hub, shared.broker.state());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        page,
    )
        .into_response()
}

/// `GET /api/v1/openapi.json`.
pub(super) async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}
