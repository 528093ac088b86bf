//! The byte streams a connection can run over: a TCP socket, or anything
//! else that reads and writes (the test client's in-memory pipe, TLS).

use std::pin::Pin;
use std::task::{Context, Poll};

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A stream that reads and writes.
pub trait Io: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static> Io for T {}

pub(crate) type BoxRead = Box<dyn AsyncRead + Send + Sync + Unpin>;
pub(crate) type BoxWrite = Box<dyn AsyncWrite + Send + Sync + Unpin>;

/// A connection's stream before the upgrade.
pub(crate) enum Transport {
    Tcp(TcpStream),
    Other(Box<dyn Io>),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tcp(s) => f.debug_tuple("Tcp").field(s).finish(),
            Self::Other(_) => f.write_str("Other"),
        }
    }
}

impl Transport {
    /// Splits into halves the reader and the writer task own separately.
    /// TCP splits without a lock; other streams go through tokio's split.
    pub(crate) fn split(self) -> (BoxRead, BoxWrite) {
        match self {
            Self::Tcp(stream) => {
                let (r, w) = stream.into_split();
                (Box::new(r), Box::new(w))
            }
            Self::Other(io) => {
                let (r, w) = tokio::io::split(io);
                (Box::new(r), Box::new(w))
            }
        }
    }
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Self::Other(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Self::Other(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_flush(cx),
            Self::Other(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Self::Other(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// Most bytes read and thrown away after an error response or our close,
/// so that it is not lost to a TCP reset over unread bytes.
const LINGER_BYTES: usize = 64 * 1024;

/// Reads and throws away what the peer still sends, up to [`LINGER_BYTES`]
/// and for at most `within`.
pub(crate) async fn discard<R: AsyncRead + Unpin + ?Sized>(io: &mut R, within: Duration) {
    let _ = tokio::time::timeout(within, async {
        // On the heap: this runs once per connection, at its end, and an
        // array here would be part of every connection's future while idle.
        let mut sink = vec![0u8; 1024];
        let mut total = 0;
        while total < LINGER_BYTES {
            match io.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    })
    .await;
}
