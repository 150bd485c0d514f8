//! What to create: [`ContainerSpec`] and the values it is made of.
//!
//! A spec is the ECS container definition (plus the task-level settings that
//! apply to it) already resolved by the agent into Docker terms: volumes
//! resolved to host paths or volume names, `cpu` already clamped, the pause
//! container already known. Each field's documentation names the ECS field it
//! comes from. The runtime maps fields one to one and invents nothing.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Everything needed to create one container.
///
/// Build one with [`ContainerSpec::new`] and struct update syntax:
/// `ContainerSpec { command: Some(..), ..ContainerSpec::new(name, image) }`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// Docker container name, unique on the host. Chosen by the agent (ECS
    /// names containers `ecs-<family>-<revision>-<container name>-<random>`);
    /// ECS `name` is the container's name *within the task* and belongs in a label.
    pub name: String,
    /// ECS `image`: `[registry/]repository[:tag][@digest]`.
    pub image: String,
    /// ECS `dockerLabels`, plus the labels the agent uses to find its own
    /// containers again (cluster, task ARN, container name).
    pub labels: BTreeMap<String, String>,
    /// ECS `entryPoint`. `None` keeps the image's entrypoint.
    pub entrypoint: Option<Vec<String>>,
    /// ECS `command`. `None` keeps the image's command.
    pub command: Option<Vec<String>>,
    /// ECS `environment` (and `environmentFiles`/`secrets` once resolved),
    /// in order; a later entry for the same name wins.
    pub env: Vec<(String, String)>,
    /// ECS `workingDirectory`.
    pub working_dir: Option<String>,
    /// ECS `user` (`user`, `user:group`, `uid`, `uid:gid`, ...).
    pub user: Option<String>,
    /// ECS `hostname`.
    pub hostname: Option<String>,
    /// ECS `extraHosts`: added to the container's `/etc/hosts`.
    pub extra_hosts: Vec<ExtraHost>,
    /// ECS `dnsServers`.
    pub dns_servers: Vec<String>,
    /// ECS `dnsSearchDomains`.
    pub dns_search_domains: Vec<String>,
    /// ECS `ulimits`.
    pub ulimits: Vec<Ulimit>,
    /// ECS `privileged`.
    pub privileged: bool,
    /// ECS `readonlyRootFilesystem`.
    pub readonly_rootfs: bool,
    /// ECS `linuxParameters.initProcessEnabled`: run an init process (Docker's
    /// `docker-init`) as PID 1 that forwards signals and reaps zombies.
    pub init: bool,
    /// ECS `interactive`: keep stdin open.
    pub open_stdin: bool,
    /// ECS `pseudoTerminal`: allocate a TTY.
    pub tty: bool,
    /// ECS `linuxParameters.capabilities.add` (e.g. `NET_ADMIN`).
    pub cap_add: Vec<String>,
    /// ECS `linuxParameters.capabilities.drop`.
    pub cap_drop: Vec<String>,
    /// ECS `linuxParameters.tmpfs`.
    pub tmpfs: Vec<Tmpfs>,
    /// ECS `linuxParameters.sharedMemorySize`: size of `/dev/shm`.
    pub shm_size_mib: Option<u64>,
    /// ECS `linuxParameters.devices`.
    pub devices: Vec<Device>,
    /// ECS `systemControls` (`namespace` → `value`), e.g. `net.core.somaxconn`.
    pub sysctls: BTreeMap<String, String>,
    /// ECS `dockerSecurityOptions` (e.g. `no-new-privileges`, `apparmor:PROFILE`).
    pub security_opt: Vec<String>,
    /// ECS task `networkMode`; `awsvpc` and task-wide sharing become
    /// [`NetworkMode::ContainerOf`] the task's pause container.
    pub network_mode: NetworkMode,
    /// ECS `portMappings`. Ignored by Docker with [`NetworkMode::Host`], where
    /// the container binds host ports directly.
    pub port_bindings: Vec<PortBinding>,
    /// ECS container `cpu` → Docker CPU shares (relative weight). The agent
    /// passes 2 when the ECS value is below 2, as the ECS agent does (Docker's
    /// minimum). `None` leaves Docker's default (1024).
    pub cpu_shares: Option<u64>,
    /// ECS container `memory`: hard limit; the container is OOM-killed above it.
    pub memory_limit_mib: Option<u64>,
    /// ECS container `memoryReservation`: soft limit, enforced only under
    /// host memory pressure.
    pub memory_reservation_mib: Option<u64>,
    /// ECS task-level `cpu` as a hard limit, in billionths of a CPU
    /// (1024 CPU units = 1 CPU = 1_000_000_000).
    pub nano_cpus: Option<u64>,
    /// ECS `mountPoints`, resolved through the task's `volumes`.
    pub mounts: Vec<Mount>,
    /// ECS `volumesFrom`, with `sourceContainer` resolved to a Docker id or name.
    pub volumes_from: Vec<VolumeFrom>,
    /// ECS `links` (`name:alias`), with the name resolved to the Docker name
    /// of the linked container. Bridge network mode only.
    pub links: Vec<Link>,
    /// ECS `healthCheck`.
    pub healthcheck: Option<HealthCheck>,
    /// ECS `stopTimeout`: seconds between SIGTERM and SIGKILL when Docker
    /// itself stops the container. `None` is Docker's default (10 s).
    pub stop_timeout_s: Option<u32>,
    /// ECS `logConfiguration`. `None` uses the daemon's default driver.
    pub log_driver: Option<LogDriver>,
    /// ECS task `pidMode`: `host`, or `container:<pause id>` for `task`.
    pub pid_mode: Option<String>,
    /// ECS task `ipcMode`: `host`, `none`, or `container:<pause id>` for `task`.
    pub ipc_mode: Option<String>,
}

