//! A deterministic simulation of target tracking, step scaling, bounds and scheduled
//! actions against a virtual clock: a service whose tasks take 5–10 s to start, per-task
//! CPU = offered load / running tasks (capped at 100), a metric sample every 5 s, alarms
//! evaluated by the real `alarms` crate on [`alarm_specs`]' rules every 10 s, and [`plan`]
//! every second. Asserts only.

use std::collections::BTreeMap;

use alarms::{
    evaluate, evaluation_range, AlarmRule, Datapoint, StateValue, TreatMissingData, Window,
};

use crate::plan::tests::target;
use crate::{
    alarm_specs, plan, AlarmRole, AlarmState, Input, Policy, PolicyConfiguration, ScalingState,
    Schedule, ScheduledAction, Target, TriggeringAlarm,
};

const TICK_MS: i64 = 1_000;
const SAMPLE_MS: i64 = 5_000;

/// A tiny seeded generator (xorshift) for task start delays.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

struct SimAlarm {
    name: String,
    role: AlarmRole,
    rule: AlarmRule,
    state: StateValue,
    comparison_operator: String,
}

struct Sim {
    now_ms: i64,
    rng: Rng,
    target: Target,
    desired: i32,
    /// Start time of each task (running once reached).
    tasks: Vec<i64>,
    /// Offered load in task-percent (200 = two tasks' worth at 100%).
    load: f64,
    samples: Vec<(i64, f64)>,
    alarms: Vec<SimAlarm>,
    configuration: PolicyConfiguration,
    actions: Vec<ScheduledAction>,
    state: ScalingState,
    /// (time, new desired count).
    changes: Vec<(i64, i32)>,
    /// Every activity's description and cause.
    activities: Vec<(i64, String, String)>,
}

fn rule_of(period_s: i32, n: i32, m: i32, threshold: f64, op: &str) -> AlarmRule {
    AlarmRule {
        period_s: period_s as u32,
        evaluation_periods: n as u32,
        datapoints_to_alarm: Some(m as u32),
        threshold,
        comparison: op.parse().unwrap(),
        treat_missing_data: TreatMissingData::Missing,
        statistic_label: "Average".into(),
        unit: None,
        evaluate_low_sample_count_percentile: None,
    }
}

impl Sim {
    fn target_tracking(min: i32, max: i32, desired: i32, load: f64, cooldown_s: i64) -> Sim {
        let alarms = alarm_specs(50.0, false)
            .into_iter()
            .map(|spec| SimAlarm {
                name: format!("TargetTracking-service/default/web-Alarm{:?}", spec.role),
                role: spec.role,
                rule: rule_of(
                    spec.period_s,
                    spec.evaluation_periods,
                    spec.datapoints_to_alarm,
                    spec.threshold,
                    spec.comparison_operator,
                ),
                state: StateValue::InsufficientData,
                comparison_operator: spec.comparison_operator.into(),
            })
            .collect();
        let configuration = PolicyConfiguration::TargetTracking {
            target_value: 50.0,
            scale_out_cooldown_s: cooldown_s,
            scale_in_cooldown_s: cooldown_s,
            disable_scale_in: false,
        };
        Sim::new(min, max, desired, load, alarms, configuration)
    }

    fn new(
        min: i32,
        max: i32,
        desired: i32,
        load: f64,
        alarms: Vec<SimAlarm>,
        configuration: PolicyConfiguration,
    ) -> Sim {
        Sim {
            now_ms: 1_796_601_600_000, // 2026-12-07T00:00:00Z
            rng: Rng(0x5eed),
            target: target(min, max),
            desired,
            tasks: vec![0; desired as usize],
            load,
            samples: Vec::new(),
            alarms,
            configuration,
            actions: Vec::new(),
            state: ScalingState::default(),
            changes: Vec::new(),
            activities: Vec::new(),
        }
    }

    fn running(&self) -> i32 {
        self.tasks.iter().filter(|t| **t <= self.now_ms).count() as i32
    }

