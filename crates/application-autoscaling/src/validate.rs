//! Request decoding and validation in AWS's front-end words: the constraints of botocore's
//! model (required members, enums, lengths, patterns, list sizes) reported as
//! `ValidationException` with "N validation errors detected: Value … at '…' failed to satisfy
//! constraint: …", member paths in the front end's lower camel case
//! (`scalableTargetAction.minCapacity`), every violation of a request in one message.

use std::sync::OnceLock;

use api::ApiError;
use regex::Regex;
use serde::de::DeserializeOwned;

use crate::error;

/// The violations found so far in one request.
#[derive(Debug, Default)]
pub(crate) struct Violations {
    messages: Vec<String>,
}

/// ScheduledActionName's pattern (no leading/trailing spaces, no control characters, no `:`,
/// `/` or `|`).
pub(crate) const SCHEDULED_ACTION_NAME_PATTERN: &str =
    r"(?!((^[ ]+.*)|(.*([\u0000-\u001f]|[\u007f-\u009f]|[:/|])+.*)|(.*[ ]+$))).+";
/// PolicyName's pattern.
pub(crate) const PRINTABLE_PATTERN: &str = r"\p{Print}+";
/// AmazonResourceName: a scalable target ARN.
pub(crate) const RESOURCE_ARN_PATTERN: &str =
    r"^arn:.+:application-autoscaling:.+:[0-9]+:scalable-target\/[a-zA-Z0-9-]+$";

/// The model's member name as the front end spells it in messages: lower camel case per
/// segment (`ServiceNamespace` → `serviceNamespace`, `RoleARN` → `roleARN`).
pub(crate) fn member_path(path: &str) -> String {
    path.split('.')
        .map(|segment| {
            let mut chars = segment.chars();
            match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => String::new(),
            }
        })
        .collect::<Vec<String>>()
        .join(".")
}

fn matches(pattern: &'static str, value: &str) -> bool {
    // The Rust regex crate has no look-around: ScheduledActionName's negative look-ahead is
    // checked by hand.
    if pattern == SCHEDULED_ACTION_NAME_PATTERN {
        return !value.starts_with(' ')
            && !value.ends_with(' ')
            && !value.chars().any(|c| {
                c.is_control() || ('\u{7f}'..='\u{9f}').contains(&c) || matches!(c, ':' | '/' | '|')
            });
    }
    // Java's `\p{Print}` (PolicyName): printable ASCII and spaces, which Rust's regex lacks.
    if pattern == PRINTABLE_PATTERN {
        return value.chars().all(|c| !c.is_control());
    }
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

    pub fn push(&mut self, value: &str, member: &str, constraint: impl Into<String>) {
        self.messages.push(format!(
            "Value {value} at '{}' failed to satisfy constraint: {}",
            member_path(member),
            constraint.into()
        ));
    }

    /// A required member that is absent.
    pub fn required<T>(&mut self, member: &str, value: Option<&T>) {
        if value.is_none() {
            self.push("null", member, "Member must not be null");
        }
    }

    /// A string's length (in characters) and pattern.
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
            if !matches(pattern, value) {
                self.push(
                    &quoted,
                    member,
                    format!("Member must satisfy regular expression pattern: {pattern}"),
                );
            }
        }
    }

    /// A ResourceIdMaxLen1600 member (ResourceId, Schedule, Timezone, …).
    pub fn resource_id(&mut self, member: &str, value: Option<&str>) {
        self.string(member, value, 1, 1600, None);
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

    /// A list's number of members.
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

    /// A TagMap (RegisterScalableTarget, TagResource): keys 1–128, values 0–256 characters.
    pub fn tags(
        &mut self,
        member: &str,
        tags: Option<&std::collections::BTreeMap<String, String>>,
    ) {
        let Some(tags) = tags else { return };
        for (key, value) in tags {
            self.string(&format!("{member}.key"), Some(key), 1, 128, None);
            self.string(
                &format!("{member}.{key}.member.value"),
                Some(value),
                0,
                256,
                None,
            );
        }
    }

    /// `Err` with every violation, or `Ok` when there are none.
    pub fn finish(self) -> Result<(), ApiError> {
        match self.messages.len() {
            0 => Ok(()),
            1 => Err(error::validation(format!(
                "1 validation error detected: {}",
                self.messages[0]
            ))),
            n => Err(error::validation(format!(
                "{n} validation errors detected: {}",
                self.messages.join("; ")
            ))),
        }
    }
}

/// A request shape: its model-required top-level members.
pub(crate) trait Request: DeserializeOwned {
    const REQUIRED: &'static [&'static str];
}

macro_rules! requests {
    ($($shape:ident),+ $(,)?) => {
        $(impl Request for application_autoscaling_wire::$shape {
            const REQUIRED: &'static [&'static str] = application_autoscaling_wire::$shape::REQUIRED;
        })+
    };
}

requests!(
    RegisterScalableTargetRequest,
    DescribeScalableTargetsRequest,
    DeregisterScalableTargetRequest,
    PutScalingPolicyRequest,
    DescribeScalingPoliciesRequest,
    DeleteScalingPolicyRequest,
    PutScheduledActionRequest,
    DescribeScheduledActionsRequest,
    DeleteScheduledActionRequest,
    DescribeScalingActivitiesRequest,
    TagResourceRequest,
    UntagResourceRequest,
    ListTagsForResourceRequest,
);

