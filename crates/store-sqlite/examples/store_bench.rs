//! Throughput and latency of the SQLite store.
//!
//! `cargo run --release -p store-sqlite --example store_bench [DIRECTORY] [SECONDS_PER_PHASE]`
//!
//! Prints durable txns/s with 1, 16 and 64 concurrent writers (each txn a
//! compare-and-swap put of a 200-byte value, acknowledged only after fsync)
//! and point reads/s with 2 reader tasks, with p50/p99 latencies and how
//! many txns each commit (fsync) carried. The database goes in DIRECTORY
//! (default: a temporary directory); put it on the disk you care about.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use store::{Compare, Op, Store, Txn};
use store_sqlite::SqliteStore;

const PRELOADED_KEYS: u64 = 10_000;
const READER_TASKS: u64 = 2;
const VALUE_BYTES: usize = 200;

/// The benchmark's only clock reading.
#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

fn report(label: &str, elapsed: Duration, mut latencies: Vec<Duration>, extra: &str) {
    latencies.sort_unstable();
    let percentile = |fraction: f64| {
        let index = ((latencies.len() as f64 * fraction) as usize).min(latencies.len() - 1);
        latencies[index]
    };
    println!(
        "{label:<28} {:>9.0} ops/s   p50 {:>8.3} ms   p99 {:>8.3} ms   ({} ops){extra}",
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentile(0.50).as_secs_f64() * 1000.0,
        percentile(0.99).as_secs_f64() * 1000.0,
        latencies.len(),
    );
}

async fn write_phase(store: &SqliteStore, writers: usize, duration: Duration) {
    let before = store.write_stats();
    let started = now();
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let key = format!("bench/writers{writers}/{writer:03}");
            let value = vec![b'x'; VALUE_BYTES];
            let mut last_revision = 0;
            let mut latencies = Vec::new();
            while now() - started < duration {
                let txn = Txn::new()
                    .when(Compare::mod_revision_is(key.as_str(), last_revision))
                    .then(Op::put(key.as_str(), value.clone()));
                let issued = now();
                let response = store.txn(txn).await.expect("txn");
                latencies.push(now() - issued);
                assert!(response.succeeded, "the writer owns its key");
                last_revision = response.revision;
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("writer task"));
    }
    let elapsed = now() - started;
    let after = store.write_stats();
    let commits = after.commits - before.commits;
    let requests = after.requests - before.requests;
    let extra = format!(
        "   {commits} commits, {:.1} txns/commit",
        requests as f64 / commits.max(1) as f64
    );
    report(
        &format!("txn, {writers} writers"),
        elapsed,
        latencies,
        &extra,
    );
}

async fn read_phase(store: &SqliteStore, duration: Duration) {
    let value = vec![b'y'; VALUE_BYTES];
    let mut batch = Txn::new();
    for index in 0..PRELOADED_KEYS {
        batch = batch.then(Op::put(format!("bench/read/{index:06}"), value.clone()));
        if batch.success.len() == 1000 {
            store
                .txn(std::mem::take(&mut batch))
                .await
                .expect("preload");
        }
    }
    let started = now();
    let mut tasks = Vec::new();
    for reader in 0..READER_TASKS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            // A fixed linear congruential sequence: no RNG needed.
            let mut state = reader.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut latencies = Vec::new();
            while now() - started < duration {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let key = format!("bench/read/{:06}", (state >> 33) % PRELOADED_KEYS);
                let issued = now();
                let kv = store.get(&key).await.expect("get");
                latencies.push(now() - issued);
                assert!(kv.is_some(), "{key} was preloaded");
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("reader task"));
    }
    report(
        &format!("get, {READER_TASKS} readers"),
        now() - started,
        latencies,
        "",
    );
}

#[tokio::main]
async fn main() {
    let mut arguments = std::env::args().skip(1);
    let temporary = tempfile::tempdir().expect("temporary directory");
    let directory = arguments
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| temporary.path().to_path_buf());
    let seconds: f64 = arguments
        .next()
        .map(|seconds| seconds.parse().expect("SECONDS_PER_PHASE is a number"))
        .unwrap_or(3.0);
    let duration = Duration::from_secs_f64(seconds);
    let path = directory.join(format!("store-bench-{}.db", std::process::id()));
    let store = SqliteStore::open(&path).await.expect("open the store");
    println!("database {} ({seconds} s per phase)", path.display());
    for writers in [1, 16, 64] {
        write_phase(&store, writers, duration).await;
    }
    read_phase(&store, duration).await;
    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.clone().into_os_string();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
}
