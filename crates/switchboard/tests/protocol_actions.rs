//! Structured protocol: actions (results, typed data, unknown, failing,
//! panicking, concurrent), handlers for client-sent EVENTs, hooks, and the
//! connection states they see.

mod protocol_common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use protocol_common::*;
use serde_json::{Value, json};
use switchboard::protocol::wire::Envelope;
use switchboard::protocol::wire::payload::Event;
use switchboard::protocol::{
    ActionContext, ActionError, Channel, Connection, ConnectionState, ErrorCode, Inbound,
    MessageType, ProtocolConfig, ProtocolHooks, StructuredProtocol,
};
use switchboard::{CloseFrame, Identity};

both_transports!(
    actions_answer_with_their_result,
    typed_actions_check_their_data,
    unknown_failing_and_panicking_actions_answer_errors,
    a_slow_action_does_not_hold_up_the_connection,
    client_events_go_to_their_handler,
    hooks_see_envelopes_states_and_the_end,
);

#[derive(serde::Deserialize)]
struct Send {
    room: String,
    text: String,
}

#[derive(serde::Serialize)]
struct Sent {
    delivered: usize,
    text: String,
}

fn with_actions(config: ProtocolConfig) -> StructuredProtocol {
    protocol(config)
        .action("echo", |cx: ActionContext, data: Value| async move {
            Ok(json!({
                "data": data,
                "user": cx.user_id().map(|u| u.to_string()),
                "state": cx.state(),
                "action": cx.action(),
                "message_id": cx.message_id(),
            }))
        })
        .action("chat.send", |cx: ActionContext, send: Send| async move {
            let room = Channel::new(&send.room).map_err(|e| ActionError::new(e.to_string()))?;
            let event = Event::new("chat.message", json!({ "text": send.text }));
            let sent = cx.publisher().to_channel(&room, event).await?;
            Ok(Sent {
                delivered: sent.local,
                text: send.text,
            })
        })
        .action("fail", |_cx: ActionContext, _: Value| async move {
            Err::<Value, _>(ActionError::new("the printer is on fire"))
        })
        .action("panic", |_cx: ActionContext, _: Value| async move {
            if true {
                panic!("handler bug");
            }
            Ok(Value::Null)
        })
        .action("sleep", |_cx: ActionContext, ms: u64| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(ms)
        })
}

async fn actions_answer_with_their_result(t: Transport) {
    let h = Harness::start(t, mount(with_actions(ProtocolConfig::default()))).await;
    let mut ws = h.login("alice-key").await;
    let id = ws
        .send("ACTION", json!({"action": "echo", "data": [1, 2]}))
        .await;
    let result = ws.expect("ACTION_RESULT").await;
    assert_eq!(result["correlation_id"], id);
    assert_eq!(
        result["payload"],
        json!({"action": "echo", "data": {
            "data": [1, 2], "user": "alice", "state": "authenticated",
            "action": "echo", "message_id": id,
        }})
    );
    // `data` may be left out (null).
    ws.send("ACTION", json!({"action": "echo"})).await;
    assert_eq!(
        ws.expect("ACTION_RESULT").await["payload"]["data"]["data"],
        Value::Null
    );
}

async fn typed_actions_check_their_data(t: Transport) {
    let h = Harness::start(t, mount(with_actions(ProtocolConfig::default()))).await;
    let mut ws = h.login("alice-key").await;
    ws.send("SUBSCRIBE", json!({"subscriptions": ["public:lobby"]}))
        .await;
    ws.expect("SUBSCRIBE_SUCCESS").await;
    let id = ws
        .send(
            "ACTION",
            json!({"action": "chat.send", "data": {"room": "public:lobby", "text": "hello"}}),
        )
        .await;
    // The event to the room and the result may come in either order.
    let (mut event, mut result) = (None, None);
    for _ in 0..2 {
        let m = ws.recv().await;
        match m["type"].as_str() {
            Some("EVENT") => event = Some(m),
            Some("ACTION_RESULT") => result = Some(m),
            _ => panic!("{m}"),
        }
    }
    let (event, result) = (event.unwrap(), result.unwrap());
    assert_eq!(event["payload"]["channel"], "public:lobby");
    assert_eq!(event["payload"]["data"]["text"], "hello");
    assert_eq!(result["correlation_id"], id);
    assert_eq!(
        result["payload"]["data"],
        json!({"delivered": 1, "text": "hello"})
    );

    let id = ws
        .send(
            "ACTION",
            json!({"action": "chat.send", "data": {"room": 5}}),
        )
        .await;
    let error = ws.expect_error("invalid_message", Some(&id)).await;
    assert!(
        error["payload"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid data for action \"chat.send\""),
        "{error}"
    );
}

