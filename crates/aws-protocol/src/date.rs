//! UTC calendar arithmetic for the timestamps AWS puts on the wire, without a date crate.
//!
//! SigV4 uses the ISO 8601 "basic format" `YYYYMMDD'T'HHMMSS'Z'` (`X-Amz-Date`, the string to
//! sign, error messages); a request may instead carry an HTTP `Date` header
//! (`Sun, 30 Aug 2015 12:36:00 GMT`). Conversions go through days since the Unix epoch using
//! Howard Hinnant's `days_from_civil` / `civil_from_days` (proleptic Gregorian calendar).

use std::fmt;

/// Seconds in a UTC day (no leap seconds, as in Unix time).
pub const SECONDS_PER_DAY: i64 = 86_400;

/// `0000-01-01T00:00:00Z`, the earliest instant a four-digit year can show.
const MIN_FORMATTABLE_EPOCH_S: i64 = -62_167_219_200;
/// `9999-12-31T23:59:59Z`, the latest instant a four-digit year can show.
const MAX_FORMATTABLE_EPOCH_S: i64 = 253_402_300_799;

/// Days since 1970-01-01 of the civil date `year-month-day` (`month` 1..=12, `day` 1..=31).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let month = i64::from(month);
    let day = i64::from(day);
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400; // [0, 399]
    let month_from_march = if month > 2 { month - 3 } else { month + 9 }; // [0, 11]
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1; // [0, 365]
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The civil date `(year, month, day)` of the day `days` after 1970-01-01 (negative: before).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097; // [0, 146096]
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153; // [0, 11]
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // month is in 1..=12 and day in 1..=31 by construction.
    (year, month as u32, day as u32)
}

/// Whether `year` is a leap year in the proleptic Gregorian calendar.
pub fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Number of days in `month` (1..=12) of `year`; 0 for an invalid month.
pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Epoch seconds of a civil UTC date-time, or `None` when a field is out of range.
pub fn epoch_s_from_civil(
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
) -> Option<i64> {
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    Some(
        days_from_civil(year, month, day) * SECONDS_PER_DAY
            + i64::from(hour) * 3_600
            + i64::from(minute) * 60
            + i64::from(second),
    )
}

/// A timestamp in the SigV4 basic format `YYYYMMDD'T'HHMMSS'Z'`, held on the stack.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AmzDate([u8; 16]);

impl AmzDate {
    /// Formats `epoch_s`. Instants outside years 0000..=9999 are clamped to that range, the
    /// only one the format can express.
    pub fn from_epoch_s(epoch_s: i64) -> AmzDate {
        let epoch_s = epoch_s.clamp(MIN_FORMATTABLE_EPOCH_S, MAX_FORMATTABLE_EPOCH_S);
        let (year, month, day) = civil_from_days(epoch_s.div_euclid(SECONDS_PER_DAY));
        let second_of_day = epoch_s.rem_euclid(SECONDS_PER_DAY);
        let mut text = *b"00000000T000000Z";
        put_digits(&mut text[0..4], year as u64);
        put_digits(&mut text[4..6], u64::from(month));
        put_digits(&mut text[6..8], u64::from(day));
        put_digits(&mut text[9..11], (second_of_day / 3_600) as u64);
        put_digits(&mut text[11..13], (second_of_day / 60 % 60) as u64);
        put_digits(&mut text[13..15], (second_of_day % 60) as u64);
        AmzDate(text)
    }

    /// The full timestamp, e.g. `20150830T123600Z`.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits, 'T' and 'Z' are ever written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The date part used in the credential scope, e.g. `20150830`.
    pub fn date_stamp(&self) -> &str {
        &self.as_str()[..8]
    }
}

impl fmt::Display for AmzDate {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl fmt::Debug for AmzDate {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "AmzDate({})", self.as_str())
    }
}

fn put_digits(out: &mut [u8], mut value: u64) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

fn parse_digits(text: &[u8]) -> Option<u32> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        text.iter()
            .fold(0u32, |acc, digit| acc * 10 + u32::from(digit - b'0')),
    )
}

/// Parses the SigV4 basic format `YYYYMMDD'T'HHMMSS'Z'` into epoch seconds. Strict: exactly
/// 16 characters, a valid calendar date and time of day.
pub fn parse_amz_date(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() != 16 || bytes[8] != b'T' || bytes[15] != b'Z' {
        return None;
    }
    epoch_s_from_civil(
        i64::from(parse_digits(&bytes[0..4])?),
        parse_digits(&bytes[4..6])?,
        parse_digits(&bytes[6..8])?,
        parse_digits(&bytes[9..11])?,
        parse_digits(&bytes[11..13])?,
        parse_digits(&bytes[13..15])?,
    )
}

