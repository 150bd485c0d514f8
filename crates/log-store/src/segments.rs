//! [`SegmentLogStore`]: the disk backend.
//!
//! Layout: `<dir>/<stream id>/<segment number, 20 digits>.seg`. A segment is
//! a sequence of batch frames (`frame`), one per append, and is sorted by
//! [`Position`]: an append whose first event is older than the last
//! segment's newest event starts a new segment, and so do appends that
//! would take a segment past [`SegmentLimits`] (its size, or the span of its
//! timestamps, so retention deletes whole segments). An append is never
//! split across segments, so it is stored whole or not at all. Reads merge
//! the segments that overlap their range (`reader`).
//!
//! In memory, per stream: each segment's summary (size, event count,
//! first/last position, message bytes) and a sparse index (every
//! 64th event's position and offset), published as an
//! immutable `StreamView` that readers take without waiting for writers.
//! `open` rebuilds all of it by scanning the files.
//!
//! Crash safety: `append` returns after `write` and `fdatasync` of the
//! segment (and `fsync` of the directory when it created a file). On open a
//! frame that does not check out (magic, length, crc, structure) is:
//! - a torn tail, when it is in the stream's last segment and no valid frame
//!   follows it: the file is truncated before it (a crash can only have cut
//!   the last write; the cost is that damage to the very last frame is
//!   indistinguishable from a torn write and is dropped too);
//! - otherwise [`LogStoreError::Corrupt`]: the store refuses to open rather
//!   than silently lose acknowledged events.
//!
//! The highest-numbered segment always ends with the stream's latest frame,
//! whose header carries the stream's producer cursor, last ingestion time
//! and next sequence; expiring that segment first writes a new segment with
//! a frame holding no events, only that state.
//!
//! Locking: a map of streams (held only to look a stream up), and per stream
//! a writer mutex held through an append's I/O (appends to one stream
//! serialize, appends to different streams run in parallel) and the
//! published view behind a read-write lock held only to swap or clone it.
//! `<dir>/LOCK` is locked while a store is open, so two processes (or two
//! stores in one process) never share a directory.
//!
//! Reads open a segment only when the merge reaches it and close it once
//! used up, so a scan over thousands of short-lived streams holds files
//! open only for those at its current position. A scan runs in two stages
//! on two threads: one merges and decodes, the caller's applies `matches`
//! and the limits in order, so its result is exactly the sequential one.
//!
//! Opening reads every segment (to check it and rebuild the index): its
//! cost grows with the data kept (about 120 ms for 290 MB in page cache).

mod frame;
mod reader;

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex, RwLock};

use self::frame::{BatchHeader, Frame, FrameError};
use self::reader::{stream_events, Bounds, Merge};
use crate::{
    check_stream_id, Append, Appended, Direction, LogStore, LogStoreError, NewEvent, Page,
    Position, Read, Scan, ScanPage, StoredEvent, StreamId, StreamStats, EVENT_OVERHEAD_BYTES,
};

/// The sparse index keeps every this many events of a segment.
const INDEX_EVERY_EVENTS: u64 = 64;

/// A scan decodes this many candidates at a time ahead of matching...
const SCAN_CHUNK_EVENTS: usize = 1024;
/// ...and at most this many chunks ahead.
const SCAN_CHUNKS_AHEAD: usize = 2;

const SEGMENT_SUFFIX: &str = ".seg";
const LOCK_FILE: &str = "LOCK";

/// When a segment is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentLimits {
    /// An append that would take a segment past this starts a new one (an
    /// append larger than this gets a segment of its own).
    pub max_segment_bytes: u64,
    /// An append whose newest event is more than this after the segment's
    /// oldest starts a new one.
    pub max_segment_span_ms: i64,
}

impl Default for SegmentLimits {
    fn default() -> Self {
        Self {
            max_segment_bytes: 16 << 20,
            max_segment_span_ms: 2 * 60 * 60 * 1000,
        }
    }
}