    fn cpu(&self) -> f64 {
        let running = self.running();
        if running == 0 {
            return 100.0;
        }
        (self.load / f64::from(running)).min(100.0)
    }

    /// The period averages of `rule`'s evaluation range.
    fn window_points(&self, rule: &AlarmRule) -> (Vec<Datapoint>, i64, i64) {
        let (start, end) = evaluation_range(rule, self.now_ms);
        let period_ms = i64::from(rule.period_s) * 1000;
        let mut buckets: BTreeMap<i64, (f64, f64)> = BTreeMap::new();
        for (t, v) in &self.samples {
            if *t >= start && *t < end {
                let b = start + (t - start) / period_ms * period_ms;
                let e = buckets.entry(b).or_insert((0.0, 0.0));
                e.0 += v;
                e.1 += 1.0;
            }
        }
        let points = buckets
            .into_iter()
            .map(|(t, (sum, n))| Datapoint {
                timestamp_ms: t,
                value: sum / n,
                sample_count: Some(n),
            })
            .collect();
        (points, start, end)
    }

    fn step(&mut self) {
        self.now_ms += TICK_MS;
        if self.now_ms % SAMPLE_MS == 0 && self.running() > 0 {
            self.samples.push((self.now_ms, self.cpu()));
        }
        if self.now_ms % 10_000 == 0 {
            for i in 0..self.alarms.len() {
                let (points, start, end) = self.window_points(&self.alarms[i].rule);
                let window = Window {
                    datapoints: &points,
                    range_start_ms: start,
                    range_end_ms: end,
                };
                let alarm = &self.alarms[i];
                let evaluation = evaluate(&alarm.rule, alarm.state, &window, self.now_ms);
                self.alarms[i].state = evaluation.state;
            }
        }
        self.pass();
    }

    fn policy(&self) -> Policy {
        let alarms = self
            .alarms
            .iter()
            .map(|a| {
                let (points, _, _) = self.window_points(&a.rule);
                let keep = a.rule.evaluation_periods as usize;
                let values: Vec<f64> = points.iter().map(|p| p.value).collect();
                TriggeringAlarm {
                    name: a.name.clone(),
                    role: a.role,
                    state: match a.state {
                        StateValue::Alarm => AlarmState::Alarm,
                        StateValue::Ok => AlarmState::Ok,
                        StateValue::InsufficientData => AlarmState::InsufficientData,
                    },
                    actions_enabled: true,
                    threshold: a.rule.threshold,
                    comparison_operator: a.comparison_operator.clone(),
                    datapoints: values[values.len().saturating_sub(keep)..].to_vec(),
                }
            })
            .collect();
        Policy {
            name: "cpu".into(),
            arn: "arn:cpu".into(),
            configuration: self.configuration.clone(),
            alarms,
        }
    }

    fn pass(&mut self) {
        let policies = [self.policy()];
        let p = plan(
            &Input {
                target: &self.target,
                desired_count: self.desired,
                running_count: self.running(),
                policies: &policies,
                scheduled_actions: &self.actions,
                state: &self.state,
            },
            self.now_ms,
        );
        for a in &p.activities {
            self.activities
                .push((self.now_ms, a.description.clone(), a.cause.clone()));
        }
        self.state = p.state;
        if let Some(min) = p.min_capacity {
            self.target.min_capacity = min;
        }
        if let Some(max) = p.max_capacity {
            self.target.max_capacity = max;
        }
        if let Some(d) = p.desired_count {
            self.changes.push((self.now_ms, d));
            self.set_desired(d);
        }
    }

    /// The service scheduler: new tasks start 5–10 s later; scale-in stops tasks at once.
    fn set_desired(&mut self, d: i32) {
        self.desired = d;
        while self.tasks.len() < d as usize {
            let delay_ms = 5_000 + (self.rng.next() % 5_001) as i64;
            self.tasks.push(self.now_ms + delay_ms);
        }
        self.tasks.sort_unstable();
        self.tasks.truncate(d as usize);
    }

