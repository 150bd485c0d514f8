//! CreateRule, DescribeRules, ModifyRule, DeleteRule, SetRulePriorities and the validation of
//! rule conditions.
//!
//! A listener's default rule is its default actions: it has no record of its own, its ARN is
//! derived from the listener's, DescribeRules lists it last with priority `default` and
//! `IsDefault`, ModifyRule on it changes the listener's default actions (it takes no
//! conditions), and it can be neither deleted nor given a priority (OperationNotPermitted).
//!
//! Limits, as AWS documents them: at most one host-header, http-request-method, path-pattern
//! and source-ip condition per rule (http-header and query-string may repeat); at most 5
//! condition values and 5 wildcards per rule; 100 rules per load balancer, default rules not
//! counted. The guide's "3 match evaluations per condition" is not enforced: the API's
//! quota and its error ("A rule can only have '5' condition values") count per rule.
//! `RegexValues` and `Transforms` are not supported (rejected with a ValidationError naming
//! them).
//!
//! Every write of a rule is checked against the revision of each record it read; creating a
//! rule and setting priorities also rewrite the listener record, so two concurrent writers
//! cannot both claim a priority and DeleteListener cannot miss a rule created meanwhile.

use std::collections::{BTreeMap, BTreeSet};

use api::{ApiError, RequestContext};
use elbv2_wire::{
    CreateRuleInput, CreateRuleOutput, DeleteRuleInput, DeleteRuleOutput, DescribeRulesInput,
    DescribeRulesOutput, HostHeaderConditionConfig, HttpHeaderConditionConfig,
    HttpRequestMethodConditionConfig, ModifyListenerInput, ModifyRuleInput, ModifyRuleOutput,
    PathPatternConditionConfig, QueryStringConditionConfig, QueryStringKeyValuePair, Rule,
    RuleCondition, SetRulePrioritiesInput, SetRulePrioritiesOutput, SourceIpConditionConfig,
};

use crate::ids::{self, rule_not_found};
use crate::listeners::validate_actions;
use crate::records::{self, ListenerRecord, RuleRecord, Versioned, Write};
use crate::{error, paginate, reject_unsupported, tags, validation, Elbv2};

/// Rules per load balancer, default rules not counted.
pub(crate) const MAX_RULES_PER_LOAD_BALANCER: usize = 100;
const MAX_CONDITION_VALUES_PER_RULE: usize = 5;
const MAX_WILDCARDS_PER_RULE: usize = 5;
/// Longest host, path, header value or query string value.
const MAX_VALUE_CHARS: usize = 128;
const MAX_HEADER_NAME_CHARS: usize = 40;
const MAX_METHOD_CHARS: usize = 40;

const FIELDS: [&str; 6] = [
    "host-header",
    "path-pattern",
    "http-header",
    "query-string",
    "http-request-method",
    "source-ip",
];
/// The fields a rule may use only once.
const ONCE_PER_RULE: [&str; 4] = [
    "host-header",
    "path-pattern",
    "http-request-method",
    "source-ip",
];

/// Checks a rule's conditions and returns them normalised: each carries its `*Config`
/// member, and host-header and path-pattern conditions carry `Values` too (the legacy form
/// and the config form describe alike, as on AWS).
pub(crate) fn validate_conditions(
    conditions: Vec<RuleCondition>,
) -> Result<Vec<RuleCondition>, ApiError> {
    if conditions.is_empty() {
        return Err(validation("A rule must have at least one condition"));
    }
    let mut once = BTreeSet::new();
    let (mut values, mut wildcards) = (0, 0);
    let mut normalised = Vec::new();
    for condition in conditions {
        let condition = normalise_condition(condition)?;
        let field = condition.field.clone().unwrap_or_default();
        if ONCE_PER_RULE.contains(&field.as_str()) && !once.insert(field.clone()) {
            return Err(validation(format!(
                "A rule can only have one '{field}' condition"
            )));
        }
        let (condition_values, condition_wildcards) = match_evaluations(&condition);
        values += condition_values;
        wildcards += condition_wildcards;
        normalised.push(condition);
    }
    if values > MAX_CONDITION_VALUES_PER_RULE {
        return Err(validation(format!(
            "A rule can only have '{MAX_CONDITION_VALUES_PER_RULE}' condition values"
        )));
    }
    if wildcards > MAX_WILDCARDS_PER_RULE {
        return Err(validation(format!(
            "A rule can only have '{MAX_WILDCARDS_PER_RULE}' wildcards"
        )));
    }
    Ok(normalised)
}

