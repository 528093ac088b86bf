//! The API's extractors: a JSON body ([`ApiJson`]), a query string
//! ([`ApiQuery`]) and path parameters ([`ApiPath`]). What they refuse is an
//! [`ApiError`] that names the field (`limit: invalid digit found in
//! string`), never axum's plain-text rejection: handlers use these, not
//! axum's `Json`, `Query` and `Path`, so that every rejection goes through
//! the one mapping here.

use axum::extract::rejection::{FailedToBufferBody, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::error::{ApiCode, ApiError};

/// The largest request body the API reads (2 MiB), applied to the router
/// with `DefaultBodyLimit`.
pub(crate) const BODY_LIMIT: usize = 2 * 1024 * 1024;

/// A JSON body, deserialized with errors that name the field:
/// `target.room: invalid type: ...`. (The API's guard has already refused
/// a body without `Content-Type: application/json`.)
#[derive(Debug)]
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|e| match e {
                axum::extract::rejection::BytesRejection::FailedToBufferBody(
                    FailedToBufferBody::LengthLimitError(_),
                ) => ApiError::new(
                    ApiCode::PayloadTooLarge,
                    format!("the request body is over {BODY_LIMIT} bytes (2 MiB)"),
                ),
                other => ApiError::bad_request(format!(
                    "the request body could not be read: {}",
                    other.body_text()
                )),
            })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// The query string, deserialized with errors that name the parameter:
/// `limit: invalid digit found in string`, `sort: unknown field ...`.
#[derive(Debug)]
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(ApiQuery)
            .map_err(|e| {
                let path = e.path().to_string();
                field_error("invalid query string", &path, e.into_inner())
            })
    }
}

/// Path parameters (percent-decoded), with errors that name the parameter.
#[derive(Debug)]
pub(crate) struct ApiPath<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => Err(path_error(rejection)),
        }
    }
}

fn path_error(rejection: PathRejection) -> ApiError {
    use axum::extract::path::ErrorKind;
    let e = match rejection {
        PathRejection::FailedToDeserializePathParams(e) => e,
        // No parameters where the route has some: a bug in the route table.
        other => return ApiError::new(ApiCode::Internal, other.body_text()),
    };
    match e.kind() {
        ErrorKind::InvalidUtf8InPathParam { key } => {
            ApiError::bad_request(format!("{key}: not valid UTF-8 once percent-decoded"))
        }
        ErrorKind::ParseErrorAtKey {
            key,
            value,
            expected_type,
        } => ApiError::bad_request(format!("{key}: {value:?} is not a valid {expected_type}")),
        ErrorKind::DeserializeError { key, message, .. } => {
            ApiError::bad_request(format!("{key}: {message}"))
        }
        ErrorKind::WrongNumberOfParameters { .. } | ErrorKind::UnsupportedType { .. } => {
            ApiError::new(ApiCode::Internal, e.body_text())
        }
        _ => ApiError::bad_request(e.body_text()),
    }
}

/// Parses a JSON body; an empty body is parsed as `{}`.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::bad_request(format!("invalid JSON body: {inner}"))
        } else {
            field_error("invalid JSON body", &path, inner)
        }
    })?;
    deserializer
        .end()
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    Ok(value)
}

/// `path: error` for an error at a field; `what: error` for one about the
/// whole (serde's path `.`).
fn field_error(what: &str, path: &str, error: impl std::fmt::Display) -> ApiError {
    if path == "." {
        ApiError::bad_request(format!("{what}: {error}"))
    } else {
        ApiError::bad_request(format!("{path}: {error}"))
    }
}
