//! What a broker operation can fail with.

/// Why a broker could not do what was asked.
///
/// Whatever the variant, a failed publish was **not** delivered to other
/// instances (or, for [`BrokerError::Timeout`], may not have been): report
/// the failure to whoever asked for the publish, or retry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// The broker has no working connection to its backend and is
    /// reconnecting. Nothing was sent; retry later.
    #[error("broker unavailable: {0}")]
    Unavailable(String),
    /// The backend did not answer in time. The message may or may not have
    /// gone out; treat it as not delivered (delivery is at most once).
    #[error("broker timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// The backend answered with an error (a refused command, bad credentials).
    #[error("broker backend error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The broker was used before [`super::Cluster::start`]: start it first.
    #[error("broker not started")]
    NotStarted,
    /// [`super::Broker::start`] was called twice.
    #[error("broker already started")]
    AlreadyStarted,
    /// The broker was shut down; make a new one.
    #[error("broker shut down")]
    Stopped,
    /// An instance id with characters other than `A-Z a-z 0-9 - _ .`, or
    /// empty, or longer than 64 bytes.
    #[error("invalid instance id {0:?}")]
    InvalidInstanceId(String),
    /// A connection address that is not `instance/id`.
    #[error("invalid connection address {0:?}")]
    InvalidAddress(String),
    /// The broker cannot do this (a history read or an idempotent publish
    /// from a broker that keeps no history).
    #[error("the broker does not support {0}")]
    Unsupported(&'static str),
    /// The channel keeps no presence: no presence rule matches it.
    #[error("channel {0:?} keeps no presence")]
    NoPresence(String),
}

impl BrokerError {
    /// Whether trying again later may succeed (the backend is down or slow).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Timeout(_))
    }
}

/// A publish that reached the local connections but not the broker.
///
/// `local` connections got the message; the other instances did not (see
/// [`BrokerError`]). Returned instead of success so that a message is never
/// reported as published when it was dropped.
#[derive(Debug, thiserror::Error)]
#[error("not published to other instances ({local} local recipients reached): {source}")]
pub struct PublishError {
    /// Local connections the message was queued for before the broker failed.
    pub local: usize,
    /// Why the broker failed.
    #[source]
    pub source: BrokerError,
}
