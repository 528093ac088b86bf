//! The one table of HTTP routes. The router, the `route` label of
//! `switchboard_http_requests_total`, the paths config may not take, and
//! the OpenAPI document (each handler's `#[utoipa::path]`) all come from it.

use axum::routing::{MethodRouter, delete, get, post};
use utoipa::openapi::path::{HttpMethod, Operation};

use super::{api, history, pages};
use crate::state::Shared;

/// One HTTP route of the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Route {
    Demo,
    ClientJs,
    Healthz,
    Readyz,
    Metrics,
    OpenApi,
    Publish,
    Disconnect,
    Connections,
    ConnectionCount,
    Connection,
    CloseConnection,
    UserConnections,
    CloseUser,
    Rooms,
    Room,
    History,
    Shutdown,
}

/// The methods the gateway serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    Get,
    Post,
    Delete,
}

impl Verb {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Delete => "DELETE",
        }
    }

    /// The method in the OpenAPI document.
    pub(crate) const fn openapi(self) -> HttpMethod {
        match self {
            Self::Get => HttpMethod::Get,
            Self::Post => HttpMethod::Post,
            Self::Delete => HttpMethod::Delete,
        }
    }
}

/// Which setting turns a route on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// Always served.
    Health,
    /// `demo.enabled`.
    Demo,
    /// `metrics.enabled`.
    Metrics,
    /// `api.enabled`.
    Api,
}

impl Route {
    /// Every route.
    pub(crate) const ALL: [Self; 18] = [
        Self::Demo,
        Self::ClientJs,
        Self::Healthz,
        Self::Readyz,
        Self::Metrics,
        Self::OpenApi,
        Self::Publish,
        Self::Disconnect,
        Self::Connections,
        Self::ConnectionCount,
        Self::Connection,
        Self::CloseConnection,
        Self::UserConnections,
        Self::CloseUser,
        Self::Rooms,
        Self::Room,
        Self::History,
        Self::Shutdown,
    ];

    /// The method and the path template (axum's syntax, as in OpenAPI).
    pub(crate) const fn endpoint(self) -> (Verb, &'static str) {
        match self {
            Self::Demo => (Verb::Get, "/"),
            Self::ClientJs => (Verb::Get, "/switchboard-client.js"),
            Self::Healthz => (Verb::Get, "/healthz"),
            Self::Readyz => (Verb::Get, "/readyz"),
            Self::Metrics => (Verb::Get, "/metrics"),
            Self::OpenApi => (Verb::Get, "/api/v1/openapi.json"),
            Self::Publish => (Verb::Post, "/api/v1/publish"),
            Self::Disconnect => (Verb::Post, "/api/v1/disconnect"),
            Self::Connections => (Verb::Get, "/api/v1/connections"),
            Self::ConnectionCount => (Verb::Get, "/api/v1/connections/count"),
            Self::Connection => (Verb::Get, "/api/v1/connections/{id}"),
            Self::CloseConnection => (Verb::Delete, "/api/v1/connections/{id}"),
            Self::UserConnections => (Verb::Get, "/api/v1/users/{user}/connections"),
            Self::CloseUser => (Verb::Delete, "/api/v1/users/{user}/connections"),
            Self::Rooms => (Verb::Get, "/api/v1/rooms"),
            Self::Room => (Verb::Get, "/api/v1/rooms/{room}"),
            Self::History => (Verb::Get, "/api/v1/channels/{channel}/history"),
            Self::Shutdown => (Verb::Post, "/api/v1/admin/shutdown"),
        }
    }

    /// The path template: the `route` label of the request metrics.
    pub(crate) const fn path(self) -> &'static str {
        self.endpoint().1
    }

    pub(crate) const fn verb(self) -> Verb {
        self.endpoint().0
    }

    /// The methods the table serves at `path`, in the table's order.
    pub(crate) fn verbs_of(path: &str) -> Vec<Verb> {
        Self::ALL
            .iter()
            .filter(|r| r.path() == path)
            .map(|r| r.verb())
            .collect()
    }

    /// The setting that serves it.
    pub(crate) const fn part(self) -> Part {
        match self {
            Self::Demo | Self::ClientJs => Part::Demo,
            Self::Healthz | Self::Readyz => Part::Health,
            Self::Metrics => Part::Metrics,
            Self::OpenApi
            | Self::Publish
            | Self::Disconnect
            | Self::Connections
            | Self::ConnectionCount
            | Self::Connection
            | Self::CloseConnection
            | Self::UserConnections
            | Self::CloseUser
            | Self::Rooms
            | Self::Room
            | Self::History
            | Self::Shutdown => Part::Api,
        }
    }

    /// Whether anyone may call it: everything outside `/api/v1`, and the
    /// API's own description. The rest needs an API key when one is set.
    pub(crate) const fn is_public(self) -> bool {
        !matches!(self.part(), Part::Api) || matches!(self, Self::OpenApi)
    }

    /// The handler.
    pub(crate) fn handler(self) -> MethodRouter<Shared> {
        match self {
            Self::Demo => get(pages::demo),
            Self::ClientJs => get(pages::client_js),
            Self::Healthz => get(pages::healthz),
            Self::Readyz => get(pages::readyz),
            Self::Metrics => get(pages::metrics),
            Self::OpenApi => get(pages::openapi),
            Self::Publish => post(api::publish),
            Self::Disconnect => post(api::disconnect),
            Self::Connections => get(api::connections),
            Self::ConnectionCount => get(api::connection_count),
            Self::Connection => get(api::connection),
            Self::CloseConnection => delete(api::close_connection),
            Self::UserConnections => get(api::user_connections),
            Self::CloseUser => delete(api::close_user),
            Self::Rooms => get(api::rooms),
            Self::Room => get(api::room),
            Self::History => get(history::history),
            Self::Shutdown => post(api::shutdown),
        }
    }

    /// The handler's OpenAPI description (its `#[utoipa::path]`): the
    /// path and methods it declares, and the operation.
    pub(crate) fn operation(self) -> (String, Vec<HttpMethod>, Operation) {
        fn of<P: utoipa::Path>() -> (String, Vec<HttpMethod>, Operation) {
            (P::path(), P::methods(), P::operation())
        }
        match self {
            Self::Demo => of::<pages::__path_demo>(),
            Self::ClientJs => of::<pages::__path_client_js>(),
            Self::Healthz => of::<pages::__path_healthz>(),
            Self::Readyz => of::<pages::__path_readyz>(),
            Self::Metrics => of::<pages::__path_metrics>(),
            Self::OpenApi => of::<pages::__path_openapi>(),
            Self::Publish => of::<api::__path_publish>(),
            Self::Disconnect => of::<api::__path_disconnect>(),
            Self::Connections => of::<api::__path_connections>(),
            Self::ConnectionCount => of::<api::__path_connection_count>(),
            Self::Connection => of::<api::__path_connection>(),
            Self::CloseConnection => of::<api::__path_close_connection>(),
            Self::UserConnections => of::<api::__path_user_connections>(),
            Self::CloseUser => of::<api::__path_close_user>(),
            Self::Rooms => of::<api::__path_rooms>(),
            Self::Room => of::<api::__path_room>(),
            Self::History => of::<history::__path_history>(),
            Self::Shutdown => of::<api::__path_shutdown>(),
        }
    }
}

/// Whether the HTTP side serves `path`, so that no WebSocket endpoint may
/// take it: a route's path, `/api`, or anything under `/api/`.
pub(crate) fn is_reserved(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/") || Route::ALL.iter().any(|r| r.path() == path)
}
