//! Authentication: turning the client's credentials into an [`Identity`].

use std::net::IpAddr;
use std::pin::Pin;

use http::{HeaderValue, StatusCode, header};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::error::{Rejection, RejectionKind};
use crate::identity::Identity;
use crate::request::RequestInfo;

/// What an authenticator sees: the token the route's
/// [`crate::security::TokenSource`]s found, and the whole request (for
/// schemes that need more, such as a client certificate header set by a
/// proxy).
pub struct AuthRequest<'a> {
    pub(crate) token: Option<&'a str>,
    pub(crate) info: &'a RequestInfo,
}

/// Shows whether there is a token, never the token.
impl std::fmt::Debug for AuthRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthRequest")
            .field("token", &self.token.map(|_| "[redacted]"))
            .field("request", self.info)
            .finish()
    }
}

impl AuthRequest<'_> {
    /// The token, if the client presented one.
    pub fn token(&self) -> Option<&str> {
        self.token
    }

    /// The request.
    pub fn request(&self) -> &RequestInfo {
        self.info
    }

    /// The client address (after trusted-proxy resolution).
    pub fn client_ip(&self) -> IpAddr {
        self.info.client_ip()
    }
}

/// Why credentials were refused.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The credentials are not valid. Answers `401` with the body
    /// `Invalid token: <reason>`: keep the reason short and free of secrets.
    #[error("invalid token: {0}")]
    InvalidToken(String),
    /// The credentials could not be checked (an identity service is down).
    /// Answers `503` with `Retry-After: 1` and the body
    /// `Authentication unavailable`; the reason is only logged.
    #[error("authentication unavailable: {0}")]
    Unavailable(String),
    /// Refuse with this response instead.
    #[error(transparent)]
    Rejected(Rejection),
}

impl AuthError {
    /// [`AuthError::InvalidToken`] with `reason`.
    pub fn invalid(reason: impl Into<String>) -> Self {
        Self::InvalidToken(reason.into())
    }

    pub(crate) fn into_rejection(self) -> Rejection {
        match self {
            Self::InvalidToken(reason) => {
                Rejection::new(StatusCode::UNAUTHORIZED, format!("Invalid token: {reason}"))
                    .with_kind(RejectionKind::InvalidToken)
                    .with_header(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static("Bearer error=\"invalid_token\""),
                    )
            }
            Self::Unavailable(reason) => {
                tracing::warn!(%reason, "authentication unavailable");
                Rejection::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Authentication unavailable",
                )
                .with_kind(RejectionKind::AuthUnavailable)
                .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
            }
            Self::Rejected(rejection) => rejection,
        }
    }
}

/// Checks a client's credentials during the handshake.
///
/// Return `Ok(Some(identity))` for a valid credential, `Ok(None)` when the
/// client presented none this authenticator understands (the next
/// authenticator is tried; with none left the client is anonymous, which a
/// [`crate::security::IsAuthenticated`] guard refuses), and an error for a
/// credential that is present but wrong.
///
/// ```
/// use switchboard::security::{AuthError, AuthRequest, Authenticator, Identity};
///
/// struct Sessions;
///
/// impl Authenticator for Sessions {
///     async fn authenticate(&self, request: &AuthRequest<'_>) -> Result<Option<Identity>, AuthError> {
///         let Some(token) = request.token() else { return Ok(None) };
///         // Look the session up (a database, a cache)...
///         match token {
///             "s3cr3t-session" => Ok(Some(Identity::new("alice").with_permissions(["chat"]))),
///             _ => Err(AuthError::invalid("unknown session")),
///         }
///     }
/// }
/// ```
pub trait Authenticator: Send + Sync + 'static {
    /// Authenticates the request.
    fn authenticate(
        &self,
        request: &AuthRequest<'_>,
    ) -> impl Future<Output = Result<Option<Identity>, AuthError>> + Send;
}

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// [`Authenticator`] with its future boxed, so routes can hold any of them.
pub(crate) trait ErasedAuthenticator: Send + Sync {
    fn authenticate<'a>(
        &'a self,
        request: &'a AuthRequest<'a>,
    ) -> BoxFuture<'a, Result<Option<Identity>, AuthError>>;
}

impl<A: Authenticator> ErasedAuthenticator for A {
    fn authenticate<'a>(
        &'a self,
        request: &'a AuthRequest<'a>,
    ) -> BoxFuture<'a, Result<Option<Identity>, AuthError>> {
        Box::pin(Authenticator::authenticate(self, request))
    }
}

/// Static API keys, each mapped to an identity.
///
/// Keys are compared in constant time, against every configured key, so
/// the response time does not tell how much of a guess was right or which
/// key matched (only a key's length can show).
///
/// ```
/// use switchboard::security::{ApiKeyAuth, Identity};
///
/// let keys = ApiKeyAuth::new()
///     .key("k-0f8e9a7b6c5d4e3f", Identity::new("billing-service").with_permissions(["publish"]))
///     .key("k-1a2b3c4d5e6f7a8b", Identity::new("ops").with_admin(true));
/// ```
#[derive(Clone, Default)]
pub struct ApiKeyAuth {
    keys: Vec<(Box<[u8]>, Identity)>,
}

impl ApiKeyAuth {
    /// No keys yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts `key` as `identity`.
    pub fn key(mut self, key: impl AsRef<[u8]>, identity: Identity) -> Self {
        self.keys.push((key.as_ref().into(), identity));
        self
    }
}

impl std::fmt::Debug for ApiKeyAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyAuth")
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl Authenticator for ApiKeyAuth {
    async fn authenticate(&self, request: &AuthRequest<'_>) -> Result<Option<Identity>, AuthError> {
        let Some(token) = request.token() else {
            return Ok(None);
        };
        let token = token.as_bytes();
        let mut found = subtle::Choice::from(0);
        let mut index = 0u32;
        for (i, (key, _)) in self.keys.iter().enumerate() {
            let eq = key.as_ref().ct_eq(token);
            index = u32::conditional_select(&index, &(i as u32), eq & !found);
            found |= eq;
        }
        if bool::from(found) {
            Ok(Some(self.keys[index as usize].1.clone()))
        } else {
            Err(AuthError::invalid("unknown API key"))
        }
    }
}
