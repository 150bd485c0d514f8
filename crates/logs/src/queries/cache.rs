//! The queries this process runs or ran: a running query's abort handle and
//! progress, and the results of finished ones in a bounded cache (the
//! oldest results go first; a query whose results are gone is run again
//! from its record when asked).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::insights::Output;

use super::QueryState;

/// At most this many finished queries keep their results in memory...
const MAX_CACHED_QUERIES: usize = 100;
/// ...holding at most this many rows in all.
const MAX_CACHED_ROWS: usize = 200_000;

/// AWS's limit on a query's run time.
pub(crate) const QUERY_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// What a running query has scanned so far.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    pub records_scanned: AtomicU64,
    pub bytes_scanned: AtomicU64,
}

/// What GetQueryResults reports of a query this process knows.
#[derive(Debug, Clone)]
pub(crate) enum Known {
    Running(Arc<Progress>),
    Finished(QueryState, Arc<Output>),
}

enum Slot {
    Running {
        abort: Option<tokio::task::AbortHandle>,
        progress: Arc<Progress>,
    },
    Finished(QueryState, Arc<Output>),
}

#[derive(Default)]
struct Inner {
    slots: HashMap<String, Slot>,
    /// Finished queries, oldest first.
    finished: VecDeque<String>,
    cached_rows: usize,
}

pub(crate) struct QueryCache {
    inner: Mutex<Inner>,
    timeout: Mutex<Duration>,
}

impl QueryCache {
    pub fn new() -> Self {
        QueryCache {
            inner: Mutex::new(Inner::default()),
            timeout: Mutex::new(QUERY_TIMEOUT),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn timeout(&self) -> Duration {
        *self
            .timeout
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    #[cfg(test)]
    pub fn set_timeout(&self, timeout: Duration) {
        *self
            .timeout
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = timeout;
    }

    pub fn get(&self, query_id: &str) -> Option<Known> {
        match self.lock().slots.get(query_id)? {
            Slot::Running { progress, .. } => Some(Known::Running(Arc::clone(progress))),
            Slot::Finished(state, output) => Some(Known::Finished(*state, Arc::clone(output))),
        }
    }

    pub fn running(&self) -> usize {
        self.lock()
            .slots
            .values()
            .filter(|slot| matches!(slot, Slot::Running { .. }))
            .count()
    }

    /// Marks `query_id` running unless this process already knows it;
    /// `None` when it does (another request started it first).
    pub fn begin(&self, query_id: &str) -> Option<Arc<Progress>> {
        let mut inner = self.lock();
        if inner.slots.contains_key(query_id) {
            return None;
        }
        let progress = Arc::new(Progress::default());
        inner.slots.insert(
            query_id.to_string(),
            Slot::Running {
                abort: None,
                progress: Arc::clone(&progress),
            },
        );
        Some(progress)
    }

    /// Records the task running `query_id` (so StopQuery can abort it).
    pub fn attach(&self, query_id: &str, handle: tokio::task::AbortHandle) {
        if let Some(Slot::Running { abort, .. }) = self.lock().slots.get_mut(query_id) {
            *abort = Some(handle);
        }
    }

    /// Ends a running query with `state`; `false` when it was not running
    /// (stopped meanwhile, or forgotten).
    pub fn finish(&self, query_id: &str, state: QueryState, output: Output) -> bool {
        let mut inner = self.lock();
        match inner.slots.get(query_id) {
            Some(Slot::Running { .. }) => {}
            _ => return false,
        }
        inner.cached_rows += output.rows.len();
        inner.slots.insert(
            query_id.to_string(),
            Slot::Finished(state, Arc::new(output)),
        );
        inner.finished.push_back(query_id.to_string());
        while inner.finished.len() > MAX_CACHED_QUERIES
            || (inner.cached_rows > MAX_CACHED_ROWS && inner.finished.len() > 1)
        {
            let Some(oldest) = inner.finished.pop_front() else {
                break;
            };
            if let Some(Slot::Finished(_, output)) = inner.slots.remove(&oldest) {
                inner.cached_rows -= output.rows.len();
            }
        }
        true
    }

    /// Stops a running query (its task is aborted); `false` when it was
    /// not running.
    pub fn cancel(&self, query_id: &str) -> bool {
        let abort = match self.lock().slots.get(query_id) {
            Some(Slot::Running { abort, .. }) => abort.clone(),
            _ => return false,
        };
        let stopped = self.finish(query_id, QueryState::Cancelled, Output::default());
        if stopped {
            if let Some(abort) = abort {
                abort.abort();
            }
        }
        stopped
    }

    /// Drops what this process knows of `query_id` (its record is gone).
    pub fn forget(&self, query_id: &str) {
        let mut inner = self.lock();
        match inner.slots.remove(query_id) {
            Some(Slot::Finished(_, output)) => {
                inner.cached_rows -= output.rows.len();
                inner.finished.retain(|id| id != query_id);
            }
            Some(Slot::Running {
                abort: Some(abort), ..
            }) => abort.abort(),
            Some(Slot::Running { abort: None, .. }) => {}
            None => {}
        }
    }
}

impl Progress {
    pub fn add(&self, records: u64, bytes: u64) {
        self.records_scanned.fetch_add(records, Ordering::Relaxed);
        self.bytes_scanned.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn scanned(&self) -> (u64, u64) {
        (
            self.records_scanned.load(Ordering::Relaxed),
            self.bytes_scanned.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(rows: usize) -> Output {
        Output {
            rows: vec![Vec::new(); rows],
            ..Default::default()
        }
    }

    #[test]
    fn finished_results_are_bounded_and_a_stopped_query_stays_stopped() {
        let cache = QueryCache::new();
        for i in 0..MAX_CACHED_QUERIES + 5 {
            let id = format!("q{i}");
            assert!(cache.begin(&id).is_some());
            assert!(cache.begin(&id).is_none());
            assert!(cache.finish(&id, QueryState::Complete, output(1)));
        }
        assert!(cache.get("q0").is_none());
        assert!(matches!(
            cache.get(&format!("q{}", MAX_CACHED_QUERIES + 4)),
            Some(Known::Finished(QueryState::Complete, _))
        ));
        cache.begin("big");
        cache.finish("big", QueryState::Complete, output(MAX_CACHED_ROWS));
        assert!(cache.get("q104").is_none());
        assert!(cache.get("big").is_some());

        cache.begin("stop");
        assert_eq!(cache.running(), 1);
        assert!(cache.cancel("stop"));
        assert!(!cache.cancel("stop"));
        assert!(!cache.finish("stop", QueryState::Complete, output(3)));
        assert!(matches!(
            cache.get("stop"),
            Some(Known::Finished(QueryState::Cancelled, _))
        ));
        cache.forget("stop");
        assert!(cache.get("stop").is_none());
    }
}
