//! Running a query: the streaming prefix, the sink, and the rest in memory.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, HashSet};

use super::eval::{eval, Row};
use super::parse::{AggKind, AggSpec, Command, Query, Sink, Stats};
use super::value::{DirKey, KeyPart, Value};
use super::{Event, Output, MAX_ROWS};

/// One query's evaluation over the events offered to it.
pub struct Run<'q> {
    query: &'q Query,
    sink: State<'q>,
    scanned: u64,
    bytes: u64,
    matched: u64,
}

enum State<'q> {
    Stats(Groups<'q>),
    Top {
        sort: Option<&'q [(super::parse::Expr, bool)]>,
        n: usize,
        heap: BinaryHeap<Entry>,
    },
    All(Vec<Row>),
}

/// A row in a top-N heap; greater is later in the result.
struct Entry {
    keys: Vec<DirKey>,
    /// Ties: newest first, then by `@ptr`.
    tie: (Reverse<i64>, String),
    row: Row,
}

impl Entry {
    fn new(sort: Option<&[(super::parse::Expr, bool)]>, row: Row) -> Entry {
        Entry {
            keys: sort.map_or_else(Vec::new, |s| sort_keys(s, &row)),
            tie: (Reverse(row.ts()), row.ptr().to_string()),
            row,
        }
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        self.keys
            .cmp(&other.keys)
            .then_with(|| self.tie.cmp(&other.tie))
    }
}

fn sort_keys(sort: &[(super::parse::Expr, bool)], row: &Row) -> Vec<DirKey> {
    sort.iter()
        .map(|(e, desc)| DirKey {
            val: eval(e, row, &[]).sort_key(),
            desc: *desc,
        })
        .collect()
}

impl Query {
    /// Starts evaluating the query; offer it every event in the time range.
    pub fn run(&self) -> Run<'_> {
        let sink = match &self.plan.sink {
            Sink::Stats(i) => match &self.commands[*i] {
                Command::Stats(s) => State::Stats(Groups::new(s)),
                _ => State::All(Vec::new()),
            },
            Sink::Top { sort, n } => State::Top {
                sort: sort.and_then(|i| match &self.commands[i] {
                    Command::Sort(keys) => Some(keys.as_slice()),
                    _ => None,
                }),
                n: *n,
                heap: BinaryHeap::new(),
            },
            Sink::All => State::All(Vec::new()),
        };
        Run {
            query: self,
            sink,
            scanned: 0,
            bytes: 0,
            matched: 0,
        }
    }
}

/// Applies a row-by-row command; `false` when the row is filtered out.
fn apply_row(cmd: &Command, row: &mut Row) -> bool {
    match cmd {
        Command::Fields(items) => {
            let vals: Vec<Value> = items.iter().map(|(_, e)| eval(e, row, &[])).collect();
            for ((name, _), v) in items.iter().zip(vals) {
                row.set(name, v);
            }
            true
        }
        Command::Parse(p) => {
            row.apply_parse(p);
            true
        }
        Command::Filter(e) => eval(e, row, &[]).truthy(),
        _ => true,
    }
}

impl Run<'_> {
    /// Takes one event; events may come in any order.
    pub fn offer(&mut self, event: &Event<'_>) {
        self.scanned += 1;
        self.bytes += event.message.len() as u64;
        let mut row = Row::from_event(event, self.query.needs_json);
        for cmd in &self.query.commands[..self.query.plan.prefix] {
            if !apply_row(cmd, &mut row) {
                return;
            }
        }
        self.matched += 1;
        match &mut self.sink {
            State::Stats(g) => g.add(row),
            State::Top { sort, n, heap } => {
                let entry = Entry::new(*sort, row);
                if heap.len() >= *n {
                    if heap.peek().is_some_and(|top| entry >= *top) {
                        return;
                    }
                    heap.pop();
                }
                heap.push(entry);
            }
            State::All(rows) => rows.push(row),
        }
    }

    /// The result rows and statistics.
    pub fn finish(self) -> Output {
        let q = self.query;
        let mut rows = match self.sink {
            State::Stats(g) => g.finish(),
            State::Top { heap, .. } => heap.into_sorted_vec().into_iter().map(|e| e.row).collect(),
            State::All(rows) => {
                let mut entries: Vec<Entry> =
                    rows.into_iter().map(|r| Entry::new(None, r)).collect();
                entries.sort();
                entries.into_iter().map(|e| e.row).collect()
            }
        };
        for &i in &q.plan.rest {
            rows = apply_all(&q.commands[i], rows);
        }
        rows.truncate(MAX_ROWS);
        let rows = rows
            .iter()
            .map(|row| {
                q.columns
                    .iter()
                    .filter_map(|c| row.get(c).render().map(|v| (c.clone(), v)))
                    .collect()
            })
            .collect();
        Output {
            rows,
            records_matched: self.matched as f64,
            records_scanned: self.scanned as f64,
            bytes_scanned: self.bytes as f64,
        }
    }
}

