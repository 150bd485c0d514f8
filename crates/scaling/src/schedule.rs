//! `at()`, `rate()` and `cron()` schedules (PutScheduledAction's `Schedule` and `Timezone`).
//!
//! Cron follows Application Auto Scaling's (EventBridge's) six-field syntax:
//! `cron(minutes hours day-of-month month day-of-week year)` with `*`, `,`, `-`, `/`, `?`,
//! `L`, `W`, `#`, month names JAN–DEC, day names SUN–SAT (1–7 = SUN–SAT), years 1970–2199,
//! and exactly one of day-of-month / day-of-week `?`. `at()` and `cron()` are read in the
//! time zone (IANA name, default UTC); a local time that does not exist (a DST gap) runs at
//! the instant after the gap, a repeated one at its first instant (jiff's "compatible").
//! Searches go field by field (year → month → day → hour → minute), never minute by minute.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::Timestamp;

use crate::ScalingError;

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;
/// How far around an instant the cron search looks for DST gaps and folds.
const DST_SLACK_MS: i64 = 4 * HOUR_MS;
const FIRST_YEAR: i32 = 1970;
const LAST_YEAR: i32 = 2199;

/// A parsed ScheduledAction `Schedule` with its `Timezone`.
#[derive(Clone, Debug)]
pub struct Schedule {
    expression: String,
    timezone: Option<String>,
    zone: TimeZone,
    kind: Kind,
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.expression == other.expression && self.timezone == other.timezone
    }
}

#[derive(Clone, Debug)]
enum Kind {
    At(i64),
    Rate(i64),
    Cron(Box<Cron>),
}

fn invalid(expression: &str, detail: &str) -> ScalingError {
    ScalingError::Invalid(format!(
        "Invalid schedule expression: {expression}. {detail}"
    ))
}

impl Schedule {
    /// Parses `expression` with `timezone` (an IANA name; None: UTC).
    pub fn parse(expression: &str, timezone: Option<&str>) -> Result<Schedule, ScalingError> {
        let zone = match timezone {
            None => TimeZone::UTC,
            Some(name) => TimeZone::get(name).map_err(|_| {
                ScalingError::Invalid(format!(
                    "Invalid timezone: {name}. Use a canonical IANA time zone name such as America/New_York or Etc/GMT+9."
                ))
            })?,
        };
        let body = |prefix: &str| {
            expression
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix(')'))
        };
        let kind = if let Some(inner) = body("at(") {
            Kind::At(parse_at(expression, inner, &zone)?)
        } else if let Some(inner) = body("rate(") {
            Kind::Rate(parse_rate(expression, inner)?)
        } else if let Some(inner) = body("cron(") {
            Kind::Cron(Box::new(Cron::parse(expression, inner)?))
        } else {
            return Err(invalid(
                expression,
                "Use at(yyyy-mm-ddThh:mm:ss), rate(value unit) or cron(fields).",
            ));
        };
        Ok(Schedule {
            expression: expression.to_string(),
            timezone: timezone.map(str::to_string),
            zone,
            kind,
        })
    }

    pub fn expression(&self) -> &str {
        &self.expression
    }

    pub fn timezone(&self) -> Option<&str> {
        self.timezone.as_deref()
    }

    /// A `rate()`'s interval, ms.
    pub fn rate_ms(&self) -> Option<i64> {
        match self.kind {
            Kind::Rate(rate_ms) => Some(rate_ms),
            _ => None,
        }
    }

    /// The latest occurrence in `[not_before_ms, now_ms]`. For `rate()`, occurrences are
    /// `not_before_ms + k × rate` (k ≥ 0): the caller passes where the rate counts from.
    pub fn latest_at_or_before(&self, now_ms: i64, not_before_ms: i64) -> Option<i64> {
        if now_ms < not_before_ms {
            return None;
        }
        match &self.kind {
            Kind::At(at_ms) => (not_before_ms..=now_ms).contains(at_ms).then_some(*at_ms),
            Kind::Rate(rate_ms) => {
                Some(not_before_ms + (now_ms - not_before_ms) / rate_ms * rate_ms)
            }
            Kind::Cron(cron) => cron
                .latest_at_or_before(&self.zone, now_ms)
                .filter(|t| *t >= not_before_ms),
        }
    }

    /// The first occurrence strictly after `after_ms`. For `rate()`: `after_ms + rate`
    /// (the next one when the last ran at `after_ms`).
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        match &self.kind {
            Kind::At(at_ms) => (*at_ms > after_ms).then_some(*at_ms),
            Kind::Rate(rate_ms) => after_ms.checked_add(*rate_ms),
            Kind::Cron(cron) => cron.next_after(&self.zone, after_ms),
        }
    }
}

