//! Lifecycle policy documents: what ECR accepts (its schema's checks worded
//! as ECR's validator words them, then the rules between rules) and which
//! images a policy expires. Pure: the images and `now` are arguments.
//!
//! Evaluation follows ECR's documented rules:
//! - rules are evaluated from the lowest `rulePriority` up;
//! - an image is expired by exactly one or zero rules;
//! - an image that matches the tag selection of a rule cannot be expired
//!   by a rule of lower priority (a higher number);
//! - a rule still counts images a higher-priority rule expired, but does
//!   not expire them again;
//! - `tagged` rules never select untagged images, `untagged` rules never
//!   tagged ones;
//! - with `tagPrefixList`/`tagPatternList`, an image is selected when every
//!   prefix/pattern matches one of its tags;
//! - expiry is by push time, oldest first: `imageCountMoreThan` keeps the
//!   newest `countNumber` selected images, `sinceImagePushed` expires those
//!   pushed more than `countNumber` days ago.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::images::wildcard_match;

pub(crate) const MILLIS_PER_DAY: i64 = 24 * 60 * 60 * 1000;
/// Wildcards a `tagPatternList` entry may hold.
const MAX_WILDCARDS: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TagStatus {
    Tagged,
    Untagged,
    Any,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Count {
    /// `imageCountMoreThan`: keep this many, newest first.
    MoreThan(u64),
    /// `sinceImagePushed` with `countUnit: days`.
    SincePushedDays(u64),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rule {
    pub priority: i64,
    pub tag_status: TagStatus,
    pub tag_prefixes: Vec<String>,
    pub tag_patterns: Vec<String>,
    pub count: Count,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LifecyclePolicy {
    /// By `rulePriority`, lowest first.
    pub rules: Vec<Rule>,
}

/// An image as the rules see it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Image<'a> {
    pub digest: &'a str,
    pub tags: &'a [String],
    pub pushed_ms: i64,
}

/// An image a policy expires, and the rule that does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Expiry {
    pub digest: String,
    pub rule_priority: i64,
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn expect_type<'a>(value: &'a Value, allowed: &str) -> Result<&'a Value, String> {
    let actual = type_name(value);
    if actual == allowed {
        Ok(value)
    } else {
        Err(format!(
            "instance type ({actual}) does not match any allowed primitive type (allowed: [\"{allowed}\"])"
        ))
    }
}

fn quoted_list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    format!("[{}]", quoted.join(","))
}

/// An object with these required and allowed members.
fn object<'a>(
    value: &'a Value,
    required: &[&str],
    allowed: &[&str],
) -> Result<&'a serde_json::Map<String, Value>, String> {
    let Value::Object(map) = expect_type(value, "object")? else {
        unreachable!("checked to be an object");
    };
    let mut extra: Vec<&str> = map
        .keys()
        .map(String::as_str)
        .filter(|k| !allowed.contains(k))
        .collect();
    if !extra.is_empty() {
        extra.sort_unstable();
        return Err(format!(
            "object instance has properties which are not allowed by the schema: {}",
            quoted_list(&extra)
        ));
    }
    let mut missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|k| !map.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        missing.sort_unstable();
        return Err(format!(
            "object has missing required properties ({})",
            quoted_list(&missing)
        ));
    }
    Ok(map)
}

fn one_of<'a>(value: &'a Value, allowed: &[&str]) -> Result<&'a str, String> {
    let text = expect_type(value, "string")?.as_str().unwrap_or_default();
    if allowed.contains(&text) {
        Ok(text)
    } else {
        Err(format!(
            "instance value (\"{text}\") not found in enum (possible values: {})",
            quoted_list(allowed)
        ))
    }
}

fn integer_at_least(value: &Value, minimum: i64) -> Result<i64, String> {
    let number = expect_type(value, "integer")?
        .as_i64()
        .ok_or_else(|| "numeric instance is too large".to_string())?;
    if number < minimum {
        return Err(format!(
            "numeric instance is lower than the required minimum (minimum: {minimum}, found: {number})"
        ));
    }
    Ok(number)
}

fn string_list(value: &Value) -> Result<Vec<String>, String> {
    let items = expect_type(value, "array")?.as_array().expect("an array");
    if items.is_empty() {
        return Err(
            "array is too short: must have at least 1 elements but instance has 0 elements".into(),
        );
    }
    items
        .iter()
        .map(|item| {
            Ok(expect_type(item, "string")?
                .as_str()
                .unwrap_or_default()
                .to_string())
        })
        .collect()
}

