//! CreateTargetGroup, DescribeTargetGroups, ModifyTargetGroup, DeleteTargetGroup and the
//! target group attributes.

use std::collections::{BTreeMap, BTreeSet};

use api::{ApiError, RequestContext};
use elbv2_wire::{
    CreateTargetGroupInput, CreateTargetGroupOutput, DeleteTargetGroupInput,
    DeleteTargetGroupOutput, DescribeTargetGroupAttributesInput,
    DescribeTargetGroupAttributesOutput, DescribeTargetGroupsInput, DescribeTargetGroupsOutput,
    Matcher, ModifyTargetGroupAttributesInput, ModifyTargetGroupAttributesOutput,
    ModifyTargetGroupInput, ModifyTargetGroupOutput, TargetGroup, TargetGroupAttribute,
};

use crate::ids::{self, target_group_not_found};
use crate::records::{self, HealthCheckSettings, TargetGroupRecord, Versioned, Write};
use crate::{
    attribute_changes, attributes, error, paginate, reject_unsupported, tags, validation, Elbv2,
};

pub(crate) use crate::attributes::{
    ALGORITHM, DEREGISTRATION_DELAY, LB_COOKIE_DURATION as STICKINESS_COOKIE_DURATION, SLOW_START,
    STICKINESS_ENABLED, STICKINESS_TYPE,
};

fn in_range(value: &str, low: u32, high: u32) -> bool {
    value
        .parse::<u32>()
        .is_ok_and(|number| (low..=high).contains(&number))
}

/// A target group name, as the API documents it: at most 32 alphanumeric characters or
/// hyphens, not beginning or ending with a hyphen (the wire checks it is not empty). The
/// messages are AWS's.
fn validate_name(name: &str) -> Result<(), ApiError> {
    if name.chars().count() > 32 {
        return Err(validation(format!(
            "Target group name '{name}' cannot be longer than '32' characters"
        )));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(validation(format!(
            "Target group name '{name}' can only contain characters that are alphanumeric \
             characters or hyphens(-)"
        )));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(validation(format!(
            "Target group name '{name}' cannot begin or end with '-'"
        )));
    }
    Ok(())
}

/// `200`, `200,202`, `200-299`: codes 200-499.
fn validate_matcher(matcher: &Matcher) -> Result<String, ApiError> {
    if matcher.grpc_code.is_some() {
        return Err(validation(
            "Berth does not support the parameter Matcher.GrpcCode; remove it",
        ));
    }
    let code = matcher.http_code.clone().unwrap_or_default();
    let valid_code = |text: &str| in_range(text, 200, 499);
    let valid = !code.is_empty()
        && code.split(',').all(|part| match part.split_once('-') {
            Some((low, high)) => valid_code(low) && valid_code(high) && low < high,
            None => valid_code(part),
        });
    if valid {
        Ok(code)
    } else {
        Err(validation(format!(
            "Health check matcher HTTP code '{code}' must be a value between 200 and 499, a list \
             (200,202) or a range (200-299)"
        )))
    }
}

/// The health check settings after applying `changes` to `current` (all options are the
/// same members in CreateTargetGroup and ModifyTargetGroup).
struct HealthCheckChanges<'a> {
    protocol: Option<&'a str>,
    port: Option<&'a str>,
    path: Option<&'a str>,
    enabled: Option<bool>,
    interval_seconds: Option<i32>,
    timeout_seconds: Option<i32>,
    healthy_threshold_count: Option<i32>,
    unhealthy_threshold_count: Option<i32>,
    matcher: Option<&'a Matcher>,
}

