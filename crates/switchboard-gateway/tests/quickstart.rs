//! The README's quick start, end to end: the real binary with no config, a
//! WebSocket client, and a publish over HTTP that reaches it.

mod support;

use serde_json::json;
use support::Gateway;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_curl_publish_reaches_a_connected_client() {
    let gw = Gateway::start(&[]);
    let mut ws = gw.ws_client().connect("/ws/broadcast").await.unwrap();
    gw.wait_for_room("broadcast", 1).await;

    // What README.md shows with curl.
    let response = gw
        .post(
            "/api/v1/publish",
            r#"{"target": {"room": "broadcast"}, "text": "hello from curl"}"#,
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.json(), json!({ "local": 1, "forwarded": true }));
    assert_eq!(ws.recv_text().await.unwrap(), "hello from curl");

    // A structured EVENT arrives in the protocol envelope, with its channel.
    let response = gw
        .post(
            "/api/v1/publish",
            r#"{"target": {"room": "broadcast"}, "message": {"type": "EVENT", "event": "deploy", "data": {"v": 2}}}"#,
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.body);
    let id = response.json()["id"].as_str().unwrap().to_owned();
    let event: serde_json::Value = ws.recv_json().await.unwrap();
    assert_eq!(event["type"], "EVENT");
    assert_eq!(event["id"], id.as_str());
    assert_eq!(event["payload"]["event"], "deploy");
    assert_eq!(event["payload"]["data"]["v"], 2);
    assert_eq!(event["payload"]["channel"], "broadcast");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_defaults_serve_echo_broadcast_the_demo_page_and_health() {
    let gw = Gateway::start(&[]);
    assert_eq!(gw.scheme, "ws");

    let mut echo = gw.ws_client().connect("/ws/echo").await.unwrap();
    echo.send_text("ping?").await.unwrap();
    assert_eq!(echo.recv_text().await.unwrap(), "ping?");

    let mut a = gw.ws_client().connect("/ws/broadcast").await.unwrap();
    let mut b = gw.ws_client().connect("/ws/broadcast").await.unwrap();
    gw.wait_for_room("broadcast", 2).await;
    a.send_text("to everyone").await.unwrap();
    assert_eq!(a.recv_text().await.unwrap(), "to everyone");
    assert_eq!(b.recv_text().await.unwrap(), "to everyone");

    let page = gw.get("/").await;
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.body.contains("<title>Switchboard"), "{}", page.body);
    // The page speaks the structured protocol at /ws, through the TypeScript
    // client the gateway serves (the next test).
    assert!(page.body.contains("\"/ws\"") && page.body.contains("chat.send"));
    assert!(
        page.body.contains(r#"<script type="module">"#)
            && page.body.contains(r#"from "/switchboard-client.js";"#),
        "{}",
        page.body
    );

    // The structured protocol is at /ws.
    let ws = gw
        .ws_client()
        .request("/ws")
        .protocol("switchboard.v1")
        .connect()
        .await
        .unwrap();
    assert_eq!(ws.protocol(), Some("switchboard.v1"));

    let health = gw.get("/healthz").await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    let ready = gw.wait_for_status("/readyz", 200).await;
    assert_eq!(ready.json()["broker"]["type"], "memory");

    let metrics = gw.get("/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.body.contains("switchboard_connections 4\n"),
        "{}",
        metrics.body
    );

    // The WebSocket routes still refuse plain HTTP with 426.
    assert_eq!(gw.get("/ws/echo").await.status, 426);
    assert_eq!(gw.get("/nope").await.status, 404);
}

/// The committed bundle of `clients/js` (`npm run bundle` there).
const CLIENT_JS: &str = include_str!("../assets/switchboard-client.js");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_bundle_the_demo_page_imports_is_served_as_javascript() {
    let gw = Gateway::start(&[]);
    let js = gw.get("/switchboard-client.js").await;
    assert_eq!(js.status, 200, "{}", js.body);
    assert_eq!(
        js.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(js.header("cache-control"), Some("no-cache"));
    assert_eq!(js.body, CLIENT_JS, "the embedded bundle, byte for byte");
    assert!(js.body.starts_with("// GENERATED FILE: do not edit."));
    assert!(
        js.body.contains("as SwitchboardClient"),
        "exports the client"
    );

    // Revalidation: the same ETag answers 304 without a body.
    let etag = js.header("etag").expect("an ETag").to_owned();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag.len() == 18,
        "{etag}"
    );
    let again = gw
        .send(
            "GET",
            "/switchboard-client.js",
            &[("if-none-match", &format!("W/\"other\", {etag}"))],
            None,
        )
        .await;
    assert_eq!(again.status, 304);
    assert_eq!(again.body, "");
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    let stale = gw
        .send(
            "GET",
            "/switchboard-client.js",
            &[("if-none-match", "\"0000000000000000\"")],
            None,
        )
        .await;
    assert_eq!(stale.status, 200);
    assert_eq!(stale.body.len(), CLIENT_JS.len());

    // HEAD too (axum answers HEAD from GET routes).
    let head = gw.send("HEAD", "/switchboard-client.js", &[], None).await;
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
}
