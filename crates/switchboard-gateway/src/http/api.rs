//! `/api/v1`: publish, disconnect, connections, users, rooms, shutdown.
//! Every operation goes through the cluster, so with a network broker it
//! reaches every instance; listings are of this instance's connections.

use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use switchboard::broker::stream::IdempotencyKey;
use switchboard::broker::{
    ConnectionAddr, InstanceId, Payload, PublishError, PublishOptions, Published, Target,
};
use switchboard::protocol::wire::Channel;
use switchboard::{CloseCode, ConnectionId, ConnectionInfo, Room, UserId};
use utoipa::{IntoParams, ToSchema};

use super::close::CloseSpec;
use super::error::{
    ApiCode, ApiError, BadRequest, BrokerUnavailable, ErrorBody, NotFound, Unauthorized,
};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use crate::message::ServerMessage;
use crate::state::Shared;

type ApiResult<T> = Result<Json<T>, ApiError>;

/// Exactly one of the keys: `{"room": ...}`, `{"user": ...}`,
/// `{"connection": ...}` or `{"all": true}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
#[schema(as = Target)]
pub(super) struct TargetSpec {
    /// 1-255 characters of A-Z a-z 0-9 : _ - . @ / =
    room: Option<String>,
    user: Option<String>,
    /// 42 (this instance) or instance/42
    connection: Option<String>,
    /// `true`: every connection.
    all: Option<bool>,
}

impl TargetSpec {
    fn resolve(&self, shared: &Shared) -> Result<(Target, &'static str), ApiError> {
        let set = [
            self.room.is_some(),
            self.user.is_some(),
            self.connection.is_some(),
            self.all.is_some(),
        ];
        if set.iter().filter(|s| **s).count() != 1 {
            return Err(ApiError::bad_request(
                "target: set exactly one of room, user, connection or all",
            ));
        }
        if let Some(room) = &self.room {
            check_room("target.room", room)?;
            return Ok((Target::room(room.as_str()), "room"));
        }
        if let Some(user) = &self.user {
            check_user("target.user", user)?;
            return Ok((Target::user(user.as_str()), "user"));
        }
        if let Some(connection) = &self.connection {
            let addr = connection_addr(shared, "target.connection", connection)?;
            return Ok((Target::Connection(addr), "connection"));
        }
        match self.all {
            Some(true) => Ok((Target::All, "all")),
            _ => Err(ApiError::bad_request(
                "target.all: must be true (to send to every connection)",
            )),
        }
    }
}

/// Rooms are channels: they follow the protocol's channel naming rules.
pub(super) fn check_room(field: &str, name: &str) -> Result<(), ApiError> {
    Channel::validate(name)
        .map_err(|e| ApiError::bad_request(format!("{field}: {name:?} is not a valid room: {e}")))
}

/// User ids come from tokens (`sub` claims such as `auth0|5f7c...`): any
/// text of 1-255 bytes without control characters.
fn check_user(field: &str, user: &str) -> Result<(), ApiError> {
    if user.is_empty() || user.len() > 255 || user.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "{field}: not a valid user id: use 1-255 bytes without control characters"
        )));
    }
    Ok(())
}

/// `42` (a connection of this instance) or `instance/42` (anywhere).
fn connection_addr(shared: &Shared, field: &str, id: &str) -> Result<ConnectionAddr, ApiError> {
    if let Ok(n) = id.parse::<u64>() {
        return Ok(shared.cluster.address(ConnectionId(n)));
    }
    id.parse::<ConnectionAddr>().map_err(|_| {
        ApiError::bad_request(format!(
            "{field}: {id:?} is not a connection: use its id on this instance (42) or its address (instance/42)"
        ))
    })
}

/// Exactly one of `message` and `text`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PublishRequest {
    target: TargetSpec,
    /// A structured message: EVENT, DATA or NOTIFICATION.
    #[serde(default)]
    message: Option<ServerMessage>,
    /// A raw text payload, sent as one text frame; to a channel of a
    /// structured endpoint (public:*), as the EVENT switchboard.text.
    #[serde(default)]
    text: Option<String>,
    /// A connection to leave out (42 or instance/42).
    #[serde(default)]
    except: Option<String>,
    /// Your name for this message (1-128 printable ASCII characters, no
    /// spaces): a retry with the same key within the idempotency window
    /// (5 minutes by default) is answered with the first attempt's result
    /// and not delivered again. Keys are per channel for a room with
    /// history, per cluster otherwise.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 128)]
    idempotency_key: Option<String>,
}

