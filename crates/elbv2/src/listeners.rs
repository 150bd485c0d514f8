//! CreateListener, DescribeListeners, ModifyListener, DeleteListener and the validation of
//! actions (forward, fixed-response, redirect).

use std::collections::BTreeSet;

use api::{ApiError, RequestContext};
use elbv2_wire::{
    Action, AddListenerCertificatesInput, AddListenerCertificatesOutput, CreateListenerInput,
    CreateListenerOutput, DeleteListenerInput, DeleteListenerOutput,
    DescribeListenerAttributesInput, DescribeListenerAttributesOutput,
    DescribeListenerCertificatesInput, DescribeListenerCertificatesOutput, DescribeListenersInput,
    DescribeListenersOutput, Listener, ListenerAttribute, ModifyListenerAttributesInput,
    ModifyListenerAttributesOutput, ModifyListenerInput, ModifyListenerOutput,
    RemoveListenerCertificatesInput, RemoveListenerCertificatesOutput,
};

use crate::ids::{self, listener_not_found};
use crate::records::{self, ListenerRecord, RuleRecord, TargetGroupRecord, Versioned, Write};
use crate::{
    attribute_changes, attributes, error, paginate, reject_unsupported, tags, validation, Elbv2,
};

/// The target groups `actions` forward to.
pub(crate) fn forwarded_target_groups(actions: &[Action]) -> BTreeSet<String> {
    let mut arns = BTreeSet::new();
    for action in actions {
        if let Some(arn) = &action.target_group_arn {
            arns.insert(arn.clone());
        }
        for tuple in action
            .forward_config
            .iter()
            .flat_map(|config| config.target_groups.iter().flatten())
        {
            if let Some(arn) = &tuple.target_group_arn {
                arns.insert(arn.clone());
            }
        }
    }
    arns
}