/// Applies a command to rows held in memory.
fn apply_all(cmd: &Command, mut rows: Vec<Row>) -> Vec<Row> {
    match cmd {
        Command::Stats(s) => {
            let mut g = Groups::new(s);
            for row in rows {
                g.add(row);
            }
            g.finish()
        }
        Command::Sort(keys) => {
            let mut keyed: Vec<(Vec<DirKey>, Row)> =
                rows.into_iter().map(|r| (sort_keys(keys, &r), r)).collect();
            keyed.sort_by(|a, b| a.0.cmp(&b.0));
            keyed.into_iter().map(|(_, r)| r).collect()
        }
        Command::Limit(n) => {
            rows.truncate(*n);
            rows
        }
        Command::Dedup(names) => {
            let mut seen = HashSet::new();
            rows.retain(|row| {
                let key: Vec<KeyPart> = names.iter().map(|n| row.get(n).key()).collect();
                key.contains(&KeyPart::Null) || seen.insert(key)
            });
            rows
        }
        _ => {
            rows.retain_mut(|row| apply_row(cmd, row));
            rows
        }
    }
}

/// The groups of a stats command.
struct Groups<'q> {
    stats: &'q Stats,
    groups: HashMap<Vec<KeyPart>, (Vec<Value>, Vec<Acc>)>,
}

enum Acc {
    Count(u64),
    Sum(f64, bool),
    Avg(f64, u64),
    Min(Option<(f64, Value)>),
    Max(Option<(f64, Value)>),
    Distinct(HashSet<KeyPart>),
    /// Time, `@ptr` (for ties) and value of the earliest or latest row.
    Earliest(Option<(i64, String, Value)>),
    Latest(Option<(i64, String, Value)>),
    Pct(Vec<f64>, f64),
    /// Welford: count, mean, sum of squared deviations.
    Stddev(u64, f64, f64),
}

impl Acc {
    fn new(spec: &AggSpec) -> Acc {
        match spec.kind {
            AggKind::Count => Acc::Count(0),
            AggKind::CountDistinct => Acc::Distinct(HashSet::new()),
            AggKind::Sum => Acc::Sum(0.0, false),
            AggKind::Avg => Acc::Avg(0.0, 0),
            AggKind::Min => Acc::Min(None),
            AggKind::Max => Acc::Max(None),
            AggKind::Earliest => Acc::Earliest(None),
            AggKind::Latest => Acc::Latest(None),
            AggKind::Pct(p) => Acc::Pct(Vec::new(), p),
            AggKind::Stddev => Acc::Stddev(0, 0.0, 0.0),
        }
    }