impl SegmentLimits {
    /// Whether `events` (encoded as `frame_len` bytes) go to a new segment
    /// rather than to `last`.
    fn needs_new_segment(&self, last: &Segment, events: &[NewEvent], frame_len: usize) -> bool {
        let (Some(first), Some(newest)) = (last.first, last.last) else {
            // Only state, no events: anything may follow.
            return false;
        };
        let (Some(first_event), Some(last_event)) = (events.first(), events.last()) else {
            return false;
        };
        first_event.timestamp_ms < newest.timestamp_ms
            || last.size_bytes + frame_len as u64 > self.max_segment_bytes
            || last_event.timestamp_ms.saturating_sub(first.timestamp_ms) > self.max_segment_span_ms
    }
}

/// A sparse index entry: where one event is, and what decoding from it
/// needs to know about its frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    pub position: Position,
    /// The event's offset in the file.
    pub offset: u64,
    /// Where its frame ends.
    pub frame_end: u64,
    pub ingestion_time_ms: i64,
}

/// One segment file's summary.
#[derive(Clone, Debug)]
pub(crate) struct Segment {
    number: u64,
    pub path: PathBuf,
    /// The valid length: readers never read past it.
    pub size_bytes: u64,
    event_count: u64,
    message_bytes: u64,
    pub first: Option<Position>,
    pub last: Option<Position>,
    pub index: Vec<IndexEntry>,
    /// The header of the segment's last frame.
    last_header: Option<BatchHeader>,
}

impl Segment {
    fn empty(number: u64, path: PathBuf) -> Self {
        Self {
            number,
            path,
            size_bytes: 0,
            event_count: 0,
            message_bytes: 0,
            first: None,
            last: None,
            index: Vec::new(),
            last_header: None,
        }
    }

    /// Adds `frame`, which starts at the segment's end.
    fn add_frame(&mut self, frame: &Frame<'_>) -> Result<(), String> {
        let frame_start = self.size_bytes;
        let frame_end = frame_start + frame.len as u64;
        let header = frame.header;
        if let Some(previous) = self.last_header {
            if header.first_sequence < previous.next_sequence() {
                return Err("sequences go backwards".to_string());
            }
        }
        for (k, event) in frame.events().enumerate() {
            let position = Position {
                timestamp_ms: event.timestamp_ms,
                sequence: header.first_sequence + k as u64,
            };
            if self.last.is_some_and(|last| position < last) {
                return Err("events out of order".to_string());
            }
            if self.event_count.is_multiple_of(INDEX_EVERY_EVENTS) {
                self.index.push(IndexEntry {
                    position,
                    offset: frame_start + event.offset as u64,
                    frame_end,
                    ingestion_time_ms: header.last_ingestion_time_ms.unwrap_or(0),
                });
            }
            self.first.get_or_insert(position);
            self.last = Some(position);
            self.event_count += 1;
            self.message_bytes += event.message.len() as u64;
        }
        self.size_bytes = frame_end;
        self.last_header = Some(header);
        Ok(())
    }
}

/// Reads a segment file's frames: the summary of its valid prefix, and the
/// first damage found (its offset and why).
fn scan_segment(number: u64, path: PathBuf, bytes: &[u8]) -> (Segment, Option<(u64, String)>) {
    let mut segment = Segment::empty(number, path);
    while (segment.size_bytes as usize) < bytes.len() {
        let at = segment.size_bytes as usize;
        let damage = match frame::check(&bytes[at..]) {
            Ok(frame) => match segment.add_frame(&frame) {
                Ok(()) => continue,
                Err(why) => why,
            },
            Err(FrameError::Incomplete) => "the file ends inside a frame".to_string(),
            Err(FrameError::Invalid(why)) => why,
        };
        return (segment, Some((at as u64, damage)));
    }
    (segment, None)
}

/// What readers see of a stream: immutable, swapped whole by writers.
#[derive(Clone, Debug, Default)]
struct StreamView {
    segments: Vec<Arc<Segment>>,
    stats: StreamStats,
    next_sequence: u64,
}

