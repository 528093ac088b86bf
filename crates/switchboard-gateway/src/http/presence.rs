//! `GET /api/v1/channels/{channel}/presence` and `/presence/stats`: who is
//! subscribed to a channel with presence, cluster-wide.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use serde_json::Value;
use switchboard::Room;
use switchboard::broker::BrokerError;
use switchboard::broker::presence::{Member, PresenceStats};
use utoipa::ToSchema;

use super::api::check_room;
use super::error::{ApiError, BadRequest, BrokerUnavailable, NotFound, Unauthorized};
use super::extract::ApiPath;
use crate::state::Shared;

/// A channel's presence.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct PresencePage {
    channel: String,
    /// Subscribed connections, cluster-wide.
    connections: u64,
    /// Distinct authenticated users among them.
    users: u64,
    /// At most `presence.max_members` of them, in no order.
    members: Vec<PresenceEntry>,
}

/// A channel's presence counts.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct PresenceCounts {
    channel: String,
    /// Subscribed connections, cluster-wide.
    connections: u64,
    /// Distinct authenticated users among them.
    users: u64,
}

/// One subscribed connection.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct PresenceEntry {
    /// Its cluster address (`instance/id`), as `/api/v1/connections/{id}` takes it.
    connection: String,
    /// Its authenticated user; `null` when anonymous.
    user: Option<String>,
    /// What it told about itself: `client` from its `CONNECT`, a connect
    /// proxy's `meta`.
    #[serde(skip_serializing_if = "Option::is_none")]
    info: Option<Value>,
}

impl From<Member> for PresenceEntry {
    fn from(member: Member) -> Self {
        Self {
            connection: member.connection.to_string(),
            user: member.user.map(|u| u.as_str().to_owned()),
            info: member.info,
        }
    }
}

/// `GET /api/v1/channels/{channel}/presence`.
#[utoipa::path(
    get,
    path = "/api/v1/channels/{channel}/presence",
    summary = "Who is subscribed to a channel with presence, across every instance. A channel nobody is subscribed to answers empty.",
    params(("channel" = String, Path, description = "The channel (percent-encoded).")),
    responses(
        (status = 200, description = "The counts and up to presence.max_members members", body = PresencePage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = BrokerUnavailable),
    )
)]
pub(super) async fn presence(
    State(shared): State<Shared>,
    ApiPath(channel): ApiPath<String>,
) -> Result<Json<PresencePage>, ApiError> {
    let room = presence_room(&shared, &channel)?;
    let presence = shared
        .cluster
        .presence(&room)
        .await
        .map_err(|e| unavailable(&e))?;
    Ok(Json(PresencePage {
        channel,
        connections: presence.stats.connections,
        users: presence.stats.users,
        members: presence
            .members
            .into_iter()
            .map(PresenceEntry::from)
            .collect(),
    }))
}

/// `GET /api/v1/channels/{channel}/presence/stats`.
#[utoipa::path(
    get,
    path = "/api/v1/channels/{channel}/presence/stats",
    summary = "How many connections and distinct users are subscribed to a channel with presence, in O(1).",
    params(("channel" = String, Path, description = "The channel (percent-encoded).")),
    responses(
        (status = 200, description = "The counts", body = PresenceCounts),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = BrokerUnavailable),
    )
)]
pub(super) async fn presence_stats(
    State(shared): State<Shared>,
    ApiPath(channel): ApiPath<String>,
) -> Result<Json<PresenceCounts>, ApiError> {
    let room = presence_room(&shared, &channel)?;
    let PresenceStats {
        connections, users, ..
    } = shared
        .cluster
        .presence_stats(&room)
        .await
        .map_err(|e| unavailable(&e))?;
    Ok(Json(PresenceCounts {
        channel,
        connections,
        users,
    }))
}

/// The room of `channel`: 400 for a name that is not one, 404 for a
/// channel without presence.
fn presence_room(shared: &Shared, channel: &str) -> Result<Room, ApiError> {
    check_room("channel", channel)?;
    let room = Room::from(channel);
    if !shared.cluster.keeps_presence(&room) {
        return Err(ApiError::not_found(format!(
            "{channel} keeps no presence (no [[presence.channels]] rule matches it)"
        )));
    }
    Ok(room)
}

fn unavailable(e: &BrokerError) -> ApiError {
    ApiError::broker(&format_args!("presence could not be read: {e}"), None)
}