/// Checks one action list (Berth supports exactly one terminal action: forward,
/// fixed-response or redirect) and returns it normalised (`Order` 1 when absent).
pub(crate) fn validate_actions(actions: Vec<Action>) -> Result<Vec<Action>, ApiError> {
    // Authentication comes before a forward: refuse it for what it is, not for the count.
    if let Some(kind) = actions.iter().find_map(|action| {
        action
            .type_
            .as_deref()
            .filter(|kind| matches!(*kind, "authenticate-cognito" | "authenticate-oidc"))
    }) {
        return Err(validation(format!(
            "Berth does not support actions of type '{kind}': it authenticates no users; use \
             forward, fixed-response or redirect"
        )));
    }
    let [mut action]: [Action; 1] = actions.try_into().map_err(|actions: Vec<Action>| {
        validation(format!(
            "Berth supports exactly one action (forward, fixed-response or redirect) per list; \
             {} were given",
            actions.len()
        ))
    })?;
    let kind = action.type_.clone().unwrap_or_default();
    let has = |present: bool, member: &str| -> Result<(), ApiError> {
        if present {
            Err(validation(format!(
                "{member} cannot be specified for an action of type '{kind}'"
            )))
        } else {
            Ok(())
        }
    };
    has(
        action.authenticate_oidc_config.is_some(),
        "AuthenticateOidcConfig",
    )?;
    has(
        action.authenticate_cognito_config.is_some(),
        "AuthenticateCognitoConfig",
    )?;
    match kind.as_str() {
        "forward" => {
            has(action.redirect_config.is_some(), "RedirectConfig")?;
            has(action.fixed_response_config.is_some(), "FixedResponseConfig")?;
            let tuples = action
                .forward_config
                .as_ref()
                .and_then(|config| config.target_groups.clone())
                .unwrap_or_default();
            if let Some(stickiness) = action.forward_config.as_ref().and_then(|c| c.target_group_stickiness_config.as_ref()) {
                if stickiness.enabled == Some(true) {
                    return Err(validation(
                        "Berth does not support target group stickiness across a forward action's target groups",
                    ));
                }
            }
            match (&action.target_group_arn, tuples.as_slice()) {
                (None, []) => {
                    return Err(validation(
                        "A target group ARN must be specified for an action of type 'forward'",
                    ))
                }
                (Some(arn), [only]) if only.target_group_arn.as_ref() != Some(arn) => {
                    return Err(validation(
                        "TargetGroupArn and ForwardConfig must name the same single target group",
                    ))
                }
                (Some(_), [_, _, ..]) => {
                    return Err(validation(
                        "TargetGroupArn cannot be specified with more than one target group in ForwardConfig",
                    ))
                }
                _ => {}
            }
            if tuples.len() > 5 {
                return Err(validation("A forward action can have at most 5 target groups"));
            }
            let mut seen = BTreeSet::new();
            for tuple in &tuples {
                let arn = tuple.target_group_arn.clone().unwrap_or_default();
                if !seen.insert(arn.clone()) {
                    return Err(validation(format!("Target group '{arn}' is specified more than once")));
                }
                if let Some(weight) = tuple.weight.filter(|weight| !(0..=999).contains(weight)) {
                    return Err(validation(format!("Target group weight {weight} must be between 0 and 999")));
                }
            }
        }
        "fixed-response" => {
            has(action.redirect_config.is_some(), "RedirectConfig")?;
            has(action.forward_config.is_some() || action.target_group_arn.is_some(), "ForwardConfig/TargetGroupArn")?;
            let config = action.fixed_response_config.as_ref().ok_or_else(|| {
                validation("FixedResponseConfig must be specified for an action of type 'fixed-response'")
            })?;
            let status = config.status_code.clone().unwrap_or_default();
            let valid_status = status.len() == 3
                && status.chars().all(|c| c.is_ascii_digit())
                && matches!(status.as_bytes()[0], b'2' | b'4' | b'5');
            if !valid_status {
                return Err(validation(format!("Fixed response status code '{status}' must be 2XX, 4XX or 5XX")));
            }
            if let Some(content_type) = &config.content_type {
                const TYPES: [&str; 5] = ["text/plain", "text/css", "text/html", "application/javascript", "application/json"];
                if !TYPES.contains(&content_type.as_str()) {
                    return Err(validation(format!(
                        "Fixed response content type '{content_type}' must be one of {}",
                        TYPES.join(", ")
                    )));
                }
            }
        }
        "redirect" => {
            has(action.fixed_response_config.is_some(), "FixedResponseConfig")?;
            has(action.forward_config.is_some() || action.target_group_arn.is_some(), "ForwardConfig/TargetGroupArn")?;
            let config = action.redirect_config.as_ref().ok_or_else(|| {
                validation("RedirectConfig must be specified for an action of type 'redirect'")
            })?;
            if let Some(protocol) = &config.protocol {
                if !["HTTP", "HTTPS", "#{protocol}"].contains(&protocol.as_str()) {
                    return Err(validation(format!("Redirect protocol '{protocol}' must be HTTP, HTTPS or #{{protocol}}")));
                }
            }
            if let Some(path) = &config.path {
                if !path.starts_with('/') {
                    return Err(validation(format!("Redirect path '{path}' must start with '/'")));
                }
            }
            let unchanged = |value: &Option<String>, default: &str| value.as_deref().is_none_or(|v| v == default);
            if unchanged(&config.protocol, "#{protocol}")
                && unchanged(&config.port, "#{port}")
                && unchanged(&config.host, "#{host}")
                && unchanged(&config.path, "/#{path}")
                && unchanged(&config.query, "#{query}")
            {
                return Err(error(
                    "InvalidLoadBalancerAction",
                    "The redirect must change at least one of protocol, port, host, path or query",
                ));
            }
        }
        other => {
            return Err(validation(format!(
                "Action type '{other}' is not supported by Berth; use forward, fixed-response or redirect"
            )))
        }
    }
    action.order.get_or_insert(1);
    Ok(vec![action])
}