impl StreamView {
    fn new(segments: Vec<Arc<Segment>>) -> Self {
        let header = segments
            .last()
            .and_then(|s| s.last_header)
            .expect("the last segment has a frame");
        let stats = StreamStats {
            first_event_timestamp_ms: segments
                .iter()
                .filter_map(|s| s.first)
                .map(|p| p.timestamp_ms)
                .min(),
            last_event_timestamp_ms: segments
                .iter()
                .filter_map(|s| s.last)
                .map(|p| p.timestamp_ms)
                .max(),
            last_ingestion_time_ms: header.last_ingestion_time_ms,
            event_count: segments.iter().map(|s| s.event_count).sum(),
            stored_bytes: segments
                .iter()
                .map(|s| s.message_bytes + EVENT_OVERHEAD_BYTES * s.event_count)
                .sum(),
            producer_cursor: header.producer_cursor,
        };
        Self {
            segments,
            stats,
            next_sequence: header.next_sequence(),
        }
    }
}

/// What only the stream's writer touches.
struct Writer {
    /// The last segment, open for writing: (segment number, file).
    active: Option<(u64, File)>,
    next_segment_number: u64,
    /// Set by `delete_stream`: this handle is dead, look the stream up again.
    deleted: bool,
}

struct StreamHandle {
    dir: PathBuf,
    writer: Mutex<Writer>,
    view: RwLock<Arc<StreamView>>,
}

impl StreamHandle {
    fn view(&self) -> Arc<StreamView> {
        self.view.read().expect("stream view lock").clone()
    }

    fn publish(&self, view: StreamView) {
        *self.view.write().expect("stream view lock") = Arc::new(view);
    }
}

/// Files on disk, one directory per stream. See the module docs.
pub struct SegmentLogStore {
    dir: PathBuf,
    /// `<dir>/LOCK`, locked while the store is open: one process at a time.
    _lock: File,
    limits: SegmentLimits,
    streams: RwLock<HashMap<String, Arc<StreamHandle>>>,
}

pub(crate) fn io_error(path: &Path, source: std::io::Error) -> LogStoreError {
    LogStoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn sync_dir(dir: &Path) -> Result<(), LogStoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|err| io_error(dir, err))
}

/// Takes `<dir>/LOCK` (released when the file closes, including by a crash).
fn lock_dir(dir: &Path) -> Result<File, LogStoreError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|err| io_error(&path, err))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(io_error(
            &path,
            std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                "another process has this log store open; stop it or use another data directory",
            ),
        )),
        Err(std::fs::TryLockError::Error(err)) => Err(io_error(&path, err)),
    }
}

fn segment_number(file_name: &str) -> Option<u64> {
    let digits = file_name.strip_suffix(SEGMENT_SUFFIX)?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:020}{SEGMENT_SUFFIX}"))
}

/// The smallest position after `position` (`None`: there is none).
fn successor(position: Position) -> Option<Position> {
    match position.sequence.checked_add(1) {
        Some(sequence) => Some(Position {
            sequence,
            ..position
        }),
        None => position
            .timestamp_ms
            .checked_add(1)
            .map(|timestamp_ms| Position {
                timestamp_ms,
                sequence: 0,
            }),
    }
}

/// The positions `[start_ms, end_ms)` covers.
fn bounds(start_ms: Option<i64>, end_ms: Option<i64>) -> Bounds {
    Bounds {
        lower: Position {
            timestamp_ms: start_ms.unwrap_or(i64::MIN),
            sequence: 0,
        },
        upper: end_ms.map(|timestamp_ms| Position {
            timestamp_ms,
            sequence: 0,
        }),
    }
}

fn non_empty(bounds: Bounds) -> Option<Bounds> {
    bounds
        .upper
        .is_none_or(|upper| bounds.lower < upper)
        .then_some(bounds)
}

/// The positions a read covers (`None`: none).
fn read_bounds(read: &Read) -> Option<Bounds> {
    let mut range = bounds(read.start_ms, read.end_ms);
    match (read.direction, read.after) {
        (_, None) => {}
        (Direction::Forward, Some(after)) => range.lower = range.lower.max(successor(after)?),
        (Direction::Backward, Some(after)) => {
            range.upper = Some(range.upper.map_or(after, |upper| upper.min(after)));
        }
    }
    non_empty(range)
}

/// The positions a scan covers in the stream at `index` (`None`: none):
/// past `after`, where streams up to its index resume after its position
/// and later streams at it.
fn scan_bounds(
    start_ms: Option<i64>,
    end_ms: Option<i64>,
    after: Option<(usize, Position)>,
    index: usize,
) -> Option<Bounds> {
    let mut range = bounds(start_ms, end_ms);
    if let Some((after_index, after)) = after {
        let from = if index <= after_index {
            successor(after)?
        } else {
            after
        };
        range.lower = range.lower.max(from);
    }
    non_empty(range)
}

