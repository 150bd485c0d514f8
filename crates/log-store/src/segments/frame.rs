//! The segment file format: a sequence of batch frames, one per append.
//!
//! ```text
//! frame   = magic u32 | payload_len u32 | crc32(payload) u32 | payload
//! payload = flags u8 | producer_cursor u128 | last_ingestion_time_ms i64
//!           | first_sequence u64 | count u32 | event{count}
//! event   = timestamp_ms i64 | message_len u32 | message bytes (UTF-8)
//! ```
//!
//! Little-endian throughout. `flags` bit 0: the cursor is present; bit 1:
//! the ingestion time is present. The header carries the stream's state
//! *after* the append (its stored producer cursor, last ingestion time, and
//! — through `first_sequence + count` — its next sequence), so the last
//! frame of the last segment is all a reopen needs, and a frame with no
//! events records that state alone (a cursor-only append, or what expiring
//! every segment leaves behind). Events of one frame share the append's
//! ingestion time and have consecutive sequences from `first_sequence`.
//!
//! Pure: bytes in, bytes out.

use crate::{NewEvent, ProducerCursor};

pub(super) const MAGIC: u32 = u32::from_le_bytes(*b"BLG1");
/// magic, payload length, crc.
pub(super) const FRAME_HEADER_BYTES: usize = 12;
/// flags, cursor, ingestion time, first sequence, count.
pub(super) const BATCH_HEADER_BYTES: usize = 1 + 16 + 8 + 8 + 4;
/// timestamp, message length.
pub(super) const EVENT_HEADER_BYTES: usize = 12;
/// A sanity bound on `payload_len` (an append is at most ~1 MiB).
pub(super) const MAX_PAYLOAD_BYTES: usize = 256 << 20;

const FLAG_CURSOR: u8 = 1;
const FLAG_INGESTION: u8 = 2;

/// A frame's header: the stream's state after the append it records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct BatchHeader {
    pub producer_cursor: Option<ProducerCursor>,
    pub last_ingestion_time_ms: Option<i64>,
    pub first_sequence: u64,
    pub count: u32,
}

impl BatchHeader {
    pub fn next_sequence(&self) -> u64 {
        self.first_sequence + u64::from(self.count)
    }
}

/// Appends one frame holding `events` to `out`.
pub(super) fn encode(header: &BatchHeader, events: &[NewEvent], out: &mut Vec<u8>) {
    debug_assert_eq!(header.count as usize, events.len());
    let start = out.len();
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.extend_from_slice(&[0; 8]); // length and crc, filled in below
    let mut flags = 0;
    if header.producer_cursor.is_some() {
        flags |= FLAG_CURSOR;
    }
    if header.last_ingestion_time_ms.is_some() {
        flags |= FLAG_INGESTION;
    }
    out.push(flags);
    out.extend_from_slice(&header.producer_cursor.map_or(0, |c| c.0).to_le_bytes());
    out.extend_from_slice(&header.last_ingestion_time_ms.unwrap_or(0).to_le_bytes());
    out.extend_from_slice(&header.first_sequence.to_le_bytes());
    out.extend_from_slice(&header.count.to_le_bytes());
    for event in events {
        out.extend_from_slice(&event.timestamp_ms.to_le_bytes());
        out.extend_from_slice(&(event.message.len() as u32).to_le_bytes());
        out.extend_from_slice(event.message.as_bytes());
    }
    let payload_start = start + FRAME_HEADER_BYTES;
    let payload_len = (out.len() - payload_start) as u32;
    let crc = crc32fast::hash(&out[payload_start..]);
    out[start + 4..start + 8].copy_from_slice(&payload_len.to_le_bytes());
    out[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
}

/// The size of the frame [`encode`] writes for `events`.
pub(super) fn encoded_len(events: &[NewEvent]) -> usize {
    FRAME_HEADER_BYTES
        + BATCH_HEADER_BYTES
        + events
            .iter()
            .map(|e| EVENT_HEADER_BYTES + e.message.len())
            .sum::<usize>()
}

/// Why bytes are not a frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum FrameError {
    /// The bytes end before the frame does (a torn write, or a frame start
    /// past the end).
    Incomplete,
    /// The bytes are not a frame.
    Invalid(String),
}

/// A checked frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Frame<'a> {
    pub header: BatchHeader,
    /// The whole frame's length in bytes.
    pub len: usize,
    /// The encoded events.
    events: &'a [u8],
}

/// One event inside a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct FrameEvent<'a> {
    /// Offset of the event from the frame's start.
    pub offset: usize,
    pub timestamp_ms: i64,
    pub message: &'a [u8],
}

impl<'a> Frame<'a> {
    /// The events, in order (already checked to parse).
    pub fn events(&self) -> impl Iterator<Item = FrameEvent<'a>> + 'a {
        let bytes = self.events;
        let mut at = 0;
        std::iter::from_fn(move || {
            let event = parse_event(bytes, at).ok()??;
            at += EVENT_HEADER_BYTES + event.message.len();
            Some(FrameEvent {
                offset: FRAME_HEADER_BYTES + BATCH_HEADER_BYTES + event.offset,
                ..event
            })
        })
    }
}

