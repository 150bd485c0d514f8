use std::fs;
use std::path::{Path, PathBuf};

use super::*;
use crate::ProducerCursor;

fn position(timestamp_ms: i64, sequence: u64) -> Position {
    Position {
        timestamp_ms,
        sequence,
    }
}

fn new_events(events: &[(i64, &str)]) -> Vec<NewEvent> {
    events
        .iter()
        .map(|(timestamp_ms, message)| NewEvent {
            timestamp_ms: *timestamp_ms,
            message: message.to_string(),
        })
        .collect()
}

fn append(store: &SegmentLogStore, stream: &str, events: &[(i64, &str)], cursor: Option<u128>) {
    let events = new_events(events);
    let appended = store
        .append(
            stream,
            Append {
                events: &events,
                ingestion_time_ms: 7,
                producer_cursor: cursor.map(ProducerCursor),
            },
        )
        .expect("append");
    assert!(appended.written);
}

fn forward() -> Read {
    Read {
        start_ms: None,
        end_ms: None,
        direction: Direction::Forward,
        after: None,
        limit_events: 10_000,
        limit_bytes: 1 << 20,
    }
}

fn messages(store: &SegmentLogStore, stream: &str) -> Vec<String> {
    let page = store.read(stream, forward()).expect("read");
    page.events.into_iter().map(|e| e.message).collect()
}

fn small() -> SegmentLimits {
    SegmentLimits {
        max_segment_bytes: 300,
        max_segment_span_ms: 100,
    }
}

fn segment_files(dir: &Path, stream: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir.join(stream))
        .expect("stream directory")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
}

#[test]
fn read_bounds_narrow_the_range_by_after() {
    let check = |direction: Direction,
                 start_ms: Option<i64>,
                 end_ms: Option<i64>,
                 after: Option<Position>,
                 expected: Option<(Position, Option<Position>)>| {
        let read = Read {
            start_ms,
            end_ms,
            direction,
            after,
            ..forward()
        };
        let got = read_bounds(&read).map(|b| (b.lower, b.upper));
        assert_eq!(got, expected, "{read:?}");
    };
    use Direction::{Backward, Forward};
    let min = position(i64::MIN, 0);
    check(Forward, None, None, None, Some((min, None)));
    check(
        Forward,
        Some(5),
        Some(9),
        None,
        Some((position(5, 0), Some(position(9, 0)))),
    );
    check(
        Forward,
        Some(5),
        None,
        Some(position(7, 3)),
        Some((position(7, 4), None)),
    );
    check(
        Forward,
        Some(5),
        None,
        Some(position(2, 3)),
        Some((position(5, 0), None)),
    );
    check(
        Forward,
        None,
        None,
        Some(position(7, u64::MAX)),
        Some((position(8, 0), None)),
    );
    check(
        Forward,
        None,
        None,
        Some(position(i64::MAX, u64::MAX)),
        None,
    );
    check(Forward, Some(5), Some(9), Some(position(9, 0)), None);
    check(Forward, Some(9), Some(9), None, None);
    check(
        Backward,
        None,
        Some(9),
        Some(position(7, 3)),
        Some((min, Some(position(7, 3)))),
    );
    check(
        Backward,
        None,
        Some(5),
        Some(position(7, 3)),
        Some((min, Some(position(5, 0)))),
    );
    check(Backward, Some(7), None, Some(position(7, 0)), None);
}

#[test]
fn scan_bounds_resume_by_stream_index() {
    let check = |after: Option<(usize, Position)>, index: usize, expected: Option<Position>| {
        let got = scan_bounds(Some(1), None, after, index).map(|b| b.lower);
        assert_eq!(got, expected, "{after:?} for stream {index}");
    };
    check(None, 0, Some(position(1, 0)));
    let after = Some((1, position(5, 2)));
    check(after, 0, Some(position(5, 3)));
    check(after, 1, Some(position(5, 3)));
    check(after, 2, Some(position(5, 2)));
    check(Some((0, position(0, 0))), 1, Some(position(1, 0)));
    check(Some((0, position(i64::MAX, u64::MAX))), 0, None);
}

