//! [`SqliteMetricStore`]: the durable backend, one SQLite file
//! (`metrics.sqlite3` in the directory the caller gives).
//!
//! - `series` (id, namespace, name, dimensions as JSON, unit, storage
//!   resolution, last timestamp) and `buckets` (tier, start, series →
//!   statistics and the encoded [`Distribution`](crate::Distribution), NULL
//!   when percentiles are unavailable), `WITHOUT ROWID`, in *time* order:
//!   the buckets a batch touches (every series' current minute, 5 minutes
//!   and hour) are neighbours, so a commit dirties about one page per ~50
//!   buckets. (Ordered by series first, every series touched dirtied its own
//!   pages in each tier: [`crate::figures`] measured 80k samples/s against
//!   99k with the same writer, 16 appenders.) A read therefore probes one key per
//!   bucket start (a recursive CTE inside SQLite, ~1.5 µs a bucket).
//! - `append` does the per-sample work on the caller's thread: it merges its
//!   samples per (series, tier, bucket). One writer thread owns the only
//!   writing connection: it takes every queued append, merges them again per
//!   (series, tier, bucket), upserts each bucket once in key order (SQLite
//!   merges the distributions in a registered function), commits once
//!   (group commit; WAL, `synchronous=FULL`) and only then answers, so every
//!   acknowledged append is on disk, and a failed batch fails every append
//!   in it, each whole.
//! - The series catalog (key → series ids, last timestamps) is also in
//!   memory, updated after each commit: `list_metrics` and the series lookup
//!   of `read` never touch SQLite. Reads use read-only connections (a small
//!   pool) and see only committed data.
//! - Retention deletes, per tier, the key range before the tier's cutoff
//!   (the front of the tier), on the writer thread (one transaction).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex, PoisonError, RwLock};
use std::thread;

use rusqlite::functions::FunctionFlags;
use rusqlite::{params, Connection, OpenFlags};

use crate::memory::{after_bound, list_in_order};
use crate::tiers::{align_down, align_up, check_read, plan_read, tiers_of, Bucket, Periods, TIERS};
use crate::{
    check_sample, Aggregate, Distribution, ListFilter, MetricKey, MetricStore, MetricStoreError,
    Sample, StatisticSet,
};

/// The database's file name inside the store's directory.
pub const FILE_NAME: &str = "metrics.sqlite3";

const SCHEMA_VERSION: i64 = 1;
const SCHEMA: &str = "
CREATE TABLE series (
    id INTEGER PRIMARY KEY,
    namespace TEXT NOT NULL,
    metric_name TEXT NOT NULL,
    dimensions TEXT NOT NULL,
    unit TEXT NOT NULL,
    storage_resolution_s INTEGER NOT NULL,
    last_timestamp_ms INTEGER NOT NULL,
    UNIQUE (namespace, metric_name, dimensions, unit, storage_resolution_s)
);
CREATE TABLE buckets (
    series_id INTEGER NOT NULL,
    tier_s INTEGER NOT NULL,
    start_ms INTEGER NOT NULL,
    sample_count REAL NOT NULL,
    sum REAL NOT NULL,
    minimum REAL NOT NULL,
    maximum REAL NOT NULL,
    distribution BLOB,
    PRIMARY KEY (tier_s, start_ms, series_id)
) WITHOUT ROWID;
";

const UPSERT_BUCKET: &str = "
INSERT INTO buckets (series_id, tier_s, start_ms, sample_count, sum, minimum, maximum, distribution)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
ON CONFLICT (tier_s, start_ms, series_id) DO UPDATE SET
    sample_count = sample_count + excluded.sample_count,
    sum = sum + excluded.sum,
    minimum = min(minimum, excluded.minimum),
    maximum = max(maximum, excluded.maximum),
    distribution = merge_distribution(distribution, excluded.distribution)";

/// One point lookup per bucket start in `[?3, ?4)` (step `?5`): rows are
/// kept in time order, so one series' buckets are not adjacent.
const SELECT_BUCKETS: &str = "
WITH RECURSIVE starts(start_ms) AS (
    SELECT ?3 WHERE ?3 < ?4
    UNION ALL SELECT start_ms + ?5 FROM starts WHERE start_ms + ?5 < ?4
)
SELECT b.start_ms, b.sample_count, b.sum, b.minimum, b.maximum, b.distribution
FROM starts CROSS JOIN buckets AS b
WHERE b.tier_s = ?2 AND b.start_ms = starts.start_ms AND b.series_id = ?1";

