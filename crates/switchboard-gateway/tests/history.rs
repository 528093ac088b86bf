//! Channels with history on the gateway: the built-in `/ws` keeps
//! `public:*` and `user:*`; a publish answers its offset and epoch and
//! recognises a retry by its idempotency key; a client recovers what it
//! missed; `GET /api/v1/channels/{channel}/history`; and every bad input's
//! documented answer.

mod support;

use serde_json::{Value, json};
use support::{Gateway, Options};
use switchboard::TestSocket;

async fn recv(ws: &mut TestSocket) -> Value {
    loop {
        let message: Value = ws.recv_json().await.unwrap();
        // Presence events (`[presence]`, on public:* by default) are not
        // publications.
        let presence = matches!(
            message["payload"]["event"].as_str(),
            Some("switchboard.join" | "switchboard.leave")
        );
        if message["type"] != "PING" && !presence {
            return message;
        }
    }
}

async fn open(gw: &Gateway) -> TestSocket {
    let mut ws = gw
        .ws_client()
        .request("/ws")
        .protocol("switchboard.v1")
        .connect()
        .await
        .unwrap();
    assert_eq!(recv(&mut ws).await["type"], "CONNECT_ACK");
    ws
}

async fn subscribe(ws: &mut TestSocket, entry: Value) -> Value {
    ws.send_json(&json!({"type": "SUBSCRIBE", "id": "s", "payload": {"subscriptions": [entry]}}))
        .await
        .unwrap();
    let reply = recv(ws).await;
    assert_eq!(reply["correlation_id"], "s", "{reply}");
    reply
}

async fn publish(gw: &Gateway, body: Value) -> (u16, Value) {
    let response = gw.post("/api/v1/publish", &body.to_string()).await;
    (response.status, response.json())
}

