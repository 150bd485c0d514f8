//! [`EtcdStore`]: the [`Store`] on an etcd v3 cluster, through the
//! `etcd-client` crate (gRPC). For a highly available control plane: every
//! Berth server talks to the same etcd cluster, which keeps the state
//! replicated and consistent.
//!
//! # How the store maps onto etcd
//!
//! - **Keys.** Store key `k` is etcd key `key_prefix + k`. Ranges and watches
//!   prefix both ends, which keeps them inside the prefix; keys come back with
//!   the prefix stripped. Several Berth installations (or tests) can share one
//!   etcd under different prefixes.
//! - **Revisions.** etcd has one revision for its whole key space, 1 in a
//!   fresh cluster, bumped by every writing transaction of every client.
//!   The store revision is *etcd's revision minus 1*, for the header revision
//!   and for keys' `create_revision`/`mod_revision` alike (0, an absent key's,
//!   stays 0). In a cluster only this store writes to, that is exactly the
//!   trait's promise: 0 when empty, +1 per writing transaction. If anything
//!   else writes to the same etcd (another prefix, another program), the
//!   store's revisions are still strictly increasing and still order every
//!   change, but they skip the numbers others used, and a fresh prefix does
//!   not start at 0. Nothing in Berth relies on consecutive revisions (only
//!   the conformance suite checks it, against a dedicated etcd); give Berth
//!   its own etcd cluster anyway, because compaction is cluster-wide too.
//! - **Transactions** are etcd transactions: compares, then the success or
//!   the failure branch, atomically. etcd bumps its revision only when a
//!   branch changes something (a delete of an absent key, an empty branch
//!   or a read-only transaction leave it), as the trait asks. etcd refuses a
//!   transaction that writes one key twice, so each key keeps only its last
//!   operation (see `mapping::last_op_per_key` for the small difference this
//!   makes).
//! - **Durability.** etcd acknowledges a transaction once a majority of
//!   members has it in its fsynced log.
//! - **Reads** are linearizable (served through the leader's read index), so a
//!   read after `txn` returns sees it, whichever member serves it.
//! - **Watches** are etcd watches from `store revision + 1`, with each event's
//!   key stripped of the prefix. A watch whose connection is lost re-opens on
//!   any member from the revision after the last one it delivered, so callers
//!   see neither gaps nor duplicates; if that revision has been compacted
//!   meanwhile, the stream yields [`StoreError::Compacted`].
//! - **Compaction** is etcd's compaction at `revision + 1`, capped at the
//!   current revision; compacting an already-compacted revision is a no-op.
//!   etcd keeps no tombstone at the compaction revision itself, so a delete
//!   that happened exactly at the compacted revision is not replayed.
//! - **Failures.** Requests go to any member (etcd-client balances over all
//!   endpoints); a request that fails because a member is down or has no
//!   leader is tried again (reads always, transactions only when they
//!   certainly were not applied, see the `retry` module). Members answer only while
//!   they have a leader (`require_leader`), so a partitioned member fails
//!   fast instead of serving stale data or hanging.

mod config;
mod mapping;
mod retry;
#[cfg(feature = "test-support")]
pub mod test_support;
mod watch;

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{Client, ConnectOptions, GetOptions, GetResponse, KvClient};
use store::{
    KeyValue, RangeRequest, RangeResponse, Result, Revision, Store, StoreError, Txn, TxnResponse,
    WatchStream,
};

pub use crate::config::{EtcdConfig, EtcdTls, EtcdUser};
use crate::mapping::{etcd_revision, store_revision, KeySpace};
use crate::retry::{back_off, classify, Failure};

