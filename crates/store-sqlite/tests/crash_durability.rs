//! Every acknowledged transaction survives the writer being SIGKILLed.
//!
//! The test binary runs twice. As the parent it spawns itself with
//! `CHILD_DB_PATH_VAR` set; the child opens the store and, from several
//! concurrent tasks, writes forever, printing `revision task sequence` for
//! each acknowledged txn. The parent reads some of those lines, kills the
//! child, reopens the database and checks every acknowledged write and the
//! revision bookkeeping.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use futures::StreamExt;
use store::{Op, Revision, Store, Txn};
use store_sqlite::SqliteStore;

const CHILD_DB_PATH_VAR: &str = "BERTH_STORE_SQLITE_CRASH_CHILD_DB";
const CHILD_TASKS: usize = 8;
const ACKNOWLEDGED_BEFORE_KILL: usize = 2000;

fn main() {
    match std::env::var_os(CHILD_DB_PATH_VAR) {
        Some(path) => child(PathBuf::from(path)),
        None => {
            parent();
            println!("test acknowledged_writes_survive_sigkill ... ok");
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn task_key(task: usize, sequence: u64) -> String {
    format!("crash/{task}/{sequence:08}")
}

fn last_key(task: usize) -> String {
    format!("crash/last/{task}")
}

/// Writes until killed; one line per acknowledged transaction.
fn child(path: PathBuf) {
    runtime().block_on(async move {
        let store = SqliteStore::open(&path)
            .await
            .expect("child opens the store");
        let mut tasks = Vec::new();
        for task in 0..CHILD_TASKS {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for sequence in 0u64.. {
                    let txn = Txn::new()
                        .then(Op::put(task_key(task, sequence), sequence.to_string()))
                        .then(Op::put(last_key(task), sequence.to_string()));
                    let response = store.txn(txn).await.expect("child txn");
                    let mut stdout = std::io::stdout().lock();
                    writeln!(stdout, "{} {task} {sequence}", response.revision)
                        .and_then(|()| stdout.flush())
                        .expect("write to the parent");
                }
            }));
        }
        for task in tasks {
            task.await.expect("child task");
        }
    });
}

struct Acknowledged {
    revision: Revision,
    task: usize,
    sequence: u64,
}

fn parent() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("store.db");
    let acknowledged = run_and_kill_child(&path);
    runtime().block_on(check_after_restart(&path, &acknowledged));
}

fn run_and_kill_child(path: &Path) -> Vec<Acknowledged> {
    let mut child = Command::new(std::env::current_exe().expect("test binary path"))
        .env(CHILD_DB_PATH_VAR, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the writer child");
    let stdout = child.stdout.take().expect("child stdout");
    let mut acknowledged = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read child output");
        let fields: Vec<&str> = line.split(' ').collect();
        let [revision, task, sequence] = fields[..] else {
            panic!("unexpected child line {line:?}");
        };
        acknowledged.push(Acknowledged {
            revision: revision.parse().expect("revision"),
            task: task.parse().expect("task"),
            sequence: sequence.parse().expect("sequence"),
        });
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
    // SIGKILL mid-stream: the child is in the middle of writing.
    child.kill().expect("kill the child");
    let status = child.wait().expect("reap the child");
    assert!(!status.success(), "the child was killed, not finished");
    acknowledged
}

async fn check_after_restart(path: &Path, acknowledged: &[Acknowledged]) {
    let store = SqliteStore::open(path)
        .await
        .expect("reopen after the crash");
    let current = store.current_revision().await.expect("current revision");

    // Every acknowledged write is there, at the revision it was acknowledged with.
    let mut revisions = BTreeSet::new();
    let mut last_acknowledged: BTreeMap<usize, u64> = BTreeMap::new();
    for ack in acknowledged {
        assert!(
            revisions.insert(ack.revision),
            "revision {} acknowledged twice",
            ack.revision
        );
        let kv = store
            .get(&task_key(ack.task, ack.sequence))
            .await
            .expect("get")
            .unwrap_or_else(|| panic!("acknowledged write {} lost", ack.revision));
        assert_eq!(kv.mod_revision, ack.revision);
        assert_eq!(kv.value, ack.sequence.to_string().into_bytes());
        let last = last_acknowledged.entry(ack.task).or_default();
        *last = (*last).max(ack.sequence);
    }
    let max_acknowledged = *revisions.last().expect("some acknowledgements");
    assert!(
        current >= max_acknowledged,
        "revision {current} < acknowledged {max_acknowledged}"
    );

    // Each task's sequence is gap-free up to what survived, never behind its acks.
    for task in 0..CHILD_TASKS {
        let Some(last) = store.get(&last_key(task)).await.expect("get") else {
            assert!(
                !last_acknowledged.contains_key(&task),
                "task {task} lost everything"
            );
            continue;
        };
        let last: u64 = String::from_utf8(last.value).unwrap().parse().unwrap();
        if let Some(acknowledged_last) = last_acknowledged.get(&task) {
            assert!(
                last >= *acknowledged_last,
                "task {task}: {last} < {acknowledged_last}"
            );
        }
        let keys = store
            .range(store::RangeRequest::prefix(format!("crash/{task}/")))
            .await
            .expect("range");
        assert_eq!(keys.kvs.len() as u64, last + 1, "task {task} has gaps");
    }

    // The history holds every revision 1..=current in order, two puts each.
    let mut history = store
        .watch("crash/", &store::prefix_end("crash/"), 1)
        .await
        .expect("watch from 1");
    for index in 0..2 * current {
        let event = history
            .next()
            .await
            .expect("history event")
            .expect("no error");
        assert_eq!(
            event.kv.mod_revision,
            index / 2 + 1,
            "history event {index}"
        );
    }

    // The store carries on from where it was.
    let next = store
        .txn(Txn::new().then(Op::put("after", "restart")))
        .await
        .expect("write after restart");
    assert_eq!(next.revision, current + 1);
    eprintln!(
        "crash_durability: {} acknowledged, max acknowledged revision {max_acknowledged}, recovered revision {current}",
        acknowledged.len()
    );
}