/// Appends merged into one writer batch at most (a bound on one
/// transaction's size and on how long one caller's error can wait).
const MAX_BATCH_APPENDS: usize = 256;
/// Read-only connections kept for reuse.
const MAX_IDLE_READERS: usize = 8;
/// Negative: KiB (SQLite's convention), per read connection.
const READER_CACHE_KIB: i64 = -16_384;
const READER_MMAP_BYTES: i64 = 1 << 30;
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct SeriesIdentity {
    key: MetricKey,
    unit: String,
    storage_resolution_s: u32,
}

struct CatalogSeries {
    id: i64,
    unit: String,
    storage_resolution_s: u32,
}

#[derive(Default)]
struct CatalogMetric {
    last_timestamp_ms: i64,
    series: Vec<CatalogSeries>,
}

/// Every committed series, in memory.
#[derive(Default)]
struct Catalog {
    ids: HashMap<SeriesIdentity, i64>,
    metrics: BTreeMap<MetricKey, CatalogMetric>,
}

impl Catalog {
    fn insert(&mut self, identity: SeriesIdentity, id: i64, last_timestamp_ms: i64) {
        let metric = self
            .metrics
            .entry(identity.key.clone())
            .or_insert_with(|| CatalogMetric {
                last_timestamp_ms,
                series: Vec::new(),
            });
        metric.last_timestamp_ms = metric.last_timestamp_ms.max(last_timestamp_ms);
        metric.series.push(CatalogSeries {
            id,
            unit: identity.unit.clone(),
            storage_resolution_s: identity.storage_resolution_s,
        });
        self.ids.insert(identity, id);
    }
}

/// One append, merged per (series, tier, bucket) on the caller's thread.
struct Prepared {
    /// The append's series with their latest sample timestamps and their
    /// ids when the catalog had them already.
    series: Vec<(SeriesIdentity, i64, Option<i64>)>,
    /// ((index into `series`, tier index, bucket start), contribution).
    buckets: Vec<((usize, usize, i64), Bucket)>,
}

fn prepare(samples: &[Sample], catalog: &RwLock<Catalog>) -> Prepared {
    let mut local: HashMap<(&MetricKey, &str, u32), usize> = HashMap::new();
    let mut series: Vec<(SeriesIdentity, i64)> = Vec::new();
    let mut buckets: HashMap<(usize, usize, i64), Bucket> = HashMap::new();
    for sample in samples {
        let index = *local
            .entry((&sample.key, &sample.unit, sample.storage_resolution_s))
            .or_insert_with(|| {
                series.push((
                    SeriesIdentity {
                        key: sample.key.clone(),
                        unit: sample.unit.clone(),
                        storage_resolution_s: sample.storage_resolution_s,
                    },
                    sample.timestamp_ms,
                ));
                series.len() - 1
            });
        let last = &mut series[index].1;
        *last = (*last).max(sample.timestamp_ms);
        let contribution = Bucket::of_sample(sample);
        for tier_index in tiers_of(sample.storage_resolution_s) {
            let start_ms = align_down(sample.timestamp_ms, TIERS[tier_index].resolution_ms());
            match buckets.get_mut(&(index, tier_index, start_ms)) {
                Some(bucket) => bucket.merge(&contribution),
                None => {
                    buckets.insert((index, tier_index, start_ms), contribution.clone());
                }
            }
        }
    }
    let catalog = catalog.read().unwrap_or_else(PoisonError::into_inner);
    let series = series
        .into_iter()
        .map(|(identity, last_ms)| {
            let id = catalog.ids.get(&identity).copied();
            (identity, last_ms, id)
        })
        .collect();
    Prepared {
        series,
        buckets: buckets.into_iter().collect(),
    }
}

enum Request {
    Append {
        prepared: Prepared,
        reply: mpsc::SyncSender<Result<(), MetricStoreError>>,
    },
    Retention {
        now_ms: i64,
        reply: mpsc::SyncSender<Result<u64, MetricStoreError>>,
    },
}

struct Inner {
    path: PathBuf,
    requests: Mutex<Option<mpsc::Sender<Request>>>,
    writer: Mutex<Option<thread::JoinHandle<()>>>,
    catalog: Arc<RwLock<Catalog>>,
    readers: Mutex<Vec<Connection>>,
}