/// Parses the event at `at` in `bytes` (`None` at the end).
fn parse_event(bytes: &[u8], at: usize) -> Result<Option<FrameEvent<'_>>, String> {
    if at == bytes.len() {
        return Ok(None);
    }
    let Some(header) = bytes.get(at..at + EVENT_HEADER_BYTES) else {
        return Err("an event header runs past the frame".to_string());
    };
    let (timestamp_ms, message_len) = parse_event_header(header);
    let start = at + EVENT_HEADER_BYTES;
    let Some(message) = bytes.get(start..start + message_len) else {
        return Err("an event message runs past the frame".to_string());
    };
    Ok(Some(FrameEvent {
        offset: at,
        timestamp_ms,
        message,
    }))
}

/// `(timestamp_ms, message_len)` from an event's 12 header bytes.
pub(super) fn parse_event_header(header: &[u8]) -> (i64, usize) {
    let timestamp_ms = i64::from_le_bytes(header[0..8].try_into().expect("8 bytes"));
    let message_len = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes")) as usize;
    (timestamp_ms, message_len)
}

/// Parses a batch header from its [`BATCH_HEADER_BYTES`] bytes.
pub(super) fn parse_batch_header(bytes: &[u8]) -> Result<BatchHeader, String> {
    let flags = bytes[0];
    if flags & !(FLAG_CURSOR | FLAG_INGESTION) != 0 {
        return Err(format!("unknown flags {flags:#04x}"));
    }
    let cursor = u128::from_le_bytes(bytes[1..17].try_into().expect("16 bytes"));
    let ingestion = i64::from_le_bytes(bytes[17..25].try_into().expect("8 bytes"));
    let header = BatchHeader {
        producer_cursor: (flags & FLAG_CURSOR != 0).then_some(ProducerCursor(cursor)),
        last_ingestion_time_ms: (flags & FLAG_INGESTION != 0).then_some(ingestion),
        first_sequence: u64::from_le_bytes(bytes[25..33].try_into().expect("8 bytes")),
        count: u32::from_le_bytes(bytes[33..37].try_into().expect("4 bytes")),
    };
    if header.count > 0 && header.last_ingestion_time_ms.is_none() {
        return Err("a frame with events has no ingestion time".to_string());
    }
    Ok(header)
}

/// Checks the frame at the start of `bytes`: magic, length, crc, and that
/// its events parse, are as many as it says, and are sorted by timestamp.
pub(super) fn check(bytes: &[u8]) -> Result<Frame<'_>, FrameError> {
    if bytes.len() < FRAME_HEADER_BYTES {
        return Err(FrameError::Incomplete);
    }
    let magic = u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes"));
    if magic != MAGIC {
        return Err(FrameError::Invalid(format!("bad magic {magic:#010x}")));
    }
    let payload_len = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes")) as usize;
    if !(BATCH_HEADER_BYTES..=MAX_PAYLOAD_BYTES).contains(&payload_len) {
        return Err(FrameError::Invalid(format!(
            "implausible frame length {payload_len}"
        )));
    }
    let crc = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    let len = FRAME_HEADER_BYTES + payload_len;
    let Some(payload) = bytes.get(FRAME_HEADER_BYTES..len) else {
        return Err(FrameError::Incomplete);
    };
    let actual = crc32fast::hash(payload);
    if actual != crc {
        return Err(FrameError::Invalid(format!(
            "crc {actual:#010x} does not match the stored {crc:#010x}"
        )));
    }
    let header = parse_batch_header(&payload[..BATCH_HEADER_BYTES]).map_err(FrameError::Invalid)?;
    let events = &payload[BATCH_HEADER_BYTES..];
    let mut at = 0;
    let mut count = 0u64;
    let mut previous_ms = i64::MIN;
    while let Some(event) = parse_event(events, at).map_err(FrameError::Invalid)? {
        if event.timestamp_ms < previous_ms {
            return Err(FrameError::Invalid("events out of order".to_string()));
        }
        previous_ms = event.timestamp_ms;
        at += EVENT_HEADER_BYTES + event.message.len();
        count += 1;
    }
    if count != u64::from(header.count) {
        return Err(FrameError::Invalid(format!(
            "the frame says {} events and holds {count}",
            header.count
        )));
    }
    Ok(Frame {
        header,
        len,
        events,
    })
}

