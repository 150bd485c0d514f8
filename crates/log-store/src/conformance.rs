//! The conformance suite every [`LogStore`] backend must pass.
//!
//! Each check is a `pub fn` taking a fresh, empty store. Backends run them
//! all through [`conformance_tests!`](crate::conformance_tests), which
//! expands to one `#[test]` per check so failures are named:
//!
//! ```ignore
//! log_store::conformance_tests!(log_store::MemoryLogStore::new());
//! // A fixture that must outlive the store (a temporary directory) goes first:
//! log_store::conformance_tests!(
//!     let dir = tempfile::tempdir().unwrap();
//!     log_store::segments::SegmentLogStore::open(dir.path()).unwrap()
//! );
//! ```
//!
//! What backends may differ in, and so is not checked here: the exact
//! sequence numbers (only their order), how much of the events older than
//! `before_ms` `expire` keeps (a disk backend drops whole segments), and the
//! bytes `expire` and `disk_bytes` report.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::{
    Append, Appended, Direction, LogStore, LogStoreError, NewEvent, Page, Position, ProducerCursor,
    Read, Scan, ScanPage, StoredEvent, StreamStats, EVENT_OVERHEAD_BYTES,
};

/// Expands to one `#[test]` per conformance check, each running it against
/// the store built by the given expression. An optional leading
/// `let pattern = expression;` keeps a fixture alive for the whole test.
#[macro_export]
macro_rules! conformance_tests {
    (@each [$fixture:pat = $setup:expr] $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                let $fixture = $setup;
                let store = $make;
                $crate::conformance::$check(store);
            }
        )*
    };
    (let $fixture:pat = $setup:expr; $make:expr $(,)?) => {
        $crate::conformance_tests!(@each [$fixture = $setup] $make;
            a_new_stream_is_empty,
            equal_timestamps_keep_the_order_of_ingestion,
            out_of_order_appends_read_back_sorted,
            forward_pages_meet_exactly_and_more_is_exact,
            backward_pages_meet_exactly_and_more_is_exact,
            byte_limit_stops_before_the_event_that_would_exceed_it,
            start_is_inclusive_end_exclusive_in_both_directions,
            after_combines_with_the_time_range,
            a_cursor_not_beyond_the_stored_one_writes_nothing,
            a_cursor_only_append_moves_the_cursor,
            an_empty_append_without_a_cursor_stores_nothing,
            stats_count_events_bytes_timestamps_and_ingestion,
            ingestion_time_is_each_appends_own,
            scan_interleaves_by_position_then_stream_index,
            scan_pages_resume_and_return_every_match_once,
            scan_byte_limit_and_a_first_match_larger_than_it,
            scan_applies_the_time_range_and_skips_unknown_streams,
            expire_keeps_every_event_at_or_after_before_ms,
            expire_of_everything_keeps_the_streams_cursor_and_order,
            delete_stream_forgets_events_and_cursor,
            streams_lists_streams_holding_anything,
            invalid_stream_ids_are_rejected,
            concurrent_appends_to_one_stream_all_land_in_order,
            concurrent_appends_to_many_streams_all_land,
            a_full_batch_reads_back_in_pages,
        );
    };
    ($make:expr $(,)?) => {
        $crate::conformance_tests!(let () = (); $make);
    };
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

fn append_with(
    store: &dyn LogStore,
    stream: &str,
    events: &[(i64, &str)],
    ingestion_time_ms: i64,
    cursor: Option<u128>,
) -> Appended {
    let events = new_events(events);
    store
        .append(
            stream,
            Append {
                events: &events,
                ingestion_time_ms,
                producer_cursor: cursor.map(ProducerCursor),
            },
        )
        .expect("append")
}

fn append(store: &dyn LogStore, stream: &str, events: &[(i64, &str)]) -> Appended {
    append_with(store, stream, events, 1_000, None)
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

fn backward() -> Read {
    Read {
        direction: Direction::Backward,
        ..forward()
    }
}

fn read(store: &dyn LogStore, stream: &str, read: Read) -> Page {
    store.read(stream, read).expect("read")
}

fn messages(events: &[StoredEvent]) -> Vec<&str> {
    events.iter().map(|e| e.message.as_str()).collect()
}

/// Every event, oldest first, checking that positions strictly increase.
fn all_events(store: &dyn LogStore, stream: &str) -> Vec<StoredEvent> {
    let page = read(store, stream, forward());
    assert!(!page.more);
    for pair in page.events.windows(2) {
        assert!(pair[0].position < pair[1].position, "{pair:?}");
    }
    page.events
}

/// Pages through a read with `limit_events`, checking each page's `more`.
fn pages(store: &dyn LogStore, stream: &str, mut request: Read) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    loop {
        let page = read(store, stream, request);
        pages.push(page.events.iter().map(|e| e.message.clone()).collect());
        if !page.more {
            return pages;
        }
        request.after = Some(page.events.last().expect("a page with more").position);
        assert!(pages.len() < 1000, "paging does not end");
    }
}

