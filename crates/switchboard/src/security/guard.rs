//! Guards: rules an authenticated (or anonymous) client must pass.

use http::{HeaderValue, StatusCode, header};
use serde_json::Value;

use crate::error::{Rejection, RejectionKind};
use crate::identity::Identity;
use crate::request::RequestInfo;

/// What a guard sees: the identity (if the client authenticated) and the request.
#[derive(Debug, Clone, Copy)]
pub struct GuardContext<'a> {
    pub(crate) identity: Option<&'a Identity>,
    pub(crate) info: &'a RequestInfo,
}

impl<'a> GuardContext<'a> {
    /// The client's identity, if it authenticated.
    pub fn identity(&self) -> Option<&'a Identity> {
        self.identity
    }

    /// The request: path parameters, headers, client address.
    pub fn request(&self) -> &'a RequestInfo {
        self.info
    }

    /// The identity, or the `401 Authentication required` rejection.
    pub fn require_identity(&self) -> Result<&'a Identity, Rejection> {
        self.identity.ok_or_else(authentication_required)
    }
}

/// A rule checked after authentication; the first guard that fails refuses
/// the handshake with its rejection.
///
/// Any `Fn(&GuardContext) -> Result<(), Rejection>` closure is a guard:
///
/// ```
/// use switchboard::security::{GuardContext, Security, permission_denied};
///
/// // Users may only open their own inbox: /ws/inbox/{user}.
/// let security = Security::new().guard(|cx: &GuardContext<'_>| {
///     let identity = cx.require_identity()?;
///     match cx.request().path_param("user") {
///         Some(user) if user == identity.user_id().as_str() => Ok(()),
///         _ => Err(permission_denied()),
///     }
/// });
/// ```
///
/// Guards are synchronous: checks that need I/O belong in an
/// [`crate::security::Authenticator`], whose identity guards then read.
pub trait Guard: Send + Sync + 'static {
    /// Passes, or refuses with a rejection.
    fn check(&self, cx: &GuardContext<'_>) -> Result<(), Rejection>;
}

impl<F> Guard for F
where
    F: Fn(&GuardContext<'_>) -> Result<(), Rejection> + Send + Sync + 'static,
{
    fn check(&self, cx: &GuardContext<'_>) -> Result<(), Rejection> {
        self(cx)
    }
}

/// `401 Unauthorized`, body `Authentication required`, with
/// `WWW-Authenticate: Bearer`.
pub fn authentication_required() -> Rejection {
    Rejection::new(StatusCode::UNAUTHORIZED, "Authentication required")
        .with_kind(RejectionKind::AuthRequired)
        .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
}

/// `403 Forbidden`, body `Permission denied`.
pub fn permission_denied() -> Rejection {
    Rejection::new(StatusCode::FORBIDDEN, "Permission denied")
        .with_kind(RejectionKind::PermissionDenied)
}

/// Refuses anonymous clients: 401 `Authentication required`.
#[derive(Debug, Clone, Copy, Default)]
pub struct IsAuthenticated;

impl Guard for IsAuthenticated {
    fn check(&self, cx: &GuardContext<'_>) -> Result<(), Rejection> {
        cx.require_identity().map(|_| ())
    }
}

/// Admits administrators only: 401 for anonymous clients, 403 `Permission
/// denied` for others.
///
/// By default an administrator is an identity with [`Identity::is_admin`]
/// (for a JWT: see [`crate::security::JwtAuth::admin_claim`]);
/// [`IsAdmin::claim`] decides from a claim instead.
#[derive(Debug, Clone, Default)]
pub struct IsAdmin {
    claim: Option<(String, Value)>,
}

impl IsAdmin {
    /// Administrators are identities whose claim `name` equals `value`, or
    /// is an array containing it (`IsAdmin::claim("roles", "admin")`).
    pub fn claim(name: impl Into<String>, value: impl Into<Value>) -> Self {
        Self {
            claim: Some((name.into(), value.into())),
        }
    }
}

impl Guard for IsAdmin {
    fn check(&self, cx: &GuardContext<'_>) -> Result<(), Rejection> {
        let identity = cx.require_identity()?;
        let admin = match &self.claim {
            None => identity.is_admin(),
            Some((name, value)) => claim_matches(identity.claim(name), value),
        };
        if admin {
            Ok(())
        } else {
            Err(permission_denied())
        }
    }
}

/// Whether a claim equals `value` or is an array containing it.
pub(crate) fn claim_matches(claim: Option<&Value>, value: &Value) -> bool {
    match claim {
        Some(Value::Array(items)) => items.contains(value),
        Some(claim) => claim == value,
        None => false,
    }
}

/// Admits identities holding a permission (for a JWT: listed in its
/// `permissions` array or its space-separated `scope`): 401 for anonymous
/// clients, 403 `Permission denied` for others.
///
/// `HasPermission("chat:write")`, or `HasPermission(name)` with a `String`.
#[derive(Debug, Clone)]
pub struct HasPermission<S = &'static str>(pub S);

impl<S: AsRef<str> + Send + Sync + 'static> Guard for HasPermission<S> {
    fn check(&self, cx: &GuardContext<'_>) -> Result<(), Rejection> {
        if cx.require_identity()?.has_permission(self.0.as_ref()) {
            Ok(())
        } else {
            Err(permission_denied())
        }
    }
}
