//! `/api/v1`: publish, disconnect, connections, users, rooms, shutdown.
//! Every operation goes through the cluster, so with a network broker it
//! reaches every instance; listings are of this instance's connections.

use std::time::Instant;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchboard::broker::{ConnectionAddr, Payload, PublishError, Published, Target};
use switchboard::protocol::wire::Channel;
use switchboard::{CloseCode, ConnectionId, ConnectionInfo, Room, UserId};

use super::body::{ApiError, ApiJson};
use crate::message::ServerMessage;
use crate::state::Shared;

type ApiResult = Result<Json<Value>, ApiError>;

/// `{"room": ...}`, `{"user": ...}`, `{"connection": ...}` or `{"all": true}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct TargetSpec {
    room: Option<String>,
    user: Option<String>,
    connection: Option<String>,
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
fn check_room(field: &str, name: &str) -> Result<(), ApiError> {
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PublishRequest {
    target: TargetSpec,
    /// A structured message: EVENT, DATA or NOTIFICATION.
    #[serde(default)]
    message: Option<ServerMessage>,
    /// A raw text payload, sent as is.
    #[serde(default)]
    text: Option<String>,
    /// A connection to leave out.
    #[serde(default)]
    except: Option<String>,
}

/// `POST /api/v1/publish`.
pub(super) async fn publish(
    State(shared): State<Shared>,
    ApiJson(request): ApiJson<PublishRequest>,
) -> ApiResult {
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
        (None, Some(text)) => (None, Payload::text(text), "text"),
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
    let started = Instant::now();
    let result = match except {
        Some(except) => shared.cluster.publish_except(target, payload, except).await,
        None => shared.cluster.publish(target, payload).await,
    };
    shared
        .metrics
        .broker_call(started.elapsed(), result.is_ok());
    match result {
        Ok(Published {
            local, forwarded, ..
        }) => {
            shared.metrics.published(kind, "ok");
            tracing::info!(to = kind, r#type = type_name, local, "published");
            let mut body = json!({ "local": local, "forwarded": forwarded });
            if let Some(id) = id {
                body["id"] = json!(id);
            }
            Ok(Json(body))
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DisconnectRequest {
    target: TargetSpec,
    #[serde(default)]
    code: Option<u16>,
    #[serde(default)]
    reason: Option<String>,
}

/// A close code and reason, from a body or a query string.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CloseSpec {
    #[serde(default)]
    code: Option<u16>,
    #[serde(default)]
    reason: Option<String>,
}

impl CloseSpec {
    fn resolve(&self) -> Result<(CloseCode, String), ApiError> {
        let code = CloseCode::from(self.code.unwrap_or(1000));
        if !code.is_sendable() || matches!(u16::from(code), 1004..=1006 | 1015) {
            return Err(ApiError::bad_request(format!(
                "code: {} cannot be sent: use 1000, 1001, 1008, 1011, 1012, 1013 or 3000-4999",
                u16::from(code)
            )));
        }
        let reason = self
            .reason
            .clone()
            .unwrap_or_else(|| "disconnected by the server".to_owned());
        if reason.len() > 123 {
            return Err(ApiError::bad_request(
                "reason: at most 123 bytes (a close frame's limit)",
            ));
        }
        Ok((code, reason))
    }
}

/// `POST /api/v1/disconnect`.
pub(super) async fn disconnect(
    State(shared): State<Shared>,
    ApiJson(request): ApiJson<DisconnectRequest>,
) -> ApiResult {
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
) -> ApiResult {
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
            Ok(Json(
                json!({ "local": published.local, "forwarded": published.forwarded }),
            ))
        }
        Err(PublishError { local, source, .. }) => Err(ApiError::broker(
            &format_args!("the broker did not take the disconnect: {source}"),
            Some(local),
        )),
    }
}

/// One connection, as the API shows it.
#[derive(Debug, Serialize)]
struct ConnectionView {
    id: u64,
    address: String,
    user: Option<UserId>,
    client_addr: String,
    path: String,
    connected_at: f64,
    rooms: Vec<Room>,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    room: Option<String>,
    user: Option<String>,
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

fn listing(shared: &Shared, mut infos: Vec<ConnectionInfo>, limit: usize) -> Value {
    infos.sort_by_key(|i| i.id);
    let total = infos.len();
    let connections: Vec<ConnectionView> =
        infos.iter().take(limit).map(|i| view(shared, i)).collect();
    json!({
        "instance": shared.cluster.instance(),
        "total": total,
        "connections": connections,
    })
}

fn infos(shared: &Shared, ids: Vec<ConnectionId>) -> Vec<ConnectionInfo> {
    ids.into_iter()
        .filter_map(|id| shared.hub.info(id))
        .collect()
}

/// `GET /api/v1/connections`: this instance's connections, optionally of a
/// room or a user.
pub(super) async fn connections(
    State(shared): State<Shared>,
    Query(query): Query<ListQuery>,
) -> ApiResult {
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
pub(super) async fn connection_count(State(shared): State<Shared>) -> ApiResult {
    let local = shared.hub.connection_count();
    let started = Instant::now();
    let cluster = shared.cluster.connection_count().await;
    shared
        .metrics
        .broker_call(started.elapsed(), cluster.is_ok());
    match cluster {
        Ok(cluster) => Ok(Json(json!({ "local": local, "cluster": cluster }))),
        Err(e) => Err(ApiError::broker(
            &format_args!("cannot count other instances' connections: {e}"),
            None,
        )),
    }
}

/// `GET /api/v1/connections/{id}`.
pub(super) async fn connection(State(shared): State<Shared>, Path(id): Path<String>) -> ApiResult {
    let addr = connection_addr(&shared, "id", &id)?;
    if addr.instance != *shared.cluster.instance() {
        return Err(ApiError::not_found(format!(
            "connection {addr} is on instance {}: ask that instance",
            addr.instance
        )));
    }
    match shared.hub.info(addr.id) {
        Some(info) => Ok(Json(json!(view(&shared, &info)))),
        None => Err(ApiError::not_found(format!("no connection {addr}"))),
    }
}

/// `DELETE /api/v1/connections/{id}?code=&reason=`.
pub(super) async fn close_connection(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    Query(spec): Query<CloseSpec>,
) -> ApiResult {
    let addr = connection_addr(&shared, "id", &id)?;
    let (code, reason) = spec.resolve()?;
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
pub(super) async fn user_connections(
    State(shared): State<Shared>,
    Path(user): Path<String>,
) -> ApiResult {
    check_user("user", &user)?;
    let infos = infos(&shared, shared.hub.user_connections(user.as_str()));
    Ok(Json(listing(&shared, infos, MAX_LIMIT)))
}

/// `DELETE /api/v1/users/{user}/connections?code=&reason=`: on every instance.
pub(super) async fn close_user(
    State(shared): State<Shared>,
    Path(user): Path<String>,
    Query(spec): Query<CloseSpec>,
) -> ApiResult {
    check_user("user", &user)?;
    let (code, reason) = spec.resolve()?;
    close(&shared, Target::user(user), "user", code, &reason).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RoomsQuery {
    limit: Option<usize>,
}

/// `GET /api/v1/rooms`: rooms with members here, and their sizes here.
pub(super) async fn rooms(
    State(shared): State<Shared>,
    Query(query): Query<RoomsQuery>,
) -> ApiResult {
    let n = limit(query.limit)?;
    let mut rooms = shared.hub.rooms();
    rooms.sort();
    let total = rooms.len();
    let rooms: Vec<Value> = rooms
        .into_iter()
        .take(n)
        .map(|(room, size)| json!({ "room": room, "size": size }))
        .collect();
    Ok(Json(json!({
        "instance": shared.cluster.instance(),
        "total": total,
        "rooms": rooms,
    })))
}

/// `GET /api/v1/rooms/{room}`: its size here and across the cluster, and
/// its members here.
pub(super) async fn room(State(shared): State<Shared>, Path(room): Path<String>) -> ApiResult {
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
    Ok(Json(json!({
        "room": room,
        "local": members.len(),
        "cluster": cluster,
        "members": members,
    })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct ShutdownRequest {
    restart: bool,
}

/// `POST /api/v1/admin/shutdown`: graceful shutdown (1001, or 1012 with
/// `restart`). Only with an API key configured: without one, anything on
/// the machine could stop the gateway.
pub(super) async fn shutdown(
    State(shared): State<Shared>,
    ApiJson(request): ApiJson<ShutdownRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if shared.api.keys.is_empty() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "admin endpoints need an API key: set api.keys or SWITCHBOARD_API_KEY",
        ));
    }
    let Some(trigger) = shared.shutdown.get() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "starting",
            "the gateway is still starting",
        ));
    };
    trigger.start(request.restart, "admin API");
    let code = if request.restart { 1012 } else { 1001 };
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "shutting_down": true, "close_code": code })),
    ))
}
