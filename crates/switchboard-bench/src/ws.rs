//! A minimal, lean WebSocket client (RFC 6455) over a raw `TcpStream`.
//!
//! Only what a load generator needs: the opening handshake (with the `Sec-WebSocket-Accept`
//! check), masked client frames, a reader that parses many server frames out of one `read`, and
//! reassembly of fragmented messages. One extension, on request: permessage-deflate (RFC 7692)
//! for what the server sends (the client offers it and inflates compressed messages; it sends
//! its own messages uncompressed, which the RFC allows). No TLS.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use base64::Engine as _;
use flate2::{Decompress, FlushDecompress, Status};
use sha1::{Digest, Sha1};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::target::{Target, check_loopback_addr};

/// Text frame opcode.
pub const OP_CONT: u8 = 0x0;
/// Text frame opcode.
pub const OP_TEXT: u8 = 0x1;
/// Binary frame opcode.
pub const OP_BINARY: u8 = 0x2;
/// Close frame opcode.
pub const OP_CLOSE: u8 = 0x8;
/// Ping frame opcode.
pub const OP_PING: u8 = 0x9;
/// Pong frame opcode.
pub const OP_PONG: u8 = 0xA;

const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// Options for opening a connection.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// Extra request header lines, e.g. `Authorization: Bearer ...` (without CRLF).
    pub extra_headers: Vec<String>,
    /// Bind the client socket to this (loopback) source address before connecting.
    pub source_ip: Option<IpAddr>,
    /// Initial read-buffer capacity (grows as needed).
    pub read_buffer: usize,
    /// Time limit for TCP connect plus handshake.
    pub timeout: Option<Duration>,
    /// Offer permessage-deflate ([`DEFLATE_OFFER`]) and inflate compressed messages.
    pub deflate: bool,
}

/// The permessage-deflate offer `--deflate` sends (what browsers send).
pub const DEFLATE_OFFER: &str = "permessage-deflate; client_max_window_bits";

/// permessage-deflate parameters the server agreed to (its `Sec-WebSocket-Extensions` answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server resets its compressor after every message.
    pub server_no_context_takeover: bool,
    /// We must reset ours (we never compress, so this changes nothing for us).
    pub client_no_context_takeover: bool,
    /// The server's window, if it announced one.
    pub server_max_window_bits: Option<u8>,
    /// The window we may use, if the server limited it.
    pub client_max_window_bits: Option<u8>,
}

impl DeflateParams {
    /// Parses a `Sec-WebSocket-Extensions` response value. `Ok(None)`: no extension agreed.
    pub fn parse_response(value: &str) -> Result<Option<DeflateParams>, String> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(None);
        }
        if value.contains(',') {
            return Err(format!("more than one extension agreed: {value:?}"));
        }
        let mut parts = value.split(';').map(str::trim);
        if parts.next() != Some("permessage-deflate") {
            return Err(format!("an extension we did not offer: {value:?}"));
        }
        let mut p = DeflateParams {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: None,
            client_max_window_bits: None,
        };
        let bits = |v: Option<&str>| -> Result<u8, String> {
            let v = v.map(|v| v.trim().trim_matches('"')).unwrap_or("");
            v.parse::<u8>()
                .ok()
                .filter(|b| (8..=15).contains(b))
                .ok_or_else(|| format!("bad window bits {v:?}"))
        };
        for param in parts {
            let (name, arg) = match param.split_once('=') {
                Some((n, a)) => (n.trim(), Some(a)),
                None => (param, None),
            };
            match name.to_ascii_lowercase().as_str() {
                "server_no_context_takeover" if arg.is_none() => {
                    p.server_no_context_takeover = true;
                }
                "client_no_context_takeover" if arg.is_none() => {
                    p.client_no_context_takeover = true;
                }
                "server_max_window_bits" => p.server_max_window_bits = Some(bits(arg)?),
                "client_max_window_bits" => p.client_max_window_bits = Some(bits(arg)?),
                _ => return Err(format!("unexpected permessage-deflate parameter {param:?}")),
            }
        }
        Ok(Some(p))
    }
}

/// The sync-flush tail a sender strips from every compressed message (RFC 7692 §7.2.1).
const DEFLATE_TAIL: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];

/// Raw-deflate decompressor for one connection's incoming messages.
pub struct Inflater {
    inner: Decompress,
    reset_each_message: bool,
}