/// What a publish reached.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct PublishResult {
    /// Connections on this instance it was queued for (on a room with
    /// history: the room's members here, who get it in offset order).
    local: usize,
    /// Whether the broker took it for the other instances.
    forwarded: bool,
    /// The message id (structured messages; not on a duplicate).
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    /// On a room with history: the publication's offset in its stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<u64>,
    /// On a room with history: the stream's epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    epoch: Option<String>,
    /// `true` when the idempotency key was seen before: this is the first
    /// attempt's position, and nothing was delivered this time.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    duplicate: bool,
}

/// `POST /api/v1/publish`.
#[utoipa::path(
    post,
    path = "/api/v1/publish",
    summary = "Publish a structured message (EVENT, DATA, NOTIFICATION) or raw text to a room, a user, a connection or everyone, on every instance.",
    request_body = PublishRequest,
    responses(
        (status = 200, description = "Delivered locally and accepted by the broker.", body = PublishResult),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = BrokerUnavailable),
    )
)]
pub(super) async fn publish(
    State(shared): State<Shared>,
    ApiJson(request): ApiJson<PublishRequest>,
) -> ApiResult<PublishResult> {
    let (target, kind) = request.target.resolve(&shared)?;
    let channel = match &target {
        Target::Room(room) => Some(room.as_str()),
        _ => None,
    };
    let (id, payload, type_name) = match (request.message, request.text) {
        (Some(message), None) => {
            message.validate().map_err(ApiError::bad_request)?;
            let kind = message.kind();
            let (id, text) = message.encode(channel);
            (Some(id), Payload::text(text), kind)
        }
        // Bare text to a structured endpoint's channel goes out as an EVENT
        // `switchboard.text`: its subscribers take the protocol's envelope only.
        (None, Some(text)) => match channel.and_then(|c| shared.structured.wrap_text(c, &text)) {
            Some((id, wrapped)) => (Some(id), Payload::text(wrapped), "text"),
            None => (None, Payload::text(text), "text"),
        },
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request("set message or text, not both"));
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "set message (a structured EVENT, DATA or NOTIFICATION) or text (a raw payload)",
            ));
        }
    };
    let except = request
        .except
        .as_deref()
        .map(|e| connection_addr(&shared, "except", e))
        .transpose()?;
    let key = request
        .idempotency_key
        .as_deref()
        .map(|key| {
            IdempotencyKey::new(key)
                .map_err(|e| ApiError::bad_request(format!("idempotency_key: {e}")))
        })
        .transpose()?;
    let mut options = PublishOptions::new();
    options.except = except;
    options.idempotency_key = key;
    let started = Instant::now();
    let result = shared.cluster.publish_with(target, payload, options).await;
    shared
        .metrics
        .broker_call(started.elapsed(), result.is_ok());
    match result {
        Ok(published) => {
            let Published {
                local,
                forwarded,
                position,
                duplicate,
                ..
            } = published;
            shared.metrics.published(kind, "ok");
            let offset = position.as_ref().map(|p| p.offset);
            tracing::info!(
                to = kind,
                r#type = type_name,
                local,
                offset,
                duplicate,
                "published"
            );
            Ok(Json(PublishResult {
                local,
                forwarded,
                id: id.filter(|_| !duplicate),
                offset,
                epoch: position.map(|p| p.epoch.to_string()),
                duplicate,
            }))
        }
        Err(PublishError { local, source, .. }) => {
            shared.metrics.published(kind, "broker_error");
            tracing::warn!(to = kind, local, error = %source, "publish not forwarded: broker failed");
            Err(ApiError::broker(
                &format_args!("the broker did not take the message: {source}"),
                Some(local),
            ))
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct DisconnectRequest {
    target: TargetSpec,
    /// Close code: 1000 (default), 1001, 1002, 1003, 1007, 1008, 1009, 1011, 1012, 1013 or 3000-4999.
    #[serde(default)]
    #[schema(default = 1000)]
    code: Option<u16>,
    /// Close reason, at most 123 bytes.
    #[serde(default)]
    #[schema(max_length = 123)]
    reason: Option<String>,
}

/// What a close reached.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct CloseResult {
    /// Connections on this instance being closed.
    local: usize,
    /// Whether the broker took it for the other instances.
    forwarded: bool,
}

/// `POST /api/v1/disconnect`.
#[utoipa::path(
    post,
    path = "/api/v1/disconnect",
    summary = "Close the connections of a target (a connection, a user, a room, everyone) on every instance.",
    request_body = DisconnectRequest,
    responses(
        (status = 200, description = "Closing.", body = CloseResult),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = BrokerUnavailable),
    )
)]
pub(super) async fn disconnect(
    State(shared): State<Shared>,
    ApiJson(request): ApiJson<DisconnectRequest>,
) -> ApiResult<CloseResult> {
    let (target, kind) = request.target.resolve(&shared)?;
    let spec = CloseSpec {
        code: request.code,
        reason: request.reason,
    };
    let (code, reason) = spec.resolve()?;
    close(&shared, target, kind, code, &reason).await
}

