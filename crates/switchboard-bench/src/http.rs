//! A minimal HTTP/1.1 keep-alive client for the HTTP publisher (loopback only).

use std::io;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::target::Target;
use crate::ws::{FrameReader, connect_tcp};

/// One keep-alive connection that POSTs bodies to a fixed target.
#[derive(Debug)]
pub struct HttpPoster {
    target: Target,
    stream: Option<TcpStream>,
    reader: FrameReader,
    headers: Vec<String>,
    content_type: String,
}

impl HttpPoster {
    /// A poster; connects lazily.
    pub fn new(target: Target, content_type: String, headers: Vec<String>) -> Self {
        HttpPoster {
            target,
            stream: None,
            reader: FrameReader::new(4096),
            headers,
            content_type,
        }
    }

    /// POSTs one body and returns the response status. Reconnects if the server closed the
    /// previous connection.
    pub async fn post(&mut self, body: &[u8]) -> io::Result<u16> {
        let path = self.target.path.clone();
        self.request("POST", &path, body, None).await
    }

    /// Sends one request to `path` on the same server and returns the response status; the
    /// response body is appended to `response` when given. Reconnects if the server closed the
    /// previous connection.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
        mut response: Option<&mut Vec<u8>>,
    ) -> io::Result<u16> {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
            self.target.host_header,
            self.content_type,
            body.len()
        );
        for h in &self.headers {
            req.push_str(h);
            req.push_str("\r\n");
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        for attempt in 0..2 {
            if self.stream.is_none() {
                self.stream = Some(connect_tcp(self.target.addr, None).await?);
                self.reader = FrameReader::new(4096);
            }
            let Some(stream) = self.stream.as_mut() else {
                continue;
            };
            if let Some(r) = response.as_deref_mut() {
                r.clear();
            }
            let res = async {
                stream.write_all(&bytes).await?;
                read_response(stream, &mut self.reader, response.as_deref_mut()).await
            }
            .await;
            match res {
                Ok((status, keep_alive)) => {
                    if !keep_alive {
                        self.stream = None;
                    }
                    return Ok(status);
                }
                Err(e) if attempt == 0 => {
                    // Stale keep-alive connection: retry once on a fresh one.
                    let _ = e;
                    self.stream = None;
                }
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other("unreachable retry state"))
    }
}

/// Parsed response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    status: u16,
    head_len: usize,
    content_length: Option<usize>,
    chunked: bool,
    keep_alive: bool,
}

fn parse_head(buf: &[u8]) -> io::Result<Option<Head>> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
    };
    let status = resp.code.unwrap_or(0);
    let mut content_length = None;
    let mut chunked = false;
    let mut keep_alive = resp.version == Some(1);
    for h in resp.headers.iter() {
        let v = std::str::from_utf8(h.value).unwrap_or("").trim();
        if h.name.eq_ignore_ascii_case("content-length") {
            content_length = v.parse().ok();
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = v.to_ascii_lowercase().contains("chunked");
        } else if h.name.eq_ignore_ascii_case("connection") {
            let v = v.to_ascii_lowercase();
            if v.contains("close") {
                keep_alive = false;
            } else if v.contains("keep-alive") {
                keep_alive = true;
            }
        }
    }
    Ok(Some(Head {
        status,
        head_len,
        content_length,
        chunked,
        keep_alive,
    }))
}

async fn fill(stream: &mut TcpStream, reader: &mut FrameReader) -> io::Result<()> {
    if reader.fill(stream).await? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "server closed the HTTP connection",
        ));
    }
    Ok(())
}

async fn read_response(
    stream: &mut TcpStream,
    reader: &mut FrameReader,
    mut body: Option<&mut Vec<u8>>,
) -> io::Result<(u16, bool)> {
    let head = loop {
        if let Some(h) = parse_head(reader.buffered())? {
            break h;
        }
        fill(stream, reader).await?;
    };
    reader.consume(head.head_len);
    let no_body = head.status == 204 || head.status == 304 || (100..200).contains(&head.status);
    if no_body {
        return Ok((head.status, head.keep_alive));
    }
    if head.chunked {
        loop {
            // Chunk size line.
            let line_end = loop {
                if let Some(p) = reader.buffered().windows(2).position(|w| w == b"\r\n") {
                    break p;
                }
                fill(stream, reader).await?;
            };
            let line = std::str::from_utf8(&reader.buffered()[..line_end]).unwrap_or("");
            let size_str = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_str, 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            reader.consume(line_end + 2);
            if size == 0 {
                // Trailers end with an empty line.
                loop {
                    if let Some(p) = reader.buffered().windows(2).position(|w| w == b"\r\n") {
                        reader.consume(p + 2);
                        if p == 0 {
                            return Ok((head.status, head.keep_alive));
                        }
                        continue;
                    }
                    fill(stream, reader).await?;
                }
            }
            while reader.buffered().len() < size + 2 {
                fill(stream, reader).await?;
            }
            if let Some(b) = body.as_deref_mut() {
                b.extend_from_slice(&reader.buffered()[..size]);
            }
            reader.consume(size + 2);
        }
    }
    match head.content_length {
        Some(len) => {
            while reader.buffered().len() < len {
                fill(stream, reader).await?;
            }
            if let Some(b) = body.as_deref_mut() {
                b.extend_from_slice(&reader.buffered()[..len]);
            }
            reader.consume(len);
            Ok((head.status, head.keep_alive))
        }
        None => {
            // Body delimited by close: read to EOF, then reconnect next time.
            loop {
                let n = reader.buffered().len();
                if let Some(b) = body.as_deref_mut() {
                    b.extend_from_slice(reader.buffered());
                }
                reader.consume(n);
                if reader.fill(stream).await? == 0 {
                    return Ok((head.status, false));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_parsing() {
        let h = parse_head(b"HTTP/1.1 202 Accepted\r\ncontent-length: 12\r\n\r\n{\"ok\":true}\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.status, 202);
        assert_eq!(h.content_length, Some(12));
        assert!(h.keep_alive);
        let h = parse_head(
            b"HTTP/1.1 404 Not Found\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert!(h.chunked);
        assert!(!h.keep_alive);
        assert!(parse_head(b"HTTP/1.1 200 OK\r\n").unwrap().is_none());
    }
}
