//! The refresh proxy: before a session's `expires_at`, the gateway asks the
//! backend to extend it, in place of the client fetching a new JWT.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use switchboard::hub::ConnectionId;
use switchboard::protocol::Connection;
use tokio::task::AbortHandle;

use super::client::Backend;
use super::wire::{self, Answer, Context, RefreshRequest, RefreshResult, Refusal};

/// Wait between attempts when the backend fails (until the session ends).
const RETRY: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub(crate) struct Refresher {
    backend: Arc<Backend>,
    context: Arc<Context>,
    /// How long before `expires_at` to ask.
    before: Duration,
    tasks: Mutex<HashMap<ConnectionId, AbortHandle>>,
}

impl Refresher {
    pub(crate) fn new(backend: Arc<Backend>, context: Arc<Context>, before: Duration) -> Self {
        Self {
            backend,
            context,
            before,
            tasks: Mutex::new(HashMap::new()),
        }
    }

    /// Plans the refresh of `conn`'s session, if it expires.
    pub(crate) fn schedule(self: &Arc<Self>, conn: &Connection) {
        if conn.identity().and_then(|i| i.expires_at()).is_none() {
            return;
        }
        let task = tokio::spawn(Arc::clone(self).keep_alive(conn.clone()));
        if let Some(old) = self.tasks.lock().insert(conn.id(), task.abort_handle()) {
            old.abort();
        }
    }

    /// The connection ended: stop refreshing it.
    pub(crate) fn cancel(&self, id: ConnectionId) {
        if let Some(task) = self.tasks.lock().remove(&id) {
            task.abort();
        }
    }

    async fn keep_alive(self: Arc<Self>, conn: Connection) {
        loop {
            let Some(identity) = conn.identity() else {
                return;
            };
            let Some(expires_at) = identity.expires_at() else {
                return;
            };
            let left = expires_at
                .duration_since(SystemTime::now())
                .unwrap_or_default();
            if left.is_zero() {
                return;
            }
            tokio::time::sleep(left.saturating_sub(self.before)).await;
            let body = RefreshRequest {
                expires_at: wire::unix_seconds(expires_at),
                caller: self.context.caller(&conn),
            };
            let answer = self
                .backend
                .call(&body)
                .await
                .and_then(Answer::<RefreshResult, Refusal>::read);
            let extended = match answer {
                Ok(Answer::Result(RefreshResult {
                    expires_at: Some(at),
                    expired: false,
                    meta,
                })) => wire::from_unix_seconds(at)
                    .filter(|at| *at > expires_at)
                    .map(|at| (at, meta)),
                // Expired, or refused: the session ends at its expiry (4003).
                Ok(_) => return,
                Err(_) => {
                    // Try again while the session lasts.
                    let left = expires_at
                        .duration_since(SystemTime::now())
                        .unwrap_or_default();
                    if left <= RETRY {
                        return;
                    }
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            };
            let Some((at, meta)) = extended else {
                tracing::warn!(
                    "refresh proxy: expires_at must be a later time; the session will expire"
                );
                return;
            };
            let mut identity = identity.with_expiry(at);
            if let Some(meta) = meta {
                identity = identity.with_meta(meta);
            }
            conn.set_identity(Some(identity));
            switchboard::security::refresh(conn.hub(), conn.id(), Some(at));
        }
    }
}
