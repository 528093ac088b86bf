//! The gateway's HTTP side, on the WebSocket port: the demo page, health,
//! metrics, and the JSON API under `/api/v1`.
//!
//! Requests for paths that are not WebSocket endpoints reach this axum
//! router through `Switchboard::with_http_fallback`, served by hyper's
//! HTTP/1.1 server over the connection's stream (with the bytes the
//! WebSocket side already read replayed).
//!
//! # Layout
//! - `routes`: the one route table ([`Route`]): method, path, handler,
//!   who may call it, and its OpenAPI operation.
//! - this file: the router built from it, the API-key check, request
//!   metrics and the hyper fallback.
//! - `openapi`: the OpenAPI document, generated from the table and the
//!   handlers' types with `utoipa`.
//! - `api`: the `/api/v1` handlers; `extract`: their extractors (JSON
//!   bodies, query strings, path parameters); `error`: the API's errors,
//!   which every refusal under `/api/` uses (a 404 or 405 included).
//! - `pages`: `/` and the client bundle it loads, `/healthz`, `/readyz`,
//!   `/metrics`, the OpenAPI document.

mod api;
mod close;
mod error;
mod extract;
mod guard;
mod history;
mod openapi;
mod pages;
mod routes;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use subtle::ConstantTimeEq;
use switchboard::HttpFallback;

use crate::config::MetricsPlan;
use crate::state::Shared;
use error::{ApiCode, ApiError};
pub(crate) use routes::{Part, Route, is_reserved};

/// The HTTP side's router: every route of the table that the settings turn
/// on, each tagged with its [`Route`] for the request metrics.
pub(crate) fn router(shared: Shared) -> Router {
    let mut router = Router::new();
    let mut preflights = std::collections::HashSet::new();
    for route in Route::ALL {
        let on = match route.part() {
            Part::Health => true,
            Part::Demo => shared.exposure.demo,
            Part::Metrics => matches!(shared.exposure.metrics, MetricsPlan::Main { .. }),
            Part::Api => shared.api.enabled,
        };
        if !on {
            continue;
        }
        let mut handler = route.handler();
        if route.part() == Part::Api {
            // Cross-origin and content-type checks, CORS preflights and
            // the JSON 405 (one OPTIONS and one fallback per path, whatever
            // its methods).
            if preflights.insert(route.path()) {
                let path = route.path();
                handler =
                    handler
                        .options(guard::preflight)
                        .fallback(move |method: Method| async move {
                            method_not_allowed(path, &method)
                        });
            }
            handler = handler.layer(middleware::from_fn_with_state(shared.clone(), guard::api));
        }
        let needs_key = !route.is_public()
            || (route.part() == Part::Metrics
                && shared.exposure.metrics == (MetricsPlan::Main { key: true }));
        if needs_key {
            handler = handler.layer(middleware::from_fn_with_state(shared.clone(), require_key));
        }
        // Outside the key check, so a 401 is counted under its route too.
        handler = handler.layer(middleware::map_response(
            move |mut response: Response| async move {
                response.extensions_mut().insert(route);
                response
            },
        ));
        router = router.route(route.path(), handler);
    }
    router
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(extract::BODY_LIMIT))
        .layer(middleware::from_fn_with_state(shared.clone(), guard::host))
        .layer(middleware::from_fn_with_state(shared.clone(), observe))
        .with_state(shared)
}

/// A router with `/metrics` alone, for its own listener (`metrics.listen`).
pub(crate) fn metrics_router(shared: Shared) -> Router {
    Router::new()
        .route(Route::Metrics.path(), Route::Metrics.handler())
        .fallback(not_found)
        .with_state(shared)
}

/// A method the API route at `path` does not take: 405 with `Allow` (the
/// route table's methods for the path, `HEAD` with `GET`, and `OPTIONS`).
fn method_not_allowed(path: &'static str, method: &Method) -> Response {
    let verbs = Route::verbs_of(path);
    let mut allow: Vec<&str> = Vec::new();
    for verb in &verbs {
        allow.push(verb.as_str());
        if *verb == routes::Verb::Get {
            allow.push("HEAD");
        }
    }
    allow.push("OPTIONS");
    let names: Vec<&str> = verbs.iter().map(|v| v.as_str()).collect();
    let message = format!(
        "{method} is not allowed on {path}: use {}",
        names.join(" or ")
    );
    let allow = HeaderValue::from_str(&allow.join(", ")).expect("method names are header-safe");
    ApiError::method_not_allowed(message, allow).into_response()
}

async fn not_found(request: Request) -> Response {
    if request.uri().path().starts_with("/api/") {
        ApiError::not_found("no such API route").into_response()
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
            ApiCode::Unauthorized,
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
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    let route = response.extensions().get::<Route>().copied();
    let status = response.status().as_u16();
    shared.metrics.http_request(route, status);
    tracing::debug!(
        %method,
        route = route.map_or("unmatched", Route::path),
        status,
        micros = started.elapsed().as_micros() as u64,
        "http request"
    );
    response
}

/// Serves `router` on a listener of its own (HTTP/1.1, keep-alive), until
/// the task is aborted.
pub(crate) async fn serve_plain(listener: tokio::net::TcpListener, router: Router) {
    let serve = fallback(router);
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                tokio::spawn(serve(Box::new(stream), addr));
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics listener: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
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
