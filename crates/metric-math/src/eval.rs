//! Evaluation of a parsed expression over a [`Context`].
//!
//! Rules from the User Guide:
//! - arithmetic and comparisons between two series run over the union of
//!   their timestamps, a value missing from one side counting as 0;
//! - a data point whose value is not a number (division by zero, LOG of 0,
//!   ...) is dropped, and the result carries AWS's `ArithmeticError` message;
//! - AVG/SUM/MIN/MAX/STDDEV/DATAPOINT_COUNT of one series are scalars, of an
//!   array they are a series;
//! - functions of an array apply to each of its series.
//!
//! Dropping happens as soon as an operation produces the value (so in
//! `m1 / m2 + m3` a dropped quotient counts as missing, i.e. 0, for the
//! addition). AWS does not say at which step it drops (guessed).

use std::collections::BTreeMap;

use crate::parse::{BinaryOp, Function, Node};
use crate::{
    Context, Evaluation, Expr, MathError, Message, TimeSeries, Value, ARITHMETIC_ERROR_CODE,
    ARITHMETIC_ERROR_MESSAGE,
};

/// Evaluates `expr`. The result is a series or an array of series; a scalar
/// result is [`MathError::ScalarResult`].
pub fn evaluate(expr: &Expr, ctx: &Context) -> Result<Evaluation, MathError> {
    let mut evaluator = Evaluator {
        ctx,
        dropped: false,
    };
    let value = evaluator.eval(&expr.root)?;
    if let Value::Scalar(_) = value {
        return Err(MathError::ScalarResult);
    }
    let messages = if evaluator.dropped {
        vec![Message {
            code: ARITHMETIC_ERROR_CODE.to_string(),
            value: ARITHMETIC_ERROR_MESSAGE.to_string(),
        }]
    } else {
        Vec::new()
    };
    Ok(Evaluation { value, messages })
}

fn type_error(message: impl Into<String>) -> MathError {
    MathError::Type {
        message: message.into(),
    }
}

fn arguments(function: Function, message: impl Into<String>) -> MathError {
    MathError::Arguments {
        function: function.name(),
        message: message.into(),
    }
}

fn truthy(value: f64) -> bool {
    value != 0.0
}

fn flag(condition: bool) -> f64 {
    if condition {
        1.0
    } else {
        0.0
    }
}