impl SegmentLogStore {
    /// Opens (creating if needed) the store in `dir` with the default limits.
    pub fn open(dir: &Path) -> Result<Self, LogStoreError> {
        Self::open_with_limits(dir, SegmentLimits::default())
    }

    /// Opens the store in `dir`, checking every segment (see the module
    /// docs for what happens to damage).
    pub fn open_with_limits(dir: &Path, limits: SegmentLimits) -> Result<Self, LogStoreError> {
        fs::create_dir_all(dir).map_err(|err| io_error(dir, err))?;
        let lock = lock_dir(dir)?;
        let mut streams = HashMap::new();
        for entry in fs::read_dir(dir).map_err(|err| io_error(dir, err))? {
            let entry = entry.map_err(|err| io_error(dir, err))?;
            let path = entry.path();
            let is_dir = entry
                .file_type()
                .map_err(|err| io_error(&path, err))?
                .is_dir();
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if !is_dir || check_stream_id(&name).is_err() {
                continue;
            }
            if let Some(handle) = load_stream(&path)? {
                streams.insert(name, Arc::new(handle));
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            _lock: lock,
            limits,
            streams: RwLock::new(streams),
        })
    }

    fn handle(&self, stream: &StreamId) -> Option<Arc<StreamHandle>> {
        self.streams
            .read()
            .expect("stream map lock")
            .get(stream)
            .cloned()
    }

    fn handle_or_create(&self, stream: &StreamId) -> Arc<StreamHandle> {
        if let Some(handle) = self.handle(stream) {
            return handle;
        }
        self.streams
            .write()
            .expect("stream map lock")
            .entry(stream.to_string())
            .or_insert_with(|| {
                Arc::new(StreamHandle {
                    dir: self.dir.join(stream),
                    writer: Mutex::new(Writer {
                        active: None,
                        next_segment_number: 0,
                        deleted: false,
                    }),
                    view: RwLock::new(Arc::new(StreamView::default())),
                })
            })
            .clone()
    }

