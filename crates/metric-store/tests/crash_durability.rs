//! Every acknowledged append survives the appender being SIGKILLed, whole.
//!
//! The test binary runs twice. As the parent it spawns itself with
//! `CHILD_DIR_VAR` set; the child opens the store and, from several threads,
//! appends batches forever (batch `b` of thread `t`: one high-resolution
//! sample of value `b` at second `b` for each of the thread's series),
//! printing `t b` for each acknowledged one. The parent reads some of those
//! lines, kills the child, reopens the store and checks that every
//! acknowledged batch is there, that no batch is there in part (in any
//! series or any tier), and that the store carries on.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use metric_store::sqlite::SqliteMetricStore;
use metric_store::{ListFilter, MetricKey, MetricStore, Sample, StatisticSet};

const CHILD_DIR_VAR: &str = "BERTH_METRIC_STORE_CRASH_CHILD_DIR";
const THREADS: usize = 4;
const SERIES_PER_THREAD: usize = 10;
const ACKNOWLEDGED_BEFORE_KILL: usize = 400;
/// 2025-01-01T00:00:00Z; reads happen "now" = an hour later.
const BASE_MS: i64 = 1_735_689_600_000;
const NOW_MS: i64 = BASE_MS + 3_600_000;

fn main() {
    match std::env::var_os(CHILD_DIR_VAR) {
        Some(dir) => child(PathBuf::from(dir)),
        None => {
            parent();
            println!("test acknowledged_appends_survive_sigkill ... ok");
        }
    }
}

fn key(thread: usize, series: usize) -> MetricKey {
    MetricKey {
        namespace: "Crash".to_string(),
        metric_name: "Batch".to_string(),
        dimensions: vec![
            ("Series".to_string(), series.to_string()),
            ("Thread".to_string(), thread.to_string()),
        ],
    }
}

fn batch(thread: usize, batch: u64) -> Vec<Sample> {
    let value = batch as f64;
    (0..SERIES_PER_THREAD)
        .map(|series| Sample {
            key: key(thread, series),
            unit: "Count".to_string(),
            timestamp_ms: BASE_MS + batch as i64 * 1_000,
            storage_resolution_s: 1,
            stats: StatisticSet {
                sample_count: 1.0,
                sum: value,
                minimum: value,
                maximum: value,
            },
            values: vec![(value, 1.0)],
        })
        .collect()
}

/// Appends until killed; one line per acknowledged batch.
fn child(dir: PathBuf) {
    let store = SqliteMetricStore::open(&dir).expect("child opens the store");
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let store = &store;
            scope.spawn(move || {
                // Stay inside the 1 s tier's 3 hours of the parent's "now".
                for number in 0u64..3_000 {
                    store.append(&batch(thread, number)).expect("child append");
                    let mut stdout = std::io::stdout().lock();
                    writeln!(stdout, "{thread} {number}")
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
        let [thread, number] = fields[..] else {
            panic!("unexpected child line {line:?}");
        };
        acknowledged.push((
            thread.parse().expect("thread"),
            number.parse().expect("batch"),
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
    let store = SqliteMetricStore::open(dir).expect("reopen after the crash");
    let mut stored_total = 0;
    for thread in 0..THREADS {
        let mut stored_per_series = Vec::new();
        for series in 0..SERIES_PER_THREAD {
            let seconds = store
                .read(&key(thread, series), None, BASE_MS, NOW_MS, 1, NOW_MS)
                .expect("read seconds");
            let mut stored = BTreeSet::new();
            for aggregate in &seconds {
                let number = (aggregate.start_ms - BASE_MS) / 1_000;
                assert_eq!(aggregate.stats.sample_count, 1.0, "second {number} twice");
                assert_eq!(aggregate.stats.sum, number as f64);
                stored.insert(number as u64);
            }
            // Every tier holds the same batches.
            let hour = store
                .read(&key(thread, series), None, BASE_MS, NOW_MS, 3600, NOW_MS)
                .expect("read the hour");
            let hour_count = hour.first().map_or(0.0, |a| a.stats.sample_count);
            assert_eq!(hour_count, stored.len() as f64, "tiers disagree");
            stored_per_series.push(stored);
        }
        let stored = &stored_per_series[0];
        assert!(
            stored_per_series.iter().all(|s| s == stored),
            "a batch of thread {thread} is there in part"
        );
        for (_, number) in acknowledged.iter().filter(|(t, _)| *t == thread) {
            assert!(
                stored.contains(number),
                "acknowledged batch {thread} {number} lost"
            );
        }
        // One thread's appends are sequential: no gaps.
        if let Some(max) = stored.last() {
            assert_eq!(stored.len() as u64, max + 1, "thread {thread} has gaps");
        }
        stored_total += stored.len();
    }
    let listed = store
        .list_metrics(&ListFilter::default(), None, 1_000)
        .expect("list");
    assert_eq!(listed.len(), THREADS * SERIES_PER_THREAD);
    // The store carries on from where it was.
    let hour_count = |store: &SqliteMetricStore| {
        store
            .read(&key(0, 0), None, BASE_MS, NOW_MS, 3600, NOW_MS)
            .expect("read the hour")
            .first()
            .map_or(0.0, |a| a.stats.sample_count)
    };
    let before = hour_count(&store);
    store
        .append(&batch(0, 3_599))
        .expect("append after restart");
    drop(store);
    let store = SqliteMetricStore::open(dir).expect("reopen again");
    assert_eq!(hour_count(&store), before + 1.0);
    eprintln!(
        "crash_durability: {} acknowledged, {stored_total} batches stored",
        acknowledged.len()
    );
}
