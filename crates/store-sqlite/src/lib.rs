//! The durable [`Store`]: SQLite in WAL mode with `synchronous=FULL`.
//!
//! Layout:
//! - one writer thread owns the only writing connection and applies queued
//!   transactions in batches, one commit (one fsync) per batch — group
//!   commit ([`writer`]);
//! - a small pool of threads with read-only connections serves `get`,
//!   `range` and watch replay ([`reader`]);
//! - watches replay the `history` table, then follow the writer's broadcast
//!   ([`watch`]);
//! - the schema is versioned by `PRAGMA user_version` ([`schema`]).
//!
//! Architecture Invariant: a transaction is acknowledged only after the
//! batch holding it has committed, and its watch events are published before
//! the acknowledgement, so after `txn` returns every read and every new watch
//! sees it.

mod checkpoint;
mod reader;
mod schema;
mod watch;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags};
use store::{
    KeyValue, RangeRequest, RangeResponse, Result, Revision, Store, StoreError, Txn, TxnResponse,
    WatchStream,
};
use tokio::sync::oneshot;

use crate::checkpoint::{Checkpointer, WRITER_AUTOCHECKPOINT_PAGES};
use crate::reader::{load_key, load_range, ReadPool};
use crate::schema::{read_meta, META_REVISION};
use crate::writer::{Shared, WriteRequest, Writer};

/// How long a connection waits for a lock held by another process before
/// failing with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum SqliteStoreError {
    #[error("cannot create the store directory {path}: {source}; check that the parent exists and is writable")]
    CreateDirectory {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the store database {path}: {source}; check the path and its permissions")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("the store database {path} has schema version {found}, newer than version {supported} which this Berth understands; run a newer Berth or point it at another data directory")]
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("migrating the store database {path} to schema version {version} failed: {source}; the database is left at the previous version")]
    Migrate {
        path: PathBuf,
        version: i64,
        source: rusqlite::Error,
    },
    #[error("the store database {path} cannot use write-ahead logging (journal mode stays {journal_mode}); put it on a local file system")]
    NoWal { path: PathBuf, journal_mode: String },
    #[error("cannot start the store's threads: {0}")]
    SpawnThread(#[source] std::io::Error),
    #[error("opening the store was cancelled because the async runtime is shutting down")]
    Cancelled,
}

/// Tuning knobs; [`Default`] suits Berth.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqliteStoreOptions {
    /// Read-only connections (and threads) serving reads.
    pub reader_count: usize,
    /// How many commit batches a watcher may fall behind before it is
    /// dropped with [`StoreError::WatchLagged`].
    pub watch_capacity: usize,
    /// The most requests committed together in one batch.
    pub max_batch_requests: usize,
}

impl Default for SqliteStoreOptions {
    fn default() -> Self {
        SqliteStoreOptions {
            reader_count: 4,
            watch_capacity: 4096,
            max_batch_requests: 1024,
        }
    }
}

/// Counters of the writer since the store was opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteStats {
    /// Batches committed (each one fsync).
    pub commits: u64,
    /// Requests (transactions and compactions) in those batches.
    pub requests: u64,
}

/// The SQLite-backed store. Cloning is cheap and shares the same database
/// and threads; the threads stop when the last clone (and the last watch) is
/// dropped, after finishing the requests already queued.
///
/// A `txn` future dropped after it was queued may still commit (as with a
/// network store): callers that retry must compare, not assume.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writes: mpsc::Sender<WriteRequest>,
    reads: ReadPool,
    shared: Arc<Shared>,
}

/// Opens (creating if missing, with its directory) the store at `path`.
pub async fn open(path: &Path) -> Result<SqliteStore, SqliteStoreError> {
    SqliteStore::open(path).await
}

impl SqliteStore {
    /// Opens (creating if missing, with its directory) the store at `path`.
    pub async fn open(path: &Path) -> Result<SqliteStore, SqliteStoreError> {
        Self::open_with_options(path, SqliteStoreOptions::default()).await
    }

