//! ELBv2 (Elastic Load Balancing v2, API version 2015-12-01): the control-plane operations
//! for application load balancers, served through the query protocol.
//!
//! `Elbv2::handle` decodes the form parameters into `elbv2-wire` shapes, validates them,
//! reads and writes records under `/elbv2/<region>/…` with compare-and-swap, and answers
//! with the XML document botocore reads. Errors are `api::ApiError`s carrying ELBv2's codes
//! and the HTTP status botocore's model gives them.
//!
//! What Berth does where AWS has a VPC:
//! - `Subnets` and `SecurityGroups` are opaque labels: stored and echoed, never resolved.
//!   As on AWS, an application load balancer given subnets needs two distinct ones; without
//!   subnets it gets one synthetic zone `<region>a`. `SubnetMappings` is rejected.
//! - `DNSName` is the address the data plane's listeners bind on (`127.0.0.1` unless the node
//!   configures another), so a client on this machine reaches `http://<DNSName>:<port>`.
//! - Berth has no VPCs: every load balancer reports [`BERTH_VPC_ID`], and so does a target group
//!   created without `VpcId` (one given is stored and echoed). `CanonicalHostedZoneId` is AWS's
//!   Route 53 hosted zone of application load balancers in the region.
//! - Only HTTP listeners: listener certificates are always none, and DescribeSSLPolicies lists
//!   AWS's policies for what their names mean.
//! - Attributes are AWS's full sets with AWS's defaults ([`attributes`]); the data plane reads
//!   them from the records.
//!
//! Target health comes from a [`TargetHealthSource`] (the data plane implements it); with none
//! attached, DescribeTargetHealth says so (state `unavailable`) instead of inventing a state.

use std::sync::Arc;

use api::{ApiError, RequestContext};
use async_trait::async_trait;
use elbv2_wire::{Form, Request, Response};
use store::Store;

mod account;
pub mod attributes;
pub mod data_plane;
mod ids;
mod listeners;
mod load_balancers;
mod records;
mod rules;
pub mod service_targets;
mod tags;
mod target_groups;
mod targets;

pub use targets::{ObservedAnomaly, ObservedTargetHealth, TargetHealthSource, TargetHealthState};

#[cfg(test)]
mod tests;

/// The VPC every Berth load balancer and target group is in (Berth has no VPCs of its own: a
/// target group created without `VpcId` is in this one, and load balancers report it).
pub const BERTH_VPC_ID: &str = "vpc-0000000000000be47";

/// The ELBv2 query service.
pub struct Elbv2 {
    store: Arc<dyn Store>,
    dns_name: String,
    health: Option<Arc<dyn TargetHealthSource>>,
}

/// Operations dispatched by [`Elbv2::handle`]; every other action of the model answers
/// `InvalidAction` exactly as an unknown action does.
pub const SUPPORTED_OPERATIONS: &[&str] = &[
    "CreateLoadBalancer",
    "DescribeLoadBalancers",
    "DeleteLoadBalancer",
    "DescribeLoadBalancerAttributes",
    "ModifyLoadBalancerAttributes",
    "CreateTargetGroup",
    "DescribeTargetGroups",
    "ModifyTargetGroup",
    "DeleteTargetGroup",
    "DescribeTargetGroupAttributes",
    "ModifyTargetGroupAttributes",
    "CreateListener",
    "DescribeListeners",
    "ModifyListener",
    "DeleteListener",
    "CreateRule",
    "DescribeRules",
    "ModifyRule",
    "DeleteRule",
    "SetRulePriorities",
    "SetSubnets",
    "SetSecurityGroups",
    "SetIpAddressType",
    "DescribeCapacityReservation",
    "DescribeListenerAttributes",
    "ModifyListenerAttributes",
    "DescribeListenerCertificates",
    "AddListenerCertificates",
    "RemoveListenerCertificates",
    "DescribeSSLPolicies",
    "DescribeAccountLimits",
    "RegisterTargets",
    "DeregisterTargets",
    "DescribeTargetHealth",
    "AddTags",
    "RemoveTags",
    "DescribeTags",
];

impl Elbv2 {
    pub const DEFAULT_DNS_NAME: &'static str = "127.0.0.1";

    pub fn new(store: Arc<dyn Store>) -> Self {
        Elbv2 {
            store,
            dns_name: Self::DEFAULT_DNS_NAME.to_string(),
            health: None,
        }
    }

