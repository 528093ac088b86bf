//! Presence on the wire: the join and leave events a channel's subscribers
//! get. `docs/protocol.md`, "Presence", is the contract.

/// The event name of a member's arrival (`EVENT` with the member as data:
/// `{"connection", "user", "info"?}`).
pub const JOIN_EVENT: &str = "switchboard.join";

/// The event name of a member's departure (same data as [`JOIN_EVENT`]).
pub const LEAVE_EVENT: &str = "switchboard.leave";