impl ContainerSpec {
    /// A spec with the given Docker name and image and everything else at
    /// Docker's defaults.
    pub fn new(name: impl Into<String>, image: impl Into<String>) -> Self {
        ContainerSpec {
            name: name.into(),
            image: image.into(),
            ..ContainerSpec::default()
        }
    }
}

/// ECS task `networkMode`, in Docker terms.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetworkMode {
    /// ECS `bridge`: Docker's default bridge network.
    #[default]
    Bridge,
    /// ECS `host`: the host's network namespace.
    Host,
    /// ECS `none`: a loopback-only namespace.
    None,
    /// Join another container's network namespace (Docker `container:<id>`):
    /// how ECS `awsvpc` tasks share the pause container's namespace.
    ContainerOf(String),
}

/// One ECS `extraHosts` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraHost {
    pub hostname: String,
    pub ip_address: String,
}

/// One ECS `ulimits` entry, e.g. `nofile` 1024/4096.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    pub name: String,
    pub soft_limit: i64,
    pub hard_limit: i64,
}

/// One ECS `linuxParameters.tmpfs` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tmpfs {
    pub container_path: String,
    pub size_mib: u64,
    /// ECS `mountOptions`, e.g. `noexec`, `nosuid`, `mode=1777`.
    pub mount_options: Vec<String>,
}

/// One ECS `linuxParameters.devices` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub host_path: String,
    /// `None`: the same path as on the host.
    pub container_path: Option<String>,
    /// Empty: all of read, write and mknod (the ECS default).
    pub permissions: Vec<DevicePermission>,
}

/// ECS device `permissions` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DevicePermission {
    Read,
    Write,
    Mknod,
}

/// ECS `portMappings.protocol`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

impl Protocol {
    /// The lower-case word ECS and Docker both use: `tcp` or `udp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }

    /// Parses `tcp`/`udp` (any case).
    pub fn parse(word: &str) -> Option<Protocol> {
        if word.eq_ignore_ascii_case("tcp") {
            Some(Protocol::Tcp)
        } else if word.eq_ignore_ascii_case("udp") {
            Some(Protocol::Udp)
        } else {
            None
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One ECS `portMappings` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortBinding {
    /// ECS `containerPort`.
    pub container_port: u16,
    /// ECS `hostPort`. `None` or `Some(0)`: Docker picks a free port from the
    /// host's ephemeral range (ECS dynamic port mapping); read it back from
    /// [`crate::ContainerState::port_bindings`] after start.
    pub host_port: Option<u16>,
    /// ECS `protocol`.
    pub protocol: Protocol,
    /// Host address to bind. `None`: all IPv4 addresses (`0.0.0.0`).
    pub host_ip: Option<String>,
}

impl PortBinding {
    /// A TCP binding of `container_port` to a dynamic host port on all addresses.
    pub fn dynamic_tcp(container_port: u16) -> Self {
        PortBinding {
            container_port,
            host_port: None,
            protocol: Protocol::Tcp,
            host_ip: None,
        }
    }

    /// The host port to request, `None` when Docker should choose one.
    pub fn requested_host_port(&self) -> Option<u16> {
        self.host_port.filter(|port| *port != 0)
    }

    /// The host address to bind, `0.0.0.0` unless set.
    pub fn host_ip_or_default(&self) -> &str {
        self.host_ip.as_deref().unwrap_or("0.0.0.0")
    }
}

/// One ECS `mountPoints` entry after resolving `sourceVolume` through the
/// task's `volumes`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mount {
    /// A host directory: ECS `host.sourcePath`. Docker creates `source` on
    /// the host if it does not exist, as ECS documents.
    Bind {
        source: String,
        target: String,
        read_only: bool,
    },
    /// A Docker volume: ECS `dockerVolumeConfiguration`, or a task-scoped
    /// volume with no `host` (Docker creates it if absent, with the default driver).
    Volume {
        name: String,
        target: String,
        read_only: bool,
    },
}

/// One ECS `volumesFrom` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeFrom {
    /// Docker id or name of the container whose volumes to mount.
    pub container: String,
    pub read_only: bool,
}

/// One ECS `links` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// Docker name of the linked container.
    pub container_name: String,
    /// Hostname the linked container gets inside this one.
    pub alias: String,
}

