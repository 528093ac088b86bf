//! This crate's errors, and how Redis errors become [`BrokerError`]s.

use std::time::Duration;

use switchboard::broker::BrokerError;

/// What can go wrong building a Redis broker or reading the wire format.
///
/// Failures of a running broker (Redis down, a command refused) are
/// [`BrokerError`]s, the framework's broker error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Redis URL could not be parsed (`redis://[user:password@]host[:port][/db]`).
    /// The URL itself is not repeated here: it may hold a password.
    #[error("invalid Redis URL: {0}")]
    InvalidUrl(String),
    /// The key and channel prefix is empty or has characters other than
    /// `A-Z a-z 0-9 - _ .`.
    #[error("invalid prefix {0:?}: use 1-32 characters from A-Z a-z 0-9 - _ .")]
    InvalidPrefix(String),
    /// A setting is out of range; the message says which and why.
    #[error("invalid setting: {0}")]
    InvalidConfig(&'static str),
    /// A channel name that is not one of this prefix's `v1` channels.
    #[error("not a switchboard channel: {0:?}")]
    InvalidChannel(String),
    /// A message whose envelope could not be read; the message says why.
    #[error("invalid envelope: {0}")]
    InvalidEnvelope(String),
    /// An envelope of a wire version this build does not know.
    #[error("unsupported envelope version {0} (this build reads version 1)")]
    UnsupportedVersion(u64),
}

/// A Redis failure as the framework sees it. Connection-level failures are
/// transient ([`BrokerError::Unavailable`]); a refused command is
/// [`BrokerError::Backend`] with Redis's message (no Redis types leak out).
pub(crate) fn broker_error(e: &redis::RedisError, timeout: Duration) -> BrokerError {
    if e.is_timeout() {
        BrokerError::Timeout(timeout)
    } else if is_connection_error(e) {
        BrokerError::Unavailable(format!("Redis connection failed: {e}"))
    } else {
        BrokerError::Backend(e.to_string().into())
    }
}

/// Whether the connection that returned `e` must be replaced.
pub(crate) fn is_connection_error(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
        || e.is_timeout()
}