/// An application load balancer listener's protocol: AWS's HTTP or HTTPS, and of those Berth
/// serves HTTP.
fn validate_protocol(protocol: &str) -> Result<(), ApiError> {
    match protocol {
        "HTTP" => Ok(()),
        "HTTPS" => Err(validation(
            "Listener protocol 'HTTPS' is not supported by Berth; use HTTP",
        )),
        other => Err(validation(format!(
            "Listener protocol '{other}' must be one of 'HTTPS, HTTP'"
        ))),
    }
}

impl Elbv2 {
    fn listener_wire(record: &ListenerRecord) -> Listener {
        Listener {
            listener_arn: Some(record.arn.clone()),
            load_balancer_arn: Some(record.load_balancer_arn.clone()),
            port: Some(record.port),
            protocol: Some(record.protocol.clone()),
            default_actions: Some(record.default_actions.clone()),
            ..Default::default()
        }
    }

    pub(crate) async fn find_listener(
        &self,
        ctx: &RequestContext,
        arn: &str,
    ) -> Result<(String, Versioned<ListenerRecord>), ApiError> {
        let (lb_name, id) = ids::parse_listener_arn(ctx, arn)?;
        let key = records::listener_key(&ctx.region, lb_name, id);
        match records::get::<ListenerRecord>(self.store(), &key).await? {
            Some(found) if found.value.arn == arn => Ok((key, found)),
            _ => Err(listener_not_found()),
        }
    }

    /// The target groups `arns` with their revisions; TargetGroupNotFound if one is missing.
    pub(crate) async fn target_groups_for(
        &self,
        ctx: &RequestContext,
        arns: &BTreeSet<String>,
    ) -> Result<Vec<Versioned<TargetGroupRecord>>, ApiError> {
        let mut groups = Vec::new();
        for arn in arns {
            groups.push(self.find_target_group(ctx, arn).await?);
        }
        Ok(groups)
    }

    pub(crate) async fn create_listener(
        &self,
        ctx: &RequestContext,
        request: CreateListenerInput,
    ) -> Result<CreateListenerOutput, ApiError> {
        reject_unsupported(&[
            ("SslPolicy", request.ssl_policy.is_some()),
            ("Certificates", request.certificates.is_some()),
            ("AlpnPolicy", request.alpn_policy.is_some()),
            (
                "MutualAuthentication",
                request.mutual_authentication.is_some(),
            ),
        ])?;
        let protocol = request
            .protocol
            .clone()
            .ok_or_else(|| validation("A protocol must be specified"))?;
        validate_protocol(&protocol)?;
        let port = request
            .port
            .ok_or_else(|| validation("A listener port must be specified"))?;
        let actions = validate_actions(request.default_actions.clone().unwrap_or_default())?;
        let tags = tags::validate_new(request.tags.as_deref())?;
        let load_balancer_arn = request.load_balancer_arn.clone().unwrap_or_default();
        for _ in 0..records::MAX_CAS_ATTEMPTS {
            let load_balancer = self.find_load_balancer(ctx, &load_balancer_arn).await?;
            let (lb_name, lb_id) = ids::parse_load_balancer_arn(ctx, &load_balancer_arn)?;
            let listeners = records::list::<ListenerRecord>(
                self.store(),
                &records::listeners_prefix(&ctx.region, lb_name),
            )
            .await?;
            if let Some((_, existing)) = listeners.iter().find(|(_, l)| l.value.port == port) {
                if existing.value.protocol == protocol && existing.value.default_actions == actions
                {
                    return Ok(CreateListenerOutput {
                        listeners: Some(vec![Self::listener_wire(&existing.value)]),
                    });
                }
                return Err(error(
                    "DuplicateListener",
                    format!("A listener already exists on port {port} of this load balancer"),
                ));
            }
            let max_listeners = crate::account::limit("listeners-per-application-load-balancer");
            if listeners.len() >= max_listeners {
                return Err(error(
                    "TooManyListeners",
                    format!("A load balancer can have at most {max_listeners} listeners"),
                ));
            }
            let id = ids::new_id(ctx, "listener", &format!("{lb_name}:{port}"));
            let record = ListenerRecord {
                arn: ids::listener_arn(ctx, lb_name, lb_id, &id),
                load_balancer_arn: load_balancer_arn.clone(),
                port,
                protocol: protocol.clone(),
                default_actions: actions.clone(),
                tags: tags.clone(),
                default_rule_tags: Default::default(),
                attributes: attributes::listener_defaults(),
            };
            let mut groups = self
                .target_groups_for(ctx, &record.target_group_arns())
                .await?;
            let lb_key = records::load_balancer_key(&ctx.region, lb_name);
            let key = records::listener_key(&ctx.region, lb_name, &id);
            let mut write = Write::new()
                .expect(&lb_key, load_balancer.mod_revision)
                .expect(&key, 0)
                .put(&key, &record);
            for group in &mut groups {
                let group_key = records::target_group_key(&ctx.region, &group.value.name);
                group.value.used_by_listeners.insert(record.arn.clone());
                group
                    .value
                    .load_balancer_arns
                    .insert(load_balancer_arn.clone());
                write = write
                    .expect(&group_key, group.mod_revision)
                    .put(&group_key, &group.value);
            }
            if write.commit(self.store()).await? {
                return Ok(CreateListenerOutput {
                    listeners: Some(vec![Self::listener_wire(&record)]),
                });
            }
        }
        Err(records::too_much_contention("listeners"))
    }