/// ECS `healthCheck`. The agent fills in the ECS defaults (interval 30,
/// timeout 5, retries 3, start period 0); a zero here means Docker's default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    /// ECS `command`, already in Docker form: `["CMD", "prog", "arg"]`,
    /// `["CMD-SHELL", "curl -f http://localhost/ || exit 1"]` or `["NONE"]`.
    pub test: Vec<String>,
    pub interval_s: u32,
    pub timeout_s: u32,
    pub start_period_s: u32,
    pub retries: u32,
}

/// ECS `logConfiguration`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogDriver {
    /// ECS `logDriver`: `json-file`, `awslogs`, `syslog`, `none`, ...
    pub name: String,
    /// ECS `options`, passed to the driver verbatim.
    pub options: BTreeMap<String, String>,
}

/// A Docker volume to create: ECS `dockerVolumeConfiguration`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeSpec {
    pub name: String,
    /// ECS `driver`; `None` is Docker's `local` driver.
    pub driver: Option<String>,
    /// ECS `driverOpts`.
    pub driver_opts: BTreeMap<String, String>,
    /// ECS `labels`.
    pub labels: BTreeMap<String, String>,
}

/// Credentials for a private registry (ECS `repositoryCredentials`, or an
/// ECR authorization token split into user name and password).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryAuth {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// An image reference split into its parts, following Docker's rules:
/// the first path component is a registry when it contains `.` or `:` or is
/// `localhost`; a missing tag (and digest) means `latest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageReference {
    /// Registry host (and port), `None` for Docker Hub.
    pub registry: Option<String>,
    /// Repository path without the registry, e.g. `library/nginx` is written
    /// by users as `nginx` and kept as written here.
    pub repository: String,
    /// Tag, `latest` when neither a tag nor a digest was given.
    pub tag: Option<String>,
    /// Digest (`sha256:...`) when given.
    pub digest: Option<String>,
}