    fn run_s(&mut self, seconds: i64) {
        for _ in 0..seconds {
            self.step();
        }
    }

    fn changes_since(&self, t: i64) -> Vec<(i64, i32)> {
        self.changes
            .iter()
            .copied()
            .filter(|(at, _)| *at > t)
            .collect()
    }
}

#[test]
fn load_step_converges_without_oscillation_and_scales_in_after_the_low_window() {
    // 4 tasks at 10% CPU; target 50%; min 4 so the quiet start does not scale in.
    let mut sim = Sim::target_tracking(4, 20, 4, 40.0, 60);
    sim.run_s(300);
    assert!(sim.changes.is_empty(), "{:?}", sim.changes);

    // The load steps to 90% of 4 tasks: 360 task-% needs ceil(360 / 50) = 8 tasks.
    let step_at = sim.now_ms;
    sim.load = 360.0;
    sim.run_s(120);
    let up = sim.changes_since(step_at);
    assert!(!up.is_empty() && up.len() <= 2, "{up:?}");
    assert_eq!(sim.desired, 8, "{up:?}");
    let decided_after_ms = up[0].0 - step_at;
    assert!(
        decided_after_ms <= 30_000,
        "decision took {decided_after_ms} ms"
    );
    assert_eq!(sim.running(), 8);

    // Ten minutes of steady load: no change.
    let steady_at = sim.now_ms;
    sim.run_s(600);
    assert!(
        sim.changes_since(steady_at).is_empty(),
        "{:?}",
        sim.changes_since(steady_at)
    );

    // The load drops to 10% of 4 tasks: scale in after AlarmLow's 150 s, not before, and
    // not below the minimum (4) nor below what the load needs.
    let drop_at = sim.now_ms;
    sim.load = 40.0;
    sim.run_s(400);
    let down = sim.changes_since(drop_at);
    assert!(!down.is_empty(), "no scale-in");
    assert!(
        down[0].0 - drop_at >= 150_000,
        "scaled in after {} ms",
        down[0].0 - drop_at
    );
    assert!(down.iter().all(|(_, d)| *d >= 4), "{down:?}");
    assert_eq!(sim.desired, 4);
    // The activity wording.
    let last = sim.activities.last().unwrap();
    assert_eq!(last.1, "Setting desired count to 4.");
    assert_eq!(last.2, "monitor alarm TargetTracking-service/default/web-AlarmLow in state ALARM triggered policy cpu");
}

#[test]
fn cooldowns_are_honoured_and_bounds_hold() {
    // Load falls in steps; ScaleInCooldown 300 s spaces the scale-ins.
    let mut sim = Sim::target_tracking(1, 6, 6, 270.0, 300);
    sim.run_s(60);
    for load in [200.0, 120.0, 40.0] {
        sim.load = load;
        sim.run_s(400);
    }
    let ins: Vec<i64> = sim.changes.iter().map(|(t, _)| *t).collect();
    assert!(ins.len() >= 2, "{:?}", sim.changes);
    assert!(
        ins.windows(2).all(|w| w[1] - w[0] >= 300_000),
        "{:?}",
        sim.changes
    );
    assert!(sim.changes.iter().all(|(_, d)| (1..=6).contains(d)));

    // Far more load than MaxCapacity allows: one scale-out to 6, one not-scaled record.
    sim.load = 2_000.0;
    let at = sim.now_ms;
    sim.run_s(300);
    assert_eq!(sim.desired, 6);
    let not_scaled = sim
        .activities
        .iter()
        .filter(|(t, d, _)| *t > at && d == "Attempting to scale due to alarm triggered")
        .count();
    assert!(not_scaled <= 1, "{:?}", sim.activities);
}

