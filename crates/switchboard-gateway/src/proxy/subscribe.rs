//! The subscribe proxy: the backend allows or refuses channels matching the
//! configured patterns, and may attach data to `SUBSCRIBE_SUCCESS`.

use std::sync::Arc;

use switchboard::protocol::{ChannelAuthorizer, ChannelDecision, ChannelRequest};

use super::client::Backend;
use super::wire::{Answer, Context, Refusal, SubscribeRequest, SubscribeResult};

#[derive(Debug)]
pub(crate) struct SubscribeProxy {
    backend: Arc<Backend>,
    context: Arc<Context>,
}

impl SubscribeProxy {
    pub(crate) fn new(backend: Arc<Backend>, context: Arc<Context>) -> Self {
        Self { backend, context }
    }

    async fn decide(&self, request: &ChannelRequest<'_>) -> ChannelDecision {
        let body = SubscribeRequest {
            channel: request.channel().as_str(),
            caller: self.context.caller(request.connection()),
        };
        let answer = self
            .backend
            .call(&body)
            .await
            .and_then(Answer::<Option<SubscribeResult>, Refusal>::read);
        match answer {
            Ok(Answer::Result(result)) => match result.and_then(|r| r.data) {
                Some(data) => ChannelDecision::allow_with(data),
                None => ChannelDecision::allow(),
            },
            Ok(Answer::Error(refusal)) => {
                ChannelDecision::deny_because(refusal.message.chars().take(200).collect::<String>())
            }
            Err(e) => ChannelDecision::unavailable(format!("backend: {}", e.kind())),
        }
    }
}

/// One proxy shared by the rules of every configured pattern.
#[derive(Debug, Clone)]
pub(crate) struct Shared(pub(crate) Arc<SubscribeProxy>);

impl ChannelAuthorizer for Shared {
    async fn authorize(&self, request: &ChannelRequest<'_>) -> ChannelDecision {
        self.0.decide(request).await
    }
}
