//! A minimal, lean WebSocket client (RFC 6455) over a raw `TcpStream`.
//!
//! Only what a load generator needs: the opening handshake (with the `Sec-WebSocket-Accept`
//! check), masked client frames, a reader that parses many server frames out of one `read`, and
//! reassembly of fragmented messages. No extensions, no TLS.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use base64::Engine as _;
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
    let mut req = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n",
        target.path, target.host_header, key
    );
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
            .write_all(&upgrade_request(target, &key, &opts.extra_headers))
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
        check_response(&reader.buffered()[..head_len], &key)?;
        reader.consume(head_len);
        let m = rng.next_u64().to_le_bytes();
        Ok(WsConn {
            stream,
            reader,
            mask: [m[0], m[1], m[2], m[3]],
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

fn check_response(head: &[u8], key: &str) -> Result<(), ConnectError> {
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
        Some(v) if v == expected.as_bytes() => Ok(()),
        Some(_) => Err(ConnectError::BadHandshake(
            "wrong Sec-WebSocket-Accept".into(),
        )),
        None => Err(ConnectError::BadHandshake(
            "missing Sec-WebSocket-Accept".into(),
        )),
    }
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
}

/// One complete message (or control frame) parsed by [`FrameReader::next_message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Msg {
    /// `OP_TEXT`, `OP_BINARY`, `OP_PING`, `OP_PONG` or `OP_CLOSE`.
    pub opcode: u8,
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
        }
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
        }
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
            if b0 & 0x70 != 0 {
                return Err(ProtocolError(
                    "reserved bits set (no extension negotiated)".into(),
                ));
            }
            let fin = b0 & 0x80 != 0;
            let opcode = b0 & 0x0F;
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
                        return Ok(Some(Msg {
                            opcode,
                            loc: Loc::Buf { start: pstart, len },
                        }));
                    }
                    self.frag.clear();
                    self.frag.extend_from_slice(&self.buf[pstart..pstart + len]);
                    self.frag_opcode = Some(opcode);
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
                        return Ok(Some(Msg {
                            opcode: op,
                            loc: Loc::Frag,
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

    #[test]
    fn rejects_reserved_bits() {
        let mut r = FrameReader::new(16);
        r.buf = vec![0xC1, 0x00];
        r.end = 2;
        assert!(r.next_message().is_err());
    }
}
