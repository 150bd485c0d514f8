//! [`MemoryLogStore`]: the fake, for fast deterministic tests.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::{
    check_stream_id, Append, Appended, Direction, LogStore, LogStoreError, Page, Position,
    ProducerCursor, Read, Scan, ScanPage, StoredEvent, StreamId, StreamStats, EVENT_OVERHEAD_BYTES,
};

#[derive(Default)]
struct Stream {
    events: BTreeMap<Position, StoredEvent>,
    next_sequence: u64,
    last_ingestion_time_ms: Option<i64>,
    producer_cursor: Option<ProducerCursor>,
}

/// Everything in one mutex-guarded map.
#[derive(Default)]
pub struct MemoryLogStore {
    streams: Mutex<BTreeMap<String, Stream>>,
}

impl MemoryLogStore {
    pub fn new() -> Self {
        Self::default()
    }
}

fn in_range(position: &Position, start_ms: Option<i64>, end_ms: Option<i64>) -> bool {
    start_ms.is_none_or(|start| position.timestamp_ms >= start)
        && end_ms.is_none_or(|end| position.timestamp_ms < end)
}

impl LogStore for MemoryLogStore {
    fn append(&self, stream: &StreamId, append: Append<'_>) -> Result<Appended, LogStoreError> {
        check_stream_id(stream)?;
        let mut streams = self.streams.lock().expect("memory log store lock");
        if append.events.is_empty() && append.producer_cursor.is_none() {
            // Nothing to store: no stream comes into being.
            return Ok(Appended {
                written: true,
                producer_cursor: streams.get(stream).and_then(|s| s.producer_cursor),
            });
        }
        let entry = streams.entry(stream.to_string()).or_default();
        if let (Some(new), Some(stored)) = (append.producer_cursor, entry.producer_cursor) {
            if new <= stored {
                return Ok(Appended {
                    written: false,
                    producer_cursor: Some(stored),
                });
            }
        }
        for event in append.events {
            let position = Position {
                timestamp_ms: event.timestamp_ms,
                sequence: entry.next_sequence,
            };
            entry.next_sequence += 1;
            entry.events.insert(
                position,
                StoredEvent {
                    position,
                    ingestion_time_ms: append.ingestion_time_ms,
                    message: event.message.clone(),
                },
            );
        }
        if !append.events.is_empty() {
            entry.last_ingestion_time_ms = Some(append.ingestion_time_ms);
        }
        if append.producer_cursor.is_some() {
            entry.producer_cursor = append.producer_cursor;
        }
        Ok(Appended {
            written: true,
            producer_cursor: entry.producer_cursor,
        })
    }

    fn stats(&self, stream: &StreamId) -> Result<StreamStats, LogStoreError> {
        let streams = self.streams.lock().expect("memory log store lock");
        let Some(entry) = streams.get(stream) else {
            return Ok(StreamStats::default());
        };
        Ok(StreamStats {
            first_event_timestamp_ms: entry.events.keys().next().map(|p| p.timestamp_ms),
            last_event_timestamp_ms: entry.events.keys().next_back().map(|p| p.timestamp_ms),
            last_ingestion_time_ms: entry.last_ingestion_time_ms,
            event_count: entry.events.len() as u64,
            stored_bytes: entry
                .events
                .values()
                .map(|e| e.message.len() as u64 + EVENT_OVERHEAD_BYTES)
                .sum(),
            producer_cursor: entry.producer_cursor,
        })
    }

    fn read(&self, stream: &StreamId, read: Read) -> Result<Page, LogStoreError> {
        let streams = self.streams.lock().expect("memory log store lock");
        let Some(entry) = streams.get(stream) else {
            return Ok(Page::default());
        };
        let candidates: Box<dyn Iterator<Item = &StoredEvent>> = match read.direction {
            Direction::Forward => Box::new(
                entry
                    .events
                    .values()
                    .filter(|e| read.after.is_none_or(|after| e.position > after)),
            ),
            Direction::Backward => Box::new(
                entry
                    .events
                    .values()
                    .rev()
                    .filter(|e| read.after.is_none_or(|after| e.position < after)),
            ),
        };
        let mut page = Page::default();
        let mut bytes = 0usize;
        for event in candidates.filter(|e| in_range(&e.position, read.start_ms, read.end_ms)) {
            if page.events.len() >= read.limit_events
                || (!page.events.is_empty() && bytes + event.message.len() > read.limit_bytes)
            {
                page.more = true;
                break;
            }
            bytes += event.message.len();
            page.events.push(event.clone());
        }
        Ok(page)
    }

    fn scan(&self, scan: Scan<'_>) -> Result<ScanPage, LogStoreError> {
        let streams = self.streams.lock().expect("memory log store lock");
        let mut all: Vec<(Position, usize, &StoredEvent)> = Vec::new();
        for (index, id) in scan.streams.iter().enumerate() {
            if let Some(entry) = streams.get(*id) {
                all.extend(
                    entry
                        .events
                        .values()
                        .filter(|e| in_range(&e.position, scan.start_ms, scan.end_ms))
                        .map(|e| (e.position, index, e)),
                );
            }
        }
        all.sort_by_key(|(position, index, _)| (*position, *index));
        let mut page = ScanPage::default();
        let mut bytes = 0usize;
        let mut last_consumed = None;
        let candidates = all.into_iter().filter(|(position, index, _)| {
            scan.after
                .is_none_or(|(after_index, after)| (*position, *index) > (after, after_index))
        });
        for (position, index, event) in candidates {
            if page.events.len() >= scan.limit_events {
                page.resume_after = last_consumed;
                return Ok(page);
            }
            if (scan.matches)(&event.message) {
                if !page.events.is_empty() && bytes + event.message.len() > scan.limit_bytes {
                    page.resume_after = last_consumed;
                    return Ok(page);
                }
                bytes += event.message.len();
                page.events.push((index, event.clone()));
            }
            last_consumed = Some((index, position));
            page.examined += 1;
        }
        Ok(page)
    }

    fn delete_stream(&self, stream: &StreamId) -> Result<(), LogStoreError> {
        self.streams
            .lock()
            .expect("memory log store lock")
            .remove(stream);
        Ok(())
    }

    fn expire(&self, stream: &StreamId, before_ms: i64) -> Result<u64, LogStoreError> {
        let mut streams = self.streams.lock().expect("memory log store lock");
        let Some(entry) = streams.get_mut(stream) else {
            return Ok(0);
        };
        let kept = entry.events.split_off(&Position {
            timestamp_ms: before_ms,
            sequence: 0,
        });
        let freed: u64 = entry
            .events
            .values()
            .map(|e| e.message.len() as u64 + EVENT_OVERHEAD_BYTES)
            .sum();
        entry.events = kept;
        Ok(freed)
    }

    fn streams(&self) -> Result<Vec<String>, LogStoreError> {
        Ok(self
            .streams
            .lock()
            .expect("memory log store lock")
            .keys()
            .cloned()
            .collect())
    }

    fn disk_bytes(&self) -> Result<u64, LogStoreError> {
        Ok(0)
    }
}