fn apply_health_check(
    mut settings: HealthCheckSettings,
    changes: HealthCheckChanges<'_>,
) -> Result<HealthCheckSettings, ApiError> {
    if let Some(protocol) = changes.protocol {
        if protocol != "HTTP" {
            return Err(validation(format!(
                "Health check protocol '{protocol}' is not supported by Berth; use HTTP"
            )));
        }
        settings.protocol = protocol.to_string();
    }
    if let Some(port) = changes.port {
        if port != "traffic-port" && !in_range(port, 1, 65535) {
            return Err(validation(format!(
                "Health check port '{port}' must be 'traffic-port' or a port between 1 and 65535"
            )));
        }
        settings.port = port.to_string();
    }
    if let Some(path) = changes.path {
        if !path.starts_with('/') {
            return Err(validation(format!(
                "Health check path '{path}' must begin with '/'"
            )));
        }
        settings.path = path.to_string();
    }
    if let Some(enabled) = changes.enabled {
        settings.enabled = enabled;
    }
    let checks = [
        (
            "HealthCheckIntervalSeconds",
            changes.interval_seconds,
            5,
            300,
            &mut settings.interval_seconds,
        ),
        (
            "HealthCheckTimeoutSeconds",
            changes.timeout_seconds,
            2,
            120,
            &mut settings.timeout_seconds,
        ),
        (
            "HealthyThresholdCount",
            changes.healthy_threshold_count,
            2,
            10,
            &mut settings.healthy_threshold_count,
        ),
        (
            "UnhealthyThresholdCount",
            changes.unhealthy_threshold_count,
            2,
            10,
            &mut settings.unhealthy_threshold_count,
        ),
    ];
    for (name, value, low, high, slot) in checks {
        if let Some(value) = value {
            if !(low..=high).contains(&value) {
                return Err(validation(format!(
                    "{name} must be between {low} and {high}, not {value}"
                )));
            }
            *slot = value;
        }
    }
    if settings.timeout_seconds >= settings.interval_seconds {
        return Err(validation(
            "Health check interval must be greater than the timeout.",
        ));
    }
    if let Some(matcher) = changes.matcher {
        settings.matcher_http_code = validate_matcher(matcher)?;
    }
    Ok(settings)
}

impl Elbv2 {
    pub(crate) fn target_group_wire(record: &TargetGroupRecord) -> TargetGroup {
        let health = &record.health_check;
        TargetGroup {
            target_group_arn: Some(record.arn.clone()),
            target_group_name: Some(record.name.clone()),
            protocol: Some(record.protocol.clone()),
            port: Some(record.port),
            vpc_id: Some(
                record
                    .vpc_id
                    .clone()
                    .unwrap_or_else(|| crate::BERTH_VPC_ID.to_string()),
            ),
            health_check_protocol: Some(health.protocol.clone()),
            health_check_port: Some(health.port.clone()),
            health_check_enabled: Some(health.enabled),
            health_check_interval_seconds: Some(health.interval_seconds),
            health_check_timeout_seconds: Some(health.timeout_seconds),
            healthy_threshold_count: Some(health.healthy_threshold_count),
            unhealthy_threshold_count: Some(health.unhealthy_threshold_count),
            health_check_path: Some(health.path.clone()),
            matcher: Some(Matcher {
                http_code: Some(health.matcher_http_code.clone()),
                grpc_code: None,
            }),
            load_balancer_arns: Some(record.load_balancer_arns.iter().cloned().collect()),
            target_type: Some(record.target_type.clone()),
            protocol_version: Some(record.protocol_version.clone()),
            ip_address_type: Some("ipv4".into()),
            target_control_port: None,
        }
    }

    pub(crate) async fn find_target_group(
        &self,
        ctx: &RequestContext,
        arn: &str,
    ) -> Result<Versioned<TargetGroupRecord>, ApiError> {
        let (name, _) = ids::parse_target_group_arn(ctx, arn)?;
        match records::get::<TargetGroupRecord>(
            self.store(),
            &records::target_group_key(&ctx.region, name),
        )
        .await?
        {
            Some(found) if found.value.arn == arn => Ok(found),
            _ => Err(target_group_not_found()),
        }
    }