impl fmt::Debug for Inflater {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inflater")
            .field("reset_each_message", &self.reset_each_message)
            .finish_non_exhaustive()
    }
}

impl Inflater {
    /// A decompressor for the agreed parameters (any window up to 15 bits is accepted).
    pub fn new(params: &DeflateParams) -> Self {
        Inflater {
            inner: Decompress::new(false),
            reset_each_message: params.server_no_context_takeover,
        }
    }

    /// Inflates one whole message (`input` without the stripped tail) into `out` (cleared
    /// first); fails past `limit` bytes or on corrupt data.
    pub fn inflate_message(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), ProtocolError> {
        out.clear();
        let ended = self.feed(input, out, limit)? || self.feed(&DEFLATE_TAIL, out, limit)?;
        if ended || self.reset_each_message {
            self.inner.reset(false);
        }
        Ok(())
    }

    /// Returns true at the end of a deflate stream (a block with BFINAL set).
    fn feed(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<bool, ProtocolError> {
        let mut consumed = 0usize;
        loop {
            if out.capacity() - out.len() < 1024 {
                out.reserve(out.len().max(4096));
            }
            let (in0, out0) = (self.inner.total_in(), out.len());
            let status = self
                .inner
                .decompress_vec(&input[consumed..], out, FlushDecompress::Sync)
                .map_err(|e| ProtocolError(format!("corrupt compressed message: {e}")))?;
            consumed += (self.inner.total_in() - in0) as usize;
            if out.len() > limit {
                return Err(ProtocolError(format!(
                    "inflated message over {limit} bytes"
                )));
            }
            let progressed = out.len() > out0 || self.inner.total_in() > in0;
            match status {
                Status::StreamEnd => return Ok(true),
                _ if consumed >= input.len() && out.len() < out.capacity() => return Ok(false),
                _ if !progressed => {
                    return Err(ProtocolError("compressed message does not inflate".into()));
                }
                _ => {}
            }
        }
    }
}

/// Why a connection attempt failed.
#[derive(Debug)]
pub enum ConnectError {
    /// TCP or I/O failure.
    Io(io::Error),
    /// The server answered with another status than 101.
    Status(u16),
    /// The server answered 101 but the response was not a valid WebSocket upgrade.
    BadHandshake(String),
    /// Connect plus handshake took longer than the time limit.
    Timeout,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Io(e) => write!(f, "I/O error: {e}"),
            ConnectError::Status(s) => write!(f, "server answered HTTP {s} instead of 101"),
            ConnectError::BadHandshake(s) => write!(f, "bad handshake: {s}"),
            ConnectError::Timeout => f.write_str("connect/handshake timed out"),
        }
    }
}

impl std::error::Error for ConnectError {}

impl From<io::Error> for ConnectError {
    fn from(e: io::Error) -> Self {
        ConnectError::Io(e)
    }
}

/// A cheap non-cryptographic PRNG (xorshift64*) for mask keys and handshake keys. The client
/// side of RFC 6455 asks for unpredictable masks; for a loopback benchmark a per-connection
/// pseudo-random key is enough (uWebSockets' load_test uses a constant one).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeds from the clock and a salt.
    pub fn new(salt: u64) -> Self {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9E37_79B9_7F4A_7C15);
        let mut r = Rng(t ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03);
        if r.0 == 0 {
            r.0 = 1;
        }
        r.next_u64();
        r
    }

    /// Next value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Opens a TCP connection to a loopback address, optionally from a given source address.