fn parse_at(expression: &str, inner: &str, zone: &TimeZone) -> Result<i64, ScalingError> {
    let bad = || invalid(expression, "An at() expression takes yyyy-mm-ddThh:mm:ss.");
    let (date, time) = inner.split_once('T').ok_or_else(bad)?;
    let number = |s: &str, max_len: usize| -> Result<i64, ScalingError> {
        if s.is_empty() || s.len() > max_len || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse().map_err(|_| bad())
    };
    let d: Vec<&str> = date.split('-').collect();
    let t: Vec<&str> = time.split(':').collect();
    if d.len() != 3 || t.len() != 3 || d[0].len() != 4 {
        return Err(bad());
    }
    let (year, month, day) = (number(d[0], 4)?, number(d[1], 2)?, number(d[2], 2)?);
    let (hour, minute, second) = (number(t[0], 2)?, number(t[1], 2)?, number(t[2], 2)?);
    let civil = DateTime::new(
        year as i16,
        month as i8,
        day as i8,
        hour as i8,
        minute as i8,
        second as i8,
        0,
    )
    .map_err(|_| bad())?;
    let instant = zone
        .to_ambiguous_timestamp(civil)
        .compatible()
        .map_err(|_| bad())?;
    Ok(instant.as_millisecond())
}

fn parse_rate(expression: &str, inner: &str) -> Result<i64, ScalingError> {
    let bad = |detail: &str| invalid(expression, detail);
    let mut parts = inner.split_whitespace();
    let (Some(value), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad(
            "A rate() expression takes a value and a unit, e.g. rate(5 minutes).",
        ));
    };
    let value: i64 = value
        .parse()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| bad("The rate value must be a positive integer."))?;
    let (unit_ms, singular) = match unit {
        "minute" => (MINUTE_MS, true),
        "minutes" => (MINUTE_MS, false),
        "hour" => (HOUR_MS, true),
        "hours" => (HOUR_MS, false),
        "day" => (DAY_MS, true),
        "days" => (DAY_MS, false),
        _ => return Err(bad("The rate unit must be minute(s), hour(s) or day(s).")),
    };
    if (value == 1) != singular {
        return Err(bad(
            "Use the singular unit (minute, hour, day) for a value of 1 and the plural for more.",
        ));
    }
    value
        .checked_mul(unit_ms)
        .ok_or_else(|| bad("The rate is too long."))
}

/// A civil minute, ordered field by field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Civil {
    year: i32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
}

impl Civil {
    fn of(zone: &TimeZone, ms: i64) -> Civil {
        let ts = Timestamp::from_millisecond(ms).unwrap_or(Timestamp::MIN);
        let dt = zone.to_datetime(ts);
        Civil {
            year: i32::from(dt.year()),
            month: dt.month() as u32,
            day: dt.day() as u32,
            hour: dt.hour() as u32,
            minute: dt.minute() as u32,
        }
    }

    fn datetime(self) -> Option<DateTime> {
        DateTime::new(
            i16::try_from(self.year).ok()?,
            self.month as i8,
            self.day as i8,
            self.hour as i8,
            self.minute as i8,
            0,
            0,
        )
        .ok()
    }

    /// This civil time read in `zone`.
    fn instant(self, zone: &TimeZone) -> Option<i64> {
        let ts = zone
            .to_ambiguous_timestamp(self.datetime()?)
            .compatible()
            .ok()?;
        Some(ts.as_millisecond())
    }

