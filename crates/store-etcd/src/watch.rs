//! Watches that survive a lost connection.
//!
//! An etcd watch stream ends when its member goes away. The cursor remembers
//! the etcd revision after the last one it delivered and re-opens the watch
//! from there (on whichever member answers), so the caller's stream goes on
//! with neither gaps nor duplicates. etcd sends each revision's events in one
//! response (no fragmenting is asked for), so the resume revision never
//! falls inside a revision.

use std::collections::VecDeque;

use etcd_client::{EventType, WatchClient, WatchOptions, WatchResponse};
use futures::StreamExt;
use store::{EventKind, Result, Revision, StoreError, WatchEvent, WatchStream};

use crate::mapping::{etcd_revision, store_revision, EtcdRange, KeySpace};
use crate::retry::{back_off, classify, Failure};

/// Opens the watch before returning, so a watch from 0 (now) sees every
/// write that completes after the call.
pub(crate) async fn open(
    client: WatchClient,
    keys: KeySpace,
    key: &str,
    range_end: &str,
    start_revision: Revision,
    retry_attempts: u32,
) -> Result<WatchStream> {
    let Some(range) = keys.etcd_range(key, range_end) else {
        // No key etcd can hold is in the range: nothing will ever happen.
        return Ok(futures::stream::pending().boxed());
    };
    let mut cursor = Cursor {
        client,
        keys,
        range,
        next_revision: (start_revision > 0).then(|| etcd_revision(start_revision)),
        stream: None,
        pending: VecDeque::new(),
        failures: 0,
        retry_attempts,
        finished: false,
    };
    cursor.reopen().await?;
    Ok(futures::stream::unfold(cursor, |mut cursor| async move {
        let item = cursor.next().await?;
        Some((item, cursor))
    })
    .boxed())
}

struct Cursor {
    client: WatchClient,
    keys: KeySpace,
    range: EtcdRange,
    /// The etcd revision to (re-)open from; `None` until the first open of a
    /// watch from "now" tells it.
    next_revision: Option<i64>,
    stream: Option<etcd_client::WatchStream>,
    /// Events received and not yet handed out.
    pending: VecDeque<WatchEvent>,
    /// Failed opens and lost streams since the last successful open.
    failures: u32,
    retry_attempts: u32,
    finished: bool,
}

