//! The connect proxy: the backend decides who a connection is, from the
//! handshake's forwarded headers, address, endpoint and path parameters.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use hyper::StatusCode;
use hyper::header::{HeaderName, HeaderValue, RETRY_AFTER};
use switchboard::protocol::wire::Channel;
use switchboard::security::{AuthError, AuthRequest, Authenticator, Identity};
use switchboard::{CloseCode, Rejection, RejectionKind};

use super::client::{Backend, CallError};
use super::wire::{self, Answer, ConnectError, ConnectRequest, ConnectResult};

/// An [`Authenticator`] that asks the backend.
#[derive(Debug)]
pub(crate) struct ConnectProxy {
    backend: Arc<Backend>,
    forward: Vec<HeaderName>,
    /// Refuse after the upgrade, with a close code a browser can read
    /// (`refuse_with = "close"`), rather than with an HTTP status.
    close: bool,
}

impl ConnectProxy {
    pub(crate) fn new(backend: Arc<Backend>, forward: Vec<HeaderName>, close: bool) -> Self {
        Self {
            backend,
            forward,
            close,
        }
    }

    fn refused(&self, error: &ConnectError) -> AuthError {
        let (status, kind) = match error.status {
            Some(401) => (StatusCode::UNAUTHORIZED, RejectionKind::Unauthorized),
            _ => (StatusCode::FORBIDDEN, RejectionKind::Forbidden),
        };
        let message: String = error.message.chars().take(200).collect();
        let mut rejection =
            Rejection::new(status, format!("Connection refused: {message}")).with_kind(kind);
        if self.close {
            rejection = rejection.with_close(CloseCode::Policy, message);
        }
        AuthError::Rejected(rejection)
    }

    fn unavailable(&self, error: &CallError) -> AuthError {
        if !self.close {
            return AuthError::Unavailable(error.to_string());
        }
        tracing::warn!(error = %error, "authentication unavailable");
        AuthError::Rejected(
            Rejection::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Authentication unavailable",
            )
            .with_kind(RejectionKind::AuthUnavailable)
            .with_header(RETRY_AFTER, HeaderValue::from_static("1"))
            .with_close(
                CloseCode::TryAgainLater,
                "Authentication unavailable: retry with backoff",
            ),
        )
    }
}

impl Authenticator for ConnectProxy {
    async fn authenticate(&self, request: &AuthRequest<'_>) -> Result<Option<Identity>, AuthError> {
        let info = request.request();
        let mut headers = BTreeMap::new();
        for name in &self.forward {
            if let Some(value) = info.headers().get(name).and_then(|v| v.to_str().ok()) {
                headers.insert(name.as_str(), value);
            }
        }
        let body = ConnectRequest {
            client: wire::Client {
                ip: request.client_ip().to_string(),
            },
            endpoint: info.route(),
            path: info.path(),
            path_params: info
                .path_params()
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
            headers,
            token: request.token(),
        };
        let answer = self
            .backend
            .call(&body)
            .await
            .and_then(Answer::<ConnectResult, ConnectError>::read);
        match answer.and_then(identity) {
            Ok(Ok(identity)) => Ok(identity),
            Ok(Err(refusal)) => Err(self.refused(&refusal)),
            Err(e) => Err(self.unavailable(&e)),
        }
    }
}

/// The identity a `result` stands for (`None`: anonymous), or the refusal.
fn identity(
    answer: Answer<ConnectResult, ConnectError>,
) -> Result<Result<Option<Identity>, ConnectError>, CallError> {
    let result = match answer {
        Answer::Error(refusal) => return Ok(Err(refusal)),
        Answer::Result(result) => result,
    };
    let Some(user) = result.user.filter(|u| !u.is_empty()) else {
        return Ok(Ok(None));
    };
    let mut identity = Identity::new(user)
        .with_permissions(result.permissions)
        .with_admin(result.admin);
    if let Some(at) = result.expires_at {
        let at = wire::from_unix_seconds(at)
            .ok_or_else(|| CallError::Invalid(format!("expires_at {at} is not a time")))?;
        if at <= SystemTime::now() {
            return Ok(Err(ConnectError {
                message: "session expired".to_owned(),
                status: Some(401),
            }));
        }
        identity = identity.with_expiry(at);
    }
    if let Some(meta) = result.meta {
        identity = identity.with_meta(meta);
    }
    let channels = result
        .channels
        .iter()
        .map(|c| Channel::new(c).map_err(|e| CallError::Invalid(format!("channels: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Ok(Some(identity.with_channels(channels))))
}
