//! Delivery: everything a connection sends, from the moment a frame is
//! handed over until it is on the wire.
//!
//! Each connection has an outbound queue bounded in bytes
//! ([`crate::RouteConfig::max_queue_bytes`]), filled through cloneable
//! [`Sender`]s and drained by the connection's writer task in one vectored
//! write per batch. The socket's own replies skip the task when the queue
//! is idle, and a fan-out skips it by corking: each idle recipient is
//! written once, after the publishing task yields. A message for many
//! recipients is encoded once ([`Outgoing`]), and compressed once per set
//! of deflate settings (`compression`, the one place that decides how a
//! frame is compressed). The writer also runs the
//! server-side [`Keepalive`] and the close deadline.
//!
//! # Layout
//! - `compression`: the compression policy for one connection.
//! - `cork`: a fan-out's frames held back until the publishing task
//!   yields, then written with one `send` per recipient.
//! - `outgoing`: [`Outgoing`], a message encoded once for many recipients.
//! - `queue`: the bounded queue and the state the socket, its senders and
//!   its writer share.
//! - `sender`: [`Sender`], [`TrySendError`].
//! - `write`: putting a batch of frames on the wire.
//! - `writer`: the writer task, in named steps.
//! - `keepalive`: [`Keepalive`] and its clock.
//! - `stats`: [`Stats`], the counters.
//! - `wake`: the writer's wake-up, kept when it is not waiting yet.
//!
//! This layer depends on the codec (`switchboard-ws`), the byte streams
//! (`transport`), the close codes and the error type, and on nothing else
//! of the crate.

mod compression;
mod cork;
mod keepalive;
mod outgoing;
mod queue;
mod sender;
mod stats;
mod wake;
mod write;
mod writer;

pub use keepalive::Keepalive;
pub use outgoing::Outgoing;
pub use queue::TrySendError;
pub use sender::Sender;
pub use stats::{Stats, StatsSnapshot};

pub(crate) use compression::Compression;
pub(crate) use queue::Shared;
pub(crate) use writer::{PeerProbe, WriterOptions, run_writer};
