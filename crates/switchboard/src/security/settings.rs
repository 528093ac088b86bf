//! [`Security`]: who may connect to a route.

use std::sync::Arc;
use std::time::Duration;

use super::auth::{Authenticator, ErasedAuthenticator};
use super::guard::Guard;
use super::origin::OriginPolicy;
use super::rate_limit::RateLimit;
use super::token::TokenSource;

/// Who may connect to a route. Build it with the methods; every field has a
/// default that is safe for a browser-facing endpoint without credentials.
#[derive(Clone)]
#[non_exhaustive]
pub struct Security {
    /// Which `Origin`s are accepted. Default [`OriginPolicy::same_origin`],
    /// requests without `Origin` allowed.
    pub origins: OriginPolicy,
    /// New connections per client address on this route. Default none.
    pub rate_limit: Option<RateLimit>,
    /// Connections open at once per client address on this route. Default none.
    pub max_connections_per_ip: Option<usize>,
    /// Connections open at once per authenticated user on this route. Default none.
    pub max_connections_per_user: Option<usize>,
    /// Where the token is looked for, in order. Default `[TokenSource::Bearer]`.
    pub token_sources: Vec<TokenSource>,
    /// Longest time authentication may take (a slow identity service)
    /// before the client gets `503 Authentication unavailable`. Default 10 s.
    pub auth_timeout: Duration,
    pub(super) authenticators: Vec<(&'static str, Arc<dyn ErasedAuthenticator>)>,
    pub(super) guards: Vec<(&'static str, Arc<dyn Guard>)>,
}

impl Default for Security {
    fn default() -> Self {
        Self {
            origins: OriginPolicy::default(),
            rate_limit: None,
            max_connections_per_ip: None,
            max_connections_per_user: None,
            token_sources: vec![TokenSource::Bearer],
            auth_timeout: Duration::from_secs(10),
            authenticators: Vec::new(),
            guards: Vec::new(),
        }
    }
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn names<T: ?Sized>(v: &[(&'static str, Arc<T>)]) -> Vec<&'static str> {
            v.iter().map(|(n, _)| *n).collect()
        }
        f.debug_struct("Security")
            .field("origins", &self.origins)
            .field("rate_limit", &self.rate_limit)
            .field("max_connections_per_ip", &self.max_connections_per_ip)
            .field("max_connections_per_user", &self.max_connections_per_user)
            .field("token_sources", &self.token_sources)
            .field("auth_timeout", &self.auth_timeout)
            .field("authenticators", &names(&self.authenticators))
            .field("guards", &names(&self.guards))
            .finish()
    }
}

impl Security {
    /// The defaults: same-origin only, no limits, no authentication, no guards.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts the origins matching `patterns` (see [`OriginPolicy::allow_list`]).
    ///
    /// # Panics
    /// On an invalid pattern; build an [`OriginPolicy`] and use
    /// [`Security::origins`] to get an error instead.
    pub fn allow_origins<I, S>(self, patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let allow_missing = self.origins.allow_missing;
        let policy = OriginPolicy::allow_list(patterns).unwrap_or_else(|e| panic!("{e}"));
        self.origins(policy.with_missing_allowed(allow_missing))
    }

    /// Accepts any origin (for routes without cookie or other ambient credentials).
    pub fn allow_any_origin(self) -> Self {
        let allow_missing = self.origins.allow_missing;
        self.origins(OriginPolicy::any().with_missing_allowed(allow_missing))
    }

    /// Refuses requests without an `Origin` header (only browsers may connect).
    pub fn deny_missing_origin(mut self) -> Self {
        self.origins.allow_missing = false;
        self
    }

    /// Sets [`Security::origins`].
    pub fn origins(mut self, policy: OriginPolicy) -> Self {
        self.origins = policy;
        self
    }

    /// Sets [`Security::rate_limit`].
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }

    /// Sets [`Security::max_connections_per_ip`].
    pub fn max_connections_per_ip(mut self, n: usize) -> Self {
        self.max_connections_per_ip = Some(n);
        self
    }

    /// Sets [`Security::max_connections_per_user`].
    pub fn max_connections_per_user(mut self, n: usize) -> Self {
        self.max_connections_per_user = Some(n);
        self
    }

    /// Adds an authenticator. Several are tried in order until one
    /// recognises the credentials (see [`Authenticator`]).
    pub fn authenticate(mut self, authenticator: impl Authenticator) -> Self {
        let name = short_type_name(std::any::type_name_of_val(&authenticator));
        self.authenticators.push((name, Arc::new(authenticator)));
        self
    }

    /// Adds an authenticator before those already there: it is tried
    /// first.
    pub fn authenticate_first(mut self, authenticator: impl Authenticator) -> Self {
        let name = short_type_name(std::any::type_name_of_val(&authenticator));
        self.authenticators
            .insert(0, (name, Arc::new(authenticator)));
        self
    }

    /// Sets [`Security::token_sources`], replacing the default.
    pub fn tokens_from(mut self, sources: impl IntoIterator<Item = TokenSource>) -> Self {
        self.token_sources = sources.into_iter().collect();
        self
    }

    /// Sets [`Security::auth_timeout`].
    pub fn auth_timeout(mut self, timeout: Duration) -> Self {
        self.auth_timeout = timeout;
        self
    }

    /// Adds a guard; guards run in order after authentication.
    pub fn guard(mut self, guard: impl Guard) -> Self {
        let name = short_type_name(std::any::type_name_of_val(&guard));
        self.guards.push((name, Arc::new(guard)));
        self
    }
}

impl Security {
    /// Whether any authenticator is configured.
    pub(crate) fn has_authenticators(&self) -> bool {
        !self.authenticators.is_empty()
    }
}

fn short_type_name(name: &'static str) -> &'static str {
    let generic = name.find('<').unwrap_or(name.len());
    let start = name[..generic].rfind("::").map_or(0, |i| i + 2);
    &name[start..]
}