fn scan_page(store: &dyn LogStore, streams: &[&str], scan: ScanRequest<'_>) -> ScanPage {
    store
        .scan(Scan {
            streams,
            start_ms: scan.start_ms,
            end_ms: scan.end_ms,
            after: scan.after,
            matches: scan.matches,
            limit_events: scan.limit_events,
            limit_bytes: scan.limit_bytes,
        })
        .expect("scan")
}

#[derive(Clone, Copy)]
struct ScanRequest<'a> {
    start_ms: Option<i64>,
    end_ms: Option<i64>,
    after: Option<(usize, Position)>,
    matches: &'a (dyn Fn(&str) -> bool + Sync),
    limit_events: usize,
    limit_bytes: usize,
}

fn everything(_: &str) -> bool {
    true
}

fn scan_all(matches: &(dyn Fn(&str) -> bool + Sync)) -> ScanRequest<'_> {
    ScanRequest {
        start_ms: None,
        end_ms: None,
        after: None,
        matches,
        limit_events: 10_000,
        limit_bytes: 1 << 20,
    }
}

/// (stream index, message) of a scan page.
fn scanned(page: &ScanPage) -> Vec<(usize, &str)> {
    page.events
        .iter()
        .map(|(index, e)| (*index, e.message.as_str()))
        .collect()
}

pub fn a_new_stream_is_empty(store: impl LogStore) {
    assert_eq!(read(&store, "s", forward()), Page::default());
    assert_eq!(read(&store, "s", backward()), Page::default());
    assert_eq!(store.stats("s").unwrap(), StreamStats::default());
    assert_eq!(store.streams().unwrap(), Vec::<String>::new());
    assert_eq!(store.expire("s", i64::MAX).unwrap(), 0);
    store.delete_stream("s").unwrap();
}

pub fn equal_timestamps_keep_the_order_of_ingestion(store: impl LogStore) {
    append(&store, "s", &[(5, "a"), (5, "b")]);
    append(&store, "s", &[(5, "c")]);
    append(&store, "s", &[(4, "before"), (5, "d"), (6, "after")]);
    let events = all_events(&store, "s");
    assert_eq!(
        messages(&events),
        ["before", "a", "b", "c", "d", "after"],
        "timestamp first, then ingestion order"
    );
    let sequences: Vec<u64> = events.iter().map(|e| e.position.sequence).collect();
    let distinct: BTreeSet<u64> = sequences.iter().copied().collect();
    assert_eq!(distinct.len(), 6, "sequences are unique: {sequences:?}");
    // Ingestion order: a, b, c, before, d, after.
    let mut by_sequence = events.clone();
    by_sequence.sort_by_key(|e| e.position.sequence);
    assert_eq!(
        messages(&by_sequence),
        ["a", "b", "c", "before", "d", "after"]
    );
    let mut reversed = read(&store, "s", backward()).events;
    reversed.reverse();
    assert_eq!(reversed, events);
}

pub fn out_of_order_appends_read_back_sorted(store: impl LogStore) {
    append(&store, "s", &[(100, "100"), (200, "200"), (300, "300")]);
    append(
        &store,
        "s",
        &[(50, "50"), (150, "150"), (250, "250"), (350, "350")],
    );
    append(&store, "s", &[(10, "10")]);
    append(&store, "s", &[(200, "200b"), (400, "400")]);
    append(&store, "s", &[(175, "175")]);
    let expected = [
        "10", "50", "100", "150", "175", "200", "200b", "250", "300", "350", "400",
    ];
    assert_eq!(messages(&all_events(&store, "s")), expected);
    let mut backward_messages = read(&store, "s", backward())
        .events
        .into_iter()
        .map(|e| e.message)
        .collect::<Vec<_>>();
    backward_messages.reverse();
    assert_eq!(backward_messages, expected);
    // Pages of every size meet exactly in both directions.
    for limit in 1..=12 {
        let forward_pages: Vec<String> = pages(
            &store,
            "s",
            Read {
                limit_events: limit,
                ..forward()
            },
        )
        .concat();
        assert_eq!(forward_pages, expected, "forward pages of {limit}");
        let mut backward_pages: Vec<String> = pages(
            &store,
            "s",
            Read {
                limit_events: limit,
                ..backward()
            },
        )
        .concat();
        backward_pages.reverse();
        assert_eq!(backward_pages, expected, "backward pages of {limit}");
    }
}

