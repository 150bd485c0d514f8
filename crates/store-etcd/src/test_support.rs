//! Real etcd processes for tests (feature `test-support`): one member
//! ([`EtcdServer`]) or a cluster ([`EtcdCluster`]) on free loopback ports,
//! each member with its own temporary data directory, killed and removed on
//! drop. The package's systemd service is never used.
//!
//! Needs the `etcd` binary (Debian's `etcd-server`): `bash scripts/test.sh`
//! installs it. Without it every test that starts an etcd fails, saying so.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tempfile::TempDir;

use crate::{EtcdConfig, EtcdStore};

/// The etcd binary: `$BERTH_ETCD_BIN`, else `etcd` on the `PATH`.
fn etcd_binary() -> PathBuf {
    std::env::var_os("BERTH_ETCD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("etcd"))
}

const MISSING_ETCD: &str = "the etcd binary is not installed, and these tests need a real etcd: \
run `bash scripts/test.sh` (it installs Debian's etcd-server), or `apt-get install etcd-server`, \
or point BERTH_ETCD_BIN at an etcd binary";

/// How long a member may take to serve a read after it starts: tries of
/// [`READY_POLL`] each.
const READY_TRIES: u32 = 600;
const READY_POLL: Duration = Duration::from_millis(25);
/// Starts that failed because another process took a port we picked.
const PORT_CLASH_RETRIES: u32 = 5;

/// Makes cluster tokens unique among the clusters of one test process (the
/// process id makes them unique across processes).
static NEXT_CLUSTER: AtomicU64 = AtomicU64::new(0);

/// A one-member etcd on loopback.
pub struct EtcdServer {
    cluster: EtcdCluster,
}

impl EtcdServer {
    /// Starts a fresh etcd and waits until it serves reads. Panics (failing
    /// the test) if etcd is not installed or does not come up.
    pub async fn start() -> EtcdServer {
        EtcdServer {
            cluster: EtcdCluster::start(1).await,
        }
    }

    /// `127.0.0.1:PORT` of its client URL.
    pub fn endpoint(&self) -> String {
        self.cluster.endpoint(0)
    }

    pub fn config(&self) -> EtcdConfig {
        self.cluster.config()
    }

    /// A store on this etcd under `key_prefix`.
    pub async fn store(&self, key_prefix: &str) -> EtcdStore {
        self.cluster.store(key_prefix).await
    }
}

/// An etcd cluster of several members on loopback.
pub struct EtcdCluster {
    members: Vec<Member>,
    // Removed after the members are killed (fields drop in order).
    _root: TempDir,
}

struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    data_dir: PathBuf,
    log_path: PathBuf,
    /// etcd's command line; a restart reuses it (etcd ignores the
    /// `--initial-*` flags once its data directory has a log).
    arguments: Vec<String>,
    process: Option<Child>,
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Member {
    /// Starts etcd with the member's arguments, its output appended to its log.
    fn spawn(&mut self) -> Result<(), StartFailure> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .map_err(|error| {
                StartFailure::Failed(format!("cannot open {}: {error}", self.log_path.display()))
            })?;
        let stderr = log.try_clone().map_err(|error| {
            StartFailure::Failed(format!("cannot share the etcd log file: {error}"))
        })?;
        let process = Command::new(etcd_binary())
            .args(&self.arguments)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .spawn();
        match process {
            Ok(process) => {
                self.process = Some(process);
                Ok(())
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                Err(StartFailure::Failed(MISSING_ETCD.to_string()))
            }
            Err(error) => Err(StartFailure::Failed(format!(
                "cannot start {}: {error}",
                etcd_binary().display()
            ))),
        }
    }

    /// SIGKILL, then reap.
    fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }
}

