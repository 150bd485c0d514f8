//! How CloudWatch writes numbers, times, StateReason and StateReasonData.
//!
//! Real examples this follows (DescribeAlarms, SNS and EventBridge payloads):
//! * `Threshold Crossed: 1 datapoint [3.0 (11/08/18 10:55:00)] was greater than or equal to the threshold (1.0).`
//! * `Threshold Crossed: 2 datapoints [0.0 (09/01/23 14:02:00), 1.0 (09/01/23 14:01:00)] were not greater than the threshold (42.0).`
//! * `Threshold Crossed: 1 datapoint [1.0 (25/09/26 21:51:00)] was not less than the threshold (1.0) and 1 missing datapoint was treated as [Breaching].`
//! * `Threshold Crossed: no datapoints were received for 2 periods and 2 missing datapoints were treated as [Breaching].`
//! * `Threshold Crossed: 3 out of the last 3 datapoints [20000.0 (08/11/22 11:25:00), ...] were greater than the threshold (0.0) (minimum 1 datapoint for OK -> ALARM transition).`
//! * `Threshold Crossed: 2 out of the last 3 datapoints [0.002 (17/07/26 04:13:00), 0.002 (17/07/26 04:08:00)] were not greater than the threshold (0.005) (minimum 1 datapoint for ALARM -> OK transition).`
//! * `Threshold Crossed: 1 out of the last 20 datapoints [613.0 (16/03/24 12:15:00)] was greater than or equal to the threshold (1.0) and 19 missing datapoints were treated as [NonBreaching] (minimum 1 datapoint for OK -> ALARM transition).`
//! * `Insufficient Data: 1 datapoint was unknown.` / `Insufficient Data: 5 datapoints were unknown.`
//! * StateReasonData `{"version":"1.0","queryDate":"2023-04-07T09:09:15.917+0000","startDate":"2023-04-07T09:08:00.000+0000","unit":"Count","statistic":"Minimum","period":60,"recentDatapoints":[0.0],"threshold":1.0,"evaluatedDatapoints":[{"timestamp":"2023-04-07T09:08:00.000+0000","sampleCount":1.0,"value":0.0}]}`;
//!   with no data: no `startDate`, `"recentDatapoints":[]`, and evaluated datapoints that
//!   carry only a `timestamp`; metric math: no `statistic`, no `sampleCount`.
//!
//! Observations built on: the M-out-of-N form appears exactly when DatapointsToAlarm was
//! set; the listed datapoints are the ones supporting the new state (breaching for ALARM,
//! not breaching for OK), newest first; "minimum K" is M for OK -> ALARM and N - M + 1
//! for ALARM -> OK; `recentDatapoints` are the evaluated real values, oldest first, and
//! `startDate` the oldest of them.
//!
//! Guessed (no real example found): the "N datapoints were received for P periods" form
//! when real datapoints exist but none supports the new state (one paraphrased sighting:
//! "1 datapoint was received for 3 periods and 2 missing datapoints were treated as
//! [Breaching]"), with the M-out-of-N suffix added for M-out-of-N alarms; and which
//! entries `evaluatedDatapoints` holds (the newest K supporting datapoints, K as in
//! "minimum K"; all N periods for INSUFFICIENT_DATA), which fits every example seen.

use std::fmt::Write as _;

use time::macros::format_description;
use time::OffsetDateTime;