async fn close(
    shared: &Shared,
    target: Target,
    kind: &'static str,
    code: CloseCode,
    reason: &str,
) -> ApiResult<CloseResult> {
    let started = Instant::now();
    let result = shared.cluster.close(target, code, reason).await;
    shared
        .metrics
        .broker_call(started.elapsed(), result.is_ok());
    match result {
        Ok(published) => {
            tracing::info!(
                to = kind,
                code = u16::from(code),
                local = published.local,
                "disconnected"
            );
            Ok(Json(CloseResult {
                local: published.local,
                forwarded: published.forwarded,
            }))
        }
        Err(PublishError { local, source, .. }) => Err(ApiError::broker(
            &format_args!("the broker did not take the disconnect: {source}"),
            Some(local),
        )),
    }
}

/// One connection, as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Connection)]
pub(super) struct ConnectionView {
    id: u64,
    address: String,
    #[schema(value_type = Option<String>)]
    user: Option<UserId>,
    client_addr: String,
    path: String,
    /// Seconds since the Unix epoch.
    connected_at: f64,
    #[schema(value_type = Vec<String>)]
    rooms: Vec<Room>,
}

/// Connections of this instance.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ConnectionList {
    #[schema(value_type = String)]
    instance: InstanceId,
    /// How many there are (`connections` holds at most `limit`).
    total: usize,
    connections: Vec<ConnectionView>,
}

/// Connections here and on every instance.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Count {
    local: usize,
    cluster: usize,
}

/// Rooms with members on this instance.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct RoomList {
    #[schema(value_type = String)]
    instance: InstanceId,
    total: usize,
    rooms: Vec<RoomSize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct RoomSize {
    #[schema(value_type = String)]
    room: Room,
    size: usize,
}

/// A room's size here and across the cluster, and its members here.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Room)]
pub(super) struct RoomView {
    room: String,
    local: usize,
    cluster: usize,
    #[schema(value_type = Vec<u64>)]
    members: Vec<ConnectionId>,
}

fn view(shared: &Shared, info: &ConnectionInfo) -> ConnectionView {
    let mut rooms = shared.hub.rooms_of(info.id);
    rooms.sort();
    ConnectionView {
        id: info.id.0,
        address: shared.cluster.address(info.id).to_string(),
        user: info.user.clone(),
        client_addr: info.client_addr.to_string(),
        path: info.path.clone(),
        connected_at: info
            .connected_at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
        rooms,
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ListQuery {
    /// Only the members of this room.
    room: Option<String>,
    /// Only this user's connections.
    user: Option<String>,
    /// At most this many (1-10000, 100 by default).
    #[param(minimum = 1, maximum = 10000, default = 100)]
    limit: Option<usize>,
}

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 10_000;

fn limit(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit.unwrap_or(DEFAULT_LIMIT) {
        0 => Err(ApiError::bad_request("limit: must be at least 1")),
        n if n > MAX_LIMIT => Err(ApiError::bad_request(format!("limit: at most {MAX_LIMIT}"))),
        n => Ok(n),
    }
}

fn listing(shared: &Shared, mut infos: Vec<ConnectionInfo>, limit: usize) -> ConnectionList {
    infos.sort_by_key(|i| i.id);
    ConnectionList {
        instance: shared.cluster.instance().clone(),
        total: infos.len(),
        connections: infos.iter().take(limit).map(|i| view(shared, i)).collect(),
    }
}

fn infos(shared: &Shared, ids: Vec<ConnectionId>) -> Vec<ConnectionInfo> {
    ids.into_iter()
        .filter_map(|id| shared.hub.info(id))
        .collect()
}

/// `GET /api/v1/connections`: this instance's connections, optionally of a
/// room or a user.
#[utoipa::path(
    get,
    path = "/api/v1/connections",
    summary = "This instance's connections, optionally of one room or one user.",
    params(ListQuery),
    responses(
        (status = 200, description = "Connections", body = ConnectionList),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
    )
)]
pub(super) async fn connections(
    State(shared): State<Shared>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<ConnectionList> {
    let n = limit(query.limit)?;
    let infos = match (&query.room, &query.user) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request("filter by room or by user, not both"));
        }
        (Some(room), None) => infos(&shared, shared.hub.room_members(room.as_str())),
        (None, Some(user)) => infos(&shared, shared.hub.user_connections(user.as_str())),
        (None, None) => shared.hub.connections(),
    };
    Ok(Json(listing(&shared, infos, n)))
}