pub fn forward_pages_meet_exactly_and_more_is_exact(store: impl LogStore) {
    append(&store, "s", &[(1, "a"), (2, "b"), (3, "c"), (4, "d")]);
    let check = |limit_events: usize, expected: &[&[&str]]| {
        let pages = pages(
            &store,
            "s",
            Read {
                limit_events,
                ..forward()
            },
        );
        assert_eq!(pages, expected, "pages of {limit_events}");
    };
    check(1, &[&["a"], &["b"], &["c"], &["d"]]);
    check(2, &[&["a", "b"], &["c", "d"]]);
    check(3, &[&["a", "b", "c"], &["d"]]);
    check(4, &[&["a", "b", "c", "d"]]);
    check(5, &[&["a", "b", "c", "d"]]);
    // Reading after the last event: nothing, no more.
    let last = all_events(&store, "s").last().unwrap().position;
    assert_eq!(
        read(
            &store,
            "s",
            Read {
                after: Some(last),
                ..forward()
            }
        ),
        Page::default()
    );
}

pub fn backward_pages_meet_exactly_and_more_is_exact(store: impl LogStore) {
    append(&store, "s", &[(1, "a"), (2, "b"), (3, "c"), (4, "d")]);
    let check = |limit_events: usize, expected: &[&[&str]]| {
        let pages = pages(
            &store,
            "s",
            Read {
                limit_events,
                ..backward()
            },
        );
        assert_eq!(pages, expected, "pages of {limit_events}");
    };
    check(1, &[&["d"], &["c"], &["b"], &["a"]]);
    check(2, &[&["d", "c"], &["b", "a"]]);
    check(3, &[&["d", "c", "b"], &["a"]]);
    check(4, &[&["d", "c", "b", "a"]]);
    let first = all_events(&store, "s")[0].position;
    assert_eq!(
        read(
            &store,
            "s",
            Read {
                after: Some(first),
                ..backward()
            }
        ),
        Page::default()
    );
}

pub fn byte_limit_stops_before_the_event_that_would_exceed_it(store: impl LogStore) {
    append(
        &store,
        "s",
        &[
            (1, "aaaa"),
            (2, "bbbb"),
            (3, "cc"),
            (4, "dddddddddd"),
            (5, "e"),
        ],
    );
    let check = |direction: Direction, limit_bytes: usize, expected: &[&[&str]]| {
        let pages = pages(
            &store,
            "s",
            Read {
                direction,
                limit_bytes,
                ..forward()
            },
        );
        assert_eq!(
            pages, expected,
            "{direction:?} pages of {limit_bytes} bytes"
        );
    };
    check(
        Direction::Forward,
        10,
        &[&["aaaa", "bbbb", "cc"], &["dddddddddd"], &["e"]],
    );
    check(
        Direction::Forward,
        9,
        &[&["aaaa", "bbbb"], &["cc"], &["dddddddddd"], &["e"]],
    );
    // A first event larger than the limit comes alone.
    check(
        Direction::Forward,
        1,
        &[&["aaaa"], &["bbbb"], &["cc"], &["dddddddddd"], &["e"]],
    );
    check(
        Direction::Backward,
        10,
        &[&["e"], &["dddddddddd"], &["cc", "bbbb", "aaaa"]],
    );
    // Bytes and events together: whichever comes first.
    let page = read(
        &store,
        "s",
        Read {
            limit_events: 2,
            limit_bytes: 100,
            ..forward()
        },
    );
    assert_eq!(
        (messages(&page.events), page.more),
        (vec!["aaaa", "bbbb"], true)
    );
}

