//! What the HTTP side refuses before any handler runs: a `Host` the
//! gateway does not answer to (DNS rebinding), and, on the API, requests a
//! browser could send from any page without asking: a cross-origin request
//! from an origin not allowed, or a body that is not JSON.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::{ApiCode, ApiError};
use crate::state::Shared;

/// How long a browser may cache a preflight's answer.
const PREFLIGHT_MAX_AGE: &str = "600";

/// Refuses a request whose `Host` the gateway does not answer to: 421,
/// JSON under `/api/`, plain text elsewhere.
pub(super) async fn host(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    if shared.exposure.hosts.allows(host) {
        return next.run(request).await;
    }
    let message = format!(
        "Host {:?} not allowed: add it to http.allowed_hosts",
        host.unwrap_or("")
    );
    if request.uri().path().starts_with("/api/") {
        ApiError::new(ApiCode::MisdirectedRequest, message).into_response()
    } else {
        (StatusCode::MISDIRECTED_REQUEST, format!("{message}\n")).into_response()
    }
}

/// The API's own checks: an `Origin` must be in `api.cors_origins` (403
/// otherwise; the answer then carries the CORS headers), and a body must
/// be `application/json` (415).
pub(super) async fn api(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    let origin = request.headers().get(header::ORIGIN).cloned();
    if let Some(origin) = &origin
        && !shared.exposure.cors.allows(request.headers())
    {
        return ApiError::new(
            ApiCode::Forbidden,
            format!(
                "cross-origin request from {} refused: add the origin to api.cors_origins",
                origin.to_str().unwrap_or("[binary]")
            ),
        )
        .into_response();
    }
    if request.method() != Method::OPTIONS
        && has_body(request.headers())
        && !is_json(request.headers())
    {
        return ApiError::new(
            ApiCode::UnsupportedMediaType,
            "request bodies must be JSON: send Content-Type: application/json",
        )
        .into_response();
    }
    let mut response = next.run(request).await;
    if let Some(origin) = origin {
        allow_origin(response.headers_mut(), origin);
    }
    response
}

/// A CORS preflight from an allowed origin (the API check refused the
/// others): the methods, headers and how long to cache the answer.
pub(super) async fn preflight(request: Request) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, DELETE"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type, x-api-key"),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static(PREFLIGHT_MAX_AGE),
    );
    if request.headers().get(header::ORIGIN).is_none() {
        // Not a browser's preflight: nothing to allow.
        headers.clear();
    }
    response
}

fn allow_origin(headers: &mut HeaderMap, origin: HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
}

/// Whether the request says it has a body.
fn has_body(headers: &HeaderMap) -> bool {
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return true;
    }
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n > 0)
}

/// `application/json`, with or without parameters (`; charset=utf-8`).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}