/// A double as Java's `Double.toString` prints it (CloudWatch is Java): `80.0`, `95.5`,
/// `0.001`, `1.0E7`, `1.0E-4`, `NaN`, `Infinity`. Digits are the shortest that round-trip.
pub fn java_double(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let sign = if x.is_sign_negative() { "-" } else { "" };
    let a = x.abs();
    if a == 0.0 {
        return format!("{sign}0.0");
    }
    // Rust's `{:e}` is the shortest round-trip form: "9.55e1", "8e1", "1.5e-7".
    let sci = format!("{a:e}");
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` always has an exponent");
    let exp: i32 = exp.parse().expect("exponent is an integer");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (1e-3..1e7).contains(&a) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            let padded = format!("{digits:0<int_len$}");
            let (int, frac) = padded.split_at(int_len);
            let frac = if frac.is_empty() { "0" } else { frac };
            format!("{sign}{int}.{frac}")
        } else {
            let zeros = "0".repeat((-exp - 1) as usize);
            format!("{sign}0.{zeros}{digits}")
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let rest = if rest.is_empty() { "0" } else { rest };
        format!("{sign}{first}.{rest}E{exp}")
    }
}

fn datetime(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `2023-04-07T09:08:00.000+0000`, as in StateReasonData and HistoryData.
pub(crate) fn json_time(ms: i64) -> String {
    let fmt = format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]+0000"
    );
    datetime(ms).format(&fmt).unwrap_or_default()
}

/// `07/04/23 09:08:00` (dd/MM/yy HH:mm:ss, UTC), as in StateReason.
pub(crate) fn reason_time(ms: i64) -> String {
    let fmt = format_description!("[day]/[month]/[year repr:last_two] [hour]:[minute]:[second]");
    datetime(ms).format(&fmt).unwrap_or_default()
}

/// A JSON string literal.
pub(crate) fn json_str(s: &str) -> String {
    serde_json::to_string(s).expect("strings always serialize")
}

/// `1 datapoint` / `2 datapoints`.
pub(crate) fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

pub(crate) fn was_were(n: usize) -> &'static str {
    if n == 1 {
        "was"
    } else {
        "were"
    }
}

/// One evaluated datapoint: a real one, or a missing period (possibly filled in).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Evaluated {
    pub timestamp_ms: i64,
    pub real: Option<(f64, Option<f64>)>,
}

/// `[95.5 (07/12/26 14:03:00), 90.0 (07/12/26 14:02:00)]`.
pub(crate) fn datapoint_list(points: &[(i64, f64)]) -> String {
    let items: Vec<String> = points
        .iter()
        .map(|(ts, v)| format!("{} ({})", java_double(*v), reason_time(*ts)))
        .collect();
    format!("[{}]", items.join(", "))
}

pub(crate) struct ReasonData<'a> {
    pub query_ms: i64,
    pub unit: Option<&'a str>,
    pub statistic: &'a str,
    pub period_s: u32,
    /// Real evaluated datapoints, oldest first: (timestamp, value).
    pub recent: &'a [(i64, f64)],
    pub threshold: f64,
    /// Newest first.
    pub evaluated: &'a [Evaluated],
}

impl ReasonData<'_> {
    pub(crate) fn to_json(&self) -> String {
        let mut s = String::from("{\"version\":\"1.0\"");
        let _ = write!(s, ",\"queryDate\":{}", json_str(&json_time(self.query_ms)));
        if let Some((start, _)) = self.recent.first() {
            let _ = write!(s, ",\"startDate\":{}", json_str(&json_time(*start)));
        }
        if let Some(unit) = self.unit {
            let _ = write!(s, ",\"unit\":{}", json_str(unit));
        }
        if !self.statistic.is_empty() {
            let _ = write!(s, ",\"statistic\":{}", json_str(self.statistic));
        }
        let _ = write!(s, ",\"period\":{}", self.period_s);
        let recent: Vec<String> = self.recent.iter().map(|(_, v)| java_double(*v)).collect();
        let _ = write!(s, ",\"recentDatapoints\":[{}]", recent.join(","));
        let _ = write!(s, ",\"threshold\":{}", java_double(self.threshold));
        let evaluated: Vec<String> = self
            .evaluated
            .iter()
            .map(|e| {
                let mut item = format!("{{\"timestamp\":{}", json_str(&json_time(e.timestamp_ms)));
                if let Some((value, samples)) = e.real {
                    if let (Some(n), false) = (samples, self.statistic.is_empty()) {
                        let _ = write!(item, ",\"sampleCount\":{}", java_double(n));
                    }
                    let _ = write!(item, ",\"value\":{}", java_double(value));
                }
                item.push('}');
                item
            })
            .collect();
        let _ = write!(s, ",\"evaluatedDatapoints\":[{}]}}", evaluated.join(","));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_print_like_java() {
        fn check(x: f64, want: &str) {
            assert_eq!(java_double(x), want, "{x:?}");
        }
        check(80.0, "80.0");
        check(95.5, "95.5");
        check(0.0, "0.0");
        check(-0.0, "-0.0");
        check(-3.25, "-3.25");
        check(1.0, "1.0");
        check(20000.0, "20000.0");
        check(0.01575357001274824, "0.01575357001274824");
        check(99.83333333333333, "99.83333333333333");
        check(0.001, "0.001");
        check(0.0001, "1.0E-4");
        check(0.00012345, "1.2345E-4");
        check(9_999_999.0, "9999999.0");
        check(10_000_000.0, "1.0E7");
        check(1e8, "1.0E8");
        check(123_456_789.0, "1.23456789E8");
        check(1.5e300, "1.5E300");
        check(f64::NAN, "NaN");
        check(f64::INFINITY, "Infinity");
        check(f64::NEG_INFINITY, "-Infinity");
    }

    #[test]
    fn times() {
        // 2023-04-07T09:09:15.917Z
        let ms = 1_680_858_555_917;
        assert_eq!(json_time(ms), "2023-04-07T09:09:15.917+0000");
        assert_eq!(reason_time(ms), "07/04/23 09:09:15");
        assert_eq!(json_time(0), "1970-01-01T00:00:00.000+0000");
    }

    #[test]
    fn reason_data_matches_aws_example() {
        // The DescribeAlarms example in the module docs (2023-04-07, StatusCheckFailed_System).
        let dp = 1_680_858_480_000; // 09:08:00
        let data = ReasonData {
            query_ms: 1_680_858_555_917,
            unit: Some("Count"),
            statistic: "Minimum",
            period_s: 60,
            recent: &[(dp, 0.0)],
            threshold: 1.0,
            evaluated: &[Evaluated {
                timestamp_ms: dp,
                real: Some((0.0, Some(1.0))),
            }],
        };
        assert_eq!(
            data.to_json(),
            r#"{"version":"1.0","queryDate":"2023-04-07T09:09:15.917+0000","startDate":"2023-04-07T09:08:00.000+0000","unit":"Count","statistic":"Minimum","period":60,"recentDatapoints":[0.0],"threshold":1.0,"evaluatedDatapoints":[{"timestamp":"2023-04-07T09:08:00.000+0000","sampleCount":1.0,"value":0.0}]}"#
        );
    }
}
