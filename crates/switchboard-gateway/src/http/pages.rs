//! The demo page, health checks, metrics and the OpenAPI document.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

use crate::state::Shared;

/// The demo chat page.
const DEMO: &str = include_str!("../../assets/index.html");

/// The OpenAPI 3 description of every route (checked against
/// [`super::ROUTES`] by a test).
pub(crate) const OPENAPI: &str = include_str!("../../assets/openapi.json");

/// `GET /`.
pub(super) async fn demo() -> Html<&'static str> {
    Html(DEMO)
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