/// See the module documentation. Dropping it stops the writer thread once
/// the queued appends are committed.
pub struct SqliteMetricStore {
    inner: Inner,
}

fn sqlite_error(path: &Path) -> impl Fn(rusqlite::Error) -> MetricStoreError + '_ {
    move |source| MetricStoreError::Sqlite {
        path: path.display().to_string(),
        source,
    }
}

impl SqliteMetricStore {
    /// Opens (creating when missing) `directory/metrics.sqlite3`.
    pub fn open(directory: &Path) -> Result<SqliteMetricStore, MetricStoreError> {
        std::fs::create_dir_all(directory).map_err(|source| MetricStoreError::Io {
            path: directory.display().to_string(),
            source,
        })?;
        let path = directory.join(FILE_NAME);
        let error = sqlite_error(&path);
        let mut connection = Connection::open(&path).map_err(&error)?;
        configure_writer(&connection, &path)?;
        migrate(&mut connection, &path)?;
        let (catalog, next_id) = load_catalog(&connection, &path)?;
        let catalog = Arc::new(RwLock::new(catalog));
        let (requests, queue) = mpsc::channel();
        let writer = Writer {
            connection,
            path: path.clone(),
            catalog: Arc::clone(&catalog),
            next_id,
        };
        let handle = thread::Builder::new()
            .name("metric-store-writer".to_string())
            .spawn(move || writer.run(&queue))
            .map_err(|source| MetricStoreError::Io {
                path: "metric store writer thread".to_string(),
                source,
            })?;
        Ok(SqliteMetricStore {
            inner: Inner {
                path: path.clone(),
                requests: Mutex::new(Some(requests)),
                writer: Mutex::new(Some(handle)),
                catalog,
                readers: Mutex::new(Vec::new()),
            },
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Bytes on disk (database and WAL), for figures.
    pub fn disk_bytes(&self) -> u64 {
        ["", "-wal", "-shm"]
            .iter()
            .filter_map(|suffix| {
                let mut name = self.inner.path.clone().into_os_string();
                name.push(suffix);
                std::fs::metadata(name).ok()
            })
            .map(|metadata| metadata.len())
            .sum()
    }

    fn send(&self, request: Request) -> Result<(), MetricStoreError> {
        let requests = self
            .inner
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        requests
            .as_ref()
            .ok_or(MetricStoreError::WriterStopped)?
            .send(request)
            .map_err(|_| MetricStoreError::WriterStopped)
    }

    fn with_reader<T>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, MetricStoreError>,
    ) -> Result<T, MetricStoreError> {
        let idle = self
            .inner
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let connection = match idle {
            Some(connection) => connection,
            None => open_reader(&self.inner.path).map_err(sqlite_error(&self.inner.path))?,
        };
        let result = work(&connection);
        let mut readers = self
            .inner
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if readers.len() < MAX_IDLE_READERS {
            readers.push(connection);
        }
        result
    }
}

impl Drop for SqliteMetricStore {
    fn drop(&mut self) {
        // Closing the queue lets the writer finish what is queued and exit.
        self.inner
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = handle.join();
        }
    }
}

fn configure_writer(connection: &Connection, path: &Path) -> Result<(), MetricStoreError> {
    let journal_mode: String = connection
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(sqlite_error(path))?;
    if !journal_mode.eq_ignore_ascii_case("wal") {
        return Err(MetricStoreError::NoWal {
            path: path.display().to_string(),
            journal_mode,
        });
    }
    configure_durable_writer(connection).map_err(sqlite_error(path))
}

fn configure_durable_writer(connection: &Connection) -> rusqlite::Result<()> {
    connection.busy_timeout(BUSY_TIMEOUT)?;
    // FULL: every commit fsyncs the WAL, so an acknowledged append survives
    // a crash or power loss.
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.pragma_update(None, "cache_size", -65_536)?;
    connection.create_scalar_function(
        "merge_distribution",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |context| {
            let stored = context.get_raw(0).as_blob_or_null()?;
            let added = context.get_raw(1).as_blob_or_null()?;
            let (Some(stored), Some(added)) = (stored, added) else {
                // Either side unavailable: the bucket's percentiles are.
                return Ok(None);
            };
            let user_error =
                |error: MetricStoreError| rusqlite::Error::UserFunctionError(error.into());
            let mut merged = Distribution::from_bytes(stored).map_err(user_error)?;
            merged.merge(&Distribution::from_bytes(added).map_err(user_error)?);
            Ok(Some(merged.to_bytes()))
        },
    )?;
    Ok(())
}

fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    // Reads probe one bucket per period across the whole time-ordered
    // table: keep the hot pages in memory rather than re-reading them.
    connection.pragma_update(None, "cache_size", READER_CACHE_KIB)?;
    connection.pragma_update(None, "mmap_size", READER_MMAP_BYTES)?;
    Ok(connection)
}

