//! The API's errors: every failure under `/api/` is
//! `{"error": {"code": ..., "message": ...}}`, with a status that follows
//! from its [`ApiCode`].

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::{ToResponse, ToSchema};

/// The `code` of an API error, and its status. docs/operations.md's error
/// table lists these, in this order (a test compares them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ApiCode {
    /// 400: a request the gateway cannot take as it is.
    BadRequest,
    /// 401: a missing or unknown API key.
    Unauthorized,
    /// 403: not allowed (the admin endpoint without a key, a foreign origin).
    Forbidden,
    /// 404: no such route, connection or history.
    NotFound,
    /// 405: the route does not take this method.
    MethodNotAllowed,
    /// 413: a body over the limit.
    PayloadTooLarge,
    /// 415: a body that is not JSON.
    UnsupportedMediaType,
    /// 421: a `Host` the gateway does not answer to.
    MisdirectedRequest,
    /// 500: a fault in the gateway.
    Internal,
    /// 503: the broker failed.
    BrokerUnavailable,
}

impl ApiCode {
    /// Every code, in the order of the error table.
    #[cfg(test)]
    pub(crate) const ALL: [Self; 10] = [
        Self::BadRequest,
        Self::Unauthorized,
        Self::Forbidden,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::MisdirectedRequest,
        Self::Internal,
        Self::BrokerUnavailable,
    ];

    /// The code on the wire (what serde writes).
    #[cfg(test)]
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::MisdirectedRequest => "misdirected_request",
            Self::Internal => "internal",
            Self::BrokerUnavailable => "broker_unavailable",
        }
    }

    /// The status it is answered with.
    pub(crate) const fn status(self) -> StatusCode {
        match self {
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::MisdirectedRequest => StatusCode::MISDIRECTED_REQUEST,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::BrokerUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// An API failure: `{"error": {"code": ..., "message": ...}}` with its
/// code's status, and for a failing broker the local recipients already
/// reached.
#[derive(Debug)]
pub(crate) struct ApiError {
    code: ApiCode,
    message: String,
    local: Option<usize>,
    allow: Option<HeaderValue>,
}

impl ApiError {
    pub(crate) fn new(code: ApiCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            local: None,
            allow: None,
        }
    }

    /// 400 `bad_request`.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ApiCode::BadRequest, message)
    }

    /// 404 `not_found`.
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(ApiCode::NotFound, message)
    }

    /// 405 `method_not_allowed`, with the `Allow` header.
    pub(crate) fn method_not_allowed(message: impl Into<String>, allow: HeaderValue) -> Self {
        Self {
            allow: Some(allow),
            ..Self::new(ApiCode::MethodNotAllowed, message)
        }
    }

    /// 503 `broker_unavailable`: the broker failed; `local` recipients on
    /// this instance were reached anyway (when known).
    pub(crate) fn broker(error: &dyn std::fmt::Display, local: Option<usize>) -> Self {
        Self {
            local,
            ..Self::new(ApiCode::BrokerUnavailable, error.to_string())
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
    code: ApiCode,
    message: String,
}

/// Bad JSON, an unknown field or query parameter, a missing or ambiguous
/// target, an invalid name (the message names the field).
#[derive(Debug, ToResponse)]
pub(crate) struct BadRequest(#[allow(dead_code)] ErrorBody);

/// Missing or unknown API key.
#[derive(Debug, ToResponse)]
pub(crate) struct Unauthorized(#[allow(dead_code)] ErrorBody);

/// No such connection here.
#[derive(Debug, ToResponse)]
pub(crate) struct NotFound(#[allow(dead_code)] ErrorBody);

/// A method the route does not take; `Allow` lists those it does.
#[derive(Debug, ToResponse)]
pub(crate) struct MethodNotAllowed(#[allow(dead_code)] ErrorBody);

/// A body over 2 MiB.
#[derive(Debug, ToResponse)]
pub(crate) struct PayloadTooLarge(#[allow(dead_code)] ErrorBody);

/// A body without `Content-Type: application/json`.
#[derive(Debug, ToResponse)]
pub(crate) struct UnsupportedMediaType(#[allow(dead_code)] ErrorBody);

/// The broker failed. Local recipients were reached (`local`); other
/// instances were not.
#[derive(Debug, ToResponse)]
pub(crate) struct BrokerUnavailable(#[allow(dead_code)] ErrorBody);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.code.status();
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
            },
            local: self.local,
            forwarded: self.local.map(|_| false),
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let Some(allow) = self.allow {
            headers.insert(header::ALLOW, allow);
        }
        response
    }
}
