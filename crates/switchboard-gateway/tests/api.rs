//! The HTTP API against the real binary: every route, bad input, the API
//! key, and the OpenAPI document against what the server answers.

mod support;

use serde_json::json;
use support::{Gateway, Options};
use switchboard::{CloseCode, TestError};

const KEY: &str = "test-key-0123456789abcdef";

fn with_key() -> Gateway {
    Gateway::start_with(&Options {
        env: vec![("SWITCHBOARD_API_KEY", KEY.to_owned())],
        ..Options::default()
    })
}

fn auth() -> [(&'static str, String); 1] {
    [("authorization", format!("Bearer {KEY}"))]
}

async fn call(gw: &Gateway, method: &str, path: &str, body: Option<&str>) -> support::Response {
    let [(name, value)] = auth();
    gw.send(method, path, &[(name, &value)], body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_the_key_get_401_and_with_it_pass() {
    let gw = with_key();
    let body = r#"{"target": {"all": true}, "text": "x"}"#;

    let missing = gw.post("/api/v1/publish", body).await;
    assert_eq!(missing.status, 401, "{}", missing.body);
    assert_eq!(missing.json()["error"]["code"], "unauthorized");
    assert_eq!(missing.header("www-authenticate"), Some("Bearer"));

    let wrong = gw
        .send(
            "POST",
            "/api/v1/publish",
            &[("authorization", "Bearer not-the-key-at-all")],
            Some(body),
        )
        .await;
    assert_eq!(wrong.status, 401);
    let almost = gw
        .send(
            "GET",
            "/api/v1/rooms",
            &[("x-api-key", &KEY[..KEY.len() - 1])],
            None,
        )
        .await;
    assert_eq!(almost.status, 401);

    assert_eq!(
        call(&gw, "POST", "/api/v1/publish", Some(body))
            .await
            .status,
        200
    );
    let x_api_key = gw
        .send("GET", "/api/v1/rooms", &[("x-api-key", KEY)], None)
        .await;
    assert_eq!(x_api_key.status, 200);

    // Health, metrics, the page and the API description stay public.
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/",
        "/api/v1/openapi.json",
    ] {
        assert_eq!(gw.get(path).await.status, 200, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_answers_400_with_a_message() {
    let gw = Gateway::start(&[]);
    let cases = [
        ("{not json", "invalid JSON body"),
        ("[1, 2]", "invalid type"),
        (r#"{"text": "x"}"#, "missing field `target`"),
        (
            r#"{"target": {}, "text": "x"}"#,
            "exactly one of room, user, connection or all",
        ),
        (
            r#"{"target": {"room": "a", "user": "b"}, "text": "x"}"#,
            "exactly one of",
        ),
        (r#"{"target": {"room": "a"}}"#, "set message"),
        (
            r#"{"target": {"room": "a"}, "text": "x", "message": {"type": "EVENT", "event": "e"}}"#,
            "not both",
        ),
        (
            r#"{"target": {"room": "a"}, "text": "x", "colour": "red"}"#,
            "unknown field `colour`",
        ),
        (
            r#"{"target": {"room": "a", "floor": 3}, "text": "x"}"#,
            "target.floor: unknown field `floor`",
        ),
        (
            r#"{"target": {"room": 7}, "text": "x"}"#,
            "target.room: invalid type",
        ),
        (
            r#"{"target": {"room": ""}, "text": "x"}"#,
            "not a valid room",
        ),
        (
            r#"{"target": {"room": "a b"}, "text": "x"}"#,
            "not a valid room",
        ),
        (
            r#"{"target": {"user": ""}, "text": "x"}"#,
            "not a valid user id",
        ),
        (r#"{"target": {"all": false}, "text": "x"}"#, "must be true"),
        (
            r#"{"target": {"connection": "nope"}, "text": "x"}"#,
            "is not a connection",
        ),
        (
            r#"{"target": {"room": "a"}, "message": {"type": "PING"}}"#,
            "message.type: unknown variant `PING`",
        ),
        (
            r#"{"target": {"room": "a"}, "message": {"type": "EVENT", "event": "", "data": 1}}"#,
            "message.event: must not be empty",
        ),
        (
            r#"{"target": {"room": "a"}, "message": {"type": "NOTIFICATION", "title": "t", "message": "m", "level": "loud"}}"#,
            "unknown variant `loud`",
        ),
    ];
    for (body, needle) in cases {
        let response = gw.post("/api/v1/publish", body).await;
        assert_eq!(response.status, 400, "{body} -> {}", response.body);
        let error = response.json();
        assert_eq!(error["error"]["code"], "bad_request", "{body}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(needle),
            "{body}: {message:?} lacks {needle:?}"
        );
    }
    let disconnects = [
        (r#"{"code": 1000}"#, "missing field `target`"),
        (
            r#"{"target": {"all": true}, "code": 1005}"#,
            "cannot be sent",
        ),
        (
            r#"{"target": {"all": true}, "code": 999}"#,
            "cannot be sent",
        ),
        (
            r#"{"target": {"all": true}, "why": 1}"#,
            "unknown field `why`",
        ),
    ];
    for (body, needle) in disconnects {
        let response = gw.post("/api/v1/disconnect", body).await;
        assert_eq!(response.status, 400, "{body} -> {}", response.body);
        let message = response.json()["error"]["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            message.contains(needle),
            "{body}: {message:?} lacks {needle:?}"
        );
    }
    for path in [
        "/api/v1/connections?limit=0",
        "/api/v1/connections?sort=id",
        "/api/v1/connections?room=a&user=b",
        "/api/v1/rooms?limit=100000",
        "/api/v1/connections/x-y",
    ] {
        let response = gw.get(path).await;
        assert_eq!(response.status, 400, "{path} -> {}", response.body);
    }
    assert_eq!(gw.get("/api/v1/nothing-here").await.status, 404);
    assert_eq!(
        gw.send("PUT", "/api/v1/publish", &[], Some("{}"))
            .await
            .status,
        405
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_reaches_rooms_users_connections_and_everyone() {
    let gw = Gateway::start(&[]);
    let mut a = gw.ws_client().connect("/ws/broadcast").await.unwrap();
    let mut b = gw.ws_client().connect("/ws/echo").await.unwrap();
    gw.wait_for_room("broadcast", 1).await;
    gw.wait_for_connections(2).await;

    let list = gw.get("/api/v1/connections").await.json();
    assert_eq!(list["total"], 2, "{list}");
    let conns = list["connections"].as_array().unwrap();
    let id_of = |path: &str| {
        conns
            .iter()
            .find(|c| c["path"] == path)
            .unwrap_or_else(|| panic!("no connection on {path}: {list}"))["id"]
            .as_u64()
            .unwrap()
    };
    let (a_id, b_id) = (id_of("/ws/broadcast"), id_of("/ws/echo"));
    let instance = list["instance"].as_str().unwrap().to_owned();
    let a_info = gw.get(&format!("/api/v1/connections/{a_id}")).await.json();
    assert_eq!(a_info["rooms"], json!(["broadcast"]));
    assert_eq!(a_info["address"], format!("{instance}/{a_id}"));
    assert_eq!(a_info["user"], serde_json::Value::Null);
    // The cluster address form, percent-encoded.
    let by_address = gw
        .get(&format!("/api/v1/connections/{instance}%2F{a_id}"))
        .await;
    assert_eq!(by_address.status, 200, "{}", by_address.body);

    // To one connection, by id.
    let one = gw
        .post(
            "/api/v1/publish",
            &format!(r#"{{"target": {{"connection": "{b_id}"}}, "text": "just b"}}"#),
        )
        .await;
    assert_eq!(one.json(), json!({ "local": 1, "forwarded": false }));
    assert_eq!(b.recv_text().await.unwrap(), "just b");

    // To everyone, except a.
    let all = gw
        .post(
            "/api/v1/publish",
            &format!(r#"{{"target": {{"all": true}}, "text": "all but a", "except": "{a_id}"}}"#),
        )
        .await;
    assert_eq!(all.json()["local"], 1);
    assert_eq!(b.recv_text().await.unwrap(), "all but a");

    // A NOTIFICATION to a room.
    let note = gw
        .post(
            "/api/v1/publish",
            r#"{"target": {"room": "broadcast"}, "message": {"type": "NOTIFICATION", "title": "Deploy", "message": "v2 is live", "level": "success", "actions": [{"label": "Open", "action": "open"}]}}"#,
        )
        .await;
    assert_eq!(note.status, 200, "{}", note.body);
    let got: serde_json::Value = a.recv_json().await.unwrap();
    assert_eq!(got["type"], "NOTIFICATION");
    assert_eq!(got["payload"]["level"], "success");
    assert_eq!(got["payload"]["actions"][0]["label"], "Open");
    assert_eq!(got["payload"]["channel"], "broadcast");

    // A DATA message to everyone carries no channel.
    let data = gw
        .post(
            "/api/v1/publish",
            r#"{"target": {"all": true}, "message": {"type": "DATA", "resource": "prices", "data": [1, 2]}}"#,
        )
        .await;
    assert_eq!(data.json()["local"], 2);
    let got: serde_json::Value = b.recv_json().await.unwrap();
    assert_eq!(got["payload"]["resource"], "prices");
    assert!(got["payload"].get("channel").is_none());
    let _: serde_json::Value = a.recv_json().await.unwrap();

    // User ids are not channel names: any printable text.
    let odd_user = gw
        .post(
            "/api/v1/publish",
            r#"{"target": {"user": "auth0|5f7c"}, "text": "x"}"#,
        )
        .await;
    assert_eq!(odd_user.status, 200, "{}", odd_user.body);
    assert_eq!(
        gw.get("/api/v1/users/auth0%7C5f7c/connections")
            .await
            .status,
        200
    );

    // Nobody there: 200 with local 0.
    let nobody = gw
        .post(
            "/api/v1/publish",
            r#"{"target": {"user": "ghost"}, "text": "x"}"#,
        )
        .await;
    assert_eq!(nobody.json(), json!({ "local": 0, "forwarded": true }));

    // Counts and rooms.
    let count = gw.get("/api/v1/connections/count").await.json();
    assert_eq!(count, json!({ "local": 2, "cluster": 2 }));
    let rooms = gw.get("/api/v1/rooms").await.json();
    assert_eq!(rooms["rooms"], json!([{ "room": "broadcast", "size": 1 }]));
    let room = gw.get("/api/v1/rooms/broadcast").await.json();
    assert_eq!(room["local"], 1);
    assert_eq!(room["cluster"], 1);
    assert_eq!(room["members"], json!([a_id]));
    let filtered = gw.get("/api/v1/connections?room=broadcast").await.json();
    assert_eq!(filtered["total"], 1);
    assert_eq!(gw.get("/api/v1/connections/999999").await.status, 404);
    assert_eq!(
        gw.get("/api/v1/connections/other-node%2F1").await.status,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_and_users_can_be_disconnected() {
    let gw = Gateway::start(&[]);
    // One at a time, so that each id is known to belong to its socket.
    let mut a = gw.ws_client().connect("/ws/echo").await.unwrap();
    gw.wait_for_connections(1).await;
    let list = gw.get("/api/v1/connections").await.json();
    let a_id = list["connections"][0]["id"].as_u64().unwrap();
    let mut b = gw.ws_client().connect("/ws/echo").await.unwrap();
    gw.wait_for_connections(2).await;

    let closed = gw
        .send(
            "DELETE",
            &format!("/api/v1/connections/{a_id}?code=4000&reason=bye"),
            &[],
            None,
        )
        .await;
    assert_eq!(closed.json(), json!({ "local": 1, "forwarded": false }));
    let (kicked, other) = (&mut a, &mut b);
    match kicked.recv_text().await {
        Err(TestError::Closed(Some(frame))) => {
            assert_eq!(frame.code, CloseCode::Application(4000));
            assert_eq!(frame.reason, "bye");
        }
        other => panic!("expected a close, got {other:?}"),
    }

    // Everyone, through the generic endpoint, with the default code.
    gw.wait_for_connections(1).await;
    let all = gw
        .post("/api/v1/disconnect", r#"{"target": {"all": true}}"#)
        .await;
    assert_eq!(all.json()["local"], 1);
    match other.recv_text().await {
        Err(TestError::Closed(Some(frame))) => assert_eq!(frame.code, CloseCode::Normal),
        other => panic!("expected a close, got {other:?}"),
    }

    // A user with no connections: nothing to close, still 200.
    let user = gw
        .send("DELETE", "/api/v1/users/alice/connections", &[], None)
        .await;
    assert_eq!(user.json(), json!({ "local": 0, "forwarded": true }));
    let listed = gw.get("/api/v1/users/alice/connections").await.json();
    assert_eq!(listed["total"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_route_answers() {
    let gw = with_key();
    let doc = gw.get("/api/v1/openapi.json").await.json();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let method = method.to_uppercase();
            if !["GET", "POST", "DELETE"].contains(&method.as_str()) {
                continue;
            }
            if path == "/api/v1/admin/shutdown" {
                continue; // answered in the shutdown tests: it stops the gateway
            }
            let concrete = path
                .replace("{id}", "1")
                .replace("{user}", "alice")
                .replace("{room}", "lobby");
            let body = match (method.as_str(), path.as_str()) {
                ("POST", "/api/v1/publish") => Some(r#"{"target": {"all": true}, "text": "x"}"#),
                ("POST", "/api/v1/disconnect") => Some(r#"{"target": {"user": "nobody"}}"#),
                ("POST", _) => Some("{}"),
                _ => None,
            };
            let response = call(&gw, &method, &concrete, body).await;
            // Documented statuses only, and never "no such route".
            let documented = &item[method.to_lowercase()]["responses"];
            assert!(
                documented.get(response.status.to_string()).is_some(),
                "{method} {concrete} answered {} (not documented): {}",
                response.status,
                response.body
            );
            assert!(
                response.status != 404 || path.contains("{id}"),
                "{method} {concrete}: 404"
            );
            assert_ne!(response.status, 405, "{method} {concrete}");
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} routes checked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_can_be_turned_off() {
    let gw = Gateway::start_with(&Options {
        args: vec![
            "--config".into(),
            write_config(
                "[api]\nenabled = false\n[demo]\nenabled = false\n[metrics]\nenabled = false\n",
            ),
        ],
        ..Options::default()
    });
    assert_eq!(gw.post("/api/v1/publish", "{}").await.status, 404);
    assert_eq!(gw.get("/").await.status, 404);
    assert_eq!(gw.get("/switchboard-client.js").await.status, 404);
    assert_eq!(gw.get("/metrics").await.status, 404);
    assert_eq!(gw.get("/healthz").await.status, 200);
}

fn write_config(text: &str) -> String {
    let path = std::env::temp_dir().join(format!(
        "switchboard-api-test-{}-{}.toml",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}
