//! Streams: channels that keep a history, so that nothing published to
//! them is lost in silence.
//!
//! A channel matching a [`HistoryRule`] keeps its latest publications (a
//! bounded number, for a bounded time). Each publication gets an offset
//! that grows by one within an [`Epoch`], which names one continuous
//! history and changes whenever the history was lost. A publish to such a
//! channel succeeds only once the publication is in the stream.
//!
//! On every instance, a cursor per channel (with local subscribers)
//! delivers publications in offset order, each once. What it misses (a
//! broker reconnection, a message that went astray) it reads back from the
//! stream and delivers before anything newer; what the stream no longer
//! has it announces with a gap event (`switchboard.gap`), never silence. A
//! connection that subscribes with the position it saw last gets what it
//! missed, then live publications, with no gap and no duplicate between.
//!
//! Other targets (users, connections, everyone, channels without a rule)
//! stay at most once.
//!
//! # Layout
//! - `types`: [`Epoch`], [`StreamPosition`], [`Publication`], reads and
//!   appends, [`IdempotencyKey`].
//! - `config`: [`HistoryConfig`], [`HistoryRule`], [`StreamLimits`].
//! - `frame`: a publication's frame (with its offset) and the gap event.
//! - `cursor`: one channel's ordered delivery and joins.
//! - `streams`: the cursors of one instance and their repair queue.

mod config;
mod cursor;
mod frame;
mod streams;
mod types;

pub use config::{HistoryConfig, HistoryRule, StreamLimits};
pub use cursor::{Joined, Want};
pub use types::{
    Appended, Epoch, History, HistoryQuery, IdempotencyKey, KeyError, MAX_IDEMPOTENCY_KEY_LEN,
    Publication, StreamPosition,
};

pub(crate) use cursor::{Held, Plan};
pub(crate) use frame::publication as publication_frame;
pub(crate) use streams::{Cell, Streams, gap_due};
