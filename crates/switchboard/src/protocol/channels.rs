//! Who may subscribe to which channel: rules matched in order, first match
//! wins, and everything no rule matches is denied.

use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;

use switchboard_protocol::Channel;
pub use switchboard_protocol::pattern::{ChannelPattern, PatternError};

use super::engine::Connection;
use crate::identity::Identity;

/// Channel authorization rules.
///
/// Each rule is a [`ChannelPattern`] and an [`Access`]. For a channel, the
/// first rule whose pattern matches decides; a channel no rule matches is
/// refused. A pattern holding `{user_id}` only lets in the user whose id
/// fills it, and then only if the access allows.
///
/// [`ChannelRules::default`] is the gateway's default: `public:*` for
/// anyone, `user:{user_id}:*` for that user only, nothing else.
///
/// ```
/// use switchboard::protocol::{Access, ChannelRules};
///
/// let rules = ChannelRules::default()
///     .allow("team:*", Access::Authenticated)
///     .allow("admin:*", Access::Admin)
///     .allow("billing:*", Access::permission("billing:read"))
///     .allow("room:*", Access::custom(|req: &switchboard::protocol::ChannelRequest<'_>| {
///         req.channel().as_str().len() < 40
///     }));
/// ```
#[derive(Debug, Clone)]
pub struct ChannelRules {
    rules: Vec<(ChannelPattern, Access)>,
}

impl Default for ChannelRules {
    fn default() -> Self {
        Self::new()
            .allow("public:*", Access::Anyone)
            .allow("user:{user_id}:*", Access::Authenticated)
    }
}

impl ChannelRules {
    /// No rules: every channel is refused.
    pub fn new() -> Self {
        Self { rules: Vec::new() }
    }

    /// Adds a rule (after those already there).
    ///
    /// # Panics
    /// If `pattern` is not a valid [`ChannelPattern`]; parse it with
    /// [`ChannelPattern::new`] and use [`ChannelRules::rule`] to handle the
    /// error (for patterns from a configuration file).
    pub fn allow(self, pattern: &str, access: Access) -> Self {
        let pattern = ChannelPattern::new(pattern).unwrap_or_else(|e| panic!("{e}"));
        self.rule(pattern, access)
    }

    /// Adds a rule (after those already there).
    pub fn rule(mut self, pattern: ChannelPattern, access: Access) -> Self {
        self.rules.push((pattern, access));
        self
    }

    /// Rules from configuration, in order: `(pattern, access)` pairs such
    /// as `("public:*", "anyone")`, `("user:{user_id}:*", "authenticated")`,
    /// `("billing:*", "permission:billing:read")` (see [`Access`]'s
    /// `FromStr`). Nothing else is allowed.
    pub fn from_pairs<I, P, A>(pairs: I) -> Result<Self, PatternError>
    where
        I: IntoIterator<Item = (P, A)>,
        P: AsRef<str>,
        A: AsRef<str>,
    {
        pairs
            .into_iter()
            .try_fold(Self::new(), |rules, (pattern, access)| {
                Ok(rules.rule(
                    ChannelPattern::new(pattern.as_ref())?,
                    access.as_ref().parse()?,
                ))
            })
    }

    /// The rules, in order.
    pub fn rules(&self) -> impl Iterator<Item = (&ChannelPattern, &Access)> {
        self.rules.iter().map(|(p, a)| (p, a))
    }

    /// Whether `conn` may subscribe to `channel`.
    pub async fn authorize(&self, conn: &Connection, channel: &Channel) -> bool {
        self.decide(conn, channel).await.is_allowed()
    }