    /// This civil time read as UTC: for distances between civil times.
    fn naive_ms(self) -> i64 {
        self.instant(&TimeZone::UTC).unwrap_or(i64::MAX)
    }
}

#[derive(Clone, Debug)]
enum DayOfMonth {
    Days(u64),
    Last,
    LastWeekday,
    NearestWeekday(u32),
}

#[derive(Clone, Debug)]
enum DayOfWeek {
    /// Bits 1..=7, SUN = 1.
    Days(u64),
    /// The last such weekday of the month (`5L`).
    Last(u32),
    /// The n-th such weekday of the month (`2#1`).
    Nth(u32, u32),
}

#[derive(Clone, Debug)]
enum Days {
    OfMonth(Vec<DayOfMonth>),
    OfWeek(Vec<DayOfWeek>),
}

#[derive(Clone, Debug)]
struct Cron {
    minutes: u64,
    hours: u64,
    days: Days,
    months: u64,
    /// Sorted.
    years: Vec<i32>,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// A field of values in `min..=max` (names map to `min`, `min + 1`, …): `*`, `a`, `a-b`
/// (wrapping when a > b), with `/step`, comma-separated. Returns a bit mask.
fn parse_values(
    expression: &str,
    field: &str,
    name: &str,
    min: u32,
    max: u32,
    names: &[&str],
) -> Result<Vec<u32>, ScalingError> {
    let bad = || {
        invalid(
            expression,
            &format!("The {name} field {field:?} is not valid: use values {min}-{max}, *, lists, ranges and /increments."),
        )
    };
    let value = |s: &str| -> Result<u32, ScalingError> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return Ok(min + i as u32);
        }
        let v: u32 = s.parse().map_err(|_| bad())?;
        if v < min || v > max {
            return Err(bad());
        }
        Ok(v)
    };
    let mut out = Vec::new();
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step.parse().map_err(|_| bad())?;
                if step == 0 {
                    return Err(bad());
                }
                (range, step)
            }
            None => (item, 1),
        };
        let (start, end) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a)?, value(b)?)
        } else {
            let start = value(range)?;
            (start, if item.contains('/') { max } else { start })
        };
        let span = max - min + 1;
        let length = if end >= start {
            end - start
        } else {
            end + span - start
        };
        let mut offset = 0;
        while offset <= length {
            out.push(min + (start - min + offset) % span);
            offset += step;
        }
    }
    Ok(out)
}

fn mask(values: &[u32]) -> u64 {
    values.iter().fold(0, |m, v| m | 1u64 << v)
}

fn days_in_month(year: i32, month: u32) -> u32 {
    Date::new(year as i16, month as i8, 1)
        .map(|d| d.days_in_month() as u32)
        .unwrap_or(28)
}

/// 1 = SUN … 7 = SAT.
fn weekday(year: i32, month: u32, day: u32) -> u32 {
    Date::new(year as i16, month as i8, day as i8)
        .map(|d| d.weekday().to_sunday_one_offset() as u32)
        .unwrap_or(1)
}

/// The weekday nearest `day` without leaving the month (`15W`).
fn nearest_weekday(year: i32, month: u32, day: u32) -> u32 {
    let last = days_in_month(year, month);
    let day = day.min(last);
    match weekday(year, month, day) {
        7 if day == 1 => 3,          // Saturday the 1st: Monday the 3rd.
        7 => day - 1,                // Saturday: Friday.
        1 if day == last => day - 2, // Sunday the last: Friday.
        1 => day + 1,                // Sunday: Monday.
        _ => day,
    }
}