    /// Creates segment `number` holding `bytes`, durably.
    fn create_segment(
        &self,
        handle: &StreamHandle,
        number: u64,
        bytes: &[u8],
    ) -> Result<(PathBuf, File), LogStoreError> {
        if !handle.dir.exists() {
            fs::create_dir_all(&handle.dir).map_err(|err| io_error(&handle.dir, err))?;
            sync_dir(&self.dir)?;
        }
        let path = segment_path(&handle.dir, number);
        let written = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|file| {
                file.write_all_at(bytes, 0)?;
                file.sync_data()?;
                Ok(file)
            });
        match written {
            Ok(file) => {
                sync_dir(&handle.dir)?;
                Ok((path, file))
            }
            Err(err) => {
                let _ = fs::remove_file(&path);
                Err(io_error(&path, err))
            }
        }
    }

    fn append_locked(
        &self,
        handle: &StreamHandle,
        writer: &mut Writer,
        append: &Append<'_>,
    ) -> Result<Appended, LogStoreError> {
        let view = handle.view();
        let stored = view.stats.producer_cursor;
        if let (Some(new), Some(stored)) = (append.producer_cursor, stored) {
            if new <= stored {
                return Ok(Appended {
                    written: false,
                    producer_cursor: Some(stored),
                });
            }
        }
        let events = append.events;
        let header = BatchHeader {
            producer_cursor: append.producer_cursor.or(stored),
            last_ingestion_time_ms: if events.is_empty() {
                view.stats.last_ingestion_time_ms
            } else {
                Some(append.ingestion_time_ms)
            },
            first_sequence: view.next_sequence,
            count: u32::try_from(events.len()).expect("an append holds fewer than 2^32 events"),
        };
        let mut bytes = Vec::with_capacity(frame::encoded_len(events));
        frame::encode(&header, events, &mut bytes);
        let encoded = frame::check(&bytes).expect("a frame just encoded checks out");

        let mut segments = view.segments.clone();
        let new_segment = segments
            .last()
            .is_none_or(|last| self.limits.needs_new_segment(last, events, bytes.len()));
        if new_segment {
            // A number is used once, even by a failed attempt.
            let number = writer.next_segment_number;
            writer.next_segment_number = number + 1;
            let (path, file) = self.create_segment(handle, number, &bytes)?;
            writer.active = Some((number, file));
            let mut segment = Segment::empty(number, path);
            segment
                .add_frame(&encoded)
                .expect("a new segment takes any frame");
            segments.push(Arc::new(segment));
        } else {
            let last = segments.last_mut().expect("there is a last segment");
            if writer
                .active
                .as_ref()
                .is_none_or(|(n, _)| *n != last.number)
            {
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&last.path)
                    .map_err(|err| io_error(&last.path, err))?;
                writer.active = Some((last.number, file));
            }
            let (_, file) = writer.active.as_ref().expect("the active segment is open");
            let written = file
                .write_all_at(&bytes, last.size_bytes)
                .and_then(|()| file.sync_data());
            if let Err(err) = written {
                // Leave no partial frame behind for the next append to follow.
                let _ = file.set_len(last.size_bytes);
                writer.active = None;
                return Err(io_error(&last.path, err));
            }
            Arc::make_mut(last)
                .add_frame(&encoded)
                .expect("an append the limits let in keeps the segment sorted");
        }
        let mut stats = view.stats;
        if let (Some(first), Some(last)) = (events.first(), events.last()) {
            stats.first_event_timestamp_ms = Some(
                stats
                    .first_event_timestamp_ms
                    .map_or(first.timestamp_ms, |t| t.min(first.timestamp_ms)),
            );
            stats.last_event_timestamp_ms = Some(
                stats
                    .last_event_timestamp_ms
                    .map_or(last.timestamp_ms, |t| t.max(last.timestamp_ms)),
            );
        }
        stats.last_ingestion_time_ms = header.last_ingestion_time_ms;
        stats.event_count += events.len() as u64;
        stats.stored_bytes += events
            .iter()
            .map(|e| e.message.len() as u64 + EVENT_OVERHEAD_BYTES)
            .sum::<u64>();
        stats.producer_cursor = header.producer_cursor;
        handle.publish(StreamView {
            segments,
            stats,
            next_sequence: header.next_sequence(),
        });
        Ok(Appended {
            written: true,
            producer_cursor: header.producer_cursor,
        })
    }
}

/// Candidates in the order they merge, in chunks (each non-empty).
type Chunks = mpsc::Receiver<Result<Vec<(usize, StoredEvent)>, LogStoreError>>;

/// Applies a scan's `matches` and limits to its candidates. Dropping
/// `chunks` on return stops the stage that produces them.
fn take_page(chunks: Chunks, scan: &Scan<'_>) -> Result<ScanPage, LogStoreError> {
    let mut page = ScanPage::default();
    let mut bytes = 0usize;
    let mut last_consumed = None;
    let mut pending = Vec::new().into_iter();
    loop {
        let Some((index, event)) = pending.next() else {
            match chunks.recv() {
                Ok(chunk) => {
                    pending = chunk?.into_iter();
                    continue;
                }
                // No candidates left: the scan is complete.
                Err(mpsc::RecvError) => return Ok(page),
            }
        };
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
            last_consumed = Some((index, event.position));
            page.events.push((index, event));
        } else {
            last_consumed = Some((index, event.position));
        }
        page.examined += 1;
    }
}

