//! The structured protocol's extension points for applications (and the
//! gateway's backend proxy): actions by name pattern, errors with an
//! application's code and `temporary`, channel authorizers that attach data
//! or say why, channels an identity brings, connection metadata, and
//! refusals delivered after the upgrade.

mod protocol_common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use protocol_common::*;
use serde_json::{Value, json};
use switchboard::protocol::wire::Channel;
use switchboard::protocol::{
    Access, ActionContext, ActionError, ActionPattern, ApplicationCode, ChannelDecision,
    ChannelRequest, ChannelRules, ErrorCode, ProtocolConfig, StructuredProtocol,
};
use switchboard::security::{AuthError, AuthRequest, Authenticator, Identity, Security};
use switchboard::{CloseCode, Rejection, RouteConfig, Switchboard, TestError};

both_transports!(
    pattern_actions_take_what_no_exact_name_takes,
    action_errors_carry_the_applications_code_and_temporary,
    channel_authorizers_attach_data_refuse_with_reasons_or_are_unavailable,
    channels_of_the_identity_are_subscribed_at_once,
    a_refusal_with_a_close_code_is_delivered_after_the_upgrade,
);

fn with_patterns() -> StructuredProtocol {
    protocol(ProtocolConfig::default())
        .action(
            "orders.special",
            |_cx: ActionContext, _: Value| async move { Ok(json!("exact")) },
        )
        .actions_matching(
            ActionPattern::new("orders.*").unwrap(),
            |cx: ActionContext, data: Value| async move {
                let meta = cx.identity().map(|i| i.meta().clone());
                Ok(json!({"action": cx.action(), "data": data, "meta": meta}))
            },
        )
        .actions_matching(
            ActionPattern::new("*").unwrap(),
            |cx: ActionContext, _| async move {
                match cx.action() {
                    "busy" => Err(ActionError::new("try later")
                        .with_code(ApplicationCode::new("busy").unwrap())
                        .temporary()),
                    "down" => Err(ActionError::new("backend down")
                        .with_code(ErrorCode::BackendUnavailable)
                        .temporary()),
                    "out" => Err(ActionError::new("Only 2 left")
                        .with_code(ApplicationCode::new("out_of_stock").unwrap())),
                    _ => Err(ActionError::new("plain")),
                }
            },
        )
}

async fn pattern_actions_take_what_no_exact_name_takes(t: Transport) {
    let h = Harness::start(t, mount(with_patterns())).await;
    let mut ws = h.login("alice-key").await;
    ws.send(
        "ACTION",
        json!({"action": "orders.create", "data": {"n": 1}}),
    )
    .await;
    let result = ws.expect("ACTION_RESULT").await;
    assert_eq!(result["payload"]["action"], "orders.create");
    assert_eq!(result["payload"]["data"]["action"], "orders.create");
    assert_eq!(result["payload"]["data"]["data"], json!({"n": 1}));
    ws.send("ACTION", json!({"action": "orders.special"})).await;
    assert_eq!(ws.expect("ACTION_RESULT").await["payload"]["data"], "exact");

    // Without a catch-all pattern, an unmatched action is unknown.
    let only_orders = protocol(ProtocolConfig::default()).actions_matching(
        ActionPattern::new("orders.*").unwrap(),
        |_cx: ActionContext, _| async move { Ok(Value::Null) },
    );
    let h = Harness::start(t, mount(only_orders)).await;
    let mut ws = h.login("alice-key").await;
    let id = ws.send("ACTION", json!({"action": "chat.send"})).await;
    ws.expect_error("unknown_action", Some(&id)).await;
}

async fn action_errors_carry_the_applications_code_and_temporary(t: Transport) {
    let h = Harness::start(t, mount(with_patterns())).await;
    let mut ws = h.login("alice-key").await;
    for (action, code, message, temporary) in [
        ("busy", "busy", "try later", Some(true)),
        ("down", "backend_unavailable", "backend down", Some(true)),
        ("out", "out_of_stock", "Only 2 left", None),
        ("other", "action_failed", "plain", None),
    ] {
        let id = ws.send("ACTION", json!({"action": action})).await;
        let error = ws.expect_error(code, Some(&id)).await;
        assert_eq!(error["payload"]["message"], message);
        assert_eq!(
            error["payload"].get("temporary").and_then(Value::as_bool),
            temporary,
            "{error}"
        );
    }
}

async fn channel_authorizers_attach_data_refuse_with_reasons_or_are_unavailable(t: Transport) {
    struct Teams;
    impl switchboard::protocol::ChannelAuthorizer for Teams {
        async fn authorize(&self, request: &ChannelRequest<'_>) -> ChannelDecision {
            match request.channel().as_str() {
                "team:red" => ChannelDecision::allow_with(json!({"members": 3})),
                "team:down" => ChannelDecision::unavailable("team service down"),
                _ => ChannelDecision::deny_because("not in this team"),
            }
        }
    }
    let rules = ChannelRules::new()
        .allow("team:*", Access::custom(Teams))
        .allow("public:*", Access::Anyone);
    let h = Harness::start(
        t,
        mount(protocol(ProtocolConfig::default()).channels(rules)),
    )
    .await;
    let mut ws = h.login("alice-key").await;
    ws.send(
        "SUBSCRIBE",
        json!({"subscriptions": ["team:red", "team:blue", "team:down", "public:x"]}),
    )
    .await;
    let red = ws.expect("SUBSCRIBE_SUCCESS").await;
    assert_eq!(
        red["payload"],
        json!({"channel": "team:red", "data": {"members": 3}})
    );
    let blue = ws.expect("SUBSCRIBE_FAILURE").await;
    assert_eq!(blue["payload"]["code"], "forbidden");
    assert_eq!(blue["payload"]["reason"], "not in this team");
    let down = ws.expect("SUBSCRIBE_FAILURE").await;
    assert_eq!(down["payload"]["code"], "unavailable");
    let public = ws.expect("SUBSCRIBE_SUCCESS").await;
    assert_eq!(public["payload"], json!({"channel": "public:x"}));
}

