//! The runtime of the query-protocol wire shapes that `tools/codegen/query_shapes.py`
//! generates (ELBv2's and CloudWatch's):
//!
//! - [`Form`]: the decoded `Action=…&Name.member.1=…` parameters; [`Request::decode`] turns
//!   them into an operation's input shape, reporting missing required members and constraint
//!   violations in AWS's `ValidationError` wording.
//! - [`XmlWriter`] and [`xml_document`]: an output shape as the XML document botocore's
//!   `QueryParser` reads (`<XResponse><XResult>…</XResult><ResponseMetadata>…`).

use std::collections::BTreeMap;

/// The form parameters of one query-protocol request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Form {
    params: BTreeMap<String, String>,
}

impl Form {
    /// Decodes an `application/x-www-form-urlencoded` body (or query string). A repeated
    /// name keeps its last value.
    pub fn parse(body: &[u8]) -> Form {
        Form {
            params: crate::query::parse_form(body).into_iter().collect(),
        }
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Form {
        Form {
            params: pairs
                .into_iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// The `Action` parameter.
    pub fn action(&self) -> Option<&str> {
        self.get("Action")
    }

    fn has_prefix(&self, prefix: &str) -> bool {
        self.params
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .next()
            .is_some_and(|(name, _)| name.starts_with(prefix))
    }

    fn is_present(&self, key: &str) -> bool {
        self.params.contains_key(key) || self.has_prefix(&format!("{key}."))
    }

    pub fn decode_string(&self, key: &str, _path: &str, _: &mut Violations) -> Option<String> {
        self.get(key).map(str::to_string)
    }

    fn decode_number<T: std::str::FromStr>(
        &self,
        key: &str,
        path: &str,
        violations: &mut Violations,
        what: &str,
    ) -> Option<T> {
        let text = self.get(key)?;
        match text.trim().parse() {
            Ok(value) => Some(value),
            Err(_) => {
                violations.invalid(text, path, &format!("Member must be {what}"));
                None
            }
        }
    }

    pub fn decode_i32(&self, key: &str, path: &str, violations: &mut Violations) -> Option<i32> {
        self.decode_number(key, path, violations, "an integer")
    }

    pub fn decode_i64(&self, key: &str, path: &str, violations: &mut Violations) -> Option<i64> {
        self.decode_number(key, path, violations, "an integer")
    }

    pub fn decode_f64(&self, key: &str, path: &str, violations: &mut Violations) -> Option<f64> {
        self.decode_number(key, path, violations, "a number")
    }

    pub fn decode_bool(&self, key: &str, path: &str, violations: &mut Violations) -> Option<bool> {
        let text = self.get(key)?;
        match text {
            "true" => Some(true),
            "false" => Some(false),
            other => {
                violations.invalid(other, path, "Member must be true or false");
                None
            }
        }
    }

    /// An ISO 8601 timestamp (what botocore's query serializer sends, e.g.
    /// `2026-12-07T14:00:00Z` or with fractional seconds) as epoch milliseconds.
    pub fn decode_timestamp(
        &self,
        key: &str,
        path: &str,
        violations: &mut Violations,
    ) -> Option<i64> {
        let text = self.get(key)?;
        match parse_iso8601_ms(text) {
            Some(epoch_ms) => Some(epoch_ms),
            None => {
                // Guessed wording: AWS's query services report an unparsable
                // timestamp as a constraint violation of the member.
                violations.invalid(text, path, "Member must be a timestamp in ISO 8601 format");
                None
            }
        }
    }

    /// A structure whose members are `key.Member…`; `None` when no such parameter exists.
    pub fn decode_struct<T: FromForm>(
        &self,
        key: &str,
        path: &str,
        violations: &mut Violations,
    ) -> Option<T> {
        let prefix = format!("{key}.");
        self.has_prefix(&prefix)
            .then(|| T::from_form(self, &prefix, path, violations))
    }

    /// A list sent as `key.member.1`, `key.member.2`, … (flattened: `key.1`, …) up to the
    /// first missing index; `key=` (empty) is the empty list.
    pub fn decode_list<T>(
        &self,
        key: &str,
        path: &str,
        flattened: bool,
        violations: &mut Violations,
        mut item: impl FnMut(&Form, &str, &str, &mut Violations) -> Option<T>,
    ) -> Option<Vec<T>> {
        let separator = if flattened { "." } else { ".member." };
        let mut items = Vec::new();
        for index in 1.. {
            let item_key = format!("{key}{separator}{index}");
            if !self.is_present(&item_key) {
                break;
            }
            let item_path = format!("{path}.{index}.member");
            if let Some(value) = item(self, &item_key, &item_path, violations) {
                items.push(value);
            }
        }
        if items.is_empty()
            && !self.params.contains_key(key)
            && !self.has_prefix(&format!("{key}."))
        {
            return None;
        }
        Some(items)
    }

    /// A map sent as `key.entry.N.key` / `key.entry.N.value` (flattened: `key.N.key`).
    #[allow(clippy::too_many_arguments)]
    pub fn decode_map<V>(
        &self,
        key: &str,
        path: &str,
        flattened: bool,
        key_name: &str,
        value_name: &str,
        violations: &mut Violations,
        mut value: impl FnMut(&Form, &str, &str, &mut Violations) -> Option<V>,
    ) -> Option<BTreeMap<String, V>> {
        let separator = if flattened { "." } else { ".entry." };
        let mut entries = BTreeMap::new();
        for index in 1.. {
            let entry_key = format!("{key}{separator}{index}");
            if !self.has_prefix(&format!("{entry_key}.")) {
                break;
            }
            let entry_path = format!("{path}.{index}");
            let Some(map_key) = self.get(&format!("{entry_key}.{key_name}")) else {
                violations.missing(&format!("{entry_path}.key"));
                continue;
            };
            let value_key = format!("{entry_key}.{value_name}");
            let value_path = format!("{entry_path}.value");
            match value(self, &value_key, &value_path, violations) {
                Some(decoded) => {
                    entries.insert(map_key.to_string(), decoded);
                }
                None => violations.missing(&value_path),
            }
        }
        if entries.is_empty() && !self.params.contains_key(key) {
            return None;
        }
        Some(entries)
    }
}

/// Constraint violations found while decoding a request, in AWS's wording.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Violations {
    messages: Vec<String>,
}

impl Violations {
    pub fn missing(&mut self, path: &str) {
        self.messages.push(format!(
            "Value null at '{path}' failed to satisfy constraint: Member must not be null"
        ));
    }

    pub fn invalid(&mut self, value: &str, path: &str, constraint: &str) {
        self.messages.push(format!(
            "Value '{value}' at '{path}' failed to satisfy constraint: {constraint}"
        ));
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// `Err("2 validation errors detected: …; …")` when anything was found.
    pub fn into_result(self) -> Result<(), String> {
        match self.messages.len() {
            0 => Ok(()),
            1 => Err(format!("1 validation error detected: {}", self.messages[0])),
            count => Err(format!(
                "{count} validation errors detected: {}",
                self.messages.join("; ")
            )),
        }
    }
}

/// The error path of member `name` under `parent` (`""` at the top).
pub fn member_path(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}.{name}")
    }
}

pub fn check_enum(value: &str, allowed: &[&str], path: &str, violations: &mut Violations) {
    if !allowed.contains(&value) {
        violations.invalid(
            value,
            path,
            &format!(
                "Member must satisfy enum value set: [{}]",
                allowed.join(", ")
            ),
        );
    }
}

pub fn check_length(
    value: &str,
    min: Option<usize>,
    max: Option<usize>,
    path: &str,
    violations: &mut Violations,
) {
    let length = value.chars().count();
    if let Some(min) = min.filter(|&min| length < min) {
        violations.invalid(
            value,
            path,
            &format!("Member must have length greater than or equal to {min}"),
        );
    }
    if let Some(max) = max.filter(|&max| length > max) {
        violations.invalid(
            value,
            path,
            &format!("Member must have length less than or equal to {max}"),
        );
    }
}

pub fn check_range(
    value: i64,
    min: Option<i64>,
    max: Option<i64>,
    path: &str,
    violations: &mut Violations,
) {
    if let Some(min) = min.filter(|&min| value < min) {
        violations.invalid(
            &value.to_string(),
            path,
            &format!("Member must have value greater than or equal to {min}"),
        );
    }
    if let Some(max) = max.filter(|&max| value > max) {
        violations.invalid(
            &value.to_string(),
            path,
            &format!("Member must have value less than or equal to {max}"),
        );
    }
}

/// [`check_enum`] with the path built only when the value fails.
pub fn check_enum_at(
    value: &str,
    allowed: &[&str],
    path: &dyn Fn() -> String,
    violations: &mut Violations,
) {
    if !allowed.contains(&value) {
        check_enum(value, allowed, &path(), violations);
    }
}

/// [`check_length`] with the path built only when the value fails.
pub fn check_length_at(
    value: &str,
    min: Option<usize>,
    max: Option<usize>,
    path: &dyn Fn() -> String,
    violations: &mut Violations,
) {
    // A string's characters are at most its bytes and at least a quarter of them, so most
    // values pass without counting characters.
    let bytes = value.len();
    let too_long = max.is_some_and(|max| bytes > max && value.chars().count() > max);
    let too_short = min.is_some_and(|min| bytes < min * 4 && value.chars().count() < min);
    if too_long || too_short {
        check_length(value, min, max, &path(), violations);
    }
}

/// [`check_range`] with the path built only when the value fails.
pub fn check_range_at(
    value: i64,
    min: Option<i64>,
    max: Option<i64>,
    path: &dyn Fn() -> String,
    violations: &mut Violations,
) {
    if min.is_some_and(|min| value < min) || max.is_some_and(|max| value > max) {
        check_range(value, min, max, &path(), violations);
    }
}

/// A decoded shape checked as the query decoder checks it while decoding (required
/// members, enum values, lengths, ranges, with the same paths and wording): what the JSON
/// and CBOR protocols, decoded by serde, are validated with.
pub trait Validate {
    fn validate(&self, path: &dyn Fn() -> String, violations: &mut Violations);