/// Largest gRPC message accepted from etcd: a range of a whole prefix comes
/// back in one message (etcd-client's default is 4 MiB).
const MAX_RESPONSE_BYTES: usize = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum EtcdStoreError {
    #[error("invalid etcd URL {url}: {reason}; expected etcd://[user:password@]host:port[,host:port…][/key-prefix] or etcds://…?ca=PATH")]
    InvalidUrl { url: String, reason: String },
    #[error("no etcd endpoints given; list at least one member's host:port")]
    NoEndpoints,
    #[error("cannot read the TLS file {path}: {source}; check the path given in the etcds:// URL")]
    ReadTlsFile {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the etcd client for {endpoints} (this includes logging in as the URL's user): {source}; check the endpoints, the user name and password, and the TLS settings")]
    Client {
        endpoints: String,
        source: etcd_client::Error,
    },
    #[error("cannot reach etcd at {endpoints}: {source}; check that the cluster is up, has a leader, and that the URL, user and TLS settings are right")]
    Unreachable {
        endpoints: String,
        source: etcd_client::Error,
    },
}

/// The store on an etcd cluster. Cloning is cheap and shares the connections.
#[derive(Clone)]
pub struct EtcdStore {
    kv: KvClient,
    watch: etcd_client::WatchClient,
    keys: KeySpace,
    retry_attempts: u32,
}

impl EtcdStore {
    /// Connects to the cluster and checks that it answers a read.
    pub async fn connect(config: EtcdConfig) -> Result<EtcdStore, EtcdStoreError> {
        if config.endpoints.is_empty() {
            return Err(EtcdStoreError::NoEndpoints);
        }
        let endpoints = config.endpoints.join(",");
        let mut options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_millis(config.connect_timeout_ms))
            .with_keep_alive(
                Duration::from_millis(config.keep_alive_interval_ms),
                Duration::from_millis(config.keep_alive_timeout_ms),
            )
            .with_require_leader(true);
        if let Some(user) = &config.user {
            options = options
                .with_user(user.name.clone(), user.password.clone())
                .with_auto_token_refresh(true);
        }
        if let Some(tls) = &config.tls {
            options = options.with_tls(tls_options(tls)?);
        }
        let client = Client::connect(config.endpoint_urls(), Some(options))
            .await
            .map_err(|source| EtcdStoreError::Client {
                endpoints: endpoints.clone(),
                source,
            })?;
        let store = EtcdStore {
            kv: client
                .kv_client()
                .max_decoding_message_size(MAX_RESPONSE_BYTES),
            watch: client
                .watch_client()
                .max_decoding_message_size(MAX_RESPONSE_BYTES),
            keys: KeySpace::new(&config.key_prefix),
            retry_attempts: config.retry_attempts,
        };
        store
            .read_revision()
            .await
            .map_err(|source| EtcdStoreError::Unreachable { endpoints, source })?;
        Ok(store)
    }

    /// Connects to the cluster in a store URL (see [`EtcdConfig::from_url`]).
    pub async fn connect_url(url: &str) -> Result<EtcdStore, EtcdStoreError> {
        EtcdStore::connect(EtcdConfig::from_url(url)?).await
    }

    /// Runs `call` until it succeeds, fails for good, or has been tried
    /// `retry_attempts` more times. `idempotent`: repeating an applied call
    /// is harmless.
    async fn with_retries<T, F, Fut>(
        &self,
        idempotent: bool,
        mut call: F,
    ) -> Result<T, etcd_client::Error>
    where
        F: FnMut(KvClient) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let mut attempt = 0;
        loop {
            let error = match call(self.kv.clone()).await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            let retry = match classify(&error) {
                Failure::NotApplied => true,
                Failure::MaybeApplied => idempotent,
                Failure::Permanent => false,
            };
            if !retry || attempt >= self.retry_attempts {
                return Err(error);
            }
            tracing::debug!(%error, attempt, "etcd request failed; trying again");
            back_off(attempt).await;
            attempt += 1;
        }
    }

    async fn read(
        &self,
        key: Vec<u8>,
        options: GetOptions,
    ) -> Result<GetResponse, etcd_client::Error> {
        self.with_retries(true, |mut kv| {
            let key = key.clone();
            let options = options.clone();
            async move { kv.get(key, Some(options)).await }
        })
        .await
    }

    /// etcd's current revision, from a count-only read inside the prefix (a
    /// user confined to the prefix may read nothing else).
    async fn read_revision(&self) -> Result<i64, etcd_client::Error> {
        let mut key = self.keys.etcd_key("");
        if key.is_empty() {
            key.push(0);
        }
        let response = self.read(key, GetOptions::new().with_count_only()).await?;
        Ok(header_revision(response.header()))
    }
}