#[test]
fn limits_say_when_to_start_a_segment() {
    let mut segment = Segment::empty(0, PathBuf::from("x"));
    let mut bytes = Vec::new();
    let header = BatchHeader {
        producer_cursor: None,
        last_ingestion_time_ms: Some(1),
        first_sequence: 0,
        count: 2,
    };
    frame::encode(&header, &new_events(&[(100, "a"), (150, "b")]), &mut bytes);
    segment.add_frame(&frame::check(&bytes).unwrap()).unwrap();
    let limits = SegmentLimits {
        max_segment_bytes: bytes.len() as u64 + 100,
        max_segment_span_ms: 1_000,
    };
    let check = |events: &[(i64, &str)], expected: bool| {
        let events = new_events(events);
        let len = frame::encoded_len(&events);
        assert_eq!(
            limits.needs_new_segment(&segment, &events, len),
            expected,
            "{events:?}"
        );
    };
    check(&[(150, "same time")], false);
    check(&[(149, "older")], true);
    check(&[(200, "x"), (1_100, "span exactly")], false);
    check(&[(200, "x"), (1_101, "span past")], true);
    check(&[(200, &"x".repeat(39))], false); // exactly full
    check(&[(200, &"x".repeat(40))], true);
    check(&[], false);
    let state_only = Segment::empty(1, PathBuf::from("y"));
    let events = new_events(&[(-5, "anything")]);
    assert!(!limits.needs_new_segment(&state_only, &events, 1 << 30));
}

#[test]
fn segment_file_names() {
    let check =
        |name: &str, expected: Option<u64>| assert_eq!(segment_number(name), expected, "{name}");
    check("00000000000000000042.seg", Some(42));
    check(&format!("{:020}.seg", u64::MAX), Some(u64::MAX));
    check("42.seg", None);
    check("0000000000000000004x.seg", None);
    check("00000000000000000042.tmp", None);
    check("99999999999999999999.seg", None);
    assert_eq!(
        segment_path(Path::new("d"), 7),
        Path::new("d/00000000000000000007.seg")
    );
}

#[test]
fn out_of_order_size_and_span_roll_segments() {
    let dir = tempfile::tempdir().unwrap();
    let store = SegmentLogStore::open_with_limits(dir.path(), small()).unwrap();
    append(&store, "s", &[(10, "a"), (20, "b")], None);
    append(&store, "s", &[(20, "c")], None);
    assert_eq!(segment_files(dir.path(), "s").len(), 1);
    append(&store, "s", &[(15, "older")], None);
    assert_eq!(segment_files(dir.path(), "s").len(), 2, "out of order");
    append(&store, "s", &[(200, "far")], None);
    assert_eq!(segment_files(dir.path(), "s").len(), 3, "span");
    append(&store, "s", &[(201, &"x".repeat(250))], None);
    assert_eq!(segment_files(dir.path(), "s").len(), 4, "size");
    // A batch larger than a segment gets one of its own, whole.
    let big: Vec<String> = (0..30).map(|i| format!("big-{i:02}")).collect();
    let big_events: Vec<(i64, &str)> = big.iter().map(|m| (300, m.as_str())).collect();
    append(&store, "s", &big_events, None);
    assert_eq!(segment_files(dir.path(), "s").len(), 5);
    let mut expected = vec!["a", "older", "b", "c", "far", &"x".repeat(250)]
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<_>>();
    expected.extend(big.iter().cloned());
    assert_eq!(messages(&store, "s"), expected);
    let on_disk: u64 = segment_files(dir.path(), "s")
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .sum();
    assert_eq!(store.disk_bytes().unwrap(), on_disk);
}