    /// The address load balancers report as `DNSName` (where the data plane listens).
    pub fn with_dns_name(mut self, dns_name: impl Into<String>) -> Self {
        self.dns_name = dns_name.into();
        self
    }

    /// Attaches the data plane's view of target health.
    pub fn with_target_health(mut self, source: Arc<dyn TargetHealthSource>) -> Self {
        self.health = Some(source);
        self
    }

    pub(crate) fn store(&self) -> &dyn Store {
        &*self.store
    }

    /// Runs the query request whose form parameters are `params`; returns the XML document.
    pub async fn handle(&self, ctx: &RequestContext, params: &[u8]) -> Result<Vec<u8>, ApiError> {
        let form = Form::parse(params);
        let action = form.action().unwrap_or("").to_string();
        if let Some(version) = form.get("Version") {
            if version != elbv2_wire::API_VERSION {
                return Err(error(
                    "InvalidAction",
                    format!(
                        "Version {version} is not supported; use {}",
                        elbv2_wire::API_VERSION
                    ),
                ));
            }
        }
        match action.as_str() {
            "CreateLoadBalancer" => {
                respond(ctx, self.create_load_balancer(ctx, decode(&form)?).await)
            }
            "DescribeLoadBalancers" => {
                respond(ctx, self.describe_load_balancers(ctx, decode(&form)?).await)
            }
            "DeleteLoadBalancer" => {
                respond(ctx, self.delete_load_balancer(ctx, decode(&form)?).await)
            }
            "DescribeLoadBalancerAttributes" => respond(
                ctx,
                self.describe_load_balancer_attributes(ctx, decode(&form)?)
                    .await,
            ),
            "ModifyLoadBalancerAttributes" => respond(
                ctx,
                self.modify_load_balancer_attributes(ctx, decode(&form)?)
                    .await,
            ),
            "CreateTargetGroup" => {
                respond(ctx, self.create_target_group(ctx, decode(&form)?).await)
            }
            "DescribeTargetGroups" => {
                respond(ctx, self.describe_target_groups(ctx, decode(&form)?).await)
            }
            "ModifyTargetGroup" => {
                respond(ctx, self.modify_target_group(ctx, decode(&form)?).await)
            }
            "DeleteTargetGroup" => {
                respond(ctx, self.delete_target_group(ctx, decode(&form)?).await)
            }
            "DescribeTargetGroupAttributes" => respond(
                ctx,
                self.describe_target_group_attributes(ctx, decode(&form)?)
                    .await,
            ),
            "ModifyTargetGroupAttributes" => respond(
                ctx,
                self.modify_target_group_attributes(ctx, decode(&form)?)
                    .await,
            ),
            "CreateListener" => respond(ctx, self.create_listener(ctx, decode(&form)?).await),
            "DescribeListeners" => respond(ctx, self.describe_listeners(ctx, decode(&form)?).await),
            "ModifyListener" => respond(ctx, self.modify_listener(ctx, decode(&form)?).await),
            "DeleteListener" => respond(ctx, self.delete_listener(ctx, decode(&form)?).await),
            "CreateRule" => respond(ctx, self.create_rule(ctx, decode(&form)?).await),
            "DescribeRules" => respond(ctx, self.describe_rules(ctx, decode(&form)?).await),
            "ModifyRule" => respond(ctx, self.modify_rule(ctx, decode(&form)?).await),
            "DeleteRule" => respond(ctx, self.delete_rule(ctx, decode(&form)?).await),
            "SetRulePriorities" => {
                respond(ctx, self.set_rule_priorities(ctx, decode(&form)?).await)
            }
            "SetSubnets" => respond(ctx, self.set_subnets(ctx, decode(&form)?).await),
            "SetSecurityGroups" => {
                respond(ctx, self.set_security_groups(ctx, decode(&form)?).await)
            }
            "SetIpAddressType" => respond(ctx, self.set_ip_address_type(ctx, decode(&form)?).await),
            "DescribeCapacityReservation" => respond(
                ctx,
                self.describe_capacity_reservation(ctx, decode(&form)?)
                    .await,
            ),
            "DescribeListenerAttributes" => respond(
                ctx,
                self.describe_listener_attributes(ctx, decode(&form)?).await,
            ),
            "ModifyListenerAttributes" => respond(
                ctx,
                self.modify_listener_attributes(ctx, decode(&form)?).await,
            ),
            "DescribeListenerCertificates" => respond(
                ctx,
                self.describe_listener_certificates(ctx, decode(&form)?)
                    .await,
            ),
            "AddListenerCertificates" => respond(
                ctx,
                self.add_listener_certificates(ctx, decode(&form)?).await,
            ),
            "RemoveListenerCertificates" => respond(
                ctx,
                self.remove_listener_certificates(ctx, decode(&form)?).await,
            ),
            "DescribeSSLPolicies" => respond(ctx, account::describe_ssl_policies(decode(&form)?)),
            "DescribeAccountLimits" => {
                respond(ctx, account::describe_account_limits(decode(&form)?))
            }
            "RegisterTargets" => respond(ctx, self.register_targets(ctx, decode(&form)?).await),
            "DeregisterTargets" => respond(ctx, self.deregister_targets(ctx, decode(&form)?).await),
            "DescribeTargetHealth" => {
                respond(ctx, self.describe_target_health(ctx, decode(&form)?).await)
            }
            "AddTags" => respond(ctx, self.add_tags(ctx, decode(&form)?).await),
            "RemoveTags" => respond(ctx, self.remove_tags(ctx, decode(&form)?).await),
            "DescribeTags" => respond(ctx, self.describe_tags(ctx, decode(&form)?).await),
            "" => Err(error(
                "MissingAction",
                "The request must contain the parameter Action.",
            )),
            other => Err(invalid_action(other)),
        }
    }
}

