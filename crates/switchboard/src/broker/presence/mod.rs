//! Presence: who is subscribed to a channel, cluster-wide, and the join
//! and leave events its subscribers get.
//!
//! Channels opt in by pattern ([`PresenceConfig`]). The hub's joins and
//! leaves of those channels go to one worker task per instance, which
//! applies them to the broker in order ([`crate::broker::Broker`]'s
//! `presence_*` methods) and announces `switchboard.join` /
//! `switchboard.leave` to the subscribers that asked for them (members of
//! the channel's [`events_room`]; the arriving connection itself is left
//! out of its own join). Counts
//! ([`PresenceStats`]) are kept as the members change, so reading them
//! costs the same at any size.
//!
//! A broker that fails an update marks this instance's entries as out of
//! date; the worker then hands it the whole local membership again every
//! second until it takes it. A Redis broker also holds a lease per
//! instance, and removes the entries of an instance whose lease ran out
//! (`switchboard-redis`).
//!
//! # Layout
//! - [`PresenceConfig`], [`PresenceRule`], [`JoinLeave`]: which channels (`config`).
//! - [`Member`], [`Presence`], [`PresenceStats`], [`PresenceEvent`], [`PresenceInfo`]: the data (`types`).
//! - `hooks`: hub hooks feeding the worker; `worker`: the task.

mod config;
pub(crate) mod hooks;
mod types;
pub(crate) mod worker;

pub use config::{JoinLeave, PresenceConfig, PresenceRule};

use crate::hub::Room;

/// The hub room of `channel`'s join and leave events: a subscriber that
/// asked for them is a member too, and only they get them. Its name starts
/// with `#`, which no channel name can.
pub fn events_room(channel: &Room) -> Room {
    Room::from(format!("#presence:{channel}"))
}
pub use types::{Member, Presence, PresenceChange, PresenceEvent, PresenceInfo, PresenceStats};
