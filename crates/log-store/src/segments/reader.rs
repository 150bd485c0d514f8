//! Reading events back out of segment files: per-segment cursors that seek
//! with the sparse index, and a k-way merge over them.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use super::frame::{
    parse_batch_header, parse_event_header, BATCH_HEADER_BYTES, EVENT_HEADER_BYTES,
    FRAME_HEADER_BYTES,
};
use super::{io_error, IndexEntry, Segment};
use crate::{LogStoreError, Position, StoredEvent};

/// How much a segment reader reads at first (a scan over many streams may
/// need only a few events of each)...
const FIRST_READ_BYTES: usize = 16 << 10;
/// ...doubling with each read up to this.
const READ_CHUNK_BYTES: usize = 256 << 10;

/// Buffered positional reads of one segment file, up to its published size.
struct SegmentFile {
    segment: Arc<Segment>,
    file: File,
    buffer: Vec<u8>,
    buffer_start: u64,
    /// The size of the next read.
    chunk_bytes: usize,
}

impl SegmentFile {
    /// `None` when the file is gone (expired or deleted since the snapshot).
    fn open(segment: &Arc<Segment>) -> Result<Option<Self>, LogStoreError> {
        match File::open(&segment.path) {
            Ok(file) => Ok(Some(Self {
                segment: segment.clone(),
                file,
                buffer: Vec::new(),
                buffer_start: 0,
                chunk_bytes: FIRST_READ_BYTES,
            })),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(io_error(&segment.path, err)),
        }
    }

    /// `len` bytes at `offset` (within the segment's published size).
    fn bytes(&mut self, offset: u64, len: usize) -> Result<&[u8], LogStoreError> {
        let end = offset + len as u64;
        if end > self.segment.size_bytes {
            return Err(self.corrupt(offset, "a record runs past the end of the segment"));
        }
        let buffered_end = self.buffer_start + self.buffer.len() as u64;
        if offset < self.buffer_start || end > buffered_end {
            let want = len
                .max(self.chunk_bytes)
                .min((self.segment.size_bytes - offset) as usize);
            self.chunk_bytes = (self.chunk_bytes * 2).min(READ_CHUNK_BYTES);
            self.buffer.resize(want, 0);
            self.file
                .read_exact_at(&mut self.buffer, offset)
                .map_err(|err| io_error(&self.segment.path, err))?;
            self.buffer_start = offset;
        }
        let at = (offset - self.buffer_start) as usize;
        Ok(&self.buffer[at..at + len])
    }

    /// Makes sure `[start, end)` is buffered, reading up to a chunk before
    /// it too (a backward walk reads the blocks before next).
    fn prefetch_backward(&mut self, start: u64, end: u64) -> Result<(), LogStoreError> {
        let buffered_end = self.buffer_start + self.buffer.len() as u64;
        if start >= self.buffer_start && end <= buffered_end {
            return Ok(());
        }
        if end > self.segment.size_bytes {
            return Err(self.corrupt(start, "a block runs past the end of the segment"));
        }
        let from = end.saturating_sub(READ_CHUNK_BYTES as u64).min(start);
        self.buffer.resize((end - from) as usize, 0);
        self.file
            .read_exact_at(&mut self.buffer, from)
            .map_err(|err| io_error(&self.segment.path, err))?;
        self.buffer_start = from;
        Ok(())
    }

    fn corrupt(&self, offset: u64, why: &str) -> LogStoreError {
        LogStoreError::Corrupt {
            path: self.segment.path.display().to_string(),
            offset,
            why: why.to_string(),
        }
    }
}

/// Decodes events forward from an index entry up to `stop` (exclusive byte
/// offset: the next index entry's event, or the segment's end).
struct Decoder {
    offset: u64,
    frame_end: u64,
    ingestion_time_ms: i64,
    next_sequence: u64,
    stop: u64,
}

impl Decoder {
    fn at(entry: &IndexEntry, stop: u64) -> Self {
        Self {
            offset: entry.offset,
            frame_end: entry.frame_end,
            ingestion_time_ms: entry.ingestion_time_ms,
            next_sequence: entry.position.sequence,
            stop,
        }
    }

