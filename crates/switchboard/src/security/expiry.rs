//! Closing connections whose credentials expire, and pushing that back.
//!
//! A connection authenticated with an expiring credential gets a session:
//! the expiry time in a watch channel, and a task that closes the
//! connection with [`codes::TOKEN_EXPIRED`] (4003) when the time passes.
//! [`refresh`] moves the time; the task ends when the connection does.
//!
//! The connection's id exists only once the handler accepts, so the session
//! waits in a pending table until the hub reports the registration. The
//! hub registers the connection under the request's [`UserId`], which the
//! pipeline allocates afresh for each expiring connection: that allocation's
//! address names the connection until its id is known.

use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::watch;

use super::sharded::Sharded;
use crate::codes;
use crate::hub::{ConnectionId, ConnectionInfo, Hub, HubHooks, UserId};

/// One connection's credential expiry; the watcher task stops when the
/// last handle (the connection's, the hub's) is dropped.
#[derive(Debug)]
struct Session {
    expires_at: watch::Sender<Option<SystemTime>>,
}

/// Kept in the hub's per-connection state, where [`refresh`] finds it.
#[derive(Debug, Clone)]
struct SessionHandle(Arc<Session>);

/// Sessions of connections still in their handshake or handler, before
/// `accept` registers them.
#[derive(Debug)]
pub(crate) struct Sessions {
    pending: Sharded<usize, (UserId, Arc<Session>)>,
}

impl Sessions {
    /// A table for `hub`, hooked into its registrations.
    pub(crate) fn install(hub: &Hub) -> Arc<Self> {
        let sessions = Arc::new(Self {
            pending: Sharded::new(),
        });
        hub.add_hooks(AttachOnConnect(Arc::clone(&sessions)));
        sessions
    }

    /// Starts tracking a connection that will register as `user` (a fresh
    /// allocation) with credentials expiring at `expires_at`.
    pub(crate) fn track(self: &Arc<Self>, user: &UserId, expires_at: SystemTime) -> PendingSession {
        let key = address(user);
        let (tx, _) = watch::channel(Some(expires_at));
        let session = Arc::new(Session { expires_at: tx });
        self.pending
            .lock(&key)
            .insert(key, (user.clone(), Arc::clone(&session)));
        PendingSession {
            sessions: Arc::clone(self),
            key,
            _session: session,
        }
    }
}

fn address(user: &UserId) -> usize {
    user.as_str().as_ptr() as usize
}

/// Held by the connection for its whole life: keeps the session alive and
/// clears the pending entry if the handler never accepted.
#[derive(Debug)]
pub(crate) struct PendingSession {
    sessions: Arc<Sessions>,
    key: usize,
    _session: Arc<Session>,
}

impl Drop for PendingSession {
    fn drop(&mut self) {
        self.sessions.pending.lock(&self.key).remove(&self.key);
    }
}

struct AttachOnConnect(Arc<Sessions>);

impl HubHooks for AttachOnConnect {
    fn on_connect(&self, hub: &Hub, info: &ConnectionInfo) {
        let Some(user) = &info.user else { return };
        let key = address(user);
        // The pending entry holds its UserId, so no other allocation can
        // have this address while it is there.
        let Some((_, session)) = self.0.pending.lock(&key).remove(&key) else {
            return;
        };
        attach(hub, info.id, session);
    }
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
/// call it yourself after verifying one (for a JWT,
/// [`crate::security::JwtAuth::verify`] gives the new
/// [`crate::security::Identity::expires_at`]). Works for connections
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

/// When connection `id`'s credentials expire, if they do.
pub fn expires_at(hub: &Hub, id: ConnectionId) -> Option<SystemTime> {
    hub.state::<SessionHandle>(id)
        .and_then(|SessionHandle(session)| *session.expires_at.borrow())
}