fn migrate(connection: &mut Connection, path: &Path) -> Result<(), MetricStoreError> {
    let error = sqlite_error(path);
    let version: i64 = connection
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(&error)?;
    if version > SCHEMA_VERSION {
        return Err(MetricStoreError::Corrupt(format!(
            "{} has schema version {version}, newer than this build's {SCHEMA_VERSION}; run a newer Berth",
            path.display()
        )));
    }
    if version < SCHEMA_VERSION {
        let transaction = connection.transaction().map_err(&error)?;
        transaction.execute_batch(SCHEMA).map_err(&error)?;
        transaction
            .pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(&error)?;
        transaction.commit().map_err(&error)?;
    }
    Ok(())
}

fn load_catalog(connection: &Connection, path: &Path) -> Result<(Catalog, i64), MetricStoreError> {
    let error = sqlite_error(path);
    let mut statement = connection
        .prepare(
            "SELECT id, namespace, metric_name, dimensions, unit, storage_resolution_s, last_timestamp_ms FROM series",
        )
        .map_err(&error)?;
    let mut rows = statement.query([]).map_err(&error)?;
    let mut catalog = Catalog::default();
    let mut next_id = 1;
    while let Some(row) = rows.next().map_err(&error)? {
        let id: i64 = row.get(0).map_err(&error)?;
        let dimensions: String = row.get(3).map_err(&error)?;
        let dimensions: Vec<(String, String)> = serde_json::from_str(&dimensions)
            .map_err(|e| MetricStoreError::Corrupt(format!("series {id} dimensions: {e}")))?;
        let identity = SeriesIdentity {
            key: MetricKey {
                namespace: row.get(1).map_err(&error)?,
                metric_name: row.get(2).map_err(&error)?,
                dimensions,
            },
            unit: row.get(4).map_err(&error)?,
            storage_resolution_s: row.get(5).map_err(&error)?,
        };
        catalog.insert(identity, id, row.get(6).map_err(&error)?);
        next_id = next_id.max(id + 1);
    }
    Ok((catalog, next_id))
}

struct Writer {
    connection: Connection,
    path: PathBuf,
    catalog: Arc<RwLock<Catalog>>,
    /// The next series id to hand out (ids of a failed batch are reused).
    next_id: i64,
}

impl Writer {
    fn run(mut self, queue: &mpsc::Receiver<Request>) {
        while let Ok(first) = queue.recv() {
            let mut appends = Vec::new();
            let mut retentions = Vec::new();
            let mut take = |request| match request {
                Request::Append { prepared, reply } => appends.push((prepared, reply)),
                Request::Retention { now_ms, reply } => retentions.push((now_ms, reply)),
            };
            take(first);
            let mut taken = 1;
            while taken < MAX_BATCH_APPENDS {
                let Ok(request) = queue.try_recv() else { break };
                take(request);
                taken += 1;
            }
            if !appends.is_empty() {
                let (prepared, replies): (Vec<Prepared>, Vec<_>) = appends.into_iter().unzip();
                let outcome = self.commit_appends(prepared);
                for reply in replies {
                    let answer = match &outcome {
                        Ok(()) => Ok(()),
                        Err(message) => Err(MetricStoreError::CommitFailed {
                            path: self.path.display().to_string(),
                            message: message.clone(),
                        }),
                    };
                    // A caller that went away no longer needs its answer.
                    let _ = reply.send(answer);
                }
            }
            for (now_ms, reply) in retentions {
                let _ = reply.send(self.retain(now_ms));
            }
        }
    }