impl Cron {
    fn parse(expression: &str, inner: &str) -> Result<Cron, ScalingError> {
        let fields: Vec<&str> = inner.split_whitespace().collect();
        if fields.len() != 6 {
            return Err(invalid(
                expression,
                "A cron() expression has six fields: minutes hours day-of-month month day-of-week year.",
            ));
        }
        let minutes = mask(&parse_values(expression, fields[0], "minutes", 0, 59, &[])?);
        let hours = mask(&parse_values(expression, fields[1], "hours", 0, 23, &[])?);
        let months = mask(&parse_values(
            expression, fields[3], "month", 1, 12, &MONTHS,
        )?);
        let mut years: Vec<i32> = parse_values(
            expression,
            fields[5],
            "year",
            FIRST_YEAR as u32,
            LAST_YEAR as u32,
            &[],
        )?
        .into_iter()
        .map(|y| y as i32)
        .collect();
        years.sort_unstable();
        years.dedup();
        let (dom, dow) = (fields[2], fields[4]);
        let days = match (dom == "?", dow == "?") {
            (true, false) => Days::OfWeek(Self::parse_dow(expression, dow)?),
            (false, true) => Days::OfMonth(Self::parse_dom(expression, dom)?),
            _ => {
                return Err(invalid(
                    expression,
                    "Exactly one of the day-of-month and day-of-week fields must be ?.",
                ))
            }
        };
        Ok(Cron {
            minutes,
            hours,
            days,
            months,
            years,
        })
    }

    fn parse_dom(expression: &str, field: &str) -> Result<Vec<DayOfMonth>, ScalingError> {
        let mut out = Vec::new();
        for item in field.split(',') {
            let upper = item.to_ascii_uppercase();
            out.push(if upper == "L" {
                DayOfMonth::Last
            } else if upper == "LW" {
                DayOfMonth::LastWeekday
            } else if let Some(day) = upper.strip_suffix('W') {
                let day = parse_values(expression, day, "day-of-month", 1, 31, &[])?;
                match day.as_slice() {
                    [d] if !day.is_empty() => DayOfMonth::NearestWeekday(*d),
                    _ => {
                        return Err(invalid(
                            expression,
                            "W takes one day of the month, e.g. 15W.",
                        ))
                    }
                }
            } else {
                DayOfMonth::Days(mask(&parse_values(
                    expression,
                    item,
                    "day-of-month",
                    1,
                    31,
                    &[],
                )?))
            });
        }
        Ok(out)
    }

    fn parse_dow(expression: &str, field: &str) -> Result<Vec<DayOfWeek>, ScalingError> {
        let one = |s: &str| -> Result<u32, ScalingError> {
            match parse_values(expression, s, "day-of-week", 1, 7, &WEEKDAYS)?.as_slice() {
                [d] => Ok(*d),
                _ => Err(invalid(
                    expression,
                    "L and # take one day of the week, e.g. 6L or MON#1.",
                )),
            }
        };
        let mut out = Vec::new();
        for item in field.split(',') {
            let upper = item.to_ascii_uppercase();
            out.push(if upper == "L" {
                DayOfWeek::Days(1 << 7)
            } else if let Some((day, n)) = upper.split_once('#') {
                let n: u32 = n
                    .parse()
                    .ok()
                    .filter(|n| (1..=5).contains(n))
                    .ok_or_else(|| invalid(expression, "# takes a week number 1-5, e.g. MON#1."))?;
                DayOfWeek::Nth(one(day)?, n)
            } else if let Some(day) = upper.strip_suffix('L') {
                DayOfWeek::Last(one(day)?)
            } else {
                DayOfWeek::Days(mask(&parse_values(
                    expression,
                    item,
                    "day-of-week",
                    1,
                    7,
                    &WEEKDAYS,
                )?))
            });
        }
        Ok(out)
    }

    /// The days of `year`-`month` that match, as a bit mask (bit d = day d).
    fn day_mask(&self, year: i32, month: u32) -> u64 {
        let last = days_in_month(year, month);
        let in_month = (1u64 << (last + 1)) - 2;
        let mut days = 0u64;
        match &self.days {
            Days::OfMonth(items) => {
                for item in items {
                    days |= match item {
                        DayOfMonth::Days(m) => *m,
                        DayOfMonth::Last => 1 << last,
                        DayOfMonth::LastWeekday => 1 << nearest_weekday(year, month, last),
                        DayOfMonth::NearestWeekday(d) => {
                            if *d > last {
                                0
                            } else {
                                1 << nearest_weekday(year, month, *d)
                            }
                        }
                    };
                }
            }
            Days::OfWeek(items) => {
                let first = weekday(year, month, 1);
                for item in items {
                    for day in 1..=last {
                        let wd = (first - 1 + day - 1) % 7 + 1;
                        let hit = match item {
                            DayOfWeek::Days(m) => m >> wd & 1 == 1,
                            DayOfWeek::Last(w) => wd == *w && day + 7 > last,
                            DayOfWeek::Nth(w, n) => wd == *w && (day - 1) / 7 + 1 == *n,
                        };
                        if hit {
                            days |= 1 << day;
                        }
                    }
                }
            }
        }
        days & in_month
    }