    /// The next event's position and byte range, or `None` at `stop`.
    fn next_header(
        &mut self,
        file: &mut SegmentFile,
    ) -> Result<Option<(Position, u64, usize)>, LogStoreError> {
        loop {
            if self.offset >= self.stop {
                return Ok(None);
            }
            if self.offset == self.frame_end {
                let header_at = self.offset;
                let bytes = file.bytes(header_at, FRAME_HEADER_BYTES + BATCH_HEADER_BYTES)?;
                let payload_len = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
                let header = parse_batch_header(&bytes[FRAME_HEADER_BYTES..])
                    .map_err(|why| file.corrupt(header_at, &why))?;
                self.frame_end = header_at + FRAME_HEADER_BYTES as u64 + u64::from(payload_len);
                self.offset = header_at + (FRAME_HEADER_BYTES + BATCH_HEADER_BYTES) as u64;
                self.next_sequence = header.first_sequence;
                self.ingestion_time_ms = header.last_ingestion_time_ms.unwrap_or(0);
                continue;
            }
            let at = self.offset;
            let (timestamp_ms, message_len) =
                parse_event_header(file.bytes(at, EVENT_HEADER_BYTES)?);
            let position = Position {
                timestamp_ms,
                sequence: self.next_sequence,
            };
            self.next_sequence += 1;
            self.offset = at + (EVENT_HEADER_BYTES + message_len) as u64;
            return Ok(Some((
                position,
                at + EVENT_HEADER_BYTES as u64,
                message_len,
            )));
        }
    }

    fn event(
        &self,
        file: &mut SegmentFile,
        position: Position,
        message_at: u64,
        message_len: usize,
    ) -> Result<StoredEvent, LogStoreError> {
        let bytes = file.bytes(message_at, message_len)?.to_vec();
        let message = String::from_utf8(bytes)
            .map_err(|_| file.corrupt(message_at, "a message is not UTF-8"))?;
        Ok(StoredEvent {
            position,
            ingestion_time_ms: self.ingestion_time_ms,
            message,
        })
    }
}

/// Events in `[lower, upper)` (positions).
#[derive(Clone, Copy, Debug)]
pub(super) struct Bounds {
    pub lower: Position,
    pub upper: Option<Position>,
}

impl Bounds {
    pub fn overlaps(&self, segment: &Segment) -> bool {
        match (segment.first, segment.last) {
            (Some(first), Some(last)) => {
                last >= self.lower && self.upper.is_none_or(|upper| first < upper)
            }
            _ => false,
        }
    }

    fn below_upper(&self, position: Position) -> bool {
        self.upper.is_none_or(|upper| position < upper)
    }
}

/// Something that yields events in order, and may put off the I/O that
/// finds its next one.
pub(super) trait Source {
    /// A bound on the next event's position, in the source's order (no
    /// later than the next event); exact once settled. `None`: no events.
    fn peek(&self) -> Option<Position>;
    /// Whether `peek` is exact.
    fn is_settled(&self) -> bool;
    /// Makes `peek` exact.
    fn settle(&mut self) -> Result<(), LogStoreError>;
    /// Takes the next event out (settling first).
    fn take(&mut self) -> Result<Option<StoredEvent>, LogStoreError>;
}

/// One segment's events in `bounds`, oldest first.
struct Forward {
    file: SegmentFile,
    decoder: Decoder,
    bounds: Bounds,
    head: Option<StoredEvent>,
}

impl Forward {
    fn open(segment: &Arc<Segment>, bounds: Bounds) -> Result<Option<Self>, LogStoreError> {
        let Some(file) = SegmentFile::open(segment)? else {
            return Ok(None);
        };
        let index = &segment.index;
        let start = index
            .partition_point(|e| e.position <= bounds.lower)
            .saturating_sub(1);
        let mut forward = Self {
            file,
            decoder: Decoder::at(&index[start], segment.size_bytes),
            bounds,
            head: None,
        };
        forward.advance()?;
        Ok(Some(forward))
    }
}

impl Source for Forward {
    fn peek(&self) -> Option<Position> {
        self.head.as_ref().map(|e| e.position)
    }

    fn is_settled(&self) -> bool {
        true
    }

    fn settle(&mut self) -> Result<(), LogStoreError> {
        Ok(())
    }

    fn take(&mut self) -> Result<Option<StoredEvent>, LogStoreError> {
        let head = self.head.take();
        self.advance()?;
        Ok(head)
    }
}

