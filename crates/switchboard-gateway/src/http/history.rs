//! `GET /api/v1/channels/{channel}/history`: a channel's stream.

use axum::Json;
use axum::extract::State;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard::Room;
use switchboard::broker::Payload;
use switchboard::broker::stream::{History, HistoryQuery, StreamPosition};
use utoipa::{IntoParams, ToSchema};

use super::api::check_room;
use super::error::{ApiError, BadRequest, BrokerUnavailable, NotFound, Unauthorized};
use super::extract::{ApiPath, ApiQuery};
use crate::state::Shared;

/// Most publications one request returns.
const MAX_LIMIT: usize = 1000;

#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum Order {
    /// Oldest first (the default).
    #[default]
    Asc,
    /// Newest first.
    Desc,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct HistoryParams {
    /// At most this many publications (1-1000, 100 by default).
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<usize>,
    /// Only publications after this offset of the stream's current epoch.
    since: Option<u64>,
    /// `asc` (oldest first, the default) or `desc` (newest first).
    order: Option<Order>,
}

/// A channel's stream.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct HistoryPage {
    channel: String,
    /// The stream's epoch.
    epoch: String,
    /// The offset of its latest publication (0: none in this epoch).
    offset: u64,
    publications: Vec<Kept>,
}

/// One kept publication.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Kept {
    offset: u64,
    /// The message as subscribers get it (a JSON object, with its
    /// `offset`), when it is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<Value>,
    /// Raw text that is not a JSON object.
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    /// Binary data, in standard base64.
    #[serde(skip_serializing_if = "Option::is_none")]
    binary: Option<String>,
}

impl Kept {
    fn new(offset: u64, payload: &Payload) -> Self {
        let mut kept = Self {
            offset,
            message: None,
            text: None,
            binary: None,
        };
        match payload {
            Payload::Text(text) => match serde_json::from_str::<Value>(text.as_str()) {
                Ok(Value::Object(mut map)) => {
                    map.insert("offset".to_owned(), offset.into());
                    kept.message = Some(Value::Object(map));
                }
                _ => kept.text = Some(text.as_str().to_owned()),
            },
            Payload::Binary(data) => {
                kept.binary = Some(base64::engine::general_purpose::STANDARD.encode(data));
            }
        }
        kept
    }
}

/// `GET /api/v1/channels/{channel}/history`.
#[utoipa::path(
    get,
    path = "/api/v1/channels/{channel}/history",
    summary = "A channel's kept publications (channels with history only), oldest or newest first.",
    params(("channel" = String, Path, description = "The channel (percent-encoded)."), HistoryParams),
    responses(
        (status = 200, description = "The stream's epoch, latest offset and publications", body = HistoryPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = BrokerUnavailable),
    )
)]
pub(super) async fn history(
    State(shared): State<Shared>,
    ApiPath(channel): ApiPath<String>,
    ApiQuery(params): ApiQuery<HistoryParams>,
) -> Result<Json<HistoryPage>, ApiError> {
    check_room("channel", &channel)?;
    let limit = params.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit: must be 1 to {MAX_LIMIT}"
        )));
    }
    let room = Room::from(channel.as_str());
    if !shared.cluster.keeps_history(&room) {
        return Err(ApiError::not_found(format!(
            "{channel} keeps no history (no [[history.channels]] rule matches it)"
        )));
    }
    // `since` is an offset of the current epoch: read the epoch first.
    let since = match params.since {
        None => None,
        Some(offset) => {
            let current = read(&shared, &room, &HistoryQuery::position()).await?;
            Some(StreamPosition::new(current.position.epoch, offset))
        }
    };
    let mut query = HistoryQuery::after(since, limit);
    if matches!(params.order, Some(Order::Desc)) {
        query = query.newest_first();
    }
    let history = read(&shared, &room, &query).await?;
    Ok(Json(HistoryPage {
        channel,
        epoch: history.position.epoch.to_string(),
        offset: history.position.offset,
        publications: history
            .publications
            .iter()
            .map(|p| Kept::new(p.offset, &p.payload))
            .collect(),
    }))
}

async fn read(shared: &Shared, room: &Room, query: &HistoryQuery) -> Result<History, ApiError> {
    shared
        .cluster
        .history(room, query)
        .await
        .map_err(|e| ApiError::broker(&format_args!("the history could not be read: {e}"), None))?
        .ok_or_else(|| ApiError::not_found(format!("{room} keeps no history")))
}