fn tls_options(tls: &EtcdTls) -> Result<etcd_client::TlsOptions, EtcdStoreError> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|source| EtcdStoreError::ReadTlsFile {
            path: path.to_path_buf(),
            source,
        })
    };
    let mut options = etcd_client::TlsOptions::new().ca_certificate(
        etcd_client::Certificate::from_pem(read(&tls.ca_certificate_path)?),
    );
    if let (Some(certificate), Some(key)) = (&tls.client_certificate_path, &tls.client_key_path) {
        options = options.identity(etcd_client::Identity::from_pem(
            read(certificate)?,
            read(key)?,
        ));
    }
    if let Some(domain_name) = &tls.domain_name {
        options = options.domain_name(domain_name.clone());
    }
    Ok(options)
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> i64 {
    header.map_or(0, |header| header.revision())
}

/// A failed etcd request as the trait's error.
fn backend_error(what: &str, error: etcd_client::Error) -> StoreError {
    StoreError::Backend(format!("etcd {what} failed: {error}"))
}

#[async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let Some(range) = self.keys.etcd_range(key, "") else {
            return Ok(None);
        };
        let response = self
            .read(range.key, GetOptions::new())
            .await
            .map_err(|error| backend_error("get", error))?;
        response
            .kvs()
            .first()
            .map(|kv| self.keys.key_value(kv))
            .transpose()
    }

    async fn range(&self, request: RangeRequest) -> Result<RangeResponse> {
        let Some(range) = self.keys.etcd_range(&request.key, &request.range_end) else {
            return Ok(RangeResponse {
                kvs: Vec::new(),
                more: false,
                revision: self.current_revision().await?,
            });
        };
        let mut options = GetOptions::new();
        if !range.range_end.is_empty() {
            options = options.with_range(range.range_end);
        }
        if request.limit > 0 {
            options = options.with_limit(i64::try_from(request.limit).unwrap_or(i64::MAX));
        }
        let response = self
            .read(range.key, options)
            .await
            .map_err(|error| backend_error("range", error))?;
        let kvs = response
            .kvs()
            .iter()
            .map(|kv| self.keys.key_value(kv))
            .collect::<Result<Vec<_>>>()?;
        Ok(RangeResponse {
            kvs,
            more: response.more(),
            revision: store_revision(header_revision(response.header())),
        })
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse> {
        let compares: Vec<_> = txn.compare.iter().map(|c| self.keys.compare(c)).collect();
        let etcd_txn = etcd_client::Txn::new()
            .when(compares)
            .and_then(self.keys.ops(txn.success))
            .or_else(self.keys.ops(txn.failure));
        let response = self
            .with_retries(false, |mut kv| {
                let etcd_txn = etcd_txn.clone();
                async move { kv.txn(etcd_txn).await }
            })
            .await
            .map_err(|error| backend_error("transaction", error))?;
        Ok(TxnResponse {
            succeeded: response.succeeded(),
            revision: store_revision(header_revision(response.header())),
        })
    }

    async fn watch(
        &self,
        key: &str,
        range_end: &str,
        start_revision: Revision,
    ) -> Result<WatchStream> {
        watch::open(
            self.watch.clone(),
            self.keys.clone(),
            key,
            range_end,
            start_revision,
            self.retry_attempts,
        )
        .await
    }

    async fn current_revision(&self) -> Result<Revision> {
        self.read_revision()
            .await
            .map(store_revision)
            .map_err(|error| backend_error("read of the current revision", error))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        if revision <= 0 {
            return Ok(());
        }
        // etcd refuses a revision it has not reached; the store forgets
        // everything before `revision` either way.
        let current = self
            .read_revision()
            .await
            .map_err(|error| backend_error("compaction", error))?;
        let target = etcd_revision(revision).min(current);
        let result = self
            .with_retries(true, |mut kv| async move { kv.compact(target, None).await })
            .await;
        match result {
            Ok(_) => Ok(()),
            // Compaction never moves backwards: an older revision is a no-op.
            Err(error) if is_already_compacted(&error) => Ok(()),
            Err(error) => Err(backend_error("compaction", error)),
        }
    }
}

fn is_already_compacted(error: &etcd_client::Error) -> bool {
    matches!(error, etcd_client::Error::GRpcStatus(status)
        if status.message().contains("required revision has been compacted"))
}