    pub(crate) async fn describe_listeners(
        &self,
        ctx: &RequestContext,
        request: DescribeListenersInput,
    ) -> Result<DescribeListenersOutput, ApiError> {
        let arns = request.listener_arns.unwrap_or_default();
        let selected: Vec<(String, ListenerRecord)> =
            match (&request.load_balancer_arn, arns.is_empty()) {
                (Some(_), false) => {
                    return Err(validation(
                        "Listener ARNs and a load balancer ARN cannot be specified together",
                    ))
                }
                (Some(load_balancer_arn), true) => {
                    let load_balancer = self.find_load_balancer(ctx, load_balancer_arn).await?;
                    records::list::<ListenerRecord>(
                        self.store(),
                        &records::listeners_prefix(&ctx.region, &load_balancer.value.name),
                    )
                    .await?
                    .into_iter()
                    .map(|(key, listener)| (key, listener.value))
                    .collect()
                }
                (None, false) => {
                    let mut found = Vec::new();
                    for arn in &arns {
                        let (key, listener) = self.find_listener(ctx, arn).await?;
                        found.push((key, listener.value));
                    }
                    found.sort_by(|a, b| a.0.cmp(&b.0));
                    found.dedup_by(|a, b| a.0 == b.0);
                    found
                }
                (None, true) => {
                    return Err(validation(
                        "You must specify either listener ARNs or a load balancer ARN",
                    ))
                }
            };
        let (page, next_marker) = paginate(
            selected,
            request.marker.as_deref(),
            crate::page_size(request.page_size),
        );
        Ok(DescribeListenersOutput {
            listeners: Some(page.iter().map(Self::listener_wire).collect()),
            next_marker,
        })
    }

