//! Structured protocol: subscriptions (authorization rules, names, the
//! limit, UNSUBSCRIBE) and what the server sends to them (EVENT, DATA,
//! NOTIFICATION, typed events; to a channel, users, a connection, everyone).

mod protocol_common;

use protocol_common::*;
use serde_json::{Value, json};
use switchboard::ConnectionId;
use switchboard::protocol::wire::payload::{Data, Event, Level, Notification};
use switchboard::protocol::{
    Access, AppEvent, Channel, ChannelRequest, ChannelRules, ProtocolConfig, Publisher,
};

both_transports!(
    subscriptions_follow_the_rules,
    the_default_rules_deny_what_they_do_not_match,
    configured_rules_by_permission_admin_and_custom,
    names_are_checked_and_the_limit_is_128,
    published_messages_reach_subscribers_until_they_unsubscribe,
    the_publisher_reaches_users_connections_and_everyone,
);

fn connection_id(ack: &Value) -> ConnectionId {
    ConnectionId(
        ack["payload"]["connection_id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
    )
}

/// Sends SUBSCRIBE and reads one reply per channel: (type, channel, code).
async fn subscribe(ws: &mut Client, channels: &[&str]) -> Vec<(String, String, Option<String>)> {
    let id = ws
        .send("SUBSCRIBE", json!({ "subscriptions": channels }))
        .await;
    let mut replies = Vec::new();
    for _ in channels {
        let reply = ws.recv().await;
        assert_eq!(reply["correlation_id"], id, "{reply}");
        replies.push((
            reply["type"].as_str().unwrap().to_owned(),
            reply["payload"]["channel"].as_str().unwrap().to_owned(),
            reply["payload"]["code"].as_str().map(str::to_owned),
        ));
        if reply["type"] == "SUBSCRIBE_FAILURE" {
            assert!(
                reply["payload"]["reason"]
                    .as_str()
                    .is_some_and(|r| !r.is_empty())
            );
        }
    }
    replies
}

fn ok(channel: &str) -> (String, String, Option<String>) {
    ("SUBSCRIBE_SUCCESS".into(), channel.into(), None)
}

fn refused(channel: &str, code: &str) -> (String, String, Option<String>) {
    (
        "SUBSCRIBE_FAILURE".into(),
        channel.into(),
        Some(code.into()),
    )
}

async fn subscriptions_follow_the_rules(t: Transport) {
    let h = Harness::start(t, mount(protocol(ProtocolConfig::default()))).await;
    let mut alice = h.login("alice-key").await;
    let replies = subscribe(
        &mut alice,
        &[
            "public:news",
            "user:alice:inbox",
            "user:bob:inbox",
            "private:admin",
            "public:news",
        ],
    )
    .await;
    assert_eq!(
        replies,
        [
            ok("public:news"),
            ok("user:alice:inbox"),
            refused("user:bob:inbox", "forbidden"),
            refused("private:admin", "forbidden"),
            // Subscribing twice succeeds.
            ok("public:news"),
        ]
    );
    assert_eq!(h.hub.room_size("public:news"), 1);
    assert_eq!(h.hub.room_size("user:alice:inbox"), 1);
    assert_eq!(h.hub.room_size("user:bob:inbox"), 0);

    // Anonymous clients get public channels only.
    let (mut anon, _) = h.connect().await;
    let replies = subscribe(&mut anon, &["public:x", "user:alice:inbox"]).await;
    assert_eq!(
        replies,
        [ok("public:x"), refused("user:alice:inbox", "forbidden")]
    );
}

async fn the_default_rules_deny_what_they_do_not_match(t: Transport) {
    let rules = ChannelRules::new().allow("public:*", Access::Anyone);
    let h = Harness::start(
        t,
        mount(protocol(ProtocolConfig::default()).channels(rules)),
    )
    .await;
    let mut alice = h.login("alice-key").await;
    let replies = subscribe(&mut alice, &["public:a", "user:alice:inbox", "public", "x"]).await;
    assert_eq!(
        replies,
        [
            ok("public:a"),
            refused("user:alice:inbox", "forbidden"),
            refused("public", "forbidden"),
            refused("x", "forbidden"),
        ]
    );
}

async fn configured_rules_by_permission_admin_and_custom(t: Transport) {
    let rules = ChannelRules::default()
        .allow("billing:*", Access::permission("billing:read"))
        .allow("admin:*", Access::Admin)
        .allow("team:closed", Access::Nobody)
        .allow("team:*", Access::Authenticated)
        .allow(
            "room:*",
            Access::custom(|req: &ChannelRequest<'_>| req.channel().as_str().ends_with("-open")),
        );
    let h = Harness::start(
        t,
        mount(protocol(ProtocolConfig::default()).channels(rules)),
    )
    .await;
    let channels = [
        "billing:q3",
        "admin:ops",
        "team:a",
        "team:closed",
        "room:1-open",
        "room:2",
    ];

    let mut alice = h.login("alice-key").await;
    assert_eq!(
        subscribe(&mut alice, &channels).await,
        [
            ok("billing:q3"),
            refused("admin:ops", "forbidden"),
            ok("team:a"),
            refused("team:closed", "forbidden"),
            ok("room:1-open"),
            refused("room:2", "forbidden"),
        ]
    );
    let mut root = h.login("admin-key").await;
    assert_eq!(
        subscribe(&mut root, &channels[..2]).await,
        [refused("billing:q3", "forbidden"), ok("admin:ops")]
    );
    let (mut anon, _) = h.connect().await;
    assert_eq!(
        subscribe(&mut anon, &["team:a", "room:3-open"]).await,
        [refused("team:a", "forbidden"), ok("room:3-open")]
    );
}

async fn names_are_checked_and_the_limit_is_128(t: Transport) {
    let h = Harness::start(t, mount(protocol(ProtocolConfig::default()))).await;
    let (mut ws, _) = h.connect().await;
    let long = format!("public:{}", "a".repeat(249));
    let ok_long = format!("public:{}", "a".repeat(248));
    let replies = subscribe(&mut ws, &["public:a b", "", "public:é", &long, &ok_long]).await;
    assert_eq!(
        replies,
        [
            refused("public:a b", "invalid_channel"),
            refused("", "invalid_channel"),
            refused("public:é", "invalid_channel"),
            refused(&long, "invalid_channel"),
            ok(&ok_long),
        ]
    );
    // 127 more fit; the 129th does not; one already held still succeeds.
    let names: Vec<String> = (0..128).map(|i| format!("public:{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let replies = subscribe(&mut ws, &names).await;
    assert!(replies[..127].iter().all(|r| r.0 == "SUBSCRIBE_SUCCESS"));
    assert_eq!(
        replies[127],
        refused("public:127", "too_many_subscriptions")
    );
    assert_eq!(subscribe(&mut ws, &[&ok_long]).await, [ok(&ok_long)]);
    // Leaving one makes room.
    let id = ws
        .send("UNSUBSCRIBE", json!({"subscriptions": ["public:0"]}))
        .await;
    assert_eq!(ws.expect("UNSUBSCRIBE_ACK").await["correlation_id"], id);
    assert_eq!(
        subscribe(&mut ws, &["public:127"]).await,
        [ok("public:127")]
    );
}

#[derive(serde::Serialize)]
struct ArticlePublished {
    title: String,
}

impl AppEvent for ArticlePublished {
    const EVENT: &'static str = "article.published";
}

async fn published_messages_reach_subscribers_until_they_unsubscribe(t: Transport) {
    let h = Harness::start(t, mount(protocol(ProtocolConfig::default()))).await;
    let (mut a, _) = h.connect().await;
    let (mut b, _) = h.connect().await;
    let (mut other, _) = h.connect().await;
    subscribe(&mut a, &["public:news"]).await;
    subscribe(&mut b, &["public:news"]).await;
    subscribe(&mut other, &["public:other"]).await;
    let publisher = Publisher::new(h.hub.clone());
    let news = Channel::new("public:news").unwrap();

    let sent = publisher
        .to_channel(&news, Event::new("tick", json!({"n": 1})))
        .await
        .unwrap();
    assert_eq!(sent.local, 2);
    let event_a = a.expect("EVENT").await;
    let event_b = b.expect("EVENT").await;
    // Serialised once: both got the very same message.
    assert_eq!(event_a, event_b);
    assert_eq!(
        event_a["payload"],
        json!({"event": "tick", "data": {"n": 1}, "channel": "public:news"})
    );

    publisher
        .emit(
            &news,
            &ArticlePublished {
                title: "Hello".into(),
            },
        )
        .await
        .unwrap();
    let typed = a.expect("EVENT").await;
    assert_eq!(typed["payload"]["event"], "article.published");
    assert_eq!(typed["payload"]["data"], json!({"title": "Hello"}));
    assert_eq!(typed["payload"]["channel"], "public:news");
    b.expect("EVENT").await;

    publisher
        .to_channel(
            &news,
            Data::new("messages", json!([{"from": "bob", "text": "hi"}])),
        )
        .await
        .unwrap();
    let data = a.expect("DATA").await;
    assert_eq!(data["payload"]["resource"], "messages");
    assert_eq!(data["payload"]["channel"], "public:news");
    b.expect("DATA").await;

    let id = a
        .send(
            "UNSUBSCRIBE",
            json!({"subscriptions": ["public:news", "public:never"]}),
        )
        .await;
    let ack = a.expect("UNSUBSCRIBE_ACK").await;
    assert_eq!(ack["correlation_id"], id);
    assert_eq!(
        ack["payload"]["subscriptions"],
        json!(["public:news", "public:never"])
    );
    let sent = publisher
        .to_channel(&news, Event::new("tick", json!({"n": 2})))
        .await
        .unwrap();
    assert_eq!(sent.local, 1);
    assert_eq!(b.expect("EVENT").await["payload"]["data"]["n"], 2);
    a.expect_silence(100).await;
    other.expect_silence(50).await;
}

async fn the_publisher_reaches_users_connections_and_everyone(t: Transport) {
    let h = Harness::start(t, mount(protocol(ProtocolConfig::default()))).await;
    let mut alice1 = h.login("alice-key").await;
    let mut alice2 = h.login("alice-key").await;
    let mut bob = h.login("bob-key").await;
    let (mut anon, ack) = h.connect().await;
    let publisher = Publisher::new(h.hub.clone());

    let note = Notification::new("Deploy", "v2 is live")
        .level(Level::Success)
        .action("Open", "open_release");
    assert_eq!(publisher.to_user("alice", note).await.unwrap().local, 2);
    for ws in [&mut alice1, &mut alice2] {
        let n = ws.expect("NOTIFICATION").await;
        assert_eq!(
            n["payload"],
            json!({"title": "Deploy", "message": "v2 is live", "level": "success",
                   "actions": [{"label": "Open", "action": "open_release"}]})
        );
    }

    let sent = publisher
        .to_users(["alice", "bob"], Event::new("hello", Value::Null))
        .await
        .unwrap();
    assert_eq!(sent.local, 3);
    for ws in [&mut alice1, &mut alice2, &mut bob] {
        assert_eq!(ws.expect("EVENT").await["payload"]["event"], "hello");
    }

    let sent = publisher
        .to_connection(connection_id(&ack), Event::new("just-you", Value::Null))
        .await
        .unwrap();
    assert_eq!(sent.local, 1);
    assert_eq!(anon.expect("EVENT").await["payload"]["event"], "just-you");

    assert_eq!(
        publisher
            .to_all(Event::new("all", Value::Null))
            .await
            .unwrap()
            .local,
        4
    );
    for ws in [&mut alice1, &mut alice2, &mut bob, &mut anon] {
        assert_eq!(ws.expect("EVENT").await["payload"]["event"], "all");
        ws.expect_silence(30).await;
    }
}
