//! The writer thread: the only connection that writes.
//!
//! It takes every queued request, applies them in arrival order inside one
//! SQLite transaction (each transaction in its own SAVEPOINT, its compares
//! evaluated against the state left by the ones before it, each writing one
//! getting the next revision), commits once — one WAL fsync for the whole
//! batch (group commit) — and only then publishes the batch's watch events
//! and answers the callers.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, PoisonError};
use std::thread;

use rusqlite::{Connection, TransactionBehavior};
use store::memory::compare_holds;
use store::{EventKind, KeyValue, Op, Result, Revision, StoreError, Txn, TxnResponse, WatchEvent};
use tokio::sync::{broadcast, oneshot};

use crate::checkpoint::Checkpointer;
use crate::reader::{backend_error, load_key};
use crate::schema::{
    read_meta, write_meta, KIND_DELETE, KIND_PUT, META_COMPACTED_REVISION, META_REVISION,
};

pub(crate) enum WriteRequest {
    Txn {
        txn: Txn,
        reply: oneshot::Sender<Result<TxnResponse>>,
    },
    Compact {
        revision: Revision,
        reply: oneshot::Sender<Result<()>>,
    },
}

/// State the writer shares with the store handle and its watches.
pub(crate) struct Shared {
    /// The revision of the last committed batch.
    current_revision: AtomicI64,
    live: Mutex<Live>,
    commits: AtomicU64,
    committed_requests: AtomicU64,
}

struct Live {
    /// Every event up to this revision has been sent on `sender`.
    published_revision: Revision,
    sender: broadcast::Sender<Arc<[WatchEvent]>>,
}

impl Shared {
    pub(crate) fn new(revision: Revision, watch_capacity: usize) -> Shared {
        let (sender, _) = broadcast::channel(watch_capacity.max(1));
        Shared {
            current_revision: AtomicI64::new(revision),
            live: Mutex::new(Live {
                published_revision: revision,
                sender,
            }),
            commits: AtomicU64::new(0),
            committed_requests: AtomicU64::new(0),
        }
    }

    pub(crate) fn current_revision(&self) -> Revision {
        self.current_revision.load(Ordering::Acquire)
    }

    /// A receiver of every batch published after the returned revision.
    pub(crate) fn subscribe(&self) -> (broadcast::Receiver<Arc<[WatchEvent]>>, Revision) {
        let live = self.live();
        (live.sender.subscribe(), live.published_revision)
    }

    /// `(commits, requests committed)` since the store was opened.
    pub(crate) fn write_counts(&self) -> (u64, u64) {
        (
            self.commits.load(Ordering::Relaxed),
            self.committed_requests.load(Ordering::Relaxed),
        )
    }

    fn live(&self) -> MutexGuard<'_, Live> {
        // Nothing panics while holding this lock; the data stays consistent.
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub(crate) struct Writer {
    connection: Connection,
    checkpointer: Checkpointer,
    requests: mpsc::Receiver<WriteRequest>,
    shared: Arc<Shared>,
    max_batch_requests: usize,
}

/// A request with its outcome, answered once the batch is settled.
enum Pending {
    Txn {
        txn: Txn,
        reply: oneshot::Sender<Result<TxnResponse>>,
        outcome: Result<TxnResponse>,
    },
    Compact {
        revision: Revision,
        reply: oneshot::Sender<Result<()>>,
        outcome: Result<()>,
    },
}

struct Committed {
    revision: Revision,
    events: Vec<WatchEvent>,
}

impl Writer {
    pub(crate) fn new(
        connection: Connection,
        checkpointer: Checkpointer,
        requests: mpsc::Receiver<WriteRequest>,
        shared: Arc<Shared>,
        max_batch_requests: usize,
    ) -> Writer {
        Writer {
            connection,
            checkpointer,
            requests,
            shared,
            max_batch_requests: max_batch_requests.max(1),
        }
    }

    /// Runs until every sender is dropped, then closes the connection.
    pub(crate) fn spawn(self) -> std::io::Result<thread::JoinHandle<()>> {
        thread::Builder::new()
            .name("store-sqlite-writer".to_string())
            .spawn(move || self.run())
    }

