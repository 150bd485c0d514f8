//! CloudWatch metric math: parse expressions such as `100 * m1 / m2`,
//! `SUM(METRICS())` or `IF(m1 > 5, m1, 0)`, order a request's expressions by
//! their references, and evaluate them over the series of the other queries.
//!
//! The caller (the CloudWatch API crate) fetches every MetricStat query's
//! series from the metric store, then evaluates the expressions in
//! [`evaluation_order`], putting each result into the [`Context`] for the next.
//!
//! Semantics follow the CloudWatch User Guide, "Metric math syntax and
//! functions" and "Using IF expressions"; every rule the guide does not state
//! is marked "guessed" where it is implemented.
//!
//! **Architecture Invariant:** pure: no I/O, no clock, no randomness. The time
//! grid comes from [`Context`].

mod eval;
mod order;
mod parse;

use std::collections::BTreeMap;

pub use eval::evaluate;
pub use order::{evaluation_order, validate_id};
pub use parse::{Function, MAX_EXPRESSION_LENGTH};

/// One time series: `timestamps_ms` strictly ascending, `values[i]` at
/// `timestamps_ms[i]`, every value finite.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TimeSeries {
    pub label: String,
    pub timestamps_ms: Vec<i64>,
    pub values: Vec<f64>,
}

impl TimeSeries {
    /// Builds a series from points in ascending time order.
    pub fn new(label: impl Into<String>, points: impl IntoIterator<Item = (i64, f64)>) -> Self {
        let (timestamps_ms, values) = points.into_iter().unzip();
        TimeSeries {
            label: label.into(),
            timestamps_ms,
            values,
        }
    }

    /// The value at `timestamp_ms`, if the series has one.
    pub fn value_at(&self, timestamp_ms: i64) -> Option<f64> {
        self.timestamps_ms
            .binary_search(&timestamp_ms)
            .ok()
            .map(|index| self.values[index])
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn points(&self) -> impl Iterator<Item = (i64, f64)> + '_ {
        self.timestamps_ms
            .iter()
            .copied()
            .zip(self.values.iter().copied())
    }
}

/// What an expression (or a part of one) evaluates to. AWS's abbreviations:
/// S, TS and TS[].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(f64),
    Series(TimeSeries),
    Array(Vec<TimeSeries>),
}

/// A parsed metric math expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    root: parse::Node,
}

/// Parses an expression. Errors are the request's `ValidationError`.
pub fn parse(expression: &str) -> Result<Expr, MathError> {
    Ok(Expr {
        root: parse::parse_node(expression)?,
    })
}

impl Expr {
    /// The query Ids the expression names, in order of first use, without
    /// duplicates. `METRICS()` names no Id: it reads every MetricStat query,
    /// and those depend on nothing.
    pub fn references(&self) -> Vec<String> {
        fn walk(node: &parse::Node, found: &mut Vec<String>) {
            match node {
                parse::Node::Id(id) => {
                    if !found.contains(id) {
                        found.push(id.clone());
                    }
                }
                parse::Node::Array(items) | parse::Node::Call(_, items) => {
                    items.iter().for_each(|item| walk(item, found))
                }
                parse::Node::Negate(inner) => walk(inner, found),
                parse::Node::Binary(_, left, right) => {
                    walk(left, found);
                    walk(right, found);
                }
                parse::Node::Number(_) | parse::Node::Text(_) | parse::Node::Keyword(_) => {}
            }
        }
        let mut found = Vec::new();
        walk(&self.root, &mut found);
        found
    }
}

/// Everything an expression can read.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Results of the other queries by Id (metrics and expressions evaluated so far).
    pub series: &'a BTreeMap<String, Value>,
    /// The Ids of the request's MetricStat queries, in request order: what
    /// `METRICS()` returns ("Math expressions aren't included").
    pub metric_ids: &'a [String],
    /// The request's period. Also what `PERIOD(m)` returns: Berth evaluates a
    /// request on one grid (guessed simplification: AWS returns each metric's own period).
    pub period_s: u32,
    /// Every `start_ms + k * period_s * 1000` in `[start_ms, end_ms)` is a grid
    /// point: the timestamps FILL fills and TIME_SERIES, MINUTE, ... produce.
    pub start_ms: i64,
    pub end_ms: i64,
}

impl Context<'_> {
    /// Every period start in `[start_ms, end_ms)`.
    pub fn grid_ms(&self) -> Vec<i64> {
        let step_ms = i64::from(self.period_s.max(1)) * 1000;
        let mut grid = Vec::new();
        let mut timestamp_ms = self.start_ms;
        while timestamp_ms < self.end_ms {
            grid.push(timestamp_ms);
            timestamp_ms += step_ms;
        }
        grid
    }
}

/// One entry of a `MetricDataResult`'s `Messages` (`MessageData`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub code: String,
    pub value: String,
}

/// The result of one expression and the messages AWS would attach to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// A single series or an array of series; never a scalar.
    pub value: Value,
    pub messages: Vec<Message>,
}

/// AWS's message when values were dropped because they were not finite
/// (division by zero, LOG of 0, ...): the data points are removed and the
/// result carries this `Messages` entry.
pub const ARITHMETIC_ERROR_CODE: &str = "ArithmeticError";
pub const ARITHMETIC_ERROR_MESSAGE: &str =
    "One or more data-points have been dropped due to non-numeric values (NaN, -Infinite, +Infinite)";

/// Why an expression cannot be parsed, ordered or evaluated.
///
/// Every case is a client error: the API answers HTTP 400 with code
/// [`MathError::code`] (`ValidationError`), and the message should name the
/// query, see [`MathError::message_for`]. AWS's exact wording for most of
/// these is not documented; the texts below are Berth's (guessed), written to
/// say what to change.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MathError {
    #[error("{message}")]
    Syntax { message: String },
    #[error("The expression is {length} characters long; the maximum is 2048.")]
    ExpressionTooLong { length: usize },
    #[error("Unrecognized function '{name}'.")]
    UnknownFunction { name: String },
    #[error("Unrecognized function or keyword '{name}'.")]
    UnknownKeyword { name: String },
    #[error("The function {function} is not supported by Berth.")]
    Unsupported { function: String },
    #[error("Invalid arguments for {function}: {message}")]
    Arguments {
        function: &'static str,
        message: String,
    },
    #[error("Invalid Id '{id}': an Id must start with a lowercase letter and contain only letters, numbers and underscores.")]
    InvalidId { id: String },
    #[error("The Id '{id}' is used by more than one query; Ids must be unique within a request.")]
    DuplicateId { id: String },
    #[error("Unrecognized metric or expression Id '{id}' in the expression of '{referenced_by}'.")]
    UnknownId { id: String, referenced_by: String },
    #[error("Unrecognized metric or expression Id '{id}'.")]
    MissingSeries { id: String },
    #[error("Circular dependency between expressions: {}.", .ids.join(" -> "))]
    Cycle { ids: Vec<String> },
    #[error("{message}")]
    Type { message: String },
    /// The User Guide: "The final result of any math expression must be a
    /// single time series or an array of time series".
    #[error("The final result of a math expression must be a single time series or an array of time series, not a scalar.")]
    ScalarResult,
}

impl MathError {
    /// The AWS error code the API answers with.
    pub fn code(&self) -> &'static str {
        "ValidationError"
    }

    /// The message with the query it belongs to, as the API reports it
    /// (wording guessed).
    pub fn message_for(&self, query_id: &str) -> String {
        format!("Error in expression {query_id}: {self}")
    }
}