fn parse_rule(value: &Value) -> Result<Rule, String> {
    let rule = object(
        value,
        &["action", "rulePriority", "selection"],
        &["action", "description", "rulePriority", "selection"],
    )?;
    let priority = integer_at_least(&rule["rulePriority"], 1)?;
    if let Some(description) = rule.get("description") {
        expect_type(description, "string")?;
    }
    let action = object(&rule["action"], &["type"], &["targetStorageClass", "type"])?;
    if one_of(&action["type"], &["expire", "transition"])? == "transition" {
        return Err(format!(
            "the rule with rulePriority {priority} has action type 'transition'; Berth has no archive storage class and supports only 'expire'"
        ));
    }
    let selection = object(
        &rule["selection"],
        &["countNumber", "countType", "tagStatus"],
        &[
            "countNumber",
            "countType",
            "countUnit",
            "tagPatternList",
            "tagPrefixList",
            "tagStatus",
        ],
    )?;
    let tag_status = match one_of(&selection["tagStatus"], &["tagged", "untagged", "any"])? {
        "tagged" => TagStatus::Tagged,
        "untagged" => TagStatus::Untagged,
        _ => TagStatus::Any,
    };
    let tag_prefixes = selection
        .get("tagPrefixList")
        .map(string_list)
        .transpose()?
        .unwrap_or_default();
    let tag_patterns = selection
        .get("tagPatternList")
        .map(string_list)
        .transpose()?
        .unwrap_or_default();
    let has_lists = !tag_prefixes.is_empty() || !tag_patterns.is_empty();
    if tag_status != TagStatus::Tagged && has_lists {
        return Err(format!(
            "the rule with rulePriority {priority}: tagPrefixList and tagPatternList can only be used when tagStatus is 'tagged'"
        ));
    }
    if tag_status == TagStatus::Tagged && !has_lists {
        return Err(format!(
            "the rule with rulePriority {priority} has tagStatus 'tagged' and needs a tagPrefixList or a tagPatternList"
        ));
    }
    if !tag_prefixes.is_empty() && !tag_patterns.is_empty() {
        return Err(format!(
            "the rule with rulePriority {priority} specifies both tagPrefixList and tagPatternList; use one of them"
        ));
    }
    if let Some(pattern) = tag_patterns
        .iter()
        .find(|p| p.matches('*').count() > MAX_WILDCARDS)
    {
        return Err(format!(
            "the tag pattern '{pattern}' has more than {MAX_WILDCARDS} wildcards (*)"
        ));
    }
    let count_type = one_of(
        &selection["countType"],
        &["imageCountMoreThan", "sinceImagePushed"],
    )?;
    let count_number = integer_at_least(&selection["countNumber"], 1)? as u64;
    let count = match (count_type, selection.get("countUnit")) {
        ("imageCountMoreThan", None) => Count::MoreThan(count_number),
        ("imageCountMoreThan", Some(_)) => {
            return Err(format!(
                "the rule with rulePriority {priority}: countUnit can only be used when countType is 'sinceImagePushed'"
            ))
        }
        (_, None) => {
            return Err(format!(
                "the rule with rulePriority {priority}: countUnit is required when countType is 'sinceImagePushed'"
            ))
        }
        (_, Some(unit)) => {
            one_of(unit, &["days"])?;
            Count::SincePushedDays(count_number)
        }
    };
    Ok(Rule {
        priority,
        tag_status,
        tag_prefixes,
        tag_patterns,
        count,
    })
}

