//! The retention pass: drops the segments of expired events (reads already
//! hide them) and the events of streams whose records are gone (a
//! DeleteLogGroup or DeleteLogStream that crashed between its two steps),
//! and the records of Logs Insights queries older than the 7 days AWS keeps
//! query results.
//! `berth` runs it periodically.

use std::collections::HashSet;

use api::records;
use api::ApiError;

use crate::groups::retention_cutoff_ms;
use crate::queries::{QueryRecord, QUERY_RECORD_RETENTION_MS};
use crate::records::{LogGroupRecord, LogStreamRecord, ROOT_PREFIX};
use crate::Logs;

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionPass {
    pub streams_expired: usize,
    pub orphans_deleted: usize,
    pub bytes_freed: u64,
    pub queries_deleted: usize,
}

impl Logs {
    /// One pass at `now_ms` over every region.
    pub async fn enforce_retention(&self, now_ms: i64) -> Result<RetentionPass, ApiError> {
        // The log store's streams are listed before the records are read: a
        // stream's record is written before its first event, so an id listed
        // here whose record the read below does not find was deleted.
        let stored = self.with_events(|events| events.streams()).await?;
        let all = self
            .store
            .range(store::RangeRequest::prefix(ROOT_PREFIX))
            .await?;
        let mut retention = std::collections::HashMap::new();
        let mut streams = Vec::new();
        let mut expired_queries = Vec::new();
        for kv in &all.kvs {
            // /logs/<region>/<kind>/...
            let mut parts = kv.key[ROOT_PREFIX.len()..].splitn(3, '/');
            let (Some(region), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            match kind {
                "groups" => {
                    let group: LogGroupRecord = records::decode(&kv.key, &kv.value)?;
                    retention.insert((region.to_string(), group.name), group.retention_in_days);
                }
                "streams" => {
                    let stream: LogStreamRecord = records::decode(&kv.key, &kv.value)?;
                    streams.push((region.to_string(), stream));
                }
                "queries" => {
                    let query: QueryRecord = records::decode(&kv.key, &kv.value)?;
                    if query.create_time_ms < now_ms - QUERY_RECORD_RETENTION_MS {
                        expired_queries.push((kv.key.clone(), query.query_id, kv.mod_revision));
                    }
                }
                _ => {}
            }
        }
        let mut expiring = Vec::new();
        let mut known: HashSet<String> = HashSet::new();
        for (region, stream) in streams {
            known.insert(stream.stream_id.clone());
            let days = retention
                .get(&(region, stream.group.clone()))
                .copied()
                .flatten();
            if let Some(cutoff) = retention_cutoff_ms(days, now_ms) {
                expiring.push((stream.stream_id, cutoff));
            }
        }
        let queries_deleted = self.expire_queries(expired_queries).await?;
        self.with_events(move |events| {
            let mut pass = RetentionPass {
                queries_deleted,
                ..Default::default()
            };
            for (id, cutoff) in &expiring {
                let freed = events.expire(id, *cutoff)?;
                if freed > 0 {
                    pass.streams_expired += 1;
                    pass.bytes_freed += freed;
                }
            }
            for id in stored {
                if !known.contains(&id) {
                    events.delete_stream(&id)?;
                    pass.orphans_deleted += 1;
                }
            }
            Ok(pass)
        })
        .await
    }
}