pub fn start_is_inclusive_end_exclusive_in_both_directions(store: impl LogStore) {
    append(
        &store,
        "s",
        &[(10, "10"), (20, "20"), (20, "20b"), (30, "30"), (40, "40")],
    );
    let check = |start_ms: Option<i64>, end_ms: Option<i64>, expected: &[&str]| {
        let page = read(
            &store,
            "s",
            Read {
                start_ms,
                end_ms,
                ..forward()
            },
        );
        assert_eq!(
            messages(&page.events),
            expected,
            "[{start_ms:?}, {end_ms:?})"
        );
        assert!(!page.more);
        let mut back = read(
            &store,
            "s",
            Read {
                start_ms,
                end_ms,
                ..backward()
            },
        )
        .events;
        back.reverse();
        assert_eq!(
            messages(&back),
            expected,
            "backward [{start_ms:?}, {end_ms:?})"
        );
    };
    check(Some(20), Some(40), &["20", "20b", "30"]);
    check(Some(11), Some(31), &["20", "20b", "30"]);
    check(Some(20), None, &["20", "20b", "30", "40"]);
    check(None, Some(20), &["10"]);
    check(Some(20), Some(21), &["20", "20b"]);
    check(Some(20), Some(20), &[]);
    check(Some(30), Some(20), &[]);
    check(Some(41), None, &[]);
    check(None, Some(10), &[]);
    check(
        Some(i64::MIN),
        Some(i64::MAX),
        &["10", "20", "20b", "30", "40"],
    );
    // `more` looks only inside the range.
    let page = read(
        &store,
        "s",
        Read {
            start_ms: Some(20),
            end_ms: Some(30),
            limit_events: 2,
            ..forward()
        },
    );
    assert_eq!(
        (messages(&page.events), page.more),
        (vec!["20", "20b"], false)
    );
    let page = read(
        &store,
        "s",
        Read {
            start_ms: Some(20),
            end_ms: Some(30),
            limit_events: 2,
            ..backward()
        },
    );
    assert_eq!(
        (messages(&page.events), page.more),
        (vec!["20b", "20"], false)
    );
}

pub fn after_combines_with_the_time_range(store: impl LogStore) {
    append(
        &store,
        "s",
        &[(10, "10"), (20, "20"), (20, "20b"), (30, "30")],
    );
    let events = all_events(&store, "s");
    let at = |i: usize| events[i].position;
    let check = |request: Read, expected: &[&str]| {
        assert_eq!(
            messages(&read(&store, "s", request).events),
            expected,
            "{request:?}"
        );
    };
    check(
        Read {
            after: Some(at(1)),
            ..forward()
        },
        &["20b", "30"],
    );
    check(
        Read {
            after: Some(at(1)),
            end_ms: Some(30),
            ..forward()
        },
        &["20b"],
    );
    // An `after` before the range's start: the range wins.
    check(
        Read {
            after: Some(at(0)),
            start_ms: Some(30),
            ..forward()
        },
        &["30"],
    );
    check(
        Read {
            after: Some(at(2)),
            ..backward()
        },
        &["20", "10"],
    );
    check(
        Read {
            after: Some(at(3)),
            start_ms: Some(20),
            ..backward()
        },
        &["20b", "20"],
    );
    // An `after` past the range's end: the range wins.
    check(
        Read {
            after: Some(at(3)),
            end_ms: Some(20),
            ..backward()
        },
        &["10"],
    );
    // An `after` between stored positions works too.
    check(
        Read {
            after: Some(Position {
                timestamp_ms: 15,
                sequence: 0,
            }),
            ..forward()
        },
        &["20", "20b", "30"],
    );
    check(
        Read {
            after: Some(Position {
                timestamp_ms: 25,
                sequence: 0,
            }),
            ..backward()
        },
        &["20b", "20", "10"],
    );
}

pub fn a_cursor_not_beyond_the_stored_one_writes_nothing(store: impl LogStore) {
    let first = append_with(&store, "s", &[(1, "one")], 100, Some(5));
    assert_eq!(
        first,
        Appended {
            written: true,
            producer_cursor: Some(ProducerCursor(5))
        }
    );
    for cursor in [5, 4, 0] {
        let again = append_with(&store, "s", &[(2, "dup")], 200, Some(cursor));
        assert_eq!(
            again,
            Appended {
                written: false,
                producer_cursor: Some(ProducerCursor(5))
            },
            "cursor {cursor}"
        );
    }
    assert_eq!(messages(&all_events(&store, "s")), ["one"]);
    assert_eq!(store.stats("s").unwrap().last_ingestion_time_ms, Some(100));
    // Without a cursor, an append is always written and keeps the cursor.
    let plain = append_with(&store, "s", &[(3, "plain")], 300, None);
    assert_eq!(
        plain,
        Appended {
            written: true,
            producer_cursor: Some(ProducerCursor(5))
        }
    );
    let higher = append_with(&store, "s", &[(4, "next")], 400, Some(u128::MAX));
    assert_eq!(
        higher,
        Appended {
            written: true,
            producer_cursor: Some(ProducerCursor(u128::MAX))
        }
    );
    assert_eq!(messages(&all_events(&store, "s")), ["one", "plain", "next"]);
    assert_eq!(
        store.stats("s").unwrap().producer_cursor,
        Some(ProducerCursor(u128::MAX))
    );
    // Cursors are per stream.
    let other = append_with(&store, "t", &[(1, "other")], 100, Some(1));
    assert!(other.written);
}