    fn run(mut self) {
        while let Ok(first) = self.requests.recv() {
            let mut batch = vec![first];
            while batch.len() < self.max_batch_requests {
                match self.requests.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            self.process(batch);
        }
    }

    fn process(&mut self, batch: Vec<WriteRequest>) {
        let stopwatch = instruments::Stopwatch::start();
        let mut pending: Vec<Pending> = batch
            .into_iter()
            .map(|request| match request {
                WriteRequest::Txn { txn, reply } => Pending::Txn {
                    txn,
                    reply,
                    outcome: Err(not_applied()),
                },
                WriteRequest::Compact { revision, reply } => Pending::Compact {
                    revision,
                    reply,
                    outcome: Err(not_applied()),
                },
            })
            .collect();
        // Savepoints (so that a failing transaction is undone alone) cost a
        // statement journal write per page; the batch is tried without them
        // first and only redone with them when a transaction fails.
        let mut applied = apply_batch(&mut self.connection, &mut pending, false);
        if matches!(applied, Ok(None)) {
            applied = apply_batch(&mut self.connection, &mut pending, true);
        }
        match applied {
            Ok(Some(committed)) => {
                instruments::global().observe_store_commit(stopwatch.elapsed_s(), pending.len());
                self.publish(committed, pending.len());
                self.checkpointer.nudge();
            }
            failed => {
                let error = match failed {
                    Err(error) => error.to_string(),
                    // With savepoints a failing transaction never stops
                    // the batch.
                    _ => "a transaction failed".to_string(),
                };
                tracing::error!(%error, requests = pending.len(), "store batch failed to commit");
                let message = format!("sqlite: the write batch failed to commit: {error}");
                for request in &mut pending {
                    match request {
                        Pending::Txn { outcome, .. } => {
                            *outcome = Err(StoreError::Backend(message.clone()))
                        }
                        Pending::Compact { outcome, .. } => {
                            *outcome = Err(StoreError::Backend(message.clone()))
                        }
                    }
                }
            }
        }
        for request in pending {
            // A caller that stopped waiting does not need its answer.
            match request {
                Pending::Txn { reply, outcome, .. } => {
                    let _ = reply.send(outcome);
                }
                Pending::Compact { reply, outcome, .. } => {
                    let _ = reply.send(outcome);
                }
            }
        }
    }

    /// Makes a committed batch visible: revision first, then watch events,
    /// so that anyone who sees an acknowledgement also sees both.
    fn publish(&self, committed: Committed, requests: usize) {
        self.shared
            .current_revision
            .store(committed.revision, Ordering::Release);
        {
            let mut live = self.shared.live();
            live.published_revision = committed.revision;
            if !committed.events.is_empty() {
                // No receivers is fine: nobody is watching.
                let _ = live.sender.send(committed.events.into());
            }
        }
        self.shared.commits.fetch_add(1, Ordering::Relaxed);
        self.shared
            .committed_requests
            .fetch_add(requests as u64, Ordering::Relaxed);
    }
}

fn not_applied() -> StoreError {
    StoreError::Backend("sqlite: the write batch failed before this request ran".to_string())
}

/// Applies `pending` in order in one transaction and commits it, recording
/// each request's outcome. An error here means nothing was committed.
/// Without `savepoints`, a transaction that fails rolls the whole batch back
/// and `Ok(None)` asks for the batch to be redone with them; with them, it
/// is undone alone and the batch goes on.
fn apply_batch(
    connection: &mut Connection,
    pending: &mut [Pending],
    savepoints: bool,
) -> rusqlite::Result<Option<Committed>> {
    let mut transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Read inside the write lock: the database, not this process, is the
    // authority on the revision.
    let start_revision = read_meta(&transaction, META_REVISION)?;
    let mut revision = start_revision;
    let mut compacted_revision = read_meta(&transaction, META_COMPACTED_REVISION)?;
    let mut events = Vec::new();
    for request in pending.iter_mut() {
        match request {
            Pending::Txn { txn, outcome, .. } if !savepoints => {
                match apply_txn(&transaction, txn, revision + 1) {
                    Ok((succeeded, txn_events)) => {
                        if !txn_events.is_empty() {
                            revision += 1;
                            events.extend(txn_events);
                        }
                        *outcome = Ok(TxnResponse {
                            succeeded,
                            revision,
                        });
                    }
                    // Dropping the transaction rolls the batch back.
                    Err(_) => return Ok(None),
                }
            }
            Pending::Txn { txn, outcome, .. } => {
                let mut savepoint = transaction.savepoint()?;
                match apply_txn(&savepoint, txn, revision + 1) {
                    Ok((succeeded, txn_events)) => {
                        savepoint.commit()?;
                        if !txn_events.is_empty() {
                            revision += 1;
                            events.extend(txn_events);
                        }
                        *outcome = Ok(TxnResponse {
                            succeeded,
                            revision,
                        });
                    }
                    Err(error) => {
                        // Undo this transaction only; the rest of the batch
                        // goes on.
                        savepoint.rollback()?;
                        savepoint.commit()?;
                        *outcome = Err(backend_error(error));
                    }
                }
            }
            Pending::Compact {
                revision: requested,
                outcome,
                ..
            } => {
                // Compacting past the next revision would forget events that
                // have not happened yet.
                let target = (*requested).min(revision + 1);
                if target > compacted_revision {
                    transaction
                        .prepare_cached("DELETE FROM history WHERE revision < ?1")?
                        .execute([target])?;
                    write_meta(&transaction, META_COMPACTED_REVISION, target)?;
                    compacted_revision = target;
                }
                *outcome = Ok(());
            }
        }
    }
    if revision != start_revision {
        write_meta(&transaction, META_REVISION, revision)?;
    }
    transaction.commit()?;
    Ok(Some(Committed { revision, events }))
}

/// Applies one transaction at `revision`; returns whether its compares held
/// and its events (none: it wrote nothing and takes no revision).
fn apply_txn(
    connection: &Connection,
    txn: &Txn,
    revision: Revision,
) -> rusqlite::Result<(bool, Vec<WatchEvent>)> {
    let mut succeeded = true;
    for compare in &txn.compare {
        if !compare_holds(compare, load_key(connection, &compare.key)?.as_ref()) {
            succeeded = false;
            break;
        }
    }
    let ops = if succeeded {
        &txn.success
    } else {
        &txn.failure
    };
    let mut events = Vec::new();
    for op in ops {
        let event = match op {
            Op::Put { key, value } => {
                let (create_revision, version) = connection
                    .prepare_cached(
                        "INSERT INTO kv (key, value, create_revision, mod_revision, version)
                         VALUES (?1, ?2, ?3, ?3, 1)
                         ON CONFLICT (key) DO UPDATE SET
                             value = excluded.value,
                             mod_revision = excluded.mod_revision,
                             version = kv.version + 1
                         RETURNING create_revision, version",
                    )?
                    .query_row(rusqlite::params![key, value, revision], |row| {
                        Ok((row.get(0)?, row.get(1)?))
                    })?;
                WatchEvent {
                    kind: EventKind::Put,
                    kv: KeyValue {
                        key: key.clone(),
                        value: value.clone(),
                        create_revision,
                        mod_revision: revision,
                        version,
                    },
                }
            }
            Op::Delete { key } => {
                let deleted = connection
                    .prepare_cached("DELETE FROM kv WHERE key = ?1")?
                    .execute([key])?;
                if deleted == 0 {
                    continue;
                }
                WatchEvent {
                    kind: EventKind::Delete,
                    kv: KeyValue {
                        key: key.clone(),
                        value: Vec::new(),
                        create_revision: 0,
                        mod_revision: revision,
                        version: 0,
                    },
                }
            }
        };
        let kind = match event.kind {
            EventKind::Put => KIND_PUT,
            EventKind::Delete => KIND_DELETE,
        };
        connection
            .prepare_cached(
                "INSERT INTO history (revision, seq, key, kind, value, create_revision, version)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(rusqlite::params![
                revision,
                events.len() as i64,
                event.kv.key,
                kind,
                event.kv.value,
                event.kv.create_revision,
                event.kv.version,
            ])?;
        events.push(event);
    }
    Ok((succeeded, events))
}
