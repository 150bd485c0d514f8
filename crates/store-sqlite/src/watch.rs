//! Watches: replay from the `history` table, then live events from the
//! writer's broadcast channel.
//!
//! The watch subscribes first and notes the revision `P` published at that
//! moment. Everything up to `P` is committed, so it is read from `history`
//! (in pages, each page in one read transaction that also checks the
//! compaction point); everything after `P` arrives on the channel. Replay
//! stops at `P` and live events start after it: no gaps, no duplicates.

use std::collections::VecDeque;
use std::sync::Arc;

use futures::StreamExt;
use store::memory::key_in_range;
use store::{EventKind, KeyValue, Result, Revision, StoreError, WatchEvent, WatchStream};
use tokio::sync::broadcast;

use crate::reader::ReadPool;
use crate::schema::{read_meta, KIND_DELETE, META_COMPACTED_REVISION};
use crate::writer::Shared;

/// History rows read per replay page.
const REPLAY_PAGE_EVENTS: usize = 512;

struct Cursor {
    reads: ReadPool,
    /// The watched interval as `[key, range_end)`, `range_end` non-empty.
    key: String,
    range_end: String,
    start_revision: Revision,
    /// Where replay continues: after this `(revision, seq)`; `None` once
    /// replay is done.
    replay_after: Option<(Revision, i64)>,
    /// The last revision replay covers.
    replay_through: Revision,
    pending: VecDeque<WatchEvent>,
    receiver: broadcast::Receiver<Arc<[WatchEvent]>>,
}

pub(crate) async fn watch(
    reads: &ReadPool,
    shared: &Shared,
    key: &str,
    range_end: &str,
    start_revision: Revision,
) -> Result<WatchStream> {
    let (receiver, published_revision) = shared.subscribe();
    let start_revision = if start_revision <= 0 {
        published_revision + 1
    } else {
        start_revision
    };
    let range_end = if range_end.is_empty() {
        // The smallest key after `key`: the interval holds `key` alone.
        format!("{key}\0")
    } else {
        range_end.to_string()
    };
    let mut cursor = Cursor {
        reads: reads.clone(),
        key: key.to_string(),
        range_end,
        start_revision,
        replay_after: (start_revision <= published_revision).then_some((start_revision, -1)),
        replay_through: published_revision,
        pending: VecDeque::new(),
        receiver,
    };
    // The first page now, so that a compacted start fails the call itself.
    cursor.replay_page().await?;
    Ok(futures::stream::unfold(Some(cursor), next).boxed())
}

async fn next(cursor: Option<Cursor>) -> Option<(Result<WatchEvent>, Option<Cursor>)> {
    let mut cursor = cursor?;
    loop {
        if let Some(event) = cursor.pending.pop_front() {
            return Some((Ok(event), Some(cursor)));
        }
        if cursor.replay_after.is_some() {
            if let Err(error) = cursor.replay_page().await {
                return Some((Err(error), None));
            }
            continue;
        }
        match cursor.receiver.recv().await {
            Ok(events) => cursor.take_live(&events),
            Err(broadcast::error::RecvError::Lagged(_)) => {
                return Some((Err(StoreError::WatchLagged), None));
            }
            Err(broadcast::error::RecvError::Closed) => return None,
        }
    }
}

impl Cursor {
    fn take_live(&mut self, events: &[WatchEvent]) {
        let first_live_revision = self.start_revision.max(self.replay_through + 1);
        self.pending.extend(
            events
                .iter()
                .filter(|event| {
                    event.kv.mod_revision >= first_live_revision
                        && key_in_range(&event.kv.key, &self.key, &self.range_end)
                })
                .cloned(),
        );
    }

    /// Reads the next page of history into `pending`.
    async fn replay_page(&mut self) -> Result<()> {
        let Some((after_revision, after_seq)) = self.replay_after else {
            return Ok(());
        };
        let key = self.key.clone();
        let range_end = self.range_end.clone();
        let through = self.replay_through;
        let page = self
            .reads
            .read(move |connection| {
                let transaction = connection.transaction()?;
                // Rows below the compaction point are gone; the rows this
                // page needs are at or after `after_revision`.
                let compacted_revision = read_meta(&transaction, META_COMPACTED_REVISION)?;
                if compacted_revision > after_revision {
                    return Ok(Err(compacted_revision));
                }
                let mut statement = transaction.prepare_cached(
                    "SELECT revision, seq, key, kind, value, create_revision, version
                     FROM history
                     WHERE (revision, seq) > (?1, ?2) AND revision <= ?3
                       AND key >= ?4 AND key < ?5
                     ORDER BY revision, seq
                     LIMIT ?6",
                )?;
                let rows = statement
                    .query_map(
                        rusqlite::params![
                            after_revision,
                            after_seq,
                            through,
                            key,
                            range_end,
                            REPLAY_PAGE_EVENTS as i64
                        ],
                        |row| {
                            let revision: Revision = row.get(0)?;
                            let seq: i64 = row.get(1)?;
                            let kind: i64 = row.get(3)?;
                            let event = WatchEvent {
                                kind: if kind == KIND_DELETE {
                                    EventKind::Delete
                                } else {
                                    EventKind::Put
                                },
                                kv: KeyValue {
                                    key: row.get(2)?,
                                    value: row.get(4)?,
                                    create_revision: row.get(5)?,
                                    mod_revision: revision,
                                    version: row.get(6)?,
                                },
                            };
                            Ok(((revision, seq), event))
                        },
                    )?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(Ok(rows))
            })
            .await?;
        let rows = page.map_err(|oldest| StoreError::Compacted {
            requested: self.start_revision,
            oldest,
        })?;
        self.replay_after = if rows.len() < REPLAY_PAGE_EVENTS {
            None
        } else {
            rows.last().map(|(position, _)| *position)
        };
        self.pending
            .extend(rows.into_iter().map(|(_, event)| event));
        Ok(())
    }
}
