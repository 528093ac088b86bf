//! Extractors: what a handler can ask for in its arguments.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use super::path::{self, ParamsDeserializer};
use super::upgrade::WebSocketUpgrade;
use crate::error::Rejection;
use crate::request::RequestInfo;

/// The request as extractors see it, before the handler runs.
#[derive(Debug)]
pub struct RequestContext {
    pub(crate) info: Arc<RequestInfo>,
    pub(crate) upgrade: Option<WebSocketUpgrade>,
    pub(crate) hub: crate::hub::Hub,
}

impl RequestContext {
    /// The request.
    pub fn request(&self) -> &Arc<RequestInfo> {
        &self.info
    }
}

/// A value a handler can take as an argument. Extraction runs before the
/// handshake completes; a [`Rejection`] refuses it with that HTTP status and
/// the handler is never called.
pub trait FromRequest: Sized + Send {
    /// Extracts the value.
    fn from_request(
        cx: &mut RequestContext,
    ) -> impl Future<Output = Result<Self, Rejection>> + Send;
}

impl FromRequest for WebSocketUpgrade {
    async fn from_request(cx: &mut RequestContext) -> Result<Self, Rejection> {
        cx.upgrade.take().ok_or_else(|| {
            Rejection::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "WebSocketUpgrade extracted twice",
            )
        })
    }
}

impl FromRequest for Arc<RequestInfo> {
    async fn from_request(cx: &mut RequestContext) -> Result<Self, Rejection> {
        Ok(Arc::clone(&cx.info))
    }
}

/// Typed path parameters: `Path<u64>` for a route with one parameter,
/// `Path<(String, u32)>` for several, or a struct with fields named after them.
/// A value that does not parse answers 400 with a reason naming the parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequest for Path<T> {
    async fn from_request(cx: &mut RequestContext) -> Result<Self, Rejection> {
        let params = cx.info.path_params();
        path::single::<T>(params).map(Path).map_err(|e| {
            let reason = match params {
                [(name, _)] if !e.0.contains(name.as_str()) => {
                    format!("invalid path parameter `{name}`: {}", e.0)
                }
                _ => e.0,
            };
            Rejection::new(StatusCode::BAD_REQUEST, reason)
        })
    }
}

/// Typed query parameters, deserialized from the query string into a struct
/// (use `Option` fields for optional ones). Bad values answer 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequest for Query<T> {
    async fn from_request(cx: &mut RequestContext) -> Result<Self, Rejection> {
        let pairs = cx.info.query_pairs();
        T::deserialize(ParamsDeserializer(&pairs, "query parameter"))
            .map(Query)
            .map_err(|e| {
                Rejection::new(
                    StatusCode::BAD_REQUEST,
                    format!("invalid query string: {}", e.0),
                )
            })
    }
}

impl FromRequest for crate::hub::Hub {
    async fn from_request(cx: &mut RequestContext) -> Result<Self, Rejection> {
        Ok(cx.hub.clone())
    }
}

/// The peer's socket address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

impl FromRequest for ClientAddr {
    async fn from_request(cx: &mut RequestContext) -> Result<Self, Rejection> {
        Ok(ClientAddr(cx.info.client_addr()))
    }
}

/// The request headers.
#[derive(Debug, Clone)]
pub struct Headers(pub HeaderMap);

impl FromRequest for Headers {
    async fn from_request(cx: &mut RequestContext) -> Result<Self, Rejection> {
        Ok(Headers(cx.info.headers().clone()))
    }
}

/// The authenticated identity; anonymous clients are refused with
/// `401 Authentication required` (take `Option<Identity>` to accept them).
impl FromRequest for crate::identity::Identity {
    async fn from_request(cx: &mut RequestContext) -> Result<Self, Rejection> {
        cx.info
            .identity()
            .cloned()
            .ok_or_else(crate::security::authentication_required)
    }
}

/// The authenticated identity, or `None` for an anonymous client.
impl FromRequest for Option<crate::identity::Identity> {
    async fn from_request(cx: &mut RequestContext) -> Result<Self, Rejection> {
        Ok(cx.info.identity().cloned())
    }
}