    pub(crate) async fn create_target_group(
        &self,
        ctx: &RequestContext,
        request: CreateTargetGroupInput,
    ) -> Result<CreateTargetGroupOutput, ApiError> {
        reject_unsupported(&[("TargetControlPort", request.target_control_port.is_some())])?;
        let name = request.name.clone().unwrap_or_default();
        validate_name(&name)?;
        let target_type = request
            .target_type
            .clone()
            .unwrap_or_else(|| "instance".into());
        if target_type != "instance" && target_type != "ip" {
            return Err(validation(format!(
                "Target type '{target_type}' is not supported by Berth; use 'instance' or 'ip'"
            )));
        }
        let protocol = request
            .protocol
            .clone()
            .ok_or_else(|| validation("A protocol must be specified"))?;
        if protocol != "HTTP" {
            return Err(validation(format!(
                "Protocol '{protocol}' is not supported by Berth; use HTTP"
            )));
        }
        let port = request
            .port
            .ok_or_else(|| validation("A port must be specified"))?;
        if !(1..=65535).contains(&port) {
            return Err(validation(format!(
                "Port {port} must be between 1 and 65535"
            )));
        }
        let protocol_version = request
            .protocol_version
            .clone()
            .unwrap_or_else(|| "HTTP1".into());
        if protocol_version != "HTTP1" {
            return Err(validation(format!(
                "Protocol version '{protocol_version}' is not supported by Berth; use HTTP1"
            )));
        }
        if let Some(ip_address_type) = request.ip_address_type.as_deref().filter(|t| *t != "ipv4") {
            return Err(validation(format!(
                "IP address type '{ip_address_type}' is not supported by Berth; use 'ipv4'"
            )));
        }
        let health_check = apply_health_check(
            HealthCheckSettings {
                enabled: true,
                protocol: "HTTP".into(),
                port: "traffic-port".into(),
                path: "/".into(),
                interval_seconds: 30,
                timeout_seconds: 5,
                healthy_threshold_count: 5,
                unhealthy_threshold_count: 2,
                matcher_http_code: "200".into(),
            },
            HealthCheckChanges {
                protocol: request.health_check_protocol.as_deref(),
                port: request.health_check_port.as_deref(),
                path: request.health_check_path.as_deref(),
                enabled: request.health_check_enabled,
                interval_seconds: request.health_check_interval_seconds,
                timeout_seconds: request.health_check_timeout_seconds,
                healthy_threshold_count: request.healthy_threshold_count,
                unhealthy_threshold_count: request.unhealthy_threshold_count,
                matcher: request.matcher.as_ref(),
            },
        )?;
        let tags = tags::validate_new(request.tags.as_deref())?;
        let record = TargetGroupRecord {
            arn: ids::target_group_arn(ctx, &name, &ids::new_id(ctx, "targetgroup", &name)),
            name: name.clone(),
            protocol,
            protocol_version,
            port,
            // Berth has one VPC; a group created without one is in it.
            vpc_id: Some(
                request
                    .vpc_id
                    .clone()
                    .unwrap_or_else(|| crate::BERTH_VPC_ID.to_string()),
            ),
            target_type,
            health_check,
            attributes: attributes::target_group_defaults(),
            used_by_listeners: BTreeSet::new(),
            load_balancer_arns: BTreeSet::new(),
            targets: BTreeSet::new(),
            tags,
            used_by_rules: BTreeSet::new(),
        };
        let key = records::target_group_key(&ctx.region, &name);
        for _ in 0..records::MAX_CAS_ATTEMPTS {
            if let Some(existing) = records::get::<TargetGroupRecord>(self.store(), &key).await? {
                let same = existing.value.protocol == record.protocol
                    && existing.value.port == record.port
                    && existing.value.vpc_id == record.vpc_id
                    && existing.value.target_type == record.target_type
                    && existing.value.health_check == record.health_check;
                if !same {
                    return Err(error(
                        "DuplicateTargetGroupName",
                        format!("A target group with the same name '{name}' exists, but with different settings"),
                    ));
                }
                return Ok(CreateTargetGroupOutput {
                    target_groups: Some(vec![Self::target_group_wire(&existing.value)]),
                });
            }
            let max_target_groups = crate::account::limit("target-groups");
            let count = records::list::<TargetGroupRecord>(
                self.store(),
                &records::target_groups_prefix(&ctx.region),
            )
            .await?
            .len();
            if count >= max_target_groups {
                return Err(error(
                    "TooManyTargetGroups",
                    format!("A region can have at most {max_target_groups} target groups"),
                ));
            }
            if Write::new()
                .expect(&key, 0)
                .put(&key, &record)
                .commit(self.store())
                .await?
            {
                return Ok(CreateTargetGroupOutput {
                    target_groups: Some(vec![Self::target_group_wire(&record)]),
                });
            }
        }
        Err(records::too_much_contention("target groups"))
    }

