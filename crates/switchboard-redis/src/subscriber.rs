//! The subscriber task: one pub/sub connection, subscribed to exactly what
//! local connections need, delivering what other instances publish.
//!
//! On every (re)connection it subscribes to `all`, to this instance's
//! channel, and to every topic [`LocalNode::topics`] lists; from then on it
//! follows topic changes, subscribing when a room or user gains its first
//! local connection and unsubscribing when it loses its last. Messages are
//! delivered inline (the hub never waits on a socket), which keeps each
//! channel's order. Redis itself bounds what queues up for a slow
//! subscriber (`client-output-buffer-limit pubsub`, 32 MB by default, then
//! it drops the connection, and this task reconnects).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use switchboard::broker::{LocalNode, Topic, TopicWatch};

use crate::backoff::Backoff;
use crate::broker::{Shared, stopped};
use crate::stats::bump;
use crate::wire;

/// Channels per SUBSCRIBE or UNSUBSCRIBE command.
const BATCH: usize = 500;

/// Why a session ended.
enum End {
    Stopped,
    Failed(String),
}

pub(crate) async fn run(shared: Arc<Shared>, node: LocalNode, watch: TopicWatch) {
    let mut stop = shared.stop.subscribe();
    let mut backoff = Backoff::new(shared.config.backoff_min, shared.config.backoff_max);
    loop {
        if shared.stopping() {
            return;
        }
        let mut session = Session {
            shared: &shared,
            node: &node,
            watch: &watch,
            subscribed: HashSet::new(),
        };
        let end = tokio::select! {
            end = session.run(&mut backoff) => end,
            () = stopped(&mut stop) => End::Stopped,
        };
        shared.sync_done.send_replace(None);
        shared.counters.subscriptions.store(0, Ordering::Relaxed);
        match end {
            End::Stopped => return,
            End::Failed(why) => {
                let delay = backoff.next_delay();
                shared.failed("subscriber", &why);
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = stopped(&mut stop) => return,
                }
            }
        }
    }
}

struct Session<'a> {
    shared: &'a Shared,
    node: &'a LocalNode,
    watch: &'a TopicWatch,
    subscribed: HashSet<Topic>,
}

