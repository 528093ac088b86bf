//! Closing connections whose credentials expire, and pushing that back.
//!
//! A connection authenticated with an expiring credential gets a session:
//! the expiry time in a watch channel, and a task that closes the
//! connection with [`codes::TOKEN_EXPIRED`] (4003) when the time passes.
//! [`refresh`] moves the time; the task ends when the connection does.
//!
//! The session is armed when the handler accepts the connection and the
//! hub gives it an id ([`arm`], called from the upgrade).

use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::watch;

use crate::codes;
use crate::hub::{ConnectionId, Hub};

/// One connection's credential expiry; the watcher task stops when the
/// last handle (the connection's, the hub's) is dropped.
#[derive(Debug)]
struct Session {
    expires_at: watch::Sender<Option<SystemTime>>,
}

/// Kept in the hub's per-connection state, where [`refresh`] finds it.
#[derive(Debug, Clone)]
struct SessionHandle(Arc<Session>);

/// Arms the expiry of a connection just accepted with credentials that
/// expire at `at`: it is closed with [`codes::TOKEN_EXPIRED`] then, unless
/// [`refresh`] moves the time.
pub(crate) fn arm(hub: &Hub, id: ConnectionId, at: SystemTime) {
    let (tx, _) = watch::channel(Some(at));
    attach(hub, id, Arc::new(Session { expires_at: tx }));
}

fn attach(hub: &Hub, id: ConnectionId, session: Arc<Session>) -> bool {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return false;
    };
    let expiry = session.expires_at.subscribe();
    if !hub.set_state(id, SessionHandle(session)) {
        return false;
    }
    runtime.spawn(watch_expiry(hub.clone(), id, expiry));
    true
}

async fn watch_expiry(hub: Hub, id: ConnectionId, mut expiry: watch::Receiver<Option<SystemTime>>) {
    loop {
        let at = *expiry.borrow_and_update();
        let expired = async {
            match at {
                Some(at) => {
                    let left = at.duration_since(SystemTime::now()).unwrap_or_default();
                    tokio::time::sleep(left).await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = expired => {
                tracing::debug!(connection = %id, "credentials expired; closing");
                hub.close(id, codes::TOKEN_EXPIRED, "token expired");
                return;
            }
            changed = expiry.changed() => {
                if changed.is_err() {
                    return; // The connection is gone.
                }
            }
        }
    }
}

/// Sets when connection `id`'s credentials expire: `Some(time)` after a
/// refresh with a new token (the connection is closed with
/// [`codes::TOKEN_EXPIRED`] once it passes), `None` for never.
///
/// The structured protocol calls this when a client sends a fresh token;
/// call it yourself after verifying one, with the new identity's
/// [`crate::security::Identity::closes_at`] (for a JWT from
/// [`crate::security::JwtAuth::verify`]: its `exp` plus the leeway). Works for connections
/// that had no expiry too. Returns false if the connection is not in the
/// hub (or this is called outside a Tokio runtime).
pub fn refresh(hub: &Hub, id: ConnectionId, expires_at: Option<SystemTime>) -> bool {
    if let Some(SessionHandle(session)) = hub.state::<SessionHandle>(id) {
        session.expires_at.send_replace(expires_at);
        return true;
    }
    if hub.info(id).is_none() {
        return false;
    }
    if expires_at.is_none() {
        return true; // No session and none needed.
    }
    let (tx, _) = watch::channel(expires_at);
    attach(hub, id, Arc::new(Session { expires_at: tx }))
}

/// When connection `id` is closed for its credentials' expiry, if it is:
/// the time [`refresh`] set or the upgrade armed
/// ([`crate::security::Identity::closes_at`], which for a JWT is `exp`
/// plus the leeway).
pub fn expires_at(hub: &Hub, id: ConnectionId) -> Option<SystemTime> {
    hub.state::<SessionHandle>(id)
        .and_then(|SessionHandle(session)| *session.expires_at.borrow())
}
