//! Lifecycle hooks: code that runs when connections come, go, join and leave.

use switchboard_ws::CloseFrame;

use super::Hub;
use super::id::{ConnectionId, Room, UserId};
use super::info::ConnectionInfo;

/// Lifecycle hooks. Every method has an empty default; they run inline on
/// the task that caused the event, so keep them short (spawn for real work).
pub trait HubHooks: Send + Sync + 'static {
    /// A connection was accepted and registered.
    fn on_connect(&self, _hub: &Hub, _info: &ConnectionInfo) {}
    /// A connection ended, with the close code and reason it ended with
    /// (1006 when it dropped without a close frame).
    fn on_disconnect(&self, _hub: &Hub, _info: &ConnectionInfo, _close: &CloseFrame) {}
    /// A handler ended with an error.
    fn on_error(&self, _hub: &Hub, _info: &ConnectionInfo, _error: &crate::error::Error) {}
    /// A connection joined a room.
    fn on_join(&self, _hub: &Hub, _id: ConnectionId, _room: &Room) {}
    /// A connection was attached to a user with [`Hub::identify`] (`old` is
    /// the user it had before, if any).
    fn on_identify(&self, _hub: &Hub, _id: ConnectionId, _old: Option<&UserId>, _new: &UserId) {}
    /// A connection left a room (explicitly or by disconnecting).
    fn on_leave(&self, _hub: &Hub, _id: ConnectionId, _room: &Room) {}
}
