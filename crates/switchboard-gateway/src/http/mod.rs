//! The gateway's HTTP side, on the WebSocket port: the demo page, health,
//! metrics, and the JSON API under `/api/v1`.
//!
//! Requests for paths that are not WebSocket endpoints reach this axum
//! router through `Switchboard::with_http_fallback`, served by hyper's
//! HTTP/1.1 server over the connection's stream (with the bytes the
//! WebSocket side already read replayed).
//!
//! # Layout
//! - this file: the route table ([`ROUTES`], also checked against the
//!   OpenAPI document by a test), the router, the API-key check, request
//!   metrics and the hyper fallback.
//! - `api`: the `/api/v1` handlers; `body`: JSON bodies and errors.
//! - `pages`: `/` and the client bundle it loads, `/healthz`, `/readyz`,
//!   `/metrics`, the OpenAPI document.

mod api;
mod body;
mod pages;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use subtle::ConstantTimeEq;
use switchboard::HttpFallback;

use crate::state::Shared;
use body::ApiError;

/// Paths the HTTP side serves, so no WebSocket endpoint may take them
/// (and nothing under `/api/`).
pub(crate) const RESERVED_PATHS: &[&str] = &[
    "/",
    "/switchboard-client.js",
    "/healthz",
    "/readyz",
    "/metrics",
    "/api",
];

/// Every HTTP route: method and path template. The router is built from
/// this table, and a test checks it against `openapi.json` both ways.
pub(crate) const ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/switchboard-client.js"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/api/v1/openapi.json"),
    ("POST", "/api/v1/publish"),
    ("POST", "/api/v1/disconnect"),
    ("GET", "/api/v1/connections"),
    ("GET", "/api/v1/connections/count"),
    ("GET", "/api/v1/connections/{id}"),
    ("DELETE", "/api/v1/connections/{id}"),
    ("GET", "/api/v1/users/{user}/connections"),
    ("DELETE", "/api/v1/users/{user}/connections"),
    ("GET", "/api/v1/rooms"),
    ("GET", "/api/v1/rooms/{room}"),
    ("POST", "/api/v1/admin/shutdown"),
];

/// Routes anyone may call: everything outside `/api/v1`, and the API's
/// own description.
fn is_public(path: &str) -> bool {
    !path.starts_with("/api/") || path == "/api/v1/openapi.json"
}

fn handler(method: &str, path: &str) -> MethodRouter<Shared> {
    match (method, path) {
        ("GET", "/") => get(pages::demo),
        ("GET", "/switchboard-client.js") => get(pages::client_js),
        ("GET", "/healthz") => get(pages::healthz),
        ("GET", "/readyz") => get(pages::readyz),
        ("GET", "/metrics") => get(pages::metrics),
        ("GET", "/api/v1/openapi.json") => get(pages::openapi),
        ("POST", "/api/v1/publish") => post(api::publish),
        ("POST", "/api/v1/disconnect") => post(api::disconnect),
        ("GET", "/api/v1/connections") => get(api::connections),
        ("GET", "/api/v1/connections/count") => get(api::connection_count),
        ("GET", "/api/v1/connections/{id}") => get(api::connection),
        ("DELETE", "/api/v1/connections/{id}") => delete(api::close_connection),
        ("GET", "/api/v1/users/{user}/connections") => get(api::user_connections),
        ("DELETE", "/api/v1/users/{user}/connections") => delete(api::close_user),
        ("GET", "/api/v1/rooms") => get(api::rooms),
        ("GET", "/api/v1/rooms/{room}") => get(api::room),
        ("POST", "/api/v1/admin/shutdown") => post(api::shutdown),
        _ => unreachable!("route {method} {path} has no handler"),
    }
}

/// The HTTP side's router.
pub(crate) fn router(shared: Shared) -> Router {
    let mut public = Router::new();
    let mut protected = Router::new();
    let mut any_protected = false;
    for (method, path) in ROUTES {
        let skip = ((*path == "/" || *path == "/switchboard-client.js") && !shared.demo)
            || (*path == "/metrics" && !shared.metrics_enabled)
            || (path.starts_with("/api/") && !shared.api.enabled);
        if skip {
            continue;
        }
        if is_public(path) {
            public = public.route(path, handler(method, path));
        } else {
            protected = protected.route(path, handler(method, path));
            any_protected = true;
        }
    }
    if any_protected {
        protected =
            protected.route_layer(middleware::from_fn_with_state(shared.clone(), require_key));
    }
    public
        .merge(protected)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(shared.clone(), observe))
        .with_state(shared)
}

async fn not_found(request: Request) -> Response {
    if request.uri().path().starts_with("/api/") {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such API route").into_response()
    } else {
        (StatusCode::NOT_FOUND, "Not Found\n").into_response()
    }
}

/// `Authorization: Bearer <key>` or `X-API-Key: <key>`, compared in
/// constant time with every configured key. Without configured keys (the
/// gateway refuses to start that way unless it listens on loopback only)
/// every request passes.
async fn require_key(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    let keys = &shared.api.keys;
    if keys.is_empty() {
        return next.run(request).await;
    }
    let presented = presented_key(request.headers());
    let ok = presented.is_some_and(|presented| {
        let mut found = subtle::Choice::from(0);
        for key in keys {
            found |= key.expose().as_bytes().ct_eq(presented.as_bytes());
        }
        bool::from(found)
    });
    if ok {
        next.run(request).await
    } else {
        let mut response = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or unknown API key: send Authorization: Bearer <key> or X-API-Key: <key>",
        )
        .into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        response
    }
}

fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get("x-api-key") {
        return value.to_str().ok();
    }
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Counts every request by route template and status, and logs it at
/// debug (the template, never the raw path or query, which may hold ids
/// or credentials).
async fn observe(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    shared.metrics.http_request(&route, status);
    tracing::debug!(
        %method,
        route,
        status,
        micros = started.elapsed().as_micros() as u64,
        "http request"
    );
    response
}

/// Serves the router over each connection the WebSocket side hands over:
/// HTTP/1.1 with keep-alive, a 10 s limit for the request head.
pub(crate) fn fallback(router: Router) -> HttpFallback {
    Arc::new(move |io, _addr| {
        let service = TowerToHyperService::new(router.clone());
        Box::pin(async move {
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(io), service);
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "http connection ended with an error");
            }
        })
    })
}

#[cfg(test)]
mod tests;
