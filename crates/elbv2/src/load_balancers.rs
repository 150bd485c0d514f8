//! CreateLoadBalancer, DescribeLoadBalancers, DeleteLoadBalancer and the load balancer
//! attributes.

use std::collections::{BTreeMap, BTreeSet};

use api::{ApiError, RequestContext};
use elbv2_wire::{
    AvailabilityZone, CreateLoadBalancerInput, CreateLoadBalancerOutput, DeleteLoadBalancerInput,
    DeleteLoadBalancerOutput, DescribeLoadBalancerAttributesInput,
    DescribeLoadBalancerAttributesOutput, DescribeLoadBalancersInput, DescribeLoadBalancersOutput,
    LoadBalancer, LoadBalancerAttribute, LoadBalancerState, ModifyLoadBalancerAttributesInput,
    ModifyLoadBalancerAttributesOutput,
};

use crate::ids::{self, load_balancer_not_found};
use crate::records::{self, ListenerRecord, LoadBalancerRecord, RuleRecord, Versioned, Write};
use crate::{attribute_changes, error, paginate, reject_unsupported, tags, validation, Elbv2};

pub(crate) const DELETION_PROTECTION: &str = "deletion_protection.enabled";
pub(crate) const IDLE_TIMEOUT: &str = "idle_timeout.timeout_seconds";

/// The attributes Berth honours and their defaults: deletion protection (DeleteLoadBalancer
/// refuses while it is on) and the idle timeout (read by the data plane).
fn default_attributes() -> BTreeMap<String, String> {
    BTreeMap::from([
        (DELETION_PROTECTION.to_string(), "false".to_string()),
        (IDLE_TIMEOUT.to_string(), "60".to_string()),
    ])
}

fn validate_attribute(key: &str, value: &str) -> Result<(), ApiError> {
    let valid = match key {
        DELETION_PROTECTION => value == "true" || value == "false",
        IDLE_TIMEOUT => value
            .parse::<u32>()
            .is_ok_and(|seconds| (1..=4000).contains(&seconds)),
        _ => {
            return Err(validation(format!(
                "Load balancer attribute key '{key}' is not supported by Berth; supported keys: \
                 {DELETION_PROTECTION}, {IDLE_TIMEOUT}"
            )))
        }
    };
    if valid {
        Ok(())
    } else {
        Err(validation(format!(
            "Load balancer attribute value '{value}' is not valid for '{key}'"
        )))
    }
}

/// A load balancer name: 1-32 alphanumerics or hyphens, not starting or ending with a
/// hyphen, not starting with `internal-`.
fn validate_name(name: &str) -> Result<(), ApiError> {
    let valid = !name.is_empty()
        && name.len() <= 32
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.starts_with("internal-");
    if valid {
        Ok(())
    } else {
        Err(validation(format!(
            "The load balancer name '{name}' is not valid: use 1-32 letters, digits or hyphens, \
             not starting or ending with a hyphen and not starting with 'internal-'"
        )))
    }
}

impl Elbv2 {
    pub(crate) fn load_balancer_wire(
        &self,
        ctx: &RequestContext,
        record: &LoadBalancerRecord,
    ) -> LoadBalancer {
        let availability_zones = if record.subnets.is_empty() {
            vec![AvailabilityZone {
                zone_name: Some(format!("{}a", ctx.region)),
                ..Default::default()
            }]
        } else {
            record
                .subnets
                .iter()
                .enumerate()
                .map(|(index, subnet)| AvailabilityZone {
                    zone_name: Some(format!(
                        "{}{}",
                        ctx.region,
                        (b'a' + (index % 26) as u8) as char
                    )),
                    subnet_id: Some(subnet.clone()),
                    ..Default::default()
                })
                .collect()
        };
        LoadBalancer {
            load_balancer_arn: Some(record.arn.clone()),
            dns_name: Some(self.dns_name.clone()),
            created_time: Some(record.created_ms),
            load_balancer_name: Some(record.name.clone()),
            scheme: Some(record.scheme.clone()),
            state: Some(LoadBalancerState {
                code: Some("active".into()),
                reason: None,
            }),
            type_: Some("application".into()),
            availability_zones: Some(availability_zones),
            security_groups: Some(record.security_groups.clone()),
            ip_address_type: Some("ipv4".into()),
            ..Default::default()
        }
    }

    /// The load balancer `arn` names, or LoadBalancerNotFound.
    pub(crate) async fn find_load_balancer(
        &self,
        ctx: &RequestContext,
        arn: &str,
    ) -> Result<Versioned<LoadBalancerRecord>, ApiError> {
        let (name, _) = ids::parse_load_balancer_arn(ctx, arn)?;
        match records::get::<LoadBalancerRecord>(
            self.store(),
            &records::load_balancer_key(&ctx.region, name),
        )
        .await?
        {
            Some(found) if found.value.arn == arn => Ok(found),
            _ => Err(load_balancer_not_found()),
        }
    }

