//! Rows and the evaluation of expressions over them.

use std::cmp::Ordering;

use super::parse::{BinOp, Expr, ParseCmd, Pat};
use super::value::{compare, Value};
use super::Event;

/// What an event brings besides its discovered fields.
#[derive(Debug, Clone)]
pub(crate) struct Sys {
    pub ts: i64,
    pub ingest: i64,
    pub message: String,
    pub stream: String,
    pub log: String,
    pub ptr: String,
}

/// A record in the pipeline: an event's (with `sys`) or an aggregate's.
#[derive(Debug, Clone, Default)]
pub(crate) struct Row {
    pub sys: Option<Box<Sys>>,
    pub vals: Vec<(String, Value)>,
}

/// Most fields discovered in one JSON message, as AWS caps them.
const MAX_JSON_FIELDS: usize = 1000;

impl Row {
    pub fn from_event(e: &Event<'_>, json: bool) -> Row {
        let mut row = Row {
            sys: Some(Box::new(Sys {
                ts: e.timestamp_ms,
                ingest: e.ingestion_time_ms,
                message: e.message.to_string(),
                stream: e.log_stream.to_string(),
                log: e.log.to_string(),
                ptr: e.ptr.to_string(),
            })),
            vals: Vec::new(),
        };
        if json && e.message.trim_start().starts_with('{') {
            if let Ok(serde_json::Value::Object(map)) =
                serde_json::from_str::<serde_json::Value>(e.message)
            {
                for (k, v) in &map {
                    flatten(k.clone(), v, &mut row.vals);
                }
            }
        }
        row
    }

    pub fn get(&self, name: &str) -> Value {
        if let Some((_, v)) = self.vals.iter().find(|(n, _)| n == name) {
            return v.clone();
        }
        let Some(sys) = &self.sys else {
            return Value::Null;
        };
        match name {
            "@timestamp" => Value::Time(sys.ts),
            "@ingestionTime" => Value::Time(sys.ingest),
            "@message" => Value::Str(sys.message.clone()),
            "@logStream" => Value::Str(sys.stream.clone()),
            "@log" => Value::Str(sys.log.clone()),
            "@ptr" => Value::Str(sys.ptr.clone()),
            _ => Value::Null,
        }
    }

    pub fn set(&mut self, name: &str, v: Value) {
        if let Some(slot) = self.vals.iter_mut().find(|(n, _)| n == name) {
            slot.1 = v;
        } else {
            self.vals.push((name.to_string(), v));
        }
    }

    /// The event time for ordering and earliest/latest (0 for aggregates
    /// without a `@timestamp`).
    pub fn ts(&self) -> i64 {
        match &self.sys {
            Some(s) => s.ts,
            None => self.get("@timestamp").num().map_or(0, |n| n as i64),
        }
    }

    pub fn ptr(&self) -> &str {
        self.sys.as_ref().map_or("", |s| s.ptr.as_str())
    }

    pub fn apply_parse(&mut self, p: &ParseCmd) {
        let Some(text) = self.get(&p.field).text() else {
            return;
        };
        let Some(caps) = p.regex.captures(&text) else {
            return;
        };
        for (k, name) in p.names.iter().enumerate() {
            if name.is_empty() {
                continue;
            }
            if let Some(m) = caps.get(k + 1) {
                self.set(name, Value::Str(m.as_str().to_string()));
            }
        }
    }
}

fn flatten(prefix: String, v: &serde_json::Value, out: &mut Vec<(String, Value)>) {
    if out.len() >= MAX_JSON_FIELDS {
        return;
    }
    match v {
        serde_json::Value::Null => {}
        serde_json::Value::Bool(b) => out.push((prefix, Value::Str(b.to_string()))),
        serde_json::Value::Number(n) => {
            out.push((prefix, n.as_f64().map_or(Value::Null, Value::Num)));
        }
        serde_json::Value::String(s) => out.push((prefix, Value::Str(s.clone()))),
        serde_json::Value::Array(items) => {
            for (k, item) in items.iter().enumerate() {
                flatten(format!("{prefix}.{k}"), item, out);
            }
        }
        serde_json::Value::Object(map) => {
            for (k, item) in map {
                flatten(format!("{prefix}.{k}"), item, out);
            }
        }
    }
}