#[test]
fn step_scaling_boundaries_in_time() {
    use crate::{AdjustmentType, MetricAggregation, StepAdjustment};
    let step = |lo: Option<f64>, hi: Option<f64>, adj: i32| StepAdjustment {
        metric_interval_lower_bound: lo,
        metric_interval_upper_bound: hi,
        scaling_adjustment: adj,
    };
    let alarm = SimAlarm {
        name: "cpu-gt-70".into(),
        role: AlarmRole::Step,
        rule: rule_of(10, 3, 3, 70.0, "GreaterThanOrEqualToThreshold"),
        state: StateValue::InsufficientData,
        comparison_operator: "GreaterThanOrEqualToThreshold".into(),
    };
    let configuration = PolicyConfiguration::Step {
        adjustment_type: AdjustmentType::ChangeInCapacity,
        step_adjustments: vec![step(Some(0.0), Some(20.0), 1), step(Some(20.0), None, 3)],
        min_adjustment_magnitude: None,
        cooldown_s: 60,
        metric_aggregation: MetricAggregation::Average,
    };
    // 2 tasks at 95% (≥ 70 + 20): +3 → 5 tasks at 38%: the alarm returns to OK.
    let mut sim = Sim::new(1, 10, 2, 190.0, vec![alarm], configuration);
    sim.run_s(300);
    assert_eq!(
        sim.changes.iter().map(|(_, d)| *d).collect::<Vec<_>>(),
        vec![5]
    );
    // 5 tasks at 75% (in [70, 90)): +1 per trigger, at most once per Cooldown.
    sim.load = 375.0;
    let at = sim.now_ms;
    sim.run_s(130);
    let later = sim.changes_since(at);
    assert!(!later.is_empty() && later.len() <= 3, "{later:?}");
    assert_eq!(later[0].1, 6);
    assert!(
        later.windows(2).all(|w| w[1].0 - w[0].0 >= 60_000),
        "{later:?}"
    );
}

#[test]
fn scheduled_actions_fire_once_each_across_a_restart() {
    let mut sim = Sim::target_tracking(1, 10, 2, 50.0, 60);
    let start = sim.now_ms;
    let action = |name: &str, expr: &str, min: i32, max: i32| ScheduledAction {
        name: name.into(),
        arn: format!("arn:{name}"),
        schedule: Schedule::parse(expr, Some("Europe/Paris")).unwrap(),
        created_ms: start,
        start_ms: None,
        end_ms: None,
        min_capacity: Some(min),
        max_capacity: Some(max),
    };
    // 00:10 and 00:40 UTC = 01:10 / 01:40 in Paris; and every 15 minutes from creation.
    sim.actions = vec![
        action("morning", "at(2026-12-07T01:10:00)", 3, 10),
        action("half-hourly", "cron(10/30 * * * ? *)", 2, 10),
        action("quarterly", "rate(15 minutes)", 2, 10),
    ];
    sim.run_s(20 * 60);
    // Persist the state, "crash" for 40 minutes (no passes), reload and go on.
    let saved = serde_json::to_string(&sim.state).unwrap();
    sim.state = ScalingState::default();
    let down_from = sim.now_ms;
    sim.now_ms += 40 * 60 * 1000;
    sim.state = serde_json::from_str(&saved).unwrap();
    sim.run_s(10 * 60);

    let triggered = |name: &str| -> Vec<i64> {
        sim.activities
            .iter()
            .filter(|(_, _, cause)| *cause == format!("scheduled action name {name} was triggered"))
            .map(|(t, _, _)| *t)
            .collect()
    };
    let minute = 60_000;
    assert_eq!(triggered("morning"), vec![start + 10 * minute]);
    // 00:10 before the crash; 00:40 missed during it runs once on restart (at 01:00).
    assert_eq!(
        triggered("half-hourly"),
        // ... and 01:10 after it.
        vec![
            start + 10 * minute,
            down_from + 40 * minute + 1_000,
            start + 70 * minute
        ]
    );
    // 00:15 before; 00:30, 00:45, 01:00 missed: only the latest runs, once.
    assert_eq!(
        triggered("quarterly"),
        vec![start + 15 * minute, down_from + 40 * minute + 1_000]
    );
    assert_eq!(sim.state.scheduled_run_ms["quarterly"], start + 60 * minute);
}
