//! `berth agent`: joins this machine to a cluster as a container instance
//! and runs the tasks placed on it, on the local Docker Engine.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;

use agent::{AgentConfig, ImagePullBehavior, RegistryAuth};
use anyhow::{Context as _, Result};

/// Join this machine to a cluster and run its tasks on the local Docker Engine.
#[derive(clap::Args, Debug)]
pub struct AgentArgs {
    /// The cluster to join (name or ARN). `default` is created if missing.
    #[arg(long, default_value = "default")]
    pub cluster: String,
    /// The control plane's URL.
    #[arg(
        long,
        env = "AWS_ENDPOINT_URL",
        default_value = "http://127.0.0.1:4566"
    )]
    pub endpoint: String,
    /// Where the agent keeps its identity (`agent-state.json`)
    /// [default: $XDG_DATA_HOME/berth/agent, else ~/.local/share/berth/agent].
    /// Give each agent sharing a Docker Engine its own.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// A custom attribute for placement constraints: `name=value` or `name`
    /// (repeatable).
    #[arg(long = "attribute", value_name = "NAME[=VALUE]", value_parser = agent::registration::parse_attribute)]
    pub attributes: Vec<(String, Option<String>)>,
    /// The `ecs.availability-zone` attribute.
    #[arg(long, default_value = "local-1a")]
    pub availability_zone: String,
    /// The `ecs.instance-type` attribute.
    #[arg(long)]
    pub instance_type: Option<String>,
    /// The address at which load balancers reach this machine's host ports
    /// (the `berth.host-address` attribute) [default: the local address that
    /// routes to the control plane].
    #[arg(long)]
    pub host_address: Option<std::net::IpAddr>,
    /// Memory (MiB) kept back for the host, not offered to tasks.
    #[arg(long, default_value_t = 256)]
    pub reserved_memory_mib: u64,
    /// When to pull images: `prefer-cached` (only when missing), `always`,
    /// or `default` (always, running the cached image if the pull fails).
    #[arg(long, env = "ECS_IMAGE_PULL_BEHAVIOR", default_value = "prefer-cached", value_parser = parse_pull_behavior)]
    pub image_pull_behavior: ImagePullBehavior,
    /// How long a stopped task's containers are kept before they are
    /// removed, e.g. `3h`, `10m`, `0s`.
    #[arg(long, default_value = "3h", value_parser = parse_duration_ms)]
    pub task_cleanup_wait: i64,
    /// Seconds between SIGTERM and SIGKILL for containers without `stopTimeout`.
    #[arg(long, default_value_t = 30)]
    pub container_stop_timeout: u32,
    /// A JSON file of registry credentials for `repositoryCredentials`:
    /// `{"<credentialsParameter>": {"username": "...", "password": "..."}}`.
    #[arg(long)]
    pub registry_credentials: Option<PathBuf>,
}

fn parse_pull_behavior(word: &str) -> Result<ImagePullBehavior, String> {
    ImagePullBehavior::parse(word).ok_or_else(|| {
        format!("{word:?} is not a pull behaviour: use prefer-cached, always or default")
    })
}

/// `90`, `90s`, `500ms`, `10m`, `3h` → milliseconds.
fn parse_duration_ms(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let (number, unit_ms) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1_000)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60_000)
    } else if let Some(n) = text.strip_suffix('h') {
        (n, 3_600_000)
    } else {
        (text, 1_000)
    };
    number
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .map(|n| n * unit_ms)
        .ok_or_else(|| format!("{text:?} is not a duration: write e.g. 30s, 10m or 3h"))
}

/// `$XDG_DATA_HOME/berth/agent`, else `~/.local/share/berth/agent`.
fn default_data_dir() -> Result<PathBuf> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    if let Some(xdg) = non_empty("XDG_DATA_HOME") {
        return Ok(PathBuf::from(xdg).join("berth/agent"));
    }
    let home =
        non_empty("HOME").context("neither XDG_DATA_HOME nor HOME is set; pass --data-dir")?;
    Ok(PathBuf::from(home).join(".local/share/berth/agent"))
}

/// The agent configuration `berth agent` runs with (credentials and region
/// from the AWS environment / profile chain).
pub fn config_from(args: AgentArgs) -> Result<AgentConfig> {
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => default_data_dir()?,
    };
    let mut config = AgentConfig::new(args.cluster, args.endpoint, data_dir);
    config.attributes = args.attributes;
    config.availability_zone = args.availability_zone;
    config.instance_type = args.instance_type;
    config.host_address = args.host_address;
    config.reserved_memory_mib = args.reserved_memory_mib;
    config.image_pull_behavior = args.image_pull_behavior;
    config.timing.task_cleanup_wait_ms = args.task_cleanup_wait;
    config.timing.default_stop_timeout_s = args.container_stop_timeout;
    if let Some(path) = args.registry_credentials {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read --registry-credentials {}", path.display()))?;
        let credentials: BTreeMap<String, RegistryAuth> = serde_json::from_str(&text).with_context(|| {
            format!(
                "--registry-credentials {}: expected {{\"<credentialsParameter>\": {{\"username\": \"...\", \"password\": \"...\"}}}}",
                path.display()
            )
        })?;
        config.registry_credentials = credentials;
    }
    Ok(config)
}

/// Runs the agent until `shutdown` completes. The tasks it runs keep running
/// after it stops; a restarted agent adopts them.
pub async fn run(args: AgentArgs, shutdown: impl Future<Output = ()>) -> Result<()> {
    let config = config_from(args)?;
    agent::run_with(config, shutdown).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("3h"), Ok(10_800_000));
        assert_eq!(parse_duration_ms("10m"), Ok(600_000));
        assert_eq!(parse_duration_ms("45s"), Ok(45_000));
        assert_eq!(parse_duration_ms("250ms"), Ok(250));
        assert_eq!(parse_duration_ms("7"), Ok(7_000));
        assert!(parse_duration_ms("-1s").is_err());
        assert!(parse_duration_ms("soon").is_err());
    }
}