/// `GET /api/v1/connections/count`: here and across the cluster.
#[utoipa::path(
    get,
    path = "/api/v1/connections/count",
    summary = "Open connections here and on every instance.",
    responses(
        (status = 200, description = "Counts", body = Count),
        (status = 401, response = Unauthorized),
        (status = 503, response = BrokerUnavailable),
    )
)]
pub(super) async fn connection_count(State(shared): State<Shared>) -> ApiResult<Count> {
    let local = shared.hub.connection_count();
    let started = Instant::now();
    let cluster = shared.cluster.connection_count().await;
    shared
        .metrics
        .broker_call(started.elapsed(), cluster.is_ok());
    match cluster {
        Ok(cluster) => Ok(Json(Count { local, cluster })),
        Err(e) => Err(ApiError::broker(
            &format_args!("cannot count other instances' connections: {e}"),
            None,
        )),
    }
}

/// `GET /api/v1/connections/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/connections/{id}",
    summary = "One connection of this instance.",
    params(("id" = String, Path, description = "The id on this instance (42) or the cluster address (instance/42, percent-encoded: instance%2F42).")),
    responses(
        (status = 200, description = "The connection", body = ConnectionView),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    )
)]
pub(super) async fn connection(
    State(shared): State<Shared>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ConnectionView> {
    let addr = connection_addr(&shared, "id", &id)?;
    if addr.instance != *shared.cluster.instance() {
        return Err(ApiError::not_found(format!(
            "connection {addr} is on instance {}: ask that instance",
            addr.instance
        )));
    }
    match shared.hub.info(addr.id) {
        Some(info) => Ok(Json(view(&shared, &info))),
        None => Err(ApiError::not_found(format!("no connection {addr}"))),
    }
}

/// `DELETE /api/v1/connections/{id}?code=&reason=`.
#[utoipa::path(
    delete,
    path = "/api/v1/connections/{id}",
    summary = "Close one connection, on whichever instance holds it. A connection of this instance that does not exist answers 404; one of another instance is handed to the broker (200 with `forwarded: true`, `local: 0`): this instance cannot tell whether it exists.",
    params(("id" = String, Path, description = "The id on this instance (42) or the cluster address (instance/42, percent-encoded: instance%2F42)."), CloseSpec),
    responses(
        (status = 200, description = "Closing: `{\"local\": 1, \"forwarded\": false}` for a connection of this instance, `{\"local\": 0, \"forwarded\": true}` for one of another instance.", body = CloseResult),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = BrokerUnavailable),
    )
)]
pub(super) async fn close_connection(
    State(shared): State<Shared>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(spec): ApiQuery<CloseSpec>,
) -> ApiResult<CloseResult> {
    let addr = connection_addr(&shared, "id", &id)?;
    let (code, reason) = spec.resolve()?;
    if addr.instance == *shared.cluster.instance() && shared.hub.info(addr.id).is_none() {
        return Err(ApiError::not_found(format!("no connection {addr}")));
    }
    close(
        &shared,
        Target::Connection(addr),
        "connection",
        code,
        &reason,
    )
    .await
}

/// `GET /api/v1/users/{user}/connections`: the user's connections here.
#[utoipa::path(
    get,
    path = "/api/v1/users/{user}/connections",
    summary = "A user's connections on this instance.",
    params(("user" = String, Path)),
    responses(
        (status = 200, description = "Connections", body = ConnectionList),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
    )
)]
pub(super) async fn user_connections(
    State(shared): State<Shared>,
    ApiPath(user): ApiPath<String>,
) -> ApiResult<ConnectionList> {
    check_user("user", &user)?;
    let infos = infos(&shared, shared.hub.user_connections(user.as_str()));
    Ok(Json(listing(&shared, infos, MAX_LIMIT)))
}