    pub(crate) async fn create_load_balancer(
        &self,
        ctx: &RequestContext,
        request: CreateLoadBalancerInput,
    ) -> Result<CreateLoadBalancerOutput, ApiError> {
        reject_unsupported(&[
            ("SubnetMappings", request.subnet_mappings.is_some()),
            (
                "CustomerOwnedIpv4Pool",
                request.customer_owned_ipv4_pool.is_some(),
            ),
            (
                "EnablePrefixForIpv6SourceNat",
                request.enable_prefix_for_ipv6_source_nat.is_some(),
            ),
            ("IpamPools", request.ipam_pools.is_some()),
        ])?;
        let name = request.name.unwrap_or_default();
        validate_name(&name)?;
        match request.type_.as_deref() {
            None | Some("application") => {}
            Some(other) => {
                return Err(validation(format!(
                    "Load balancer type '{other}' is not supported by Berth; use 'application'"
                )))
            }
        }
        if let Some(ip_address_type) = request.ip_address_type.as_deref().filter(|t| *t != "ipv4") {
            return Err(validation(format!(
                "IP address type '{ip_address_type}' is not supported by Berth; use 'ipv4'"
            )));
        }
        let subnets = request.subnets.unwrap_or_default();
        let mut distinct = subnets.clone();
        distinct.sort();
        distinct.dedup();
        if distinct.len() != subnets.len() {
            return Err(validation(
                "The same subnet cannot be specified more than once",
            ));
        }
        if subnets.len() == 1 {
            return Err(error(
                "InvalidConfigurationRequest",
                "At least two subnets in two different Availability Zones must be specified",
            ));
        }
        let tags = tags::validate_new(request.tags.as_deref())?;
        let record = LoadBalancerRecord {
            arn: ids::load_balancer_arn(ctx, &name, &ids::new_id(ctx, "loadbalancer", &name)),
            name: name.clone(),
            scheme: request.scheme.unwrap_or_else(|| "internet-facing".into()),
            subnets,
            security_groups: request.security_groups.unwrap_or_default(),
            created_ms: ctx.now_ms,
            attributes: default_attributes(),
            tags,
        };
        let key = records::load_balancer_key(&ctx.region, &name);
        for _ in 0..records::MAX_CAS_ATTEMPTS {
            if let Some(existing) = records::get::<LoadBalancerRecord>(self.store(), &key).await? {
                // As on AWS, creating a load balancer that exists with the same settings
                // succeeds and returns it.
                let same = existing.value.scheme == record.scheme
                    && existing.value.subnets == record.subnets
                    && existing.value.security_groups == record.security_groups;
                if !same {
                    return Err(error(
                        "DuplicateLoadBalancerName",
                        format!("A load balancer with the name '{name}' already exists"),
                    ));
                }
                return Ok(CreateLoadBalancerOutput {
                    load_balancers: Some(vec![self.load_balancer_wire(ctx, &existing.value)]),
                });
            }
            if Write::new()
                .expect(&key, 0)
                .put(&key, &record)
                .commit(self.store())
                .await?
            {
                return Ok(CreateLoadBalancerOutput {
                    load_balancers: Some(vec![self.load_balancer_wire(ctx, &record)]),
                });
            }
        }
        Err(records::too_much_contention("load balancers"))
    }

    pub(crate) async fn describe_load_balancers(
        &self,
        ctx: &RequestContext,
        request: DescribeLoadBalancersInput,
    ) -> Result<DescribeLoadBalancersOutput, ApiError> {
        let names = request.names.unwrap_or_default();
        let arns = request.load_balancer_arns.unwrap_or_default();
        if !names.is_empty() && !arns.is_empty() {
            return Err(validation(
                "Load balancer names and load balancer ARNs cannot be specified at the same time",
            ));
        }
        let all = records::list::<LoadBalancerRecord>(
            self.store(),
            &records::load_balancers_prefix(&ctx.region),
        )
        .await?;
        let selected: Vec<(String, LoadBalancerRecord)> = if !names.is_empty() {
            let mut found = Vec::new();
            for name in &names {
                match all.iter().find(|(_, lb)| &lb.value.name == name) {
                    Some((key, lb)) => found.push((key.clone(), lb.value.clone())),
                    None => {
                        return Err(error(
                            "LoadBalancerNotFound",
                            format!("Load balancers '[{name}]' not found"),
                        ))
                    }
                }
            }
            found
        } else if !arns.is_empty() {
            let mut found = Vec::new();
            for arn in &arns {
                match all.iter().find(|(_, lb)| &lb.value.arn == arn) {
                    Some((key, lb)) => found.push((key.clone(), lb.value.clone())),
                    None => {
                        return Err(error(
                            "LoadBalancerNotFound",
                            format!("Load balancers '[{arn}]' not found"),
                        ))
                    }
                }
            }
            found.sort_by(|a, b| a.0.cmp(&b.0));
            found.dedup_by(|a, b| a.0 == b.0);
            found
        } else {
            all.into_iter().map(|(key, lb)| (key, lb.value)).collect()
        };
        let (page, next_marker) = paginate(
            selected,
            request.marker.as_deref(),
            crate::page_size(request.page_size),
        );
        Ok(DescribeLoadBalancersOutput {
            load_balancers: Some(
                page.iter()
                    .map(|lb| self.load_balancer_wire(ctx, lb))
                    .collect(),
            ),
            next_marker,
        })
    }