    /// Stores every append of the batch in one transaction.
    fn commit_appends(&mut self, appends: Vec<Prepared>) -> Result<(), String> {
        let mut new_series: Vec<(SeriesIdentity, i64, i64)> = Vec::new();
        let mut new_ids: HashMap<SeriesIdentity, usize> = HashMap::new();
        // (series id, last timestamp, index of the append holding its key).
        let mut last_timestamps: Vec<(i64, i64, usize, usize)> = Vec::new();
        // ((tier, start, series id), contribution), in the table's key order.
        let mut merged: Vec<((usize, i64, i64), Bucket)> = Vec::new();
        let mut next_id = self.next_id;
        let mut appends = appends;
        {
            let catalog = self.catalog.read().unwrap_or_else(PoisonError::into_inner);
            for (append_index, prepared) in appends.iter_mut().enumerate() {
                let mut ids = Vec::with_capacity(prepared.series.len());
                for (series_index, (identity, last_ms, known)) in prepared.series.iter().enumerate()
                {
                    // Created since the caller looked: a batch before this one.
                    let id = known.or_else(|| catalog.ids.get(identity).copied());
                    if let Some(id) = id {
                        last_timestamps.push((id, *last_ms, append_index, series_index));
                        ids.push(id);
                        continue;
                    }
                    if let Some(&at) = new_ids.get(identity) {
                        let entry = &mut new_series[at];
                        entry.2 = entry.2.max(*last_ms);
                        ids.push(entry.1);
                        continue;
                    }
                    let id = next_id;
                    next_id += 1;
                    new_ids.insert(identity.clone(), new_series.len());
                    new_series.push((identity.clone(), id, *last_ms));
                    ids.push(id);
                }
                merged.extend(std::mem::take(&mut prepared.buckets).into_iter().map(
                    |((index, tier_index, start_ms), bucket)| {
                        ((tier_index, start_ms, ids[index]), bucket)
                    },
                ));
            }
        }
        merged.sort_unstable_by_key(|(key, _)| *key);
        let mut unique: Vec<((usize, i64, i64), Bucket)> = Vec::with_capacity(merged.len());
        for (key, bucket) in merged {
            match unique.last_mut() {
                Some((last, existing)) if *last == key => existing.merge(&bucket),
                _ => unique.push((key, bucket)),
            }
        }
        let merged = unique;
        last_timestamps
            .sort_unstable_by_key(|(id, last_ms, _, _)| (*id, std::cmp::Reverse(*last_ms)));
        last_timestamps.dedup_by_key(|(id, _, _, _)| *id);

        let transaction = self.connection.transaction().map_err(|e| e.to_string())?;
        {
            let mut insert_series = transaction
                .prepare_cached(
                    "INSERT INTO series (id, namespace, metric_name, dimensions, unit, storage_resolution_s, last_timestamp_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(|e| e.to_string())?;
            for (identity, id, last_ms) in &new_series {
                let dimensions =
                    serde_json::to_string(&identity.key.dimensions).map_err(|e| e.to_string())?;
                insert_series
                    .execute(params![
                        id,
                        identity.key.namespace,
                        identity.key.metric_name,
                        dimensions,
                        identity.unit,
                        identity.storage_resolution_s,
                        last_ms
                    ])
                    .map_err(|e| e.to_string())?;
            }
            let mut update_last = transaction
                .prepare_cached(
                    "UPDATE series SET last_timestamp_ms = ?2 WHERE id = ?1 AND last_timestamp_ms < ?2",
                )
                .map_err(|e| e.to_string())?;
            for (id, last_ms, _, _) in &last_timestamps {
                update_last
                    .execute(params![id, last_ms])
                    .map_err(|e| e.to_string())?;
            }
            let mut upsert = transaction
                .prepare_cached(UPSERT_BUCKET)
                .map_err(|e| e.to_string())?;
            for ((tier_index, start_ms, series_id), bucket) in &merged {
                let stats = &bucket.stats;
                upsert
                    .execute(params![
                        series_id,
                        TIERS[*tier_index].resolution_s,
                        start_ms,
                        stats.sample_count,
                        stats.sum,
                        stats.minimum,
                        stats.maximum,
                        bucket.distribution.as_ref().map(Distribution::to_bytes),
                    ])
                    .map_err(|e| e.to_string())?;
            }
        }
        transaction.commit().map_err(|e| e.to_string())?;
        self.next_id = next_id;

        let mut catalog = self.catalog.write().unwrap_or_else(PoisonError::into_inner);
        for (identity, id, last_ms) in new_series {
            catalog.insert(identity, id, last_ms);
        }
        for (_, last_ms, append_index, series_index) in last_timestamps {
            let key = &appends[append_index].series[series_index].0.key;
            if let Some(metric) = catalog.metrics.get_mut(key) {
                metric.last_timestamp_ms = metric.last_timestamp_ms.max(last_ms);
            }
        }
        Ok(())
    }

    fn retain(&mut self, now_ms: i64) -> Result<u64, MetricStoreError> {
        let error = sqlite_error(&self.path);
        let transaction = self.connection.transaction().map_err(&error)?;
        let mut dropped = 0u64;
        {
            let mut delete = transaction
                .prepare_cached("DELETE FROM buckets WHERE tier_s = ?1 AND start_ms < ?2")
                .map_err(&error)?;
            for tier in &TIERS {
                dropped += delete
                    .execute(params![
                        tier.resolution_s,
                        tier.oldest_retained_start_ms(now_ms)
                    ])
                    .map_err(&error)? as u64;
            }
        }
        transaction.commit().map_err(&error)?;
        Ok(dropped)
    }
}

impl MetricStore for SqliteMetricStore {
    fn append(&self, samples: &[Sample]) -> Result<(), MetricStoreError> {
        samples.iter().try_for_each(check_sample)?;
        if samples.is_empty() {
            return Ok(());
        }
        let prepared = prepare(samples, &self.inner.catalog);
        let (reply, answer) = mpsc::sync_channel(1);
        self.send(Request::Append { prepared, reply })?;
        answer.recv().map_err(|_| MetricStoreError::WriterStopped)?
    }

