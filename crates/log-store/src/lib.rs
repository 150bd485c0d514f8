//! The log event seam: where CloudWatch Logs keeps its events, apart from
//! the orchestration store.
//!
//! Log groups and log streams are records in the orchestration store (the
//! `logs` crate); their events live here, keyed by a [`StreamId`] that is
//! unique to one incarnation of a stream (a stream deleted and created again
//! under the same name gets a new id, so data a crash left behind can never
//! reappear). Every stream is an ordered sequence of events sorted by
//! [`Position`] (timestamp, then the order of ingestion).
//!
//! Backends: [`MemoryLogStore`] (the fake, for fast tests) and
//! [`segments::SegmentLogStore`] (files on disk: per stream, append-only
//! segments, each sorted by timestamp). Both pass [`conformance`].
//! [`figures`] measures the disk backend for `berth bench`.
//!
//! The trait is synchronous: backends do blocking file I/O, and callers on
//! an async runtime call it from a blocking thread.
//!
//! **Architecture Invariant:** [`LogStore::append`] returns only once the
//! events are durable (for a disk backend, after `fsync`); an append whose
//! [`ProducerCursor`] is not beyond the stream's stored cursor writes nothing
//! (a producer resending after a lost acknowledgement creates no duplicates).

pub mod conformance;
pub mod figures;
mod memory;
pub mod segments;

pub use memory::MemoryLogStore;

/// One stream incarnation's key: printable ASCII, at most 64 bytes, no `/`.
pub type StreamId = str;

/// Where an event sits in its stream: events are ordered by timestamp, then
/// by `sequence`, the stream's ingestion counter (unique within a stream,
/// increasing with every stored event).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub timestamp_ms: i64,
    pub sequence: u64,
}

/// An event to store. `message` is what the caller sent (UTF-8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    pub timestamp_ms: i64,
    pub message: String,
}

/// A stored event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    pub position: Position,
    pub ingestion_time_ms: i64,
    pub message: String,
}

/// A producer's progress marker (the agent's position in a container's
/// output). Opaque and totally ordered; an append carrying one stores it
/// with its events, atomically.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProducerCursor(pub u128);

/// One append: `events` are in chronological order (the caller validated
/// them; a backend may rely on it). An append is stored whole or not at all.
/// One with no events and no cursor stores nothing (and creates no stream).
#[derive(Clone, Debug)]
pub struct Append<'a> {
    pub events: &'a [NewEvent],
    pub ingestion_time_ms: i64,
    /// When set, the append is written only if the cursor is greater than
    /// the stream's stored cursor, and then becomes the stored cursor.
    pub producer_cursor: Option<ProducerCursor>,
}

/// What [`LogStore::append`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// False when the producer cursor showed the events were already stored.
    pub written: bool,
    /// The stream's stored cursor after the append.
    pub producer_cursor: Option<ProducerCursor>,
}

/// What a stream holds (what DescribeLogStreams reports).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamStats {
    pub first_event_timestamp_ms: Option<i64>,
    pub last_event_timestamp_ms: Option<i64>,
    pub last_ingestion_time_ms: Option<i64>,
    pub event_count: u64,
    /// The events' message bytes plus 26 per event (CloudWatch's measure).
    pub stored_bytes: u64,
    pub producer_cursor: Option<ProducerCursor>,
}

/// Which way a read walks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Oldest first, starting after `after` (or at the range's start).
    Forward,
    /// Newest first, starting before `after` (or at the range's end).
    Backward,
}

/// A read of events in `[start_ms, end_ms)` (either bound may be open).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Read {
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub direction: Direction,
    /// Exclusive: forward reads return events after it, backward reads
    /// events before it.
    pub after: Option<Position>,
    /// Stop after this many events (at least 1)...
    pub limit_events: usize,
    /// ...or before an event that would take the page's messages past this
    /// many bytes (the first event is returned whatever its size, so a page
    /// is empty only when no event is in range).
    pub limit_bytes: usize,
}

