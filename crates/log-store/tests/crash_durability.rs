//! Every acknowledged append survives the appender being SIGKILLed, whole.
//!
//! The test binary runs twice. As the parent it spawns itself with
//! `CHILD_DIR_VAR` set; the child opens the store and, from several threads
//! (some sharing a stream), appends batches forever, printing
//! `stream batch` for each acknowledged one. The parent reads some of those
//! lines, kills the child, reopens the store and checks that every
//! acknowledged batch is there, that no batch is there in part, and that
//! producer cursors and sequences carry on.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use log_store::segments::{SegmentLimits, SegmentLogStore};
use log_store::{Append, Direction, LogStore, NewEvent, ProducerCursor, Read};

const CHILD_DIR_VAR: &str = "BERTH_LOG_STORE_CRASH_CHILD_DIR";
/// (thread, stream): threads 2 and 3 share a stream.
const WRITERS: [(usize, &str); 4] = [(0, "s0"), (1, "s1"), (2, "shared"), (3, "shared")];
const EVENTS_PER_BATCH: usize = 20;
const ACKNOWLEDGED_BEFORE_KILL: usize = 400;

fn main() {
    match std::env::var_os(CHILD_DIR_VAR) {
        Some(dir) => child(PathBuf::from(dir)),
        None => {
            parent();
            println!("test acknowledged_appends_survive_sigkill ... ok");
        }
    }
}

fn limits() -> SegmentLimits {
    SegmentLimits {
        max_segment_bytes: 16 << 10,
        max_segment_span_ms: 5_000,
    }
}

fn message(thread: usize, batch: u64, event: usize) -> String {
    format!("{thread} {batch} {event} {}", "p".repeat(event * 7))
}

/// Appends until killed; one line per acknowledged batch.
fn child(dir: PathBuf) {
    let store = SegmentLogStore::open_with_limits(&dir, limits()).expect("child opens the store");
    std::thread::scope(|scope| {
        for (thread, stream) in WRITERS {
            let store = &store;
            scope.spawn(move || {
                for batch in 0u64.. {
                    // Every fifth batch is older than the last: a new segment.
                    let base = if batch % 5 == 4 {
                        batch as i64 * 100 - 1_000
                    } else {
                        batch as i64 * 100
                    };
                    let events: Vec<NewEvent> = (0..EVENTS_PER_BATCH)
                        .map(|event| NewEvent {
                            timestamp_ms: base + event as i64,
                            message: message(thread, batch, event),
                        })
                        .collect();
                    // Only unshared streams carry a cursor (one producer each).
                    let producer_cursor =
                        (stream != "shared").then_some(ProducerCursor(u128::from(batch) + 1));
                    let appended = store
                        .append(
                            stream,
                            Append {
                                events: &events,
                                ingestion_time_ms: batch as i64,
                                producer_cursor,
                            },
                        )
                        .expect("child append");
                    assert!(appended.written);
                    let mut stdout = std::io::stdout().lock();
                    writeln!(stdout, "{thread} {batch}")
                        .and_then(|()| stdout.flush())
                        .expect("write to the parent");
                }
            });
        }
    });
}

fn parent() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let acknowledged = run_and_kill_child(dir.path());
    check_after_restart(dir.path(), &acknowledged);
}

fn run_and_kill_child(dir: &Path) -> Vec<(usize, u64)> {
    let mut child = Command::new(std::env::current_exe().expect("test binary path"))
        .env(CHILD_DIR_VAR, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the appender child");
    let stdout = child.stdout.take().expect("child stdout");
    let mut acknowledged = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read child output");
        let fields: Vec<&str> = line.split(' ').collect();
        let [thread, batch] = fields[..] else {
            panic!("unexpected child line {line:?}");
        };
        acknowledged.push((
            thread.parse().expect("thread"),
            batch.parse().expect("batch"),
        ));
        if acknowledged.len() == ACKNOWLEDGED_BEFORE_KILL {
            break;
        }
    }
    assert_eq!(
        acknowledged.len(),
        ACKNOWLEDGED_BEFORE_KILL,
        "the child stopped early: {:?}",
        child.try_wait()
    );
    // SIGKILL mid-stream: the child is in the middle of appending.
    child.kill().expect("kill the child");
    let status = child.wait().expect("reap the child");
    assert!(!status.success(), "the child was killed, not finished");
    acknowledged
}