impl Forward {
    fn advance(&mut self) -> Result<(), LogStoreError> {
        while let Some((position, at, len)) = self.decoder.next_header(&mut self.file)? {
            if position < self.bounds.lower {
                continue;
            }
            if self.bounds.below_upper(position) {
                self.head = Some(self.decoder.event(&mut self.file, position, at, len)?);
            } else {
                self.decoder.stop = 0;
            }
            break;
        }
        Ok(())
    }
}

/// One segment's events in `bounds`, newest first: the sparse index's
/// blocks are decoded forward one at a time and walked backward.
struct Backward {
    file: SegmentFile,
    bounds: Bounds,
    /// The next block to decode is `next_block - 1`.
    next_block: usize,
    /// The current block's events in range, oldest first (popped from the end).
    block: Vec<StoredEvent>,
    done: bool,
}

impl Backward {
    fn open(segment: &Arc<Segment>, bounds: Bounds) -> Result<Option<Self>, LogStoreError> {
        let Some(file) = SegmentFile::open(segment)? else {
            return Ok(None);
        };
        let next_block = match bounds.upper {
            Some(upper) => segment.index.partition_point(|e| e.position < upper),
            None => segment.index.len(),
        };
        let mut backward = Self {
            file,
            bounds,
            next_block,
            block: Vec::new(),
            done: false,
        };
        backward.fill()?;
        Ok(Some(backward))
    }

    /// Decodes blocks until one holds an event in range or none is left.
    fn fill(&mut self) -> Result<(), LogStoreError> {
        while self.block.is_empty() && !self.done && self.next_block > 0 {
            self.next_block -= 1;
            let segment = self.file.segment.clone();
            let entry = &segment.index[self.next_block];
            let stop = segment
                .index
                .get(self.next_block + 1)
                .map_or(segment.size_bytes, |next| next.offset);
            self.file.prefetch_backward(entry.offset, stop)?;
            let mut decoder = Decoder::at(entry, stop);
            if entry.position < self.bounds.lower {
                // The rest is older than the range.
                self.done = true;
            }
            while let Some((position, at, len)) = decoder.next_header(&mut self.file)? {
                if position >= self.bounds.lower && self.bounds.below_upper(position) {
                    self.block
                        .push(decoder.event(&mut self.file, position, at, len)?);
                }
            }
        }
        Ok(())
    }
}

impl Source for Backward {
    fn peek(&self) -> Option<Position> {
        self.block.last().map(|e| e.position)
    }

    fn is_settled(&self) -> bool {
        true
    }

    fn settle(&mut self) -> Result<(), LogStoreError> {
        Ok(())
    }

    fn take(&mut self) -> Result<Option<StoredEvent>, LogStoreError> {
        let head = self.block.pop();
        self.fill()?;
        Ok(head)
    }
}

impl<S: Source + ?Sized> Source for Box<S> {
    fn peek(&self) -> Option<Position> {
        (**self).peek()
    }

    fn is_settled(&self) -> bool {
        (**self).is_settled()
    }

    fn settle(&mut self) -> Result<(), LogStoreError> {
        (**self).settle()
    }

    fn take(&mut self) -> Result<Option<StoredEvent>, LogStoreError> {
        (**self).take()
    }
}

/// One segment's part of a read, opened only when the merge reaches it and
/// closed once it is used up, so a scan over many streams holds files open
/// only for the segments at its current position.
pub(super) enum Lazy {
    Unopened {
        segment: Arc<Segment>,
        bounds: Bounds,
        forward: bool,
    },
    Open(Box<dyn Source + Send>),
    Done,
}

impl Source for Lazy {
    fn peek(&self) -> Option<Position> {
        match self {
            // No event in range comes before the segment's first (forward)
            // or after its last (backward).
            Lazy::Unopened {
                segment,
                bounds,
                forward: true,
            } => segment.first.map(|first| first.max(bounds.lower)),
            Lazy::Unopened { segment, .. } => segment.last,
            Lazy::Open(source) => source.peek(),
            Lazy::Done => None,
        }
    }

    fn is_settled(&self) -> bool {
        !matches!(self, Lazy::Unopened { .. })
    }