    /// What the first matching rule decides for `conn` and `channel`, with
    /// the data or reason a custom authorizer gave.
    pub async fn decide(&self, conn: &Connection, channel: &Channel) -> ChannelDecision {
        let identity = conn.identity();
        for (pattern, access) in &self.rules {
            let Some(matched) = pattern.matches(channel.as_str()) else {
                continue;
            };
            if let Some(owner) = matched.user_id {
                let user = identity.as_ref().map(|i| i.user_id().as_str());
                if user != Some(owner) {
                    return ChannelDecision::deny();
                }
            }
            let request = ChannelRequest {
                channel,
                identity: identity.as_ref(),
                connection: conn,
            };
            return access.decide(&request).await;
        }
        ChannelDecision::deny()
    }
}

/// What a rule (or a [`ChannelAuthorizer`]) decided about a subscription.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ChannelDecision {
    /// Subscribe; `data`, if any, goes to the client in `SUBSCRIBE_SUCCESS`.
    Allow {
        /// Channel data for the client.
        data: Option<serde_json::Value>,
    },
    /// Refuse: `SUBSCRIBE_FAILURE` `forbidden`, with `reason` if given.
    Deny {
        /// Why, for people.
        reason: Option<String>,
    },
    /// The check could not run (a service it needs is down):
    /// `SUBSCRIBE_FAILURE` `unavailable`, which clients retry with backoff.
    Unavailable {
        /// Why, for people (keep secrets out).
        reason: String,
    },
}

impl ChannelDecision {
    /// [`ChannelDecision::Allow`] without data.
    pub fn allow() -> Self {
        Self::Allow { data: None }
    }

    /// [`ChannelDecision::Allow`] with `data` for the client.
    pub fn allow_with(data: serde_json::Value) -> Self {
        Self::Allow { data: Some(data) }
    }

    /// [`ChannelDecision::Deny`] with the default reason.
    pub fn deny() -> Self {
        Self::Deny { reason: None }
    }

    /// [`ChannelDecision::Deny`] with `reason`.
    pub fn deny_because(reason: impl Into<String>) -> Self {
        Self::Deny {
            reason: Some(reason.into()),
        }
    }

    /// [`ChannelDecision::Unavailable`].
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Self::Unavailable {
            reason: reason.into(),
        }
    }

    /// Whether the subscription may go ahead.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allow { .. })
    }
}

impl From<bool> for ChannelDecision {
    fn from(allowed: bool) -> Self {
        if allowed { Self::allow() } else { Self::deny() }
    }
}

/// Who a rule lets in.
#[derive(Clone)]
#[non_exhaustive]
pub enum Access {
    /// Anyone, authenticated or not.
    Anyone,
    /// Any authenticated client.
    Authenticated,
    /// Authenticated clients holding this permission.
    Permission(String),
    /// Administrators ([`Identity::is_admin`]).
    Admin,
    /// Nobody (to close off part of a broader pattern below it).
    Nobody,
    /// Your rule.
    Custom(Authorizer),
}

impl Access {
    /// [`Access::Permission`].
    pub fn permission(name: impl Into<String>) -> Self {
        Self::Permission(name.into())
    }

    /// [`Access::Custom`].
    pub fn custom(authorizer: impl ChannelAuthorizer) -> Self {
        Self::Custom(Authorizer(Arc::new(authorizer)))
    }

    async fn decide(&self, request: &ChannelRequest<'_>) -> ChannelDecision {
        let allowed = match self {
            Self::Anyone => true,
            Self::Authenticated => request.identity.is_some(),
            Self::Permission(p) => request.identity.is_some_and(|i| i.has_permission(p)),
            Self::Admin => request.identity.is_some_and(Identity::is_admin),
            Self::Nobody => false,
            Self::Custom(Authorizer(a)) => return a.authorize_boxed(request).await,
        };
        allowed.into()
    }
}

impl fmt::Debug for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Anyone => f.write_str("Anyone"),
            Self::Authenticated => f.write_str("Authenticated"),
            Self::Permission(p) => f.debug_tuple("Permission").field(p).finish(),
            Self::Admin => f.write_str("Admin"),
            Self::Nobody => f.write_str("Nobody"),
            Self::Custom(_) => f.write_str("Custom"),
        }
    }
}

