//! The API's refusals against the real binary, each with the exact body
//! docs/operations.md gives: a method a route does not take (405 with
//! `Allow`), query strings and path parameters the extractors refuse, a
//! body over the limit, close codes, and closing a connection that is not
//! there.

mod support;

use serde_json::{Value, json};
use support::{Gateway, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The error body, after checking the status and that it is JSON.
fn error(response: &Response, status: u16) -> Value {
    assert_eq!(response.status, status, "{}", response.body);
    assert_eq!(
        response.header("content-type"),
        Some("application/json"),
        "{}",
        response.body
    );
    let body = response.json();
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(1),
        "only `error`: {body}"
    );
    body["error"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_method_a_route_does_not_take_answers_405_in_json_with_allow() {
    let gw = Gateway::start(&[]);
    let put = gw.send("PUT", "/api/v1/publish", &[], Some("{}")).await;
    assert_eq!(
        error(&put, 405),
        json!({"code": "method_not_allowed", "message": "PUT is not allowed on /api/v1/publish: use POST"})
    );
    assert_eq!(put.header("allow"), Some("POST, OPTIONS"));

    // Two methods on one path; HEAD comes with GET.
    let post = gw.post("/api/v1/connections/42", "{}").await;
    assert_eq!(
        error(&post, 405),
        json!({"code": "method_not_allowed", "message": "POST is not allowed on /api/v1/connections/{id}: use GET or DELETE"})
    );
    assert_eq!(post.header("allow"), Some("GET, HEAD, DELETE, OPTIONS"));

    let delete = gw.send("DELETE", "/api/v1/rooms", &[], None).await;
    assert_eq!(error(&delete, 405)["code"], "method_not_allowed");
    assert_eq!(delete.header("allow"), Some("GET, HEAD, OPTIONS"));

    // Outside the API, axum's plain answer stays.
    let health = gw.post("/healthz", "{}").await;
    assert_eq!(health.status, 405);
    assert_eq!(health.body, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_strings_and_path_parameters_are_refused_in_json_naming_the_field() {
    let gw = Gateway::start(&[]);
    let cases = [
        (
            "/api/v1/connections?sort=id",
            "sort: unknown field `sort`, expected one of `room`, `user`, `limit`",
        ),
        (
            "/api/v1/connections?limit=abc",
            "limit: invalid digit found in string",
        ),
        (
            "/api/v1/rooms?limit=-1",
            "limit: invalid digit found in string",
        ),
        (
            "/api/v1/rooms?room=x",
            "room: unknown field `room`, expected `limit`",
        ),
        (
            "/api/v1/channels/public:news/history?order=sideways",
            "order: unknown variant `sideways`, expected `asc` or `desc`",
        ),
        (
            "/api/v1/channels/public:news/history?since=x",
            "since: invalid digit found in string",
        ),
        (
            "/api/v1/connections/%FF",
            "id: not valid UTF-8 once percent-decoded",
        ),
        (
            "/api/v1/users/%C3%28/connections",
            "user: not valid UTF-8 once percent-decoded",
        ),
        (
            "/api/v1/rooms/%FF",
            "room: not valid UTF-8 once percent-decoded",
        ),
    ];
    for (path, message) in cases {
        let response = gw.get(path).await;
        assert_eq!(
            error(&response, 400),
            json!({"code": "bad_request", "message": message}),
            "{path}"
        );
    }
    let delete = gw
        .send("DELETE", "/api/v1/connections/1?code=x", &[], None)
        .await;
    assert_eq!(
        error(&delete, 400),
        json!({"code": "bad_request", "message": "code: invalid digit found in string"})
    );
    let delete = gw
        .send("DELETE", "/api/v1/users/alice/connections?why=1", &[], None)
        .await;
    assert_eq!(
        error(&delete, 400),
        json!({"code": "bad_request", "message": "why: unknown field `why`, expected `code` or `reason`"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_2_mib_answers_413_in_json() {
    let gw = Gateway::start(&[]);
    let text = "a".repeat(2 * 1024 * 1024);
    let body = format!(r#"{{"target": {{"all": true}}, "text": "{text}"}}"#);
    let response = post_unread(&gw, "/api/v1/publish", &body).await;
    assert_eq!(
        error(&response, 413),
        json!({"code": "payload_too_large", "message": "the request body is over 2097152 bytes (2 MiB)"})
    );
    // Just under the limit is read (and published to nobody).
    let text = "a".repeat(2 * 1024 * 1024 - 64);
    let body = format!(r#"{{"target": {{"all": true}}, "text": "{text}"}}"#);
    assert!(body.len() <= 2 * 1024 * 1024);
    let response = gw.post("/api/v1/publish", &body).await;
    assert_eq!(response.status, 200, "{}", response.body);
}

/// Every code the API accepts, as its messages list them.
const ACCEPTED: &str = "1000, 1001, 1002, 1003, 1007, 1008, 1009, 1011, 1012, 1013 or 3000-4999";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_codes_outside_the_table_are_refused_with_the_list_of_those_accepted() {
    let gw = Gateway::start(&[]);
    for code in [0, 999, 1004, 1005, 1006, 1010, 1014, 1015, 2999, 5000] {
        let body = format!(r#"{{"target": {{"user": "nobody"}}, "code": {code}}}"#);
        let response = gw.post("/api/v1/disconnect", &body).await;
        assert_eq!(
            error(&response, 400),
            json!({"code": "bad_request", "message": format!("code: {code} cannot be sent: use {ACCEPTED}")}),
            "{code}"
        );
        let path = format!("/api/v1/users/nobody/connections?code={code}");
        let response = gw.send("DELETE", &path, &[], None).await;
        assert_eq!(
            error(&response, 400)["message"],
            format!("code: {code} cannot be sent: use {ACCEPTED}")
        );
    }
    // Every code listed is taken.
    for code in [
        1000, 1001, 1002, 1003, 1007, 1008, 1009, 1011, 1012, 1013, 3000, 4403, 4999,
    ] {
        let body = format!(r#"{{"target": {{"user": "nobody"}}, "code": {code}}}"#);
        let response = gw.post("/api/v1/disconnect", &body).await;
        assert_eq!(
            response.json(),
            json!({"local": 0, "forwarded": true}),
            "{code}"
        );
    }
    let long = "r".repeat(124);
    let body = format!(r#"{{"target": {{"user": "nobody"}}, "reason": "{long}"}}"#);
    let response = gw.post("/api/v1/disconnect", &body).await;
    assert_eq!(
        error(&response, 400),
        json!({"code": "bad_request", "message": "reason: at most 123 bytes (a close frame's limit)"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_connection_that_is_not_here_is_404_and_one_elsewhere_is_forwarded() {
    let gw = Gateway::start(&[]);
    let mut ws = gw.ws_client().connect("/ws/echo").await.unwrap();
    gw.wait_for_connections(1).await;
    let list = gw.get("/api/v1/connections").await.json();
    let instance = list["instance"].as_str().unwrap().to_owned();
    let id = list["connections"][0]["id"].as_u64().unwrap();

    // Unknown here, by id and by this instance's address: 404, as GET.
    for path in [
        "/api/v1/connections/999999".to_owned(),
        format!("/api/v1/connections/{instance}%2F999999"),
    ] {
        let deleted = gw.send("DELETE", &path, &[], None).await;
        assert_eq!(
            error(&deleted, 404),
            json!({"code": "not_found", "message": format!("no connection {instance}/999999")}),
            "{path}"
        );
        let got = gw.get(&path).await;
        assert_eq!(error(&got, 404), error(&deleted, 404));
    }

    // Another instance's address: this one cannot know; the broker takes it.
    let elsewhere = gw
        .send("DELETE", "/api/v1/connections/gw-2%2F7", &[], None)
        .await;
    assert_eq!(elsewhere.status, 200, "{}", elsewhere.body);
    assert_eq!(elsewhere.json(), json!({"local": 0, "forwarded": true}));

    // One that is here: closed.
    let closed = gw
        .send("DELETE", &format!("/api/v1/connections/{id}"), &[], None)
        .await;
    assert_eq!(closed.json(), json!({"local": 1, "forwarded": false}));
    assert!(ws.recv_text().await.is_err(), "closed");
    gw.wait_for_connections(0).await;
    let again = gw
        .send("DELETE", &format!("/api/v1/connections/{id}"), &[], None)
        .await;
    assert_eq!(error(&again, 404)["code"], "not_found");
}

/// A POST whose body the server may stop reading: the body is written by a
/// task of its own (its errors ignored) while the answer is read.
async fn post_unread(gw: &Gateway, path: &str, body: &str) -> Response {
    let stream = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        gw.addr,
        body.len()
    );
    let writer = tokio::spawn(async move {
        let _ = write.write_all(request.as_bytes()).await;
        write
    });
    let mut raw = Vec::new();
    let read_all = read.read_to_end(&mut raw);
    // A reset after the answer arrived leaves what was read in `raw`.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), read_all).await;
    drop(writer.await);
    support::parse_response(&raw)
}