fn check_after_restart(dir: &Path, acknowledged: &[(usize, u64)]) {
    let store = SegmentLogStore::open_with_limits(dir, limits()).expect("reopen after the crash");
    let mut last_acknowledged: BTreeMap<usize, u64> = BTreeMap::new();
    for (thread, batch) in acknowledged {
        let last = last_acknowledged.entry(*thread).or_default();
        *last = (*last).max(*batch);
    }
    let mut segments = 0;
    for stream in ["s0", "s1", "shared"] {
        let page = store
            .read(
                stream,
                Read {
                    start_ms: None,
                    end_ms: None,
                    direction: Direction::Forward,
                    after: None,
                    limit_events: usize::MAX,
                    limit_bytes: usize::MAX,
                },
            )
            .expect("read");
        for pair in page.events.windows(2) {
            assert!(pair[0].position < pair[1].position, "sorted: {pair:?}");
        }
        // (thread, batch) -> the events of it that are stored.
        let mut batches: BTreeMap<(usize, u64), BTreeSet<usize>> = BTreeMap::new();
        let mut sequences = BTreeSet::new();
        for event in &page.events {
            let fields: Vec<&str> = event.message.splitn(4, ' ').collect();
            let thread: usize = fields[0].parse().unwrap();
            let batch: u64 = fields[1].parse().unwrap();
            let index: usize = fields[2].parse().unwrap();
            assert_eq!(event.message, message(thread, batch, index));
            assert_eq!(event.ingestion_time_ms, batch as i64);
            assert!(
                batches.entry((thread, batch)).or_default().insert(index),
                "{} stored twice",
                event.message
            );
            assert!(sequences.insert(event.position.sequence));
        }
        for ((thread, batch), events) in &batches {
            assert_eq!(
                events.len(),
                EVENTS_PER_BATCH,
                "batch {thread} {batch} is there in part"
            );
        }
        for (thread, writer_stream) in WRITERS {
            if writer_stream != stream {
                continue;
            }
            let stored: BTreeSet<u64> = batches
                .keys()
                .filter(|(t, _)| *t == thread)
                .map(|(_, b)| *b)
                .collect();
            if let Some(last) = last_acknowledged.get(&thread) {
                for batch in 0..=*last {
                    assert!(
                        stored.contains(&batch),
                        "acknowledged batch {thread} {batch} lost"
                    );
                }
            }
            // Appends from one thread are sequential: no gaps.
            if let Some(max) = stored.last() {
                assert_eq!(stored.len() as u64, max + 1, "thread {thread} has gaps");
            }
        }
        let stats = store.stats(stream).expect("stats");
        assert_eq!(stats.event_count, page.events.len() as u64);
        if stream != "shared" {
            let thread: usize = stream[1..].parse().unwrap();
            let stored_batches = batches.len() as u128;
            assert_eq!(
                stats.producer_cursor,
                (stored_batches > 0).then_some(ProducerCursor(stored_batches)),
                "the cursor is the last stored batch's"
            );
            // The producer resends its last batch: nothing is written twice.
            if let Some(&last) = last_acknowledged.get(&thread) {
                let events = [NewEvent {
                    timestamp_ms: 0,
                    message: "resent".to_string(),
                }];
                let resent = store
                    .append(
                        stream,
                        Append {
                            events: &events,
                            ingestion_time_ms: 0,
                            producer_cursor: Some(ProducerCursor(u128::from(last) + 1)),
                        },
                    )
                    .expect("resend");
                assert!(!resent.written);
            }
        }
        segments += std::fs::read_dir(dir.join(stream)).unwrap().count();
    }
    // The store carries on from where it was.
    let events = [NewEvent {
        timestamp_ms: 1,
        message: "after restart".to_string(),
    }];
    store
        .append(
            "shared",
            Append {
                events: &events,
                ingestion_time_ms: 1,
                producer_cursor: None,
            },
        )
        .expect("append after restart");
    drop(store);
    let store = SegmentLogStore::open_with_limits(dir, limits()).expect("reopen again");
    assert!(store.stats("shared").unwrap().event_count > 0);
    eprintln!(
        "crash_durability: {} acknowledged, {segments} segment files",
        acknowledged.len()
    );
}
