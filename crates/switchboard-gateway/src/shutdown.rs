//! Graceful shutdown: what starts it (SIGTERM, SIGINT, SIGUSR1, the admin
//! API), and the code clients are closed with.
//!
//! | trigger | close code |
//! |---|---|
//! | SIGTERM, SIGINT | 1001 (going away), or 1012 with `server.restart_on_shutdown` |
//! | SIGUSR1 | 1012 (restart: reconnect soon) |
//! | `POST /api/v1/admin/shutdown` | 1012 with `{"restart": true}`, else 1001 |
//! | another SIGTERM or SIGINT, 1 s or more after the first | exit at once with status 1 |
//!
//! A signal repeated within a second of the first is taken as the same
//! request delivered twice (GNU `timeout` and some supervisors signal both
//! the process and its group), not as an operator's "stop now".
//!
//! Once started, the listener stops accepting, every client gets its close
//! frame after what is already queued for it, and the process exits 0 when
//! every connection has closed or `server.shutdown_timeout` passed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use switchboard::ShutdownHandle;
use tokio::sync::watch;

/// Starts graceful shutdown once, from wherever; the first caller decides
/// the close code.
///
/// It exists before the server it stops (the HTTP side, built first, holds
/// it): a start requested before [`Trigger::attach`] is carried out when
/// the server's handle is attached, so no caller ever has to be told "not
/// yet".
#[derive(Debug, Clone)]
pub(crate) struct Trigger {
    /// The server's handle, once attached, and the shutdown asked for
    /// (`Some(restart)`), under one lock so that neither is missed.
    state: Arc<Mutex<(Option<ShutdownHandle>, Option<bool>)>>,
    started: watch::Sender<bool>,
}

impl Default for Trigger {
    fn default() -> Self {
        Self {
            state: Arc::new(Mutex::new((None, None))),
            started: watch::Sender::new(false),
        }
    }
}

impl Trigger {
    /// The server to stop: a shutdown already asked for starts now.
    pub(crate) fn attach(&self, handle: ShutdownHandle) {
        let mut state = self.state.lock();
        if let Some(restart) = state.1 {
            stop(&handle, restart);
        }
        state.0 = Some(handle);
    }

    /// Starts shutdown: clients are closed with 1012 when `restart`, else 1001.
    /// Later calls do nothing.
    pub(crate) fn start(&self, restart: bool, why: &str) {
        let mut state = self.state.lock();
        if state.1.is_some() {
            return;
        }
        state.1 = Some(restart);
        tracing::info!(
            why,
            close_code = if restart { 1012 } else { 1001 },
            "shutting down: no new connections; draining"
        );
        if let Some(handle) = &state.0 {
            stop(handle, restart);
        }
        self.started.send_replace(true);
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        *self.started.borrow()
    }

    /// Completes once shutdown has started.
    pub(crate) async fn started(&self) {
        let mut started = self.started.subscribe();
        let _ = started.wait_for(|s| *s).await;
    }
}

fn stop(handle: &ShutdownHandle, restart: bool) {
    if restart {
        handle.restart();
    } else {
        handle.shutdown();
    }
}

/// Signals repeated within this long of the first are duplicates.
const REPEAT_GRACE: Duration = Duration::from_secs(1);

/// Watches the signals for the life of the process.
pub(crate) async fn watch_signals(trigger: Trigger, restart_on_shutdown: bool) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int), Ok(mut usr1)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::user_defined1()),
        ) else {
            tracing::error!("cannot install signal handlers; stop the gateway with SIGKILL");
            return;
        };
        let mut first: Option<Instant> = None;
        loop {
            let (restart, why) = tokio::select! {
                _ = term.recv() => (restart_on_shutdown, "SIGTERM"),
                _ = int.recv() => (restart_on_shutdown, "SIGINT"),
                _ = usr1.recv() => (true, "SIGUSR1"),
            };
            if why != "SIGUSR1"
                && let Some(at) = first
                && at.elapsed() >= REPEAT_GRACE
            {
                tracing::warn!(signal = why, "second signal while draining: exiting now");
                std::process::exit(1);
            }
            if trigger.is_shutting_down() {
                first.get_or_insert_with(Instant::now);
                continue;
            }
            first = Some(Instant::now());
            trigger.start(restart, why);
        }
    }
    #[cfg(not(unix))]
    {
        loop {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            if trigger.is_shutting_down() {
                std::process::exit(1);
            }
            trigger.start(restart_on_shutdown, "Ctrl-C");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_before_the_server_is_attached_stops_it_once_attached() {
        let trigger = Trigger::default();
        trigger.start(true, "test");
        assert!(trigger.is_shutting_down());
        let app = switchboard::Switchboard::new().into_app();
        let handle = app.shutdown_handle();
        assert!(!handle.is_shutting_down());
        trigger.attach(handle.clone());
        assert!(handle.is_shutting_down());
    }

    #[test]
    fn the_first_start_decides_and_later_ones_do_nothing() {
        let trigger = Trigger::default();
        let app = switchboard::Switchboard::new().into_app();
        trigger.attach(app.shutdown_handle());
        assert!(!trigger.is_shutting_down());
        trigger.start(false, "first");
        trigger.start(true, "second");
        assert_eq!(trigger.state.lock().1, Some(false));
        assert!(app.shutdown_handle().is_shutting_down());
    }
}
