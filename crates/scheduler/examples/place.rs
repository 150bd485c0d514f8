//! The timing loop of `berth bench scheduler`, runnable from this crate:
//!
//! ```text
//! cargo run --release -p scheduler --example place -- \
//!     [--instances N] [--tasks M] [--strategy binpack|spread|random] \
//!     [--constraint EXPR] [--seed S]
//! ```

use std::time::Instant;

use rand::rngs::StdRng;
use rand::SeedableRng;
use scheduler::synthetic::{self, TaskMix};
use scheduler::{
    place_one, BinpackField, ClusterState, Expr, PlacementConstraint, PlacementStrategy,
};

const FAMILIES: usize = 20;

fn main() {
    let mut instances = 10_000usize;
    let mut tasks = 1_000_000usize;
    let mut strategy = "binpack".to_string();
    let mut constraint: Option<String> = None;
    let mut seed = 1u64;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| fail(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--instances" => instances = value.parse().unwrap_or_else(|_| fail("--instances")),
            "--tasks" => tasks = value.parse().unwrap_or_else(|_| fail("--tasks")),
            "--strategy" => strategy = value,
            "--constraint" => constraint = Some(value),
            "--seed" => seed = value.parse().unwrap_or_else(|_| fail("--seed")),
            other => fail(&format!("unknown flag {other}")),
        }
    }
    let strategies = match strategy.as_str() {
        "binpack" => vec![PlacementStrategy::Binpack(BinpackField::Memory)],
        "spread" => PlacementStrategy::service_default(),
        "random" => PlacementStrategy::run_task_default(),
        other => fail(&format!("unknown strategy {other}")),
    };
    let mut families = synthetic::task_families(FAMILIES);
    if let Some(expression) = &constraint {
        let expr = Expr::parse(expression).unwrap_or_else(|e| fail(&e.to_string()));
        for family in &mut families {
            family
                .constraints
                .push(PlacementConstraint::MemberOf(expr.clone()));
        }
    }

    let started = now();
    let mut state = ClusterState::new(synthetic::cluster(instances, seed));
    let build_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut mix = TaskMix::new(FAMILIES, seed.wrapping_add(1));
    let mut rng = StdRng::seed_from_u64(seed.wrapping_add(2));
    let mut decision_ns: Vec<u32> = Vec::with_capacity(tasks);
    let mut used = vec![false; instances];
    let (mut placed, mut failed) = (0usize, 0usize);
    let started = now();
    for _ in 0..tasks {
        let task = &families[mix.next_family()];
        let decided = now();
        let outcome = place_one(&mut state, task, &strategies, &mut rng);
        decision_ns.push(u32::try_from(decided.elapsed().as_nanos()).unwrap_or(u32::MAX));
        match outcome {
            Ok(placement) => {
                placed += 1;
                used[placement.instance.get()] = true;
            }
            Err(_) => failed += 1,
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    decision_ns.sort_unstable();
    let percentile_us = |p: f64| {
        let at = ((decision_ns.len() as f64 * p).ceil() as usize).clamp(1, decision_ns.len()) - 1;
        f64::from(decision_ns[at]) / 1000.0
    };
    let peak_rss_mib = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))?
                .to_string();
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(-1.0, |kib| kib / 1024.0);
    println!(
        "{instances} instances ({build_ms:.0} ms to build), {tasks} tasks, {strategy}{}: \
         placed {placed}, failed {failed}, {} instances used, {:.2} s, {:.0} placements/s, \
         p50 {:.2} µs, p99 {:.2} µs, max {:.1} µs, peak RSS {peak_rss_mib:.1} MiB",
        constraint
            .as_deref()
            .map(|c| format!(" + memberOf({c})"))
            .unwrap_or_default(),
        used.iter().filter(|u| **u).count(),
        seconds,
        placed as f64 / seconds,
        percentile_us(0.5),
        percentile_us(0.99),
        percentile_us(1.0),
    );
    println!(
        "{{\"placements_per_s\":{:.0},\"decision_p99_us\":{:.2},\"peak_rss_mib\":{:.1}}}",
        placed as f64 / seconds,
        percentile_us(0.99),
        peak_rss_mib
    );
}

#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

fn fail(message: &str) -> ! {
    eprintln!("place: {message}");
    std::process::exit(2)
}
