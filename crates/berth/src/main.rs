//! `berth`: the one binary. Wiring only; the logic lives in the library crates.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

mod autoscaling;
mod bench;
mod bench_autoscaling;
mod bench_load_balancer;
mod bench_logs;
mod bench_logs_container;
mod bench_metrics;
mod bench_registry;
mod bench_run_task;
mod bench_scheduler;
mod bench_services;
mod bench_support;
mod bench_tasks;
mod clock;
mod cmd_agent;
mod credentials;
mod load_balancers;
mod monitoring;
mod node;

const DEFAULT_LISTEN: &str = "127.0.0.1:4566";
const DEFAULT_REGION: &str = "us-east-1";
const DEFAULT_ACCOUNT_ID: &str = "000000000000";

/// A self-hosted container orchestrator that speaks the Amazon ECS API.
#[derive(Parser)]
#[command(name = "berth", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything on this machine: the control plane and an agent that
    /// joins this machine to cluster `default` (created if missing).
    Up(NodeArgs),
    /// Run the control plane only.
    Server {
        #[command(flatten)]
        node: NodeArgs,
        /// Where state is kept: `sqlite://<path>` (durable; default
        /// `sqlite://<data-dir>/berth.db`), `etcd://host:2379,host:2379,…`
        /// (an etcd v3 cluster; `[user:password@]`, a `/key-prefix` path and
        /// `etcds://…?ca=PATH` for TLS; one server per etcd until servers
        /// share work through leases) or `memory://` (lost on exit; for
        /// tests and development).
        #[arg(long)]
        store: Option<String>,
    },
    /// Join this machine to a cluster and run its tasks on the local Docker
    /// Engine.
    Agent(cmd_agent::AgentArgs),
    /// Print the version.
    Version,
    /// Print `export AWS_…=…` for `eval "$(berth env)"`: the stored
    /// credentials, the region and the endpoint of the last server started
    /// with this data directory (or --listen).
    Env {
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The server's address, instead of the one recorded in
        /// `<data-dir>/endpoint` at its start.
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Measure throughput and latency.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// The ECS API: RegisterTaskDefinition, then DescribeTaskDefinition.
    Api(bench::ApiBenchArgs),
    /// The scheduler alone, on a synthetic cluster.
    Scheduler(bench_scheduler::SchedulerBenchArgs),
    /// Tasks per second from RunTask to RUNNING, with simulated agents.
    Tasks(bench_tasks::TasksBenchArgs),
    /// RunTask to RUNNING with a real agent against `docker run`, and the
    /// agent's idle memory.
    RunTask(bench_run_task::RunTaskBenchArgs),
    /// Service task replacement and rolling updates on real Docker, and
    /// scaling up with simulated agents.
    Services(bench_services::ServicesBenchArgs),
    /// Berth's Application Load Balancer proxy against nginx, with wrk.
    LoadBalancer(bench_load_balancer::LoadBalancerBenchArgs),
    /// CloudWatch Logs: PutLogEvents ingest, FilterLogEvents and
    /// GetLogEvents over what was stored, bytes on disk, and a container's
    /// write → GetLogEvents latency.
    Logs(bench_logs::LogsBenchArgs),
    /// CloudWatch: PutMetricData throughput (JSON 1.0 and CBOR), GetMetricData
    /// over a week of minutes, alarm evaluation lag, and the load balancer
    /// proxy with traffic counting on and off.
    Metrics(bench_metrics::MetricsBenchArgs),
    /// The image registry (`docker push`/`pull`, concurrent blob pulls,
    /// idle memory) side by side with CNCF Distribution.
    Registry(bench_registry::RegistryBenchArgs),
    /// Application Auto Scaling on real Docker under `berth up`: load steps
    /// through the load balancer to the new desired count and to the new
    /// tasks healthy, steady-state changes and the scale-in time.
    Autoscaling(bench_autoscaling::AutoscalingBenchArgs),
}

