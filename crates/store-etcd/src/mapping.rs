//! The pure translation between the store's terms and etcd's: keys under the
//! prefix, revisions, compares and operations. No I/O.

use std::collections::HashMap;

use store::{Compare, CompareOp, CompareTarget, KeyValue, Op, Revision, StoreError};

/// etcd's revision of an empty cluster; the store's revision 0.
pub(crate) const EMPTY_ETCD_REVISION: i64 = 1;

/// The store revision of etcd revision `etcd` (header or key revision).
///
/// etcd starts at 1 and its first write is 2; the store starts at 0 and its
/// first write is 1. Key revisions of 0 (an absent key) stay 0.
pub(crate) fn store_revision(etcd: i64) -> Revision {
    if etcd <= 0 {
        etcd
    } else {
        etcd - EMPTY_ETCD_REVISION
    }
}

/// The etcd revision of store revision `revision`; the inverse of
/// [`store_revision`] above 0, and strictly increasing everywhere, so
/// `Greater`/`Less` compares mean the same on both sides (0 and below, which
/// only absent keys have, map to themselves).
pub(crate) fn etcd_revision(revision: Revision) -> i64 {
    if revision <= 0 {
        revision
    } else {
        revision + EMPTY_ETCD_REVISION
    }
}

/// The store's keys inside etcd: each is stored as `prefix + key`.
#[derive(Clone, Debug)]
pub(crate) struct KeySpace {
    prefix: Vec<u8>,
}

/// An etcd key range, `[key, range_end)` (an empty `range_end`: one key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EtcdRange {
    pub key: Vec<u8>,
    pub range_end: Vec<u8>,
}

impl KeySpace {
    pub fn new(prefix: &str) -> Self {
        KeySpace {
            prefix: prefix.as_bytes().to_vec(),
        }
    }

    pub fn etcd_key(&self, key: &str) -> Vec<u8> {
        let mut etcd_key = Vec::with_capacity(self.prefix.len() + key.len());
        etcd_key.extend_from_slice(&self.prefix);
        etcd_key.extend_from_slice(key.as_bytes());
        etcd_key
    }

    /// The etcd range for the store's `[key, range_end)`; `None` when it holds
    /// no key etcd can store.
    ///
    /// Prefixing both ends keeps the range inside the prefix: every byte
    /// string between two strings that start with the prefix starts with it.
    /// etcd cannot store the empty key, so `[“”, end)` becomes `["\0", end)`;
    /// and etcd reads the end `"\0"` as "no end", which as a store range end
    /// (with an empty prefix) can only hold the empty key.
    pub fn etcd_range(&self, key: &str, range_end: &str) -> Option<EtcdRange> {
        let mut start = self.etcd_key(key);
        if range_end.is_empty() {
            return (!start.is_empty()).then_some(EtcdRange {
                key: start,
                range_end: Vec::new(),
            });
        }
        let end = self.etcd_key(range_end);
        if end.as_slice() <= start.as_slice() || end == b"\0" {
            return None;
        }
        if start.is_empty() {
            start.push(0);
        }
        Some(EtcdRange {
            key: start,
            range_end: end,
        })
    }

    /// The store key of an etcd key read back from inside the prefix.
    pub fn store_key(&self, etcd_key: &[u8]) -> Result<String, StoreError> {
        let key = etcd_key
            .strip_prefix(self.prefix.as_slice())
            .ok_or_else(|| {
                StoreError::Backend(format!(
                    "etcd returned the key {:?} outside the key prefix {:?}",
                    String::from_utf8_lossy(etcd_key),
                    String::from_utf8_lossy(&self.prefix)
                ))
            })?;
        String::from_utf8(key.to_vec()).map_err(|_| {
            StoreError::Backend(format!(
                "the etcd key {:?} is not UTF-8; something other than Berth writes under its key prefix",
                String::from_utf8_lossy(etcd_key)
            ))
        })
    }

    pub fn key_value(&self, kv: &etcd_client::KeyValue) -> Result<KeyValue, StoreError> {
        Ok(KeyValue {
            key: self.store_key(kv.key())?,
            value: kv.value().to_vec(),
            create_revision: store_revision(kv.create_revision()),
            mod_revision: store_revision(kv.mod_revision()),
            version: kv.version(),
        })
    }

    pub fn compare(&self, compare: &Compare) -> etcd_client::Compare {
        let key = self.etcd_key(&compare.key);
        let op = match compare.op {
            CompareOp::Equal => etcd_client::CompareOp::Equal,
            CompareOp::NotEqual => etcd_client::CompareOp::NotEqual,
            CompareOp::Greater => etcd_client::CompareOp::Greater,
            CompareOp::Less => etcd_client::CompareOp::Less,
        };
        match &compare.target {
            CompareTarget::Version(version) => etcd_client::Compare::version(key, op, *version),
            CompareTarget::CreateRevision(revision) => {
                etcd_client::Compare::create_revision(key, op, etcd_revision(*revision))
            }
            CompareTarget::ModRevision(revision) => {
                etcd_client::Compare::mod_revision(key, op, etcd_revision(*revision))
            }
            CompareTarget::Value(value) => etcd_client::Compare::value(key, op, value.clone()),
        }
    }

