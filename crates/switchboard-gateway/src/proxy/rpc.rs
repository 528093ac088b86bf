//! The rpc proxy: actions whose names match go to the backend; its
//! `result` becomes `ACTION_RESULT`, its `error` an `ERROR` with its code.

use std::sync::Arc;

use serde_json::Value;
use switchboard::protocol::{ActionContext, ActionError, ApplicationCode, ErrorCode};

use super::client::Backend;
use super::wire::{Answer, Context, RpcError, RpcRequest};

#[derive(Debug)]
pub(crate) struct RpcProxy {
    backend: Arc<Backend>,
    context: Arc<Context>,
}

impl RpcProxy {
    pub(crate) fn new(backend: Arc<Backend>, context: Arc<Context>) -> Self {
        Self { backend, context }
    }

    pub(crate) async fn call(&self, cx: ActionContext, data: Value) -> Result<Value, ActionError> {
        let body = RpcRequest {
            action: cx.action(),
            data,
            caller: self.context.caller(cx.connection()),
        };
        let answer = self
            .backend
            .call(&body)
            .await
            .and_then(Answer::<Value, RpcError>::read);
        match answer {
            Ok(Answer::Result(value)) => Ok(value),
            Ok(Answer::Error(error)) => {
                let mut refusal = ActionError::new(error.message);
                match error.code.map(ApplicationCode::new) {
                    Some(Ok(code)) => refusal = refusal.with_code(code),
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "rpc proxy: the backend's error code is not valid; answering action_failed");
                    }
                    None => {}
                }
                if error.temporary {
                    refusal = refusal.temporary();
                }
                Err(refusal)
            }
            Err(e) => Err(ActionError::new(format!(
                "The application's backend did not answer usably ({})",
                e.kind()
            ))
            .with_code(ErrorCode::BackendUnavailable)
            .temporary()),
        }
    }
}
