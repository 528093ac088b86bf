//! `wss://` straight from the gateway: a self-signed certificate made in
//! the test, a rustls client, a WebSocket echo and HTTPS on the same port.

mod support;

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use support::{Gateway, Options};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

struct Files {
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
    der: CertificateDer<'static>,
}

fn self_signed() -> Files {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let dir = std::env::temp_dir().join(format!(
        "switchboard-tls-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    Files {
        cert,
        key,
        der: certified.cert.der().clone(),
    }
}

fn client_config(trusted: &CertificateDer<'static>) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trusted.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

async fn connect(gw: &Gateway, trusted: &CertificateDer<'static>) -> TlsStream<TcpStream> {
    let config = client_config(trusted);
    let tcp = TcpStream::connect(gw.addr).await.unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake with the gateway")
}

/// Reads until the end of the response head.
async fn read_head(io: &mut (impl AsyncRead + Unpin)) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(io.read(&mut byte).await.unwrap(), 1, "connection closed");
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

/// A masked client text frame (payload under 126 bytes).
fn text_frame(text: &str) -> Vec<u8> {
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut frame = vec![0x81, 0x80 | u8::try_from(text.len()).unwrap()];
    frame.extend_from_slice(&mask);
    frame.extend(text.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

async fn read_frame(io: &mut (impl AsyncRead + Unpin)) -> (u8, Vec<u8>) {
    let mut header = [0u8; 2];
    io.read_exact(&mut header).await.unwrap();
    let len = usize::from(header[1] & 0x7f);
    assert!(len < 126, "short frames only");
    let mut payload = vec![0u8; len];
    io.read_exact(&mut payload).await.unwrap();
    (header[0], payload)
}

async fn upgrade(io: &mut (impl AsyncRead + AsyncWrite + Unpin), path: &str) -> String {
    let request = format!(
        "GET {path} HTTP/1.1\r\nhost: localhost\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\
         sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n"
    );
    io.write_all(request.as_bytes()).await.unwrap();
    read_head(io).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_and_https_are_served_from_certificate_files() {
    let files = self_signed();
    let mut gw = Gateway::start(&[
        "--tls-cert",
        files.cert.to_str().unwrap(),
        "--tls-key",
        files.key.to_str().unwrap(),
    ]);
    assert_eq!(gw.scheme, "wss");

    let run = async {
        // A WebSocket over TLS.
        let mut tls = connect(&gw, &files.der).await;
        let head = upgrade(&mut tls, "/ws/echo").await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
        tls.write_all(&text_frame("over tls")).await.unwrap();
        let (first, payload) = read_frame(&mut tls).await;
        assert_eq!(first, 0x81);
        assert_eq!(payload, b"over tls");

        // Plain HTTP requests on the TLS port reach the HTTP side.
        let mut https = connect(&gw, &files.der).await;
        https
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut raw = Vec::new();
        let _ = https.read_to_end(&mut raw).await;
        let response = support::parse_response(&raw);
        assert_eq!((response.status, response.body.as_str()), (200, "ok\n"));

        // A client speaking plain TCP gets no WebSocket.
        let mut plain = TcpStream::connect(gw.addr).await.unwrap();
        plain
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(5), plain.read(&mut buf))
            .await
            .map_or(0, |r| r.unwrap_or(0));
        assert!(!buf[..n].starts_with(b"HTTP/1.1 200"));

        // Shutdown closes the TLS client with 1001, then the process exits 0.
        gw.signal("TERM");
        let (first, payload) = read_frame(&mut tls).await;
        assert_eq!(first, 0x88, "a close frame");
        assert_eq!(&payload[..2], &1001u16.to_be_bytes());
    };
    tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the TLS test took over 20 s");
    assert!(gw.wait_exit(Duration::from_secs(15)).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_problems_are_reported_before_start() {
    let files = self_signed();
    // The key file given as the certificate.
    let out = support::command()
        .args(["serve", "--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&files.key)
        .arg("--tls-key")
        .arg(&files.key)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tls.cert: no certificate in"), "{err}");

    // The environment works too, and names the missing half.
    let out = support::command()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("SWITCHBOARD_TLS_CERT", &files.cert)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("SWITCHBOARD_TLS_CERT: a certificate needs its key"),
        "{err}"
    );

    let gw = Gateway::start_with(&Options {
        env: vec![
            ("SWITCHBOARD_TLS_CERT", files.cert.display().to_string()),
            ("SWITCHBOARD_TLS_KEY", files.key.display().to_string()),
        ],
        ..Options::default()
    });
    assert_eq!(gw.scheme, "wss");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_shutdown_an_idle_tls_connection_closes_at_once_and_a_handshake_under_way_finishes() {
    use std::io::{Read, Write};

    let files = self_signed();
    // The handshake deadline is 10 s (the default).
    let mut gw = Gateway::start(&[
        "--tls-cert",
        files.cert.to_str().unwrap(),
        "--tls-key",
        files.key.to_str().unwrap(),
    ]);
    // A spare connection: TCP only, no ClientHello.
    let mut idle = TcpStream::connect(gw.addr).await.unwrap();
    // A TLS handshake under way: the ClientHello sent, the rest not yet.
    let mut tcp = std::net::TcpStream::connect(gw.addr).unwrap();
    let mut tls = rustls::ClientConnection::new(
        Arc::new(client_config(&files.der)),
        ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    while tls.wants_write() {
        tls.write_tls(&mut tcp).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = std::time::Instant::now();
    gw.signal("TERM");
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(3), idle.read(&mut byte))
        .await
        .expect("the idle connection is closed at once, not at its handshake deadline");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    // The handshake under way holds the drain.
    assert!(
        gw.try_status().is_none(),
        "exited with a TLS handshake under way"
    );

    // It finishes, and the WebSocket side answers with the shutdown: a
    // refusal, or an upgrade then 1001.
    let answer = tokio::task::spawn_blocking(move || {
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        while tls.is_handshaking() {
            tls.complete_io(&mut tcp)
                .expect("the TLS handshake finishes");
        }
        let mut stream = rustls::Stream::new(&mut tls, &mut tcp);
        stream
            .write_all(
                b"GET /ws/echo HTTP/1.1\r\nhost: localhost\r\nupgrade: websocket\r\n\
                  connection: Upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                  sec-websocket-version: 13\r\n\r\n",
            )
            .unwrap();
        let mut answer = Vec::new();
        let mut buf = [0u8; 512];
        // The head, and after a 101 the close frame's first 4 bytes.
        let complete = |answer: &[u8]| {
            let text = String::from_utf8_lossy(answer);
            text.find("\r\n\r\n")
                .is_some_and(|end| !text.starts_with("HTTP/1.1 101") || answer.len() >= end + 8)
        };
        while !complete(&answer) {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
        answer
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&answer);
    if text.starts_with("HTTP/1.1 101") {
        let head_end = text.find("\r\n\r\n").unwrap() + 4;
        let frame = &answer[head_end..];
        assert_eq!(frame[0], 0x88, "a close frame: {text:?}");
        assert_eq!(&frame[2..4], &1001u16.to_be_bytes());
    } else {
        assert!(text.starts_with("HTTP/1.1 503"), "{text:?}");
    }
    let status = gw.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{status:?}\n{}", gw.logs());
}