pub fn a_cursor_only_append_moves_the_cursor(store: impl LogStore) {
    append_with(&store, "s", &[(1, "one")], 100, Some(1));
    let moved = append_with(&store, "s", &[], 500, Some(7));
    assert_eq!(
        moved,
        Appended {
            written: true,
            producer_cursor: Some(ProducerCursor(7))
        }
    );
    let stats = store.stats("s").unwrap();
    assert_eq!(stats.producer_cursor, Some(ProducerCursor(7)));
    assert_eq!(stats.event_count, 1);
    assert_eq!(
        stats.last_ingestion_time_ms,
        Some(100),
        "no event was ingested"
    );
    assert!(!append_with(&store, "s", &[(2, "old")], 600, Some(6)).written);
    // A stream can begin with only a cursor.
    append_with(&store, "c", &[], 100, Some(3));
    assert_eq!(
        store.stats("c").unwrap(),
        StreamStats {
            producer_cursor: Some(ProducerCursor(3)),
            ..StreamStats::default()
        }
    );
    assert_eq!(read(&store, "c", forward()), Page::default());
}

pub fn an_empty_append_without_a_cursor_stores_nothing(store: impl LogStore) {
    let appended = append_with(&store, "s", &[], 100, None);
    assert_eq!(
        appended,
        Appended {
            written: true,
            producer_cursor: None
        }
    );
    assert_eq!(store.streams().unwrap(), Vec::<String>::new());
    assert_eq!(store.stats("s").unwrap(), StreamStats::default());
    append_with(&store, "s", &[(1, "x")], 100, Some(2));
    assert_eq!(
        append_with(&store, "s", &[], 200, None),
        Appended {
            written: true,
            producer_cursor: Some(ProducerCursor(2))
        }
    );
}

pub fn stats_count_events_bytes_timestamps_and_ingestion(store: impl LogStore) {
    append_with(&store, "s", &[(50, "hello"), (60, "")], 1_000, None);
    append_with(&store, "s", &[(20, "early"), (70, "wörld")], 2_000, Some(9));
    let stats = store.stats("s").unwrap();
    assert_eq!(
        stats,
        StreamStats {
            first_event_timestamp_ms: Some(20),
            last_event_timestamp_ms: Some(70),
            last_ingestion_time_ms: Some(2_000),
            event_count: 4,
            stored_bytes: ("hello".len() + "early".len() + "wörld".len()) as u64
                + 4 * EVENT_OVERHEAD_BYTES,
            producer_cursor: Some(ProducerCursor(9)),
        }
    );
    // An older batch ingested later moves the ingestion time, not the last timestamp.
    append_with(&store, "s", &[(10, "old")], 3_000, None);
    let stats = store.stats("s").unwrap();
    assert_eq!(stats.first_event_timestamp_ms, Some(10));
    assert_eq!(stats.last_event_timestamp_ms, Some(70));
    assert_eq!(stats.last_ingestion_time_ms, Some(3_000));
    assert_eq!(stats.event_count, 5);
}

pub fn ingestion_time_is_each_appends_own(store: impl LogStore) {
    append_with(&store, "s", &[(1, "a"), (3, "c")], 111, None);
    append_with(&store, "s", &[(2, "b")], 222, None);
    let events = all_events(&store, "s");
    let got: Vec<(&str, i64)> = events
        .iter()
        .map(|e| (e.message.as_str(), e.ingestion_time_ms))
        .collect();
    assert_eq!(got, [("a", 111), ("b", 222), ("c", 111)]);
}