impl Session<'_> {
    async fn run(&mut self, backoff: &mut Backoff) -> End {
        let config = &self.shared.config;
        let pubsub = match tokio::time::timeout(
            config.connect_timeout,
            self.shared.client.get_async_pubsub(),
        )
        .await
        {
            Ok(Ok(pubsub)) => pubsub,
            Ok(Err(e)) => return End::Failed(format!("connect: {e}")),
            Err(_) => return End::Failed("connect: timed out".to_owned()),
        };
        let (mut sink, mut stream) = pubsub.split();

        // Everything local connections need now. Changes from here on are
        // marked in `watch` and picked up below; the sync number is read
        // first so that a sync asked for before this point is covered.
        let synced = self.shared.sync_requested.load(Ordering::SeqCst);
        self.watch.clear();
        let names = &self.shared.names;
        let instance = self.node.instance();
        let fixed = vec![names.all(), names.instance(instance)];
        if let Err(why) = self.command(&mut sink, Command::Subscribe, fixed).await {
            return End::Failed(why);
        }
        let topics = self.node.topics();
        if let Err(why) = self.apply(&mut sink, topics, Vec::new()).await {
            return End::Failed(why);
        }
        bump(&self.shared.counters.subscriber_connects, 1);
        backoff.reset();
        self.shared.sync_done.send_replace(Some(synced));
        // Whatever was published while this connection was down is in the
        // streams: the channels with history read it back, in order.
        self.node.resync_streams();
        tracing::debug!(
            subscriptions = self.subscribed.len() + 2,
            "redis subscriber ready"
        );

        let mut ping = tokio::time::interval(config.heartbeat);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        loop {
            tokio::select! {
                message = stream.next() => match message {
                    Some(message) => self.deliver(&message),
                    None => return End::Failed("connection closed".to_owned()),
                },
                () = self.watch.changed() => {
                    if let Err(why) = self.reconcile(&mut sink).await {
                        return End::Failed(why);
                    }
                }
                () = self.shared.sync_wanted.notified() => {
                    if let Err(why) = self.reconcile(&mut sink).await {
                        return End::Failed(why);
                    }
                }
                _ = ping.tick() => {
                    if let Err(why) = self.ping(&mut sink, &mut stream).await {
                        return End::Failed(why);
                    }
                }
            }
        }
    }

    /// Brings subscriptions in line with the topics changed since the last
    /// look, then marks every sync asked for before it as done.
    async fn reconcile(&mut self, sink: &mut PubSubSink) -> Result<(), String> {
        let synced = self.shared.sync_requested.load(Ordering::SeqCst);
        let mut add = Vec::new();
        let mut remove = Vec::new();
        for topic in self.watch.take() {
            let needed = self.node.needs(&topic);
            let subscribed = self.subscribed.contains(&topic);
            if needed && !subscribed {
                add.push(topic);
            } else if !needed && subscribed {
                remove.push(topic);
            }
        }
        self.apply(sink, add, remove).await?;
        self.shared
            .sync_done
            .send_modify(|done| *done = Some(done.map_or(synced, |d| d.max(synced))));
        Ok(())
    }

    async fn apply(
        &mut self,
        sink: &mut PubSubSink,
        add: Vec<Topic>,
        remove: Vec<Topic>,
    ) -> Result<(), String> {
        for chunk in remove.chunks(BATCH) {
            let channels = chunk
                .iter()
                .map(|t| self.shared.names.for_topic(t))
                .collect();
            self.command(sink, Command::Unsubscribe, channels).await?;
            for topic in chunk {
                self.subscribed.remove(topic);
            }
        }
        for chunk in add.chunks(BATCH) {
            let channels = chunk
                .iter()
                .map(|t| self.shared.names.for_topic(t))
                .collect();
            self.command(sink, Command::Subscribe, channels).await?;
            self.subscribed.extend(chunk.iter().cloned());
        }
        self.shared
            .counters
            .subscriptions
            .store(self.subscribed.len() as u64 + 2, Ordering::Relaxed);
        Ok(())
    }

    async fn command(
        &self,
        sink: &mut PubSubSink,
        command: Command,
        channels: Vec<String>,
    ) -> Result<(), String> {
        if channels.is_empty() {
            return Ok(());
        }
        let timeout = self.shared.config.command_timeout;
        let result = match command {
            Command::Subscribe => tokio::time::timeout(timeout, sink.subscribe(channels)).await,
            Command::Unsubscribe => tokio::time::timeout(timeout, sink.unsubscribe(channels)).await,
        };
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("{command:?}: {e}")),
            Err(_) => Err(format!("{command:?}: timed out after {timeout:?}")),
        }
    }

    /// A liveness probe: a stalled Redis (or a half-open connection) shows
    /// up here instead of as silence. Messages that arrive meanwhile are
    /// delivered, not left waiting.
    async fn ping(&self, sink: &mut PubSubSink, stream: &mut PubSubStream) -> Result<(), String> {
        let timeout: Duration = self.shared.config.command_timeout;
        let ping = tokio::time::timeout(timeout, sink.ping::<redis::Value>());
        tokio::pin!(ping);
        loop {
            tokio::select! {
                result = &mut ping => return match result {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(format!("ping: {e}")),
                    Err(_) => Err(format!("ping: no answer within {timeout:?}")),
                },
                message = stream.next() => match message {
                    Some(message) => self.deliver(&message),
                    None => return Err("connection closed".to_owned()),
                },
            }
        }
    }

    fn deliver(&self, message: &redis::Msg) {
        let counters = &self.shared.counters;
        bump(&counters.received, 1);
        let decoded = self
            .shared
            .names
            .parse(message.get_channel_name().as_bytes())
            .and_then(|channel| wire::decode(channel, message.get_payload_bytes()));
        let mut envelope = match decoded {
            Ok(envelope) => envelope,
            Err(e) => {
                bump(&counters.malformed, 1);
                tracing::warn!(channel = message.get_channel_name(), error = %e, "dropped a malformed broker message");
                return;
            }
        };
        if self.node.is_own_echo(&envelope) {
            bump(&counters.own_skipped, 1);
            return;
        }
        wire::to_channel_text(&self.shared.config.structured_channels, &mut envelope);
        let reached = self.node.deliver(&envelope);
        bump(&counters.delivered, reached as u64);
    }
}

#[derive(Debug, Clone, Copy)]
enum Command {
    Subscribe,
    Unsubscribe,
}