    pub(crate) async fn describe_target_groups(
        &self,
        ctx: &RequestContext,
        request: DescribeTargetGroupsInput,
    ) -> Result<DescribeTargetGroupsOutput, ApiError> {
        let names = request.names.unwrap_or_default();
        let arns = request.target_group_arns.unwrap_or_default();
        let filters = [
            !names.is_empty(),
            !arns.is_empty(),
            request.load_balancer_arn.is_some(),
        ];
        if filters.iter().filter(|given| **given).count() > 1 {
            return Err(validation(
                "Only one of load balancer ARN, target group ARNs or names can be specified",
            ));
        }
        if let Some(load_balancer_arn) = &request.load_balancer_arn {
            self.find_load_balancer(ctx, load_balancer_arn).await?;
        }
        let all = records::list::<TargetGroupRecord>(
            self.store(),
            &records::target_groups_prefix(&ctx.region),
        )
        .await?;
        let mut selected: Vec<(String, TargetGroupRecord)> = Vec::new();
        for (key, group) in all {
            let wanted = if !names.is_empty() {
                names.contains(&group.value.name)
            } else if !arns.is_empty() {
                arns.contains(&group.value.arn)
            } else if let Some(load_balancer_arn) = &request.load_balancer_arn {
                group.value.load_balancer_arns.contains(load_balancer_arn)
            } else {
                true
            };
            if wanted {
                selected.push((key, group.value));
            }
        }
        if let Some(missing) = names
            .iter()
            .find(|name| !selected.iter().any(|(_, g)| &g.name == *name))
        {
            return Err(error(
                "TargetGroupNotFound",
                format!("Target groups '[{missing}]' not found"),
            ));
        }
        if let Some(missing) = arns
            .iter()
            .find(|arn| !selected.iter().any(|(_, g)| &g.arn == *arn))
        {
            return Err(error(
                "TargetGroupNotFound",
                format!("Target groups '[{missing}]' not found"),
            ));
        }
        let (page, next_marker) = paginate(
            selected,
            request.marker.as_deref(),
            crate::page_size(request.page_size),
        );
        Ok(DescribeTargetGroupsOutput {
            target_groups: Some(page.iter().map(Self::target_group_wire).collect()),
            next_marker,
        })
    }

    pub(crate) async fn modify_target_group(
        &self,
        ctx: &RequestContext,
        request: ModifyTargetGroupInput,
    ) -> Result<ModifyTargetGroupOutput, ApiError> {
        let arn = request.target_group_arn.clone().unwrap_or_default();
        for _ in 0..records::MAX_CAS_ATTEMPTS {
            let mut group = self.find_target_group(ctx, &arn).await?;
            group.value.health_check = apply_health_check(
                group.value.health_check.clone(),
                HealthCheckChanges {
                    protocol: request.health_check_protocol.as_deref(),
                    port: request.health_check_port.as_deref(),
                    path: request.health_check_path.as_deref(),
                    enabled: request.health_check_enabled,
                    interval_seconds: request.health_check_interval_seconds,
                    timeout_seconds: request.health_check_timeout_seconds,
                    healthy_threshold_count: request.healthy_threshold_count,
                    unhealthy_threshold_count: request.unhealthy_threshold_count,
                    matcher: request.matcher.as_ref(),
                },
            )?;
            let key = records::target_group_key(&ctx.region, &group.value.name);
            if Write::new()
                .expect(&key, group.mod_revision)
                .put(&key, &group.value)
                .commit(self.store())
                .await?
            {
                return Ok(ModifyTargetGroupOutput {
                    target_groups: Some(vec![Self::target_group_wire(&group.value)]),
                });
            }
        }
        Err(records::too_much_contention("target groups"))
    }

