//! JSON bodies in and out of the API, and its error responses.

use axum::Json;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::{ToResponse, ToSchema};

/// An API failure: `{"error": {"code": ..., "message": ...}}` with its
/// status, and for a failing broker the local recipients already reached.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    local: Option<usize>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            local: None,
        }
    }

    /// 400 `bad_request`.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 404 `not_found`.
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 503 `broker_unavailable`: the broker failed; `local` recipients on
    /// this instance were reached anyway (when known).
    pub(crate) fn broker(error: &dyn std::fmt::Display, local: Option<usize>) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "broker_unavailable",
            message: error.to_string(),
            local,
        }
    }
}

/// The body of every API error.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Error)]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
    /// With a failing broker: the recipients on this instance already reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    local: Option<usize>,
    /// With a failing broker: `false`, other instances were not reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    forwarded: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorDetail {
    /// `bad_request`, `unauthorized`, `forbidden`, `not_found`,
    /// `broker_unavailable`, ...
    code: &'static str,
    message: String,
}

/// Bad JSON, an unknown field, a missing or ambiguous target, an invalid name.
#[derive(Debug, ToResponse)]
pub(crate) struct BadRequest(#[allow(dead_code)] ErrorBody);

/// Missing or unknown API key.
#[derive(Debug, ToResponse)]
pub(crate) struct Unauthorized(#[allow(dead_code)] ErrorBody);

/// No such connection here.
#[derive(Debug, ToResponse)]
pub(crate) struct NotFound(#[allow(dead_code)] ErrorBody);

/// The broker failed. Local recipients were reached (`local`); other
/// instances were not.
#[derive(Debug, ToResponse)]
pub(crate) struct BrokerUnavailable(#[allow(dead_code)] ErrorBody);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
            },
            local: self.local,
            forwarded: self.local.map(|_| false),
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}

/// A JSON body, whatever its `Content-Type` (so `curl -d` works), with
/// errors that name the field: `target.room: invalid type: ...`.
#[derive(Debug)]
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|e| ApiError::new(e.status(), "bad_request", e.body_text()))?;
        parse(&bytes).map(ApiJson)
    }
}

/// Parses a JSON body; an empty body is parsed as `{}`.
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || inner.is_syntax() || inner.is_eof() {
            ApiError::bad_request(format!("invalid JSON body: {inner}"))
        } else {
            ApiError::bad_request(format!("{path}: {inner}"))
        }
    })?;
    deserializer
        .end()
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    Ok(value)
}
