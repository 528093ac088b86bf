//! The WebSocket endpoints the gateway serves: what each protocol does, the
//! built-in set, and mounting them on the app.

use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;
use serde_json::{Value, json};
use switchboard::broker::stream::Want;
use switchboard::broker::{Cluster, Payload, Target};
use switchboard::protocol::wire::Channel;
use switchboard::protocol::wire::Message as Wire;
use switchboard::protocol::wire::payload::Event;
use switchboard::protocol::{
    ActionContext, ActionError, ChannelPattern, ChannelRules, Connection, Envelope, ErrorCode,
    Inbound, ProtocolHooks, StructuredProtocol,
};
use switchboard::{
    CloseCode, Error, Message, Outgoing, Room, RouteConfig, Security, Switchboard, WebSocketUpgrade,
};

use crate::config::{EndpointKind, EndpointPlan, StructuredPlan};
use crate::proxy::{self, ProxyMetrics};

/// The room `/ws/broadcast` connections share.
pub(crate) const BROADCAST_ROOM: &str = "broadcast";

/// The action clients publish to a channel with, and the event it sends.
pub(crate) const CHAT_ACTION: &str = "chat.send";
pub(crate) const CHAT_EVENT: &str = "chat.message";

/// Longest display name `chat.send` passes on.
const MAX_NAME: usize = 64;

/// The endpoints served when the config declares none.
pub(crate) fn builtin(defaults: &RouteConfig) -> Vec<EndpointPlan> {
    vec![
        EndpointPlan {
            path: "/ws".to_owned(),
            kind: EndpointKind::Structured(Box::new(StructuredPlan::builtin())),
            route: defaults.clone(),
        },
        EndpointPlan {
            path: "/ws/echo".to_owned(),
            kind: EndpointKind::Echo,
            route: defaults.clone(),
        },
        EndpointPlan {
            path: "/ws/broadcast".to_owned(),
            kind: EndpointKind::Broadcast {
                room: BROADCAST_ROOM.to_owned(),
            },
            route: defaults.clone(),
        },
    ]
}

/// Adds every endpoint to `app`. Structured endpoints send through
/// `cluster`; broadcast endpoints do too when `distributed` (a network
/// broker joins instances), and straight through the hub otherwise.
/// `server_security` is `[security]`: a structured endpoint without its own
/// uses it for `AUTHENTICATE` as well as the handshake. Structured
/// endpoints with a backend proxy get it installed (its notification
/// queues go into `running`).
pub(crate) fn mount(
    mut app: Switchboard,
    endpoints: Vec<EndpointPlan>,
    cluster: &Cluster,
    distributed: bool,
    server_security: &Security,
    proxy_metrics: &std::sync::Arc<ProxyMetrics>,
    running: &mut proxy::Running,
) -> Switchboard {
    for endpoint in endpoints {
        let EndpointPlan { path, kind, route } = endpoint;
        app = match kind {
            EndpointKind::Echo => app.route_with(&path, route, echo),
            EndpointKind::Broadcast { room } => {
                let room = Room::from(room);
                // A room with history always goes through the cluster (its
                // stream), even on the in-memory broker.
                let cluster =
                    (distributed || cluster.keeps_history(&room)).then(|| cluster.clone());
                app.route_with(&path, route, move |ws: WebSocketUpgrade| {
                    broadcast(ws, room.clone(), cluster.clone())
                })
            }
            EndpointKind::Structured(plan) => {
                let mut route = match route.security {
                    Some(_) => route,
                    None => route.with_security(server_security.clone()),
                };
                let proxies = plan.proxy.clone();
                let rules = plan.rules.clone();
                let mut protocol = structured(*plan, cluster);
                if let Some(proxies) = &proxies {
                    let security = route.security.clone().unwrap_or_default();
                    let mut installer = proxy::Installer {
                        cluster,
                        distributed,
                        metrics: proxy_metrics,
                        running,
                    };
                    let (installed, security) =
                        installer.install(proxies, &path, protocol, &rules, security);
                    protocol = installed;
                    route = route.with_security(security);
                }
                protocol.route(app, &path, route)
            }
        };
    }
    app
}

/// The structured protocol (docs/protocol.md), with `chat.send` when the
/// endpoint lets clients publish.
fn structured(plan: StructuredPlan, cluster: &Cluster) -> StructuredProtocol {
    let StructuredPlan {
        config,
        rules,
        chat,
        chat_rate,
        proxy: _,
    } = plan;
    let protocol = StructuredProtocol::new(config)
        .channels(rules.clone())
        .cluster(cluster.clone());
    if chat.is_empty() {
        return protocol;
    }
    protocol
        .hooks(ChatRate {
            per_second: chat_rate.0,
            burst: f64::from(chat_rate.1),
        })
        .action(CHAT_ACTION, move |cx: ActionContext, send: ChatSend| {
            chat_send(cx, send, rules.clone(), chat.clone())
        })
}

/// `chat.send` per connection: a token bucket in the connection's state;
/// past it the message answers `ERROR` `rate_limited` (and is not sent).
#[derive(Debug, Clone, Copy)]
struct ChatRate {
    per_second: f64,
    burst: f64,
}

/// One connection's `chat.send` bucket: tokens, and when it was last filled.
#[derive(Debug, Clone)]
struct ChatBucket(Arc<parking_lot::Mutex<(f64, Instant)>>);