/// One page of a read, in the read's direction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Page {
    pub events: Vec<StoredEvent>,
    /// True when events remain in the range past the last one returned.
    pub more: bool,
}

/// A scan across several streams (FilterLogEvents): events in
/// `[start_ms, end_ms)` whose message `matches`, interleaved by position
/// (then by the stream's index in `streams`), oldest first.
pub struct Scan<'a> {
    pub streams: &'a [&'a StreamId],
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    /// Resume after this (stream index, position), exclusive: a
    /// [`ScanPage::resume_after`]. Events at `after`'s position in streams
    /// of a higher index are still ahead.
    pub after: Option<(usize, Position)>,
    pub matches: &'a (dyn Fn(&str) -> bool + Sync),
    /// Stop after this many matching events (at least 1)...
    pub limit_events: usize,
    /// ...or before a matching event that would take the page's messages
    /// past this many bytes (the first match is returned whatever its size).
    pub limit_bytes: usize,
}

/// One page of a scan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanPage {
    /// (index into `Scan::streams`, event).
    pub events: Vec<(usize, StoredEvent)>,
    /// Set when the page stopped on a limit with candidates left: the last
    /// candidate this page consumed (returned, or rejected by `matches`);
    /// pass it as the next scan's `after`. `None`: the scan is complete.
    pub resume_after: Option<(usize, Position)>,
    /// Candidates this page consumed, matching or not (over all the pages
    /// of a scan, each candidate counts once), for figures.
    pub examined: u64,
}

/// A backend fault. Bad input never reaches a backend (the `logs` crate
/// validates first), so these are I/O and corruption.
#[derive(Debug, thiserror::Error)]
pub enum LogStoreError {
    #[error("log store I/O on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("log store file {path} is corrupt at byte {offset}: {why}")]
    Corrupt {
        path: String,
        offset: u64,
        why: String,
    },
    #[error("invalid stream id {0:?}: printable ASCII without '/', at most 64 bytes")]
    InvalidStreamId(String),
}

/// The seam.
pub trait LogStore: Send + Sync + 'static {
    /// Stores `append`'s events in `stream` (created on first append);
    /// durable when it returns.
    fn append(&self, stream: &StreamId, append: Append<'_>) -> Result<Appended, LogStoreError>;

    /// What `stream` holds; `StreamStats::default()` for a stream with no
    /// events.
    fn stats(&self, stream: &StreamId) -> Result<StreamStats, LogStoreError>;

    /// One page of `stream`'s events.
    fn read(&self, stream: &StreamId, read: Read) -> Result<Page, LogStoreError>;

    /// One page of matching events across streams.
    fn scan(&self, scan: Scan<'_>) -> Result<ScanPage, LogStoreError>;

    /// Forgets `stream` and all its events.
    fn delete_stream(&self, stream: &StreamId) -> Result<(), LogStoreError>;

    /// Retention: drops what holds only events older than `before_ms`
    /// (whole segments; readers pass `start_ms` to hide the rest). Returns
    /// the bytes freed on disk.
    fn expire(&self, stream: &StreamId, before_ms: i64) -> Result<u64, LogStoreError>;

    /// Every stream that holds anything (to find streams whose records are
    /// gone).
    fn streams(&self) -> Result<Vec<String>, LogStoreError>;

    /// Bytes the backend uses on disk (0 for memory), for figures.
    fn disk_bytes(&self) -> Result<u64, LogStoreError>;
}

/// Checks a stream id (backends call it so ids are safe as file names).
pub fn check_stream_id(stream: &StreamId) -> Result<(), LogStoreError> {
    let valid = !stream.is_empty()
        && stream.len() <= 64
        && stream
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b'\\')
        && stream != "."
        && stream != "..";
    if valid {
        Ok(())
    } else {
        Err(LogStoreError::InvalidStreamId(stream.to_string()))
    }
}

/// CloudWatch's per-event overhead in stored and batch sizes.
pub const EVENT_OVERHEAD_BYTES: u64 = 26;