/// Rebuilds one stream from its directory (`None`: it holds no segment).
fn load_stream(dir: &Path) -> Result<Option<StreamHandle>, LogStoreError> {
    let mut numbered = Vec::new();
    for entry in fs::read_dir(dir).map_err(|err| io_error(dir, err))? {
        let entry = entry.map_err(|err| io_error(dir, err))?;
        if let Some(number) = entry.file_name().to_str().and_then(segment_number) {
            numbered.push((number, entry.path()));
        }
    }
    numbered.sort();
    let next_segment_number = numbered.last().map_or(0, |(n, _)| n + 1);
    let count = numbered.len();
    let mut segments = Vec::new();
    let mut changed = false;
    for (i, (number, path)) in numbered.into_iter().enumerate() {
        let bytes = fs::read(&path).map_err(|err| io_error(&path, err))?;
        let (segment, damage) = scan_segment(number, path.clone(), &bytes);
        if let Some((offset, why)) = damage {
            let torn =
                i + 1 == count && frame::find_valid_frame(&bytes, offset as usize + 1).is_none();
            if !torn {
                return Err(LogStoreError::Corrupt {
                    path: path.display().to_string(),
                    offset,
                    why,
                });
            }
            OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|file| {
                    file.set_len(offset)?;
                    file.sync_all()
                })
                .map_err(|err| io_error(&path, err))?;
        }
        if segment.size_bytes == 0 {
            // Created, then cut before its first frame was written.
            fs::remove_file(&path).map_err(|err| io_error(&path, err))?;
            changed = true;
            continue;
        }
        segments.push(Arc::new(segment));
    }
    if changed {
        sync_dir(dir)?;
    }
    if segments.is_empty() {
        // Nothing ever acknowledged lives here; a directory with foreign
        // files in it stays (and the stream starts afresh in it).
        let _ = fs::remove_dir(dir);
        return Ok(None);
    }
    Ok(Some(StreamHandle {
        dir: dir.to_path_buf(),
        writer: Mutex::new(Writer {
            active: None,
            next_segment_number,
            deleted: false,
        }),
        view: RwLock::new(Arc::new(StreamView::new(segments))),
    }))
}

impl LogStore for SegmentLogStore {
    fn append(&self, stream: &StreamId, append: Append<'_>) -> Result<Appended, LogStoreError> {
        check_stream_id(stream)?;
        if append.events.is_empty() && append.producer_cursor.is_none() {
            return Ok(Appended {
                written: true,
                producer_cursor: self.stats(stream)?.producer_cursor,
            });
        }
        loop {
            let handle = self.handle_or_create(stream);
            let mut writer = handle.writer.lock().expect("stream writer lock");
            if writer.deleted {
                // Deleted while we waited: the next lookup finds a new handle.
                continue;
            }
            return self.append_locked(&handle, &mut writer, &append);
        }
    }

    fn stats(&self, stream: &StreamId) -> Result<StreamStats, LogStoreError> {
        Ok(self
            .handle(stream)
            .map(|handle| handle.view().stats)
            .unwrap_or_default())
    }

    fn read(&self, stream: &StreamId, read: Read) -> Result<Page, LogStoreError> {
        let (Some(handle), Some(bounds)) = (self.handle(stream), read_bounds(&read)) else {
            return Ok(Page::default());
        };
        let view = handle.view();
        let forward = read.direction == Direction::Forward;
        let mut events = stream_events(&view.segments, bounds, forward);
        let mut page = Page::default();
        let mut bytes = 0usize;
        while events.has_next()? {
            if page.events.len() >= read.limit_events {
                page.more = true;
                break;
            }
            let (_, event) = events.take_tagged()?.expect("an event is left");
            if !page.events.is_empty() && bytes + event.message.len() > read.limit_bytes {
                page.more = true;
                break;
            }
            bytes += event.message.len();
            page.events.push(event);
        }
        Ok(page)
    }

    fn scan(&self, scan: Scan<'_>) -> Result<ScanPage, LogStoreError> {
        let mut sources = Vec::new();
        for (index, stream) in scan.streams.iter().enumerate() {
            let Some(bounds) = scan_bounds(scan.start_ms, scan.end_ms, scan.after, index) else {
                continue;
            };
            if let Some(handle) = self.handle(stream) {
                sources.push((index, stream_events(&handle.view().segments, bounds, true)));
            }
        }
        let mut events = Merge::new(sources, true);
        // Two stages on two cores: this thread merges and decodes, the
        // caller's applies `matches` and the limits, in order.
        std::thread::scope(|scope| {
            let (sender, receiver) = mpsc::sync_channel(SCAN_CHUNKS_AHEAD);
            scope.spawn(move || loop {
                let mut chunk = Vec::with_capacity(SCAN_CHUNK_EVENTS);
                let filled = (|| {
                    while chunk.len() < SCAN_CHUNK_EVENTS {
                        match events.take_tagged()? {
                            Some(candidate) => chunk.push(candidate),
                            None => return Ok(false),
                        }
                    }
                    Ok(true)
                })();
                let more = filled.as_ref().is_ok_and(|more| *more);
                if filled.as_ref().is_ok() && chunk.is_empty() {
                    break;
                }
                // A closed channel: the page is complete.
                if sender.send(filled.map(|_| chunk)).is_err() || !more {
                    break;
                }
            });
            take_page(receiver, &scan)
        })
    }