fn apply(op: BinaryOp, x: f64, y: f64) -> f64 {
    match op {
        BinaryOp::Add => x + y,
        BinaryOp::Subtract => x - y,
        BinaryOp::Multiply => x * y,
        BinaryOp::Divide => x / y,
        BinaryOp::Power => x.powf(y),
        BinaryOp::Equal => flag(x == y),
        BinaryOp::NotEqual => flag(x != y),
        BinaryOp::Less => flag(x < y),
        BinaryOp::LessOrEqual => flag(x <= y),
        BinaryOp::Greater => flag(x > y),
        BinaryOp::GreaterOrEqual => flag(x >= y),
        BinaryOp::And => flag(truthy(x) && truthy(y)),
        BinaryOp::Or => flag(truthy(x) || truthy(y)),
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Statistic {
    Avg,
    Sum,
    Min,
    Max,
    Stddev,
}

/// A statistic of one series' values. No values: SUM is 0, the others have no
/// value (NaN, so anything computed from them is dropped) (guessed).
fn statistic(kind: Statistic, values: &[f64]) -> f64 {
    if values.is_empty() {
        return if kind == Statistic::Sum {
            0.0
        } else {
            f64::NAN
        };
    }
    let count = values.len() as f64;
    let sum: f64 = values.iter().sum();
    match kind {
        Statistic::Avg => sum / count,
        Statistic::Sum => sum,
        Statistic::Min => values.iter().copied().fold(f64::INFINITY, f64::min),
        Statistic::Max => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        // Population standard deviation (guessed: AWS does not say which).
        Statistic::Stddev => {
            let mean = sum / count;
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / count).sqrt()
        }
    }
}

/// Every timestamp of both series, with each side's value (missing: None).
fn union_points(a: &TimeSeries, b: &TimeSeries) -> Vec<(i64, Option<f64>, Option<f64>)> {
    let (mut i, mut j) = (0, 0);
    let mut points = Vec::with_capacity(a.len().max(b.len()));
    while i < a.len() || j < b.len() {
        let ta = a.timestamps_ms.get(i).copied().unwrap_or(i64::MAX);
        let tb = b.timestamps_ms.get(j).copied().unwrap_or(i64::MAX);
        if ta == tb {
            points.push((ta, Some(a.values[i]), Some(b.values[j])));
            i += 1;
            j += 1;
        } else if ta < tb {
            points.push((ta, Some(a.values[i]), None));
            i += 1;
        } else {
            points.push((tb, None, Some(b.values[j])));
            j += 1;
        }
    }
    points
}

/// Values of many series per timestamp, ascending.
fn by_timestamp(array: &[TimeSeries]) -> BTreeMap<i64, Vec<f64>> {
    let mut table: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for series in array {
        for (t, v) in series.points() {
            table.entry(t).or_default().push(v);
        }
    }
    table
}

enum Filler {
    Value(Value),
    Repeat,
    Linear,
}

struct Evaluator<'c, 'a> {
    ctx: &'c Context<'a>,
    dropped: bool,
}

impl Evaluator<'_, '_> {
    /// Builds a series, dropping values that are not finite.
    fn series(
        &mut self,
        label: String,
        points: impl IntoIterator<Item = (i64, f64)>,
    ) -> TimeSeries {
        let mut series = TimeSeries {
            label,
            ..TimeSeries::default()
        };
        for (t, v) in points {
            if v.is_finite() {
                series.timestamps_ms.push(t);
                series.values.push(v);
            } else {
                self.dropped = true;
            }
        }
        series
    }

    fn map_series(&mut self, series: &TimeSeries, f: &dyn Fn(f64) -> f64) -> TimeSeries {
        self.series(
            series.label.clone(),
            series.points().map(|(t, v)| (t, f(v))),
        )
    }

    fn map(&mut self, value: Value, f: &dyn Fn(f64) -> f64) -> Value {
        match value {
            Value::Scalar(x) => Value::Scalar(f(x)),
            Value::Series(series) => Value::Series(self.map_series(&series, f)),
            Value::Array(array) => {
                Value::Array(array.iter().map(|s| self.map_series(s, f)).collect())
            }
        }
    }

    /// Applies `f` to each series of a series or an array; scalars are an error.
    fn per_series(
        &mut self,
        function: Function,
        value: Value,
        mut f: impl FnMut(&mut Self, &TimeSeries) -> TimeSeries,
    ) -> Result<Value, MathError> {
        match value {
            Value::Series(series) => Ok(Value::Series(f(self, &series))),
            Value::Array(array) => Ok(Value::Array(array.iter().map(|s| f(self, s)).collect())),
            Value::Scalar(_) => Err(arguments(
                function,
                "expects a time series or an array of time series, got a scalar.",
            )),
        }
    }

    fn eval(&mut self, node: &Node) -> Result<Value, MathError> {
        match node {
            Node::Number(number) => Ok(Value::Scalar(*number)),
            Node::Text(_) => Err(type_error(
                "A string is valid only as the argument of METRICS.",
            )),
            Node::Keyword(keyword) => Err(type_error(format!(
                "{keyword} is valid only as an argument of FILL or SORT."
            ))),
            Node::Id(id) => self
                .ctx
                .series
                .get(id)
                .cloned()
                .ok_or_else(|| MathError::MissingSeries { id: id.clone() }),
            Node::Array(items) => {
                let mut array = Vec::new();
                for item in items {
                    match self.eval(item)? {
                        Value::Series(series) => array.push(series),
                        Value::Array(more) => array.extend(more),
                        Value::Scalar(_) => {
                            return Err(type_error(
                                "An array can hold only time series, not scalars.",
                            ))
                        }
                    }
                }
                Ok(Value::Array(array))
            }
            Node::Negate(inner) => {
                let value = self.eval(inner)?;
                Ok(self.map(value, &|x| -x))
            }
            Node::Binary(op, left, right) => {
                let left = self.eval(left)?;
                let right = self.eval(right)?;
                self.combine(*op, left, right)
            }
            Node::Call(function, args) => self.call(*function, args),
        }
    }

    fn combine(&mut self, op: BinaryOp, left: Value, right: Value) -> Result<Value, MathError> {
        Ok(match (left, right) {
            (Value::Scalar(x), Value::Scalar(y)) => Value::Scalar(apply(op, x, y)),
            (Value::Series(s), Value::Scalar(y)) => {
                Value::Series(self.map_series(&s, &|x| apply(op, x, y)))
            }
            (Value::Scalar(x), Value::Series(s)) => {
                Value::Series(self.map_series(&s, &|y| apply(op, x, y)))
            }
            (Value::Series(a), Value::Series(b)) => {
                Value::Series(self.zip(op, &a, &b, String::new()))
            }
            (Value::Array(_), Value::Array(_)) => {
                // Not among the User Guide's forms (S S, TS TS, TS S, TS[] TS, TS[]) (guessed: an error).
                return Err(type_error(
                    "An operator cannot combine two arrays of time series; combine an array with a time series or a scalar.",
                ));
            }
            (Value::Array(array), other) => {
                let mut out = Vec::with_capacity(array.len());
                for series in array {
                    out.push(self.with_array_element(op, series, &other, true));
                }
                Value::Array(out)
            }
            (other, Value::Array(array)) => {
                let mut out = Vec::with_capacity(array.len());
                for series in array {
                    out.push(self.with_array_element(op, series, &other, false));
                }
                Value::Array(out)
            }
        })
    }

    /// `element op other` (or `other op element`), keeping the element's label.
    fn with_array_element(
        &mut self,
        op: BinaryOp,
        element: TimeSeries,
        other: &Value,
        element_on_left: bool,
    ) -> TimeSeries {
        match other {
            Value::Scalar(y) => {
                let y = *y;
                if element_on_left {
                    self.map_series(&element, &|x| apply(op, x, y))
                } else {
                    self.map_series(&element, &|x| apply(op, y, x))
                }
            }
            Value::Series(other) => {
                let label = element.label.clone();
                if element_on_left {
                    self.zip(op, &element, other, label)
                } else {
                    self.zip(op, other, &element, label)
                }
            }
            Value::Array(_) => unreachable!("two arrays are rejected by combine"),
        }
    }

    fn zip(&mut self, op: BinaryOp, a: &TimeSeries, b: &TimeSeries, label: String) -> TimeSeries {
        let points = union_points(a, b);
        self.series(
            label,
            points
                .into_iter()
                .map(|(t, x, y)| (t, apply(op, x.unwrap_or(0.0), y.unwrap_or(0.0)))),
        )
    }

    fn scalar_argument(&mut self, function: Function, node: &Node) -> Result<f64, MathError> {
        match self.eval(node)? {
            Value::Scalar(x) => Ok(x),
            _ => Err(arguments(function, "expects a scalar argument here.")),
        }
    }

    fn array_argument(
        &mut self,
        function: Function,
        node: &Node,
    ) -> Result<Vec<TimeSeries>, MathError> {
        match self.eval(node)? {
            Value::Array(array) => Ok(array),
            Value::Series(series) => Ok(vec![series]),
            Value::Scalar(_) => Err(arguments(
                function,
                "expects an array of time series, got a scalar.",
            )),
        }
    }

    fn call(&mut self, function: Function, args: &[Node]) -> Result<Value, MathError> {
        use Function as F;
        match function {
            F::Abs => self.unary(&args[0], f64::abs),
            F::Ceil => self.unary(&args[0], f64::ceil),
            F::Floor => self.unary(&args[0], f64::floor),
            F::Log => self.unary(&args[0], f64::ln),
            F::Log10 => self.unary(&args[0], f64::log10),
            F::Avg => self.aggregate(Statistic::Avg, &args[0]),
            F::Sum => self.aggregate(Statistic::Sum, &args[0]),
            F::Min => self.aggregate(Statistic::Min, &args[0]),
            F::Max => self.aggregate(Statistic::Max, &args[0]),
            F::Stddev => self.aggregate(Statistic::Stddev, &args[0]),
            F::DatapointCount => match self.eval(&args[0])? {
                Value::Series(series) => Ok(Value::Scalar(series.len() as f64)),
                Value::Array(array) => {
                    let table = by_timestamp(&array);
                    Ok(Value::Series(self.series(
                        String::new(),
                        table.into_iter().map(|(t, vs)| (t, vs.len() as f64)),
                    )))
                }
                Value::Scalar(_) => Err(arguments(
                    function,
                    "expects a time series or an array of time series, got a scalar.",
                )),
            },
            F::Diff | F::DiffTime | F::Rate => {
                let value = self.eval(&args[0])?;
                self.per_series(function, value, |me, series| {
                    let points = series.points().collect::<Vec<_>>();
                    let label = series.label.clone();
                    // The first point has no predecessor: it is not in the result (guessed).
                    me.series(
                        label,
                        points.windows(2).map(|w| {
                            let ((t0, v0), (t1, v1)) = (w[0], w[1]);
                            let seconds = (t1 - t0) as f64 / 1000.0;
                            let value = match function {
                                F::Diff => v1 - v0,
                                F::DiffTime => seconds,
                                _ => (v1 - v0) / seconds,
                            };
                            (t1, value)
                        }),
                    )
                })
            }
            F::RunningSum => {
                let value = self.eval(&args[0])?;
                self.per_series(function, value, |me, series| {
                    let mut total = 0.0;
                    let label = series.label.clone();
                    me.series(
                        label,
                        series.points().map(|(t, v)| {
                            total += v;
                            (t, total)
                        }),
                    )
                })
            }
            F::Fill => self.fill(&args[0], &args[1]),
            F::First | F::Last => {
                let array = self.array_argument(function, &args[0])?;
                let chosen = if function == F::First {
                    array.into_iter().next()
                } else {
                    array.into_iter().last()
                };
                // An empty array gives an empty series (guessed).
                Ok(Value::Series(chosen.unwrap_or_default()))
            }
            F::If => self.if_function(args),
            F::MetricCount => {
                let array = self.array_argument(function, &args[0])?;
                Ok(Value::Scalar(array.len() as f64))
            }
            F::Metrics => self.metrics(args.first()),
            F::Period => match &args[0] {
                Node::Id(id) if self.ctx.metric_ids.contains(id) => {
                    Ok(Value::Scalar(f64::from(self.ctx.period_s)))
                }
                // The User Guide: "Valid input is metrics, not the results of other expressions."
                _ => Err(arguments(
                    function,
                    "expects the Id of a metric; valid input is metrics, not the results of other expressions.",
                )),
            },
            F::RemoveEmpty => {
                let array = self.array_argument(function, &args[0])?;
                Ok(Value::Array(
                    array.into_iter().filter(|s| !s.is_empty()).collect(),
                ))
            }
            F::Slice => {
                let array = self.array_argument(function, &args[0])?;
                let start = self.index_argument(function, &args[1])?.min(array.len());
                let end = match args.get(2) {
                    Some(node) => self.index_argument(function, node)?.min(array.len()),
                    None => array.len(),
                };
                Ok(Value::Array(if start < end {
                    array[start..end].to_vec()
                } else {
                    Vec::new()
                }))
            }
            F::Sort => self.sort(args),
            F::TimeSeries => {
                let value = self.scalar_argument(function, &args[0])?;
                let grid = self.ctx.grid_ms();
                Ok(Value::Series(self.series(
                    String::new(),
                    grid.into_iter().map(|t| (t, value)),
                )))
            }
            F::Minute | F::Hour | F::Day | F::Date | F::Month | F::Year | F::Epoch => {
                let value = self.eval(&args[0])?;
                let grid = self.ctx.grid_ms();
                self.per_series(function, value, |me, series| {
                    let label = series.label.clone();
                    me.series(
                        label,
                        grid.iter().map(|&t| (t, calendar(function, t))),
                    )
                })
            }
        }
    }

    /// The User Guide lists TS and TS[] arguments; a scalar is accepted too (guessed).
    fn unary(&mut self, node: &Node, f: fn(f64) -> f64) -> Result<Value, MathError> {
        let value = self.eval(node)?;
        Ok(self.map(value, &f))
    }

    /// A non-negative whole number for SLICE and SORT's limit. Fractions are
    /// truncated (guessed).
    fn index_argument(&mut self, function: Function, node: &Node) -> Result<usize, MathError> {
        let value = self.scalar_argument(function, node)?;
        if !value.is_finite() || value < 0.0 {
            return Err(arguments(
                function,
                format!("expects a non-negative number, got {value}."),
            ));
        }
        Ok(value.trunc().min(usize::MAX as f64) as usize)
    }

    fn aggregate(&mut self, kind: Statistic, node: &Node) -> Result<Value, MathError> {
        match self.eval(node)? {
            // AVG(5) is 5 (guessed; the User Guide lists only TS and TS[]).
            Value::Scalar(x) => Ok(Value::Scalar(statistic(kind, &[x]))),
            Value::Series(series) => Ok(Value::Scalar(statistic(kind, &series.values))),
            Value::Array(array) => {
                let count = array.len() as f64;
                let table = by_timestamp(&array);
                let points = table.into_iter().map(|(t, values)| {
                    let value = match kind {
                        // "Missing values are treated as 0."
                        Statistic::Avg => values.iter().sum::<f64>() / count,
                        // MIN, MAX and STDDEV use the series that have a value (guessed).
                        _ => statistic(kind, &values),
                    };
                    (t, value)
                });
                let points: Vec<_> = points.collect();
                Ok(Value::Series(self.series(String::new(), points)))
            }
        }
    }

    fn metrics(&mut self, filter: Option<&Node>) -> Result<Value, MathError> {
        let needle = match filter {
            None => None,
            Some(Node::Text(text)) => Some(text.as_str()),
            Some(_) => {
                return Err(arguments(
                    Function::Metrics,
                    "expects no argument or a string, such as METRICS(\"errors\").",
                ))
            }
        };
        let mut array = Vec::new();
        for id in self.ctx.metric_ids {
            // Matching on the Id is case-sensitive (guessed).
            if needle.is_some_and(|needle| !id.contains(needle)) {
                continue;
            }
            match self.ctx.series.get(id) {
                Some(Value::Series(series)) => array.push(series.clone()),
                Some(Value::Array(more)) => array.extend(more.iter().cloned()),
                Some(Value::Scalar(_)) => {
                    return Err(type_error(format!(
                        "The metric '{id}' is not a time series."
                    )))
                }
                None => return Err(MathError::MissingSeries { id: id.clone() }),
            }
        }
        Ok(Value::Array(array))
    }

    fn fill(&mut self, target: &Node, filler: &Node) -> Result<Value, MathError> {
        let filler = match filler {
            Node::Keyword(keyword) if keyword == "REPEAT" => Filler::Repeat,
            Node::Keyword(keyword) if keyword == "LINEAR" => Filler::Linear,
            node => match self.eval(node) {
                Ok(Value::Array(_)) => {
                    return Err(arguments(
                        Function::Fill,
                        "the fill value must be a scalar, a time series, REPEAT or LINEAR.",
                    ))
                }
                Ok(value) => Filler::Value(value),
                Err(MathError::Type { .. }) => {
                    return Err(arguments(
                        Function::Fill,
                        "the fill value must be a scalar, a time series, REPEAT or LINEAR.",
                    ))
                }
                Err(error) => return Err(error),
            },
        };
        let value = self.eval(target)?;
        let grid = self.ctx.grid_ms();
        self.per_series(Function::Fill, value, |me, series| {
            let filled = fill_series(series, &grid, &filler);
            me.series(series.label.clone(), filled)
        })
    }

    fn if_function(&mut self, args: &[Node]) -> Result<Value, MathError> {
        let condition = self.eval(&args[0])?;
        let when_true = self.eval(&args[1])?;
        let when_false = args.get(2).map(|node| self.eval(node)).transpose()?;
        let lengths: Vec<usize> = [Some(&condition), Some(&when_true), when_false.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(|value| match value {
                Value::Array(array) => Some(array.len()),
                _ => None,
            })
            .collect();
        let Some(&length) = lengths.first() else {
            return Ok(self.if_values(condition, when_true, when_false));
        };
        // Arrays are taken element by element (guessed: the User Guide lists only TS and S forms).
        if lengths.iter().any(|&other| other != length) {
            return Err(arguments(
                Function::If,
                "arrays of time series given to IF must have the same length.",
            ));
        }
        let element = |value: &Value, index: usize| match value {
            Value::Array(array) => Value::Series(array[index].clone()),
            other => other.clone(),
        };
        let mut out = Vec::with_capacity(length);
        for index in 0..length {
            let result = self.if_values(
                element(&condition, index),
                element(&when_true, index),
                when_false.as_ref().map(|value| element(value, index)),
            );
            match result {
                Value::Series(series) => out.push(series),
                _ => unreachable!("one argument is a series, so the result is"),
            }
        }
        Ok(Value::Array(out))
    }

    /// IF without arrays, per "Using IF expressions".
    fn if_values(
        &mut self,
        condition: Value,
        when_true: Value,
        when_false: Option<Value>,
    ) -> Value {
        match condition {
            // "is an empty time series, if metric3 is omitted from the expression"
            Value::Scalar(c) => {
                if truthy(c) {
                    when_true
                } else {
                    when_false.unwrap_or(Value::Series(TimeSeries::default()))
                }
            }
            Value::Series(condition) => {
                let label = match &when_true {
                    Value::Series(series) => series.label.clone(),
                    _ => condition.label.clone(),
                };
                let points: Vec<(i64, f64)> = condition
                    .points()
                    .filter_map(|(t, c)| {
                        if truthy(c) {
                            // "has the value of 0, if ... TRUE and the data point does not exist in metric2"
                            Some(match &when_true {
                                Value::Series(series) => (t, series.value_at(t).unwrap_or(0.0)),
                                Value::Scalar(x) => (t, *x),
                                Value::Array(_) => unreachable!("arrays are split by if_function"),
                            })
                        } else {
                            // "is dropped, if ... FALSE and the data point does not exist in metric3
                            // or if metric3 is omitted"
                            match &when_false {
                                None => None,
                                Some(Value::Series(series)) => series.value_at(t).map(|v| (t, v)),
                                Some(Value::Scalar(y)) => Some((t, *y)),
                                Some(Value::Array(_)) => {
                                    unreachable!("arrays are split by if_function")
                                }
                            }
                        }
                    })
                    .collect();
                Value::Series(self.series(label, points))
            }
            Value::Array(_) => unreachable!("arrays are split by if_function"),
        }
    }

    fn sort(&mut self, args: &[Node]) -> Result<Value, MathError> {
        let array = self.array_argument(Function::Sort, &args[0])?;
        let kind = match &args[1] {
            Node::Keyword(k) if k == "AVG" => Statistic::Avg,
            Node::Keyword(k) if k == "MIN" => Statistic::Min,
            Node::Keyword(k) if k == "MAX" => Statistic::Max,
            Node::Keyword(k) if k == "SUM" => Statistic::Sum,
            _ => {
                return Err(arguments(
                    Function::Sort,
                    "the sort function must be AVG, MIN, MAX or SUM.",
                ))
            }
        };
        let descending = match &args[2] {
            Node::Keyword(k) if k == "ASC" => false,
            Node::Keyword(k) if k == "DESC" => true,
            _ => {
                return Err(arguments(
                    Function::Sort,
                    "the sort order must be ASC or DESC.",
                ))
            }
        };
        let limit = match args.get(3) {
            Some(node) => self.index_argument(Function::Sort, node)?,
            None => usize::MAX,
        };
        let mut keyed: Vec<(f64, TimeSeries)> = array
            .into_iter()
            .map(|series| (statistic(kind, &series.values), series))
            .collect();
        // Stable; series without a value (NaN) go last in either order (guessed).
        keyed.sort_by(|(a, _), (b, _)| match (a.is_nan(), b.is_nan()) {
            (true, true) => std::cmp::Ordering::Equal,
            (true, false) => std::cmp::Ordering::Greater,
            (false, true) => std::cmp::Ordering::Less,
            (false, false) if descending => b.total_cmp(a),
            (false, false) => a.total_cmp(b),
        });
        Ok(Value::Array(
            keyed.into_iter().take(limit).map(|(_, s)| s).collect(),
        ))
    }
}

/// The series' points plus the filled grid points, ascending.
fn fill_series(series: &TimeSeries, grid_ms: &[i64], filler: &Filler) -> Vec<(i64, f64)> {
    let mut timestamps: Vec<i64> = series
        .timestamps_ms
        .iter()
        .chain(grid_ms.iter())
        .copied()
        .collect();
    timestamps.sort_unstable();
    timestamps.dedup();
    let known: Vec<Option<f64>> = timestamps.iter().map(|&t| series.value_at(t)).collect();
    let mut points = Vec::with_capacity(timestamps.len());
    let mut previous: Option<(i64, f64)> = None;
    for (index, (&t, value)) in timestamps.iter().zip(&known).enumerate() {
        if let Some(v) = value {
            points.push((t, *v));
            previous = Some((t, *v));
            continue;
        }
        let filled = match filler {
            Filler::Value(Value::Scalar(x)) => Some(*x),
            Filler::Value(Value::Series(other)) => other.value_at(t),
            Filler::Value(Value::Array(_)) => None,
            // Before the first actual value there is nothing to repeat (guessed: left empty).
            Filler::Repeat => previous.map(|(_, v)| v),
            // Gaps at either end have only one side: left empty (guessed).
            Filler::Linear => {
                let next = timestamps[index + 1..]
                    .iter()
                    .zip(&known[index + 1..])
                    .find_map(|(&tn, vn)| vn.map(|vn| (tn, vn)));
                match (previous, next) {
                    (Some((t0, v0)), Some((t1, v1))) => {
                        Some(v0 + (v1 - v0) * (t - t0) as f64 / (t1 - t0) as f64)
                    }
                    _ => None,
                }
            }
        };
        if let Some(v) = filled {
            points.push((t, v));
        }
    }
    points
}

/// MINUTE, HOUR, ... of a timestamp, in UTC. DAY is the day of the week,
/// 1 (Monday) to 7 (Sunday): the User Guide's `IF(DAY(m1)<6,m1)` keeps Monday
/// to Friday. DATE is the day of the month; EPOCH is seconds since 1970.
fn calendar(function: Function, timestamp_ms: i64) -> f64 {
    let seconds = timestamp_ms.div_euclid(1000);
    if function == Function::Epoch {
        return seconds as f64;
    }
    let Ok(at) = time::OffsetDateTime::from_unix_timestamp(seconds) else {
        return f64::NAN;
    };
    f64::from(match function {
        Function::Minute => u32::from(at.minute()),
        Function::Hour => u32::from(at.hour()),
        Function::Day => u32::from(at.weekday().number_from_monday()),
        Function::Date => u32::from(at.day()),
        Function::Month => u32::from(u8::from(at.month())),
        Function::Year => return f64::from(at.year()),
        _ => unreachable!("only calendar functions"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    /// Monday 2024-01-01T00:00:00Z.
    const START_MS: i64 = 1_704_067_200_000;
    const PERIOD_S: u32 = 60;
    const POINTS: i64 = 5;

    /// `"[1, -, 3, -, 5]"`: values on the grid, `-` for no data point.
    fn series(label: &str, text: &str, start_ms: i64, period_s: u32) -> TimeSeries {
        let inner = text.trim().trim_start_matches('[').trim_end_matches(']');
        let points = inner.split(',').enumerate().filter_map(|(index, cell)| {
            let cell = cell.trim();
            (cell != "-").then(|| {
                let t = start_ms + index as i64 * i64::from(period_s) * 1000;
                (t, cell.parse::<f64>().unwrap())
            })
        });
        TimeSeries::new(label, points)
    }

    fn render_series(series: &TimeSeries, start_ms: i64, period_s: u32) -> String {
        let step_ms = i64::from(period_s) * 1000;
        let mut cells = vec!["-".to_string(); POINTS as usize];
        for (t, v) in series.points() {
            let offset = t - start_ms;
            assert!(
                offset % step_ms == 0 && (0..POINTS).contains(&(offset / step_ms)),
                "{t} off the grid"
            );
            cells[(offset / step_ms) as usize] = format!("{v}");
        }
        assert!(
            series.timestamps_ms.windows(2).all(|w| w[0] < w[1]),
            "timestamps ascend"
        );
        format!("[{}]", cells.join(", "))
    }

    fn run(inputs: &[(&str, &str)], expression: &str, start_ms: i64, period_s: u32) -> String {
        let series_by_id: BTreeMap<String, Value> = inputs
            .iter()
            .map(|(id, text)| {
                (
                    id.to_string(),
                    Value::Series(series(id, text, start_ms, period_s)),
                )
            })
            .collect();
        let metric_ids: Vec<String> = inputs.iter().map(|(id, _)| id.to_string()).collect();
        let ctx = Context {
            series: &series_by_id,
            metric_ids: &metric_ids,
            period_s,
            start_ms,
            end_ms: start_ms + POINTS * i64::from(period_s) * 1000,
        };
        let result = parse(expression).and_then(|expr| evaluate(&expr, &ctx));
        match result {
            Err(error) => format!("error: {error}"),
            Ok(evaluation) => {
                let mut shown = match &evaluation.value {
                    Value::Series(s) => render_series(s, start_ms, period_s),
                    Value::Array(array) if array.is_empty() => "(empty array)".to_string(),
                    Value::Array(array) => array
                        .iter()
                        .map(|s| format!("{}={}", s.label, render_series(s, start_ms, period_s)))
                        .collect::<Vec<_>>()
                        .join(" "),
                    Value::Scalar(_) => unreachable!("evaluate never returns a scalar"),
                };
                for message in &evaluation.messages {
                    assert_eq!(message.value, ARITHMETIC_ERROR_MESSAGE);
                    shown.push_str(&format!(" !{}", message.code));
                }
                shown
            }
        }
    }

    fn check(inputs: &[(&str, &str)], expression: &str, expected: &str) {
        assert_eq!(
            run(inputs, expression, START_MS, PERIOD_S),
            expected,
            "{expression}"
        );
    }

    const SPARSE: &[(&str, &str)] = &[("m1", "[1, -, 3, -, 5]"), ("m2", "[10, 20, -, -, 50]")];

    #[test]
    fn arithmetic() {
        let dense = &[("m1", "[1, 2, 3, 4, 5]")];
        check(dense, "m1 * 2", "[2, 4, 6, 8, 10]");
        check(dense, "5 * m1 - 1", "[4, 9, 14, 19, 24]");
        check(dense, "(1 + 2) * m1", "[3, 6, 9, 12, 15]");
        check(dense, "-5*m1", "[-5, -10, -15, -20, -25]");
        check(dense, "m1 ^ 2", "[1, 4, 9, 16, 25]");
        check(dense, "2 ^ m1", "[2, 4, 8, 16, 32]");
        check(dense, "10 / m1 * m1", "[10, 10, 10, 10, 10]");
        // Series with series: union of timestamps, a missing value counts as 0.
        check(SPARSE, "m1 + m2", "[11, 20, 3, -, 55]");
        check(SPARSE, "m1 - m2", "[-9, -20, 3, -, -45]");
        check(SPARSE, "-m1", "[-1, -, -3, -, -5]");
        check(SPARSE, "2 ^ 3 + m1 - m1", "[8, -, 8, -, 8]");
        // Division by zero drops the point and says so.
        check(SPARSE, "m1 / m2", "[0.1, 0, -, -, 0.1] !ArithmeticError");
        check(
            SPARSE,
            "100 * m1 / m2",
            "[10, 0, -, -, 10] !ArithmeticError",
        );
        check(SPARSE, "m1 / 0", "[-, -, -, -, -] !ArithmeticError");
        check(
            SPARSE,
            "m1 / m2 + m1",
            "[1.1, 0, 3, -, 5.1] !ArithmeticError",
        );
        check(SPARSE, "m2 / m2", "[1, 1, -, -, 1]");
        // Scalars alone are not a result.
        check(SPARSE, "1 + 2", "error: The final result of a math expression must be a single time series or an array of time series, not a scalar.");
        check(SPARSE, "AVG(m1)", "error: The final result of a math expression must be a single time series or an array of time series, not a scalar.");
    }

    #[test]
    fn element_functions() {
        let fractions = &[("m1", "[1.5, -1.5, 2, -, 0.2]")];
        check(fractions, "CEIL(m1)", "[2, -1, 2, -, 1]");
        check(fractions, "FLOOR(m1)", "[1, -2, 2, -, 0]");
        check(fractions, "ABS(m1)", "[1.5, 1.5, 2, -, 0.2]");
        check(SPARSE, "ABS(m1 - m2)", "[9, 20, 3, -, 45]");
        check(
            &[("m1", "[1, 10, 100, -, 1000]")],
            "LOG10(m1)",
            "[0, 1, 2, -, 3]",
        );
        check(
            &[("m1", "[1, 0, -1, -, -]")],
            "LOG(m1)",
            "[0, -, -, -, -] !ArithmeticError",
        );
        check(
            SPARSE,
            "CEIL(METRICS() / 3)",
            "m1=[1, -, 1, -, 2] m2=[4, 7, -, -, 17]",
        );
        check(
            SPARSE,
            "ABS(-METRICS())",
            "m1=[1, -, 3, -, 5] m2=[10, 20, -, -, 50]",
        );
    }

    #[test]
    fn aggregates() {
        check(SPARSE, "m1 - AVG(m1)", "[-2, -, 0, -, 2]");
        check(SPARSE, "TIME_SERIES(SUM(m1))", "[9, 9, 9, 9, 9]");
        check(SPARSE, "TIME_SERIES(MIN(m1))", "[1, 1, 1, 1, 1]");
        check(SPARSE, "TIME_SERIES(MAX(m1))", "[5, 5, 5, 5, 5]");
        check(
            SPARSE,
            "TIME_SERIES(DATAPOINT_COUNT(m1))",
            "[3, 3, 3, 3, 3]",
        );
        check(
            SPARSE,
            "SUM(m1) / DATAPOINT_COUNT(m1) + 0 * m1",
            "[3, -, 3, -, 3]",
        );
        check(
            &[("m1", "[2, -, 4, -, -]")],
            "TIME_SERIES(STDDEV(m1))",
            "[1, 1, 1, 1, 1]",
        );
        check(SPARSE, "MAX(m1) / m1", "[5, -, 1.6666666666666667, -, 1]");
        // An empty series has no average: everything built on it is dropped.
        check(
            &[("m1", "[-, -, -, -, -]")],
            "TIME_SERIES(AVG(m1))",
            "[-, -, -, -, -] !ArithmeticError",
        );
        check(
            &[("m1", "[-, -, -, -, -]")],
            "TIME_SERIES(SUM(m1))",
            "[0, 0, 0, 0, 0]",
        );
        // Of an array: a series. AVG counts a missing value as 0.
        check(SPARSE, "AVG([m1, m2])", "[5.5, 10, 1.5, -, 27.5]");
        check(SPARSE, "AVG(METRICS())", "[5.5, 10, 1.5, -, 27.5]");
        check(SPARSE, "SUM([m1, m2])", "[11, 20, 3, -, 55]");
        check(SPARSE, "SUM(METRICS())", "[11, 20, 3, -, 55]");
        check(SPARSE, "MIN([m1, m2])", "[1, 20, 3, -, 5]");
        check(SPARSE, "MAX([m1, m2])", "[10, 20, 3, -, 50]");
        check(SPARSE, "STDDEV([m1, m2])", "[4.5, 0, 0, -, 22.5]");
        check(SPARSE, "DATAPOINT_COUNT(METRICS())", "[2, 1, 1, -, 2]");
        check(SPARSE, "SUM(-[m1, m2])", "[-11, -20, -3, -, -55]");
        check(
            &[("m1", "[1, -, 4, -, 5]"), ("m2", "[10, 20, -, -, 50]")],
            "SUM(100/[m1, m2])",
            "[110, 5, 25, -, 22]",
        );
        check(
            &[
                ("m1", "[2, 4, -, -, -]"),
                ("m2", "[2, 2, -, -, -]"),
                ("m3", "[2, 2, -, -, -]"),
            ],
            "AVG([m1, m2] / m3)",
            "[1, 1.5, -, -, -]",
        );
        check(
            SPARSE,
            "m1 / METRIC_COUNT(METRICS())",
            "[0.5, -, 1.5, -, 2.5]",
        );
    }

    #[test]
    fn arrays_with_operators() {
        check(
            SPARSE,
            "METRICS() / 100",
            "m1=[0.01, -, 0.03, -, 0.05] m2=[0.1, 0.2, -, -, 0.5]",
        );
        check(
            SPARSE,
            "METRICS()*100",
            "m1=[100, -, 300, -, 500] m2=[1000, 2000, -, -, 5000]",
        );
        check(
            SPARSE,
            "[m1, m2] + m1",
            "m1=[2, -, 6, -, 10] m2=[11, 20, 3, -, 55]",
        );
        check(
            SPARSE,
            "m1 - [m1, m2]",
            "m1=[0, -, 0, -, 0] m2=[-9, -20, 3, -, -45]",
        );
        check(
            SPARSE,
            "[METRICS(\"1\"), METRICS(\"2\")] * 2",
            "m1=[2, -, 6, -, 10] m2=[20, 40, -, -, 100]",
        );
        check(SPARSE, "[m1, m2] * [m1, m2]", "error: An operator cannot combine two arrays of time series; combine an array with a time series or a scalar.");
        check(
            SPARSE,
            "SUM([m1, 1])",
            "error: An array can hold only time series, not scalars.",
        );
    }

    #[test]
    fn metrics_function() {
        let named = &[
            ("errors_a", "[1, 1, -, -, -]"),
            ("requests", "[10, 10, -, -, -]"),
            ("errors_b", "[2, -, 2, -, -]"),
        ];
        check(named, "SUM(METRICS(\"errors\"))", "[3, 1, 2, -, -]");
        check(
            named,
            "SUM(METRICS(\"errors\")) / SUM(METRICS(\"requests\")) * 100",
            "[30, 10, -, -, -] !ArithmeticError",
        );
        check(named, "METRICS(\"nothing\")", "(empty array)");
        check(named, "METRICS(\"Errors\")", "(empty array)");
        check(named, "METRICS(errors_a)", "error: Invalid arguments for METRICS: expects no argument or a string, such as METRICS(\"errors\").");
    }

    #[test]
    fn comparisons_and_logic() {
        // The User Guide's example.
        let guide = &[("m1", "[30, 20, 0, 0, -]"), ("m2", "[20, -, 20, -, -]")];
        check(guide, "(m1 < m2)", "[0, 0, 1, 0, -]");
        check(guide, "(m1 >= 30)", "[1, 0, 0, 0, -]");
        check(guide, "(m1 > 15 AND m2 > 15)", "[1, 0, 0, 0, -]");
        check(guide, "m1 > 15 && m2 > 15", "[1, 0, 0, 0, -]");
        check(guide, "m1 == 0 || m2 != 20", "[0, 0, 1, 1, -]");
        check(guide, "m1 == 0 OR m2 == 20", "[1, 0, 1, 1, -]");
        check(guide, "m1 <= 20", "[0, 1, 1, 1, -]");
        check(guide, "m1 != m2", "[1, 1, 1, 0, -]");
        check(guide, "TIME_SERIES(2 > 1 AND 0 < 1)", "[1, 1, 1, 1, 1]");
    }

    #[test]
    fn if_expressions() {
        // The User Guide's tables.
        let guide = &[
            ("m1", "[1, 1, 0, 0, -]"),
            ("m2", "[30, -, 0, 0, 30]"),
            ("m3", "[0, 0, 20, -, 20]"),
        ];
        check(guide, "IF(m1, m2, m3)", "[30, 0, 20, -, -]");
        check(guide, "IF(m1, 5, m3)", "[5, 5, 20, -, -]");
        check(guide, "IF(m1, m2, 5)", "[30, 0, 5, 5, -]");
        check(guide, "IF(m1, m2)", "[30, 0, -, -, -]");
        check(guide, "IF(m1, 5, 2)", "[5, 5, 2, 2, -]");
        check(guide, "IF(1, m2, m3)", "[30, -, 0, 0, 30]");
        check(guide, "IF(0, m2, m3)", "[0, 0, 20, -, 20]");
        check(guide, "IF(0, m2)", "[-, -, -, -, -]");
        check(guide, "IF(m2 < 10, m2)", "[-, -, 0, 0, -]");
        check(guide, "IF(m2 > 10, 1, 0)", "[1, -, 0, 0, 1]");
        check(
            guide,
            "IF(m2 > 10 AND m3 > 10, m2, m3)",
            "[0, 0, 20, -, 30]",
        );
        check(guide, "IF(1, 2, 3)", "error: The final result of a math expression must be a single time series or an array of time series, not a scalar.");
        // Arrays, element by element.
        check(
            guide,
            "IF([m1, m2], 1)",
            "m1=[1, 1, -, -, -] m2=[1, -, -, -, 1]",
        );
        check(
            guide,
            "IF([m1, m2], [m2, m3])",
            "m2=[30, 0, -, -, -] m3=[0, -, -, -, 20]",
        );
        check(guide, "IF([m1, m2], [m2])", "error: Invalid arguments for IF: arrays of time series given to IF must have the same length.");
    }

    #[test]
    fn fill() {
        let gaps = &[
            ("m1", "[1, -, -, 4, -]"),
            ("m2", "[9, 8, -, 6, 5]"),
            ("m0", "[-, 2, -, -, -]"),
        ];
        check(gaps, "FILL(m1, 0)", "[1, 0, 0, 4, 0]");
        check(gaps, "FILL(m1, 10)", "[1, 10, 10, 4, 10]");
        check(gaps, "FILL(m1, REPEAT)", "[1, 1, 1, 4, 4]");
        check(gaps, "FILL(m1, LINEAR)", "[1, 2, 3, 4, -]");
        check(gaps, "FILL(m0, REPEAT)", "[-, 2, 2, 2, 2]");
        check(gaps, "FILL(m0, LINEAR)", "[-, 2, -, -, -]");
        check(gaps, "FILL(m1, m2)", "[1, 8, -, 4, 5]");
        check(gaps, "FILL(m1, MIN(m1))", "[1, 1, 1, 4, 1]");
        check(
            gaps,
            "FILL(METRICS(), 0)",
            "m1=[1, 0, 0, 4, 0] m2=[9, 8, 0, 6, 5] m0=[0, 2, 0, 0, 0]",
        );
        check(
            gaps,
            "FILL(METRICS(), m2)",
            "m1=[1, 8, -, 4, 5] m2=[9, 8, -, 6, 5] m0=[9, 2, -, 6, 5]",
        );
        check(
            gaps,
            "FILL(METRICS(), LINEAR)",
            "m1=[1, 2, 3, 4, -] m2=[9, 8, 7, 6, 5] m0=[-, 2, -, -, -]",
        );
        check(gaps, "FILL(m1, ASC)", "error: Invalid arguments for FILL: the fill value must be a scalar, a time series, REPEAT or LINEAR.");
        check(gaps, "FILL(m1, METRICS())", "error: Invalid arguments for FILL: the fill value must be a scalar, a time series, REPEAT or LINEAR.");
        check(
            gaps,
            "FILL(m1, ZERO)",
            "error: Unrecognized function or keyword 'ZERO'.",
        );
        check(gaps, "FILL(3, 0)", "error: Invalid arguments for FILL: expects a time series or an array of time series, got a scalar.");
    }

    #[test]
    fn series_functions() {
        let m = &[("m1", "[1, -, 4, 10, 7]")];
        check(m, "DIFF(m1)", "[-, -, 3, 6, -3]");
        check(m, "DIFF_TIME(m1)", "[-, -, 120, 60, 60]");
        check(m, "RATE(m1)", "[-, -, 0.025, 0.1, -0.05]");
        check(m, "RUNNING_SUM(m1)", "[1, -, 5, 15, 22]");
        check(
            SPARSE,
            "RUNNING_SUM([m1, m2])",
            "m1=[1, -, 4, -, 9] m2=[10, 30, -, -, 80]",
        );
        check(
            SPARSE,
            "DIFF(METRICS())",
            "m1=[-, -, 2, -, 2] m2=[-, 10, -, -, 30]",
        );
        check(m, "DIFF(5)", "error: Invalid arguments for DIFF: expects a time series or an array of time series, got a scalar.");
        check(
            &[("m1", "[60, 120, -, -, 30]")],
            "m1 / PERIOD(m1)",
            "[1, 2, -, -, 0.5]",
        );
        check(m, "PERIOD(m1 + 1)", "error: Invalid arguments for PERIOD: expects the Id of a metric; valid input is metrics, not the results of other expressions.");
        check(m, "TIME_SERIES(10)", "[10, 10, 10, 10, 10]");
        check(
            m,
            "TIME_SERIES(5 * AVG(m1))",
            "[27.5, 27.5, 27.5, 27.5, 27.5]",
        );
        check(
            m,
            "TIME_SERIES(m1)",
            "error: Invalid arguments for TIME_SERIES: expects a scalar argument here.",
        );
    }

    #[test]
    fn array_functions() {
        let three = &[
            ("low", "[1, 1, -, -, -]"),
            ("high", "[5, 5, -, -, 5]"),
            ("mid", "[3, -, -, -, -]"),
            ("none", "[-, -, -, -, -]"),
        ];
        check(
            three,
            "SORT(METRICS(), AVG, DESC)",
            "high=[5, 5, -, -, 5] mid=[3, -, -, -, -] low=[1, 1, -, -, -] none=[-, -, -, -, -]",
        );
        check(
            three,
            "SORT(METRICS(), AVG, ASC)",
            "low=[1, 1, -, -, -] mid=[3, -, -, -, -] high=[5, 5, -, -, 5] none=[-, -, -, -, -]",
        );
        check(
            three,
            "SORT(METRICS(), SUM, DESC, 2)",
            "high=[5, 5, -, -, 5] mid=[3, -, -, -, -]",
        );
        check(
            three,
            "SORT(METRICS(), SUM, ASC, 2)",
            "none=[-, -, -, -, -] low=[1, 1, -, -, -]",
        );
        check(three, "SORT(METRICS(), MAX, ASC, 1)", "low=[1, 1, -, -, -]");
        check(three, "SORT(METRICS(), MIN, DESC, 0)", "(empty array)");
        check(
            three,
            "FIRST(SORT(METRICS(), AVG, DESC))",
            "[5, 5, -, -, 5]",
        );
        check(three, "LAST(SORT(METRICS(), MAX, DESC))", "[-, -, -, -, -]");
        check(
            three,
            "IF(FIRST(SORT(METRICS(), AVG, DESC)) > 4, 1, 0)",
            "[1, 1, -, -, 1]",
        );
        check(three, "LAST([low, mid])", "[3, -, -, -, -]");
        check(
            three,
            "SLICE(SORT(METRICS(), AVG, DESC), 0, 2)",
            "high=[5, 5, -, -, 5] mid=[3, -, -, -, -]",
        );
        check(
            three,
            "SLICE(METRICS(), 2)",
            "mid=[3, -, -, -, -] none=[-, -, -, -, -]",
        );
        check(three, "SLICE(METRICS(), 3, 1)", "(empty array)");
        check(
            three,
            "SLICE(METRICS(), 1.9, 9)",
            "high=[5, 5, -, -, 5] mid=[3, -, -, -, -] none=[-, -, -, -, -]",
        );
        check(
            three,
            "SLICE(METRICS(), -1)",
            "error: Invalid arguments for SLICE: expects a non-negative number, got -1.",
        );
        check(
            three,
            "REMOVE_EMPTY(METRICS())",
            "low=[1, 1, -, -, -] high=[5, 5, -, -, 5] mid=[3, -, -, -, -]",
        );
        check(
            three,
            "SORT(METRICS(), ASC, AVG)",
            "error: Invalid arguments for SORT: the sort function must be AVG, MIN, MAX or SUM.",
        );
        check(
            three,
            "SORT(METRICS(), AVG, MAX)",
            "error: Invalid arguments for SORT: the sort order must be ASC or DESC.",
        );
        check(
            three,
            "SORT(METRICS(), MEDIAN, ASC)",
            "error: Unrecognized function or keyword 'MEDIAN'.",
        );
        check(
            three,
            "FIRST(1)",
            "error: Invalid arguments for FIRST: expects an array of time series, got a scalar.",
        );
    }

    #[test]
    fn calendar_functions() {
        let m = &[("m1", "[1, -, -, -, -]")];
        check(m, "MINUTE(m1)", "[0, 1, 2, 3, 4]");
        check(m, "HOUR(m1)", "[0, 0, 0, 0, 0]");
        check(m, "DAY(m1)", "[1, 1, 1, 1, 1]");
        check(m, "DATE(m1)", "[1, 1, 1, 1, 1]");
        check(m, "MONTH(m1)", "[1, 1, 1, 1, 1]");
        check(m, "YEAR(m1)", "[2024, 2024, 2024, 2024, 2024]");
        check(
            m,
            "EPOCH(m1)",
            "[1704067200, 1704067260, 1704067320, 1704067380, 1704067440]",
        );
        // Daily points from Wednesday 2024-02-28 across the leap day.
        let start_ms = 1_709_078_400_000;
        let day_s = 86_400;
        let daily = &[("m1", "[10, 20, 30, 40, 50]")];
        let at = |expression: &str| run(daily, expression, start_ms, day_s);
        assert_eq!(at("DAY(m1)"), "[3, 4, 5, 6, 7]");
        assert_eq!(at("DATE(m1)"), "[28, 29, 1, 2, 3]");
        assert_eq!(at("MONTH(m1)"), "[2, 2, 3, 3, 3]");
        assert_eq!(at("IF(DAY(m1) < 6, m1)"), "[10, 20, 30, -, -]");
        assert_eq!(at("IF(MONTH(m1) == 3, m1)"), "[-, -, 30, 40, 50]");
        assert_eq!(at("HOUR(m1) + MINUTE(m1)"), "[0, 0, 0, 0, 0]");
    }

    #[test]
    fn evaluation_errors() {
        check(
            SPARSE,
            "m9 + 1",
            "error: Unrecognized metric or expression Id 'm9'.",
        );
        check(
            SPARSE,
            "TIME_SERIES(\"abc\")",
            "error: A string is valid only as the argument of METRICS.",
        );
        check(
            SPARSE,
            "FILL(REPEAT, 0)",
            "error: REPEAT is valid only as an argument of FILL or SORT.",
        );
        check(
            SPARSE,
            "INSIGHT_RULE_METRIC(\"rule\", \"UniqueContributors\")",
            "error: The function INSIGHT_RULE_METRIC is not supported by Berth.",
        );
        check(
            SPARSE,
            "LAMBDA(\"fn\")",
            "error: The function LAMBDA is not supported by Berth.",
        );
        check(
            SPARSE,
            "SERVICE_QUOTA(m1)",
            "error: The function SERVICE_QUOTA is not supported by Berth.",
        );
        check(
            SPARSE,
            "CONCAT(m1, m2)",
            "error: The function CONCAT is not supported by Berth.",
        );
    }

    #[test]
    fn expressions_read_other_expression_results() {
        let mut series_by_id = BTreeMap::new();
        series_by_id.insert(
            "m1".to_string(),
            Value::Series(series("m1", "[1, 2, -, -, -]", START_MS, PERIOD_S)),
        );
        let metric_ids = vec!["m1".to_string()];
        let context = |series: &BTreeMap<String, Value>| -> Vec<Result<Evaluation, MathError>> {
            let ctx = Context {
                series,
                metric_ids: &metric_ids,
                period_s: PERIOD_S,
                start_ms: START_MS,
                end_ms: START_MS + 300_000,
            };
            ["m1 * 10", "e1 + m1", "METRICS()", "e1 / PERIOD(e1)"]
                .iter()
                .map(|text| evaluate(&parse(text).unwrap(), &ctx))
                .collect()
        };
        let e1 = context(&series_by_id).remove(0).unwrap();
        series_by_id.insert("e1".to_string(), e1.value);
        let results = context(&series_by_id);
        let e2 = results[1].clone().unwrap();
        assert_eq!(
            e2.value,
            Value::Series(TimeSeries::new(
                "",
                [(START_MS, 11.0), (START_MS + 60_000, 22.0)]
            ))
        );
        assert!(e2.messages.is_empty());
        // METRICS() leaves expressions out.
        assert_eq!(
            results[2].clone().unwrap().value,
            Value::Array(vec![series("m1", "[1, 2, -, -, -]", START_MS, PERIOD_S)])
        );
        // PERIOD takes metrics only.
        assert!(results[3].is_err());
    }

    #[test]
    fn references_in_order_without_duplicates() {
        let expr = parse("m1 + e1 * SUM(METRICS()) - IF(m1 > 0, [e2, m1])").unwrap();
        assert_eq!(expr.references(), vec!["m1", "e1", "e2"]);
        assert!(parse("TIME_SERIES(1)").unwrap().references().is_empty());
    }
}
