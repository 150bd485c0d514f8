//! Typed JSON records on top of the store, with compare-and-swap writes.

use serde::de::DeserializeOwned;
use serde::Serialize;
use store::{Compare, Op, RangeRequest, Revision, Store, Txn};

use crate::ApiError;

/// A decoded record and the revision it was last written at (for CAS).
pub struct Versioned<T> {
    pub value: T,
    pub mod_revision: Revision,
}

pub async fn get<T: DeserializeOwned>(
    store: &dyn Store,
    key: &str,
) -> Result<Option<Versioned<T>>, ApiError> {
    let Some(kv) = store.get(key).await? else {
        return Ok(None);
    };
    Ok(Some(Versioned {
        value: decode(&kv.key, &kv.value)?,
        mod_revision: kv.mod_revision,
    }))
}

pub fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|err| ApiError::server(format!("stored record {key} is unreadable: {err}")))
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records always serialize")
}

/// Every record under `prefix`, in key order.
pub async fn list<T: DeserializeOwned>(
    store: &dyn Store,
    prefix: &str,
) -> Result<Vec<(String, T)>, ApiError> {
    let response = store.range(RangeRequest::prefix(prefix)).await?;
    response
        .kvs
        .into_iter()
        .map(|kv| {
            let value = decode(&kv.key, &kv.value)?;
            Ok((kv.key, value))
        })
        .collect()
}

/// Every record under `prefix`, in key order, with the revision each was
/// last written at (for compare-and-swap).
pub async fn list_versioned<T: DeserializeOwned>(
    store: &dyn Store,
    prefix: &str,
) -> Result<Vec<Versioned<T>>, ApiError> {
    let response = store.range(RangeRequest::prefix(prefix)).await?;
    response
        .kvs
        .into_iter()
        .map(|kv| {
            Ok(Versioned {
                value: decode(&kv.key, &kv.value)?,
                mod_revision: kv.mod_revision,
            })
        })
        .collect()
}

/// A write that must not clobber a concurrent one: each `(key, expected
/// mod_revision)` must still hold (0 = key absent).
pub struct Write {
    txn: Txn,
}

impl Write {
    pub fn new() -> Self {
        Write { txn: Txn::new() }
    }
    pub fn expect(mut self, key: &str, mod_revision: Revision) -> Self {
        self.txn = self.txn.when(Compare::mod_revision_is(key, mod_revision));
        self
    }
    pub fn put<T: Serialize>(mut self, key: &str, value: &T) -> Self {
        self.txn = self.txn.then(Op::put(key, encode(value)));
        self
    }
    /// `Ok(true)` if written, `Ok(false)` if a comparison failed (retry).
    pub async fn commit(self, store: &dyn Store) -> Result<bool, ApiError> {
        Ok(store.txn(self.txn).await?.succeeded)
    }
}

impl Default for Write {
    fn default() -> Self {
        Self::new()
    }
}

/// How often a read-modify-write retries after losing a race before giving up.
pub const MAX_CAS_ATTEMPTS: usize = 64;

pub fn too_much_contention(what: &str) -> ApiError {
    ApiError::server(format!(
        "Too many concurrent updates to {what}; retry the request."
    ))
}
