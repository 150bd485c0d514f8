//! `berth up` and `berth server`: open the store, make sure the account has
//! an access key, start the components, run until SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use api::access_keys::AccessKeys;
use aws_protocol::sigv4::AuthMode;
use control_plane::{Server, ServerConfig, Services};
use store::Store;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::{clock, credentials};

/// Where state is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreUrl {
    /// `sqlite://<path>`: durable.
    Sqlite(PathBuf),
    /// `memory://`: lost when the process exits; for tests and development.
    Memory,
    /// `etcd://host:2379,host:2379,…[/key-prefix]` (or `etcds://…` with TLS):
    /// an etcd v3 cluster, which keeps the state replicated.
    Etcd(store_etcd::EtcdConfig),
}

impl StoreUrl {
    pub fn parse(url: &str) -> Result<StoreUrl> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                bail!("store URL {url:?} has no path; use sqlite:///absolute/path/berth.db");
            }
            return Ok(StoreUrl::Sqlite(PathBuf::from(path)));
        }
        if url == "memory://" {
            return Ok(StoreUrl::Memory);
        }
        if url.starts_with("etcd://") || url.starts_with("etcds://") {
            return Ok(StoreUrl::Etcd(store_etcd::EtcdConfig::from_url(url)?));
        }
        bail!("unsupported store URL {url:?}; use sqlite://<path>, etcd://host:2379,… or memory://")
    }

    pub fn default_for(data_dir: &Path) -> StoreUrl {
        StoreUrl::Sqlite(data_dir.join("berth.db"))
    }

    async fn open(&self) -> Result<Arc<dyn Store>> {
        Ok(match self {
            StoreUrl::Sqlite(path) => Arc::new(
                store_sqlite::SqliteStore::open(path)
                    .await
                    .with_context(|| format!("cannot open the store at {}", path.display()))?,
            ),
            StoreUrl::Memory => {
                tracing::warn!("using the in-memory store: all state is lost when Berth stops");
                Arc::new(store::MemoryStore::new())
            }
            StoreUrl::Etcd(config) => Arc::new(
                store_etcd::EtcdStore::connect(config.clone())
                    .await
                    .with_context(|| format!("cannot open the store on etcd {config:?}"))?,
            ),
        })
    }
}

pub struct NodeOptions {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub region: String,
    pub account_id: String,
    pub auth_mode: AuthMode,
    pub store_url: StoreUrl,
    /// `berth up`: also run an agent for this machine in cluster `default`.
    pub run_agent: bool,
    pub agent_timeout_ms: i64,
    pub stopped_task_retention_ms: i64,
    /// `host:port` in `repositoryUri`s; `None`: where the APIs are served.
    pub registry_address: Option<String>,
    /// Between two lifecycle and garbage-collection passes.
    pub registry_maintenance_interval: std::time::Duration,
    /// Serve `GET /metrics` (Prometheus).
    pub metrics_endpoint: bool,
}