    fn read(
        &self,
        key: &MetricKey,
        unit: Option<&str>,
        start_ms: i64,
        end_ms: i64,
        period_s: u32,
        now_ms: i64,
    ) -> Result<Vec<Aggregate>, MetricStoreError> {
        check_read(start_ms, end_ms, period_s)?;
        let series: Vec<(i64, String, u32)> = {
            let catalog = self
                .inner
                .catalog
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            let Some(metric) = catalog.metrics.get(key) else {
                return Ok(Vec::new());
            };
            metric
                .series
                .iter()
                .filter(|series| unit.is_none_or(|unit| unit == series.unit))
                .map(|series| (series.id, series.unit.clone(), series.storage_resolution_s))
                .collect()
        };
        let error = sqlite_error(&self.inner.path);
        self.with_reader(|connection| {
            let mut statement = connection.prepare_cached(SELECT_BUCKETS).map_err(&error)?;
            let mut periods = Periods::new(period_s);
            for (id, unit, storage_resolution_s) in &series {
                for segment in plan_read(*storage_resolution_s, start_ms, end_ms, period_s, now_ms)
                {
                    let mut rows = statement
                        .query(params![
                            id,
                            TIERS[segment.tier_index].resolution_s,
                            align_up(segment.start_ms, TIERS[segment.tier_index].resolution_ms()),
                            segment.end_ms,
                            TIERS[segment.tier_index].resolution_ms()
                        ])
                        .map_err(&error)?;
                    while let Some(row) = rows.next().map_err(&error)? {
                        let distribution = match row.get_ref(5).map_err(&error)?.as_blob_or_null() {
                            Ok(Some(bytes)) => Some(Distribution::from_bytes(bytes)?),
                            Ok(None) => None,
                            Err(e) => return Err(error(e.into())),
                        };
                        let bucket = Bucket {
                            stats: StatisticSet {
                                sample_count: row.get(1).map_err(&error)?,
                                sum: row.get(2).map_err(&error)?,
                                minimum: row.get(3).map_err(&error)?,
                                maximum: row.get(4).map_err(&error)?,
                            },
                            distribution,
                        };
                        periods.add(unit, row.get(0).map_err(&error)?, bucket);
                    }
                }
            }
            Ok(periods.finish())
        })
    }

    fn list_metrics(
        &self,
        filter: &ListFilter,
        after: Option<&MetricKey>,
        limit: usize,
    ) -> Result<Vec<(MetricKey, i64)>, MetricStoreError> {
        let catalog = self
            .inner
            .catalog
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(list_in_order(
            catalog
                .metrics
                .range::<MetricKey, _>(after_bound(after))
                .map(|(key, metric)| (key, metric.last_timestamp_ms)),
            filter,
            limit,
        ))
    }

    fn apply_retention(&self, now_ms: i64) -> Result<u64, MetricStoreError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.send(Request::Retention { now_ms, reply })?;
        answer.recv().map_err(|_| MetricStoreError::WriterStopped)?
    }
}