/// Parses the names used in configuration files: `anyone`,
/// `authenticated`, `admin`, `nobody`, `permission:<name>`.
impl FromStr for Access {
    type Err = PatternError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "anyone" => Self::Anyone,
            "authenticated" => Self::Authenticated,
            "admin" => Self::Admin,
            "nobody" => Self::Nobody,
            _ => match s.strip_prefix("permission:") {
                Some(p) if !p.is_empty() => Self::Permission(p.to_owned()),
                _ => {
                    return Err(PatternError::new(format!(
                        "unknown access {s:?}: expected anyone, authenticated, admin, nobody or permission:<name>"
                    )));
                }
            },
        })
    }
}

/// What a [`ChannelAuthorizer`] sees.
#[derive(Debug, Clone, Copy)]
pub struct ChannelRequest<'a> {
    channel: &'a Channel,
    identity: Option<&'a Identity>,
    connection: &'a Connection,
}

impl<'a> ChannelRequest<'a> {
    /// The channel asked for.
    pub fn channel(&self) -> &'a Channel {
        self.channel
    }

    /// The client's identity, if it authenticated.
    pub fn identity(&self) -> Option<&'a Identity> {
        self.identity
    }

    /// The connection (its request, state, hub).
    pub fn connection(&self) -> &'a Connection {
        self.connection
    }
}

/// A custom channel rule; may do I/O (look a membership up, ask a
/// backend), and may attach data to the `SUBSCRIBE_SUCCESS` or say why it
/// refused ([`ChannelDecision`]).
///
/// Any `Fn(&ChannelRequest) -> bool` closure is one.
pub trait ChannelAuthorizer: Send + Sync + 'static {
    /// What to do with the request.
    fn authorize(
        &self,
        request: &ChannelRequest<'_>,
    ) -> impl Future<Output = ChannelDecision> + Send;
}

impl<F> ChannelAuthorizer for F
where
    F: Fn(&ChannelRequest<'_>) -> bool + Send + Sync + 'static,
{
    fn authorize(
        &self,
        request: &ChannelRequest<'_>,
    ) -> impl Future<Output = ChannelDecision> + Send {
        std::future::ready(self(request).into())
    }
}

type BoxFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;

trait ErasedAuthorizer: Send + Sync {
    fn authorize_boxed<'a>(
        &'a self,
        request: &'a ChannelRequest<'a>,
    ) -> BoxFuture<'a, ChannelDecision>;
}

impl<A: ChannelAuthorizer> ErasedAuthorizer for A {
    fn authorize_boxed<'a>(
        &'a self,
        request: &'a ChannelRequest<'a>,
    ) -> BoxFuture<'a, ChannelDecision> {
        Box::pin(self.authorize(request))
    }
}

/// A [`ChannelAuthorizer`] held by a rule.
#[derive(Clone)]
pub struct Authorizer(Arc<dyn ErasedAuthorizer>);

impl fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Authorizer")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_come_from_configuration() {
        let rules = ChannelRules::from_pairs([
            ("public:*", "anyone"),
            ("user:{user_id}:*", "authenticated"),
            ("billing:*", "permission:billing:read"),
        ])
        .unwrap();
        let patterns: Vec<&str> = rules.rules().map(|(p, _)| p.as_str()).collect();
        assert_eq!(patterns, ["public:*", "user:{user_id}:*", "billing:*"]);
        assert!(ChannelRules::from_pairs([("a b", "anyone")]).is_err());
        assert!(ChannelRules::from_pairs([("a", "everyone")]).is_err());
    }

    #[test]
    fn access_names_parse() {
        assert!(matches!("anyone".parse::<Access>(), Ok(Access::Anyone)));
        assert!(matches!(
            "permission:x".parse::<Access>(),
            Ok(Access::Permission(p)) if p == "x"
        ));
        assert!("permission:".parse::<Access>().is_err());
        assert!("everyone".parse::<Access>().is_err());
    }
}
