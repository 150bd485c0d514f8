//! The read pool: a few threads, each owning a read-only WAL connection,
//! taking jobs from one shared queue.
//!
//! A WAL reader sees every transaction committed before its read transaction
//! starts, and the writer acknowledges a transaction only after its commit,
//! so a read observes every write acknowledged before the read was issued.

use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::thread;

use rusqlite::{Connection, OptionalExtension};
use store::{KeyValue, StoreError};
use tokio::sync::oneshot;

type ReadJob = Box<dyn FnOnce(&mut Connection) + Send>;

/// Cheap to clone; the threads exit when every clone is dropped.
#[derive(Clone)]
pub(crate) struct ReadPool {
    jobs: mpsc::Sender<ReadJob>,
}

impl ReadPool {
    /// Starts one thread per connection.
    pub(crate) fn start(connections: Vec<Connection>) -> std::io::Result<ReadPool> {
        let (jobs, queue) = mpsc::channel::<ReadJob>();
        let queue = Arc::new(Mutex::new(queue));
        for (index, mut connection) in connections.into_iter().enumerate() {
            let queue = Arc::clone(&queue);
            thread::Builder::new()
                .name(format!("store-sqlite-reader-{index}"))
                .spawn(move || loop {
                    // The lock is held only while waiting for a job, never
                    // while running one.
                    let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
                    match job {
                        Ok(job) => job(&mut connection),
                        Err(mpsc::RecvError) => return,
                    }
                })?;
        }
        Ok(ReadPool { jobs })
    }

    /// Runs `job` on a pooled connection.
    pub(crate) async fn read<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Box::new(move |connection| {
                // The caller may have gone away; then nobody needs the answer.
                let _ = reply.send(job(connection));
            }))
            .map_err(|_| StoreError::Closed)?;
        answer
            .await
            .map_err(|_| StoreError::Closed)?
            .map_err(backend_error)
    }
}

pub(crate) fn backend_error(error: rusqlite::Error) -> StoreError {
    StoreError::Backend(format!("sqlite: {error}"))
}

/// The current state of `key`, on any connection (a reader, or the writer
/// inside its transaction).
pub(crate) fn load_key(connection: &Connection, key: &str) -> rusqlite::Result<Option<KeyValue>> {
    connection
        .prepare_cached(
            "SELECT value, create_revision, mod_revision, version FROM kv WHERE key = ?1",
        )?
        .query_row([key], |row| {
            Ok(KeyValue {
                key: key.to_string(),
                value: row.get(0)?,
                create_revision: row.get(1)?,
                mod_revision: row.get(2)?,
                version: row.get(3)?,
            })
        })
        .optional()
}

/// Keys in `[key, range_end)` (`range_end` non-empty) in byte order, at most
/// `limit` of them (0: all), and whether more matched.
pub(crate) fn load_range(
    connection: &Connection,
    key: &str,
    range_end: &str,
    limit: usize,
) -> rusqlite::Result<(Vec<KeyValue>, bool)> {
    // SQLite's default BINARY collation compares TEXT with memcmp: byte order.
    let sql_limit = if limit == 0 {
        -1
    } else {
        i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1
    };
    let mut statement = connection.prepare_cached(
        "SELECT key, value, create_revision, mod_revision, version FROM kv
         WHERE key >= ?1 AND key < ?2 ORDER BY key LIMIT ?3",
    )?;
    let mut kvs = statement
        .query_map(rusqlite::params![key, range_end, sql_limit], |row| {
            Ok(KeyValue {
                key: row.get(0)?,
                value: row.get(1)?,
                create_revision: row.get(2)?,
                mod_revision: row.get(3)?,
                version: row.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let more = limit != 0 && kvs.len() > limit;
    kvs.truncate(if limit == 0 { kvs.len() } else { limit });
    Ok((kvs, more))
}
