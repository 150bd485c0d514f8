//! Parsing the RFC 3339 timestamps Docker writes (`State.StartedAt`,
//! `State.FinishedAt`, the prefix of each log message with `timestamps=1`),
//! e.g. `2024-05-01T12:34:56.123456789Z`.
//!
//! Small enough to write here rather than pull in a date library: Docker
//! always writes the Go `time.RFC3339Nano` layout, in UTC or with an offset.

/// Milliseconds since the Unix epoch, or `None` if `text` is not an RFC 3339
/// timestamp or is Go's zero time (`0001-01-01T00:00:00Z`), which Docker
/// writes for "never".
pub fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    parse_rfc3339_ns(text).map(|nanos| nanos.div_euclid(1_000_000))
}

/// Nanoseconds since the Unix epoch (fractions beyond nanoseconds are
/// truncated), or `None` as for [`parse_rfc3339_ms`].
pub fn parse_rfc3339_ns(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() < 20
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || !matches!(bytes[10], b'T' | b't' | b' ')
        || bytes[13] != b':'
        || bytes[16] != b':'
    {
        return None;
    }
    let year = digits(&text[0..4])?;
    let month = digits(&text[5..7])?;
    let day = digits(&text[8..10])?;
    let hour = digits(&text[11..13])?;
    let minute = digits(&text[14..16])?;
    let second = digits(&text[17..19])?;
    if year == 1 && month == 1 && day == 1 {
        return None;
    }
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }

    let mut rest = &text[19..];
    let mut nanos = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let length = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if length == 0 {
            return None;
        }
        // Truncate to nanoseconds: pad or cut the fraction to 9 digits.
        let mut scaled = 0;
        for position in 0..9 {
            let digit = fraction
                .as_bytes()
                .get(position)
                .filter(|_| position < length);
            scaled = scaled * 10 + digit.map_or(0, |digit| i64::from(digit - b'0'));
        }
        nanos = scaled;
        rest = &fraction[length..];
    }

    let offset_minutes = match rest {
        "Z" | "z" => 0,
        _ => {
            let offset = rest.as_bytes();
            if offset.len() != 6 || offset[3] != b':' {
                return None;
            }
            let sign = match offset[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let hours = digits(&rest[1..3])?;
            let minutes = digits(&rest[4..6])?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            sign * (hours * 60 + minutes)
        }
    };

    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    seconds.checked_mul(1_000_000_000)?.checked_add(nanos)
}

fn digits(text: &str) -> Option<i64> {
    if text.bytes().all(|byte| byte.is_ascii_digit()) {
        text.parse().ok()
    } else {
        None
    }
}

fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (Howard
/// Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected_ms: Option<i64>) {
        assert_eq!(parse_rfc3339_ms(text), expected_ms, "parsing {text:?}");
    }

    #[test]
    fn parses_docker_timestamps() {
        check("1970-01-01T00:00:00Z", Some(0));
        check("1970-01-01T00:00:01.5Z", Some(1_500));
        check("2024-05-01T12:34:56.123456789Z", Some(1_714_566_896_123));
        check("2000-02-29T00:00:00Z", Some(951_782_400_000));
        check("2026-11-25T16:59:47.826336331Z", Some(1_795_625_987_826));
        check("1969-12-31T23:59:59Z", Some(-1_000));
    }

    #[test]
    fn parses_nanoseconds() {
        for (text, expected_ns) in [
            ("1970-01-01T00:00:00Z", Some(0)),
            ("1970-01-01T00:00:01.000000001Z", Some(1_000_000_001)),
            ("1970-01-01T00:00:01.5Z", Some(1_500_000_000)),
            (
                "2024-05-01T12:34:56.123456789Z",
                Some(1_714_566_896_123_456_789),
            ),
            (
                "2024-05-01T12:34:56.1234567891Z",
                Some(1_714_566_896_123_456_789),
            ),
            (
                "2024-05-01T14:34:56.123456789+02:00",
                Some(1_714_566_896_123_456_789),
            ),
            ("1969-12-31T23:59:59.5Z", Some(-500_000_000)),
            ("0001-01-01T00:00:00Z", None),
            ("2024-05-01T12:34:56", None),
            // Beyond what i64 nanoseconds hold (year 2262 on).
            ("9999-12-31T23:59:59Z", None),
        ] {
            assert_eq!(parse_rfc3339_ns(text), expected_ns, "parsing {text:?}");
        }
        check("1969-12-31T23:59:59.5Z", Some(-500));
    }

    #[test]
    fn applies_offsets() {
        check("2024-05-01T14:34:56.123+02:00", Some(1_714_566_896_123));
        check("2024-05-01T07:04:56.123-05:30", Some(1_714_566_896_123));
    }

    #[test]
    fn zero_time_means_never() {
        check("0001-01-01T00:00:00Z", None);
    }

    #[test]
    fn rejects_malformed_text() {
        for text in [
            "",
            "yesterday",
            "2024-05-01",
            "2024-05-01T12:34:56",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T12:34:56.Z",
            "2024-05-01T12:34:56+0200",
            "2024-05-01T12:34:56+02:00x",
            "2024-0a-01T12:34:56Z",
        ] {
            check(text, None);
        }
    }
}