    pub(crate) async fn modify_listener(
        &self,
        ctx: &RequestContext,
        request: ModifyListenerInput,
    ) -> Result<ModifyListenerOutput, ApiError> {
        reject_unsupported(&[
            ("SslPolicy", request.ssl_policy.is_some()),
            ("Certificates", request.certificates.is_some()),
            ("AlpnPolicy", request.alpn_policy.is_some()),
            (
                "MutualAuthentication",
                request.mutual_authentication.is_some(),
            ),
        ])?;
        if let Some(protocol) = request.protocol.as_deref() {
            validate_protocol(protocol)?;
        }
        let new_actions = request
            .default_actions
            .clone()
            .map(validate_actions)
            .transpose()?;
        let arn = request.listener_arn.clone().unwrap_or_default();
        for _ in 0..records::MAX_CAS_ATTEMPTS {
            let (key, listener) = self.find_listener(ctx, &arn).await?;
            let mut updated = listener.value.clone();
            if let Some(port) = request.port {
                updated.port = port;
            }
            if let Some(actions) = &new_actions {
                updated.default_actions = actions.clone();
            }
            let (lb_name, _) = ids::parse_listener_arn(ctx, &arn)?;
            if updated.port != listener.value.port {
                let siblings = records::list::<ListenerRecord>(
                    self.store(),
                    &records::listeners_prefix(&ctx.region, lb_name),
                )
                .await?;
                if siblings
                    .iter()
                    .any(|(_, l)| l.value.arn != arn && l.value.port == updated.port)
                {
                    return Err(error(
                        "DuplicateListener",
                        format!(
                            "A listener already exists on port {} of this load balancer",
                            updated.port
                        ),
                    ));
                }
            }
            let before = listener.value.target_group_arns();
            let after = updated.target_group_arns();
            let touched: BTreeSet<String> = before.union(&after).cloned().collect();
            let mut groups = self.target_groups_for(ctx, &touched).await?;
            let mut write = Write::new()
                .expect(&key, listener.mod_revision)
                .put(&key, &updated);
            for group in &mut groups {
                let group_key = records::target_group_key(&ctx.region, &group.value.name);
                if after.contains(&group.value.arn) {
                    group.value.used_by_listeners.insert(arn.clone());
                } else {
                    group.value.used_by_listeners.remove(&arn);
                }
                group.value.refresh_load_balancer_arns();
                write = write
                    .expect(&group_key, group.mod_revision)
                    .put(&group_key, &group.value);
            }
            if write.commit(self.store()).await? {
                return Ok(ModifyListenerOutput {
                    listeners: Some(vec![Self::listener_wire(&updated)]),
                });
            }
        }
        Err(records::too_much_contention("listeners"))
    }

    /// Deleting a listener deletes its rules.
    pub(crate) async fn delete_listener(
        &self,
        ctx: &RequestContext,
        request: DeleteListenerInput,
    ) -> Result<DeleteListenerOutput, ApiError> {
        let arn = request.listener_arn.unwrap_or_default();
        for _ in 0..records::MAX_CAS_ATTEMPTS {
            let (key, listener) = self.find_listener(ctx, &arn).await?;
            let (lb_name, listener_id) = ids::parse_listener_arn(ctx, &arn)?;
            let rules = records::list::<RuleRecord>(
                self.store(),
                &records::rules_prefix(&ctx.region, lb_name, listener_id),
            )
            .await?;
            let mut write = Write::new()
                .expect(&key, listener.mod_revision)
                .delete(&key);
            let mut touched = listener.value.target_group_arns();
            for (rule_key, rule) in &rules {
                write = write.expect(rule_key, rule.mod_revision).delete(rule_key);
                touched.extend(rule.value.target_group_arns());
            }
            for group in &mut self.existing_target_groups(ctx, &touched).await? {
                let group_key = records::target_group_key(&ctx.region, &group.value.name);
                group.value.used_by_listeners.remove(&arn);
                for (_, rule) in &rules {
                    group.value.used_by_rules.remove(&rule.value.arn);
                }
                group.value.refresh_load_balancer_arns();
                write = write
                    .expect(&group_key, group.mod_revision)
                    .put(&group_key, &group.value);
            }
            if write.commit(self.store()).await? {
                return Ok(DeleteListenerOutput {});
            }
        }
        Err(records::too_much_contention("listeners"))
    }