async fn unknown_failing_and_panicking_actions_answer_errors(t: Transport) {
    let h = Harness::start(t, mount(with_actions(ProtocolConfig::default()))).await;
    let (mut ws, _) = h.connect().await;
    let id = ws.send("ACTION", json!({"action": "nope"})).await;
    let error = ws.expect_error("unknown_action", Some(&id)).await;
    assert_eq!(
        error["payload"]["message"],
        "No handler for action \"nope\""
    );

    let id = ws.send("ACTION", json!({"action": "fail"})).await;
    let error = ws.expect_error("action_failed", Some(&id)).await;
    assert_eq!(error["payload"]["message"], "the printer is on fire");

    let id = ws.send("ACTION", json!({"action": "panic"})).await;
    ws.expect_error("internal", Some(&id)).await;

    // An ACTION needs an id.
    ws.send_text(r#"{"type":"ACTION","payload":{"action":"echo"}}"#)
        .await;
    ws.expect_error("invalid_message", None).await;

    // The connection is fine after all that.
    ws.send("PING", json!({})).await;
    ws.expect("PONG").await;
}

async fn a_slow_action_does_not_hold_up_the_connection(t: Transport) {
    let h = Harness::start(t, mount(with_actions(ProtocolConfig::default()))).await;
    let (mut ws, _) = h.connect().await;
    let slow = ws
        .send("ACTION", json!({"action": "sleep", "data": 300}))
        .await;
    let fast = ws
        .send("ACTION", json!({"action": "sleep", "data": 0}))
        .await;
    let ping = ws.send("PING", json!({})).await;
    let mut order = Vec::new();
    for _ in 0..3 {
        let m = ws.recv().await;
        order.push(m["correlation_id"].as_str().unwrap().to_owned());
    }
    // The ping and the fast action are answered before the slow one.
    assert_eq!(order[2], slow, "{order:?}");
    assert!(
        order[..2].contains(&ping) && order[..2].contains(&fast),
        "{order:?}"
    );
}

async fn client_events_go_to_their_handler(t: Transport) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = Arc::clone(&seen);
    let protocol = protocol(ProtocolConfig::default()).on_message(
        MessageType::Event,
        move |cx: ActionContext, envelope: Envelope| {
            let log = Arc::clone(&log);
            async move {
                let switchboard::protocol::wire::Message::Event(event) = envelope.message else {
                    unreachable!()
                };
                if event.event == "bad" {
                    return Err(ActionError::new("no bad events"));
                }
                log.lock()
                    .unwrap()
                    .push(format!("{}:{}", cx.action(), event.event));
                Ok(())
            }
        },
    );
    let h = Harness::start(t, mount(protocol)).await;
    let (mut ws, _) = h.connect().await;
    ws.send("EVENT", json!({"event": "typing", "data": {"on": true}}))
        .await;
    let id = ws.send("EVENT", json!({"event": "bad"})).await;
    ws.expect_error("action_failed", Some(&id)).await;
    assert_eq!(*seen.lock().unwrap(), ["EVENT:typing"]);
    // Types without a handler are refused.
    let id = ws.send("DATA", json!({"resource": "x", "data": 1})).await;
    let error = ws.expect_error("invalid_message", Some(&id)).await;
    assert_eq!(
        error["payload"]["message"],
        "DATA is not accepted from clients"
    );
    let id = ws.send("CONNECT_ACK", json!({})).await;
    ws.expect_error("invalid_message", Some(&id)).await;
}