impl Cursor {
    async fn next(&mut self) -> Option<Result<WatchEvent>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(event));
            }
            if self.finished {
                return None;
            }
            if let Err(error) = self.ensure_open().await {
                return self.fail(error);
            }
            let stream = self.stream.as_mut()?;
            match stream.message().await {
                Ok(Some(response)) => {
                    if let Err(error) = self.handle(response) {
                        return self.fail(error);
                    }
                }
                Ok(None) => self.lost("the etcd member ended the watch stream"),
                Err(error) => self.lost(&error.to_string()),
            }
        }
    }

    fn fail(&mut self, error: StoreError) -> Option<Result<WatchEvent>> {
        self.finished = true;
        self.stream = None;
        Some(Err(error))
    }

    fn lost(&mut self, reason: &str) {
        tracing::debug!(reason, next_revision = ?self.next_revision, "etcd watch lost; re-opening");
        self.stream = None;
        self.failures += 1;
    }

    async fn ensure_open(&mut self) -> Result<()> {
        if self.stream.is_some() {
            return Ok(());
        }
        if self.failures > 0 {
            back_off(self.failures - 1).await;
        }
        self.reopen().await
    }

    /// Opens the etcd watch from `next_revision`, trying again on failures
    /// that may pass until `retry_attempts` of them have happened in a row.
    async fn reopen(&mut self) -> Result<()> {
        loop {
            match self.open_once().await {
                Ok(()) => {
                    self.failures = 0;
                    return Ok(());
                }
                Err(OpenError::Store(error)) => return Err(error),
                Err(error) => {
                    let permanent = match &error {
                        OpenError::Etcd(error) => classify(error) == Failure::Permanent,
                        OpenError::Refused(reason) => reason.contains("permission denied"),
                        OpenError::Store(_) => true,
                    };
                    if permanent || self.failures >= self.retry_attempts {
                        return Err(StoreError::Backend(format!(
                            "etcd watch could not be opened (after {} tries): {error}",
                            self.failures + 1
                        )));
                    }
                    tracing::debug!(%error, "opening the etcd watch failed; trying again");
                    back_off(self.failures).await;
                    self.failures += 1;
                }
            }
        }
    }

    async fn open_once(&mut self) -> Result<(), OpenError> {
        let mut options = WatchOptions::new().with_start_revision(self.next_revision.unwrap_or(0));
        if !self.range.range_end.is_empty() {
            options = options.with_range(self.range.range_end.clone());
        }
        let mut stream = self
            .client
            .watch(self.range.key.clone(), Some(options))
            .await?;
        // etcd answers a create with `created`, then (for a compacted start)
        // a cancel carrying the compaction revision.
        loop {
            let Some(response) = stream.message().await? else {
                return Err(OpenError::Etcd(etcd_client::Error::WatchError(
                    "the etcd member ended the watch stream before creating the watch".to_string(),
                )));
            };
            if response.created() {
                if self.next_revision.is_none() {
                    let now = response.header().map_or(0, |header| header.revision());
                    self.next_revision = Some(now + 1);
                }
                self.stream = Some(stream);
                return self.handle(response).map_err(OpenError::Store);
            }
            if response.canceled() && response.compact_revision() == 0 {
                return Err(OpenError::Refused(response.cancel_reason().to_string()));
            }
            self.handle(response).map_err(OpenError::Store)?;
        }
    }

    /// Takes one response's events; fails on compaction or a refusal.
    fn handle(&mut self, response: WatchResponse) -> Result<()> {
        if response.compact_revision() > 0 {
            let requested = self.next_revision.map_or(0, store_revision);
            return Err(StoreError::Compacted {
                requested,
                // Watching from etcd's compaction revision itself works.
                oldest: store_revision(response.compact_revision()),
            });
        }
        if response.canceled() {
            let reason = response.cancel_reason();
            if reason.contains("permission denied") {
                return Err(StoreError::Backend(format!(
                    "etcd refused the watch: {reason}; grant the Berth user read access to its key prefix"
                )));
            }
            // "no leader", an expired token, …: the next open may work.
            self.lost(&format!("etcd cancelled the watch: {reason}"));
            return Ok(());
        }
        for event in response.events() {
            let event = self.event(event)?;
            self.next_revision = Some(etcd_revision(event.kv.mod_revision) + 1);
            self.pending.push_back(event);
        }
        Ok(())
    }

    fn event(&self, event: &etcd_client::Event) -> Result<WatchEvent> {
        let kv = event.kv().ok_or_else(|| {
            StoreError::Backend("etcd sent a watch event without its key".to_string())
        })?;
        let kind = match event.event_type() {
            EventType::Put => EventKind::Put,
            EventType::Delete => EventKind::Delete,
        };
        let mut kv = self.keys.key_value(kv)?;
        if kind == EventKind::Delete {
            // etcd sends these already; the trait promises them.
            kv.value.clear();
            kv.create_revision = 0;
            kv.version = 0;
        }
        Ok(WatchEvent { kind, kv })
    }
}

enum OpenError {
    Etcd(etcd_client::Error),
    /// etcd cancelled the watch as it created it, for this reason.
    Refused(String),
    Store(StoreError),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Etcd(error) => error.fmt(f),
            OpenError::Refused(reason) => write!(f, "etcd cancelled the watch: {reason}"),
            OpenError::Store(error) => error.fmt(f),
        }
    }
}

impl From<etcd_client::Error> for OpenError {
    fn from(error: etcd_client::Error) -> Self {
        OpenError::Etcd(error)
    }
}