/// Decodes a JSON 1.1 body into `R`: a missing required member or a value outside an enum is
/// a `ValidationException` in the front end's words (all of them at once); any other shape
/// mismatch a `SerializationException`.
pub(crate) fn parse<R: Request>(body: &[u8]) -> Result<R, ApiError> {
    let value: serde_json::Value = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Value::Object(Default::default())
    } else {
        serde_json::from_slice(body).map_err(|err| {
            ApiError::serialization(format!("The request body is not valid JSON: {err}"))
        })?
    };
    let Some(object) = value.as_object() else {
        return Err(ApiError::serialization(
            "The request body must be a JSON object.",
        ));
    };
    let mut violations = Violations::new();
    for member in R::REQUIRED {
        violations.required(member, object.get(*member).filter(|v| !v.is_null()));
    }
    violations.finish()?;
    serde_path_to_error::deserialize(value).map_err(|err| {
        let inner = err.inner().to_string();
        match inner.strip_prefix("unknown variant `") {
            Some(rest) => {
                let given = rest.split('`').next().unwrap_or_default();
                let allowed = allowed_variants(rest);
                let member = err
                    .path()
                    .iter()
                    .filter_map(|segment| match segment {
                        serde_path_to_error::Segment::Map { key } => Some(key.as_str()),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
                    .join(".");
                let mut violations = Violations::new();
                violations.push(
                    &format!("'{given}'"),
                    &member,
                    format!(
                        "Member must satisfy enum value set: [{}]",
                        allowed.join(", ")
                    ),
                );
                violations.finish().expect_err("one violation was pushed")
            }
            None => ApiError::serialization(format!("{}: {inner}", err.path())),
        }
    })
}

/// The variants in serde's "expected `A`", "expected `A` or `B`", "expected one of `A`, …".
fn allowed_variants(message: &str) -> Vec<&str> {
    let Some((_, list)) = message.split_once("expected ") else {
        return Vec::new();
    };
    let list = list.strip_prefix("one of ").unwrap_or(list);
    list.split(", ")
        .flat_map(|part| part.split(" or "))
        .map(|v| v.trim().trim_matches('`'))
        .filter(|v| !v.is_empty())
        .collect()
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
    fn messages_are_the_front_end_ones() {
        check(|v| v.resource_id("ResourceId", Some("service/a/b")), None);
        check(
            |v| v.required::<String>("ResourceId", None),
            Some("1 validation error detected: Value null at 'resourceId' failed to satisfy constraint: Member must not be null"),
        );
        check(
            |v| {
                v.resource_id("ResourceId", Some(""));
                v.range("MaxResults", Some(0), 1, 50);
            },
            Some("2 validation errors detected: Value '' at 'resourceId' failed to satisfy constraint: Member must have length greater than or equal to 1; Value '0' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1"),
        );
        check(
            |v| v.string("ScheduledActionName", Some("a:b"), 1, 256, Some(SCHEDULED_ACTION_NAME_PATTERN)),
            Some(&*format!("1 validation error detected: Value 'a:b' at 'scheduledActionName' failed to satisfy constraint: Member must satisfy regular expression pattern: {SCHEDULED_ACTION_NAME_PATTERN}")),
        );
        check(
            |v| {
                v.string(
                    "ScheduledActionName",
                    Some("nightly scale-in"),
                    1,
                    256,
                    Some(SCHEDULED_ACTION_NAME_PATTERN),
                )
            },
            None,
        );
        check(
            |v| {
                v.string("ResourceARN", Some("arn:aws:application-autoscaling:us-east-1:000000000000:scalable-target/0ec1"), 1, 1011, Some(RESOURCE_ARN_PATTERN))
            },
            None,
        );
    }

    #[test]
    fn member_paths_are_lower_camel_case() {
        for (path, expected) in [
            ("ServiceNamespace", "serviceNamespace"),
            ("RoleARN", "roleARN"),
            (
                "ScalableTargetAction.MinCapacity",
                "scalableTargetAction.minCapacity",
            ),
        ] {
            assert_eq!(member_path(path), expected);
        }
    }

    #[test]
    fn enum_and_required_errors_are_validation_exceptions() {
        let err = parse::<application_autoscaling_wire::DescribeScalableTargetsRequest>(
            br#"{"ServiceNamespace": "nope"}"#,
        )
        .unwrap_err();
        assert_eq!(err.code, "ValidationException");
        assert!(err.message.starts_with("1 validation error detected: Value 'nope' at 'serviceNamespace' failed to satisfy constraint: Member must satisfy enum value set: [ecs, elasticmapreduce,"), "{}", err.message);
        let err = parse::<application_autoscaling_wire::DeregisterScalableTargetRequest>(b"{}")
            .unwrap_err();
        assert_eq!(err.message, "3 validation errors detected: Value null at 'serviceNamespace' failed to satisfy constraint: Member must not be null; Value null at 'resourceId' failed to satisfy constraint: Member must not be null; Value null at 'scalableDimension' failed to satisfy constraint: Member must not be null");
        let err = parse::<application_autoscaling_wire::DescribeScalableTargetsRequest>(
            br#"{"ServiceNamespace": "ecs", "MaxResults": "x"}"#,
        )
        .unwrap_err();
        assert_eq!(err.code, "SerializationException");
    }
}