    /// One branch of a transaction as etcd operations.
    pub fn ops(&self, ops: Vec<Op>) -> Vec<etcd_client::TxnOp> {
        last_op_per_key(ops)
            .into_iter()
            .map(|op| match op {
                Op::Put { key, value } => etcd_client::TxnOp::put(self.etcd_key(&key), value, None),
                Op::Delete { key } => etcd_client::TxnOp::delete(self.etcd_key(&key), None),
            })
            .collect()
    }
}

/// etcd refuses a transaction that writes one key twice ("duplicate key given
/// in txn request"), while the store applies ops in order, later ones
/// winning. Keeping each key's last op gives the same final keys and values.
/// What differs, only for a key written twice in one transaction: its
/// `version` grows by 1 rather than once per op, watchers see one event for
/// it, and a put followed by a delete of a key that did not exist writes
/// nothing (no revision) instead of a put and a delete.
fn last_op_per_key(ops: Vec<Op>) -> Vec<Op> {
    let mut last_index: HashMap<&str, usize> = HashMap::new();
    for (index, op) in ops.iter().enumerate() {
        last_index.insert(op_key(op), index);
    }
    if last_index.len() == ops.len() {
        return ops;
    }
    let keep: Vec<bool> = ops
        .iter()
        .enumerate()
        .map(|(index, op)| last_index[op_key(op)] == index)
        .collect();
    ops.into_iter()
        .zip(keep)
        .filter_map(|(op, keep)| keep.then_some(op))
        .collect()
}

fn op_key(op: &Op) -> &str {
    match op {
        Op::Put { key, .. } | Op::Delete { key } => key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_map_both_ways_and_keep_their_order() {
        let pairs = [(-1, -1), (0, 0), (1, 2), (2, 3), (1_000, 1_001)];
        for (store, etcd) in pairs {
            assert_eq!(etcd_revision(store), etcd, "store {store}");
            if store != 0 {
                assert_eq!(store_revision(etcd), store, "etcd {etcd}");
            }
        }
        // The empty cluster's header revision is the empty store's.
        assert_eq!(store_revision(EMPTY_ETCD_REVISION), 0);
        for store in -3..10 {
            assert!(etcd_revision(store) < etcd_revision(store + 1));
        }
    }

    fn range(prefix: &str, key: &str, range_end: &str) -> Option<(String, String)> {
        KeySpace::new(prefix)
            .etcd_range(key, range_end)
            .map(|range| {
                (
                    String::from_utf8(range.key).expect("utf-8"),
                    String::from_utf8(range.range_end).expect("utf-8"),
                )
            })
    }

    fn owned(key: &str, range_end: &str) -> Option<(String, String)> {
        Some((key.to_string(), range_end.to_string()))
    }

    #[test]
    fn ranges_stay_under_the_prefix() {
        let end = store::prefix_end("");
        assert_eq!(range("/p/", "a", ""), owned("/p/a", ""));
        assert_eq!(range("/p/", "a", "b"), owned("/p/a", "/p/b"));
        assert_eq!(range("/p/", "", &end), owned("/p/", &format!("/p/{end}")));
        assert_eq!(range("", "", &end), owned("\0", &end));
        assert_eq!(range("", "", ""), None, "etcd has no empty key");
        assert_eq!(range("", "a", "\0"), None);
        assert_eq!(range("", "", "\0"), None, "only the empty key");
        assert_eq!(range("/p/", "b", "a"), None, "backwards");
        assert_eq!(range("/p/", "a", "a"), None, "empty");
    }

    #[test]
    fn store_keys_lose_the_prefix() {
        let keys = KeySpace::new("/p/");
        assert_eq!(keys.store_key(b"/p/a/b").expect("inside"), "a/b");
        assert!(keys.store_key(b"/q/a").is_err());
        assert!(keys.store_key(b"/p/\xff").is_err());
    }

    #[test]
    fn a_key_written_twice_keeps_its_last_op() {
        let ops = vec![
            Op::put("a", "1"),
            Op::put("b", "1"),
            Op::delete("gone"),
            Op::put("a", "2"),
            Op::delete("b"),
        ];
        assert_eq!(
            last_op_per_key(ops),
            vec![Op::delete("gone"), Op::put("a", "2"), Op::delete("b")]
        );
        let distinct = vec![Op::put("a", "1"), Op::delete("b")];
        assert_eq!(last_op_per_key(distinct.clone()), distinct);
    }
}