/// Parses and checks a policy document; the error is what follows
/// "Lifecycle policy validation failure: " in ECR's message.
pub(crate) fn parse(text: &str) -> Result<LifecyclePolicy, String> {
    let document: Value = serde_json::from_str(text)
        .map_err(|err| format!("the document is not valid JSON: {err}"))?;
    let top = object(&document, &["rules"], &["rules"])?;
    let rules_value = expect_type(&top["rules"], "array")?
        .as_array()
        .expect("an array");
    if rules_value.is_empty() {
        return Err(
            "array is too short: must have at least 1 elements but instance has 0 elements".into(),
        );
    }
    let mut rules = rules_value
        .iter()
        .map(parse_rule)
        .collect::<Result<Vec<Rule>, String>>()?;
    rules.sort_by_key(|rule| rule.priority);
    for pair in rules.windows(2) {
        if pair[0].priority == pair[1].priority {
            return Err(format!(
                "rulePriority {} is used by more than one rule; every rule needs its own rulePriority",
                pair[0].priority
            ));
        }
    }
    for (status, name) in [(TagStatus::Untagged, "untagged"), (TagStatus::Any, "any")] {
        if rules
            .iter()
            .filter(|rule| rule.tag_status == status)
            .count()
            > 1
        {
            return Err(format!("only one rule may have tagStatus '{name}'"));
        }
    }
    if let Some(any) = rules
        .iter()
        .position(|rule| rule.tag_status == TagStatus::Any)
    {
        if any != rules.len() - 1 {
            return Err(format!(
                "the rule with tagStatus 'any' (rulePriority {}) must have the highest rulePriority",
                rules[any].priority
            ));
        }
    }
    Ok(LifecyclePolicy { rules })
}

impl Rule {
    /// Whether the rule's tag selection takes `image`.
    fn selects(&self, image: &Image<'_>) -> bool {
        match self.tag_status {
            TagStatus::Any => true,
            TagStatus::Untagged => image.tags.is_empty(),
            TagStatus::Tagged => {
                !image.tags.is_empty()
                    && self.tag_prefixes.iter().all(|prefix| {
                        image
                            .tags
                            .iter()
                            .any(|tag| tag.starts_with(prefix.as_str()))
                    })
                    && self
                        .tag_patterns
                        .iter()
                        .all(|pattern| image.tags.iter().any(|tag| wildcard_match(pattern, tag)))
            }
        }
    }
}

