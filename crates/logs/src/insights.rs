//! CloudWatch Logs Insights: the query language behind StartQuery and
//! GetQueryResults, as a pure engine.
//!
//! [`parse`] compiles a query's text into a [`Query`] (or a [`QueryError`]
//! with the character span AWS's `queryCompileError` reports). A [`Run`]
//! then takes the events of the selected log groups one at a time, in any
//! order, through [`Run::offer`], and [`Run::finish`] returns the rows and
//! statistics as GetQueryResults shows them. No I/O, clock or randomness.
//!
//! - `lex.rs`: tokens, `#` comments, `/regex/` literals, durations (`5m`).
//! - `parse.rs`: commands (`fields`, `display`, `filter`, `stats`, `sort`,
//!   `limit`, `parse`, `dedup`) and expressions, and the execution plan.
//! - `eval.rs`: rows (system fields, JSON fields flattened with dots),
//!   expressions and functions.
//! - `run.rs`: the streaming part of the pipeline, the bounded top-N heap
//!   for `sort … | limit N`, aggregation, and the in-memory rest.
//! - `value.rs`: values, their rendering and their orders.
//!
//! Determinism: rows that the query does not order come newest first
//! (`@timestamp` descending, then `@ptr`); `stats` groups come in ascending
//! order of their `by` values.

mod eval;
mod lex;
mod parse;
mod run;
mod value;

#[cfg(test)]
mod tests;

pub use parse::{parse, Query};
pub use run::Run;

/// At most this many rows come back, AWS's limit and the default `limit`.
pub const MAX_ROWS: usize = 10_000;

/// A query that does not compile: AWS's `MalformedQueryException` with its
/// `queryCompileError` — `message` and the location `start..end`, in
/// characters of the query text (`end` exclusive).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at characters {start}..{end}")]
pub struct QueryError {
    pub message: String,
    pub start: usize,
    pub end: usize,
}

impl QueryError {
    /// An error for the byte span `start..end` of `text`.
    pub(crate) fn at(text: &str, message: impl Into<String>, start: usize, end: usize) -> Self {
        let chars = |b: usize| {
            text.get(..b.min(text.len()))
                .map_or(0, |s| s.chars().count())
        };
        QueryError {
            message: message.into(),
            start: chars(start),
            end: chars(end.max(start)),
        }
    }
}

/// One log event as the query sees it. `log` is `<account>:<group name>`;
/// `ptr` is the caller's `@ptr` for GetLogRecord.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    pub timestamp_ms: i64,
    pub ingestion_time_ms: i64,
    pub message: &'a str,
    pub log_stream: &'a str,
    pub log: &'a str,
    pub ptr: &'a str,
}

/// GetQueryResults' `results` and `statistics`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Output {
    /// Each row's `(field, value)` pairs in the order of the query's fields;
    /// missing values are left out, as AWS does.
    pub rows: Vec<Vec<(String, String)>>,
    pub records_matched: f64,
    pub records_scanned: f64,
    pub bytes_scanned: f64,
}