/// Runs the node until SIGTERM or SIGINT. Today that is the control plane;
/// the agent and the load balancer are further components spawned into the
/// same set, sharing the shutdown signal.
pub async fn run(options: NodeOptions) -> Result<()> {
    let mut config = ServerConfig::new(options.listen, options.account_id.clone());
    config.auth_mode = options.auth_mode;
    config.metrics_endpoint = options.metrics_endpoint;
    config.validate()?;

    create_private_dir(&options.data_dir)?;
    let store = options.store_url.open().await?;

    let access_keys = AccessKeys::load(&*store)
        .await
        .context("cannot load access keys from the store")?;
    let key = access_keys
        .ensure_account_key(
            &*store,
            &options.account_id,
            clock::now_ms(),
            &mut rand::rngs::OsRng,
        )
        .await
        .context("cannot create the account's access key")?;
    let credentials_path = credentials::write_credentials(&options.data_dir, &key)?;

    let load_balancers = Arc::new(crate::load_balancers::LoadBalancers::new());
    let ecs = Arc::new(
        api::Ecs::with_config(
            Arc::clone(&store),
            api::EcsConfig {
                agent_timeout_ms: options.agent_timeout_ms,
                stopped_task_retention_ms: options.stopped_task_retention_ms,
            },
        )
        // Services register their tasks in target groups; the health the
        // load balancers observe decides deployments and draining.
        .with_target_groups(Arc::new(elbv2::service_targets::ServiceTargets::new(
            Arc::clone(&store),
            Some(Arc::clone(&load_balancers) as Arc<dyn elbv2::TargetHealthSource>),
        ))),
    );
    // Datapoints live in their own SQLite file under the data directory.
    let metric_data = Arc::new(
        metric_store::sqlite::SqliteMetricStore::open(&options.data_dir.join("metrics"))
            .context("cannot open the metric store")?,
    ) as Arc<dyn metric_store::MetricStore>;
    // Alarm actions naming scaling policies wake Application Auto Scaling's controller.
    let policy_actions = application_autoscaling::PolicyActions::new();
    let cloudwatch = cloudwatch::CloudWatch::new(Arc::clone(&store), Arc::clone(&metric_data))
        .with_action_target(Arc::new(policy_actions.clone()));
    let autoscaling = application_autoscaling::ApplicationAutoScaling::new(
        Arc::clone(&store),
        Arc::clone(&ecs),
        cloudwatch.clone(),
    );
    let metric_publisher = cloudwatch::Publisher::new(Arc::clone(&metric_data));
    // Log events are kept apart from the orchestration records, in their
    // own files under the data directory.
    let log_events = Arc::new(
        log_store::segments::SegmentLogStore::open(&options.data_dir.join("logs"))
            .context("cannot open the log event store")?,
    );
    let logs = Arc::new(
        logs::Logs::new(
            Arc::clone(&store),
            Arc::clone(&log_events) as Arc<dyn log_store::LogStore>,
        )
        // Metric filters publish into CloudWatch's metric store.
        .with_metric_sink(Arc::new(metric_publisher.clone())),
    );
    // Image layers live in their own content-addressed files under the
    // data directory, apart from the store.
    let blobs = Arc::new(
        blob_store::fs::FsBlobStore::open(&options.data_dir.join("registry"))
            .context("cannot open the image registry's blob store")?,
    );
    let access_keys = Arc::new(access_keys);
    let ecr = Arc::new(ecr::Ecr::new(
        Arc::clone(&store),
        Arc::clone(&blobs) as Arc<dyn blob_store::BlobStore>,
        Arc::clone(&access_keys),
    ));
    let services = Services::new()
        .with_json(Arc::clone(&ecs) as Arc<dyn control_plane::JsonService>)
        .with_json(Arc::new(cloudwatch.clone()) as Arc<dyn control_plane::JsonService>)
        .with_query(Arc::new(cloudwatch.clone()) as Arc<dyn control_plane::QueryService>)
        .with_json(Arc::new(cloudwatch::AgentMetrics::new(
            Arc::clone(&store),
            metric_publisher.clone(),
        )))
        .with_json(Arc::clone(&logs) as Arc<dyn control_plane::JsonService>)
        .with_json(Arc::new(logs::AgentLogs::new(Arc::clone(&logs))))
        .with_json(Arc::clone(&ecr) as Arc<dyn control_plane::JsonService>)
        .with_json(Arc::new(autoscaling.clone()) as Arc<dyn control_plane::JsonService>)
        .with_registry(Arc::new(ecr::Registry::new(
            Arc::clone(&ecr),
            options.region.clone(),
            options.account_id.clone(),
            clock::now_ms,
        )))
        .with_query(Arc::new(
            elbv2::Elbv2::new(Arc::clone(&store))
                .with_target_health(
                    Arc::clone(&load_balancers) as Arc<dyn elbv2::TargetHealthSource>
                )
                .with_dns_name(load_balancer_dns_name(options.listen.ip())),
        ))
        .with_agent_sessions(Arc::clone(&ecs));
    let server = Server::bind(config, access_keys, services).await?;
    let local_addr = server.local_addr();
    let endpoint_url = endpoint_url(local_addr);
    ecs.set_endpoint(endpoint_url.clone());
    // Docker on this machine reaches the registry where clients reach the
    // APIs (Docker allows plain HTTP to loopback registries).
    ecr.set_registry_address(
        options
            .registry_address
            .clone()
            .unwrap_or_else(|| endpoint_url.trim_start_matches("http://").to_string()),
    );
    let config_path = credentials::write_config(&options.data_dir, &options.region, &endpoint_url)?;
    credentials::write_endpoint(&options.data_dir, &endpoint_url)?;

    if options.run_agent {
        // `berth up` serves cluster `default` from the first request on.
        let ctx = api::RequestContext {
            region: options.region.clone(),
            account_id: options.account_id.clone(),
            principal_arn: format!("arn:aws:iam::{}:root", options.account_id),
            access_key_id: String::new(),
            request_id: "berth-up".to_string(),
            now_ms: clock::now_ms(),
        };
        ecs.handle(&ctx, "CreateCluster", br#"{"clusterName":"default"}"#)
            .await
            .map_err(|err| anyhow::anyhow!("cannot create cluster default: {err}"))?;
    }

    // Signal handlers are installed before announcing readiness, so a
    // SIGTERM right after the ready line is a clean shutdown.
    let shutdown = Shutdown::install()?;

    eprintln!(
        "berth: account {}, access key {} (profile [{}] in {})",
        options.account_id,
        key.access_key_id,
        credentials::PROFILE,
        credentials_path.display()
    );
    eprintln!("berth: point AWS clients here with either of:");
    eprintln!(
        "  export AWS_SHARED_CREDENTIALS_FILE={} AWS_CONFIG_FILE={} AWS_PROFILE={}",
        credentials_path.display(),
        config_path.display(),
        credentials::PROFILE
    );
    eprintln!(
        "  eval \"$(berth env --data-dir {})\"",
        options.data_dir.display()
    );
    if options.auth_mode == AuthMode::Open {
        eprintln!("berth: --auth open: any well-formed signature is accepted");
    }
    eprintln!("berth ready on http://{local_addr}");

    let mut components = JoinSet::new();
    components.spawn(server.run(shutdown.signalled()));
    components.spawn(reap_stopped_tasks(Arc::clone(&ecs), shutdown.signalled()));
    components.spawn(enforce_log_retention(
        Arc::clone(&logs),
        shutdown.signalled(),
    ));
    components.spawn(maintain_registry(
        Arc::clone(&ecr),
        options.account_id.clone(),
        options.registry_maintenance_interval,
        shutdown.signalled(),
    ));
    components.spawn(crate::monitoring::run(
        cloudwatch.clone(),
        Arc::clone(&store),
        metric_publisher.clone(),
        Arc::clone(&load_balancers),
        shutdown.signalled(),
    ));
    components.spawn(crate::autoscaling::run(
        autoscaling.clone(),
        application_autoscaling::ScalingController::new(
            autoscaling.clone(),
            options.account_id.clone(),
            &policy_actions,
        ),
        shutdown.signalled(),
    ));
    components.spawn(run_service_controller(
        Arc::clone(&ecs),
        options.account_id.clone(),
        shutdown.signalled(),
    ));
    components.spawn(crate::load_balancers::run(
        Arc::clone(&load_balancers),
        Arc::clone(&store),
        options.listen.ip(),
        shutdown.signalled(),
    ));
    if options.run_agent {
        let mut config = agent::AgentConfig::new(
            "default",
            endpoint_url.clone(),
            options.data_dir.join("agent"),
        );
        config.credentials = Some(agent::Credentials {
            access_key_id: key.access_key_id.clone(),
            secret_access_key: key.secret_access_key.clone(),
            session_token: None,
        });
        config.region = Some(options.region.clone());
        config.reserved_tcp_ports = vec![local_addr.port()];
        let agent_shutdown = shutdown.signalled();
        components.spawn(async move {
            if let Err(err) = agent::run_with(config, agent_shutdown).await {
                tracing::error!(%err, "the agent stopped; tasks keep running, the control plane stays up");
            }
        });
    }
    while let Some(finished) = components.join_next().await {
        finished.context("a component panicked")?;
    }
    drop(store);
    tracing::info!("berth stopped");
    Ok(())
}

/// How often STOPPED tasks past their retention are deleted.
const REAP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

async fn reap_stopped_tasks(ecs: Arc<api::Ecs>, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mut interval = tokio::time::interval(REAP_INTERVAL);
    loop {
        tokio::select! {
            _ = interval.tick() => match ecs.reap_stopped_tasks(clock::now_ms()).await {
                Ok(0) => {}
                Ok(reaped) => tracing::info!(reaped, "deleted STOPPED tasks past their retention"),
                Err(err) => tracing::warn!(%err, "deleting old STOPPED tasks failed"),
            },
            () = &mut shutdown => break,
        }
    }
}

/// How often expired log segments and orphaned log streams are deleted
/// (reads hide expired events in between).
const LOG_RETENTION_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

async fn enforce_log_retention(
    logs: Arc<logs::Logs>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut interval = tokio::time::interval(LOG_RETENTION_INTERVAL);
    loop {
        tokio::select! {
            _ = interval.tick() => match logs.enforce_retention(clock::now_ms()).await {
                Ok(pass) if pass == logs::RetentionPass::default() => {}
                Ok(pass) => tracing::info!(
                    streams_expired = pass.streams_expired,
                    orphans_deleted = pass.orphans_deleted,
                    bytes_freed = pass.bytes_freed,
                    "log retention pass"
                ),
                Err(err) => tracing::warn!(%err, "log retention pass failed"),
            },
            () = &mut shutdown => break,
        }
    }
}

async fn maintain_registry(
    ecr: Arc<ecr::Ecr>,
    account_id: String,
    every: std::time::Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut interval = tokio::time::interval(every);
    let mut collector = ecr::GarbageCollector::default();
    loop {
        tokio::select! {
            _ = interval.tick() => {
                match ecr.apply_lifecycle_policies(&account_id, clock::now_ms()).await {
                    Ok(pass) if pass.images_expired == 0 => {}
                    Ok(pass) => tracing::info!(images_expired = pass.images_expired, "lifecycle policies applied"),
                    Err(err) => tracing::warn!(%err, "applying lifecycle policies failed"),
                }
                match collector.collect(&ecr, clock::now_ms()).await {
                    Ok(pass) if pass == ecr::CollectionPass::default() => {}
                    Ok(pass) => tracing::info!(
                        layers_unlinked = pass.layers_unlinked,
                        blobs_deleted = pass.blobs_deleted,
                        bytes_freed = pass.bytes_freed,
                        uploads_abandoned = pass.uploads_abandoned,
                        "registry garbage collection"
                    ),
                    Err(err) => tracing::warn!(%err, "registry garbage collection failed"),
                }
            }
            () = &mut shutdown => break,
        }
    }
}

/// The longest the service controller sleeps without a change.
const SERVICE_PASS_INTERVAL_MS: i64 = 1_000;
/// Changes arriving this close together are handled by one pass.
const SERVICE_DEBOUNCE: std::time::Duration = std::time::Duration::from_millis(10);

/// Runs the service controller: a pass over every service whenever a
/// service, task or container instance changes, when a plan asked to be
/// woken, and at least every second (agent timeouts are noticed by time).
pub async fn run_service_controller(
    ecs: Arc<api::Ecs>,
    account_id: String,
    shutdown: impl std::future::Future<Output = ()>,
) {
    use futures::StreamExt as _;
    use rand::RngCore as _;
    tokio::pin!(shutdown);
    let store = ecs.store_handle();
    let mut changes: Option<store::WatchStream> = None;
    loop {
        if changes.is_none() {
            match store.watch("/ecs/", &store::prefix_end("/ecs/"), 0).await {
                Ok(stream) => changes = Some(stream),
                Err(err) => tracing::warn!(%err, "the service controller cannot watch the store"),
            }
        }
        let now_ms = clock::now_ms();
        let pass = ecs
            .reconcile_services(&account_id, now_ms, rand::rngs::OsRng.next_u64())
            .await;
        let wake_at_ms = match pass {
            Ok(pass) => {
                if pass.tasks_launched + pass.tasks_stopped > 0 {
                    tracing::info!(
                        launched = pass.tasks_launched,
                        stopped = pass.tasks_stopped,
                        "service controller pass"
                    );
                }
                pass.wake_at_ms
            }
            Err(err) => {
                tracing::warn!(%err, "service controller pass failed; retrying");
                None
            }
        };
        let deadline_ms = wake_at_ms
            .unwrap_or(i64::MAX)
            .min(now_ms + SERVICE_PASS_INTERVAL_MS)
            .max(now_ms);
        let sleep = tokio::time::sleep(std::time::Duration::from_millis(
            (deadline_ms - now_ms) as u64,
        ));
        tokio::pin!(sleep);
        // Wait for a relevant change, the deadline or shutdown.
        loop {
            let next = async {
                match changes.as_mut() {
                    Some(stream) => stream.next().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = &mut shutdown => return,
                () = &mut sleep => break,
                event = next => match event {
                    Some(Ok(event)) if api::key_concerns_services(&event.kv.key) => {
                        tokio::time::sleep(SERVICE_DEBOUNCE).await;
                        break;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => {
                        changes = None;
                        break;
                    }
                },
            }
        }
        // Take whatever else arrived meanwhile: the pass reads it all.
        if let Some(stream) = changes.as_mut() {
            while let Some(Some(_)) = futures::FutureExt::now_or_never(stream.next()) {}
        }
    }
}

/// The address load balancers report as DNSName: where their listeners bind
/// (the control plane's IP), reached through loopback when unspecified.
fn load_balancer_dns_name(listen_ip: std::net::IpAddr) -> String {
    if listen_ip.is_unspecified() {
        elbv2::Elbv2::DEFAULT_DNS_NAME.to_string()
    } else {
        listen_ip.to_string()
    }
}

/// The URL clients use: an unspecified bind address (0.0.0.0, ::) is
/// reached through loopback.
pub fn endpoint_url(local_addr: SocketAddr) -> String {
    let mut addr = local_addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    format!("http://{addr}")
}

fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))
}

