//! Who is connected: what authentication produces and handlers read.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};
use switchboard_protocol::Channel;

use crate::hub::UserId;

/// An authenticated client: its user id, the claims it presented, its
/// permissions, whether it is an administrator, and when its credentials
/// expire. Cheap to clone.
///
/// Handlers take it as an argument (`identity: Identity` refuses anonymous
/// clients with 401; `Option<Identity>` accepts them) or read it from
/// [`crate::RequestInfo::identity`]. The hub registers the connection under
/// [`Identity::user_id`].
#[derive(Clone, PartialEq)]
pub struct Identity(Arc<Inner>);

#[derive(Clone, PartialEq)]
struct Inner {
    user: UserId,
    claims: Map<String, Value>,
    permissions: BTreeSet<String>,
    admin: bool,
    expires_at: Option<SystemTime>,
    meta: Value,
    channels: Vec<Channel>,
    grace: Duration,
}

impl Identity {
    /// An identity for `user`, with no claims, no permissions, not an
    /// administrator, never expiring.
    pub fn new(user: impl Into<UserId>) -> Self {
        Self(Arc::new(Inner {
            user: user.into(),
            claims: Map::new(),
            permissions: BTreeSet::new(),
            admin: false,
            expires_at: None,
            meta: Value::Null,
            channels: Vec::new(),
            grace: Duration::ZERO,
        }))
    }

    /// Sets the claims (for a JWT, its payload).
    pub fn with_claims(mut self, claims: Map<String, Value>) -> Self {
        Arc::make_mut(&mut self.0).claims = claims;
        self
    }

    /// Adds permissions.
    pub fn with_permissions<I, S>(mut self, permissions: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Arc::make_mut(&mut self.0)
            .permissions
            .extend(permissions.into_iter().map(Into::into));
        self
    }

    /// Marks the identity as an administrator (or not).
    pub fn with_admin(mut self, admin: bool) -> Self {
        Arc::make_mut(&mut self.0).admin = admin;
        self
    }

    /// Sets when the credentials stop being valid (for a JWT, its `exp`):
    /// what clients are told (`expires_at`), and, plus the
    /// [grace](Identity::with_grace), when the connection is closed with
    /// [`crate::codes::TOKEN_EXPIRED`] (4003) unless
    /// [`crate::security::refresh`] pushes the time back.
    pub fn with_expiry(mut self, expires_at: SystemTime) -> Self {
        Arc::make_mut(&mut self.0).expires_at = Some(expires_at);
        self
    }

    /// Attaches connection metadata: whatever the application wants to
    /// know again about this connection later (a plan, a tenant). Action
    /// handlers read it back through [`Identity::meta`]; the gateway sends
    /// it to the backend with every proxied call.
    pub fn with_meta(mut self, meta: Value) -> Self {
        Arc::make_mut(&mut self.0).meta = meta;
        self
    }

    /// Channels to subscribe the connection to as soon as it is
    /// authenticated, without checking the channel rules (the structured
    /// protocol does; see docs/protocol.md, "Subscribed by the server").
    pub fn with_channels(mut self, channels: impl IntoIterator<Item = Channel>) -> Self {
        Arc::make_mut(&mut self.0).channels = channels.into_iter().collect();
        self
    }

    /// The connection metadata (`null` when none was set).
    pub fn meta(&self) -> &Value {
        &self.0.meta
    }

    /// The channels to subscribe at once.
    pub fn channels(&self) -> &[Channel] {
        &self.0.channels
    }

    /// Sets how long past [`Identity::expires_at`] the connection is kept
    /// (for a JWT, the leeway that tolerates clock skew): the credentials
    /// are still accepted that long, so the connection is too.
    pub fn with_grace(mut self, grace: Duration) -> Self {
        Arc::make_mut(&mut self.0).grace = grace;
        self
    }

    /// The user id.
    pub fn user_id(&self) -> &UserId {
        &self.0.user
    }

    /// Every claim.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.0.claims
    }

    /// One claim.
    pub fn claim(&self, name: &str) -> Option<&Value> {
        self.0.claims.get(name)
    }

    /// The permissions, sorted.
    pub fn permissions(&self) -> impl Iterator<Item = &str> {
        self.0.permissions.iter().map(String::as_str)
    }

    /// Whether the identity holds `permission`.
    pub fn has_permission(&self, permission: &str) -> bool {
        self.0.permissions.contains(permission)
    }

    /// Whether the identity is an administrator.
    pub fn is_admin(&self) -> bool {
        self.0.admin
    }

    /// When the credentials expire, if they do (for a JWT, its `exp`).
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.0.expires_at
    }

    /// How long past [`Identity::expires_at`] the connection is kept.
    pub fn grace(&self) -> Duration {
        self.0.grace
    }

    /// When a connection authenticated with these credentials is closed
    /// with 4003: [`Identity::expires_at`] plus the [grace](Identity::grace).
    pub fn closes_at(&self) -> Option<SystemTime> {
        self.0.expires_at.map(|at| at + self.0.grace)
    }
}

/// Claims may hold personal data: only their names are shown.
impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("user", &self.0.user)
            .field("claims", &self.0.claims.keys().collect::<Vec<_>>())
            .field("permissions", &self.0.permissions)
            .field("admin", &self.0.admin)
            .field("expires_at", &self.0.expires_at)
            .field("meta", &!self.0.meta.is_null())
            .field("channels", &self.0.channels.len())
            .field("grace", &self.0.grace)
            .finish()
    }
}
