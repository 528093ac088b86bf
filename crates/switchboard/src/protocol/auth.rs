//! `AUTHENTICATE`: checking the token with the endpoint's authenticators,
//! registering the user, refresh, and the failure limit.

use switchboard_protocol::payload::{AuthenticateFailure, AuthenticateSuccess};
use switchboard_protocol::{ConnectionState, ErrorCode};

use super::engine::{Connection, Flow};
use super::publish::unix_seconds;
use super::session::Session;
use super::structured::StructuredProtocol;
use crate::error::RejectionKind;
use crate::identity::Identity;
use crate::security::{self, AuthError};

impl StructuredProtocol {
    pub(super) async fn authenticate(
        &self,
        conn: &Connection,
        s: &mut Session,
        token: &str,
        id: Option<&str>,
    ) -> Flow {
        let Some(security) = self.security.as_ref().filter(|s| s.has_authenticators()) else {
            let reason = "Authentication is not configured on this endpoint";
            return self.auth_failed(conn, s, reason, true, id).await;
        };
        let current = conn.identity();
        let before = conn.state();
        self.transition(conn, ConnectionState::Authenticating);
        let checked = security::check_token(security, Some(token), conn.request()).await;
        let identity = match checked {
            Ok(Some(identity)) => identity,
            Ok(None) => {
                self.transition(conn, before);
                let reason = "Invalid token: not recognised";
                return self.auth_failed(conn, s, reason, true, id).await;
            }
            Err(e) => {
                self.transition(conn, before);
                let (reason, counts) = match e {
                    AuthError::InvalidToken(reason) => (format!("Invalid token: {reason}"), true),
                    // An authenticator that could not check the token says
                    // so by kind: that does not count as a failure.
                    AuthError::Rejected(rejection) => {
                        let counts = rejection.kind != RejectionKind::AuthUnavailable;
                        (rejection.reason, counts)
                    }
                    AuthError::Unavailable(reason) => {
                        tracing::warn!(%reason, "authentication unavailable");
                        ("Authentication unavailable".to_owned(), false)
                    }
                };
                return self.auth_failed(conn, s, &reason, counts, id).await;
            }
        };
        if let Some(current) = &current
            && current.user_id() != identity.user_id()
        {
            self.transition(conn, before);
            let reason = "A refresh must be for the same user";
            return self.auth_failed(conn, s, reason, true, id).await;
        }
        self.accept_identity(conn, s, &identity, current.is_some())
            .await;
        let success = AuthenticateSuccess {
            user_id: identity.user_id().to_string(),
            expires_at: identity.expires_at().map(unix_seconds),
            permissions: identity.permissions().map(str::to_owned).collect(),
        };
        self.send(conn, success, id).await;
        if current.is_none() {
            self.subscribe_server_side(conn, s).await;
        }
        Flow::Continue
    }

    async fn accept_identity(
        &self,
        conn: &Connection,
        s: &mut Session,
        identity: &Identity,
        refreshed: bool,
    ) {
        if !refreshed {
            let user = identity.user_id().clone();
            match &self.cluster {
                Some(cluster) => cluster.identify(conn.id(), user),
                None => conn.hub().identify(conn.id(), user),
            };
        }
        conn.set_identity(Some(identity.clone()));
        self.update_presence_info(conn, s);
        security::refresh(conn.hub(), conn.id(), identity.closes_at());
        s.failures = 0;
        s.auth_deadline = None;
        s.schedule_warning(identity.expires_at(), self.config.session_warning);
        self.transition(conn, ConnectionState::Authenticated);
        for hook in &self.hooks {
            hook.on_authenticated(conn, identity, refreshed);
        }
    }

    async fn auth_failed(
        &self,
        conn: &Connection,
        s: &mut Session,
        reason: &str,
        counts: bool,
        id: Option<&str>,
    ) -> Flow {
        if counts {
            s.failures += 1;
        }
        let left = self.config.max_auth_failures.saturating_sub(s.failures);
        let failure = AuthenticateFailure {
            code: ErrorCode::AuthFailed,
            reason: reason.to_owned(),
            attempts_left: left,
        };
        self.send(conn, failure, id).await;
        if left == 0 {
            self.close_with(conn, switchboard_protocol::CloseCode::AuthFailed)
                .await
        } else {
            Flow::Continue
        }
    }
}