impl ImageReference {
    /// Splits `image`; never fails (Docker validates the reference).
    pub fn parse(image: &str) -> ImageReference {
        let (name_and_tag, digest) = match image.split_once('@') {
            Some((name, digest)) => (name, Some(digest.to_string())),
            None => (image, None),
        };
        let last_slash = name_and_tag.rfind('/').map_or(0, |index| index + 1);
        let (name, tag) = match name_and_tag[last_slash..].rfind(':') {
            Some(colon) => (
                &name_and_tag[..last_slash + colon],
                Some(name_and_tag[last_slash + colon + 1..].to_string()),
            ),
            None => (name_and_tag, None),
        };
        let tag = match (tag, &digest) {
            (None, None) => Some("latest".to_string()),
            (tag, _) => tag,
        };
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (Some(first.to_string()), rest.to_string())
            }
            _ => (None, name.to_string()),
        };
        ImageReference {
            registry,
            repository,
            tag,
            digest,
        }
    }

    /// `[registry/]repository`: the image name without tag or digest.
    pub fn name(&self) -> String {
        match &self.registry {
            Some(registry) => format!("{registry}/{}", self.repository),
            None => self.repository.clone(),
        }
    }

    /// The repository name as Docker's reference library normalises it, for
    /// comparing two spellings of one repository: Docker Hub's short names
    /// gain `docker.io/` and, for official images, `library/` (`busybox`,
    /// `docker.io/busybox`, `index.docker.io/library/busybox` →
    /// `docker.io/library/busybox`); other registries are kept as written.
    pub fn normalized_name(&self) -> String {
        match self.registry.as_deref() {
            None | Some("docker.io") | Some("index.docker.io") => {
                if self.repository.contains('/') {
                    format!("docker.io/{}", self.repository)
                } else {
                    format!("docker.io/library/{}", self.repository)
                }
            }
            Some(registry) => format!("{registry}/{}", self.repository),
        }
    }

    /// The manifest digest (ECS `imageDigest`) of the image this reference
    /// names, given the present image's repository digests (Docker's
    /// `RepoDigests`, `<repository>@sha256:...`, one per repository it was
    /// pulled from or pushed to), as the ECS agent resolves it: the
    /// reference's own digest when it has one; otherwise the first
    /// repository digest of the same repository (tags do not matter).
    /// `None` when there is none: an image built or loaded locally, never
    /// pulled or pushed, has no manifest digest.
    pub fn manifest_digest(&self, repo_digests: &[String]) -> Option<String> {
        if let Some(digest) = &self.digest {
            return Some(digest.clone());
        }
        let name = self.normalized_name();
        repo_digests.iter().find_map(|repo_digest| {
            let candidate = ImageReference::parse(repo_digest);
            let same_repository = candidate.normalized_name() == name;
            candidate.digest.filter(|_| same_repository)
        })
    }

    /// The reference with the default tag made explicit, e.g. `busybox` →
    /// `busybox:latest`. Two spellings of one image compare equal this way.
    pub fn canonical(&self) -> String {
        let mut text = self.name();
        if let Some(tag) = &self.tag {
            text.push(':');
            text.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            text.push('@');
            text.push_str(digest);
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(
        image: &str,
        registry: Option<&str>,
        repository: &str,
        tag: Option<&str>,
        digest: Option<&str>,
        canonical: &str,
    ) {
        let reference = ImageReference::parse(image);
        assert_eq!(
            reference.registry.as_deref(),
            registry,
            "registry of {image}"
        );
        assert_eq!(reference.repository, repository, "repository of {image}");
        assert_eq!(reference.tag.as_deref(), tag, "tag of {image}");
        assert_eq!(reference.digest.as_deref(), digest, "digest of {image}");
        assert_eq!(
            reference.canonical(),
            canonical,
            "canonical form of {image}"
        );
    }

    #[test]
    fn image_references_split_like_docker() {
        check(
            "busybox",
            None,
            "busybox",
            Some("latest"),
            None,
            "busybox:latest",
        );
        check(
            "busybox:1.36",
            None,
            "busybox",
            Some("1.36"),
            None,
            "busybox:1.36",
        );
        check(
            "berth-test/busybox:latest",
            None,
            "berth-test/busybox",
            Some("latest"),
            None,
            "berth-test/busybox:latest",
        );
        check(
            "localhost:5000/app",
            Some("localhost:5000"),
            "app",
            Some("latest"),
            None,
            "localhost:5000/app:latest",
        );
        check(
            "localhost/app:v2",
            Some("localhost"),
            "app",
            Some("v2"),
            None,
            "localhost/app:v2",
        );
        check(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app:prod",
            Some("123456789012.dkr.ecr.us-east-1.amazonaws.com"),
            "team/app",
            Some("prod"),
            None,
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app:prod",
        );
        check(
            "nginx@sha256:abc",
            None,
            "nginx",
            None,
            Some("sha256:abc"),
            "nginx@sha256:abc",
        );
        check(
            "registry:5000/nginx:1@sha256:abc",
            Some("registry:5000"),
            "nginx",
            Some("1"),
            Some("sha256:abc"),
            "registry:5000/nginx:1@sha256:abc",
        );
    }

    fn check_normalized(image: &str, expected: &str) {
        assert_eq!(
            ImageReference::parse(image).normalized_name(),
            expected,
            "normalised name of {image}"
        );
    }

    #[test]
    fn docker_hub_names_normalise() {
        check_normalized("busybox", "docker.io/library/busybox");
        check_normalized("busybox:1.36", "docker.io/library/busybox");
        check_normalized("docker.io/busybox", "docker.io/library/busybox");
        check_normalized("docker.io/library/busybox", "docker.io/library/busybox");
        check_normalized(
            "index.docker.io/library/busybox",
            "docker.io/library/busybox",
        );
        check_normalized("berth-test/busybox", "docker.io/berth-test/busybox");
        check_normalized(
            "docker.io/berth-test/busybox",
            "docker.io/berth-test/busybox",
        );
        check_normalized("localhost:5000/app", "localhost:5000/app");
        check_normalized(
            "public.ecr.aws/library/alpine",
            "public.ecr.aws/library/alpine",
        );
        check_normalized(
            "registry-1.docker.io/library/alpine",
            "registry-1.docker.io/library/alpine",
        );
    }

    const DIGEST_1: &str =
        "sha256:c5b1261d6d3e43071626931fc004f70149baeba2c8ec672bd4f27761f8e1ad6b";
    const DIGEST_2: &str =
        "sha256:c3839dd800b9eb7603340509769c43e146a74c63dca3045a8e7dc8ee07e53966";

    fn check_manifest_digest(image: &str, repo_digests: &[&str], expected: Option<&str>) {
        let repo_digests: Vec<String> = repo_digests.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            ImageReference::parse(image)
                .manifest_digest(&repo_digests)
                .as_deref(),
            expected,
            "digest of {image} among {repo_digests:?}"
        );
    }

    #[test]
    fn manifest_digest_comes_from_the_matching_repository() {
        let both = [
            format!("public.ecr.aws/library/alpine@{DIGEST_1}"),
            format!("alpine@{DIGEST_2}"),
        ];
        let both: Vec<&str> = both.iter().map(String::as_str).collect();
        check_manifest_digest("alpine", &both, Some(DIGEST_2));
        check_manifest_digest("alpine:edge", &both, Some(DIGEST_2));
        check_manifest_digest("docker.io/alpine", &both, Some(DIGEST_2));
        check_manifest_digest("docker.io/library/alpine:3", &both, Some(DIGEST_2));
        check_manifest_digest("public.ecr.aws/library/alpine", &both, Some(DIGEST_1));
        check_manifest_digest("public.ecr.aws/library/alpine:edge", &both, Some(DIGEST_1));
        // Docker may spell the Hub repository in full.
        let full = format!("docker.io/library/alpine@{DIGEST_1}");
        check_manifest_digest("alpine:latest", &[&full], Some(DIGEST_1));
        // Registries with ports, and the first of several entries of one repository.
        let local_1 = format!("localhost:5000/team/app@{DIGEST_1}");
        let local_2 = format!("localhost:5000/team/app@{DIGEST_2}");
        check_manifest_digest(
            "localhost:5000/team/app:v2",
            &[&local_1, &local_2],
            Some(DIGEST_1),
        );
        // A digest in the reference is the digest, whatever Docker lists.
        check_manifest_digest(&format!("alpine@{DIGEST_2}"), &[&full], Some(DIGEST_2));
        check_manifest_digest(&format!("alpine:3@{DIGEST_2}"), &[], Some(DIGEST_2));
    }

    #[test]
    fn no_manifest_digest_without_a_matching_repository() {
        // Built locally: never pulled or pushed.
        check_manifest_digest("berth-test/busybox:latest", &[], None);
        // Pulled from elsewhere, then tagged: not this repository's manifest.
        let other = format!("alpine@{DIGEST_1}");
        check_manifest_digest("localhost:5000/alpine", &[&other], None);
        check_manifest_digest("team/alpine", &[&other], None);
        // Not a repository digest.
        check_manifest_digest("alpine", &["alpine:latest", "alpine"], None);
    }

    #[test]
    fn port_binding_defaults() {
        let binding = PortBinding::dynamic_tcp(80);
        assert_eq!(binding.requested_host_port(), None);
        assert_eq!(binding.host_ip_or_default(), "0.0.0.0");
        let zero = PortBinding {
            host_port: Some(0),
            ..binding.clone()
        };
        assert_eq!(
            zero.requested_host_port(),
            None,
            "hostPort 0 is dynamic in ECS"
        );
        let fixed = PortBinding {
            host_port: Some(8080),
            host_ip: Some("127.0.0.1".into()),
            ..binding
        };
        assert_eq!(fixed.requested_host_port(), Some(8080));
        assert_eq!(fixed.host_ip_or_default(), "127.0.0.1");
    }

    #[test]
    fn registry_auth_debug_hides_the_password() {
        let auth = RegistryAuth {
            username: "AWS".into(),
            password: "s3cret".into(),
        };
        let text = format!("{auth:?}");
        assert!(text.contains("AWS") && !text.contains("s3cret"), "{text}");
    }

    #[test]
    fn protocol_words() {
        assert_eq!(Protocol::parse("TCP"), Some(Protocol::Tcp));
        assert_eq!(Protocol::parse("udp"), Some(Protocol::Udp));
        assert_eq!(Protocol::parse("sctp"), None);
        assert_eq!(Protocol::Udp.to_string(), "udp");
    }
}