    pub(crate) async fn describe_listener_attributes(
        &self,
        ctx: &RequestContext,
        request: DescribeListenerAttributesInput,
    ) -> Result<DescribeListenerAttributesOutput, ApiError> {
        let arn = request.listener_arn.unwrap_or_default();
        let (_, listener) = self.find_listener(ctx, &arn).await?;
        Ok(DescribeListenerAttributesOutput {
            attributes: Some(listener_attributes_wire(&attributes::listener_attributes(
                &listener.value.attributes,
            ))),
        })
    }

    pub(crate) async fn modify_listener_attributes(
        &self,
        ctx: &RequestContext,
        request: ModifyListenerAttributesInput,
    ) -> Result<ModifyListenerAttributesOutput, ApiError> {
        let changes = attribute_changes(
            request
                .attributes
                .unwrap_or_default()
                .into_iter()
                .map(|attribute| (attribute.key, attribute.value)),
        );
        attributes::modify_listener(&Default::default(), &changes)?;
        let arn = request.listener_arn.unwrap_or_default();
        for _ in 0..records::MAX_CAS_ATTEMPTS {
            let (key, mut listener) = self.find_listener(ctx, &arn).await?;
            listener.value.attributes =
                attributes::modify_listener(&listener.value.attributes, &changes)?;
            if Write::new()
                .expect(&key, listener.mod_revision)
                .put(&key, &listener.value)
                .commit(self.store())
                .await?
            {
                return Ok(ModifyListenerAttributesOutput {
                    attributes: Some(listener_attributes_wire(&listener.value.attributes)),
                });
            }
        }
        Err(records::too_much_contention("listeners"))
    }

    /// Berth's listeners are HTTP listeners, which have no certificates.
    pub(crate) async fn describe_listener_certificates(
        &self,
        ctx: &RequestContext,
        request: DescribeListenerCertificatesInput,
    ) -> Result<DescribeListenerCertificatesOutput, ApiError> {
        self.find_listener(ctx, request.listener_arn.as_deref().unwrap_or_default())
            .await?;
        Ok(DescribeListenerCertificatesOutput {
            certificates: Some(Vec::new()),
            next_marker: None,
        })
    }

    pub(crate) async fn add_listener_certificates(
        &self,
        ctx: &RequestContext,
        request: AddListenerCertificatesInput,
    ) -> Result<AddListenerCertificatesOutput, ApiError> {
        self.find_listener(ctx, request.listener_arn.as_deref().unwrap_or_default())
            .await?;
        Err(no_certificates())
    }

    pub(crate) async fn remove_listener_certificates(
        &self,
        ctx: &RequestContext,
        request: RemoveListenerCertificatesInput,
    ) -> Result<RemoveListenerCertificatesOutput, ApiError> {
        self.find_listener(ctx, request.listener_arn.as_deref().unwrap_or_default())
            .await?;
        Err(no_certificates())
    }

    /// The target groups of `arns` that still exist (a group referenced by a record being
    /// deleted may be gone already), with their revisions.
    pub(crate) async fn existing_target_groups(
        &self,
        ctx: &RequestContext,
        arns: &BTreeSet<String>,
    ) -> Result<Vec<Versioned<TargetGroupRecord>>, ApiError> {
        let mut groups = Vec::new();
        for arn in arns {
            match self.find_target_group(ctx, arn).await {
                Ok(group) => groups.push(group),
                Err(err) if err.code == "TargetGroupNotFound" => {}
                Err(err) => return Err(err),
            }
        }
        Ok(groups)
    }
}

fn no_certificates() -> ApiError {
    validation(
        "Berth's listeners are HTTP listeners, which have no certificates (Berth does not \
         support HTTPS listeners)",
    )
}

fn listener_attributes_wire(
    attributes: &std::collections::BTreeMap<String, String>,
) -> Vec<ListenerAttribute> {
    attributes
        .iter()
        .map(|(key, value)| ListenerAttribute {
            key: Some(key.clone()),
            value: Some(value.clone()),
        })
        .collect()
}
