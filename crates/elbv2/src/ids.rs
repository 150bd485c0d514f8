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
    match resource_parts(ctx, arn).as_deref() {
        Some(["listener", "app", lb_name, _lb_id, id]) => Ok((lb_name, id)),
        _ => Err(listener_not_found()),
    }
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