    /// The first matching civil minute at or after `from` (`forward`), or at or before it.
    fn search(&self, from: Civil, forward: bool) -> Option<Civil> {
        let years: Vec<i32> = if forward {
            self.years
                .iter()
                .copied()
                .filter(|y| *y >= from.year)
                .collect()
        } else {
            self.years
                .iter()
                .rev()
                .copied()
                .filter(|y| *y <= from.year)
                .collect()
        };
        for year in years {
            let year_eq = year == from.year;
            for month in bits(self.months, 1, 12, forward, year_eq.then_some(from.month)) {
                let month_eq = year_eq && month == from.month;
                let days = self.day_mask(year, month);
                for day in bits(days, 1, 31, forward, month_eq.then_some(from.day)) {
                    let day_eq = month_eq && day == from.day;
                    for hour in bits(self.hours, 0, 23, forward, day_eq.then_some(from.hour)) {
                        let hour_eq = day_eq && hour == from.hour;
                        let bound = hour_eq.then_some(from.minute);
                        if let Some(minute) = bits(self.minutes, 0, 59, forward, bound).next() {
                            return Some(Civil {
                                year,
                                month,
                                day,
                                hour,
                                minute,
                            });
                        }
                    }
                }
            }
        }
        None
    }

    fn next_civil(c: Civil, forward: bool) -> Option<Civil> {
        let ms = c.naive_ms() + if forward { MINUTE_MS } else { -MINUTE_MS };
        (ms != i64::MAX).then(|| Civil::of(&TimeZone::UTC, ms))
    }

    /// The earliest occurrence after `after_ms`. Candidates are scanned from a few hours of
    /// civil time before, so DST gaps and folds cannot hide an earlier instant.
    fn next_after(&self, zone: &TimeZone, after_ms: i64) -> Option<i64> {
        let mut from = Civil::of(zone, after_ms.saturating_sub(DST_SLACK_MS));
        let mut best: Option<(i64, Civil)> = None;
        while let Some(candidate) = self.search(from, true) {
            if let Some((_, best_civil)) = best {
                if candidate.naive_ms() > best_civil.naive_ms() + DST_SLACK_MS {
                    break;
                }
            }
            if let Some(instant) = candidate.instant(zone) {
                if instant > after_ms && best.is_none_or(|(b, _)| instant < b) {
                    best = Some((instant, candidate));
                }
            }
            from = Self::next_civil(candidate, true)?;
        }
        best.map(|(instant, _)| instant)
    }

    fn latest_at_or_before(&self, zone: &TimeZone, now_ms: i64) -> Option<i64> {
        let mut from = Civil::of(zone, now_ms.saturating_add(DST_SLACK_MS));
        let mut best: Option<(i64, Civil)> = None;
        while let Some(candidate) = self.search(from, false) {
            if let Some((_, best_civil)) = best {
                if candidate.naive_ms() < best_civil.naive_ms() - DST_SLACK_MS {
                    break;
                }
            }
            if let Some(instant) = candidate.instant(zone) {
                if instant <= now_ms && best.is_none_or(|(b, _)| instant > b) {
                    best = Some((instant, candidate));
                }
            }
            if candidate.year < FIRST_YEAR {
                break;
            }
            from = Self::next_civil(candidate, false)?;
        }
        best.map(|(instant, _)| instant)
    }
}

