//! CloudWatch Logs' request validation, in the service's words: the
//! constraints of botocore's model (lengths, patterns, ranges, enums)
//! reported as `InvalidParameterException` with the "N validation errors
//! detected: Value … at '…' failed to satisfy constraint: …" message AWS's
//! front end writes, every violation of a request in one message.

use std::sync::OnceLock;

use api::ApiError;
use regex::Regex;

/// The violations found so far in one request.
#[derive(Debug, Default)]
pub(crate) struct Violations {
    messages: Vec<String>,
}

pub(crate) const LOG_GROUP_NAME_PATTERN: &str = r"[\.\-_/#A-Za-z0-9]+";
pub(crate) const LOG_STREAM_NAME_PATTERN: &str = "[^:*]*";
pub(crate) const LOG_GROUP_IDENTIFIER_PATTERN: &str = r"[\w#+=/:,.@-]*";
pub(crate) const RESOURCE_ARN_PATTERN: &str = r"[\w+=/:,.@-]*";
pub(crate) const METRIC_NAME_PATTERN: &str = "[^:*$]*";
pub(crate) const TAG_KEY_PATTERN: &str = r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]+)$";
pub(crate) const TAG_VALUE_PATTERN: &str = r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$";

fn full_match(pattern: &'static str, value: &str) -> bool {
    static CACHE: OnceLock<std::sync::Mutex<Vec<(&'static str, Regex)>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().expect("pattern cache lock");
    if let Some((_, regex)) = cache.iter().find(|(p, _)| *p == pattern) {
        return regex.is_match(value);
    }
    let anchored = format!(
        "^(?:{})$",
        pattern.trim_start_matches('^').trim_end_matches('$')
    );
    let regex = Regex::new(&anchored).expect("model patterns compile");
    let matched = regex.is_match(value);
    cache.push((pattern, regex));
    matched
}

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, value: &str, member: &str, constraint: String) {
        self.messages.push(format!(
            "Value {value} at '{member}' failed to satisfy constraint: {constraint}"
        ));
    }

    /// A required member that is absent.
    pub fn required<T>(&mut self, member: &str, value: Option<&T>) {
        if value.is_none() {
            self.push("null", member, "Member must not be null".into());
        }
    }

    /// A string's length (in characters, as AWS counts) and pattern.
    pub fn string(
        &mut self,
        member: &str,
        value: Option<&str>,
        min: usize,
        max: usize,
        pattern: Option<&'static str>,
    ) {
        let Some(value) = value else { return };
        let length = value.chars().count();
        let quoted = format!("'{value}'");
        if length < min {
            self.push(
                &quoted,
                member,
                format!("Member must have length greater than or equal to {min}"),
            );
        }
        if length > max {
            self.push(
                &quoted,
                member,
                format!("Member must have length less than or equal to {max}"),
            );
        }
        if let Some(pattern) = pattern {
            if !full_match(pattern, value) {
                self.push(
                    &quoted,
                    member,
                    format!("Member must satisfy regular expression pattern: {pattern}"),
                );
            }
        }
    }

    /// An integer's range.
    pub fn range(&mut self, member: &str, value: Option<i64>, min: i64, max: i64) {
        let Some(value) = value else { return };
        let quoted = format!("'{value}'");
        if value < min {
            self.push(
                &quoted,
                member,
                format!("Member must have value greater than or equal to {min}"),
            );
        }
        if value > max {
            self.push(
                &quoted,
                member,
                format!("Member must have value less than or equal to {max}"),
            );
        }
    }

    /// A list's or map's number of members.
    pub fn count(&mut self, member: &str, count: Option<usize>, min: usize, max: usize) {
        let Some(count) = count else { return };
        if count < min {
            self.push(
                "'[]'",
                member,
                format!("Member must have length greater than or equal to {min}"),
            );
        }
        if count > max {
            self.push(
                &format!("'[{count} members]'"),
                member,
                format!("Member must have length less than or equal to {max}"),
            );
        }
    }

    /// An integer that must be one of `allowed`.
    pub fn one_of(&mut self, member: &str, value: Option<i64>, allowed: &[i64]) {
        let Some(value) = value else { return };
        if !allowed.contains(&value) {
            let set: Vec<String> = allowed.iter().map(i64::to_string).collect();
            self.push(
                &format!("'{value}'"),
                member,
                format!("Member must satisfy enum value set: [{}]", set.join(", ")),
            );
        }
    }

    /// A log group name member.
    pub fn log_group_name(&mut self, member: &str, value: Option<&str>) {
        self.string(member, value, 1, 512, Some(LOG_GROUP_NAME_PATTERN));
    }

    /// A log stream name (or metric filter name) member.
    pub fn log_stream_name(&mut self, member: &str, value: Option<&str>) {
        self.string(member, value, 1, 512, Some(LOG_STREAM_NAME_PATTERN));
    }

    /// A log group identifier member (a name or an ARN).
    pub fn log_group_identifier(&mut self, member: &str, value: Option<&str>) {
        self.string(member, value, 1, 2048, Some(LOG_GROUP_IDENTIFIER_PATTERN));
    }

    /// A required `logGroupName`.
    pub fn required_log_group_name(&mut self, value: Option<&str>) {
        self.required("logGroupName", value.as_ref());
        self.log_group_name("logGroupName", value);
    }

    /// A required log stream name (or metric filter name) member.
    pub fn required_log_stream_name(&mut self, member: &str, value: Option<&str>) {
        self.required(member, value.as_ref());
        self.log_stream_name(member, value);
    }

    /// A required `resourceArn` (TagResource and its kin).
    pub fn resource_arn(&mut self, value: Option<&str>) {
        self.required("resourceArn", value.as_ref());
        self.string("resourceArn", value, 1, 1011, Some(RESOURCE_ARN_PATTERN));
    }

    /// `logGroupName` and `logGroupIdentifier`, of which a request names
    /// the group with one.
    pub fn group_reference(&mut self, name: Option<&str>, identifier: Option<&str>) {
        self.log_group_name("logGroupName", name);
        self.log_group_identifier("logGroupIdentifier", identifier);
    }

    /// Tags as TagResource, CreateLogGroup and TagLogGroup take them.
    pub fn tags(
        &mut self,
        member: &str,
        tags: Option<&std::collections::BTreeMap<String, String>>,
    ) {
        let Some(tags) = tags else { return };
        self.count(member, Some(tags.len()), 1, 50);
        for (key, value) in tags {
            self.string(
                &format!("{member}.key"),
                Some(key),
                1,
                128,
                Some(TAG_KEY_PATTERN),
            );
            self.string(
                &format!("{member}.{key}.member.value"),
                Some(value),
                0,
                256,
                Some(TAG_VALUE_PATTERN),
            );
        }
    }

    /// `Err` with every violation, or `Ok` when there are none.
    pub fn finish(self) -> Result<(), ApiError> {
        match self.messages.len() {
            0 => Ok(()),
            1 => Err(ApiError::invalid_parameter(format!(
                "1 validation error detected: {}",
                self.messages[0]
            ))),
            n => Err(ApiError::invalid_parameter(format!(
                "{n} validation errors detected: {}",
                self.messages.join("; ")
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(build: impl FnOnce(&mut Violations), expected: Option<&str>) {
        let mut violations = Violations::new();
        build(&mut violations);
        let got = violations.finish().err().map(|e| e.message);
        assert_eq!(got.as_deref(), expected);
    }

    #[test]
    fn messages_are_aws_front_end_ones() {
        check(
            |v| v.log_group_name("logGroupName", Some("ok/name_1.#-")),
            None,
        );
        check(
            |v| v.log_group_name("logGroupName", Some("bad name")),
            Some(
                r"1 validation error detected: Value 'bad name' at 'logGroupName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\.\-_/#A-Za-z0-9]+",
            ),
        );
        check(
            |v| v.required::<String>("logGroupName", None),
            Some("1 validation error detected: Value null at 'logGroupName' failed to satisfy constraint: Member must not be null"),
        );
        check(
            |v| {
                v.log_stream_name("logStreamName", Some("a:b"));
                v.range("limit", Some(0), 1, 50);
            },
            Some("2 validation errors detected: Value 'a:b' at 'logStreamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [^:*]*; Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"),
        );
        check(
            |v| v.one_of("retentionInDays", Some(2), &[1, 3]),
            Some("1 validation error detected: Value '2' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: [1, 3]"),
        );
        let long = "a".repeat(513);
        check(
            |v| v.log_group_name("logGroupName", Some(&long)),
            Some(&*format!("1 validation error detected: Value '{long}' at 'logGroupName' failed to satisfy constraint: Member must have length less than or equal to 512")),
        );
    }
}