pub fn scan_interleaves_by_position_then_stream_index(store: impl LogStore) {
    append(&store, "x", &[(1, "x1"), (5, "x5"), (5, "x5b")]);
    append(&store, "y", &[(1, "y1"), (3, "y3"), (5, "y5")]);
    append(&store, "z", &[(2, "z2")]);
    let page = scan_page(&store, &["y", "x", "z"], scan_all(&everything));
    // Equal timestamps: by position (sequence) first, then by stream index.
    let got = scanned(&page);
    let x = all_events(&store, "x");
    let y = all_events(&store, "y");
    let mut expected: Vec<(Position, usize, &str)> = Vec::new();
    expected.extend(y.iter().map(|e| (e.position, 0, e.message.as_str())));
    expected.extend(x.iter().map(|e| (e.position, 1, e.message.as_str())));
    expected.push((all_events(&store, "z")[0].position, 2, "z2"));
    expected.sort();
    let expected: Vec<(usize, &str)> = expected.into_iter().map(|(_, i, m)| (i, m)).collect();
    assert_eq!(got, expected);
    assert_eq!(got.len(), 7);
    assert_eq!(
        &got[..2].iter().map(|(_, m)| *m).collect::<BTreeSet<_>>(),
        &BTreeSet::from(["x1", "y1"])
    );
    assert_eq!(got[2], (2, "z2"));
    assert_eq!(got[3], (0, "y3"));
    assert_eq!(page.resume_after, None);
    assert_eq!(page.examined, 7);
    // Equal positions in different streams: stream index decides.
    append(&store, "p", &[(9, "p9")]);
    append(&store, "q", &[(9, "q9")]);
    let page = scan_page(&store, &["q", "p"], scan_all(&everything));
    assert_eq!(scanned(&page), [(0, "q9"), (1, "p9")]);
}

pub fn scan_pages_resume_and_return_every_match_once(store: impl LogStore) {
    for (stream, offset) in [("a", 0), ("b", 1), ("c", 2)] {
        let events: Vec<(i64, String)> = (0..20)
            .map(|i| {
                (
                    i / 3 * 3 + offset % 2,
                    format!("{stream}{i:02}{}", if i % 4 == 0 { " ERROR" } else { "" }),
                )
            })
            .collect();
        let borrowed: Vec<(i64, &str)> = events.iter().map(|(t, m)| (*t, m.as_str())).collect();
        append(&store, stream, &borrowed[..10]);
        append(&store, stream, &borrowed[10..]);
    }
    let streams = ["a", "b", "c"];
    let errors = |message: &str| message.ends_with("ERROR");
    let whole = scan_page(&store, &streams, scan_all(&errors));
    assert_eq!(whole.events.len(), 15);
    assert_eq!(whole.examined, 60);
    assert_eq!(whole.resume_after, None);
    let all = scan_page(&store, &streams, scan_all(&everything));
    for limit in [1, 2, 4, 7, 15, 16] {
        for (matches, complete) in [
            (&errors as &(dyn Fn(&str) -> bool + Sync), &whole),
            (&everything, &all),
        ] {
            let mut after = None;
            let mut got = Vec::new();
            let mut examined = 0;
            for round in 0.. {
                assert!(round < 100, "scan paging does not end");
                let page = scan_page(
                    &store,
                    &streams,
                    ScanRequest {
                        after,
                        limit_events: limit,
                        ..scan_all(matches)
                    },
                );
                assert!(page.events.len() <= limit);
                examined += page.examined;
                got.extend(page.events.iter().cloned());
                match page.resume_after {
                    Some(resume) => {
                        assert_eq!(page.events.len(), limit, "stops only on a limit");
                        after = Some(resume);
                    }
                    None => break,
                }
            }
            assert_eq!(got, complete.events, "pages of {limit}");
            assert_eq!(examined, 60, "each candidate examined once");
        }
    }
}

pub fn scan_byte_limit_and_a_first_match_larger_than_it(store: impl LogStore) {
    append(&store, "a", &[(1, "aaaa"), (3, "skip-me"), (5, "cc")]);
    append(&store, "b", &[(2, "bbbbbbbbbbbb"), (4, "dd")]);
    let no_skip = |m: &str| !m.starts_with("skip");
    let mut after = None;
    let mut pages = Vec::new();
    loop {
        let page = scan_page(
            &store,
            &["a", "b"],
            ScanRequest {
                after,
                limit_bytes: 5,
                ..scan_all(&no_skip)
            },
        );
        pages.push(
            scanned(&page)
                .iter()
                .map(|(_, m)| m.to_string())
                .collect::<Vec<_>>(),
        );
        match page.resume_after {
            Some(resume) => after = Some(resume),
            None => break,
        }
        assert!(pages.len() < 10);
    }
    assert_eq!(
        pages,
        [vec!["aaaa"], vec!["bbbbbbbbbbbb"], vec!["dd", "cc"]],
        "a match that would pass the limit starts the next page; a large first one comes alone"
    );
}