impl EtcdCluster {
    /// Starts `size` members (fresh data, `--initial-cluster-state new`,
    /// a unique cluster token) and waits until every one serves reads.
    pub async fn start(size: usize) -> EtcdCluster {
        assert!(size >= 1, "a cluster has at least one member");
        let mut last_failure = String::new();
        for _ in 0..=PORT_CLASH_RETRIES {
            match EtcdCluster::try_start(size).await {
                Ok(cluster) => return cluster,
                Err(StartFailure::PortTaken(log)) => last_failure = log,
                Err(StartFailure::Failed(message)) => panic!("{message}"),
            }
        }
        panic!("etcd kept finding its ports taken; last log:\n{last_failure}");
    }

    async fn try_start(size: usize) -> Result<EtcdCluster, StartFailure> {
        let root = test_directory();
        let ports = free_ports(size * 2);
        let token = format!(
            "berth-test-{}-{}",
            std::process::id(),
            NEXT_CLUSTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut members: Vec<Member> = (0..size)
            .map(|index| {
                let name = format!("member{index}");
                Member {
                    data_dir: root.path().join(&name),
                    log_path: root.path().join(format!("{name}.log")),
                    name,
                    client_port: ports[index * 2],
                    peer_port: ports[index * 2 + 1],
                    arguments: Vec::new(),
                    process: None,
                }
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|member| format!("{}={}", member.name, member.peer_url()))
            .collect::<Vec<_>>()
            .join(",");
        // Fast elections: a one-member cluster is up sooner, and a cluster
        // that lost its leader elects another within about a second.
        let (heartbeat_ms, election_ms) = if size == 1 { (10, 100) } else { (50, 500) };
        for member in &mut members {
            let client_url = format!("http://{}", member.endpoint());
            let peer_url = member.peer_url();
            member.arguments = [
                ["--name", &member.name],
                ["--data-dir", &member.data_dir.display().to_string()],
                ["--listen-client-urls", &client_url],
                ["--advertise-client-urls", &client_url],
                ["--listen-peer-urls", &peer_url],
                ["--initial-advertise-peer-urls", &peer_url],
                ["--initial-cluster", &initial_cluster],
                ["--initial-cluster-state", "new"],
                ["--initial-cluster-token", &token],
                ["--heartbeat-interval", &heartbeat_ms.to_string()],
                ["--election-timeout", &election_ms.to_string()],
            ]
            .into_iter()
            .flatten()
            .map(str::to_string)
            .collect();
            member.spawn()?;
        }
        for index in 0..members.len() {
            wait_until_ready(&mut members, index).await?;
        }
        Ok(EtcdCluster {
            members,
            _root: root,
        })
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// `127.0.0.1:PORT` of member `index`'s client URL.
    pub fn endpoint(&self, index: usize) -> String {
        self.members[index].endpoint()
    }

    /// Every member's client endpoint, including killed ones (as a real
    /// configuration would list them).
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(Member::endpoint).collect()
    }

    pub fn config(&self) -> EtcdConfig {
        EtcdConfig::new(self.endpoints())
    }

    /// A store on this cluster under `key_prefix`.
    pub async fn store(&self, key_prefix: &str) -> EtcdStore {
        let config = self.config().with_key_prefix(key_prefix);
        match EtcdStore::connect(config).await {
            Ok(store) => store,
            Err(error) => panic!("connecting to the test etcd failed: {error}"),
        }
    }

    /// Kills member `index` with SIGKILL (no clean shutdown).
    pub fn kill(&mut self, index: usize) {
        self.members[index].kill();
    }

    /// Starts killed member `index` again on its data and waits until it
    /// serves reads.
    pub async fn restart(&mut self, index: usize) {
        assert!(
            self.members[index].process.is_none(),
            "member {index} is running"
        );
        let started = match self.members[index].spawn() {
            Ok(()) => wait_until_ready(&mut self.members, index).await,
            Err(failure) => Err(failure),
        };
        match started {
            Ok(()) => {}
            Err(StartFailure::PortTaken(log)) => {
                panic!("member {index}'s ports were taken while it was down; its log:\n{log}")
            }
            Err(StartFailure::Failed(message)) => panic!("{message}"),
        }
    }

    /// The index of the live member that is the raft leader, once the live
    /// members agree there is one (after a leader was killed: once they have
    /// elected another).
    pub async fn leader(&self) -> usize {
        for _ in 0..READY_TRIES {
            for member in self.members.iter().filter(|m| m.process.is_some()) {
                let leader = leader_seen_by(member, &self.members).await;
                // A killed leader is still reported until the next election.
                if let Some(leader) =
                    leader.filter(|&leader| self.members[leader].process.is_some())
                {
                    return leader;
                }
            }
            tokio::time::sleep(READY_POLL).await;
        }
        panic!("the etcd cluster has no leader");
    }

    /// Member `index`'s output so far, for a failing test's message.
    pub fn log(&self, index: usize) -> String {
        std::fs::read_to_string(&self.members[index].log_path).unwrap_or_default()
    }
}

enum StartFailure {
    /// Another process bound a port between our pick and etcd's bind.
    PortTaken(String),
    Failed(String),
}

/// Under /dev/shm where there is one (etcd fsyncs every write; tests need
/// no durability), else the system's temporary directory.
fn test_directory() -> TempDir {
    let shm = Path::new("/dev/shm");
    let builder = {
        let mut builder = tempfile::Builder::new();
        builder.prefix("berth-etcd-");
        builder
    };
    if shm.is_dir() {
        if let Ok(dir) = builder.tempdir_in(shm) {
            return dir;
        }
    }
    builder
        .tempdir()
        .expect("a temporary directory for the test etcd")
}

/// `count` distinct ports that were free a moment ago.
fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port"))
        .collect();
    listeners
        .iter()
        .map(|listener| listener.local_addr().expect("local address").port())
        .collect()
}

async fn wait_until_ready(members: &mut [Member], index: usize) -> Result<(), StartFailure> {
    let endpoint = members[index].endpoint();
    for _ in 0..READY_TRIES {
        if let Some(process) = members[index].process.as_mut() {
            if let Ok(Some(status)) = process.try_wait() {
                let log = std::fs::read_to_string(&members[index].log_path).unwrap_or_default();
                if log.contains("address already in use") {
                    return Err(StartFailure::PortTaken(log));
                }
                return Err(StartFailure::Failed(format!(
                    "etcd {} exited with {status} while starting; its log:\n{log}",
                    members[index].name
                )));
            }
        }
        if serves_reads(&endpoint).await {
            return Ok(());
        }
        tokio::time::sleep(READY_POLL).await;
    }
    let log = std::fs::read_to_string(&members[index].log_path).unwrap_or_default();
    Err(StartFailure::Failed(format!(
        "etcd {} at {endpoint} did not serve a read in {:?}; its log:\n{log}",
        members[index].name,
        READY_POLL * READY_TRIES
    )))
}

/// A linearizable read works: the member is up and has a leader.
async fn serves_reads(endpoint: &str) -> bool {
    let options = etcd_client::ConnectOptions::new()
        .with_connect_timeout(Duration::from_millis(500))
        .with_timeout(Duration::from_secs(2))
        .with_require_leader(true);
    let Ok(mut client) = etcd_client::Client::connect([endpoint], Some(options)).await else {
        return false;
    };
    client.get("ready", None).await.is_ok()
}

async fn leader_seen_by(member: &Member, members: &[Member]) -> Option<usize> {
    let options = etcd_client::ConnectOptions::new()
        .with_connect_timeout(Duration::from_millis(500))
        .with_timeout(Duration::from_secs(2));
    let mut client = etcd_client::Client::connect([member.endpoint()], Some(options))
        .await
        .ok()?;
    let status = client.status().await.ok()?;
    let leader_id = status.leader();
    let member_list = client.member_list().await.ok()?;
    let leader_name = member_list
        .members()
        .iter()
        .find(|m| m.id() == leader_id)?
        .name()
        .to_string();
    members.iter().position(|m| m.name == leader_name)
}
