//! The OpenAPI document of the HTTP API, generated with `utoipa`: the paths
//! from the route table ([`Route`]), each operation from its handler's
//! `#[utoipa::path]`, the schemas from the request and response types.

use std::sync::OnceLock;

use utoipa::OpenApi as _;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi, Ref, RefOr, SecurityRequirement};

use super::Route;
use super::api::{
    CloseResult, ConnectionList, ConnectionView, Count, DisconnectRequest, PublishRequest,
    PublishResult, RoomList, RoomView, ShutdownAccepted, ShutdownRequest,
};
use super::error::{
    ApiCode, BadRequest, BrokerUnavailable, ErrorBody, MethodNotAllowed, NotFound, PayloadTooLarge,
    Unauthorized, UnsupportedMediaType,
};
use super::history::{HistoryPage, Kept, Order};
use super::pages::Readiness;
use super::presence::{PresenceCounts, PresenceEntry, PresencePage};
use super::routes::{Part, Verb};

/// What the table does not say: the description, the schemas and the
/// shared responses.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Switchboard gateway HTTP API",
        version = "1",
        description = "Served on the WebSocket port. Routes under /api/v1 (except this document) need an API key when one is configured: `Authorization: Bearer <key>` or `X-API-Key: <key>`; without one they answer 401. Every error under /api/ is `{\"error\": {\"code\", \"message\"}}` (code: see the Error schema): 400 `bad_request` for bad JSON, an unknown field or query parameter, a value of the wrong type or a missing target (the message starts with the field's name), 403 `forbidden` for an Origin not in api.cors_origins, 404 `not_found` for an unknown route or connection, 405 `method_not_allowed` for a method the route does not take (with Allow), 413 `payload_too_large` for a body over 2 MiB, 415 `unsupported_media_type` for a body without Content-Type: application/json, 421 `misdirected_request` for a Host not allowed, 503 `broker_unavailable` when the broker fails (with `local`, the recipients on this instance already reached). Ids, users and rooms in paths are percent-encoded (`node-1%2F42`)."
    ),
    components(
        schemas(
            PublishRequest,
            PublishResult,
            DisconnectRequest,
            CloseResult,
            ConnectionView,
            ConnectionList,
            Count,
            RoomList,
            RoomView,
            ShutdownRequest,
            ShutdownAccepted,
            Readiness,
            ErrorBody,
            ApiCode,
            HistoryPage,
            Kept,
            Order,
            PresencePage,
            PresenceCounts,
            PresenceEntry,
        ),
        responses(
            BadRequest,
            Unauthorized,
            NotFound,
            MethodNotAllowed,
            PayloadTooLarge,
            UnsupportedMediaType,
            BrokerUnavailable,
        ),
    )
)]
struct Base;

/// The document: every route of the table at its method and path, public
/// ones without security, the others with an API key.
pub(crate) fn document() -> OpenApi {
    let mut doc = Base::openapi();
    for route in Route::ALL {
        let (_, _, mut operation) = route.operation();
        if route.is_public() {
            operation.security = Some(Vec::new());
        }
        // What every API route may answer, and every one with a body.
        if route.part() == Part::Api {
            let mut shared = vec![("405", "MethodNotAllowed")];
            if route.verb() == Verb::Post {
                shared.extend([("413", "PayloadTooLarge"), ("415", "UnsupportedMediaType")]);
            }
            for (status, name) in shared {
                operation
                    .responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
            }
        }
        doc.paths
            .add_path_operation(route.path(), vec![route.verb().openapi()], operation);
    }
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    components.add_security_scheme(
        "apiKey",
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
    );
    let none: [&str; 0] = [];
    doc.security = Some(vec![
        SecurityRequirement::new("bearer", none),
        SecurityRequirement::new("apiKey", none),
    ]);
    doc
}

/// The document as JSON, built once.
pub(crate) fn json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        document()
            .to_pretty_json()
            .expect("the OpenAPI document serialises")
    })
}