    pub(crate) async fn delete_load_balancer(
        &self,
        ctx: &RequestContext,
        request: DeleteLoadBalancerInput,
    ) -> Result<DeleteLoadBalancerOutput, ApiError> {
        let arn = request.load_balancer_arn.unwrap_or_default();
        for _ in 0..records::MAX_CAS_ATTEMPTS {
            // Deleting a load balancer that does not exist succeeds, as on AWS.
            let load_balancer = match self.find_load_balancer(ctx, &arn).await {
                Ok(found) => found,
                Err(err)
                    if err.code == "LoadBalancerNotFound"
                        && ids::parse_load_balancer_arn(ctx, &arn).is_ok() =>
                {
                    return Ok(DeleteLoadBalancerOutput {})
                }
                Err(err) => return Err(err),
            };
            if load_balancer
                .value
                .attributes
                .get(DELETION_PROTECTION)
                .map(String::as_str)
                == Some("true")
            {
                return Err(error(
                    "OperationNotPermitted",
                    format!(
                        "Load balancer '{arn}' cannot be deleted because deletion protection is \
                         enabled; set {DELETION_PROTECTION} to false first"
                    ),
                ));
            }
            let key = records::load_balancer_key(&ctx.region, &load_balancer.value.name);
            let listeners = records::list::<ListenerRecord>(
                self.store(),
                &records::listeners_prefix(&ctx.region, &load_balancer.value.name),
            )
            .await?;
            let mut write = Write::new()
                .expect(&key, load_balancer.mod_revision)
                .delete(&key);
            // Its listeners and their rules go with it.
            let rules = records::list::<RuleRecord>(
                self.store(),
                &records::load_balancer_rules_prefix(&ctx.region, &load_balancer.value.name),
            )
            .await?;
            let mut touched = BTreeSet::new();
            for (listener_key, listener) in &listeners {
                write = write
                    .expect(listener_key, listener.mod_revision)
                    .delete(listener_key);
                touched.extend(listener.value.target_group_arns());
            }
            for (rule_key, rule) in &rules {
                write = write.expect(rule_key, rule.mod_revision).delete(rule_key);
                touched.extend(rule.value.target_group_arns());
            }
            for group in &mut self.existing_target_groups(ctx, &touched).await? {
                let group_key = records::target_group_key(&ctx.region, &group.value.name);
                for (_, listener) in &listeners {
                    group.value.used_by_listeners.remove(&listener.value.arn);
                }
                for (_, rule) in &rules {
                    group.value.used_by_rules.remove(&rule.value.arn);
                }
                group.value.refresh_load_balancer_arns();
                write = write
                    .expect(&group_key, group.mod_revision)
                    .put(&group_key, &group.value);
            }
            if write.commit(self.store()).await? {
                return Ok(DeleteLoadBalancerOutput {});
            }
        }
        Err(records::too_much_contention("load balancers"))
    }

    pub(crate) async fn describe_load_balancer_attributes(
        &self,
        ctx: &RequestContext,
        request: DescribeLoadBalancerAttributesInput,
    ) -> Result<DescribeLoadBalancerAttributesOutput, ApiError> {
        let load_balancer = self
            .find_load_balancer(
                ctx,
                request.load_balancer_arn.as_deref().unwrap_or_default(),
            )
            .await?;
        Ok(DescribeLoadBalancerAttributesOutput {
            attributes: Some(lb_attributes_wire(&load_balancer.value.attributes)),
        })
    }

    pub(crate) async fn modify_load_balancer_attributes(
        &self,
        ctx: &RequestContext,
        request: ModifyLoadBalancerAttributesInput,
    ) -> Result<ModifyLoadBalancerAttributesOutput, ApiError> {
        let changes = attribute_changes(
            request
                .attributes
                .unwrap_or_default()
                .into_iter()
                .map(|attribute| (attribute.key, attribute.value)),
            validate_attribute,
        )?;
        let arn = request.load_balancer_arn.unwrap_or_default();
        for _ in 0..records::MAX_CAS_ATTEMPTS {
            let mut load_balancer = self.find_load_balancer(ctx, &arn).await?;
            for (key, value) in &changes {
                load_balancer
                    .value
                    .attributes
                    .insert(key.clone(), value.clone());
            }
            let key = records::load_balancer_key(&ctx.region, &load_balancer.value.name);
            if Write::new()
                .expect(&key, load_balancer.mod_revision)
                .put(&key, &load_balancer.value)
                .commit(self.store())
                .await?
            {
                return Ok(ModifyLoadBalancerAttributesOutput {
                    attributes: Some(lb_attributes_wire(&load_balancer.value.attributes)),
                });
            }
        }
        Err(records::too_much_contention("load balancers"))
    }
}

fn lb_attributes_wire(attributes: &BTreeMap<String, String>) -> Vec<LoadBalancerAttribute> {
    attributes
        .iter()
        .map(|(key, value)| LoadBalancerAttribute {
            key: Some(key.clone()),
            value: Some(value.clone()),
        })
        .collect()
}
