//! `berth bench scheduler`: placement throughput and decision latency on a
//! synthetic cluster (heterogeneous instance types, three Availability
//! Zones, a few attributes), one task at a time against the live state.
//!
//! Prints human-readable figures, then one JSON line:
//! `{"bench":"scheduler",…,"placements_per_s":…,"decision_p99_us":…,"peak_rss_mib":…}`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use rand::rngs::StdRng;
use rand::SeedableRng;
use scheduler::synthetic::{self, TaskMix};
use scheduler::{
    place_one, BinpackField, ClusterState, Expr, PlacementConstraint, PlacementFailure,
    PlacementStrategy,
};

/// Task families in the synthetic stream.
const FAMILIES: usize = 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchStrategy {
    /// binpack on memory.
    Binpack,
    /// The service default: spread by Availability Zone, then by instance.
    Spread,
    /// random (the RunTask default).
    Random,
}

#[derive(clap::Args, Debug)]
pub struct SchedulerBenchArgs {
    /// Container instances in the synthetic cluster.
    #[arg(long, default_value_t = 10_000)]
    pub instances: usize,
    /// Tasks to place, one decision each.
    #[arg(long, default_value_t = 1_000_000)]
    pub tasks: usize,
    #[arg(long, value_enum, default_value_t = BenchStrategy::Binpack)]
    pub strategy: BenchStrategy,
    /// A memberOf expression every task must satisfy, e.g.
    /// "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]".
    #[arg(long)]
    pub constraint: Option<String>,
    /// Seeds the cluster, the task stream and the random strategy.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub fn run(args: &SchedulerBenchArgs) -> Result<()> {
    if args.instances == 0 || args.tasks == 0 {
        bail!("--instances and --tasks must be at least 1");
    }
    let mut families = synthetic::task_families(FAMILIES);
    if let Some(expression) = &args.constraint {
        let expr = Expr::parse(expression).context("--constraint")?;
        for family in &mut families {
            family
                .constraints
                .push(PlacementConstraint::MemberOf(expr.clone()));
        }
    }
    let strategies = match args.strategy {
        BenchStrategy::Binpack => vec![PlacementStrategy::Binpack(BinpackField::Memory)],
        BenchStrategy::Spread => PlacementStrategy::service_default(),
        BenchStrategy::Random => PlacementStrategy::run_task_default(),
    };
    let chain: Vec<String> = strategies
        .iter()
        .map(|s| match s.to_ecs() {
            (kind, Some(field)) => format!("{kind}({field})"),
            (kind, None) => kind.to_string(),
        })
        .collect();
    println!(
        "berth bench scheduler: {} instances, {} tasks, strategy {}{}, seed {}",
        args.instances,
        args.tasks,
        chain.join(" then "),
        args.constraint
            .as_deref()
            .map(|c| format!(", memberOf({c})"))
            .unwrap_or_default(),
        args.seed
    );

    let started = now();
    let mut state = ClusterState::new(synthetic::cluster(args.instances, args.seed));
    println!("cluster built in {:.1} ms", ms(started.elapsed()));

    let mut mix = TaskMix::new(FAMILIES, args.seed.wrapping_add(1));
    let mut rng = StdRng::seed_from_u64(args.seed.wrapping_add(2));
    let mut decision_ns: Vec<u32> = Vec::with_capacity(args.tasks);
    let mut used = vec![false; args.instances];
    let (mut placed, mut failed) = (0usize, 0usize);
    let mut first_failure: Option<String> = None;
    let started = now();
    for _ in 0..args.tasks {
        let task = &families[mix.next_family()];
        let decided = now();
        let outcome = place_one(&mut state, task, &strategies, &mut rng);
        decision_ns.push(u32::try_from(decided.elapsed().as_nanos()).unwrap_or(u32::MAX));
        match outcome {
            Ok(placement) => {
                placed += 1;
                used[placement.instance.get()] = true;
            }
            Err(failure) => {
                failed += 1;
                first_failure.get_or_insert_with(|| describe(&failure));
            }
        }
    }
    let elapsed = started.elapsed();

    decision_ns.sort_unstable();
    let percentile_us = |p: f64| {
        let at = ((decision_ns.len() as f64 * p).ceil() as usize).clamp(1, decision_ns.len()) - 1;
        f64::from(decision_ns[at]) / 1000.0
    };
    let placements_per_s = placed as f64 / elapsed.as_secs_f64();
    let (p50, p99, max) = (percentile_us(0.50), percentile_us(0.99), percentile_us(1.0));
    let peak_rss_mib = peak_rss_mib();
    let instances_used = used.iter().filter(|u| **u).count();
    println!(
        "placed {placed} tasks ({failed} failed) in {:.2} s: {placements_per_s:.0} placements/s",
        elapsed.as_secs_f64()
    );
    println!("decision time: p50 {p50:.2} µs, p99 {p99:.2} µs, max {max:.1} µs");
    println!("instances used: {instances_used} of {}", args.instances);
    if let Some(failure) = &first_failure {
        println!("first failure: {failure}");
    }
    match peak_rss_mib {
        Some(mib) => println!("peak memory (VmHWM): {mib:.1} MiB"),
        None => println!("peak memory: unavailable (no /proc/self/status)"),
    }
    let summary = serde_json::json!({
        "bench": "scheduler",
        "instances": args.instances,
        "tasks": args.tasks,
        "strategy": chain.join(","),
        "constraint": args.constraint,
        "seed": args.seed,
        "placed": placed,
        "failed": failed,
        "instances_used": instances_used,
        "placements_per_s": placements_per_s.round() as u64,
        "decision_p50_us": round2(p50),
        "decision_p99_us": round2(p99),
        "peak_rss_mib": peak_rss_mib.map(round2),
    });
    println!("{summary}");
    Ok(())
}

fn describe(failure: &PlacementFailure) -> String {
    match failure {
        PlacementFailure::NoContainerInstances => {
            scheduler::NO_CONTAINER_INSTANCES_MESSAGE.to_string()
        }
        PlacementFailure::NoInstanceFits { rejections } => {
            let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
            for rejection in rejections {
                *reasons.entry(rejection.reason.as_ecs_reason()).or_default() += 1;
            }
            let reasons: Vec<String> = reasons
                .iter()
                .map(|(reason, count)| format!("{reason} ×{count}"))
                .collect();
            format!(
                "no instance fits; {} instances turned the task down: {}",
                rejections.len(),
                reasons.join(", ")
            )
        }
    }
}

/// The benchmark's clock: the one place this file reads it.
#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// The process's peak resident set (VmHWM), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: f64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}
