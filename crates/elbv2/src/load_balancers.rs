//! CreateLoadBalancer, DescribeLoadBalancers, DeleteLoadBalancer and the load balancer
//! attributes.

use std::collections::{BTreeMap, BTreeSet};

use api::{ApiError, RequestContext};
use elbv2_wire::{
    AvailabilityZone, CreateLoadBalancerInput, CreateLoadBalancerOutput, DeleteLoadBalancerInput,
    DeleteLoadBalancerOutput, DescribeCapacityReservationInput, DescribeCapacityReservationOutput,
    DescribeLoadBalancerAttributesInput, DescribeLoadBalancerAttributesOutput,
    DescribeLoadBalancersInput, DescribeLoadBalancersOutput, LoadBalancer, LoadBalancerAttribute,
    LoadBalancerState, ModifyLoadBalancerAttributesInput, ModifyLoadBalancerAttributesOutput,
    SetIpAddressTypeInput, SetIpAddressTypeOutput, SetSecurityGroupsInput, SetSecurityGroupsOutput,
    SetSubnetsInput, SetSubnetsOutput,
};

use crate::ids::{self, load_balancer_not_found};
use crate::records::{self, ListenerRecord, LoadBalancerRecord, RuleRecord, Versioned, Write};
use crate::{
    attribute_changes, attributes, error, paginate, reject_unsupported, tags, validation, Elbv2,
};

/// The hosted zone of application load balancers in `region` (AWS's Route 53 hosted zone ids
/// for Application Load Balancers, from the Elastic Load Balancing endpoints table); `None`
/// in a region AWS does not list.
pub(crate) fn canonical_hosted_zone_id(region: &str) -> Option<&'static str> {
    Some(match region {
        "us-east-2" => "Z3AADJGX6KTTL2",
        "us-east-1" => "Z35SXDOTRQ7X7K",
        "us-west-1" => "Z368ELLRRE2KJ0",
        "us-west-2" => "Z1H1FL5HABSF5",
        "af-south-1" => "Z268VQBMOI5EKX",
        "ap-east-1" => "Z3DQVH9N71FHZ0",
        "ap-south-1" => "ZP97RAFLXTNZK",
        "ap-northeast-3" => "Z5LXEXXYW11ES",
        "ap-northeast-2" => "ZWKZPGTI48KDX",
        "ap-southeast-1" => "Z1LMS91P8CMLE5",
        "ap-southeast-2" => "Z1GM3OXH4ZPM65",
        "ap-northeast-1" => "Z14GRHDCWA56QT",
        "ca-central-1" => "ZQSVJUPU6J1EY",
        "eu-central-1" => "Z215JYRZR1TBD5",
        "eu-west-1" => "Z32O12XQLNTSW2",
        "eu-west-2" => "ZHURV8PSTC4K8",
        "eu-south-1" => "Z3ULH7SSC9OV64",
        "eu-west-3" => "Z3Q77PNBQS71R4",
        "eu-north-1" => "Z23TAZ6LKFMNIO",
        "me-south-1" => "ZS929ML54UICD",
        "sa-east-1" => "Z2P70J7HTTTPLU",
        "us-gov-east-1" => "Z166TLBEWOO7G0",
        "us-gov-west-1" => "Z33AYJ8TM3BH4J",
        _ => return None,
    })
}

/// Subnets as CreateLoadBalancer and SetSubnets take them: distinct, and for an application
/// load balancer none or at least two.
fn validate_subnets(subnets: &[String]) -> Result<(), ApiError> {
    let distinct: BTreeSet<&String> = subnets.iter().collect();
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
    Ok(())
}

/// Berth's load balancers are `ipv4` only.
fn validate_ip_address_type(ip_address_type: Option<&str>) -> Result<(), ApiError> {
    match ip_address_type {
        None | Some("ipv4") => Ok(()),
        Some(other) => Err(validation(format!(
            "IP address type '{other}' is not supported by Berth; use 'ipv4'"
        ))),
    }
}