fn normalise_condition(condition: RuleCondition) -> Result<RuleCondition, ApiError> {
    let regex_given = condition.regex_values.is_some()
        || condition
            .host_header_config
            .as_ref()
            .is_some_and(|config| config.regex_values.is_some())
        || condition
            .path_pattern_config
            .as_ref()
            .is_some_and(|config| config.regex_values.is_some())
        || condition
            .http_header_config
            .as_ref()
            .is_some_and(|config| config.regex_values.is_some());
    reject_unsupported(&[("RegexValues", regex_given)])?;
    let field = condition
        .field
        .clone()
        .filter(|field| !field.is_empty())
        .ok_or_else(|| validation("A condition field must be specified"))?;
    if !FIELDS.contains(&field.as_str()) {
        return Err(validation(format!(
            "Condition field '{field}' must be one of '[{}]'",
            FIELDS.join(", ")
        )));
    }
    let configs = [
        (
            "host-header",
            "HostHeaderConfig",
            condition.host_header_config.is_some(),
        ),
        (
            "path-pattern",
            "PathPatternConfig",
            condition.path_pattern_config.is_some(),
        ),
        (
            "http-header",
            "HttpHeaderConfig",
            condition.http_header_config.is_some(),
        ),
        (
            "query-string",
            "QueryStringConfig",
            condition.query_string_config.is_some(),
        ),
        (
            "http-request-method",
            "HttpRequestMethodConfig",
            condition.http_request_method_config.is_some(),
        ),
        (
            "source-ip",
            "SourceIpConfig",
            condition.source_ip_config.is_some(),
        ),
    ];
    for (config_field, config_name, present) in configs {
        if present && config_field != field {
            return Err(validation(format!(
                "{config_name} can only be specified for a condition of type '{config_field}', \
                 not '{field}'"
            )));
        }
    }
    let config_name = configs
        .iter()
        .find(|(config_field, _, _)| *config_field == field)
        .map(|(_, name, _)| *name)
        .unwrap_or_default();
    // An empty `Values` list is what botocore sends for `Values=[]`: no values.
    let legacy = condition.values.clone().filter(|values| !values.is_empty());
    let config_given = configs
        .iter()
        .any(|(config_field, _, present)| *config_field == field && *present);
    if legacy.is_some() && config_given {
        return Err(validation(format!(
            "You cannot provide both Values and '{config_name}' for a condition of type '{field}'"
        )));
    }
    if legacy.is_some() && !matches!(field.as_str(), "host-header" | "path-pattern") {
        return Err(validation(format!(
            "Values can only be specified for host-header and path-pattern conditions; use \
             {config_name} for a condition of type '{field}'"
        )));
    }
    // The legacy form takes a single host name or path pattern; more go in the config.
    if legacy.as_ref().is_some_and(|values| values.len() > 1) {
        return Err(validation(format!(
            "Values can hold only one value for a condition of type '{field}'; use \
             {config_name} to specify more"
        )));
    }
    let required = |values: Vec<String>| -> Result<Vec<String>, ApiError> {
        if values.is_empty() {
            Err(validation("A condition value must be specified"))
        } else {
            Ok(values)
        }
    };
    // host-header and path-pattern: the legacy `Values` or the config's, each
    // checked.
    let wildcard_values = |config_values: Option<Vec<String>>,
                           validate: fn(&str) -> Result<(), ApiError>|
     -> Result<Vec<String>, ApiError> {
        let values = required(
            legacy
                .clone()
                .unwrap_or_else(|| config_values.unwrap_or_default()),
        )?;
        for value in &values {
            validate(value)?;
        }
        Ok(values)
    };
    let normalised = match field.as_str() {
        "host-header" => {
            let values = wildcard_values(
                condition
                    .host_header_config
                    .and_then(|config| config.values),
                validate_host,
            )?;
            RuleCondition {
                values: Some(values.clone()),
                host_header_config: Some(HostHeaderConditionConfig {
                    values: Some(values),
                    regex_values: None,
                }),
                ..Default::default()
            }
        }
        "path-pattern" => {
            let values = wildcard_values(
                condition
                    .path_pattern_config
                    .and_then(|config| config.values),
                validate_path_pattern,
            )?;
            RuleCondition {
                values: Some(values.clone()),
                path_pattern_config: Some(PathPatternConditionConfig {
                    values: Some(values),
                    regex_values: None,
                }),
                ..Default::default()
            }
        }
        "http-header" => {
            let config = condition.http_header_config.unwrap_or_default();
            let name = config.http_header_name.unwrap_or_default();
            validate_header_name(&name)?;
            let values = required(config.values.unwrap_or_default())?;
            for value in &values {
                validate_visible_ascii("HTTP header value", value)?;
            }
            RuleCondition {
                http_header_config: Some(HttpHeaderConditionConfig {
                    http_header_name: Some(name),
                    values: Some(values),
                    regex_values: None,
                }),
                ..Default::default()
            }
        }
        "query-string" => {
            let pairs = condition
                .query_string_config
                .and_then(|config| config.values)
                .unwrap_or_default();
            if pairs.is_empty() {
                return Err(validation("A condition value must be specified"));
            }
            for pair in &pairs {
                if let Some(key) = &pair.key {
                    validate_visible_ascii("Query string key", key)?;
                }
                match &pair.value {
                    Some(value) if !value.is_empty() => {
                        validate_visible_ascii("Query string value", value)?
                    }
                    _ => return Err(validation(
                        "A query string condition value must be specified for every key/value pair",
                    )),
                }
            }
            RuleCondition {
                query_string_config: Some(QueryStringConditionConfig {
                    values: Some(
                        pairs
                            .into_iter()
                            .map(|pair| QueryStringKeyValuePair {
                                key: pair.key.filter(|key| !key.is_empty()),
                                value: pair.value,
                            })
                            .collect(),
                    ),
                }),
                ..Default::default()
            }
        }
        "http-request-method" => {
            let values = required(
                condition
                    .http_request_method_config
                    .and_then(|config| config.values)
                    .unwrap_or_default(),
            )?;
            for value in &values {
                let valid = value.len() <= MAX_METHOD_CHARS
                    && value
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c == '-' || c == '_');
                if !valid {
                    return Err(validation(format!(
                        "The HTTP request method '{value}' is not valid: use up to \
                         {MAX_METHOD_CHARS} characters A-Z, '-' and '_' (for example GET)"
                    )));
                }
            }
            RuleCondition {
                http_request_method_config: Some(HttpRequestMethodConditionConfig {
                    values: Some(values),
                }),
                ..Default::default()
            }
        }
        _ => {
            // source-ip
            let values = required(
                condition
                    .source_ip_config
                    .and_then(|config| config.values)
                    .unwrap_or_default(),
            )?;
            for value in &values {
                load_balancer::Cidr::parse(value).map_err(|_| {
                    validation(format!(
                        "The source IP '{value}' is not a valid CIDR block such as 10.0.0.0/8 \
                         or 2001:db8::/32"
                    ))
                })?;
            }
            RuleCondition {
                source_ip_config: Some(SourceIpConditionConfig {
                    values: Some(values),
                }),
                ..Default::default()
            }
        }
    };
    Ok(RuleCondition {
        field: Some(field),
        ..normalised
    })
}