/// Many out-of-order appends of varied sizes over several streams.
fn write_mixed(store: &SegmentLogStore) {
    for round in 0..30i64 {
        for stream in ["a", "b", "c"] {
            let base = (round * 37) % 500;
            let events: Vec<(i64, String)> = (0..(round % 5 + 1))
                .map(|i| {
                    (
                        base + i * 3,
                        format!(
                            "{stream}-{round}-{i}-{}",
                            "y".repeat((round * i) as usize % 90)
                        ),
                    )
                })
                .collect();
            let borrowed: Vec<(i64, &str)> = events.iter().map(|(t, m)| (*t, m.as_str())).collect();
            append(store, stream, &borrowed, Some(round as u128 + 1));
        }
    }
}

/// Everything a reader can see of a stream.
fn snapshot(
    store: &SegmentLogStore,
    stream: &str,
) -> (
    StreamStats,
    Vec<crate::StoredEvent>,
    Vec<crate::StoredEvent>,
) {
    let forward_events = store.read(stream, forward()).unwrap().events;
    let backward_events = store
        .read(
            stream,
            Read {
                direction: Direction::Backward,
                limit_events: 7,
                start_ms: Some(100),
                ..forward()
            },
        )
        .unwrap()
        .events;
    (
        store.stats(stream).unwrap(),
        forward_events,
        backward_events,
    )
}

#[test]
fn reopen_gives_identical_reads_and_stats() {
    let dir = tempfile::tempdir().unwrap();
    let store = SegmentLogStore::open_with_limits(dir.path(), small()).unwrap();
    write_mixed(&store);
    assert!(
        segment_files(dir.path(), "a").len() > 5,
        "the test spans segments"
    );
    let before: Vec<_> = ["a", "b", "c"].map(|s| snapshot(&store, s)).into();
    let disk_bytes = store.disk_bytes().unwrap();
    drop(store);
    let store = SegmentLogStore::open_with_limits(dir.path(), small()).unwrap();
    let after: Vec<_> = ["a", "b", "c"].map(|s| snapshot(&store, s)).into();
    assert_eq!(after, before);
    assert_eq!(store.disk_bytes().unwrap(), disk_bytes);
    assert_eq!(store.streams().unwrap(), ["a", "b", "c"]);
    // It carries on: the cursor holds, sequences keep increasing.
    let events = new_events(&[(1_000, "later")]);
    let again = store
        .append(
            "a",
            Append {
                events: &events,
                ingestion_time_ms: 9,
                producer_cursor: Some(ProducerCursor(30)),
            },
        )
        .unwrap();
    assert!(!again.written);
    append(&store, "a", &[(1_000, "later")], Some(31));
    let last_sequence = before[0]
        .1
        .iter()
        .map(|e| e.position.sequence)
        .max()
        .unwrap();
    let read_back = store.read("a", forward()).unwrap().events;
    let later = read_back.last().unwrap();
    assert_eq!(later.message, "later");
    assert!(later.position.sequence > last_sequence);
}

fn last_segment(dir: &Path, stream: &str) -> PathBuf {
    segment_files(dir, stream).pop().unwrap()
}

#[test]
fn a_torn_tail_is_dropped_and_appends_carry_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = SegmentLogStore::open(dir.path()).unwrap();
    append(&store, "s", &[(1, "one")], Some(1));
    append(&store, "s", &[(2, "two")], Some(2));
    append(&store, "s", &[(3, "three, torn")], Some(3));
    drop(store);
    let path = last_segment(dir.path(), "s");
    let len = fs::metadata(&path).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 4)
        .unwrap();
    let store = SegmentLogStore::open(dir.path()).unwrap();
    assert_eq!(messages(&store, "s"), ["one", "two"]);
    let stats = store.stats("s").unwrap();
    assert_eq!(stats.producer_cursor, Some(ProducerCursor(2)));
    assert_eq!(stats.event_count, 2);
    append(&store, "s", &[(3, "three, again")], Some(3));
    drop(store);
    let store = SegmentLogStore::open(dir.path()).unwrap();
    assert_eq!(messages(&store, "s"), ["one", "two", "three, again"]);
}