fn event(channel: &str, n: u64) -> Value {
    json!({"target": {"room": channel}, "message": {"type": "EVENT", "event": "n", "data": n}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_answers_its_offset_and_a_reconnected_client_recovers_what_it_missed() {
    let gw = Gateway::start(&[]);
    let mut ws = open(&gw).await;
    let success = subscribe(&mut ws, json!("public:news")).await;
    assert_eq!(success["type"], "SUBSCRIBE_SUCCESS", "{success}");
    let epoch = success["payload"]["epoch"].as_str().unwrap().to_owned();
    assert_eq!(success["payload"]["offset"], 0);

    let (status, body) = publish(&gw, event("public:news", 1)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["offset"], 1);
    assert_eq!(body["epoch"], epoch.as_str());
    let live = recv(&mut ws).await;
    assert_eq!(
        (live["offset"].clone(), live["payload"]["data"].clone()),
        (json!(1), json!(1))
    );
    drop(ws);

    for n in 2..=51 {
        let (status, body) = publish(&gw, event("public:news", n)).await;
        assert_eq!((status, body["offset"].as_u64()), (200, Some(n)));
    }
    let mut ws = open(&gw).await;
    let recover = json!({"channel": "public:news", "recover": {"epoch": epoch, "offset": 1}});
    let success = subscribe(&mut ws, recover).await;
    assert_eq!(success["payload"]["recovered"], true, "{success}");
    assert_eq!(success["payload"]["offset"], 51);
    for n in 2..=51 {
        let message = recv(&mut ws).await;
        assert_eq!(message["offset"], n, "{message}");
        assert_eq!(message["payload"]["data"], n);
    }
    let (_, body) = publish(&gw, event("public:news", 52)).await;
    assert_eq!(body["offset"], 52);
    assert_eq!(recv(&mut ws).await["offset"], 52);

    // user:* keeps history too; other channels do not.
    let (_, body) = publish(
        &gw,
        json!({"target": {"room": "user:alice:inbox"}, "text": "{\"hi\":1}"}),
    )
    .await;
    assert_eq!(body["offset"], 1, "{body}");
    let (_, body) = publish(&gw, json!({"target": {"room": "broadcast"}, "text": "hi"})).await;
    assert!(body.get("offset").is_none(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_with_the_same_idempotency_key_is_not_delivered_twice() {
    let gw = Gateway::start(&[]);
    let mut ws = open(&gw).await;
    subscribe(&mut ws, json!("public:orders")).await;
    let mut body = event("public:orders", 7);
    body["idempotency_key"] = json!("order-7");
    let (status, first) = publish(&gw, body.clone()).await;
    assert_eq!(status, 200);
    let (status, again) = publish(&gw, body).await;
    assert_eq!(status, 200);
    assert_eq!(again["duplicate"], true, "{again}");
    assert_eq!(
        (again["offset"].clone(), again["epoch"].clone()),
        (first["offset"].clone(), first["epoch"].clone())
    );
    assert!(first.get("duplicate").is_none());
    assert!(again.get("id").is_none());
    assert_eq!(recv(&mut ws).await["payload"]["data"], 7);
    // Nothing else arrives: the next message is the following publish.
    let (_, next) = publish(&gw, event("public:orders", 8)).await;
    let message = recv(&mut ws).await;
    assert_eq!(message["payload"]["data"], 8);
    assert_eq!(message["offset"], next["offset"]);

    // Keys on targets without history are remembered too.
    let mut to_all = json!({"target": {"all": true}, "text": "once", "idempotency_key": "all-1"});
    let (_, first) = publish(&gw, to_all.clone()).await;
    assert!(first.get("duplicate").is_none());
    to_all["text"] = json!("twice?");
    let (status, again) = publish(&gw, to_all).await;
    assert_eq!((status, again["duplicate"].clone()), (200, json!(true)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_idempotency_keys_and_history_requests_get_400_naming_the_field() {
    let gw = Gateway::start(&[]);
    for (key, why) in [
        (json!(""), "must not be empty"),
        (json!("k".repeat(129)), "at most 128"),
        (json!("has space"), "printable ASCII"),
    ] {
        let mut body = event("public:x", 1);
        body["idempotency_key"] = key;
        let (status, answer) = publish(&gw, body).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error"]["code"], "bad_request");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("idempotency_key: ") && message.contains(why),
            "{message}"
        );
    }
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("order=sideways", "order"),
        ("since=-1", "since"),
        ("bogus=1", "bogus"),
    ] {
        let response = gw
            .get(&format!("/api/v1/channels/public:x/history?{query}"))
            .await;
        assert_eq!(response.status, 400, "{query}");
        let body = response.json();
        assert_eq!(body["error"]["code"], "bad_request", "{query}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{query}: {message}");
    }
    let response = gw.get("/api/v1/channels/chat:lobby/history").await;
    assert_eq!(response.status, 404);
    assert!(
        response.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("keeps no history")
    );
    let response = gw.get("/api/v1/channels/bad%20name/history").await;
    assert_eq!(response.status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_endpoint_reads_oldest_or_newest_first_after_an_offset() {
    let gw = Gateway::start(&[]);
    for n in 1..=10 {
        publish(&gw, event("public:scores", n)).await;
    }
    publish(
        &gw,
        json!({"target": {"room": "public:scores"}, "text": "not json"}),
    )
    .await;
    let page = gw
        .get("/api/v1/channels/public:scores/history")
        .await
        .json();
    assert_eq!(page["offset"], 11);
    let kept = page["publications"].as_array().unwrap();
    assert_eq!(kept.len(), 11);
    assert_eq!(kept[0]["offset"], 1);
    assert_eq!(kept[0]["message"]["offset"], 1);
    assert_eq!(kept[0]["message"]["payload"]["data"], 1);
    // Bare text to a channel is kept as the EVENT its subscribers got.
    assert_eq!(kept[10]["message"]["payload"]["event"], "switchboard.text");
    assert_eq!(kept[10]["message"]["payload"]["data"], "not json");
    assert_eq!(kept[10]["message"]["offset"], 11);

    let page = gw
        .get("/api/v1/channels/public:scores/history?since=7&limit=2")
        .await
        .json();
    let offsets: Vec<u64> = page["publications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(offsets, [8, 9]);
    let page = gw
        .get("/api/v1/channels/public:scores/history?order=desc&limit=3")
        .await
        .json();
    let offsets: Vec<u64> = page["publications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(offsets, [11, 10, 9]);
    // A channel with history never published to has an epoch and offset 0.
    let page = gw.get("/api/v1/channels/public:empty/history").await.json();
    assert_eq!(page["offset"], 0);
    assert!(page["epoch"].as_str().is_some_and(|e| !e.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_follows_the_config_and_a_restart_starts_a_new_epoch() {
    let dir = std::env::temp_dir().join(format!("sb-history-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        "[history]\nrecovery_limit = 5\n[[history.channels]]\npattern = \"chat:*\"\nsize = 3\n",
    )
    .unwrap();
    let options = Options {
        args: vec!["--config".into(), config.display().to_string()],
        ..Options::default()
    };
    let gw = Gateway::start_with(&options);
    let (_, body) = publish(&gw, json!({"target": {"room": "chat:lobby"}, "text": "{}"})).await;
    assert_eq!(body["offset"], 1, "{body}");
    let (_, body) = publish(
        &gw,
        json!({"target": {"room": "public:news"}, "text": "{}"}),
    )
    .await;
    assert!(
        body.get("offset").is_none(),
        "public:* has no history here: {body}"
    );
    for _ in 0..4 {
        publish(&gw, json!({"target": {"room": "chat:lobby"}, "text": "{}"})).await;
    }
    let page = gw.get("/api/v1/channels/chat:lobby/history").await.json();
    assert_eq!(page["publications"].as_array().unwrap().len(), 3, "size 3");
    let epoch = page["epoch"].clone();
    drop(gw);

    // The in-memory broker's history dies with the process.
    let gw = Gateway::start_with(&options);
    let page = gw.get("/api/v1/channels/chat:lobby/history").await.json();
    assert_ne!(page["epoch"], epoch);
    assert_eq!(page["offset"], 0);

    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[history]\nrecovery_limit = 0\n[[history.channels]]\npattern = \"a b\"\n[[history.channels]]\npattern = \"x:*\"\nsize = 0\nttl = \"0s\"\n",
    )
    .unwrap();
    let out = support::command()
        .args(["config", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    for key in [
        "history.recovery_limit",
        "history.channels[0].pattern",
        "history.channels[1].size",
        "history.channels[1].ttl",
    ] {
        assert!(stderr.contains(key), "{key} in {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_room_with_history_goes_through_its_stream() {
    let dir = std::env::temp_dir().join(format!("sb-bcast-history-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("gateway.toml");
    std::fs::write(&config, "[[history.channels]]\npattern = \"broadcast\"\n").unwrap();
    let gw = Gateway::start_with(&Options {
        args: vec!["--config".into(), config.display().to_string()],
        ..Options::default()
    });
    let mut a = gw.ws_client().connect("/ws/broadcast").await.unwrap();
    let mut b = gw.ws_client().connect("/ws/broadcast").await.unwrap();
    gw.wait_for_room("broadcast", 2).await;
    for i in 0..20 {
        a.send_text(&format!("{{\"i\":{i}}}")).await.unwrap();
    }
    for i in 0..20u64 {
        for ws in [&mut a, &mut b] {
            let got: Value = ws.recv_json().await.unwrap();
            assert_eq!(
                (got["offset"].as_u64(), got["i"].as_u64()),
                (Some(i + 1), Some(i))
            );
        }
    }
    let page = gw
        .get("/api/v1/channels/broadcast/history?limit=1&order=desc")
        .await
        .json();
    assert_eq!(page["offset"], 20);
    let _ = std::fs::remove_dir_all(&dir);
}