/// (condition values, wildcards) of a normalised condition.
fn match_evaluations(condition: &RuleCondition) -> (usize, usize) {
    // `\*` and `\?` are literal characters (query strings), not wildcards.
    let wildcards = |text: &str| {
        let mut count = 0;
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    chars.next();
                }
                '*' | '?' => count += 1,
                _ => {}
            }
        }
        count
    };
    let strings = |values: &Option<Vec<String>>| -> (usize, usize) {
        let values = values.as_deref().unwrap_or_default();
        (
            values.len(),
            values.iter().map(|value| wildcards(value)).sum(),
        )
    };
    if let Some(config) = &condition.host_header_config {
        return strings(&config.values);
    }
    if let Some(config) = &condition.path_pattern_config {
        return strings(&config.values);
    }
    if let Some(config) = &condition.http_header_config {
        return strings(&config.values);
    }
    if let Some(config) = &condition.query_string_config {
        let pairs = config.values.as_deref().unwrap_or_default();
        let count = pairs
            .iter()
            .map(|pair| {
                pair.key.as_deref().map_or(0, wildcards)
                    + pair.value.as_deref().map_or(0, wildcards)
            })
            .sum();
        return (pairs.len(), count);
    }
    if let Some(config) = &condition.http_request_method_config {
        return (config.values.as_deref().unwrap_or_default().len(), 0);
    }
    if let Some(config) = &condition.source_ip_config {
        return (config.values.as_deref().unwrap_or_default().len(), 0);
    }
    (0, 0)
}

fn too_long(what: &str, value: &str) -> ApiError {
    validation(format!(
        "{what} '{value}' is longer than {MAX_VALUE_CHARS} characters"
    ))
}

/// A-Z, a-z, 0-9, `-`, `.`, `*`, `?`; at least one `.`, only letters after the last one.
fn validate_host(value: &str) -> Result<(), ApiError> {
    if value.len() > MAX_VALUE_CHARS {
        return Err(too_long("The host header value", value));
    }
    let valid_chars = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '*' | '?'));
    let valid_ending = value
        .rsplit_once('.')
        .is_some_and(|(_, last)| !last.is_empty() && last.chars().all(|c| c.is_ascii_alphabetic()));
    if valid_chars && valid_ending {
        Ok(())
    } else {
        Err(validation(format!(
            "The host header value '{value}' is not valid: use A-Z, a-z, 0-9, '-', '.' and the \
             wildcards '*' and '?', with at least one '.' and only letters after the last '.' \
             (for example *.example.com)"
        )))
    }
}

/// A-Z, a-z, 0-9, `_ - . $ / ~ " ' @ : + &`, `*`, `?`.
fn validate_path_pattern(value: &str) -> Result<(), ApiError> {
    if value.len() > MAX_VALUE_CHARS {
        return Err(too_long("The path pattern", value));
    }
    let valid = value.chars().all(|c| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                '_' | '-' | '.' | '$' | '/' | '~' | '"' | '\'' | '@' | ':' | '+' | '&' | '*' | '?'
            )
    });
    if valid {
        Ok(())
    } else {
        Err(validation(format!(
            "The path pattern '{value}' is not valid: use A-Z, a-z, 0-9, _ - . $ / ~ \" ' @ : + \
             & and the wildcards '*' and '?' (for example /img/*)"
        )))
    }
}

