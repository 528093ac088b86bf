//! The names of a stream: epochs, positions, publications, reads.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::broker::Payload;

/// One continuous history of a channel. It changes whenever the history was
/// lost: a restarted in-memory broker, a flushed or restarted Redis without
/// persistence, a channel forgotten after its metadata expired. Offsets of
/// two epochs are not comparable.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Epoch(Arc<str>);

impl Serialize for Epoch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Epoch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::new)
    }
}

impl Epoch {
    /// An epoch named `name` (what a broker stored).
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        Self(name.into())
    }

    /// A fresh random epoch: 16 hexadecimal digits.
    pub fn random() -> Self {
        let bits = uuid::Uuid::new_v4().as_u128() as u64;
        Self(Arc::from(format!("{bits:016x}")))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A place in a channel's stream: an epoch, and the offset of a publication
/// in it. As a position reached, the offset is that of the last publication
/// (0: none yet in this epoch). Offsets grow by exactly one per publication.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StreamPosition {
    /// The history the offset belongs to.
    pub epoch: Epoch,
    /// The offset.
    pub offset: u64,
}

impl StreamPosition {
    /// `offset` in `epoch`.
    pub fn new(epoch: Epoch, offset: u64) -> Self {
        Self { epoch, offset }
    }
}

/// A message in a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    /// Its offset (in the epoch of the read that returned it).
    pub offset: u64,
    /// The message.
    pub payload: Payload,
}

/// Where an append put a message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Appended {
    /// The publication's position.
    pub position: StreamPosition,
    /// The idempotency key was seen before: this is the first attempt's
    /// position, and nothing was appended or sent this time.
    pub duplicate: bool,
}

impl Appended {
    /// A new publication at `position`.
    pub fn new(position: StreamPosition) -> Self {
        Self {
            position,
            duplicate: false,
        }
    }

    /// The answer to a retry: the first attempt's position.
    pub fn duplicate(position: StreamPosition) -> Self {
        Self {
            position,
            duplicate: true,
        }
    }
}

/// Which publications to read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HistoryQuery {
    /// Read what follows this position, if the stream is still in its
    /// epoch; from the oldest kept publication otherwise (and when `None`).
    pub since: Option<StreamPosition>,
    /// Most publications to return (0: none, only the current position).
    pub limit: usize,
    /// Newest first: the `limit` latest publications, newest first
    /// (`since` still bounds them from below).
    pub newest_first: bool,
}

impl HistoryQuery {
    /// Only the stream's current position.
    pub fn position() -> Self {
        Self {
            since: None,
            limit: 0,
            newest_first: false,
        }
    }

    /// Up to `limit` publications after `since`, oldest first.
    pub fn after(since: Option<StreamPosition>, limit: usize) -> Self {
        Self {
            since,
            limit,
            newest_first: false,
        }
    }

    /// The `limit` latest publications, newest first.
    pub fn latest(limit: usize) -> Self {
        Self {
            since: None,
            limit,
            newest_first: true,
        }
    }

    /// The same query, newest first.
    pub fn newest_first(mut self) -> Self {
        self.newest_first = true;
        self
    }
}

/// A read of a stream: where it stands, and the publications asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct History {
    /// The stream's epoch and its latest offset (0 when nothing was ever
    /// published in this epoch).
    pub position: StreamPosition,
    /// The publications, in the order asked for.
    pub publications: Vec<Publication>,
}

impl History {
    /// A read result.
    pub fn new(position: StreamPosition, publications: Vec<Publication>) -> Self {
        Self {
            position,
            publications,
        }
    }
}

/// A publisher's name for one message, so that a retry is recognised and
/// not delivered twice: 1 to 128 printable ASCII characters, no spaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(Arc<str>);

/// Longest [`IdempotencyKey`], in bytes.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 128;

/// Why a string is not an [`IdempotencyKey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key is empty.
    #[error("must not be empty")]
    Empty,
    /// The key is longer than [`MAX_IDEMPOTENCY_KEY_LEN`] bytes.
    #[error("must be at most 128 bytes")]
    TooLong,
    /// The key has a character other than printable ASCII (`!` to `~`).
    #[error("must be printable ASCII without spaces")]
    InvalidCharacter,
}

impl IdempotencyKey {
    /// Checks and wraps `key`.
    pub fn new(key: &str) -> Result<Self, KeyError> {
        if key.is_empty() {
            return Err(KeyError::Empty);
        }
        if key.len() > MAX_IDEMPOTENCY_KEY_LEN {
            return Err(KeyError::TooLong);
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(KeyError::InvalidCharacter);
        }
        Ok(Self(Arc::from(key)))
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
