//! The nginx snippets, with nginx (a loud SKIPPED without it; a failure
//! under CI): operations.md's `location` blocks run as a real proxy in
//! front of the gateway (the WebSocket goes through; the API and metrics
//! are denied), and security.md's whole `http` block passes `nginx -t`
//! (with a certificate and log paths of the test's).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::shell::require_tool;
use support::{Gateway, free_port, request};
use switchboard_docs::markdown::{Block, tagged};

fn block(file: &str) -> Block {
    tagged("nginx")
        .into_iter()
        .find(|b| b.file == file)
        .unwrap_or_else(|| panic!("{file}: no `nginx nginx` block"))
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "switchboard-nginx-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A configuration around `http` (the inside of the `http` block), with
/// every file nginx writes in `dir`.
fn config(dir: &Path, http: &str) -> PathBuf {
    let d = dir.display();
    let text = format!(
        "master_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\n\
         http {{\n\
         access_log {d}/access.log;\n\
         client_body_temp_path {d}/body;\nproxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\nuwsgi_temp_path {d}/uwsgi;\nscgi_temp_path {d}/scgi;\n\
         {http}\n}}\n"
    );
    let file = dir.join("nginx.conf");
    std::fs::write(&file, text).unwrap();
    file
}

fn nginx(dir: &Path, conf: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new("nginx");
    command
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(conf)
        .args(extra)
        .stdin(Stdio::null());
    command
}

/// nginx in the foreground; killed by PID when dropped.
struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operations_locations_proxy_websockets_and_keep_the_api_internal() {
    if !require_tool(
        "nginx",
        "-v",
        "the_operations_locations_proxy_websockets_and_keep_the_api_internal",
    ) {
        return;
    }
    let gw = Gateway::start(&[]);
    let dir = temp_dir();
    let port = free_port();
    let snippet = block("docs/operations.md").text;
    let http = format!(
        "map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}\n\
         upstream switchboard {{ server {}; }}\n\
         server {{\nlisten 127.0.0.1:{port};\n{snippet}}}\n",
        gw.addr
    );
    let conf = config(&dir, &http);
    let _nginx = Nginx(
        nginx(&dir, &conf, &["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx runs"),
    );
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "nginx did not listen: {}",
            std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut ws = switchboard::TestClient::tcp(addr)
        .connect("/ws/echo")
        .await
        .expect("the WebSocket goes through nginx");
    ws.send_text("through the proxy").await.unwrap();
    assert_eq!(ws.recv_text().await.unwrap(), "through the proxy");
    for path in ["/api/v1/connections", "/metrics"] {
        let response = request(addr, "GET", path, &[], None).await;
        assert_eq!(response.status, 403, "{path}: {}", response.body);
    }
    // The gateway itself still answers both.
    assert_eq!(gw.get("/metrics").await.status, 200);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_security_http_block_passes_nginx_t() {
    if !require_tool("nginx", "-v", "the_security_http_block_passes_nginx_t") {
        return;
    }
    let dir = temp_dir();
    let certified = rcgen::generate_simple_self_signed(vec!["app.example.com".to_owned()]).unwrap();
    std::fs::write(dir.join("cert.pem"), certified.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), certified.signing_key.serialize_pem()).unwrap();
    let snippet = block("docs/security.md").text;
    assert!(snippet.contains("# ssl_certificate ...;"), "{snippet}");
    let http = snippet
        .replace(
            "# ssl_certificate ...;",
            &format!(
                "ssl_certificate {0}/cert.pem; ssl_certificate_key {0}/key.pem;",
                dir.display()
            ),
        )
        .replace("/var/log/nginx/", &format!("{}/", dir.display()));
    let conf = config(&dir, &http);
    let output = nginx(&dir, &conf, &["-t"]).output().expect("nginx runs");
    assert!(
        output.status.success(),
        "nginx -t:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