/// An RFC 7230 token of at most 40 characters, and not `Host`.
fn validate_header_name(name: &str) -> Result<(), ApiError> {
    let token = !name.is_empty()
        && name.len() <= MAX_HEADER_NAME_CHARS
        && name.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    '!' | '#'
                        | '$'
                        | '%'
                        | '&'
                        | '\''
                        | '*'
                        | '+'
                        | '-'
                        | '.'
                        | '^'
                        | '_'
                        | '`'
                        | '|'
                        | '~'
                )
        });
    if !token {
        return Err(validation(format!(
            "The HTTP header name '{name}' is not valid: use an HTTP header field name of 1 to \
             {MAX_HEADER_NAME_CHARS} characters (RFC 7230), without wildcards"
        )));
    }
    if name.eq_ignore_ascii_case("host") {
        return Err(validation(
            "An http-header condition cannot match the Host header; use a host-header condition",
        ));
    }
    Ok(())
}

/// At most 128 visible ASCII characters (spaces allowed, no control characters).
fn validate_visible_ascii(what: &str, value: &str) -> Result<(), ApiError> {
    if value.len() > MAX_VALUE_CHARS {
        return Err(too_long(what, value));
    }
    if value.chars().all(|c| (' '..='~').contains(&c)) {
        Ok(())
    } else {
        Err(validation(format!(
            "{what} '{value}' is not valid: rules apply to visible ASCII characters only"
        )))
    }
}

/// A rule found by ARN.
enum FoundRule {
    Stored {
        key: String,
        rule: Versioned<RuleRecord>,
    },
    Default {
        listener: Versioned<ListenerRecord>,
    },
}

/// The order of rules in DescribeRules (and its markers): by listener, then priority, the
/// default rule last.
fn sort_key(listener_arn: &str, priority: Option<i32>) -> String {
    match priority {
        Some(priority) => format!("{listener_arn}/{priority:05}"),
        None => format!("{listener_arn}/default"),
    }
}

fn priority_in_use(priority: i32) -> ApiError {
    error(
        "PriorityInUse",
        format!("Priority '{priority}' is currently in use"),
    )
}

impl Elbv2 {
    pub(crate) fn rule_wire(record: &RuleRecord) -> Rule {
        Rule {
            rule_arn: Some(record.arn.clone()),
            priority: Some(record.priority.to_string()),
            conditions: Some(record.conditions.clone()),
            actions: Some(record.actions.clone()),
            is_default: Some(false),
            transforms: None,
        }
    }

    fn default_rule_wire(listener: &ListenerRecord) -> Rule {
        Rule {
            rule_arn: Some(ids::default_rule_arn(&listener.arn)),
            priority: Some("default".to_string()),
            conditions: Some(Vec::new()),
            actions: Some(listener.default_actions.clone()),
            is_default: Some(true),
            transforms: None,
        }
    }

    async fn find_rule(&self, ctx: &RequestContext, arn: &str) -> Result<FoundRule, ApiError> {
        let parts = ids::parse_rule_arn(ctx, arn)?;
        let listener_arn = parts.listener_arn(ctx);
        if parts.rule_id == ids::default_rule_id(&listener_arn) {
            return match self.find_listener(ctx, &listener_arn).await {
                Ok((_, listener)) => Ok(FoundRule::Default { listener }),
                Err(err) if err.code == "ListenerNotFound" => Err(rule_not_found()),
                Err(err) => Err(err),
            };
        }
        let key = records::rule_key(&ctx.region, parts.lb_name, parts.listener_id, parts.rule_id);
        match records::get::<RuleRecord>(self.store(), &key).await? {
            Some(rule) if rule.value.arn == arn => Ok(FoundRule::Stored { key, rule }),
            _ => Err(rule_not_found()),
        }
    }

    /// The store key of a taggable rule, or of the listener whose default rule `arn` is.
    pub(crate) async fn rule_tag_key(
        &self,
        ctx: &RequestContext,
        arn: &str,
    ) -> Result<(String, bool), ApiError> {
        match self.find_rule(ctx, arn).await? {
            FoundRule::Stored { key, .. } => Ok((key, false)),
            FoundRule::Default { listener } => {
                let (lb_name, id) = ids::parse_listener_arn(ctx, &listener.value.arn)?;
                Ok((records::listener_key(&ctx.region, lb_name, id), true))
            }
        }
    }