#[test]
fn garbage_after_the_last_frame_is_dropped() {
    let check = |garbage: &[u8]| {
        let dir = tempfile::tempdir().unwrap();
        let store = SegmentLogStore::open(dir.path()).unwrap();
        append(&store, "s", &[(1, "one")], None);
        let size = store.disk_bytes().unwrap();
        drop(store);
        let path = last_segment(dir.path(), "s");
        let mut bytes = fs::read(&path).unwrap();
        bytes.extend_from_slice(garbage);
        fs::write(&path, bytes).unwrap();
        let store = SegmentLogStore::open(dir.path()).unwrap();
        assert_eq!(messages(&store, "s"), ["one"], "{garbage:?}");
        assert_eq!(fs::metadata(&path).unwrap().len(), size, "truncated");
        append(&store, "s", &[(2, "two")], None);
        drop(store);
        let store = SegmentLogStore::open(dir.path()).unwrap();
        assert_eq!(messages(&store, "s"), ["one", "two"]);
    };
    check(&[0; 100]);
    check(b"not a frame at all");
    check(&[0x42]);
    // The start of a real frame header, cut short.
    check(&frame::MAGIC.to_le_bytes());
    let mut header = frame::MAGIC.to_le_bytes().to_vec();
    header.extend_from_slice(&1000u32.to_le_bytes());
    check(&header);
}

#[test]
fn a_segment_cut_before_its_first_frame_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let store = SegmentLogStore::open(dir.path()).unwrap();
    append(&store, "s", &[(5, "five")], Some(1));
    drop(store);
    // A crash after creating the next segment file, before its frame landed.
    let empty = segment_path(&dir.path().join("s"), 1);
    fs::write(&empty, b"").unwrap();
    fs::create_dir(dir.path().join("t")).unwrap();
    fs::write(segment_path(&dir.path().join("t"), 0), [1, 2, 3]).unwrap();
    let store = SegmentLogStore::open(dir.path()).unwrap();
    assert!(!empty.exists());
    assert_eq!(messages(&store, "s"), ["five"]);
    assert_eq!(store.streams().unwrap(), ["s"], "t held nothing valid");
    assert!(!dir.path().join("t").exists());
    append(&store, "s", &[(1, "older")], Some(2));
    assert_eq!(messages(&store, "s"), ["older", "five"]);
}

fn flip_byte(path: &Path, at: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[at as usize] ^= 0x10;
    fs::write(path, bytes).unwrap();
}