    fn add(&mut self, spec: &AggSpec, row: &Row) {
        let v = match &spec.arg {
            Some(e) => eval(e, row, &[]),
            None => Value::Num(1.0),
        };
        if v.is_null() {
            return;
        }
        match self {
            Acc::Count(n) => *n += 1,
            Acc::Distinct(set) => {
                set.insert(v.key());
            }
            Acc::Earliest(best) => {
                let cand = (row.ts(), row.ptr().to_string());
                if best.as_ref().is_none_or(|b| cand < (b.0, b.1.clone())) {
                    *best = Some((cand.0, cand.1, v));
                }
            }
            Acc::Latest(best) => {
                let cand = (row.ts(), row.ptr().to_string());
                if best.as_ref().is_none_or(|b| cand > (b.0, b.1.clone())) {
                    *best = Some((cand.0, cand.1, v));
                }
            }
            _ => {
                let Some(x) = v.num() else {
                    return;
                };
                match self {
                    Acc::Sum(s, any) => {
                        *s += x;
                        *any = true;
                    }
                    Acc::Avg(s, n) => {
                        *s += x;
                        *n += 1;
                    }
                    Acc::Min(m) if m.as_ref().is_none_or(|m| x < m.0) => *m = Some((x, v)),
                    Acc::Max(m) if m.as_ref().is_none_or(|m| x > m.0) => *m = Some((x, v)),
                    Acc::Pct(vals, _) => vals.push(x),
                    Acc::Stddev(n, mean, m2) => {
                        *n += 1;
                        let d = x - *mean;
                        *mean += d / *n as f64;
                        *m2 += d * (x - *mean);
                    }
                    _ => {}
                }
            }
        }
    }

    fn result(self) -> Value {
        match self {
            Acc::Count(n) => Value::Num(n as f64),
            Acc::Distinct(set) => Value::Num(set.len() as f64),
            Acc::Sum(s, true) => Value::Num(s),
            Acc::Sum(_, false) => Value::Null,
            Acc::Avg(s, n) if n > 0 => Value::Num(s / n as f64),
            Acc::Avg(..) => Value::Null,
            Acc::Min(m) | Acc::Max(m) => m.map_or(Value::Null, |m| match m.1 {
                Value::Time(t) => Value::Time(t),
                _ => Value::Num(m.0),
            }),
            Acc::Earliest(b) | Acc::Latest(b) => b.map_or(Value::Null, |b| b.2),
            Acc::Pct(mut vals, p) => {
                if vals.is_empty() {
                    return Value::Null;
                }
                vals.sort_by(f64::total_cmp);
                let rank = ((p / 100.0) * vals.len() as f64).ceil() as usize;
                Value::Num(vals[rank.clamp(1, vals.len()) - 1])
            }
            Acc::Stddev(n, _, m2) if n > 1 => Value::Num((m2 / (n - 1) as f64).sqrt()),
            Acc::Stddev(1, _, _) => Value::Num(0.0),
            Acc::Stddev(..) => Value::Null,
        }
    }
}

impl<'q> Groups<'q> {
    fn new(stats: &'q Stats) -> Self {
        Groups {
            stats,
            groups: HashMap::new(),
        }
    }

    fn add(&mut self, row: Row) {
        let by: Vec<Value> = self
            .stats
            .by
            .iter()
            .map(|(_, e)| eval(e, &row, &[]))
            .collect();
        let key: Vec<KeyPart> = by.iter().map(Value::key).collect();
        let stats = self.stats;
        let (_, accs) = self
            .groups
            .entry(key)
            .or_insert_with(|| (by, stats.aggs.iter().map(Acc::new).collect()));
        for (acc, spec) in accs.iter_mut().zip(&stats.aggs) {
            acc.add(spec, &row);
        }
    }

    /// One row per group, in ascending order of the `by` values.
    fn finish(self) -> Vec<Row> {
        let mut groups: Vec<((Vec<DirKey>, String), Row)> = self
            .groups
            .into_values()
            .map(|(by, accs)| {
                let aggs: Vec<Value> = accs.into_iter().map(Acc::result).collect();
                let mut row = Row::default();
                let keys = by
                    .iter()
                    .map(|v| DirKey {
                        val: v.sort_key(),
                        desc: false,
                    })
                    .collect();
                // Ties between equal-sorting keys (`1` and `"1"`) by identity.
                let tie = format!("{:?}", by.iter().map(Value::key).collect::<Vec<_>>());
                for ((name, _), v) in self.stats.by.iter().zip(by) {
                    row.set(name, v);
                }
                for (name, e) in &self.stats.items {
                    let v = eval(e, &row, &aggs);
                    row.set(name, v);
                }
                ((keys, tie), row)
            })
            .collect();
        groups.sort_by(|a, b| a.0.cmp(&b.0));
        groups.into_iter().map(|(_, r)| r).collect()
    }
}