    pub(crate) async fn delete_target_group(
        &self,
        ctx: &RequestContext,
        request: DeleteTargetGroupInput,
    ) -> Result<DeleteTargetGroupOutput, ApiError> {
        let arn = request.target_group_arn.unwrap_or_default();
        ids::parse_target_group_arn(ctx, &arn)?;
        for _ in 0..records::MAX_CAS_ATTEMPTS {
            // Deleting a target group that does not exist succeeds, as on AWS.
            let group = match self.find_target_group(ctx, &arn).await {
                Ok(group) => group,
                Err(err) if err.code == "TargetGroupNotFound" => {
                    return Ok(DeleteTargetGroupOutput {})
                }
                Err(err) => return Err(err),
            };
            if let Some(listener) = group
                .value
                .used_by_listeners
                .iter()
                .chain(&group.value.used_by_rules)
                .next()
            {
                return Err(error(
                    "ResourceInUse",
                    format!("Target group '{arn}' is currently in use by a listener or a rule ({listener})"),
                ));
            }
            let key = records::target_group_key(&ctx.region, &group.value.name);
            if Write::new()
                .expect(&key, group.mod_revision)
                .delete(&key)
                .commit(self.store())
                .await?
            {
                return Ok(DeleteTargetGroupOutput {});
            }
        }
        Err(records::too_much_contention("target groups"))
    }

    pub(crate) async fn describe_target_group_attributes(
        &self,
        ctx: &RequestContext,
        request: DescribeTargetGroupAttributesInput,
    ) -> Result<DescribeTargetGroupAttributesOutput, ApiError> {
        let group = self
            .find_target_group(ctx, request.target_group_arn.as_deref().unwrap_or_default())
            .await?;
        Ok(DescribeTargetGroupAttributesOutput {
            attributes: Some(tg_attributes_wire(&attributes::target_group_attributes(
                &group.value.attributes,
            ))),
        })
    }

    pub(crate) async fn modify_target_group_attributes(
        &self,
        ctx: &RequestContext,
        request: ModifyTargetGroupAttributesInput,
    ) -> Result<ModifyTargetGroupAttributesOutput, ApiError> {
        let changes = attribute_changes(
            request
                .attributes
                .unwrap_or_default()
                .into_iter()
                .map(|attribute| (attribute.key, attribute.value)),
        );
        // Each value is checked before the group is read; their combination against it.
        attributes::check_target_group_changes(&changes)?;
        let arn = request.target_group_arn.unwrap_or_default();
        for _ in 0..records::MAX_CAS_ATTEMPTS {
            let mut group = self.find_target_group(ctx, &arn).await?;
            group.value.attributes =
                attributes::modify_target_group(&group.value.attributes, &changes)?;
            let key = records::target_group_key(&ctx.region, &group.value.name);
            if Write::new()
                .expect(&key, group.mod_revision)
                .put(&key, &group.value)
                .commit(self.store())
                .await?
            {
                return Ok(ModifyTargetGroupAttributesOutput {
                    attributes: Some(tg_attributes_wire(&group.value.attributes)),
                });
            }
        }
        Err(records::too_much_contention("target groups"))
    }
}

fn tg_attributes_wire(attributes: &BTreeMap<String, String>) -> Vec<TargetGroupAttribute> {
    attributes
        .iter()
        .map(|(key, value)| TargetGroupAttribute {
            key: Some(key.clone()),
            value: Some(value.clone()),
        })
        .collect()
}