impl ProtocolHooks for ChatRate {
    fn on_envelope(&self, conn: &Connection, envelope: &Envelope) -> Inbound {
        let Wire::Action(action) = &envelope.message else {
            return Inbound::Accept;
        };
        if action.action != CHAT_ACTION {
            return Inbound::Accept;
        }
        let hub = conn.hub();
        let bucket = hub.state::<ChatBucket>(conn.id()).unwrap_or_else(|| {
            let bucket = ChatBucket(Arc::new(parking_lot::Mutex::new((
                self.burst,
                Instant::now(),
            ))));
            hub.set_state(conn.id(), bucket.clone());
            bucket
        });
        let mut state = bucket.0.lock();
        let now = Instant::now();
        let (tokens, last) = *state;
        let tokens =
            (tokens + now.duration_since(last).as_secs_f64() * self.per_second).min(self.burst);
        if tokens < 1.0 {
            *state = (tokens, now);
            let wait = (1.0 - tokens) / self.per_second;
            return Inbound::Reject(
                ErrorCode::RateLimited,
                format!(
                    "chat.send: at most {} per second (bursts of {}); wait {wait:.1} s",
                    self.per_second, self.burst
                ),
            );
        }
        *state = (tokens - 1.0, now);
        Inbound::Accept
    }
}

/// `chat.send`'s data, as in docs/protocol.md's example.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChatSend {
    room: String,
    text: String,
    /// A display name: taken from an anonymous sender (and labelled
    /// anonymous); an authenticated sender's name comes from its identity.
    #[serde(default)]
    name: Option<String>,
}

/// Publishes `EVENT chat.message {text, user, name, anonymous}` to a channel the
/// sender may subscribe to and that `chat_channels` allows; answers
/// `{"delivered": <local recipients>}`.
async fn chat_send(
    cx: ActionContext,
    send: ChatSend,
    rules: ChannelRules,
    allowed: Vec<ChannelPattern>,
) -> Result<Value, ActionError> {
    let channel = Channel::new(&send.room).map_err(|e| ActionError::new(format!("room: {e}")))?;
    let permitted = allowed.iter().any(|p| p.is_match(channel.as_str()))
        && rules.authorize(cx.connection(), &channel).await;
    if !permitted {
        return Err(ActionError::new(format!(
            "not allowed to send to {}",
            channel.as_str()
        )));
    }
    if send.text.is_empty() {
        return Err(ActionError::new("text: must not be empty"));
    }
    // An authenticated sender is who its credentials say: its token's
    // `name` claim, else its user id. Only an anonymous sender names itself,
    // and the message says it is anonymous.
    let (name, anonymous) = match cx.identity() {
        Some(identity) => {
            let claimed = identity
                .claims()
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_owned);
            (
                claimed.unwrap_or_else(|| identity.user_id().to_string()),
                false,
            )
        }
        None => (send.name.unwrap_or_else(|| "anonymous".to_owned()), true),
    };
    let name: String = name.chars().take(MAX_NAME).collect();
    let event = Event::new(
        CHAT_EVENT,
        json!({ "text": send.text, "user": cx.user_id(), "name": name, "anonymous": anonymous }),
    );
    let published = cx
        .publisher()
        .to_channel(&channel, event)
        .await
        .map_err(|e| ActionError::new(format!("not delivered to other instances: {e}")))?;
    Ok(json!({ "delivered": published.local }))
}

/// Sends every text and binary message back unchanged. Conformance runs and
/// benchmarks use this endpoint (`/ws/echo`): keep it stable.
async fn echo(ws: WebSocketUpgrade) -> Result<(), Error> {
    let mut ws = ws.accept().await?;
    while let Some(message) = ws.recv().await? {
        ws.send(message).await?;
    }
    Ok(())
}

/// Every message a client sends goes to every client in the room, the
/// sender included: encoded once, shared by all (benchmarks use it). With a
/// network broker it reaches the room's members on every instance.
async fn broadcast(
    ws: WebSocketUpgrade,
    room: Room,
    cluster: Option<Cluster>,
) -> Result<(), Error> {
    let mut ws = ws.accept().await?;
    match &cluster {
        // In offset order, each once, through the room's stream.
        Some(cluster) if cluster.keeps_history(&room) => {
            if let Err(e) = cluster
                .join_stream(ws.id(), &room, Want::Live, |_| None)
                .await
            {
                return Err(Error::close(
                    CloseCode::TryAgainLater,
                    format!("history unavailable: {e}"),
                ));
            }
        }
        _ => {
            ws.join(room.clone());
        }
    }
    while let Some(message) = ws.recv().await? {
        match &cluster {
            None => {
                let outgoing = match message {
                    Message::Text(text) => Outgoing::text(text),
                    Message::Binary(data) => Outgoing::binary(data),
                };
                ws.hub().send_to_room(room.clone(), &outgoing, None);
            }
            Some(cluster) => {
                let payload = match message {
                    Message::Text(text) => Payload::Text(text),
                    Message::Binary(data) => Payload::Binary(data),
                };
                if let Err(e) = cluster.publish(Target::Room(room.clone()), payload).await {
                    // Local members got it; other instances did not.
                    tracing::warn!(error = %e, "broadcast not forwarded to other instances");
                }
            }
        }
    }
    Ok(())
}