/// The images `policy` expires at `now_ms`, oldest first within each rule.
pub(crate) fn plan(policy: &LifecyclePolicy, images: &[Image<'_>], now_ms: i64) -> Vec<Expiry> {
    // Newest first; ties by digest so the plan is the same every time.
    let mut by_age: Vec<&Image<'_>> = images.iter().collect();
    by_age.sort_by(|a, b| b.pushed_ms.cmp(&a.pushed_ms).then(a.digest.cmp(b.digest)));
    let mut expired: BTreeMap<&str, i64> = BTreeMap::new();
    let mut order: Vec<&str> = Vec::new();
    // Images a higher-priority rule's selection took.
    let mut claimed: BTreeSet<&str> = BTreeSet::new();
    for rule in &policy.rules {
        let selected: Vec<&Image<'_>> =
            by_age.iter().copied().filter(|i| rule.selects(i)).collect();
        let candidates: Vec<&Image<'_>> = match rule.count {
            Count::MoreThan(keep) => selected.iter().copied().skip(keep as usize).collect(),
            Count::SincePushedDays(days) => selected
                .iter()
                .copied()
                .filter(|image| now_ms - image.pushed_ms > days as i64 * MILLIS_PER_DAY)
                .collect(),
        };
        // Oldest first, as ECR expires.
        for image in candidates.iter().rev() {
            if claimed.contains(image.digest) || expired.contains_key(image.digest) {
                continue;
            }
            expired.insert(image.digest, rule.priority);
            order.push(image.digest);
        }
        claimed.extend(selected.iter().map(|image| image.digest));
    }
    order
        .into_iter()
        .map(|digest| Expiry {
            digest: digest.to_string(),
            rule_priority: expired[digest],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn rule(priority: i64, selection: &str) -> String {
        format!(
            r#"{{"rulePriority":{priority},"description":"r{priority}","selection":{selection},"action":{{"type":"expire"}}}}"#
        )
    }

    fn policy(rules: &[String]) -> String {
        format!(r#"{{"rules":[{}]}}"#, rules.join(","))
    }

    #[test]
    fn documents_are_checked_as_ecr_checks_them() {
        let untagged =
            r#"{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1}"#;
        let cases: Vec<(String, Option<&str>)> = vec![
            (policy(&[rule(1, untagged)]), None),
            ("not json".into(), Some("the document is not valid JSON: expected ident at line 1 column 2")),
            ("{}".into(), Some(r#"object has missing required properties (["rules"])"#)),
            (r#"{"rules":{}}"#.into(), Some(r#"instance type (object) does not match any allowed primitive type (allowed: ["array"])"#)),
            (r#"{"rules":[]}"#.into(), Some("array is too short: must have at least 1 elements but instance has 0 elements")),
            (r#"{"rules":[{"rulePriority":1}]}"#.into(), Some(r#"object has missing required properties (["action","selection"])"#)),
            (
                policy(&[rule(0, untagged)]),
                Some("numeric instance is lower than the required minimum (minimum: 1, found: 0)"),
            ),
            (
                policy(&[rule(1, r#"{"tagStatus":"some","countType":"imageCountMoreThan","countNumber":1}"#)]),
                Some(r#"instance value ("some") not found in enum (possible values: ["tagged","untagged","any"])"#),
            ),
            (
                policy(&[rule(1, r#"{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1,"extra":1}"#)]),
                Some(r#"object instance has properties which are not allowed by the schema: ["extra"]"#),
            ),
            (
                policy(&[rule(1, r#"{"tagStatus":"tagged","countType":"imageCountMoreThan","countNumber":1}"#)]),
                Some("the rule with rulePriority 1 has tagStatus 'tagged' and needs a tagPrefixList or a tagPatternList"),
            ),
            (
                policy(&[rule(1, r#"{"tagStatus":"untagged","tagPrefixList":["v"],"countType":"imageCountMoreThan","countNumber":1}"#)]),
                Some("the rule with rulePriority 1: tagPrefixList and tagPatternList can only be used when tagStatus is 'tagged'"),
            ),
            (
                policy(&[rule(1, r#"{"tagStatus":"tagged","tagPrefixList":["v"],"tagPatternList":["v*"],"countType":"imageCountMoreThan","countNumber":1}"#)]),
                Some("the rule with rulePriority 1 specifies both tagPrefixList and tagPatternList; use one of them"),
            ),
            (
                policy(&[rule(1, r#"{"tagStatus":"tagged","tagPatternList":["*a*b*c*d*"],"countType":"imageCountMoreThan","countNumber":1}"#)]),
                Some("the tag pattern '*a*b*c*d*' has more than 4 wildcards (*)"),
            ),
            (
                policy(&[rule(1, r#"{"tagStatus":"untagged","countType":"sinceImagePushed","countNumber":1}"#)]),
                Some("the rule with rulePriority 1: countUnit is required when countType is 'sinceImagePushed'"),
            ),
            (
                policy(&[rule(1, r#"{"tagStatus":"untagged","countType":"imageCountMoreThan","countUnit":"days","countNumber":1}"#)]),
                Some("the rule with rulePriority 1: countUnit can only be used when countType is 'sinceImagePushed'"),
            ),
            (
                policy(&[rule(1, r#"{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"hours","countNumber":1}"#)]),
                Some(r#"instance value ("hours") not found in enum (possible values: ["days"])"#),
            ),
            (
                policy(&[rule(1, untagged), rule(1, r#"{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1}"#)]),
                Some("rulePriority 1 is used by more than one rule; every rule needs its own rulePriority"),
            ),
            (
                policy(&[rule(2, untagged), rule(1, r#"{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1}"#)]),
                Some("the rule with tagStatus 'any' (rulePriority 1) must have the highest rulePriority"),
            ),
            (
                policy(&[rule(1, untagged), rule(2, untagged)]),
                Some("only one rule may have tagStatus 'untagged'"),
            ),
            (
                policy(&[r#"{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"delete"}}"#.to_string()]),
                Some(r#"instance value ("delete") not found in enum (possible values: ["expire","transition"])"#),
            ),
            (
                policy(&[rule(1, r#"{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":"1"}"#)]),
                Some(r#"instance type (string) does not match any allowed primitive type (allowed: ["integer"])"#),
            ),
        ];
        for (document, expected) in cases {
            assert_eq!(parse(&document).err().as_deref(), expected, "{document}");
        }
    }

    /// `(digest, tags, age in days)` images, the policy's rules, and the
    /// digests expected to expire (with their rule) in order.
    fn check(images: &[(&str, &[&str], i64)], rules: &[String], expected: &[(&str, i64)]) {
        let policy = parse(&policy(rules)).unwrap();
        let tags: Vec<Vec<String>> = images
            .iter()
            .map(|(_, tags, _)| tags.iter().map(|t| t.to_string()).collect())
            .collect();
        let images: Vec<Image<'_>> = images
            .iter()
            .zip(&tags)
            .map(|((digest, _, age_days), tags)| Image {
                digest,
                tags,
                pushed_ms: NOW - age_days * MILLIS_PER_DAY,
            })
            .collect();
        let got: Vec<(String, i64)> = plan(&policy, &images, NOW)
            .into_iter()
            .map(|e| (e.digest, e.rule_priority))
            .collect();
        let expected: Vec<(String, i64)> =
            expected.iter().map(|(d, p)| (d.to_string(), *p)).collect();
        assert_eq!(got, expected);
    }

    fn sel(json: &str) -> String {
        json.to_string()
    }

    #[test]
    fn count_rules_keep_the_newest_and_expire_oldest_first() {
        let keep_two_untagged =
            sel(r#"{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":2}"#);
        check(
            &[
                ("a", &[], 1),
                ("b", &[], 2),
                ("c", &[], 3),
                ("d", &[], 4),
                ("t", &["v1"], 9),
            ],
            &[rule(1, &keep_two_untagged)],
            &[("d", 1), ("c", 1)],
        );
    }

    #[test]
    fn age_rules_expire_what_is_older_than_the_days() {
        let older_than_7 = sel(
            r#"{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":7}"#,
        );
        check(
            &[
                ("new", &["x"], 1),
                ("edge", &[], 7),
                ("old", &[], 8),
                ("older", &["y"], 30),
            ],
            &[rule(1, &older_than_7)],
            &[("older", 1), ("old", 1)],
        );
    }

    #[test]
    fn tagged_rules_never_touch_untagged_images_and_need_every_prefix() {
        let prod = sel(
            r#"{"tagStatus":"tagged","tagPrefixList":["prod","v"],"countType":"imageCountMoreThan","countNumber":1}"#,
        );
        check(
            &[
                ("p1", &["prod-1", "v1"], 1),
                ("p2", &["prod-2", "v2"], 2),
                ("only-prod", &["prod-3"], 3),
                ("untagged", &[], 4),
            ],
            &[rule(1, &prod)],
            &[("p2", 1)],
        );
        let pattern = sel(
            r#"{"tagStatus":"tagged","tagPatternList":["*-rc*"],"countType":"sinceImagePushed","countUnit":"days","countNumber":1}"#,
        );
        check(
            &[
                ("rc", &["1.0-rc1"], 5),
                ("final", &["1.0"], 5),
                ("u", &[], 5),
            ],
            &[rule(1, &pattern)],
            &[("rc", 1)],
        );
    }

    #[test]
    fn images_a_higher_rule_selects_are_safe_from_lower_rules() {
        // Rule 1 keeps 2 prod images; rule 2 keeps 1 image of any kind.
        // Prod images are rule 1's alone: rule 2 cannot expire them.
        let prod = sel(
            r#"{"tagStatus":"tagged","tagPrefixList":["prod"],"countType":"imageCountMoreThan","countNumber":2}"#,
        );
        let any = sel(r#"{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1}"#);
        check(
            &[
                ("prod1", &["prod1"], 1),
                ("dev1", &["dev1"], 2),
                ("prod2", &["prod2"], 3),
                ("untagged", &[], 4),
                ("prod3", &["prod3"], 5),
            ],
            &[rule(1, &prod), rule(2, &any)],
            // Rule 1 expires prod3; rule 2 counts prod1 as the one kept
            // and expires the others it may: dev1 and untagged.
            &[("prod3", 1), ("untagged", 2), ("dev1", 2)],
        );
    }

    #[test]
    fn an_image_is_expired_once_by_the_first_rule() {
        let untagged_old = sel(
            r#"{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":1}"#,
        );
        let any_old = sel(
            r#"{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":1}"#,
        );
        check(
            &[("u", &[], 3), ("t", &["x"], 3)],
            &[rule(5, &untagged_old), rule(9, &any_old)],
            &[("u", 5), ("t", 9)],
        );
    }

    #[test]
    fn nothing_expires_under_the_counts() {
        let keep = sel(r#"{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":10}"#);
        check(
            &[("a", &[], 100), ("b", &["x"], 200)],
            &[rule(1, &keep)],
            &[],
        );
        check(&[], &[rule(1, &keep)], &[]);
    }
}