#[derive(Default)]
struct Recorder {
    log: Mutex<Vec<String>>,
}

struct Hooks(Arc<Recorder>);

impl Hooks {
    fn push(&self, entry: String) {
        self.0.log.lock().unwrap().push(entry);
    }
}

impl ProtocolHooks for Hooks {
    fn on_open(&self, conn: &Connection) {
        self.push(format!("open {}", conn.state()));
    }
    fn on_envelope(&self, _conn: &Connection, envelope: &Envelope) -> Inbound {
        match envelope.message.kind() {
            MessageType::Action => Inbound::Reject(ErrorCode::Forbidden, "no actions here".into()),
            MessageType::Connect => Inbound::Handled,
            kind => {
                self.push(format!("in {kind}"));
                Inbound::Accept
            }
        }
    }
    fn on_state_change(&self, _conn: &Connection, from: ConnectionState, to: ConnectionState) {
        self.push(format!("{from}->{to}"));
    }
    fn on_authenticated(&self, _conn: &Connection, identity: &Identity, refreshed: bool) {
        self.push(format!("auth {} {refreshed}", identity.user_id()));
    }
    fn on_subscribe(&self, _conn: &Connection, channel: &Channel) {
        self.push(format!("sub {channel}"));
    }
    fn on_unsubscribe(&self, _conn: &Connection, channel: &Channel) {
        self.push(format!("unsub {channel}"));
    }
    fn on_close(&self, conn: &Connection, close: &CloseFrame) {
        self.push(format!("close {} {}", u16::from(close.code), conn.state()));
    }
}

async fn hooks_see_envelopes_states_and_the_end(t: Transport) {
    let recorder = Arc::new(Recorder::default());
    let protocol = with_actions(ProtocolConfig::default().with_require_auth(true))
        .hooks(Hooks(Arc::clone(&recorder)));
    let h = Harness::start(t, mount(protocol)).await;
    let (mut ws, _) = h.connect().await;
    let id = ws.send("ACTION", json!({"action": "echo"})).await;
    let error = ws.expect_error("forbidden", Some(&id)).await;
    assert_eq!(error["payload"]["message"], "no actions here");
    ws.send("CONNECT", json!({})).await; // swallowed by the hook
    ws.send("AUTHENTICATE", json!({"auth": {"token": "bob-key"}}))
        .await;
    ws.expect("AUTHENTICATE_SUCCESS").await;
    ws.send("AUTHENTICATE", json!({"auth": {"token": "bob-key"}}))
        .await;
    ws.expect("AUTHENTICATE_SUCCESS").await;
    ws.send("SUBSCRIBE", json!({"subscriptions": ["public:a"]}))
        .await;
    ws.expect("SUBSCRIBE_SUCCESS").await;
    ws.send("UNSUBSCRIBE", json!({"subscriptions": ["public:a"]}))
        .await;
    ws.expect("UNSUBSCRIBE_ACK").await;
    ws.send("DISCONNECT", json!({})).await;
    ws.expect_close(1000).await;
    drop(ws);
    eventually(|| {
        recorder
            .log
            .lock()
            .unwrap()
            .last()
            .is_some_and(|l| l.starts_with("close"))
    })
    .await;
    assert_eq!(
        *recorder.log.lock().unwrap(),
        [
            "initializing->connecting",
            "open connecting",
            "connecting->connected",
            "in AUTHENTICATE",
            "connected->authenticating",
            "authenticating->authenticated",
            "auth bob false",
            "in AUTHENTICATE",
            "authenticated->authenticating",
            "authenticating->authenticated",
            "auth bob true",
            "in SUBSCRIBE",
            "sub public:a",
            "in UNSUBSCRIBE",
            "unsub public:a",
            "in DISCONNECT",
            "authenticated->disconnecting",
            "disconnecting->disconnected",
            "close 1000 disconnected",
        ]
    );
}