pub fn scan_applies_the_time_range_and_skips_unknown_streams(store: impl LogStore) {
    append(&store, "a", &[(10, "a10"), (20, "a20"), (30, "a30")]);
    append(&store, "b", &[(15, "b15"), (25, "b25")]);
    let page = scan_page(
        &store,
        &["a", "missing", "b"],
        ScanRequest {
            start_ms: Some(15),
            end_ms: Some(30),
            ..scan_all(&everything)
        },
    );
    assert_eq!(scanned(&page), [(2, "b15"), (0, "a20"), (2, "b25")]);
    assert_eq!(page.examined, 3);
    let page = scan_page(&store, &[], scan_all(&everything));
    assert_eq!(page, ScanPage::default());
}

pub fn expire_keeps_every_event_at_or_after_before_ms(store: impl LogStore) {
    append(&store, "s", &[(10, "10"), (20, "20")]);
    append(&store, "s", &[(30, "30"), (40, "40")]);
    append(&store, "s", &[(5, "5")]);
    assert_eq!(store.expire("s", 5).unwrap(), 0, "nothing is older than 5");
    assert_eq!(all_events(&store, "s").len(), 5);
    store.expire("s", 30).unwrap();
    let hidden = read(
        &store,
        "s",
        Read {
            start_ms: Some(30),
            ..forward()
        },
    );
    assert_eq!(messages(&hidden.events), ["30", "40"]);
    let remaining = all_events(&store, "s");
    assert!(
        messages(&remaining).ends_with(&["30", "40"]),
        "{remaining:?}"
    );
    let stats = store.stats("s").unwrap();
    assert_eq!(stats.event_count, remaining.len() as u64);
    assert_eq!(
        stats.stored_bytes,
        remaining
            .iter()
            .map(|e| e.message.len() as u64 + EVENT_OVERHEAD_BYTES)
            .sum::<u64>()
    );
    assert_eq!(
        stats.first_event_timestamp_ms,
        remaining.first().map(|e| e.position.timestamp_ms)
    );
    assert_eq!(stats.last_event_timestamp_ms, Some(40));
}

pub fn expire_of_everything_keeps_the_streams_cursor_and_order(store: impl LogStore) {
    append_with(&store, "s", &[(10, "10"), (20, "20")], 100, Some(4));
    let last_before = all_events(&store, "s").last().unwrap().position;
    let freed = store.expire("s", 1_000).unwrap();
    assert!(freed > 0, "something was freed");
    assert_eq!(read(&store, "s", forward()), Page::default());
    assert_eq!(
        store.stats("s").unwrap(),
        StreamStats {
            last_ingestion_time_ms: Some(100),
            producer_cursor: Some(ProducerCursor(4)),
            ..StreamStats::default()
        }
    );
    assert_eq!(store.expire("s", 1_000).unwrap(), 0, "nothing left to free");
    assert!(!append_with(&store, "s", &[(30, "dup")], 200, Some(4)).written);
    assert!(append_with(&store, "s", &[(20, "new")], 200, Some(5)).written);
    let events = all_events(&store, "s");
    assert_eq!(messages(&events), ["new"]);
    assert!(
        events[0].position.sequence > last_before.sequence,
        "sequences keep increasing"
    );
}

pub fn delete_stream_forgets_events_and_cursor(store: impl LogStore) {
    append_with(&store, "s", &[(1, "one")], 100, Some(9));
    append(&store, "t", &[(1, "kept")]);
    store.delete_stream("s").unwrap();
    assert_eq!(read(&store, "s", forward()), Page::default());
    assert_eq!(store.stats("s").unwrap(), StreamStats::default());
    assert_eq!(store.streams().unwrap(), ["t"]);
    store.delete_stream("s").unwrap();
    let again = append_with(&store, "s", &[(2, "again")], 100, Some(1));
    assert!(again.written, "the cursor went with the stream");
    assert_eq!(messages(&all_events(&store, "s")), ["again"]);
    assert_eq!(messages(&all_events(&store, "t")), ["kept"]);
}