    pub(crate) async fn create_rule(
        &self,
        ctx: &RequestContext,
        request: CreateRuleInput,
    ) -> Result<CreateRuleOutput, ApiError> {
        reject_unsupported(&[("Transforms", request.transforms.is_some())])?;
        let listener_arn = request.listener_arn.clone().unwrap_or_default();
        let priority = request
            .priority
            .ok_or_else(|| validation("A rule priority must be specified"))?;
        let conditions = validate_conditions(request.conditions.unwrap_or_default())?;
        let actions = validate_actions(request.actions.unwrap_or_default())?;
        let tags = tags::validate_new(request.tags.as_deref())?;
        for _ in 0..records::MAX_CAS_ATTEMPTS {
            let (listener_key, listener) = self.find_listener(ctx, &listener_arn).await?;
            let (lb_name, lb_id, listener_id) = ids::parse_listener_arn_parts(ctx, &listener_arn)?;
            let rules = records::list::<RuleRecord>(
                self.store(),
                &records::load_balancer_rules_prefix(&ctx.region, lb_name),
            )
            .await?;
            if rules.iter().any(|(_, rule)| {
                rule.value.listener_arn == listener_arn && rule.value.priority == priority
            }) {
                return Err(priority_in_use(priority));
            }
            if rules.len() >= MAX_RULES_PER_LOAD_BALANCER {
                return Err(error(
                    "TooManyRules",
                    format!(
                        "A load balancer can have at most {MAX_RULES_PER_LOAD_BALANCER} rules \
                         besides its listeners' default rules; delete a rule first"
                    ),
                ));
            }
            let id = ids::new_id(ctx, "rule", &format!("{listener_id}:{priority}"));
            let record = RuleRecord {
                arn: ids::rule_arn(ctx, lb_name, lb_id, listener_id, &id),
                listener_arn: listener_arn.clone(),
                priority,
                conditions: conditions.clone(),
                actions: actions.clone(),
                tags: tags.clone(),
            };
            let key = records::rule_key(&ctx.region, lb_name, listener_id, &id);
            let mut write = Write::new()
                .expect(&listener_key, listener.mod_revision)
                .put(&listener_key, &listener.value)
                .expect(&key, 0)
                .put(&key, &record);
            for group in &mut self
                .target_groups_for(ctx, &record.target_group_arns())
                .await?
            {
                let group_key = records::target_group_key(&ctx.region, &group.value.name);
                group.value.used_by_rules.insert(record.arn.clone());
                group.value.refresh_load_balancer_arns();
                write = write
                    .expect(&group_key, group.mod_revision)
                    .put(&group_key, &group.value);
            }
            if write.commit(self.store()).await? {
                return Ok(CreateRuleOutput {
                    rules: Some(vec![Self::rule_wire(&record)]),
                });
            }
        }
        Err(records::too_much_contention("rules"))
    }

    pub(crate) async fn describe_rules(
        &self,
        ctx: &RequestContext,
        request: DescribeRulesInput,
    ) -> Result<DescribeRulesOutput, ApiError> {
        let arns = request.rule_arns.unwrap_or_default();
        let mut selected: Vec<(String, Rule)> = match (&request.listener_arn, arns.is_empty()) {
            (Some(_), false) => {
                return Err(validation(
                    "A listener ARN and rule ARNs cannot be specified together",
                ))
            }
            (None, true) => {
                return Err(validation(
                    "You must specify either a listener ARN or rule ARNs",
                ))
            }
            (Some(listener_arn), true) => {
                let (_, listener) = self.find_listener(ctx, listener_arn).await?;
                let (lb_name, listener_id) = ids::parse_listener_arn(ctx, listener_arn)?;
                let mut rules: Vec<(String, Rule)> = records::list::<RuleRecord>(
                    self.store(),
                    &records::rules_prefix(&ctx.region, lb_name, listener_id),
                )
                .await?
                .into_iter()
                .map(|(_, rule)| {
                    (
                        sort_key(listener_arn, Some(rule.value.priority)),
                        Self::rule_wire(&rule.value),
                    )
                })
                .collect();
                rules.push((
                    sort_key(listener_arn, None),
                    Self::default_rule_wire(&listener.value),
                ));
                rules
            }
            (None, false) => {
                let mut found = Vec::new();
                for arn in &arns {
                    found.push(match self.find_rule(ctx, arn).await? {
                        FoundRule::Stored { rule, .. } => (
                            sort_key(&rule.value.listener_arn, Some(rule.value.priority)),
                            Self::rule_wire(&rule.value),
                        ),
                        FoundRule::Default { listener } => (
                            sort_key(&listener.value.arn, None),
                            Self::default_rule_wire(&listener.value),
                        ),
                    });
                }
                found
            }
        };
        selected.sort_by(|a, b| a.0.cmp(&b.0));
        selected.dedup_by(|a, b| a.0 == b.0);
        let (page, next_marker) = paginate(
            selected,
            request.marker.as_deref(),
            crate::page_size(request.page_size),
        );
        Ok(DescribeRulesOutput {
            rules: Some(page),
            next_marker,
        })
    }