#[derive(Args)]
struct NodeArgs {
    /// The address to serve the AWS APIs on; port 0 picks a free port.
    #[arg(long, default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Where Berth keeps its state and the generated credentials
    /// [default: $XDG_DATA_HOME/berth, else ~/.local/share/berth].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The region written into the `berth` profile.
    #[arg(long, default_value = DEFAULT_REGION)]
    region: String,
    /// The account every resource belongs to.
    #[arg(long, default_value = DEFAULT_ACCOUNT_ID)]
    account_id: String,
    /// `verify` checks every SigV4 signature against the stored keys;
    /// `open` accepts any well-formed signature (loopback addresses only).
    #[arg(long, value_enum, default_value_t = Auth::Verify)]
    auth: Auth,
    /// An agent not heard from for this many seconds is shown
    /// `agentConnected: false` and receives no new tasks.
    #[arg(long, default_value_t = 30)]
    agent_timeout_seconds: u32,
    /// How long STOPPED tasks stay describable, in minutes.
    #[arg(long, default_value_t = 24 * 60)]
    stopped_task_retention_minutes: u32,
    /// `host:port` of the image registry as Docker engines reach it, the
    /// host of every `repositoryUri` [default: the address the APIs are
    /// served on, loopback when listening on all addresses].
    #[arg(long)]
    registry_address: Option<String>,
    /// How often lifecycle policies are applied and unreferenced registry
    /// storage is collected, in seconds (ECR applies policies within a day).
    #[arg(long, default_value_t = 60)]
    registry_maintenance_interval_seconds: u64,
    /// Whether `GET /metrics` answers in Prometheus' exposition format
    /// (unauthenticated, as Prometheus scrapes).
    #[arg(long, value_enum, default_value_t = Switch::On)]
    metrics_endpoint: Switch,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Switch {
    On,
    Off,
}

#[derive(Clone, Copy, ValueEnum)]
enum Auth {
    Verify,
    Open,
}

impl From<Auth> for aws_protocol::sigv4::AuthMode {
    fn from(auth: Auth) -> Self {
        match auth {
            Auth::Verify => aws_protocol::sigv4::AuthMode::Verify,
            Auth::Open => aws_protocol::sigv4::AuthMode::Open,
        }
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("berth: error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Version => {
            println!("berth {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Env { data_dir, listen } => print_env(data_dir, listen),
        Command::Up(node) => {
            let mut options = node_options(node, None)?;
            options.run_agent = true;
            runtime()?.block_on(node::run(options))
        }
        Command::Server { node, store } => {
            let options = node_options(node, store)?;
            runtime()?.block_on(node::run(options))
        }
        Command::Agent(args) => {
            // The agent is small and mostly waits: one thread is plenty.
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(async {
                let shutdown = node::Shutdown::install()?;
                cmd_agent::run(args, shutdown.signalled()).await
            })
        }
        Command::Bench(BenchCommand::Api(args)) => runtime()?.block_on(bench::run_api(args)),
        Command::Bench(BenchCommand::Scheduler(args)) => bench_scheduler::run(&args),
        Command::Bench(BenchCommand::Tasks(args)) => runtime()?.block_on(bench_tasks::run(args)),
        Command::Bench(BenchCommand::RunTask(args)) => {
            runtime()?.block_on(bench_run_task::run(args))
        }
        Command::Bench(BenchCommand::Services(args)) => {
            runtime()?.block_on(bench_services::run(args))
        }
        Command::Bench(BenchCommand::LoadBalancer(args)) => bench_load_balancer::run(&args),
        Command::Bench(BenchCommand::Logs(args)) => runtime()?.block_on(bench_logs::run(args)),
        Command::Bench(BenchCommand::Metrics(args)) => bench_metrics::run(&args),
        Command::Bench(BenchCommand::Registry(args)) => {
            runtime()?.block_on(bench_registry::run(args))
        }
        Command::Bench(BenchCommand::Autoscaling(args)) => {
            runtime()?.block_on(bench_autoscaling::run(args))
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn node_options(args: NodeArgs, store: Option<String>) -> Result<node::NodeOptions> {
    let data_dir = data_dir_or_default(args.data_dir)?;
    let store_url = match store {
        Some(url) => node::StoreUrl::parse(&url)?,
        None => node::StoreUrl::default_for(&data_dir),
    };
    Ok(node::NodeOptions {
        listen: args.listen,
        data_dir,
        region: args.region,
        account_id: args.account_id,
        auth_mode: args.auth.into(),
        store_url,
        run_agent: false,
        agent_timeout_ms: i64::from(args.agent_timeout_seconds) * 1000,
        stopped_task_retention_ms: i64::from(args.stopped_task_retention_minutes) * 60_000,
        registry_address: args.registry_address,
        registry_maintenance_interval: std::time::Duration::from_secs(
            args.registry_maintenance_interval_seconds.max(1),
        ),
        metrics_endpoint: args.metrics_endpoint == Switch::On,
    })
}

/// `--data-dir`, else `$XDG_DATA_HOME/berth`, else `~/.local/share/berth`.
fn data_dir_or_default(data_dir: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(dir) = data_dir {
        return Ok(dir);
    }
    let non_empty = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    if let Some(xdg) = non_empty("XDG_DATA_HOME") {
        return Ok(PathBuf::from(xdg).join("berth"));
    }
    let home =
        non_empty("HOME").context("neither XDG_DATA_HOME nor HOME is set; pass --data-dir")?;
    Ok(PathBuf::from(home).join(".local/share/berth"))
}

fn print_env(data_dir: Option<PathBuf>, listen: Option<SocketAddr>) -> Result<()> {
    let data_dir = data_dir_or_default(data_dir)?;
    let stored = credentials::read_credentials(&data_dir)?;
    let region = credentials::read_region(&data_dir).unwrap_or_else(|| DEFAULT_REGION.into());
    let endpoint_url = match listen {
        Some(addr) => node::endpoint_url(addr),
        None => credentials::read_endpoint(&data_dir)
            .unwrap_or_else(|| format!("http://{DEFAULT_LISTEN}")),
    };
    // botocore reads the region from AWS_DEFAULT_REGION, other SDKs from
    // AWS_REGION: set both.
    println!(
        "export AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={} AWS_REGION={} AWS_DEFAULT_REGION={} AWS_ENDPOINT_URL={}",
        shell_quote(&stored.access_key_id),
        shell_quote(&stored.secret_access_key),
        shell_quote(&region),
        shell_quote(&region),
        shell_quote(&endpoint_url),
    );
    Ok(())
}

/// `value` as one shell word: unchanged when it is plainly safe, else in
/// single quotes.
fn shell_quote(value: &str) -> String {
    let safe = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=:.,_-@%".contains(&b));
    if safe {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting() {
        assert_eq!(
            shell_quote("http://127.0.0.1:4566"),
            "http://127.0.0.1:4566"
        );
        assert_eq!(shell_quote("ab+/c="), "ab+/c=");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn the_cli_is_well_formed() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }
}