/// Evaluates `e` over `row`; `aggs` holds a stats group's aggregate results.
pub(crate) fn eval(e: &Expr, row: &Row, aggs: &[Value]) -> Value {
    match e {
        Expr::Field(name) => row.get(name),
        Expr::Lit(v) => v.clone(),
        Expr::Agg(n) => aggs.get(*n).cloned().unwrap_or(Value::Null),
        Expr::Neg(a) => match eval(a, row, aggs).num() {
            Some(n) => Value::Num(-n),
            None => Value::Null,
        },
        Expr::Not(a) => Value::bool(!eval(a, row, aggs).truthy()),
        Expr::And(a, b) => Value::bool(eval(a, row, aggs).truthy() && eval(b, row, aggs).truthy()),
        Expr::Or(a, b) => Value::bool(eval(a, row, aggs).truthy() || eval(b, row, aggs).truthy()),
        Expr::Bin(op, a, b) => binary(*op, eval(a, row, aggs), eval(b, row, aggs)),
        Expr::Like { expr, pat, negated } => {
            let found = match eval(expr, row, aggs).text() {
                None => false,
                Some(text) => match pat {
                    Pat::Re(re) => re.is_match(&text),
                    Pat::Sub(p) => eval(p, row, aggs)
                        .text()
                        .is_some_and(|sub| text.contains(&sub)),
                },
            };
            Value::bool(found != *negated)
        }
        Expr::In {
            expr,
            list,
            negated,
        } => {
            let v = eval(expr, row, aggs);
            let found = list
                .iter()
                .any(|item| compare(&v, &eval(item, row, aggs)) == Some(Ordering::Equal));
            Value::bool(found != *negated)
        }
        Expr::Call(name, args) => {
            let vals: Vec<Value> = args.iter().map(|a| eval(a, row, aggs)).collect();
            call(name, &vals, row)
        }
    }
}

fn binary(op: BinOp, a: Value, b: Value) -> Value {
    let cmp = |want: fn(Ordering) -> bool| Value::bool(compare(&a, &b).is_some_and(want));
    match op {
        BinOp::Eq => cmp(|o| o == Ordering::Equal),
        BinOp::Ne => cmp(|o| o != Ordering::Equal),
        BinOp::Lt => cmp(|o| o == Ordering::Less),
        BinOp::Le => cmp(|o| o != Ordering::Greater),
        BinOp::Gt => cmp(|o| o == Ordering::Greater),
        BinOp::Ge => cmp(|o| o != Ordering::Less),
        _ => {
            let (Some(x), Some(y)) = (a.num(), b.num()) else {
                return Value::Null;
            };
            let r = match op {
                BinOp::Add => x + y,
                BinOp::Sub => x - y,
                BinOp::Mul => x * y,
                BinOp::Div if y != 0.0 => x / y,
                BinOp::Rem if y != 0.0 => x % y,
                _ => return Value::Null,
            };
            if !r.is_finite() {
                return Value::Null;
            }
            // A time moved by a duration stays a time.
            let a_time = matches!(a, Value::Time(_));
            let b_time = matches!(b, Value::Time(_));
            match op {
                BinOp::Add if a_time != b_time => Value::Time(r as i64),
                BinOp::Sub if a_time && !b_time => Value::Time(r as i64),
                _ => Value::Num(r),
            }
        }
    }
}

fn num1(args: &[Value], f: impl Fn(f64) -> f64) -> Value {
    match args[0].num().map(f) {
        Some(n) if n.is_finite() => Value::Num(n),
        _ => Value::Null,
    }
}

fn str1(args: &[Value], f: impl Fn(&str) -> String) -> Value {
    match args[0].text() {
        Some(s) => Value::Str(f(&s)),
        None => Value::Null,
    }
}

fn floor_to(t: f64, period: f64) -> Option<i64> {
    (period > 0.0).then(|| ((t / period).floor() * period) as i64)
}