    pub async fn open_with_options(
        path: &Path,
        options: SqliteStoreOptions,
    ) -> Result<SqliteStore, SqliteStoreError> {
        let path = path.to_path_buf();
        match tokio::task::spawn_blocking(move || open_blocking(path, options)).await {
            Ok(result) => result,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(_) => Err(SqliteStoreError::Cancelled),
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// How well group commit is batching: `requests / commits` per fsync.
    pub fn write_stats(&self) -> WriteStats {
        let (commits, requests) = self.inner.shared.write_counts();
        WriteStats { commits, requests }
    }

    async fn write<T>(
        &self,
        request: impl FnOnce(oneshot::Sender<Result<T>>) -> WriteRequest,
    ) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .writes
            .send(request(reply))
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

fn open_blocking(
    path: PathBuf,
    options: SqliteStoreOptions,
) -> Result<SqliteStore, SqliteStoreError> {
    if let Some(directory) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(directory).map_err(|source| SqliteStoreError::CreateDirectory {
            path: directory.to_path_buf(),
            source,
        })?;
    }
    let open_error = |source| SqliteStoreError::Open {
        path: path.clone(),
        source,
    };
    let mut connection = Connection::open(&path).map_err(open_error)?;
    configure_writer(&connection, &path)?;
    schema::migrate(&mut connection, &path)?;
    let revision = read_meta(&connection, META_REVISION).map_err(open_error)?;

    let readers = (0..options.reader_count.max(1))
        .map(|_| open_reader(&path))
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(open_error)?;
    let reads = ReadPool::start(readers).map_err(SqliteStoreError::SpawnThread)?;
    let shared = Arc::new(Shared::new(revision, options.watch_capacity));
    let checkpointer = Checkpointer::start(open_checkpointer(&path).map_err(open_error)?)
        .map_err(SqliteStoreError::SpawnThread)?;
    let (writes, requests) = mpsc::channel();
    Writer::new(
        connection,
        checkpointer,
        requests,
        Arc::clone(&shared),
        options.max_batch_requests,
    )
    .spawn()
    .map_err(SqliteStoreError::SpawnThread)?;
    tracing::debug!(path = %path.display(), revision, "opened the SQLite store");
    Ok(SqliteStore {
        inner: Arc::new(Inner {
            path,
            writes,
            reads,
            shared,
        }),
    })
}

fn configure_writer(connection: &Connection, path: &Path) -> Result<(), SqliteStoreError> {
    let open_error = |source| SqliteStoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    connection.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
    let journal_mode: String = connection
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(open_error)?;
    if !journal_mode.eq_ignore_ascii_case("wal") {
        return Err(SqliteStoreError::NoWal {
            path: path.to_path_buf(),
            journal_mode,
        });
    }
    // FULL: every commit fsyncs the WAL, so an acknowledged txn survives a
    // crash or power loss.
    connection
        .pragma_update(None, "synchronous", "FULL")
        .map_err(open_error)?;
    // Checkpoints run on their own thread; this is only the backstop.
    connection
        .pragma_update(None, "wal_autocheckpoint", WRITER_AUTOCHECKPOINT_PAGES)
        .map_err(open_error)?;
    // The statement journal of savepoints lives in memory: it only undoes a
    // failed transaction inside a batch, never survives a crash.
    connection
        .pragma_update(None, "temp_store", "MEMORY")
        .map_err(open_error)?;
    Ok(())
}

/// The checkpointer's connection: it writes the database file, and syncs
/// it before the WAL may be reused.
fn open_checkpointer(path: &Path) -> rusqlite::Result<Connection> {
    let connection = Connection::open(path)?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    connection.pragma_update(None, "synchronous", "FULL")?;
    // It never commits, so it never checkpoints on its own.
    connection.pragma_update(None, "wal_autocheckpoint", 0)?;
    Ok(connection)
}

fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    Ok(connection)
}

#[async_trait]
impl Store for SqliteStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let key = key.to_string();
        self.inner
            .reads
            .read(move |connection| load_key(connection, &key))
            .await
    }

    async fn range(&self, request: RangeRequest) -> Result<RangeResponse> {
        self.inner
            .reads
            .read(move |connection| {
                // One read transaction: the keys and the revision agree.
                let transaction = connection.transaction()?;
                let revision = read_meta(&transaction, META_REVISION)?;
                let (kvs, more) = if request.range_end.is_empty() {
                    (
                        load_key(&transaction, &request.key)?.into_iter().collect(),
                        false,
                    )
                } else {
                    load_range(
                        &transaction,
                        &request.key,
                        &request.range_end,
                        request.limit,
                    )?
                };
                Ok(RangeResponse {
                    kvs,
                    more,
                    revision,
                })
            })
            .await
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse> {
        self.write(|reply| WriteRequest::Txn { txn, reply }).await
    }

    async fn watch(
        &self,
        key: &str,
        range_end: &str,
        start_revision: Revision,
    ) -> Result<WatchStream> {
        watch::watch(
            &self.inner.reads,
            &self.inner.shared,
            key,
            range_end,
            start_revision,
        )
        .await
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.inner.shared.current_revision())
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        self.write(|reply| WriteRequest::Compact { revision, reply })
            .await
    }
}