const MONTH_ABBREVIATIONS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Parses an HTTP date in the RFC 1123 / RFC 2822 shape clients send in a `Date` header:
/// `Sun, 30 Aug 2015 12:36:00 GMT`. The zone must be UTC (`GMT`, `UTC`, `Z`, `+0000` or
/// `-0000`, the last being what Python's `email.utils.formatdate` writes); the weekday is
/// optional and not cross-checked.
pub fn parse_http_date(text: &str) -> Option<i64> {
    let text = text.trim();
    let text = match text.split_once(',') {
        Some((weekday, rest)) if weekday.len() == 3 => rest,
        Some(_) => return None,
        None => text,
    };
    let mut fields = text.split_ascii_whitespace();
    let day = parse_digits(fields.next()?.as_bytes())?;
    let month_name = fields.next()?;
    let month = MONTH_ABBREVIATIONS
        .iter()
        .position(|name| name.eq_ignore_ascii_case(month_name))? as u32
        + 1;
    let year_text = fields.next()?;
    if year_text.len() != 4 {
        return None;
    }
    let year = i64::from(parse_digits(year_text.as_bytes())?);
    let mut clock = fields.next()?.split(':');
    let hour = parse_two_digits(clock.next()?)?;
    let minute = parse_two_digits(clock.next()?)?;
    let second = parse_two_digits(clock.next()?)?;
    if clock.next().is_some() {
        return None;
    }
    let zone = fields.next()?;
    if fields.next().is_some() || !["GMT", "UTC", "Z", "+0000", "-0000"].contains(&zone) {
        return None;
    }
    epoch_s_from_civil(year, month, day, hour, minute, second)
}

fn parse_two_digits(text: &str) -> Option<u32> {
    if text.len() == 2 {
        parse_digits(text.as_bytes())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn days_from_civil_matches_known_dates() {
        let cases = [
            ((1970, 1, 1), 0),
            ((1969, 12, 31), -1),
            ((2000, 3, 1), 11_017),
            ((2015, 8, 30), 16_677),
            ((2024, 2, 29), 19_782),
            ((1600, 1, 1), -135_140),
            ((0, 1, 1), -719_528),
            ((9999, 12, 31), 2_932_896),
        ];
        for ((year, month, day), days) in cases {
            assert_eq!(
                days_from_civil(year, month, day),
                days,
                "{year}-{month}-{day}"
            );
            assert_eq!(civil_from_days(days), (year, month, day), "day {days}");
        }
    }

    #[test]
    fn leap_years_follow_the_gregorian_rules() {
        assert!(is_leap_year(2024));
        assert!(is_leap_year(2000));
        assert!(!is_leap_year(1900));
        assert!(!is_leap_year(2023));
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(2100, 2), 28);
        assert_eq!(days_in_month(2023, 13), 0);
    }

    #[test]
    fn amz_date_formats_known_instants() {
        let cases = [
            (0, "19700101T000000Z"),
            (1_440_938_160, "20150830T123600Z"),
            (1_709_251_199, "20240229T235959Z"),
            (-1, "19691231T235959Z"),
            (i64::MAX, "99991231T235959Z"),
            (i64::MIN, "00000101T000000Z"),
        ];
        for (epoch_s, text) in cases {
            let formatted = AmzDate::from_epoch_s(epoch_s);
            assert_eq!(formatted.as_str(), text);
            assert_eq!(formatted.to_string(), text);
            assert_eq!(formatted.date_stamp(), &text[..8]);
        }
    }

    #[test]
    fn parse_amz_date_accepts_only_the_basic_format() {
        assert_eq!(parse_amz_date("20150830T123600Z"), Some(1_440_938_160));
        assert_eq!(parse_amz_date("20240229T235959Z"), Some(1_709_251_199));
        for bad in [
            "",
            "20150830T123600",
            "2015-08-30T12:36:00Z",
            "20150830 123600Z",
            "20150830T123600z",
            "20150230T123600Z",
            "20230229T000000Z",
            "20151330T123600Z",
            "20150830T243600Z",
            "20150830T126000Z",
            "20150830T123660Z",
            "2015083OT123600Z",
            "+0150830T123600Z",
            "20150830T123600Z ",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn parse_http_date_accepts_utc_rfc1123_forms() {
        let expected = Some(1_440_938_160);
        for text in [
            "Sun, 30 Aug 2015 12:36:00 GMT",
            "Sun, 30 Aug 2015 12:36:00 -0000",
            "Sun, 30 Aug 2015 12:36:00 +0000",
            "30 aug 2015 12:36:00 UTC",
            "  Sun, 30 Aug 2015 12:36:00 Z  ",
        ] {
            assert_eq!(parse_http_date(text), expected, "{text:?}");
        }
        for bad in [
            "Sun, 30 Aug 2015 12:36:00 +0100",
            "Sun, 30 Aug 2015 12:36 GMT",
            "Sun, 31 Sep 2015 12:36:00 GMT",
            "Sunday, 30 Aug 2015 12:36:00 GMT",
            "Sun, 30 Foo 2015 12:36:00 GMT",
            "Sun, 30 Aug 15 12:36:00 GMT",
            "Sun, 30 Aug 2015 12:36:00 GMT extra",
            "20150830T123600Z",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn civil_round_trips(days in -719_528i64..2_932_897) {
            let (year, month, day) = civil_from_days(days);
            prop_assert!((1..=12).contains(&month));
            prop_assert!(day >= 1 && day <= days_in_month(year, month));
            prop_assert_eq!(days_from_civil(year, month, day), days);
        }

        #[test]
        fn amz_date_round_trips(epoch_s in MIN_FORMATTABLE_EPOCH_S..=MAX_FORMATTABLE_EPOCH_S) {
            let formatted = AmzDate::from_epoch_s(epoch_s);
            prop_assert_eq!(parse_amz_date(formatted.as_str()), Some(epoch_s));
        }
    }
}