pub async fn connect_tcp(addr: SocketAddr, source_ip: Option<IpAddr>) -> io::Result<TcpStream> {
    check_loopback_addr(addr).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let stream = match source_ip {
        None => TcpStream::connect(addr).await?,
        Some(ip) => {
            check_loopback_addr(SocketAddr::new(ip, 0))
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let sock = if addr.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            sock.bind(SocketAddr::new(ip, 0))?;
            sock.connect(addr).await?
        }
    };
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// The expected `Sec-WebSocket-Accept` for a key.
pub fn accept_key(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.as_bytes());
    h.update(WS_GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// Builds the upgrade request.
pub fn upgrade_request(target: &Target, key: &str, extra_headers: &[String]) -> Vec<u8> {
    upgrade_request_with(target, key, extra_headers, false)
}

/// Builds the upgrade request, with the permessage-deflate offer if `deflate`.
pub fn upgrade_request_with(
    target: &Target,
    key: &str,
    extra_headers: &[String],
    deflate: bool,
) -> Vec<u8> {
    let mut req = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n",
        target.path, target.host_header, key
    );
    if deflate {
        req.push_str("Sec-WebSocket-Extensions: ");
        req.push_str(DEFLATE_OFFER);
        req.push_str("\r\n");
    }
    for h in extra_headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    req.into_bytes()
}

/// An open WebSocket client connection.
#[derive(Debug)]
pub struct WsConn {
    /// The socket.
    pub stream: TcpStream,
    /// Buffered reader state (may already hold bytes that followed the handshake).
    pub reader: FrameReader,
    /// This connection's mask key.
    pub mask: [u8; 4],
    /// permessage-deflate, if offered and agreed.
    pub deflate: Option<DeflateParams>,
}

impl WsConn {
    /// Connects and performs the opening handshake.
    pub async fn connect(target: &Target, opts: &ConnectOptions) -> Result<WsConn, ConnectError> {
        let fut = Self::connect_inner(target, opts);
        match opts.timeout {
            Some(t) => tokio::time::timeout(t, fut)
                .await
                .map_err(|_| ConnectError::Timeout)?,
            None => fut.await,
        }
    }

    async fn connect_inner(target: &Target, opts: &ConnectOptions) -> Result<WsConn, ConnectError> {
        let mut stream = connect_tcp(target.addr, opts.source_ip).await?;
        let mut rng = Rng::new(u64::from(stream.local_addr()?.port()));
        let mut key_bytes = [0u8; 16];
        key_bytes[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
        key_bytes[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
        let key = base64::engine::general_purpose::STANDARD.encode(key_bytes);
        stream
            .write_all(&upgrade_request_with(
                target,
                &key,
                &opts.extra_headers,
                opts.deflate,
            ))
            .await?;
        let mut reader = FrameReader::new(opts.read_buffer.max(512));
        let head_len = loop {
            if let Some(pos) = find_head_end(reader.buffered()) {
                break pos;
            }
            if reader.buffered().len() > MAX_RESPONSE_HEAD {
                return Err(ConnectError::BadHandshake("response head too large".into()));
            }
            if reader.fill(&mut stream).await? == 0 {
                return Err(ConnectError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed during handshake",
                )));
            }
        };
        let deflate = check_response(&reader.buffered()[..head_len], &key, opts.deflate)?;
        reader.consume(head_len);
        if let Some(p) = &deflate {
            reader.enable_inflate(p);
        }
        let m = rng.next_u64().to_le_bytes();
        Ok(WsConn {
            stream,
            reader,
            mask: [m[0], m[1], m[2], m[3]],
            deflate,
        })
    }

    /// Reads more bytes from the socket into the reader. Returns 0 at EOF.
    pub async fn fill(&mut self) -> io::Result<usize> {
        self.reader.fill(&mut self.stream).await
    }

    /// Writes all bytes.
    pub async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.stream.write_all(data).await
    }

    /// Sends any pongs the reader queued in answer to pings.
    pub async fn flush_pongs(&mut self) -> io::Result<()> {
        if !self.reader.pending_out.is_empty() {
            let out = std::mem::take(&mut self.reader.pending_out);
            self.stream.write_all(&out).await?;
        }
        Ok(())
    }

    /// Sends one masked data frame.
    pub async fn send(&mut self, opcode: u8, payload: &[u8]) -> io::Result<()> {
        let mut out = Vec::with_capacity(payload.len() + 14);
        encode_frame(&mut out, opcode, payload, self.mask);
        self.stream.write_all(&out).await
    }

    /// Sends a close frame (status 1000) and shuts the write side down; waits up to `wait` for
    /// the server to close.
    pub async fn close(mut self, wait: Duration) {
        let mut out = Vec::with_capacity(8);
        encode_frame(&mut out, OP_CLOSE, &1000u16.to_be_bytes(), self.mask);
        if self.stream.write_all(&out).await.is_err() {
            return;
        }
        let _ = tokio::time::timeout(wait, async {
            loop {
                match self.reader.fill(&mut self.stream).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let n = self.reader.buffered().len();
                        self.reader.consume(n);
                    }
                }
            }
        })
        .await;
    }

    /// Drops the connection with a TCP RST (no TIME_WAIT on either side).
    pub fn abort(self) {
        let _ = self.stream.set_zero_linger();
        drop(self.stream);
    }
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// Checks a response head; returns the agreed permessage-deflate parameters, if any.
fn check_response(
    head: &[u8],
    key: &str,
    offered_deflate: bool,
) -> Result<Option<DeflateParams>, ConnectError> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return Err(ConnectError::BadHandshake("partial response head".into()));
        }
        Err(e) => {
            return Err(ConnectError::BadHandshake(format!(
                "unparsable response: {e}"
            )));
        }
    }
    let code = resp.code.unwrap_or(0);
    if code != 101 {
        return Err(ConnectError::Status(code));
    }
    let expected = accept_key(key);
    let accept = resp
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-accept"))
        .map(|h| h.value);
    match accept {
        Some(v) if v == expected.as_bytes() => {}
        Some(_) => {
            return Err(ConnectError::BadHandshake(
                "wrong Sec-WebSocket-Accept".into(),
            ));
        }
        None => {
            return Err(ConnectError::BadHandshake(
                "missing Sec-WebSocket-Accept".into(),
            ));
        }
    }
    let mut extensions = resp
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("sec-websocket-extensions"));
    let Some(ext) = extensions.next() else {
        return Ok(None);
    };
    if extensions.next().is_some() {
        return Err(ConnectError::BadHandshake(
            "several Sec-WebSocket-Extensions headers".into(),
        ));
    }
    let value = std::str::from_utf8(ext.value)
        .map_err(|_| ConnectError::BadHandshake("Sec-WebSocket-Extensions is not UTF-8".into()))?;
    let params = DeflateParams::parse_response(value).map_err(ConnectError::BadHandshake)?;
    if params.is_some() && !offered_deflate {
        return Err(ConnectError::BadHandshake(format!(
            "the server agreed to an extension we did not offer: {value:?}"
        )));
    }
    Ok(params)
}