/// The set bits of `mask` in `lo..=hi`, ascending (`forward`) from `bound` or descending to
/// it.
fn bits(mask: u64, lo: u32, hi: u32, forward: bool, bound: Option<u32>) -> std::vec::IntoIter<u32> {
    let mut v: Vec<u32> = (lo..=hi)
        .filter(|i| mask >> i & 1 == 1)
        .filter(|i| match bound {
            None => true,
            Some(b) if forward => *i >= b,
            Some(b) => *i <= b,
        })
        .collect();
    if !forward {
        v.reverse();
    }
    v.into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> i64 {
        let dt: DateTime = s.parse().unwrap();
        TimeZone::UTC.to_timestamp(dt).unwrap().as_millisecond()
    }

    fn next(expr: &str, tz: Option<&str>, after: &str) -> Option<i64> {
        Schedule::parse(expr, tz).unwrap().next_after(utc(after))
    }

    #[test]
    fn parse_errors() {
        fn check(expr: &str, tz: Option<&str>, part: &str) {
            let msg = Schedule::parse(expr, tz).expect_err(expr).to_string();
            assert!(msg.contains(part), "{expr}: {msg}");
        }
        check("every day", None, "Use at(");
        check("rate(1 minutes)", None, "singular");
        check("rate(5 minute)", None, "singular");
        check("rate(0 minutes)", None, "positive");
        check("rate(5 weeks)", None, "unit");
        check("cron(0 12 * * ?)", None, "six fields");
        check("cron(0 12 * * * *)", None, "one of the day-of-month");
        check("cron(0 12 ? * ? *)", None, "one of the day-of-month");
        check("cron(60 12 * * ? *)", None, "minutes");
        check("cron(0 24 * * ? *)", None, "hours");
        check("cron(0 12 ? * MON#6 *)", None, "week number");
        check("cron(0 12 * * ? 1969)", None, "year");
        check("at(2026-13-01T00:00:00)", None, "at()");
        check("at(2026-12-01 00:00:00)", None, "at()");
        check("rate(5 minutes)", Some("Mars/Olympus"), "Invalid timezone");
        assert!(Schedule::parse("rate(1 day)", None).is_ok());
        assert!(Schedule::parse("at(2020-12-08T9:36:00)", Some("America/New_York")).is_ok());
    }

    #[test]
    fn at_and_rate() {
        let at = Schedule::parse("at(2026-12-07T18:00:00)", None).unwrap();
        let t = utc("2026-12-07T18:00:00");
        assert_eq!(at.latest_at_or_before(t, t - 1), Some(t));
        assert_eq!(at.latest_at_or_before(t - 1, 0), None);
        assert_eq!(at.latest_at_or_before(t + 5, t + 1), None);
        assert_eq!(at.next_after(t - 1), Some(t));
        assert_eq!(at.next_after(t), None);
        let ny = Schedule::parse("at(2026-12-07T13:00:00)", Some("America/New_York")).unwrap();
        assert_eq!(ny.next_after(0), Some(t));

        let rate = Schedule::parse("rate(5 minutes)", None).unwrap();
        assert_eq!(rate.rate_ms(), Some(300_000));
        assert_eq!(
            rate.latest_at_or_before(1_000 + 299_999, 1_000),
            Some(1_000)
        );
        assert_eq!(
            rate.latest_at_or_before(1_000 + 600_000, 1_000),
            Some(601_000)
        );
        assert_eq!(rate.next_after(601_000), Some(901_000));
    }

    #[test]
    fn cron_next() {
        fn check(expr: &str, tz: Option<&str>, after: &str, want: &str) {
            assert_eq!(
                next(expr, tz, after),
                Some(utc(want)),
                "{expr} after {after}"
            );
        }
        check(
            "cron(30 6 ? * MON *)",
            None,
            "2026-12-07T06:30:00",
            "2026-12-14T06:30:00",
        );
        check(
            "cron(30 6 ? * MON *)",
            None,
            "2026-12-07T06:29:59",
            "2026-12-07T06:30:00",
        );
        check(
            "cron(0/15 * * * ? *)",
            None,
            "2026-12-07T17:16:00",
            "2026-12-07T17:30:00",
        );
        check(
            "cron(0 9-17/4 ? * MON-FRI *)",
            None,
            "2026-12-11T17:00:00",
            "2026-12-14T09:00:00",
        );
        check(
            "cron(0 0 L * ? *)",
            None,
            "2026-02-01T00:00:00",
            "2026-02-28T00:00:00",
        );
        check(
            "cron(0 0 L * ? *)",
            None,
            "2028-02-01T00:00:00",
            "2028-02-29T00:00:00",
        );
        check(
            "cron(0 0 LW * ? *)",
            None,
            "2026-05-01T00:00:00",
            "2026-05-29T00:00:00",
        );
        check(
            "cron(0 0 15W * ? *)",
            None,
            "2026-08-01T00:00:00",
            "2026-08-14T00:00:00",
        );
        check(
            "cron(0 0 1W * ? *)",
            None,
            "2026-08-01T00:00:00",
            "2026-08-03T00:00:00",
        );
        check(
            "cron(0 0 ? * 6L *)",
            None,
            "2026-12-01T00:00:00",
            "2026-12-25T00:00:00",
        );
        check(
            "cron(0 0 ? * MON#1 *)",
            None,
            "2026-12-08T00:00:00",
            "2027-01-04T00:00:00",
        );
        check(
            "cron(0 0 1 JAN,JUL ? *)",
            None,
            "2026-12-07T00:00:00",
            "2027-01-01T00:00:00",
        );
        check(
            "cron(0 0 1 1 ? 2030)",
            None,
            "2026-12-07T00:00:00",
            "2030-01-01T00:00:00",
        );
        check(
            "cron(0 22-2 * * ? *)",
            None,
            "2026-12-07T02:30:00",
            "2026-12-07T22:00:00",
        );
        // 09:00 in New York is 14:00 UTC in winter, 13:00 in summer.
        check(
            "cron(0 9 * * ? *)",
            Some("America/New_York"),
            "2026-12-07T00:00:00",
            "2026-12-07T14:00:00",
        );
        check(
            "cron(0 9 * * ? *)",
            Some("America/New_York"),
            "2026-07-07T00:00:00",
            "2026-07-07T13:00:00",
        );
        // 02:30 does not exist on 2026-03-08 in New York: runs at 03:30 EDT (07:30 UTC).
        check(
            "cron(30 2 * * ? *)",
            Some("America/New_York"),
            "2026-03-08T00:00:00",
            "2026-03-08T07:30:00",
        );
        assert_eq!(
            next("cron(0 0 30 2 ? *)", None, "2026-01-01T00:00:00"),
            None
        );
        assert_eq!(
            next("cron(0 0 1 1 ? 2020)", None, "2026-01-01T00:00:00"),
            None
        );
    }

    #[test]
    fn cron_latest() {
        let s = Schedule::parse("cron(0/15 * * * ? *)", None).unwrap();
        let now = utc("2026-12-07T17:44:10");
        assert_eq!(
            s.latest_at_or_before(now, 0),
            Some(utc("2026-12-07T17:30:00"))
        );
        assert_eq!(s.latest_at_or_before(now, utc("2026-12-07T17:31:00")), None);
        let s = Schedule::parse("cron(0 0 1 1 ? 2020)", None).unwrap();
        assert_eq!(
            s.latest_at_or_before(now, 0),
            Some(utc("2020-01-01T00:00:00"))
        );
        let s = Schedule::parse("cron(0 9 ? * MON *)", Some("Europe/Paris")).unwrap();
        assert_eq!(
            s.latest_at_or_before(now, 0),
            Some(utc("2026-12-07T08:00:00"))
        );
        // Every occurrence found backward is one found forward.
        let s = Schedule::parse("cron(7 */3 ? * TUE-THU *)", Some("Asia/Kolkata")).unwrap();
        let latest = s.latest_at_or_before(now, 0).unwrap();
        assert_eq!(s.next_after(latest - 1), Some(latest));
        assert!(s.next_after(latest).unwrap() > now);
    }
}