    pub(crate) async fn modify_rule(
        &self,
        ctx: &RequestContext,
        request: ModifyRuleInput,
    ) -> Result<ModifyRuleOutput, ApiError> {
        reject_unsupported(&[("Transforms", request.transforms.is_some())])?;
        let arn = request.rule_arn.clone().unwrap_or_default();
        if let FoundRule::Default { listener } = self.find_rule(ctx, &arn).await? {
            if request.conditions.is_some() {
                return Err(validation(
                    "The default rule cannot have conditions; modify only its actions",
                ));
            }
            let Some(actions) = request.actions else {
                return Ok(ModifyRuleOutput {
                    rules: Some(vec![Self::default_rule_wire(&listener.value)]),
                });
            };
            let modified = self
                .modify_listener(
                    ctx,
                    ModifyListenerInput {
                        listener_arn: Some(listener.value.arn.clone()),
                        default_actions: Some(actions),
                        ..Default::default()
                    },
                )
                .await?;
            let default_actions = modified
                .listeners
                .into_iter()
                .flatten()
                .next()
                .and_then(|listener| listener.default_actions)
                .unwrap_or_default();
            return Ok(ModifyRuleOutput {
                rules: Some(vec![Self::default_rule_wire(&ListenerRecord {
                    default_actions,
                    ..listener.value
                })]),
            });
        }
        let conditions = request.conditions.map(validate_conditions).transpose()?;
        let actions = request.actions.map(validate_actions).transpose()?;
        for _ in 0..records::MAX_CAS_ATTEMPTS {
            let FoundRule::Stored { key, rule } = self.find_rule(ctx, &arn).await? else {
                return Err(rule_not_found());
            };
            let mut updated = rule.value.clone();
            if let Some(conditions) = &conditions {
                updated.conditions = conditions.clone();
            }
            if let Some(actions) = &actions {
                updated.actions = actions.clone();
            }
            let before = rule.value.target_group_arns();
            let after = updated.target_group_arns();
            let mut groups = self.target_groups_for(ctx, &after).await?;
            let released: BTreeSet<String> = before.difference(&after).cloned().collect();
            groups.extend(self.existing_target_groups(ctx, &released).await?);
            let mut write = Write::new()
                .expect(&key, rule.mod_revision)
                .put(&key, &updated);
            for group in &mut groups {
                let group_key = records::target_group_key(&ctx.region, &group.value.name);
                if after.contains(&group.value.arn) {
                    group.value.used_by_rules.insert(arn.clone());
                } else {
                    group.value.used_by_rules.remove(&arn);
                }
                group.value.refresh_load_balancer_arns();
                write = write
                    .expect(&group_key, group.mod_revision)
                    .put(&group_key, &group.value);
            }
            if write.commit(self.store()).await? {
                return Ok(ModifyRuleOutput {
                    rules: Some(vec![Self::rule_wire(&updated)]),
                });
            }
        }
        Err(records::too_much_contention("rules"))
    }

    pub(crate) async fn delete_rule(
        &self,
        ctx: &RequestContext,
        request: DeleteRuleInput,
    ) -> Result<DeleteRuleOutput, ApiError> {
        let arn = request.rule_arn.unwrap_or_default();
        for _ in 0..records::MAX_CAS_ATTEMPTS {
            let (key, rule) =
                match self.find_rule(ctx, &arn).await? {
                    FoundRule::Stored { key, rule } => (key, rule),
                    FoundRule::Default { .. } => return Err(error(
                        "OperationNotPermitted",
                        "The default rule of a listener cannot be deleted; delete the listener \
                         or change its default actions instead",
                    )),
                };
            let mut write = Write::new().expect(&key, rule.mod_revision).delete(&key);
            for group in &mut self
                .existing_target_groups(ctx, &rule.value.target_group_arns())
                .await?
            {
                let group_key = records::target_group_key(&ctx.region, &group.value.name);
                group.value.used_by_rules.remove(&arn);
                group.value.refresh_load_balancer_arns();
                write = write
                    .expect(&group_key, group.mod_revision)
                    .put(&group_key, &group.value);
            }
            if write.commit(self.store()).await? {
                return Ok(DeleteRuleOutput {});
            }
        }
        Err(records::too_much_contention("rules"))
    }