#[test]
fn a_flipped_byte_in_a_middle_frame_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let store = SegmentLogStore::open(dir.path()).unwrap();
    append(&store, "s", &[(1, "first frame")], None);
    let first_len = store.disk_bytes().unwrap();
    append(&store, "s", &[(2, "second frame")], None);
    append(&store, "s", &[(3, "third frame")], None);
    drop(store);
    let path = last_segment(dir.path(), "s");
    // A message byte of the second frame.
    flip_byte(&path, first_len + 12 + 37 + 12 + 2);
    let err = SegmentLogStore::open(dir.path()).err().expect("corrupt");
    match err {
        LogStoreError::Corrupt {
            path: got,
            offset,
            why,
        } => {
            assert_eq!(got, path.display().to_string());
            assert_eq!(offset, first_len);
            assert!(why.starts_with("crc"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    // Its length field: the next valid frame still shows it is not a tail.
    flip_byte(&path, first_len + 12 + 37 + 12 + 2);
    flip_byte(&path, first_len + 5);
    assert!(matches!(
        SegmentLogStore::open(dir.path()),
        Err(LogStoreError::Corrupt { .. })
    ));
}

#[test]
fn a_flipped_byte_in_an_older_segment_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let store = SegmentLogStore::open(dir.path()).unwrap();
    append(&store, "s", &[(10, "first segment")], None);
    append(&store, "s", &[(5, "second segment")], None);
    drop(store);
    let first = segment_files(dir.path(), "s").remove(0);
    let len = fs::metadata(&first).unwrap().len();
    flip_byte(&first, len - 1);
    assert!(matches!(
        SegmentLogStore::open(dir.path()),
        Err(LogStoreError::Corrupt { offset: 0, .. })
    ));
}

#[test]
fn a_flipped_byte_in_the_very_last_frame_reads_as_a_torn_write() {
    let dir = tempfile::tempdir().unwrap();
    let store = SegmentLogStore::open(dir.path()).unwrap();
    append(&store, "s", &[(1, "kept")], None);
    append(&store, "s", &[(2, "damaged")], None);
    drop(store);
    let path = last_segment(dir.path(), "s");
    let len = fs::metadata(&path).unwrap().len();
    flip_byte(&path, len - 1);
    let store = SegmentLogStore::open(dir.path()).unwrap();
    assert_eq!(messages(&store, "s"), ["kept"]);
}

#[test]
fn expire_deletes_whole_segments_and_keeps_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = SegmentLogStore::open_with_limits(dir.path(), small()).unwrap();
    append(&store, "s", &[(10, "a"), (50, "b")], Some(1));
    append(&store, "s", &[(200, "c"), (250, "d")], Some(2));
    append(&store, "s", &[(20, "late")], Some(3));
    let files = segment_files(dir.path(), "s");
    assert_eq!(files.len(), 3);
    let sizes: Vec<u64> = files
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .collect();
    // [10, 50] and [20] are older than 60; [200, 250] is not.
    assert_eq!(store.expire("s", 60).unwrap(), sizes[0] + sizes[2]);
    assert_eq!(messages(&store, "s"), ["c", "d"]);
    let remaining = segment_files(dir.path(), "s");
    assert_eq!(
        remaining.len(),
        2,
        "the kept segment and one holding the state"
    );
    assert_eq!(remaining[0], files[1]);
    // A segment holding events both sides of the cutoff stays whole.
    assert_eq!(store.expire("s", 240).unwrap(), 0);
    assert_eq!(messages(&store, "s"), ["c", "d"]);
    drop(store);
    let store = SegmentLogStore::open_with_limits(dir.path(), small()).unwrap();
    assert_eq!(messages(&store, "s"), ["c", "d"]);
    assert_eq!(
        store.stats("s").unwrap().producer_cursor,
        Some(ProducerCursor(3))
    );
    append(&store, "s", &[(300, "e")], Some(4));
    assert!(store.expire("s", i64::MAX).unwrap() > 0);
    assert_eq!(segment_files(dir.path(), "s").len(), 1);
    drop(store);
    let store = SegmentLogStore::open_with_limits(dir.path(), small()).unwrap();
    let stats = store.stats("s").unwrap();
    assert_eq!(
        (
            stats.event_count,
            stats.producer_cursor,
            stats.last_ingestion_time_ms
        ),
        (0, Some(ProducerCursor(4)), Some(7))
    );
}

#[test]
fn delete_stream_removes_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let store = SegmentLogStore::open(dir.path()).unwrap();
    append(&store, "s", &[(1, "x")], None);
    append(&store, "t", &[(1, "y")], None);
    store.delete_stream("s").unwrap();
    assert!(!dir.path().join("s").exists());
    drop(store);
    let store = SegmentLogStore::open(dir.path()).unwrap();
    assert_eq!(store.streams().unwrap(), ["t"]);
    assert_eq!(
        store.disk_bytes().unwrap(),
        fs::metadata(last_segment(dir.path(), "t")).unwrap().len()
    );
}

