//! ARNs and ids. Ids are derived from the request id (unique per request) and the resource
//! name, so they need no randomness: `hex(sha256(request_id / kind / name))[..16]`.

use api::{ApiError, RequestContext};
use sha2::{Digest, Sha256};

use crate::error;

pub(crate) fn new_id(ctx: &RequestContext, kind: &str, name: &str) -> String {
    let digest = Sha256::digest(format!("{}/{kind}/{name}", ctx.request_id).as_bytes());
    hex::encode(&digest[..8])
}

fn arn_prefix(ctx: &RequestContext) -> String {
    format!(
        "arn:aws:elasticloadbalancing:{}:{}:",
        ctx.region, ctx.account_id
    )
}

pub(crate) fn load_balancer_arn(ctx: &RequestContext, name: &str, id: &str) -> String {
    format!("{}loadbalancer/app/{name}/{id}", arn_prefix(ctx))
}

pub(crate) fn target_group_arn(ctx: &RequestContext, name: &str, id: &str) -> String {
    format!("{}targetgroup/{name}/{id}", arn_prefix(ctx))
}

pub(crate) fn listener_arn(ctx: &RequestContext, lb_name: &str, lb_id: &str, id: &str) -> String {
    format!("{}listener/app/{lb_name}/{lb_id}/{id}", arn_prefix(ctx))
}

pub(crate) fn rule_arn(
    ctx: &RequestContext,
    lb_name: &str,
    lb_id: &str,
    listener_id: &str,
    id: &str,
) -> String {
    format!(
        "{}listener-rule/app/{lb_name}/{lb_id}/{listener_id}/{id}",
        arn_prefix(ctx)
    )
}

/// The id of a listener's default rule: derived from the listener's ARN, so the default rule
/// needs no record of its own and keeps its ARN for the listener's lifetime.
pub(crate) fn default_rule_id(listener_arn: &str) -> String {
    let digest = Sha256::digest(format!("{listener_arn}/default-rule").as_bytes());
    hex::encode(&digest[..8])
}

/// The ARN of the default rule of the listener `listener_arn`.
pub(crate) fn default_rule_arn(listener_arn: &str) -> String {
    let rule = listener_arn.replacen(":listener/", ":listener-rule/", 1);
    format!("{rule}/{}", default_rule_id(listener_arn))
}

/// The load balancer ARN a listener or rule ARN names (both begin with the load balancer's
/// name and id); `None` for any other ARN.
pub(crate) fn load_balancer_arn_of(arn: &str) -> Option<String> {
    let (prefix, resource) = arn.split_once(":listener")?;
    let mut parts = resource.trim_start_matches("-rule").split('/').skip(1);
    match (parts.next(), parts.next(), parts.next()) {
        (Some("app"), Some(name), Some(id)) => {
            Some(format!("{prefix}:loadbalancer/app/{name}/{id}"))
        }
        _ => None,
    }
}

/// The resource part (`loadbalancer/app/x/1234`) of an ARN in this region and account,
/// split on `/`; `None` when the ARN is malformed or elsewhere.
pub(crate) fn resource_parts<'a>(ctx: &RequestContext, arn: &'a str) -> Option<Vec<&'a str>> {
    let resource = arn.strip_prefix(&arn_prefix(ctx))?;
    Some(resource.split('/').collect())
}

/// `Ok((name, id))` of a load balancer ARN, `LoadBalancerNotFound` otherwise.
pub(crate) fn parse_load_balancer_arn<'a>(
    ctx: &RequestContext,
    arn: &'a str,
) -> Result<(&'a str, &'a str), ApiError> {
    match resource_parts(ctx, arn).as_deref() {
        Some(["loadbalancer", "app", name, id]) => Ok((name, id)),
        _ => Err(load_balancer_not_found()),
    }
}

pub(crate) fn parse_target_group_arn<'a>(
    ctx: &RequestContext,
    arn: &'a str,
) -> Result<(&'a str, &'a str), ApiError> {
    match resource_parts(ctx, arn).as_deref() {
        Some(["targetgroup", name, id]) => Ok((name, id)),
        _ => Err(target_group_not_found()),
    }
}

/// `(load balancer name, listener id)`.
pub(crate) fn parse_listener_arn<'a>(
    ctx: &RequestContext,
    arn: &'a str,
) -> Result<(&'a str, &'a str), ApiError> {
    parse_listener_arn_parts(ctx, arn).map(|(lb_name, _, id)| (lb_name, id))
}

/// `(load balancer name, load balancer id, listener id)`.
pub(crate) fn parse_listener_arn_parts<'a>(
    ctx: &RequestContext,
    arn: &'a str,
) -> Result<(&'a str, &'a str, &'a str), ApiError> {
    match resource_parts(ctx, arn).as_deref() {
        Some(["listener", "app", lb_name, lb_id, id]) => Ok((lb_name, lb_id, id)),
        _ => Err(listener_not_found()),
    }
}

/// The parts of a rule ARN.
pub(crate) struct RuleArnParts<'a> {
    pub lb_name: &'a str,
    pub lb_id: &'a str,
    pub listener_id: &'a str,
    pub rule_id: &'a str,
}

impl RuleArnParts<'_> {
    pub fn listener_arn(&self, ctx: &RequestContext) -> String {
        listener_arn(ctx, self.lb_name, self.lb_id, self.listener_id)
    }
}

/// `RuleNotFound` unless `arn` is a rule ARN of this region and account.
pub(crate) fn parse_rule_arn<'a>(
    ctx: &RequestContext,
    arn: &'a str,
) -> Result<RuleArnParts<'a>, ApiError> {
    match resource_parts(ctx, arn).as_deref() {
        Some(["listener-rule", "app", lb_name, lb_id, listener_id, rule_id]) => Ok(RuleArnParts {
            lb_name,
            lb_id,
            listener_id,
            rule_id,
        }),
        _ => Err(rule_not_found()),
    }
}

pub(crate) fn rule_not_found() -> ApiError {
    error("RuleNotFound", "One or more rules not found")
}

pub(crate) fn load_balancer_not_found() -> ApiError {
    error(
        "LoadBalancerNotFound",
        "One or more load balancers not found",
    )
}

pub(crate) fn target_group_not_found() -> ApiError {
    error("TargetGroupNotFound", "One or more target groups not found")
}

pub(crate) fn listener_not_found() -> ApiError {
    error("ListenerNotFound", "One or more listeners not found")
}