    /// `Err` with the `ValidationError` message when anything was found.
    fn validated(&self) -> Result<(), String> {
        let mut violations = Violations::default();
        self.validate(&String::new, &mut violations);
        violations.into_result()
    }
}

/// A structure decodable from form parameters under `prefix` (`""` or `"A.B."`).
pub trait FromForm: Sized {
    fn from_form(form: &Form, prefix: &str, path: &str, violations: &mut Violations) -> Self;
}

/// An operation's input shape.
pub trait Request: FromForm {
    const ACTION: &'static str;

    /// The input, or the `ValidationError` message.
    fn decode(form: &Form) -> Result<Self, String> {
        let mut violations = Violations::default();
        let request = Self::from_form(form, "", "", &mut violations);
        violations.into_result().map(|()| request)
    }
}

/// A structure writable as the members of an XML element.
pub trait ToXml {
    fn write_xml(&self, out: &mut XmlWriter);
}

/// Appends XML elements to a string.
#[derive(Clone, Debug, Default)]
pub struct XmlWriter {
    out: String,
}

impl XmlWriter {
    pub fn open(&mut self, name: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
    }

    pub fn close(&mut self, name: &str) {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    pub fn text(&mut self, name: &str, value: &str) {
        self.open(name);
        for character in value.chars() {
            match character {
                '&' => self.out.push_str("&amp;"),
                '<' => self.out.push_str("&lt;"),
                '>' => self.out.push_str("&gt;"),
                '"' => self.out.push_str("&quot;"),
                '\'' => self.out.push_str("&apos;"),
                other => self.out.push(other),
            }
        }
        self.close(name);
    }

    /// A timestamp (epoch milliseconds) as ISO 8601 UTC with milliseconds.
    pub fn timestamp(&mut self, name: &str, epoch_ms: i64) {
        self.text(name, &iso8601(epoch_ms));
    }

    pub fn raw(&mut self, text: &str) {
        self.out.push_str(text);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// `2024-01-02T03:04:05.678Z` for epoch milliseconds.
pub fn iso8601(epoch_ms: i64) -> String {
    let days = epoch_ms.div_euclid(86_400_000);
    let ms_of_day = epoch_ms.rem_euclid(86_400_000);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1000 % 60,
        ms_of_day % 1000
    )
}

/// `<{action}Response xmlns=…><{action}Result>…</{action}Result><ResponseMetadata>
/// <RequestId>…</RequestId></ResponseMetadata></{action}Response>`, the result's members
/// written by `write`.
pub fn xml_document(
    action: &str,
    namespace: &str,
    request_id: &str,
    write: impl FnOnce(&mut XmlWriter),
) -> Vec<u8> {
    let mut out = XmlWriter::default();
    out.raw(&format!("<{action}Response xmlns=\"{namespace}\">"));
    let result = format!("{action}Result");
    out.open(&result);
    write(&mut out);
    out.close(&result);
    out.open("ResponseMetadata");
    out.text("RequestId", request_id);
    out.close("ResponseMetadata");
    out.raw(&format!("</{action}Response>"));
    out.finish().into_bytes()
}

/// Epoch milliseconds of an ISO 8601 date-time (`YYYY-MM-DDThh:mm:ss[.fff](Z|±hh:mm)`); also
/// accepts epoch seconds, which some clients send.
pub fn parse_iso8601_ms(text: &str) -> Option<i64> {
    use aws_smithy_types::date_time::{DateTime, Format};
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        return seconds
            .is_finite()
            .then(|| (seconds * 1000.0).round() as i64);
    }
    let parsed = DateTime::from_str(text, Format::DateTimeWithOffset)
        .or_else(|_| DateTime::from_str(text, Format::DateTime))
        .ok()?;
    parsed.to_millis().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_round_trips_and_parses_what_botocore_sends() {
        let cases = [
            ("2026-12-07T14:00:00Z", Some(1_796_652_000_000)),
            ("2026-12-07T14:00:00.250000Z", Some(1_796_652_000_250)),
            ("2026-12-07T15:00:00+01:00", Some(1_796_652_000_000)),
            ("1796652000", Some(1_796_652_000_000)),
            ("yesterday", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_iso8601_ms(text), expected, "{text}");
        }
        assert_eq!(
            parse_iso8601_ms(&iso8601(1_796_652_000_123)),
            Some(1_796_652_000_123)
        );
    }
}
