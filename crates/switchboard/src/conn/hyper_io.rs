//! What the tower service needs of hyper: the answer to a request hyper
//! read, its response body, and the upgraded stream as a transport.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::{HeaderValue, Response, StatusCode, header};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use crate::error::{Error, Rejection};
use crate::transport::Transport;

/// The body of [`crate::WebSocketService`]'s responses: empty for `101`, the
/// plain-text reason of a refusal otherwise.
#[derive(Debug, Default)]
pub struct ResponseBody(Option<Bytes>);

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.take().map(|data| Ok(http_body::Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_none()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.0.as_ref().map_or(0, |data| data.len() as u64))
    }
}

/// A request hyper read, waiting for its answer: the channel to the
/// service's response future, and the stream hyper hands over after `101`.
#[derive(Debug)]
pub(crate) struct HttpPending {
    respond: oneshot::Sender<Response<ResponseBody>>,
    upgrade: Option<OnUpgrade>,
}

impl HttpPending {
    pub(crate) fn new(
        respond: oneshot::Sender<Response<ResponseBody>>,
        upgrade: Option<OnUpgrade>,
    ) -> Self {
        Self { respond, upgrade }
    }

    /// Whether the server can hand the connection over after `101`.
    pub(crate) fn upgradable(&self) -> Result<(), Rejection> {
        match self.upgrade {
            Some(_) => Ok(()),
            None => Err(not_upgradable()),
        }
    }

    /// Answers with the refusal, as Switchboard's own listener would.
    pub(crate) fn refuse(self, rejection: &Rejection) {
        // The client may be gone already; then there is no one to tell.
        let _ = self.respond.send(refusal(rejection));
    }

    /// Answers `101` and waits for the server to hand the stream over.
    pub(crate) async fn switch(
        self,
        accept: &str,
        protocol: Option<&str>,
        extensions: Option<&str>,
    ) -> Result<(Transport, BytesMut), Error> {
        let Some(upgrade) = self.upgrade else {
            return Err(Error::Rejected(not_upgradable()));
        };
        let mut response = Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::UPGRADE, "websocket")
            .header(header::CONNECTION, "Upgrade")
            .header(header::SEC_WEBSOCKET_ACCEPT, accept);
        if let Some(protocol) = protocol {
            response = response.header(header::SEC_WEBSOCKET_PROTOCOL, protocol);
        }
        if let Some(extensions) = extensions {
            response = response.header(header::SEC_WEBSOCKET_EXTENSIONS, extensions);
        }
        let response = response
            .body(ResponseBody::default())
            .map_err(std::io::Error::other)?;
        if self.respond.send(response).is_err() {
            return Err(std::io::Error::from(std::io::ErrorKind::ConnectionAborted).into());
        }
        let upgraded = upgrade.await.map_err(std::io::Error::other)?;
        Ok(into_transport(upgraded))
    }
}

/// The HTTP server gave no way to take the connection over after `101`.
fn not_upgradable() -> Rejection {
    tracing::error!(
        "the HTTP server cannot upgrade this connection: serve HTTP/1.1 with upgrades \
         (axum::serve; hyper's serve_connection(..).with_upgrades())"
    );
    Rejection::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "The server cannot upgrade this connection",
    )
}

/// A refusal as an HTTP response: the same status, headers and plain-text
/// body Switchboard's own listener writes.
pub(crate) fn refusal(rejection: &Rejection) -> Response<ResponseBody> {
    let body = Bytes::copy_from_slice(rejection.reason.as_bytes());
    let mut response = Response::new(ResponseBody(Some(body)));
    *response.status_mut() = rejection.status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    for (name, value) in &rejection.headers {
        headers.append(name.clone(), value.clone());
    }
    response
}

/// The upgraded stream as a transport: a plain hyper server over
/// `TokioIo<TcpStream>` gives the socket back (split without a lock, as on
/// our own listener); anything else (axum's server wraps the stream) is
/// used through hyper's `Upgraded`.
fn into_transport(upgraded: Upgraded) -> (Transport, BytesMut) {
    match upgraded.downcast::<TokioIo<TcpStream>>() {
        Ok(parts) => (
            Transport::Tcp(parts.io.into_inner()),
            BytesMut::from(parts.read_buf),
        ),
        Err(upgraded) => (
            Transport::Other(Box::new(SyncIo(parking_lot::Mutex::new(TokioIo::new(
                upgraded,
            ))))),
            BytesMut::new(),
        ),
    }
}

/// Makes a `Send` stream `Sync`, as [`crate::Io`] asks, without locking:
/// it is only ever used through `Pin<&mut Self>`, so `Mutex::get_mut`
/// reaches the stream with no lock taken. (hyper's `Upgraded` is not `Sync`.)
struct SyncIo<T>(parking_lot::Mutex<T>);

impl<T: AsyncRead + Unpin> AsyncRead for SyncIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(self.get_mut().0.get_mut()).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for SyncIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(self.get_mut().0.get_mut()).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(self.get_mut().0.get_mut()).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        // Nothing ever holds the lock, so this never finds it taken.
        self.0.try_lock().is_some_and(|io| io.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(self.get_mut().0.get_mut()).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(self.get_mut().0.get_mut()).poll_shutdown(cx)
    }
}
