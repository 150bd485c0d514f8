//! Values, their rendering as GetQueryResults shows them, and their orders.

use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Str(String),
    Num(f64),
    /// Milliseconds since the epoch; rendered `2024-01-01 12:00:00.000`.
    Time(i64),
}

impl Value {
    pub fn bool(b: bool) -> Value {
        Value::Num(if b { 1.0 } else { 0.0 })
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value as a number: numbers, times (milliseconds) and numeric strings.
    pub fn num(&self) -> Option<f64> {
        match self {
            Value::Num(n) => Some(*n),
            Value::Time(t) => Some(*t as f64),
            Value::Str(s) => s.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
            Value::Null => None,
        }
    }

    pub fn truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Num(n) => *n != 0.0 && !n.is_nan(),
            Value::Time(_) => true,
            Value::Str(s) => !s.is_empty() && s != "false" && s != "0",
        }
    }

    /// The text GetQueryResults shows; `None` for a missing value.
    pub fn render(&self) -> Option<String> {
        match self {
            Value::Null => None,
            Value::Str(s) => Some(s.clone()),
            Value::Num(n) => render_num(*n),
            Value::Time(t) => Some(render_time(*t)),
        }
    }

    /// The value as text for string functions (missing is `None`).
    pub fn text(&self) -> Option<String> {
        self.render()
    }

    pub fn sort_key(&self) -> SortVal {
        match self {
            Value::Null => SortVal::Null,
            Value::Num(n) => SortVal::Num(*n),
            Value::Time(t) => SortVal::Num(*t as f64),
            Value::Str(s) => match s.trim().parse::<f64>() {
                Ok(n) if n.is_finite() => SortVal::Num(n),
                _ => SortVal::Str(s.clone()),
            },
        }
    }

    /// A hashable identity for grouping and distinct counts.
    pub fn key(&self) -> KeyPart {
        match self {
            Value::Null => KeyPart::Null,
            Value::Str(s) => KeyPart::Str(s.clone()),
            Value::Num(n) => KeyPart::Num(if *n == 0.0 { 0 } else { n.to_bits() }),
            Value::Time(t) => KeyPart::Time(*t),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum KeyPart {
    Null,
    Str(String),
    Num(u64),
    Time(i64),
}

/// A total order for sorting: numbers (and numeric strings) before other
/// strings; missing values are placed by the caller.
#[derive(Debug, Clone)]
pub(crate) enum SortVal {
    Num(f64),
    Str(String),
    Null,
}

impl SortVal {
    fn rank(&self) -> u8 {
        match self {
            SortVal::Num(_) => 0,
            SortVal::Str(_) => 1,
            SortVal::Null => 2,
        }
    }
}

impl PartialEq for SortVal {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for SortVal {}
impl PartialOrd for SortVal {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for SortVal {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (SortVal::Num(a), SortVal::Num(b)) => a.total_cmp(b),
            (SortVal::Str(a), SortVal::Str(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

/// One sort key with its direction; missing values sort last either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DirKey {
    pub val: SortVal,
    pub desc: bool,
}

impl PartialOrd for DirKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for DirKey {
    fn cmp(&self, other: &Self) -> Ordering {
        let a_null = matches!(self.val, SortVal::Null);
        let b_null = matches!(other.val, SortVal::Null);
        match (a_null, b_null) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            _ if self.desc => other.val.cmp(&self.val),
            _ => self.val.cmp(&other.val),
        }
    }
}

/// Comparison for `=`, `<`, …: numerically when both sides are numbers,
/// textually otherwise; `None` when a side is missing.
pub(crate) fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    if a.is_null() || b.is_null() {
        return None;
    }
    let numeric = !matches!((a, b), (Value::Str(_), Value::Str(_)));
    if numeric {
        if let (Some(x), Some(y)) = (a.num(), b.num()) {
            return x.partial_cmp(&y);
        }
    }
    Some(a.render()?.cmp(&b.render()?))
}

pub(crate) fn render_num(n: f64) -> Option<String> {
    if !n.is_finite() {
        return None;
    }
    if n.fract() == 0.0 && n.abs() < 1e15 {
        return Some(format!("{}", n as i64));
    }
    Some(format!("{n}"))
}

/// `2024-01-01 12:00:00.000`, UTC.
pub(crate) fn render_time(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03}",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

/// Howard Hinnant's days-to-civil conversion.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}