/// `alice` with two channels and metadata; any other token: anonymous.
struct WithChannels;

impl Authenticator for WithChannels {
    async fn authenticate(&self, request: &AuthRequest<'_>) -> Result<Option<Identity>, AuthError> {
        match request.token() {
            Some("alice") => Ok(Some(
                Identity::new("alice")
                    .with_meta(json!({"plan": "pro"}))
                    .with_channels([
                        Channel::new("user:alice:inbox").unwrap(),
                        Channel::new("private:ops").unwrap(),
                    ]),
            )),
            _ => Ok(None),
        }
    }
}

async fn channels_of_the_identity_are_subscribed_at_once(t: Transport) {
    let app = protocol(ProtocolConfig::default())
        .actions_matching(
            ActionPattern::new("*").unwrap(),
            |cx: ActionContext, _| async move {
                Ok(cx.identity().map_or(Value::Null, |i| i.meta().clone()))
            },
        )
        .route(
            Switchboard::new(),
            "/ws",
            RouteConfig::default().with_security(
                Security::new()
                    .allow_any_origin()
                    .authenticate(WithChannels),
            ),
        );
    let h = Harness::start(t, app).await;
    // In the handshake: right after CONNECT_ACK, no rule checked
    // (`private:ops` matches none), no correlation_id.
    let (mut ws, ack) = h.connect_with(Some("alice")).await;
    assert_eq!(ack["payload"]["user_id"], "alice");
    for channel in ["user:alice:inbox", "private:ops"] {
        let success = ws.expect("SUBSCRIBE_SUCCESS").await;
        assert_eq!(success["payload"]["channel"], channel);
        assert!(
            success.get("correlation_id").is_none_or(Value::is_null),
            "{success}"
        );
    }
    assert_eq!(h.hub.room_size("private:ops"), 1);
    ws.send("ACTION", json!({"action": "meta"})).await;
    assert_eq!(
        ws.expect("ACTION_RESULT").await["payload"]["data"],
        json!({"plan": "pro"})
    );

    // With AUTHENTICATE: after AUTHENTICATE_SUCCESS.
    let (mut ws, _) = h.connect().await;
    ws.send("AUTHENTICATE", json!({"auth": {"token": "alice"}}))
        .await;
    ws.expect("AUTHENTICATE_SUCCESS").await;
    assert_eq!(
        ws.expect("SUBSCRIBE_SUCCESS").await["payload"]["channel"],
        "user:alice:inbox"
    );
    assert_eq!(
        ws.expect("SUBSCRIBE_SUCCESS").await["payload"]["channel"],
        "private:ops"
    );
    assert_eq!(h.hub.room_size("private:ops"), 2);
}

/// Refuses `banned` after the upgrade, with 1008 and a reason.
struct Banning;

impl Authenticator for Banning {
    async fn authenticate(&self, request: &AuthRequest<'_>) -> Result<Option<Identity>, AuthError> {
        match request.token() {
            Some("banned") => Err(AuthError::Rejected(
                Rejection::new(http::StatusCode::FORBIDDEN, "Connection refused: banned")
                    .with_close(CloseCode::Policy, "banned"),
            )),
            Some("plain") => Err(AuthError::invalid("no")),
            _ => Ok(None),
        }
    }
}

async fn a_refusal_with_a_close_code_is_delivered_after_the_upgrade(t: Transport) {
    let refused = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&refused);
    let ran = Arc::new(AtomicUsize::new(0));
    let runs = Arc::clone(&ran);
    let app = Switchboard::new()
        .route_with(
            "/ws",
            RouteConfig::default()
                .with_security(Security::new().allow_any_origin().authenticate(Banning)),
            move |ws: switchboard::WebSocketUpgrade| {
                runs.fetch_add(1, Ordering::SeqCst);
                async move {
                    let _ws = ws.accept().await?;
                    Ok::<(), switchboard::Error>(())
                }
            },
        )
        .on_refusal(move |_, _| {
            count.fetch_add(1, Ordering::SeqCst);
        });
    let h = Harness::start(t, app).await;
    let mut socket = h
        .client
        .request("/ws")
        .bearer("banned")
        .connect()
        .await
        .unwrap();
    match socket.recv().await {
        Err(TestError::Closed(Some(frame))) => {
            assert_eq!(frame.code, CloseCode::Policy);
            assert_eq!(frame.reason, "banned");
        }
        other => panic!("expected a 1008 close, got {other:?}"),
    }
    // Without a close: the usual HTTP refusal.
    match h.client.request("/ws").bearer("plain").connect().await {
        Err(TestError::Rejected { status, .. }) => assert_eq!(status, 401),
        other => panic!("expected 401, got {other:?}"),
    }
    assert_eq!(refused.load(Ordering::SeqCst), 2);
    assert_eq!(ran.load(Ordering::SeqCst), 0, "the handler never ran");
}