/// `DELETE /api/v1/users/{user}/connections?code=&reason=`: on every instance.
#[utoipa::path(
    delete,
    path = "/api/v1/users/{user}/connections",
    summary = "Close every connection of a user, on every instance.",
    params(("user" = String, Path), CloseSpec),
    responses(
        (status = 200, description = "Closing", body = CloseResult),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = BrokerUnavailable),
    )
)]
pub(super) async fn close_user(
    State(shared): State<Shared>,
    ApiPath(user): ApiPath<String>,
    ApiQuery(spec): ApiQuery<CloseSpec>,
) -> ApiResult<CloseResult> {
    check_user("user", &user)?;
    let (code, reason) = spec.resolve()?;
    close(&shared, Target::user(user), "user", code, &reason).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct RoomsQuery {
    /// At most this many (1-10000, 100 by default).
    #[param(minimum = 1, maximum = 10000, default = 100)]
    limit: Option<usize>,
}

/// `GET /api/v1/rooms`: rooms with members here, and their sizes here.
#[utoipa::path(
    get,
    path = "/api/v1/rooms",
    summary = "Rooms with members on this instance, and their sizes here.",
    params(RoomsQuery),
    responses(
        (status = 200, description = "Rooms", body = RoomList),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
    )
)]
pub(super) async fn rooms(
    State(shared): State<Shared>,
    ApiQuery(query): ApiQuery<RoomsQuery>,
) -> ApiResult<RoomList> {
    let n = limit(query.limit)?;
    let mut rooms = shared.hub.rooms();
    rooms.sort();
    Ok(Json(RoomList {
        instance: shared.cluster.instance().clone(),
        total: rooms.len(),
        rooms: rooms
            .into_iter()
            .take(n)
            .map(|(room, size)| RoomSize { room, size })
            .collect(),
    }))
}

/// `GET /api/v1/rooms/{room}`: its size here and across the cluster, and
/// its members here.
#[utoipa::path(
    get,
    path = "/api/v1/rooms/{room}",
    summary = "A room's size here and across the cluster, and its members here.",
    params(("room" = String, Path)),
    responses(
        (status = 200, description = "The room", body = RoomView),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = BrokerUnavailable),
    )
)]
pub(super) async fn room(
    State(shared): State<Shared>,
    ApiPath(room): ApiPath<String>,
) -> ApiResult<RoomView> {
    check_room("room", &room)?;
    let mut members = shared.hub.room_members(room.as_str());
    members.sort();
    let started = Instant::now();
    let cluster = shared.cluster.room_size(room.as_str()).await;
    shared
        .metrics
        .broker_call(started.elapsed(), cluster.is_ok());
    let cluster = cluster.map_err(|e| {
        ApiError::broker(
            &format_args!("cannot count the room on other instances: {e}"),
            None,
        )
    })?;
    Ok(Json(RoomView {
        room,
        local: members.len(),
        cluster,
        members,
    }))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub(super) struct ShutdownRequest {
    /// Close clients with 1012 (restart: reconnect soon) instead of 1001.
    restart: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ShutdownAccepted {
    shutting_down: bool,
    close_code: u16,
}

/// `POST /api/v1/admin/shutdown`: graceful shutdown (1001, or 1012 with
/// `restart`). Only with an API key configured: without one, anything on
/// the machine could stop the gateway.
#[utoipa::path(
    post,
    path = "/api/v1/admin/shutdown",
    summary = "Graceful shutdown: clients are closed with 1001, or 1012 with restart. Needs a configured API key (403 otherwise).",
    request_body(content = Option<ShutdownRequest>),
    responses(
        (status = 202, description = "Shutting down", body = ShutdownAccepted),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, description = "No API key is configured.", body = ErrorBody),
    )
)]
pub(super) async fn shutdown(
    State(shared): State<Shared>,
    ApiJson(request): ApiJson<ShutdownRequest>,
) -> Result<(StatusCode, Json<ShutdownAccepted>), ApiError> {
    if shared.api.keys.is_empty() {
        return Err(ApiError::new(
            ApiCode::Forbidden,
            "admin endpoints need an API key: set api.keys or SWITCHBOARD_API_KEY",
        ));
    }
    shared.shutdown.start(request.restart, "admin API");
    let code = if request.restart { 1012 } else { 1001 };
    Ok((
        StatusCode::ACCEPTED,
        Json(ShutdownAccepted {
            shutting_down: true,
            close_code: code,
        }),
    ))
}