#[async_trait]
impl control_plane::QueryService for Elbv2 {
    fn signing_name(&self) -> &str {
        elbv2_wire::SIGNING_NAME
    }

    async fn handle(&self, ctx: &RequestContext, params: &[u8]) -> Result<Vec<u8>, ApiError> {
        Elbv2::handle(self, ctx, params).await
    }
}

fn decode<R: Request>(form: &Form) -> Result<R, ApiError> {
    R::decode(form).map_err(validation)
}

fn respond<R: Response>(
    ctx: &RequestContext,
    result: Result<R, ApiError>,
) -> Result<Vec<u8>, ApiError> {
    result.map(|response| response.to_xml_document(&ctx.request_id))
}

/// An ELBv2 error with the HTTP status the model gives `code`.
pub(crate) fn error(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        code,
        message: message.into(),
        http_status: elbv2_wire::error_http_status(code),
        members: Default::default(),
        query_code: None,
    }
}

pub(crate) fn validation(message: impl Into<String>) -> ApiError {
    error("ValidationError", message)
}

/// What unknown actions and the model's actions Berth does not implement answer.
pub(crate) fn invalid_action(action: &str) -> ApiError {
    error(
        "InvalidAction",
        format!(
            "The action {action} is not valid for this web service. Berth's ELBv2 supports: {}.",
            SUPPORTED_OPERATIONS.join(", ")
        ),
    )
}

/// A parameter of the model that Berth does not implement; present means rejected.
pub(crate) fn reject_unsupported(parameters: &[(&str, bool)]) -> Result<(), ApiError> {
    match parameters.iter().find(|(_, present)| *present) {
        Some((name, _)) => Err(validation(format!(
            "Berth does not support the parameter {name}; remove it from the request"
        ))),
        None => Ok(()),
    }
}

/// The `(key, value)` pairs of a Modify…Attributes request (checked by `attributes`).
pub(crate) fn attribute_changes(
    attributes: impl IntoIterator<Item = (Option<String>, Option<String>)>,
) -> Vec<(String, String)> {
    attributes
        .into_iter()
        .map(|(key, value)| (key.unwrap_or_default(), value.unwrap_or_default()))
        .collect()
}

/// `Some(n)` page size in 1..=400 (the wire already checks the range), default 400.
pub(crate) fn page_size(page_size: Option<i32>) -> usize {
    page_size.map_or(400, |size| size.clamp(1, 400) as usize)
}

/// One page of `items` (already in key order) after `marker`; the next marker if more remain.
pub(crate) fn paginate<T>(
    items: Vec<(String, T)>,
    marker: Option<&str>,
    page_size: usize,
) -> (Vec<T>, Option<String>) {
    let start = match marker {
        Some(marker) => items
            .iter()
            .position(|(key, _)| key.as_str() > marker)
            .unwrap_or(items.len()),
        None => 0,
    };
    let remaining = items.len() - start;
    let mut page: Vec<(String, T)> = items.into_iter().skip(start).take(page_size).collect();
    let next = (remaining > page_size)
        .then(|| page.last().map(|(key, _)| key.clone()))
        .flatten();
    (page.drain(..).map(|(_, item)| item).collect(), next)
}