/// XORs `data` with the mask, as if `data` started at payload offset `offset`.
pub fn apply_mask(data: &mut [u8], mask: [u8; 4], offset: usize) {
    let rot = (offset % 4) as u32;
    let m = u32::from_ne_bytes(mask).rotate_right(rot * 8);
    let m = if cfg!(target_endian = "little") {
        m
    } else {
        u32::from_ne_bytes(mask).rotate_left(rot * 8)
    };
    let m8 = u64::from(m) | (u64::from(m) << 32);
    let mut chunks = data.chunks_exact_mut(8);
    for c in &mut chunks {
        let v = u64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) ^ m8;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    let rem = chunks.into_remainder();
    let mb = m.to_ne_bytes();
    for (i, b) in rem.iter_mut().enumerate() {
        *b ^= mb[i % 4];
    }
}

/// Length of a client (masked) frame header for a payload length.
pub fn client_header_len(payload_len: usize) -> usize {
    let base = if payload_len < 126 {
        2
    } else if payload_len <= 0xFFFF {
        4
    } else {
        10
    };
    base + 4
}

/// Appends one complete, final, masked frame to `out`.
pub fn encode_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8], mask: [u8; 4]) {
    out.push(0x80 | (opcode & 0x0F));
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xFFFF {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], mask, 0);
}

/// Where a message's payload lives, see [`FrameReader::payload`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loc {
    Buf { start: usize, len: usize },
    Frag,
    Inflated,
}

/// One complete message (or control frame) parsed by [`FrameReader::next_message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Msg {
    /// `OP_TEXT`, `OP_BINARY`, `OP_PING`, `OP_PONG` or `OP_CLOSE`.
    pub opcode: u8,
    /// It arrived compressed (RSV1); [`FrameReader::payload`] gives the inflated bytes.
    pub compressed: bool,
    loc: Loc,
}

/// Protocol error from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebSocket protocol error: {}", self.0)
    }
}

impl std::error::Error for ProtocolError {}