    fn delete_stream(&self, stream: &StreamId) -> Result<(), LogStoreError> {
        let Some(handle) = self.handle(stream) else {
            return Ok(());
        };
        let mut writer = handle.writer.lock().expect("stream writer lock");
        if writer.deleted {
            return Ok(());
        }
        writer.active = None;
        match fs::remove_dir_all(&handle.dir) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(io_error(&handle.dir, err)),
        }
        sync_dir(&self.dir)?;
        writer.deleted = true;
        handle.publish(StreamView::default());
        let mut streams = self.streams.write().expect("stream map lock");
        if streams
            .get(stream)
            .is_some_and(|current| Arc::ptr_eq(current, &handle))
        {
            streams.remove(stream);
        }
        Ok(())
    }

    fn expire(&self, stream: &StreamId, before_ms: i64) -> Result<u64, LogStoreError> {
        let Some(handle) = self.handle(stream) else {
            return Ok(0);
        };
        let mut writer = handle.writer.lock().expect("stream writer lock");
        if writer.deleted {
            return Ok(0);
        }
        let view = handle.view();
        let Some(last_number) = view.segments.last().map(|s| s.number) else {
            return Ok(0);
        };
        let (victims, mut kept): (Vec<_>, Vec<_>) =
            view.segments
                .iter()
                .cloned()
                .partition(|segment| match segment.last {
                    Some(newest) => newest.timestamp_ms < before_ms,
                    // A segment holding only state is needed only when last.
                    None => segment.number != last_number,
                });
        if victims.is_empty() {
            return Ok(0);
        }
        if kept.last().is_none_or(|s| s.number != last_number) {
            // The last segment carries the stream's state: keep it in a
            // frame of its own before deleting the events.
            let header = BatchHeader {
                producer_cursor: view.stats.producer_cursor,
                last_ingestion_time_ms: view.stats.last_ingestion_time_ms,
                first_sequence: view.next_sequence,
                count: 0,
            };
            let mut bytes = Vec::new();
            frame::encode(&header, &[], &mut bytes);
            let number = writer.next_segment_number;
            writer.next_segment_number = number + 1;
            let (path, file) = self.create_segment(&handle, number, &bytes)?;
            writer.active = Some((number, file));
            let mut segment = Segment::empty(number, path);
            segment
                .add_frame(&frame::check(&bytes).expect("a frame just encoded checks out"))
                .expect("a new segment takes any frame");
            kept.push(Arc::new(segment));
        }
        let mut freed = 0;
        let mut failure = None;
        for victim in victims {
            match fs::remove_file(&victim.path) {
                Ok(()) => freed += victim.size_bytes,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => {
                    failure = Some(io_error(&victim.path, err));
                    kept.push(victim);
                }
            }
        }
        kept.sort_by_key(|s| s.number);
        handle.publish(StreamView::new(kept));
        if let Some(err) = failure {
            return Err(err);
        }
        sync_dir(&handle.dir)?;
        Ok(freed)
    }

    fn streams(&self) -> Result<Vec<String>, LogStoreError> {
        let streams = self.streams.read().expect("stream map lock");
        let mut names: Vec<String> = streams
            .iter()
            .filter(|(_, handle)| !handle.view().segments.is_empty())
            .map(|(name, _)| name.clone())
            .collect();
        names.sort();
        Ok(names)
    }

    fn disk_bytes(&self) -> Result<u64, LogStoreError> {
        let streams = self.streams.read().expect("stream map lock");
        Ok(streams
            .values()
            .flat_map(|handle| {
                handle
                    .view()
                    .segments
                    .iter()
                    .map(|s| s.size_bytes)
                    .collect::<Vec<_>>()
            })
            .sum())
    }
}

#[cfg(test)]
mod tests;
