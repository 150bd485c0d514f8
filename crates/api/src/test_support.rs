//! The harness the operation tests share: an `Ecs` on the in-memory store,
//! driven through the same JSON entry point the HTTP shell uses.

use std::sync::Arc;

use serde_json::Value;

use crate::{ApiError, Ecs, RequestContext};

pub fn ctx(region: &str) -> RequestContext {
    RequestContext {
        region: region.to_string(),
        account_id: "000000000000".into(),
        principal_arn: "arn:aws:iam::000000000000:root".into(),
        access_key_id: String::new(),
        request_id: "test".into(),
        now_ms: 1_700_000_000_000,
    }
}

pub struct Harness {
    pub ecs: Ecs,
}

impl Harness {
    pub fn new() -> Self {
        Harness {
            ecs: Ecs::new(Arc::new(store::MemoryStore::new())),
        }
    }
    pub async fn call_in(&self, region: &str, op: &str, body: Value) -> Result<Value, ApiError> {
        let bytes = self
            .ecs
            .handle(&ctx(region), op, body.to_string().as_bytes())
            .await?;
        Ok(serde_json::from_slice(&bytes).unwrap())
    }
    pub async fn call(&self, op: &str, body: Value) -> Result<Value, ApiError> {
        self.call_in("us-east-1", op, body).await
    }
    pub async fn ok(&self, op: &str, body: Value) -> Value {
        self.call(op, body.clone())
            .await
            .unwrap_or_else(|e| panic!("{op} {body}: {e}"))
    }
    pub async fn err(&self, op: &str, body: Value) -> ApiError {
        match self.call(op, body.clone()).await {
            Ok(v) => panic!("{op} {body} succeeded: {v}"),
            Err(e) => e,
        }
    }
}