    fn settle(&mut self) -> Result<(), LogStoreError> {
        if let Lazy::Unopened {
            segment,
            bounds,
            forward,
        } = self
        {
            let source: Option<Box<dyn Source + Send>> = if *forward {
                Forward::open(segment, *bounds)?.map(|s| Box::new(s) as _)
            } else {
                Backward::open(segment, *bounds)?.map(|s| Box::new(s) as _)
            };
            *self = match source {
                Some(source) if source.peek().is_some() => Lazy::Open(source),
                _ => Lazy::Done,
            };
        }
        Ok(())
    }

    fn take(&mut self) -> Result<Option<StoredEvent>, LogStoreError> {
        self.settle()?;
        let Lazy::Open(source) = self else {
            return Ok(None);
        };
        let event = source.take()?;
        if source.peek().is_none() {
            *self = Lazy::Done;
        }
        Ok(event)
    }
}

/// A k-way merge of sources, ordered by (position, source tag); forward
/// merges yield the smallest first, backward ones the largest. Sources are
/// keyed by their (possibly unsettled) bound and settled only when their
/// bound reaches the top, so the top, once settled, is the true next event.
pub(super) struct Merge<S> {
    sources: Vec<(usize, S)>,
    heap: BinaryHeap<HeapEntry>,
    forward: bool,
}

#[derive(PartialEq, Eq)]
struct HeapEntry {
    key: (Position, usize),
    slot: usize,
    settled: bool,
    forward: bool,
}

impl Ord for HeapEntry {
    fn cmp(&self, other: &Self) -> Ordering {
        let order = self.key.cmp(&other.key);
        if self.forward {
            order.reverse()
        } else {
            order
        }
    }
}

impl PartialOrd for HeapEntry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<S: Source> Merge<S> {
    /// `sources` are (tag, source) pairs.
    pub fn new(sources: Vec<(usize, S)>, forward: bool) -> Self {
        let mut merge = Self {
            sources,
            heap: BinaryHeap::new(),
            forward,
        };
        for slot in 0..merge.sources.len() {
            merge.push(slot);
        }
        merge
    }

    fn push(&mut self, slot: usize) {
        let (tag, source) = &self.sources[slot];
        if let Some(position) = source.peek() {
            self.heap.push(HeapEntry {
                key: (position, *tag),
                slot,
                settled: source.is_settled(),
                forward: self.forward,
            });
        }
    }

    /// Whether an event is left.
    pub fn has_next(&mut self) -> Result<bool, LogStoreError> {
        Source::settle(self)?;
        Ok(!self.heap.is_empty())
    }

    /// Takes the next event out, with its source's tag.
    pub fn take_tagged(&mut self) -> Result<Option<(usize, StoredEvent)>, LogStoreError> {
        Source::settle(self)?;
        let Some(entry) = self.heap.pop() else {
            return Ok(None);
        };
        let (tag, source) = &mut self.sources[entry.slot];
        let tag = *tag;
        let event = source
            .take()?
            .expect("a settled source in the heap has an event");
        self.push(entry.slot);
        Ok(Some((tag, event)))
    }
}

impl<S: Source> Source for Merge<S> {
    fn peek(&self) -> Option<Position> {
        self.heap.peek().map(|entry| entry.key.0)
    }

    fn is_settled(&self) -> bool {
        self.heap.peek().is_none_or(|entry| entry.settled)
    }

    fn settle(&mut self) -> Result<(), LogStoreError> {
        while let Some(top) = self.heap.peek() {
            if top.settled {
                break;
            }
            let slot = self.heap.pop().expect("a top entry").slot;
            self.sources[slot].1.settle()?;
            self.push(slot);
        }
        Ok(())
    }

    fn take(&mut self) -> Result<Option<StoredEvent>, LogStoreError> {
        Ok(self.take_tagged()?.map(|(_, event)| event))
    }
}

/// One stream's events in `bounds`, in the given direction, merged across
/// the segments that overlap the range (each opened when first needed).
pub(super) fn stream_events(
    segments: &[Arc<Segment>],
    bounds: Bounds,
    forward: bool,
) -> Merge<Lazy> {
    let sources = segments
        .iter()
        .filter(|s| bounds.overlaps(s))
        .map(|segment| {
            (
                0,
                Lazy::Unopened {
                    segment: segment.clone(),
                    bounds,
                    forward,
                },
            )
        })
        .collect();
    Merge::new(sources, forward)
}