    pub(crate) async fn set_rule_priorities(
        &self,
        ctx: &RequestContext,
        request: SetRulePrioritiesInput,
    ) -> Result<SetRulePrioritiesOutput, ApiError> {
        let mut wanted: Vec<(String, i32)> = Vec::new();
        let (mut priorities, mut arns) = (BTreeSet::new(), BTreeSet::new());
        for pair in request.rule_priorities.unwrap_or_default() {
            let arn = pair.rule_arn.unwrap_or_default();
            let priority = pair.priority.ok_or_else(|| {
                validation(format!("A priority must be specified for rule '{arn}'"))
            })?;
            if !priorities.insert(priority) {
                return Err(validation(format!(
                    "Priority '{priority}' was provided multiple times"
                )));
            }
            if !arns.insert(arn.clone()) {
                return Err(validation(format!(
                    "Rule '{arn}' was provided multiple times"
                )));
            }
            wanted.push((arn, priority));
        }
        for _ in 0..records::MAX_CAS_ATTEMPTS {
            let mut changed: Vec<(String, Versioned<RuleRecord>, i32)> = Vec::new();
            for (arn, priority) in &wanted {
                match self.find_rule(ctx, arn).await? {
                    FoundRule::Stored { key, rule } => changed.push((key, rule, *priority)),
                    FoundRule::Default { .. } => {
                        return Err(error(
                            "OperationNotPermitted",
                            "The priority of a listener's default rule cannot be changed",
                        ))
                    }
                }
            }
            let listener_arns: BTreeSet<&str> = changed
                .iter()
                .map(|(_, rule, _)| rule.value.listener_arn.as_str())
                .collect();
            let mut write = Write::new();
            for listener_arn in listener_arns {
                let (listener_key, listener) = self.find_listener(ctx, listener_arn).await?;
                write = write
                    .expect(&listener_key, listener.mod_revision)
                    .put(&listener_key, &listener.value);
                let (lb_name, listener_id) = ids::parse_listener_arn(ctx, listener_arn)?;
                let mut final_priorities: BTreeMap<String, i32> = records::list::<RuleRecord>(
                    self.store(),
                    &records::rules_prefix(&ctx.region, lb_name, listener_id),
                )
                .await?
                .into_iter()
                .map(|(_, rule)| (rule.value.arn, rule.value.priority))
                .collect();
                for (_, rule, priority) in &changed {
                    final_priorities.insert(rule.value.arn.clone(), *priority);
                }
                let mut taken = BTreeSet::new();
                for priority in final_priorities.values() {
                    if !taken.insert(*priority) {
                        return Err(priority_in_use(*priority));
                    }
                }
            }
            let mut updated = Vec::new();
            for (key, rule, priority) in &changed {
                let record = RuleRecord {
                    priority: *priority,
                    ..rule.value.clone()
                };
                write = write.expect(key, rule.mod_revision).put(key, &record);
                updated.push(record);
            }
            if write.commit(self.store()).await? {
                updated.sort_by(|a, b| {
                    sort_key(&a.listener_arn, Some(a.priority))
                        .cmp(&sort_key(&b.listener_arn, Some(b.priority)))
                });
                return Ok(SetRulePrioritiesOutput {
                    rules: Some(updated.iter().map(Self::rule_wire).collect()),
                });
            }
        }
        Err(records::too_much_contention("rules"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition(field: &str, edit: impl FnOnce(&mut RuleCondition)) -> RuleCondition {
        let mut condition = RuleCondition {
            field: Some(field.to_string()),
            ..Default::default()
        };
        edit(&mut condition);
        condition
    }

    fn strings(values: &[&str]) -> Option<Vec<String>> {
        Some(values.iter().map(|value| value.to_string()).collect())
    }

    fn path(values: &[&str]) -> RuleCondition {
        condition("path-pattern", |c| {
            c.path_pattern_config = Some(PathPatternConditionConfig {
                values: strings(values),
                regex_values: None,
            })
        })
    }

    /// `Ok` conditions must normalise to `expected` (when given); `Err` must mention the text.
    fn check(conditions: Vec<RuleCondition>, expected: Result<Option<Vec<RuleCondition>>, &str>) {
        match (validate_conditions(conditions.clone()), expected) {
            (Ok(normalised), Ok(Some(expected))) => assert_eq!(normalised, expected),
            (Ok(_), Ok(None)) => {}
            (Err(err), Err(text)) => {
                assert_eq!(err.code, "ValidationError");
                assert!(
                    err.message.contains(text),
                    "{} does not mention {text:?}",
                    err.message
                );
            }
            (result, expected) => {
                panic!("{conditions:?}: got {result:?}, expected {expected:?}")
            }
        }
    }

    #[test]
    fn legacy_values_and_config_forms_normalise_alike() {
        let normalised = vec![condition("path-pattern", |c| {
            c.values = strings(&["/api/*"]);
            c.path_pattern_config = Some(PathPatternConditionConfig {
                values: strings(&["/api/*"]),
                regex_values: None,
            });
        })];
        check(
            vec![condition("path-pattern", |c| {
                c.values = strings(&["/api/*"])
            })],
            Ok(Some(normalised.clone())),
        );
        check(vec![path(&["/api/*"])], Ok(Some(normalised)));
        check(
            vec![condition("host-header", |c| {
                c.values = strings(&["*.example.com"])
            })],
            Ok(Some(vec![condition("host-header", |c| {
                c.values = strings(&["*.example.com"]);
                c.host_header_config = Some(HostHeaderConditionConfig {
                    values: strings(&["*.example.com"]),
                    regex_values: None,
                });
            })])),
        );
        // The legacy form holds one value; more go in the config.
        for field in ["path-pattern", "host-header"] {
            check(
                vec![condition(field, |c| {
                    c.values = strings(&["/a", "/b"]);
                })],
                Err("Values can hold only one value"),
            );
        }
        // An empty legacy list (botocore's `Values=[]`) is no values.
        let empty_legacy = condition("http-request-method", |c| {
            c.values = Some(vec![]);
            c.http_request_method_config = Some(HttpRequestMethodConditionConfig {
                values: strings(&["POST"]),
            });
        });
        check(
            vec![empty_legacy],
            Ok(Some(vec![condition("http-request-method", |c| {
                c.http_request_method_config = Some(HttpRequestMethodConditionConfig {
                    values: strings(&["POST"]),
                })
            })])),
        );
    }

    #[test]
    fn every_field_is_validated() {
        let header = |name: &str, values: &[&str]| {
            condition("http-header", |c| {
                c.http_header_config = Some(HttpHeaderConditionConfig {
                    http_header_name: Some(name.to_string()),
                    values: strings(values),
                    regex_values: None,
                })
            })
        };
        let query = |pairs: &[(Option<&str>, Option<&str>)]| {
            condition("query-string", |c| {
                c.query_string_config = Some(QueryStringConditionConfig {
                    values: Some(
                        pairs
                            .iter()
                            .map(|(key, value)| QueryStringKeyValuePair {
                                key: key.map(str::to_string),
                                value: value.map(str::to_string),
                            })
                            .collect(),
                    ),
                })
            })
        };
        let method = |values: &[&str]| {
            condition("http-request-method", |c| {
                c.http_request_method_config = Some(HttpRequestMethodConditionConfig {
                    values: strings(values),
                })
            })
        };
        let source = |values: &[&str]| {
            condition("source-ip", |c| {
                c.source_ip_config = Some(SourceIpConditionConfig {
                    values: strings(values),
                })
            })
        };
        let host = |values: &[&str]| {
            condition("host-header", |c| {
                c.host_header_config = Some(HostHeaderConditionConfig {
                    values: strings(values),
                    regex_values: None,
                })
            })
        };
        check(
            vec![
                path(&["/img/*.png"]),
                header("User-Agent", &["*Mobile*"]),
                query(&[(Some("version"), Some("v1")), (None, Some("beta"))]),
            ],
            Ok(None),
        );
        check(
            vec![
                method(&["GET", "PATCH_X"]),
                source(&["10.0.0.0/8", "2001:db8::/32"]),
            ],
            Ok(None),
        );
        check(vec![], Err("at least one condition"));
        check(
            vec![condition("", |_| {})],
            Err("A condition field must be specified"),
        );
        check(
            vec![condition("cookie", |_| {})],
            Err("Condition field 'cookie' must be one of"),
        );
        check(vec![path(&[])], Err("A condition value must be specified"));
        check(
            vec![condition("host-header", |c| {
                c.values = strings(&["a.example.com"]);
                c.host_header_config = Some(HostHeaderConditionConfig {
                    values: strings(&["b.example.com"]),
                    regex_values: None,
                });
            })],
            Err("You cannot provide both Values and 'HostHeaderConfig' for a condition of type 'host-header'"),
        );
        check(
            vec![condition("path-pattern", |c| {
                c.host_header_config = Some(HostHeaderConditionConfig::default())
            })],
            Err("HostHeaderConfig can only be specified for a condition of type 'host-header'"),
        );
        check(
            vec![condition("source-ip", |c| {
                c.values = strings(&["10.0.0.0/8"])
            })],
            Err("use SourceIpConfig"),
        );
        check(
            vec![condition("path-pattern", |c| {
                c.path_pattern_config = Some(PathPatternConditionConfig {
                    values: None,
                    regex_values: strings(&["^/a"]),
                })
            })],
            Err("RegexValues"),
        );
        check(
            vec![path(&["/a b"])],
            Err("The path pattern '/a b' is not valid"),
        );
        check(
            vec![path(&[&format!("/{}", "a".repeat(128))])],
            Err("longer than 128"),
        );
        check(vec![host(&["localhost"])], Err("is not valid"));
        check(
            vec![host(&["example.c0m"])],
            Err("only letters after the last '.'"),
        );
        check(vec![host(&["api.example.com"])], Ok(None));
        check(
            vec![header("Host", &["x"])],
            Err("use a host-header condition"),
        );
        check(vec![header("Bad Name", &["x"])], Err("HTTP header name"));
        check(vec![header("X-A", &["tab\there"])], Err("visible ASCII"));
        check(
            vec![query(&[(Some("k"), None)])],
            Err("query string condition value"),
        );
        check(vec![method(&["get"])], Err("HTTP request method 'get'"));
        check(vec![source(&["10.0.0.1"])], Err("not a valid CIDR block"));
        check(
            vec![path(&["/a"]), path(&["/b"])],
            Err("A rule can only have one 'path-pattern' condition"),
        );
        check(vec![header("X-A", &["1"]), header("X-B", &["2"])], Ok(None));
    }

    #[test]
    fn a_rule_has_at_most_five_values_and_five_wildcards() {
        check(vec![path(&["/1", "/2", "/3", "/4", "/5"])], Ok(None));
        check(
            vec![
                path(&["/1", "/2", "/3"]),
                condition("http-request-method", |c| {
                    c.http_request_method_config = Some(HttpRequestMethodConditionConfig {
                        values: strings(&["GET", "PUT", "POST"]),
                    })
                }),
            ],
            Err("A rule can only have '5' condition values"),
        );
        check(
            vec![path(&["/1", "/2", "/3", "/4", "/5", "/6"])],
            Err("'5' condition values"),
        );
        check(vec![path(&["/*/*/*", "/?/?"])], Ok(None));
        check(
            vec![path(&["/*/*/*", "/?/?/?"])],
            Err("A rule can only have '5' wildcards"),
        );
        // An escaped wildcard in a query string is a literal character.
        check(
            vec![condition("query-string", |c| {
                c.query_string_config = Some(QueryStringConditionConfig {
                    values: Some(vec![QueryStringKeyValuePair {
                        key: Some("q".into()),
                        value: Some(r"\*\*\*\*\*\*".into()),
                    }]),
                })
            })],
            Ok(None),
        );
    }

    #[test]
    fn rules_sort_by_listener_then_priority_with_the_default_last() {
        let mut keys = vec![
            sort_key("l1", None),
            sort_key("l1", Some(50_000)),
            sort_key("l1", Some(2)),
            sort_key("l1", Some(10)),
        ];
        keys.sort();
        assert_eq!(keys, vec!["l1/00002", "l1/00010", "l1/50000", "l1/default"]);
    }
}