/// SIGTERM or SIGINT, delivered to every component.
pub struct Shutdown {
    receiver: watch::Receiver<bool>,
}

impl Shutdown {
    pub fn install() -> Result<Shutdown> {
        let mut terminate =
            signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
        let mut interrupt =
            signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
        let (sender, receiver) = watch::channel(false);
        tokio::spawn(async move {
            let name = tokio::select! {
                _ = terminate.recv() => "SIGTERM",
                _ = interrupt.recv() => "SIGINT",
            };
            tracing::info!("{name} received; shutting down");
            let _ = sender.send(true);
        });
        Ok(Shutdown { receiver })
    }

    /// Completes once shutdown was requested.
    pub fn signalled(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut receiver = self.receiver.clone();
        async move {
            // An error means the sender is gone, which only happens after it
            // sent; either way it is time to stop.
            let _ = receiver.wait_for(|requested| *requested).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls() {
        assert_eq!(
            StoreUrl::parse("sqlite:///var/lib/berth/berth.db").unwrap(),
            StoreUrl::Sqlite("/var/lib/berth/berth.db".into())
        );
        assert_eq!(
            StoreUrl::parse("sqlite://relative.db").unwrap(),
            StoreUrl::Sqlite("relative.db".into())
        );
        assert_eq!(StoreUrl::parse("memory://").unwrap(), StoreUrl::Memory);
        assert!(StoreUrl::parse("sqlite://").is_err());
        assert!(matches!(
            StoreUrl::parse("etcd://127.0.0.1:2379,127.0.0.1:22379/berth/").unwrap(),
            StoreUrl::Etcd(config) if config.endpoints.len() == 2
        ));
        assert!(StoreUrl::parse("etcd://").is_err());
        assert!(StoreUrl::parse("redis://localhost:6379").is_err());
    }

    #[test]
    fn endpoints_of_wildcard_binds_use_loopback() {
        assert_eq!(
            endpoint_url("0.0.0.0:4566".parse().unwrap()),
            "http://127.0.0.1:4566"
        );
        assert_eq!(endpoint_url("[::]:80".parse().unwrap()), "http://[::1]:80");
        assert_eq!(
            endpoint_url("127.0.0.1:5".parse().unwrap()),
            "http://127.0.0.1:5"
        );
    }
}
