//! The state store seam: an etcd-shaped key-value interface.
//!
//! Every piece of Berth state lives behind [`Store`]. The interface mirrors
//! etcd v3 (versioned keys, one global revision, transactions that compare
//! revisions/versions/values before writing, range reads, watches) so that an
//! etcd backend can be added without touching callers.
//!
//! Semantics every backend must honour (checked by [`conformance`]):
//! - The store has one global `revision`, starting at 0 for an empty store and
//!   incremented by exactly 1 by every successful transaction that writes
//!   anything (a transaction with no effective writes does not bump it).
//! - Each key carries `create_revision` (revision of the write that created
//!   it), `mod_revision` (revision of its last write) and `version` (number of
//!   writes since creation, 1 after creation). A key that does not exist has
//!   version, create_revision and mod_revision 0 for comparisons.
//! - A transaction is atomic and durable before `txn` returns `Ok`.
//! - Ranges are ordered by key bytes (plain byte-wise ordering of the UTF-8 key).
//! - A watch from `start_revision` delivers every change with
//!   `mod_revision >= start_revision` in revision order, then live changes.

use std::pin::Pin;

use async_trait::async_trait;
use futures::Stream;

pub mod conformance;
pub mod memory;

pub use memory::MemoryStore;

/// A store revision. 0 means "nothing written yet".
pub type Revision = i64;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    pub create_revision: Revision,
    pub mod_revision: Revision,
    pub version: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    Equal,
    NotEqual,
    Greater,
    Less,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompareTarget {
    /// Number of writes since creation; 0 for an absent key.
    Version(i64),
    CreateRevision(Revision),
    ModRevision(Revision),
    /// Compares the value bytes; an absent key never matches `Equal`.
    Value(Vec<u8>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compare {
    pub key: String,
    pub op: CompareOp,
    pub target: CompareTarget,
}

impl Compare {
    /// The key does not exist.
    pub fn absent(key: impl Into<String>) -> Self {
        Compare {
            key: key.into(),
            op: CompareOp::Equal,
            target: CompareTarget::Version(0),
        }
    }
    /// The key exists.
    pub fn present(key: impl Into<String>) -> Self {
        Compare {
            key: key.into(),
            op: CompareOp::Greater,
            target: CompareTarget::Version(0),
        }
    }
    /// The key was last written at exactly `revision` (0: the key is absent).
    pub fn mod_revision_is(key: impl Into<String>, revision: Revision) -> Self {
        Compare {
            key: key.into(),
            op: CompareOp::Equal,
            target: CompareTarget::ModRevision(revision),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Put {
        key: String,
        value: Vec<u8>,
    },
    /// Deleting an absent key is not an error and writes nothing.
    Delete {
        key: String,
    },
}

impl Op {
    pub fn put(key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        Op::Put {
            key: key.into(),
            value: value.into(),
        }
    }
    pub fn delete(key: impl Into<String>) -> Self {
        Op::Delete { key: key.into() }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Txn {
    pub compare: Vec<Compare>,
    pub success: Vec<Op>,
    pub failure: Vec<Op>,
}

impl Txn {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn when(mut self, compare: Compare) -> Self {
        self.compare.push(compare);
        self
    }
    pub fn then(mut self, op: Op) -> Self {
        self.success.push(op);
        self
    }
    pub fn otherwise(mut self, op: Op) -> Self {
        self.failure.push(op);
        self
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnResponse {
    /// Whether every comparison held (and so `success` ran).
    pub succeeded: bool,
    /// The store revision after the transaction.
    pub revision: Revision,
}

/// `[key, range_end)`; an empty `range_end` means the single key `key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeRequest {
    pub key: String,
    pub range_end: String,
    /// 0 means no limit.
    pub limit: usize,
}

impl RangeRequest {
    /// Every key that starts with `prefix`.
    pub fn prefix(prefix: impl Into<String>) -> Self {
        let key = prefix.into();
        let range_end = prefix_end(&key);
        RangeRequest {
            key,
            range_end,
            limit: 0,
        }
    }
    /// Keys that start with `prefix` and sort strictly after `after`.
    pub fn prefix_after(prefix: &str, after: &str) -> Self {
        let mut key = after.to_string();
        key.push('\0');
        RangeRequest {
            key,
            range_end: prefix_end(prefix),
            limit: 0,
        }
    }
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }
}

/// The smallest key greater than every key starting with `prefix`.
pub fn prefix_end(prefix: &str) -> String {
    // Keys are UTF-8; '\u{10FFFF}' sorts after every other char byte-wise
    // for the ASCII keys Berth uses. Appending it gives a tight upper bound.
    let mut end = prefix.to_string();
    end.push(char::MAX);
    end
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeResponse {
    pub kvs: Vec<KeyValue>,
    /// More keys matched than `limit` allowed.
    pub more: bool,
    /// The store revision the read was served at.
    pub revision: Revision,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    pub kind: EventKind,
    /// For a delete: the key, an empty value, and `mod_revision` = the
    /// revision of the delete.
    pub kv: KeyValue,
}

pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchEvent, StoreError>> + Send>>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("revision {requested} has been compacted (oldest available is {oldest}); re-read the state and watch from its revision")]
    Compacted {
        requested: Revision,
        oldest: Revision,
    },
    #[error("the watcher fell too far behind and was dropped; re-read the state and watch again")]
    WatchLagged,
    #[error("store backend failed: {0}")]
    Backend(String),
    #[error("store is closed")]
    Closed,
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;
    async fn range(&self, request: RangeRequest) -> Result<RangeResponse>;
    async fn txn(&self, txn: Txn) -> Result<TxnResponse>;
    /// Changes to keys in `[key, range_end)` from `start_revision` on
    /// (0: only changes after the call).
    async fn watch(
        &self,
        key: &str,
        range_end: &str,
        start_revision: Revision,
    ) -> Result<WatchStream>;
    async fn current_revision(&self) -> Result<Revision>;
    /// Forget history older than `revision` (watches from before it fail with
    /// [`StoreError::Compacted`]). Current keys are never affected.
    async fn compact(&self, revision: Revision) -> Result<()>;
}