/// A load balancer name: at most 32 alphanumeric characters or hyphens, not beginning or
/// ending with a hyphen, not beginning with `internal-` (the wire checks it is not empty).
/// The characters message is AWS's; the others follow its form.
fn validate_name(name: &str) -> Result<(), ApiError> {
    if name.chars().count() > 32 {
        return Err(validation(format!(
            "The load balancer name '{name}' cannot be longer than '32' characters"
        )));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(validation(format!(
            "The load balancer name '{name}' can only contain characters that are alphanumeric \
             characters and hyphens(-)"
        )));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(validation(format!(
            "The load balancer name '{name}' cannot begin or end with '-'"
        )));
    }
    if name.starts_with("internal-") {
        return Err(validation(format!(
            "The load balancer name '{name}' cannot begin with 'internal-'"
        )));
    }
    Ok(())
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
            canonical_hosted_zone_id: canonical_hosted_zone_id(&ctx.region).map(str::to_string),
            vpc_id: Some(crate::BERTH_VPC_ID.to_string()),
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
        validate_ip_address_type(request.ip_address_type.as_deref())?;
        let subnets = request.subnets.unwrap_or_default();
        validate_subnets(&subnets)?;
        let tags = tags::validate_new(request.tags.as_deref())?;
        let record = LoadBalancerRecord {
            arn: ids::load_balancer_arn(ctx, &name, &ids::new_id(ctx, "loadbalancer", &name)),
            name: name.clone(),
            scheme: request.scheme.unwrap_or_else(|| "internet-facing".into()),
            subnets,
            security_groups: request.security_groups.unwrap_or_default(),
            created_ms: ctx.now_ms,
            attributes: attributes::load_balancer_defaults(),
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
            let max_load_balancers = crate::account::limit("application-load-balancers");
            let count = records::list::<LoadBalancerRecord>(
                self.store(),
                &records::load_balancers_prefix(&ctx.region),
            )
            .await?
            .len();
            if count >= max_load_balancers {
                return Err(error(
                    "TooManyLoadBalancers",
                    format!(
                        "A region can have at most {max_load_balancers} application load balancers"
                    ),
                ));
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
                .get(attributes::DELETION_PROTECTION)
                .map(String::as_str)
                == Some("true")
            {
                // AWS's message, then how to get past it.
                return Err(error(
                    "OperationNotPermitted",
                    format!(
                        "Load balancer '{arn}' cannot be deleted because deletion protection is \
                         enabled (set {} to false with ModifyLoadBalancerAttributes first)",
                        attributes::DELETION_PROTECTION
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
            attributes: Some(lb_attributes_wire(&attributes::load_balancer_attributes(
                &load_balancer.value.attributes,
            ))),
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
        );
        // Checked before the load balancer is read, so bad input answers the same either way.
        attributes::check_load_balancer_changes(&changes)?;
        let arn = request.load_balancer_arn.unwrap_or_default();
        let record = self
            .update_load_balancer(ctx, &arn, |record| {
                record.attributes = attributes::modify_load_balancer(&record.attributes, &changes)?;
                Ok(())
            })
            .await?;
        Ok(ModifyLoadBalancerAttributesOutput {
            attributes: Some(lb_attributes_wire(&record.attributes)),
        })
    }
}

impl Elbv2 {
    /// Reads the load balancer `arn` names, applies `change` to it and writes it back with
    /// compare-and-swap; returns the record written. A `change` that fails writes nothing.
    async fn update_load_balancer(
        &self,
        ctx: &RequestContext,
        arn: &str,
        change: impl Fn(&mut LoadBalancerRecord) -> Result<(), ApiError>,
    ) -> Result<LoadBalancerRecord, ApiError> {
        for _ in 0..records::MAX_CAS_ATTEMPTS {
            let mut load_balancer = self.find_load_balancer(ctx, arn).await?;
            change(&mut load_balancer.value)?;
            let key = records::load_balancer_key(&ctx.region, &load_balancer.value.name);
            if Write::new()
                .expect(&key, load_balancer.mod_revision)
                .put(&key, &load_balancer.value)
                .commit(self.store())
                .await?
            {
                return Ok(load_balancer.value);
            }
        }
        Err(records::too_much_contention("load balancers"))
    }

    /// The subnets replace the previous ones (they are labels, as in CreateLoadBalancer).
    pub(crate) async fn set_subnets(
        &self,
        ctx: &RequestContext,
        request: SetSubnetsInput,
    ) -> Result<SetSubnetsOutput, ApiError> {
        reject_unsupported(&[
            ("SubnetMappings", request.subnet_mappings.is_some()),
            (
                "EnablePrefixForIpv6SourceNat",
                request.enable_prefix_for_ipv6_source_nat.is_some(),
            ),
        ])?;
        validate_ip_address_type(request.ip_address_type.as_deref())?;
        let subnets = request
            .subnets
            .filter(|subnets| !subnets.is_empty())
            .ok_or_else(|| validation("You must specify either subnets or subnet mappings"))?;
        validate_subnets(&subnets)?;
        let arn = request.load_balancer_arn.unwrap_or_default();
        let record = self
            .update_load_balancer(ctx, &arn, |record| {
                record.subnets = subnets.clone();
                Ok(())
            })
            .await?;
        Ok(SetSubnetsOutput {
            availability_zones: self.load_balancer_wire(ctx, &record).availability_zones,
            ip_address_type: Some("ipv4".into()),
            enable_prefix_for_ipv6_source_nat: None,
        })
    }

    /// The security groups replace the previous ones (labels, as in CreateLoadBalancer).
    pub(crate) async fn set_security_groups(
        &self,
        ctx: &RequestContext,
        request: SetSecurityGroupsInput,
    ) -> Result<SetSecurityGroupsOutput, ApiError> {
        reject_unsupported(&[(
            "EnforceSecurityGroupInboundRulesOnPrivateLinkTraffic",
            request
                .enforce_security_group_inbound_rules_on_private_link_traffic
                .is_some(),
        )])?;
        let security_groups = request.security_groups.unwrap_or_default();
        let arn = request.load_balancer_arn.unwrap_or_default();
        let record = self
            .update_load_balancer(ctx, &arn, |record| {
                record.security_groups = security_groups.clone();
                Ok(())
            })
            .await?;
        Ok(SetSecurityGroupsOutput {
            security_group_ids: Some(record.security_groups),
            enforce_security_group_inbound_rules_on_private_link_traffic: None,
        })
    }

    /// Berth's load balancers are `ipv4`: setting `ipv4` succeeds, other types are refused.
    pub(crate) async fn set_ip_address_type(
        &self,
        ctx: &RequestContext,
        request: SetIpAddressTypeInput,
    ) -> Result<SetIpAddressTypeOutput, ApiError> {
        validate_ip_address_type(request.ip_address_type.as_deref())?;
        self.find_load_balancer(
            ctx,
            request.load_balancer_arn.as_deref().unwrap_or_default(),
        )
        .await?;
        Ok(SetIpAddressTypeOutput {
            ip_address_type: Some("ipv4".into()),
        })
    }

    /// No load balancer of Berth has reserved capacity (ModifyCapacityReservation is not
    /// implemented), so the reservation is empty.
    pub(crate) async fn describe_capacity_reservation(
        &self,
        ctx: &RequestContext,
        request: DescribeCapacityReservationInput,
    ) -> Result<DescribeCapacityReservationOutput, ApiError> {
        self.find_load_balancer(
            ctx,
            request.load_balancer_arn.as_deref().unwrap_or_default(),
        )
        .await?;
        Ok(DescribeCapacityReservationOutput {
            capacity_reservation_state: Some(Vec::new()),
            ..Default::default()
        })
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
