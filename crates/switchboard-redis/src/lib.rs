//! The Redis broker for Switchboard: many instances act as one.
//!
//! ```no_run
//! use switchboard::broker::{Cluster, Payload, Target};
//! use switchboard::{Hub, Switchboard};
//! use switchboard_redis::{RedisBroker, RedisConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let hub = Hub::new();
//! let broker = RedisBroker::new(RedisConfig::new("redis://127.0.0.1:6379"))?;
//! let cluster = Cluster::new(hub.clone(), broker);
//! cluster.start().await?;
//! let server = Switchboard::new().with_hub(hub) /* .route(...) */.bind("0.0.0.0:8080").await?;
//! // Anywhere, on any instance:
//! cluster.publish(Target::room("lobby"), Payload::text("hello")).await?;
//! # Ok(())
//! # }
//! ```
//!
//! Channels with history (`switchboard::broker::stream`) keep their
//! publications in a Redis Stream per channel, appended by one Lua script
//! per publish: a publish succeeds only once the stream holds the message,
//! and an instance that lost messages (a reconnection) reads them back.
//! Other targets are at most once: Redis pub/sub keeps nothing, so what is
//! published while an instance is disconnected from Redis does not reach
//! that instance's connections. Publishing never reports success for a
//! message Redis did not take. `docs/scaling.md` has the details, the wire
//! format, the keys and the cluster-count method.
//!
//! Presence (`switchboard::broker::presence`) lives in Redis hashes per
//! channel, with O(1) counts; every instance holds a lease, and the
//! presence of an instance whose lease ran out (killed, frozen, cut off)
//! is removed by another, with its leave events.
//!
//! # Layout
//! - [`RedisBroker`]: the handle, shared state and publishing (`broker`).
//! - `subscriber`: the pub/sub connection and its subscriptions.
//! - `writer`: the publisher connection and the count heartbeat.
//! - `counts`: cluster-wide connection counts and room sizes.
//! - [`wire`]: channel names and the JSON envelope, version 1.
//! - [`streams`]: the scripts of channels with history (append, read,
//!   publish once), in `src/scripts/*.lua`.
//! - [`RedisConfig`]: settings; [`RedisStats`]: counters; [`Error`].

// No `unwrap` outside tests: a failure says what went wrong (`expect`)
// or is handled.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod backoff;
mod broker;
mod config;
mod counts;
mod error;
mod lease;
mod presence;
mod stats;
pub mod streams;
mod subscriber;
#[doc(hidden)]
pub mod testkit;
pub mod wire;
mod writer;

pub use broker::RedisBroker;
pub use config::RedisConfig;
pub use error::Error;
pub use stats::RedisStats;