#[test]
fn index_seeks_land_on_the_right_event_in_large_frames() {
    let dir = tempfile::tempdir().unwrap();
    let store = SegmentLogStore::open(dir.path()).unwrap();
    let all: Vec<String> = (0..1_000).map(|i| format!("m{i:04}")).collect();
    for chunk in 0..4 {
        let events: Vec<(i64, &str)> = all[chunk * 250..(chunk + 1) * 250]
            .iter()
            .enumerate()
            .map(|(i, m)| (((chunk * 250 + i) / 2) as i64, m.as_str()))
            .collect();
        append(&store, "s", &events, None);
    }
    let events = store.read("s", forward()).unwrap().events;
    for start in [0, 1, 31, 32, 33, 63, 64, 65, 125, 126, 127, 499] {
        let page = store
            .read(
                "s",
                Read {
                    start_ms: Some(start),
                    limit_events: 3,
                    ..forward()
                },
            )
            .unwrap();
        let got: Vec<&str> = page.events.iter().map(|e| e.message.as_str()).collect();
        let at = (start * 2) as usize;
        let expected: Vec<&str> = all[at..(at + 3).min(1000)]
            .iter()
            .map(String::as_str)
            .collect();
        assert_eq!(got, expected, "forward from {start}");
        let back = store
            .read(
                "s",
                Read {
                    direction: Direction::Backward,
                    after: Some(events[at].position),
                    limit_events: 3,
                    ..forward()
                },
            )
            .unwrap();
        let got: Vec<&str> = back.events.iter().map(|e| e.message.as_str()).collect();
        let expected: Vec<&str> = all[at.saturating_sub(3)..at]
            .iter()
            .rev()
            .map(String::as_str)
            .collect();
        assert_eq!(got, expected, "backward before {start}");
    }
}

#[test]
fn one_store_at_a_time_opens_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let store = SegmentLogStore::open(dir.path()).unwrap();
    let err = SegmentLogStore::open(dir.path()).err().expect("locked");
    assert!(
        err.to_string()
            .contains("another process has this log store open"),
        "{err}"
    );
    drop(store);
    SegmentLogStore::open(dir.path()).expect("unlocked once the first closed");
}

#[test]
fn a_segment_overlapping_the_range_only_by_its_ends_yields_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = SegmentLogStore::open(dir.path()).unwrap();
    append(&store, "s", &[(1, "early"), (100, "late")], None);
    append(&store, "s", &[(45, "inside")], None);
    append(&store, "s", &[(46, "also inside"), (200, "later")], None);
    assert_eq!(segment_files(dir.path(), "s").len(), 2);
    for direction in [Direction::Forward, Direction::Backward] {
        let check = |start_ms: i64, end_ms: i64, expected: &[&str]| {
            let page = store
                .read(
                    "s",
                    Read {
                        start_ms: Some(start_ms),
                        end_ms: Some(end_ms),
                        direction,
                        limit_events: 1,
                        ..forward()
                    },
                )
                .unwrap();
            let got: Vec<&str> = page.events.iter().map(|e| e.message.as_str()).collect();
            assert_eq!(
                (got.as_slice(), page.more),
                (&expected[..1.min(expected.len())], expected.len() > 1),
                "{direction:?} [{start_ms}, {end_ms})"
            );
        };
        check(40, 45, &[]);
        check(47, 100, &[]);
        if direction == Direction::Forward {
            check(40, 50, &["inside", "also inside"]);
        } else {
            check(40, 50, &["also inside", "inside"]);
        }
    }
}

#[test]
fn a_scan_over_many_streams_merges_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let store = SegmentLogStore::open(dir.path()).unwrap();
    let names: Vec<String> = (0..300).map(|i| format!("task-{i:03}")).collect();
    for (i, name) in names.iter().enumerate() {
        // Short-lived streams, each a little after the one before.
        let t = i as i64 * 10;
        append(&store, name, &[(t, "start"), (t + 15, "stop")], None);
    }
    let streams: Vec<&str> = names.iter().map(String::as_str).collect();
    let page = store
        .scan(Scan {
            streams: &streams,
            start_ms: None,
            end_ms: None,
            after: None,
            matches: &|_| true,
            limit_events: 10_000,
            limit_bytes: 1 << 20,
        })
        .unwrap();
    assert_eq!(page.events.len(), 600);
    let keys: Vec<(i64, usize)> = page
        .events
        .iter()
        .map(|(index, e)| (e.position.timestamp_ms, *index))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert_eq!(page.resume_after, None);
}