fn call(name: &str, args: &[Value], row: &Row) -> Value {
    match name {
        "strlen" => match args[0].text() {
            Some(s) => Value::Num(s.chars().count() as f64),
            None => Value::Null,
        },
        "toupper" => str1(args, str::to_uppercase),
        "tolower" => str1(args, str::to_lowercase),
        "trim" => str1(args, |s| s.trim().to_string()),
        "ltrim" => str1(args, |s| s.trim_start().to_string()),
        "rtrim" => str1(args, |s| s.trim_end().to_string()),
        "concat" => {
            if args.iter().all(Value::is_null) {
                return Value::Null;
            }
            Value::Str(args.iter().filter_map(Value::text).collect())
        }
        "substr" => {
            let Some(s) = args[0].text() else {
                return Value::Null;
            };
            let chars: Vec<char> = s.chars().collect();
            let Some(start) = args[1].num() else {
                return Value::Null;
            };
            let start = (start.max(0.0) as usize).min(chars.len());
            let end = match args.get(2).map(Value::num) {
                Some(Some(len)) => start.saturating_add(len.max(0.0) as usize).min(chars.len()),
                Some(None) => return Value::Null,
                None => chars.len(),
            };
            Value::Str(chars[start..end].iter().collect())
        }
        "replace" => match (args[0].text(), args[1].text(), args[2].text()) {
            (Some(s), Some(from), Some(to)) if !from.is_empty() => {
                Value::Str(s.replace(&from, &to))
            }
            (Some(s), Some(_), Some(_)) => Value::Str(s),
            _ => Value::Null,
        },
        "strcontains" => match (args[0].text(), args[1].text()) {
            (Some(s), Some(sub)) => Value::bool(s.contains(&sub)),
            _ => Value::bool(false),
        },
        "abs" => num1(args, f64::abs),
        "ceil" => num1(args, f64::ceil),
        "floor" => num1(args, f64::floor),
        "sqrt" => num1(args, f64::sqrt),
        "log" => num1(args, f64::ln),
        "round" => {
            let digits = match args.get(1) {
                Some(d) => match d.num() {
                    Some(d) => d.clamp(0.0, 15.0) as i32,
                    None => return Value::Null,
                },
                None => 0,
            };
            let scale = 10f64.powi(digits);
            num1(args, |n| (n * scale).round() / scale)
        }
        "pow" => match (args[0].num(), args[1].num()) {
            (Some(a), Some(b)) if a.powf(b).is_finite() => Value::Num(a.powf(b)),
            _ => Value::Null,
        },
        "greatest" | "least" => {
            let nums = args.iter().filter_map(Value::num);
            let r = if name == "greatest" {
                nums.reduce(f64::max)
            } else {
                nums.reduce(f64::min)
            };
            r.map_or(Value::Null, Value::Num)
        }
        "datefloor" | "dateceil" => match (args[0].num(), args[1].num()) {
            (Some(t), Some(p)) => {
                let r = if name == "datefloor" {
                    floor_to(t, p)
                } else {
                    (p > 0.0).then(|| ((t / p).ceil() * p) as i64)
                };
                r.map_or(Value::Null, Value::Time)
            }
            _ => Value::Null,
        },
        "bin" => match (row.get("@timestamp").num(), args[0].num()) {
            (Some(t), Some(p)) => floor_to(t, p).map_or(Value::Null, Value::Time),
            _ => Value::Null,
        },
        "frommillis" => match args[0].num() {
            Some(n) => Value::Time(n as i64),
            None => Value::Null,
        },
        "tomillis" => match args[0].num() {
            Some(n) => Value::Num(n.trunc()),
            None => Value::Null,
        },
        "ispresent" => Value::bool(!args[0].is_null()),
        "isempty" => Value::bool(args[0].text().is_none_or(|s| s.is_empty())),
        "isblank" => Value::bool(args[0].text().is_none_or(|s| s.trim().is_empty())),
        "coalesce" => args
            .iter()
            .find(|v| !v.is_null())
            .cloned()
            .unwrap_or(Value::Null),
        _ => Value::Null,
    }
}