/// The offset of the first complete, valid frame at or after `from`, if any
/// (to tell a torn tail from damage in the middle of a file).
pub(super) fn find_valid_frame(bytes: &[u8], from: usize) -> Option<usize> {
    let magic = MAGIC.to_le_bytes();
    (from..bytes.len().saturating_sub(FRAME_HEADER_BYTES - 1))
        .filter(|&at| bytes[at..at + 4] == magic)
        .find(|&at| check(&bytes[at..]).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(timestamp_ms: i64, message: &str) -> NewEvent {
        NewEvent {
            timestamp_ms,
            message: message.to_string(),
        }
    }

    fn header(count: u32) -> BatchHeader {
        BatchHeader {
            producer_cursor: Some(ProducerCursor(u128::MAX - 7)),
            last_ingestion_time_ms: Some(-5),
            first_sequence: 40,
            count,
        }
    }

    fn encoded(header: &BatchHeader, events: &[NewEvent]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(header, events, &mut out);
        out
    }

    #[test]
    fn frames_round_trip() {
        let check_round_trip = |header: BatchHeader, events: &[NewEvent]| {
            let bytes = encoded(&header, events);
            assert_eq!(bytes.len(), encoded_len(events));
            let frame = check(&bytes).expect("a valid frame");
            assert_eq!(frame.header, header);
            assert_eq!(frame.len, bytes.len());
            let decoded: Vec<(i64, &[u8])> = frame
                .events()
                .map(|e| (e.timestamp_ms, e.message))
                .collect();
            let expected: Vec<(i64, &[u8])> = events
                .iter()
                .map(|e| (e.timestamp_ms, e.message.as_bytes()))
                .collect();
            assert_eq!(decoded, expected);
            for e in frame.events() {
                let (timestamp_ms, len) =
                    parse_event_header(&bytes[e.offset..e.offset + EVENT_HEADER_BYTES]);
                assert_eq!((timestamp_ms, len), (e.timestamp_ms, e.message.len()));
            }
        };
        check_round_trip(
            header(3),
            &[event(-1, ""), event(-1, "é"), event(i64::MAX, "third")],
        );
        check_round_trip(
            BatchHeader {
                producer_cursor: None,
                last_ingestion_time_ms: None,
                first_sequence: 0,
                count: 0,
            },
            &[],
        );
        check_round_trip(header(0), &[]);
    }

    #[test]
    fn damaged_frames_are_rejected() {
        let good = encoded(&header(2), &[event(1, "one"), event(2, "two")]);
        let check_damage = |damage: &dyn Fn(&mut Vec<u8>), expected: FrameError| {
            let mut bytes = good.clone();
            damage(&mut bytes);
            assert_eq!(check(&bytes).map(|f| f.len), Err(expected));
        };
        let invalid = |why: &str| FrameError::Invalid(why.to_string());
        check_damage(&|b| b.truncate(5), FrameError::Incomplete);
        check_damage(&|b| b.truncate(b.len() - 1), FrameError::Incomplete);
        check_damage(&|b| b[0] ^= 1, invalid("bad magic 0x31474c43"));
        check_damage(
            &|b| b[4..8].copy_from_slice(&3u32.to_le_bytes()),
            invalid("implausible frame length 3"),
        );
        let crc_of_damaged = {
            let mut b = good.clone();
            let last = b.len() - 1;
            b[last] ^= 0x20;
            crc32fast::hash(&b[FRAME_HEADER_BYTES..])
        };
        check_damage(
            &|b| {
                let last = b.len() - 1;
                b[last] ^= 0x20;
            },
            invalid(&format!(
                "crc {crc_of_damaged:#010x} does not match the stored {:#010x}",
                crc32fast::hash(&good[FRAME_HEADER_BYTES..])
            )),
        );
        // A frame whose crc matches but whose content lies.
        let reencode = |b: &mut Vec<u8>| {
            let crc = crc32fast::hash(&b[FRAME_HEADER_BYTES..]);
            b[8..12].copy_from_slice(&crc.to_le_bytes());
        };
        check_damage(
            &|b| {
                let count_at = FRAME_HEADER_BYTES + BATCH_HEADER_BYTES - 4;
                b[count_at] = 3;
                reencode(b);
            },
            invalid("the frame says 3 events and holds 2"),
        );
        check_damage(
            &|b| {
                let second = FRAME_HEADER_BYTES + BATCH_HEADER_BYTES + EVENT_HEADER_BYTES + 3;
                b[second..second + 8].copy_from_slice(&0i64.to_le_bytes());
                reencode(b);
            },
            invalid("events out of order"),
        );
        check_damage(
            &|b| {
                b[FRAME_HEADER_BYTES] = 0x80;
                reencode(b);
            },
            invalid("unknown flags 0x80"),
        );
    }

    #[test]
    fn finds_the_next_valid_frame_past_damage() {
        let mut bytes = encoded(&header(1), &[event(1, "one")]);
        let second = bytes.len();
        encode(&header(1), &[event(2, "two")], &mut bytes);
        assert_eq!(find_valid_frame(&bytes, 0), Some(0));
        assert_eq!(find_valid_frame(&bytes, 1), Some(second));
        bytes[second + FRAME_HEADER_BYTES] ^= 0xff;
        assert_eq!(find_valid_frame(&bytes, 1), None);
        assert_eq!(find_valid_frame(&[], 0), None);
    }
}