impl From<ProtocolError> for io::Error {
    fn from(e: ProtocolError) -> Self {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

/// Buffered frame parser. `fill` reads from a socket; `next_message` parses without I/O, so a
/// caller can drain every complete frame of one `read` before writing.
#[derive(Debug)]
pub struct FrameReader {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Bytes consumed by the last returned message, released on the next call.
    pending_consume: usize,
    frag: Vec<u8>,
    frag_opcode: Option<u8>,
    /// Masked pong frames to send in answer to pings (the caller writes them).
    pub pending_out: Vec<u8>,
    mask: [u8; 4],
    max_message: usize,
    /// Every byte `fill` has read from the socket (handshake response included).
    pub bytes_read: u64,
    /// Set once permessage-deflate is agreed.
    inflater: Option<Inflater>,
    /// The fragmented message being reassembled is compressed.
    frag_compressed: bool,
    inflated: Vec<u8>,
}

impl FrameReader {
    /// A reader with the given initial buffer capacity.
    pub fn new(capacity: usize) -> Self {
        FrameReader {
            buf: vec![0; capacity.max(64)],
            start: 0,
            end: 0,
            pending_consume: 0,
            frag: Vec::new(),
            frag_opcode: None,
            pending_out: Vec::new(),
            mask: [0x12, 0x34, 0x56, 0x78],
            max_message: 64 << 20,
            bytes_read: 0,
            inflater: None,
            frag_compressed: false,
            inflated: Vec::new(),
        }
    }

    /// Accepts compressed messages (RSV1) from now on and inflates them.
    pub fn enable_inflate(&mut self, params: &DeflateParams) {
        self.inflater = Some(Inflater::new(params));
    }

    /// Whether permessage-deflate is on.
    pub fn inflates(&self) -> bool {
        self.inflater.is_some()
    }

    /// Bytes read but not yet consumed.
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Marks `n` buffered bytes as consumed.
    pub fn consume(&mut self, n: usize) {
        self.start += n;
        debug_assert!(self.start <= self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Reads more bytes. Returns 0 at EOF.
    pub async fn fill<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> io::Result<usize> {
        self.release();
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                let new_len = self.buf.len() * 2;
                self.buf.resize(new_len, 0);
            }
        }
        let n = r.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        self.bytes_read += n as u64;
        Ok(n)
    }

    fn release(&mut self) {
        if self.pending_consume > 0 {
            let n = self.pending_consume;
            self.pending_consume = 0;
            self.consume(n);
        }
    }

    /// The payload of the last message returned by `next_message`.
    pub fn payload(&self, msg: &Msg) -> &[u8] {
        match msg.loc {
            Loc::Buf { start, len } => &self.buf[start..start + len],
            Loc::Frag => &self.frag,
            Loc::Inflated => &self.inflated,
        }
    }

    /// Inflates the payload at `loc` into `self.inflated`.
    fn inflate(&mut self, loc: Loc) -> Result<(), ProtocolError> {
        let Some(inf) = self.inflater.as_mut() else {
            return Err(ProtocolError("RSV1 set without permessage-deflate".into()));
        };
        let input = match loc {
            Loc::Buf { start, len } => &self.buf[start..start + len],
            Loc::Frag => &self.frag,
            Loc::Inflated => unreachable!("inflated twice"),
        };
        inf.inflate_message(input, &mut self.inflated, self.max_message)
    }

    /// Parses the next complete message from the buffer, if any. The previous message's payload
    /// becomes invalid. Pings are answered through `pending_out` and also returned.
    pub fn next_message(&mut self) -> Result<Option<Msg>, ProtocolError> {
        self.release();
        loop {
            let avail = &self.buf[self.start..self.end];
            if avail.len() < 2 {
                return Ok(None);
            }
            let b0 = avail[0];
            let b1 = avail[1];
            let fin = b0 & 0x80 != 0;
            let opcode = b0 & 0x0F;
            let rsv1 = b0 & 0x40 != 0;
            if b0 & 0x30 != 0 {
                return Err(ProtocolError("RSV2/RSV3 set".into()));
            }
            if rsv1 && !(self.inflater.is_some() && (opcode == OP_TEXT || opcode == OP_BINARY)) {
                return Err(ProtocolError(if self.inflater.is_some() {
                    "RSV1 on a continuation or control frame".into()
                } else {
                    "reserved bits set (no extension negotiated)".into()
                }));
            }
            let masked = b1 & 0x80 != 0;
            let (len, mut hlen) = match b1 & 0x7F {
                126 => {
                    if avail.len() < 4 {
                        return Ok(None);
                    }
                    (usize::from(u16::from_be_bytes([avail[2], avail[3]])), 4)
                }
                127 => {
                    if avail.len() < 10 {
                        return Ok(None);
                    }
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&avail[2..10]);
                    let l = u64::from_be_bytes(b);
                    if l > self.max_message as u64 {
                        return Err(ProtocolError(format!("frame of {l} bytes")));
                    }
                    (l as usize, 10)
                }
                l => (usize::from(l), 2),
            };
            let mask_key = if masked {
                if avail.len() < hlen + 4 {
                    return Ok(None);
                }
                let m = [
                    avail[hlen],
                    avail[hlen + 1],
                    avail[hlen + 2],
                    avail[hlen + 3],
                ];
                hlen += 4;
                Some(m)
            } else {
                None
            };
            if avail.len() < hlen + len {
                return Ok(None);
            }
            let pstart = self.start + hlen;
            if let Some(m) = mask_key {
                apply_mask(&mut self.buf[pstart..pstart + len], m, 0);
            }
            let frame_total = hlen + len;
            match opcode {
                OP_TEXT | OP_BINARY => {
                    if self.frag_opcode.is_some() {
                        return Err(ProtocolError(
                            "new data frame inside a fragmented message".into(),
                        ));
                    }
                    if fin {
                        self.pending_consume = frame_total;
                        let mut loc = Loc::Buf { start: pstart, len };
                        if rsv1 {
                            self.inflate(loc)?;
                            loc = Loc::Inflated;
                        }
                        return Ok(Some(Msg {
                            opcode,
                            compressed: rsv1,
                            loc,
                        }));
                    }
                    self.frag.clear();
                    self.frag.extend_from_slice(&self.buf[pstart..pstart + len]);
                    self.frag_opcode = Some(opcode);
                    self.frag_compressed = rsv1;
                    self.consume(frame_total);
                }
                OP_CONT => {
                    let Some(op) = self.frag_opcode else {
                        return Err(ProtocolError("continuation without a start frame".into()));
                    };
                    if self.frag.len() + len > self.max_message {
                        return Err(ProtocolError("message too large".into()));
                    }
                    self.frag.extend_from_slice(&self.buf[pstart..pstart + len]);
                    self.consume(frame_total);
                    if fin {
                        self.frag_opcode = None;
                        let compressed = std::mem::take(&mut self.frag_compressed);
                        let mut loc = Loc::Frag;
                        if compressed {
                            self.inflate(loc)?;
                            loc = Loc::Inflated;
                        }
                        return Ok(Some(Msg {
                            opcode: op,
                            compressed,
                            loc,
                        }));
                    }
                }
                OP_PING | OP_PONG | OP_CLOSE => {
                    if !fin || len > 125 {
                        return Err(ProtocolError("bad control frame".into()));
                    }
                    if opcode == OP_PING {
                        let payload = self.buf[pstart..pstart + len].to_vec();
                        encode_frame(&mut self.pending_out, OP_PONG, &payload, self.mask);
                    }
                    self.pending_consume = frame_total;
                    return Ok(Some(Msg {
                        opcode,
                        compressed: false,
                        loc: Loc::Buf { start: pstart, len },
                    }));
                }
                other => return Err(ProtocolError(format!("unknown opcode {other:#x}"))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![(if fin { 0x80 } else { 0 }) | opcode];
        let len = payload.len();
        if len < 126 {
            v.push(len as u8);
        } else if len <= 0xFFFF {
            v.push(126);
            v.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            v.push(127);
            v.extend_from_slice(&(len as u64).to_be_bytes());
        }
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn accept_key_rfc_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn mask_roundtrip_and_offset() {
        let mask = [1, 2, 3, 4];
        let orig: Vec<u8> = (0..37u8).collect();
        let mut a = orig.clone();
        apply_mask(&mut a, mask, 0);
        for (i, (x, y)) in a.iter().zip(&orig).enumerate() {
            assert_eq!(*x, y ^ mask[i % 4]);
        }
        // Masking a sub-slice at an offset equals masking the whole.
        let mut b = orig.clone();
        apply_mask(&mut b[..5], mask, 0);
        apply_mask(&mut b[5..], mask, 5);
        assert_eq!(a, b);
        apply_mask(&mut a, mask, 0);
        assert_eq!(a, orig);
    }

    #[test]
    fn encode_lengths() {
        for len in [0usize, 1, 125, 126, 65535, 65536] {
            let payload = vec![7u8; len];
            let mut out = Vec::new();
            encode_frame(&mut out, OP_BINARY, &payload, [9, 8, 7, 6]);
            assert_eq!(out.len(), client_header_len(len) + len);
            // Parse it back (the reader unmasks masked frames too).
            let mut r = FrameReader::new(16);
            r.buf = out.clone();
            r.end = out.len();
            let m = r.next_message().unwrap().unwrap();
            assert_eq!(m.opcode, OP_BINARY);
            assert_eq!(r.payload(&m), &payload[..]);
        }
    }

    #[test]
    fn parses_many_frames_and_fragments() {
        let mut bytes = Vec::new();
        bytes.extend(server_frame(OP_TEXT, true, b"hello"));
        bytes.extend(server_frame(OP_BINARY, false, b"ab"));
        bytes.extend(server_frame(OP_PING, true, b"p"));
        bytes.extend(server_frame(OP_CONT, false, b"cd"));
        bytes.extend(server_frame(OP_CONT, true, b"ef"));
        bytes.extend(server_frame(OP_BINARY, true, &[1u8; 300]));
        let mut r = FrameReader::new(16);
        r.buf = bytes.clone();
        r.end = bytes.len();
        let m = r.next_message().unwrap().unwrap();
        assert_eq!((m.opcode, r.payload(&m)), (OP_TEXT, &b"hello"[..]));
        let m = r.next_message().unwrap().unwrap();
        assert_eq!(m.opcode, OP_PING);
        assert!(!r.pending_out.is_empty());
        let m = r.next_message().unwrap().unwrap();
        assert_eq!((m.opcode, r.payload(&m)), (OP_BINARY, &b"abcdef"[..]));
        let m = r.next_message().unwrap().unwrap();
        assert_eq!(r.payload(&m).len(), 300);
        assert!(r.next_message().unwrap().is_none());
        assert!(r.buffered().is_empty());
    }

    #[test]
    fn partial_frames_wait_for_more() {
        let f = server_frame(OP_TEXT, true, &[b'x'; 200]);
        let mut r = FrameReader::new(16);
        r.buf = f[..3].to_vec();
        r.end = 3;
        assert!(r.next_message().unwrap().is_none());
        r.buf = f.clone();
        r.end = f.len();
        assert!(r.next_message().unwrap().is_some());
    }

    /// Raw deflate with a sync flush, tail stripped: what a permessage-deflate server sends.
    fn deflate_raw(c: &mut flate2::Compress, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + 64);
        c.compress_vec(data, &mut out, flate2::FlushCompress::Sync)
            .unwrap();
        while out.len() == out.capacity() {
            out.reserve(1024);
            c.compress_vec(&[], &mut out, flate2::FlushCompress::Sync)
                .unwrap();
        }
        assert!(out.ends_with(&DEFLATE_TAIL));
        out.truncate(out.len() - 4);
        out
    }

    fn no_takeover() -> DeflateParams {
        DeflateParams::parse_response(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        )
        .unwrap()
        .unwrap()
    }

    fn reader_with(bytes: Vec<u8>, params: Option<DeflateParams>) -> FrameReader {
        let mut r = FrameReader::new(16);
        if let Some(p) = params {
            r.enable_inflate(&p);
        }
        r.end = bytes.len();
        r.buf = bytes;
        r
    }

    #[test]
    fn parses_extension_responses() {
        let p = no_takeover();
        assert!(p.server_no_context_takeover && p.client_no_context_takeover);
        assert_eq!(DeflateParams::parse_response("").unwrap(), None);
        let p = DeflateParams::parse_response("permessage-deflate; server_max_window_bits=10")
            .unwrap()
            .unwrap();
        assert_eq!(p.server_max_window_bits, Some(10));
        assert!(!p.server_no_context_takeover);
        assert!(DeflateParams::parse_response("x-webkit-deflate-frame").is_err());
        assert!(DeflateParams::parse_response("permessage-deflate; foo").is_err());
        assert!(
            DeflateParams::parse_response("permessage-deflate; server_max_window_bits=16").is_err()
        );
        assert!(DeflateParams::parse_response("permessage-deflate, permessage-deflate").is_err());
    }

    #[test]
    fn handshake_checks_the_extension_against_the_offer() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let head = |ext: &str| {
            format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n{ext}\r\n"
            )
        };
        let with =
            head("Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n");
        assert!(
            check_response(with.as_bytes(), key, true)
                .unwrap()
                .is_some()
        );
        // Agreed without an offer: refused.
        assert!(matches!(
            check_response(with.as_bytes(), key, false),
            Err(ConnectError::BadHandshake(_))
        ));
        // Offered, not agreed: plain connection.
        assert_eq!(
            check_response(head("").as_bytes(), key, true).unwrap(),
            None
        );
        let req = upgrade_request_with(
            &crate::target::parse_target_with_scheme(
                "ws://127.0.0.1:1/x",
                crate::target::Scheme::Ws,
            )
            .unwrap(),
            key,
            &[],
            true,
        );
        let req = String::from_utf8(req).unwrap();
        assert!(req.contains(
            "\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        ));
    }

    #[test]
    fn inflates_compressed_messages() {
        let text = br#"{"user":"alice","text":"hello hello hello hello hello"}"#.repeat(40);
        let mut c = flate2::Compress::new(flate2::Compression::fast(), false);
        let z1 = deflate_raw(&mut c, &text);
        c.reset();
        let bin: Vec<u8> = (0..5000u32).map(|i| (i % 7) as u8).collect();
        let z2 = deflate_raw(&mut c, &bin);
        c.reset();
        assert!(z1.len() < text.len() / 4);
        let mut bytes = Vec::new();
        let mut f = server_frame(OP_TEXT, true, &z1);
        f[0] |= 0x40;
        bytes.extend(f);
        bytes.extend(server_frame(OP_TEXT, true, b"plain"));
        // A compressed message in three fragments: RSV1 on the first only.
        let (a, rest) = z2.split_at(z2.len() / 3);
        let (b, d) = rest.split_at(rest.len() / 2);
        let mut f = server_frame(OP_BINARY, false, a);
        f[0] |= 0x40;
        bytes.extend(f);
        bytes.extend(server_frame(OP_PING, true, b"p"));
        bytes.extend(server_frame(OP_CONT, false, b));
        bytes.extend(server_frame(OP_CONT, true, d));
        let mut r = reader_with(bytes, Some(no_takeover()));
        let m = r.next_message().unwrap().unwrap();
        assert!(m.compressed);
        assert_eq!((m.opcode, r.payload(&m)), (OP_TEXT, &text[..]));
        let m = r.next_message().unwrap().unwrap();
        assert!(!m.compressed);
        assert_eq!(r.payload(&m), b"plain");
        assert_eq!(r.next_message().unwrap().unwrap().opcode, OP_PING);
        let m = r.next_message().unwrap().unwrap();
        assert!(m.compressed);
        assert_eq!((m.opcode, r.payload(&m)), (OP_BINARY, &bin[..]));
        assert!(r.next_message().unwrap().is_none());
    }

    #[test]
    fn inflates_with_context_takeover() {
        // The server keeps its window: the second message refers back to the first.
        let msg = b"the same sentence, twice over, the same sentence".repeat(8);
        let mut c = flate2::Compress::new(flate2::Compression::default(), false);
        let z1 = deflate_raw(&mut c, &msg);
        let z2 = deflate_raw(&mut c, &msg);
        assert!(z2.len() < z1.len());
        let mut bytes = Vec::new();
        for z in [&z1, &z2] {
            let mut f = server_frame(OP_TEXT, true, z);
            f[0] |= 0x40;
            bytes.extend(f);
        }
        let takeover = DeflateParams::parse_response("permessage-deflate")
            .unwrap()
            .unwrap();
        let mut r = reader_with(bytes, Some(takeover));
        for _ in 0..2 {
            let m = r.next_message().unwrap().unwrap();
            assert_eq!(r.payload(&m), &msg[..]);
        }
    }

    #[test]
    fn rsv1_rules() {
        // Without the extension.
        let mut r = reader_with(vec![0xC1, 0x00], None);
        assert!(r.next_message().is_err());
        // On a control frame, or a continuation, even with it.
        let mut r = reader_with(vec![0xC9, 0x00], Some(no_takeover()));
        assert!(r.next_message().is_err());
        let mut bytes = server_frame(OP_TEXT, false, b"ab");
        let mut cont = server_frame(OP_CONT, true, b"cd");
        cont[0] |= 0x40;
        bytes.extend(cont);
        let mut r = reader_with(bytes, Some(no_takeover()));
        assert!(r.next_message().is_err());
        // RSV2 always.
        let mut r = reader_with(vec![0xA1, 0x00], Some(no_takeover()));
        assert!(r.next_message().is_err());
        // Corrupt compressed data.
        let mut r = reader_with(vec![0xC1, 0x03, 0xFF, 0xFF, 0xFF], Some(no_takeover()));
        assert!(r.next_message().is_err());
    }

    #[test]
    fn rejects_reserved_bits() {
        let mut r = FrameReader::new(16);
        r.buf = vec![0xC1, 0x00];
        r.end = 2;
        assert!(r.next_message().is_err());
    }
}
