//! The byte streams a connection can run over: a TCP socket, or anything
//! else that reads and writes (the test client's in-memory pipe, TLS).

use std::pin::Pin;
use std::task::{Context, Poll};

use std::time::Duration;

use std::io::IoSlice;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use socket2::SockRef;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// A stream that reads and writes.
pub trait Io: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static> Io for T {}

/// The half of a connection's stream that its reader owns: a TCP half
/// inline (no allocation of its own, one pointer less to follow on every
/// read), anything else as tokio's split half of the boxed stream.
pub(crate) enum ReadHalf {
    Tcp(OwnedReadHalf),
    Other(tokio::io::ReadHalf<Box<dyn Io>>),
}

/// `AsyncRead` for an enum of a `Tcp` and an `Other` stream: each read goes
/// to the variant that is there.
macro_rules! read_through_variant {
    ($stream:ty) => {
        impl AsyncRead for $stream {
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
    };
}

read_through_variant!(ReadHalf);

/// The half of a connection's stream that its writer owns.
pub(crate) enum WriteHalf {
    /// A TCP socket, with its descriptor at hand: reading it through the
    /// half would touch the socket's own allocation on every write.
    Tcp {
        half: OwnedWriteHalf,
        fd: RawFd,
    },
    Other(tokio::io::WriteHalf<Box<dyn Io>>),
}

impl WriteHalf {
    fn tcp(half: OwnedWriteHalf) -> Self {
        let fd = half.as_ref().as_raw_fd();
        Self::Tcp { half, fd }
    }

    /// The descriptor of a TCP half, borrowed for as long as the half.
    fn borrow_fd(half: &OwnedWriteHalf, fd: RawFd) -> BorrowedFd<'_> {
        let _ = half;
        #[allow(unsafe_code)]
        // SAFETY: `fd` is `half`'s descriptor, and `half` (which keeps the
        // socket open) stays borrowed for the returned lifetime.
        unsafe {
            BorrowedFd::borrow_raw(fd)
        }
    }
    /// One non-blocking write of `buf`; `Ok(0)` when the socket takes
    /// nothing now. On TCP this is one `send` straight on the socket,
    /// without the runtime's readiness and budget bookkeeping (which a
    /// fan-out to thousands of idle sockets pays per recipient): a full
    /// socket is then found by the writer task's own write, which waits
    /// for room as usual.
    pub(crate) fn write_now(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::Tcp { half, fd } => {
                would_block_is_zero(SockRef::from(&Self::borrow_fd(half, *fd)).send(buf))
            }
            Self::Other(w) => poll_once(|cx| Pin::new(w).poll_write(cx, buf)),
        }
    }

    /// [`WriteHalf::write_now`] of several slices (one `sendmsg` on TCP).
    pub(crate) fn write_vectored_now(&mut self, bufs: &[IoSlice<'_>]) -> std::io::Result<usize> {
        match self {
            Self::Tcp { half, fd } => {
                let fd = Self::borrow_fd(half, *fd);
                would_block_is_zero(SockRef::from(&fd).send_vectored(bufs))
            }
            Self::Other(w) => poll_once(|cx| Pin::new(w).poll_write_vectored(cx, bufs)),
        }
    }
}

fn would_block_is_zero(result: std::io::Result<usize>) -> std::io::Result<usize> {
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(0),
        other => other,
    }
}

/// Polls a write once with a waker that does nothing; `Ok(0)` if pending.
fn poll_once(
    poll: impl FnOnce(&mut Context<'_>) -> Poll<std::io::Result<usize>>,
) -> std::io::Result<usize> {
    match poll(&mut Context::from_waker(std::task::Waker::noop())) {
        Poll::Ready(result) => result,
        Poll::Pending => Ok(0),
    }
}

impl AsyncWrite for WriteHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp { half, .. } => Pin::new(half).poll_write(cx, buf),
            Self::Other(w) => Pin::new(w).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp { half, .. } => Pin::new(half).poll_write_vectored(cx, bufs),
            Self::Other(w) => Pin::new(w).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Tcp { half, .. } => half.is_write_vectored(),
            Self::Other(w) => w.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Tcp { half, .. } => Pin::new(half).poll_flush(cx),
            Self::Other(w) => Pin::new(w).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Tcp { half, .. } => Pin::new(half).poll_shutdown(cx),
            Self::Other(w) => Pin::new(w).poll_shutdown(cx),
        }
    }
}

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
    pub(crate) fn split(self) -> (ReadHalf, WriteHalf) {
        match self {
            Self::Tcp(stream) => {
                let (r, w) = stream.into_split();
                (ReadHalf::Tcp(r), WriteHalf::tcp(w))
            }
            Self::Other(io) => {
                let (r, w) = tokio::io::split(io);
                (ReadHalf::Other(r), WriteHalf::Other(w))
            }
        }
    }
}

read_through_variant!(Transport);

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