pub fn streams_lists_streams_holding_anything(store: impl LogStore) {
    append(&store, "b", &[(1, "x")]);
    append(&store, "a", &[(1, "x")]);
    append_with(&store, "c", &[], 1, Some(1));
    let mut streams = store.streams().unwrap();
    streams.sort();
    assert_eq!(streams, ["a", "b", "c"]);
}

pub fn invalid_stream_ids_are_rejected(store: impl LogStore) {
    let long = "x".repeat(65);
    for id in ["", ".", "..", "a/b", "a\\b", "a b", "é", long.as_str()] {
        let events = new_events(&[(1, "x")]);
        let result = store.append(
            id,
            Append {
                events: &events,
                ingestion_time_ms: 1,
                producer_cursor: None,
            },
        );
        assert!(
            matches!(result, Err(LogStoreError::InvalidStreamId(ref got)) if got == id),
            "{id:?}: {result:?}"
        );
    }
    append(&store, &"x".repeat(64), &[(1, "ok")]);
}

pub fn concurrent_appends_to_one_stream_all_land_in_order(store: impl LogStore) {
    let store = Arc::new(store);
    std::thread::scope(|scope| {
        for writer in 0..4 {
            let store = store.clone();
            scope.spawn(move || {
                for batch in 0..25 {
                    let events: Vec<(i64, String)> = (0..4)
                        .map(|i| (batch * 10 + i, format!("{writer}-{batch}-{i}")))
                        .collect();
                    let borrowed: Vec<(i64, &str)> =
                        events.iter().map(|(t, m)| (*t, m.as_str())).collect();
                    append(&*store, "s", &borrowed);
                }
            });
        }
    });
    let events = all_events(&*store, "s");
    assert_eq!(events.len(), 400);
    assert_eq!(store.stats("s").unwrap().event_count, 400);
    // Each batch's events kept their order and are contiguous in sequence.
    for writer in 0..4 {
        for batch in 0..25 {
            let sequences: Vec<u64> = (0..4)
                .map(|i| {
                    let message = format!("{writer}-{batch}-{i}");
                    events
                        .iter()
                        .find(|e| e.message == message)
                        .unwrap_or_else(|| panic!("{message} lost"))
                        .position
                        .sequence
                })
                .collect();
            assert!(
                sequences.windows(2).all(|w| w[1] == w[0] + 1),
                "batch {writer}-{batch}: {sequences:?}"
            );
        }
    }
}

pub fn concurrent_appends_to_many_streams_all_land(store: impl LogStore) {
    let store = Arc::new(store);
    std::thread::scope(|scope| {
        for writer in 0..8 {
            let store = store.clone();
            scope.spawn(move || {
                let stream = format!("stream-{writer}");
                for batch in 0..20 {
                    append_with(
                        &*store,
                        &stream,
                        &[(batch, "m")],
                        batch,
                        Some(batch as u128 + 1),
                    );
                }
            });
        }
    });
    for writer in 0..8 {
        let stats = store.stats(&format!("stream-{writer}")).unwrap();
        assert_eq!(stats.event_count, 20);
        assert_eq!(stats.producer_cursor, Some(ProducerCursor(20)));
    }
    assert_eq!(store.streams().unwrap().len(), 8);
}

pub fn a_full_batch_reads_back_in_pages(store: impl LogStore) {
    let messages: Vec<String> = (0..10_000)
        .map(|i| format!("event {i:05} {}", "x".repeat(i % 200)))
        .collect();
    let events: Vec<NewEvent> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| NewEvent {
            timestamp_ms: 1_000 + (i as i64 / 7),
            message: m.clone(),
        })
        .collect();
    store
        .append(
            "s",
            Append {
                events: &events,
                ingestion_time_ms: 5,
                producer_cursor: None,
            },
        )
        .unwrap();
    let forward_pages = pages(
        &store,
        "s",
        Read {
            limit_events: 999,
            limit_bytes: 50_000,
            ..forward()
        },
    );
    assert_eq!(forward_pages.concat(), messages);
    let mut backward_pages = pages(
        &store,
        "s",
        Read {
            limit_events: 1_234,
            ..backward()
        },
    )
    .concat();
    backward_pages.reverse();
    assert_eq!(backward_pages, messages);
    // A time-bounded page in the middle.
    let page = read(
        &store,
        "s",
        Read {
            start_ms: Some(1_500),
            end_ms: Some(1_502),
            ..forward()
        },
    );
    let expected: Vec<&str> = messages[3500..3514].iter().map(String::as_str).collect();
    assert_eq!(
        page.events
            .iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>(),
        expected
    );
}
