//! DescribeAccountLimits and DescribeSSLPolicies: account-wide answers that read no records.

use api::ApiError;
use elbv2_wire::{Cipher, SslPolicy};
use elbv2_wire::{
    DescribeAccountLimitsInput, DescribeAccountLimitsOutput, DescribeSSLPoliciesInput,
    DescribeSSLPoliciesOutput, Limit,
};

use crate::{error, paginate};

/// Elastic Load Balancing's default quotas, by the names DescribeAccountLimits uses (AWS's
/// `Limit.Name` values, the defaults of the load balancers' quotas pages).
const LIMITS: &[(&str, u32)] = &[
    ("application-load-balancers", 50),
    ("condition-values-per-alb-rule", 5),
    ("condition-wildcards-per-alb-rule", 5),
    ("gateway-load-balancers", 100),
    ("gateway-load-balancers-per-vpc", 100),
    ("geneve-target-groups", 100),
    ("listeners-per-application-load-balancer", 50),
    ("listeners-per-network-load-balancer", 50),
    ("network-load-balancers", 50),
    ("rules-per-application-load-balancer", 100),
    ("target-groups", 3000),
    ("target-groups-per-action-on-application-load-balancer", 5),
    ("target-groups-per-action-on-network-load-balancer", 1),
    ("target-groups-per-application-load-balancer", 100),
    ("targets-per-application-load-balancer", 1000),
    (
        "targets-per-availability-zone-per-gateway-load-balancer",
        300,
    ),
    (
        "targets-per-availability-zone-per-network-load-balancer",
        500,
    ),
    ("targets-per-network-load-balancer", 3000),
];

/// The quota named `name` (Berth enforces those of application load balancers).
pub(crate) fn limit(name: &str) -> usize {
    LIMITS
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, max)| *max as usize)
        .expect("a limit of the table")
}

pub(crate) fn describe_account_limits(
    request: DescribeAccountLimitsInput,
) -> Result<DescribeAccountLimitsOutput, ApiError> {
    let items = LIMITS
        .iter()
        .map(|(name, max)| {
            (
                name.to_string(),
                Limit {
                    name: Some(name.to_string()),
                    max: Some(max.to_string()),
                },
            )
        })
        .collect();
    let (limits, next_marker) = paginate(
        items,
        request.marker.as_deref(),
        crate::page_size(request.page_size),
    );
    Ok(DescribeAccountLimitsOutput {
        limits: Some(limits),
        next_marker,
    })
}

/// The security policies of HTTPS and TLS listeners, as DescribeSSLPolicies lists them on AWS
/// (name, protocols, ciphers in priority order). Berth's listeners are HTTP, so no policy is
/// applied to a connection; the list answers what a policy name means.
const SSL_POLICIES: &[(&str, &[&str], &[&str])] = &[
    ("ELBSecurityPolicy-2016-08", TLS_1_0_TO_1_2, CLASSIC),
    (
        "ELBSecurityPolicy-TLS13-1-2-2021-06",
        TLS_1_2_TO_1_3,
        TLS13_1_2,
    ),
    (
        "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
        TLS_1_2_TO_1_3,
        TLS13_1_2_RES,
    ),
    (
        "ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06",
        TLS_1_2_TO_1_3,
        TLS13_1_2_EXT1,
    ),
    (
        "ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06",
        TLS_1_2_TO_1_3,
        TLS13_1_2_EXT2,
    ),
    (
        "ELBSecurityPolicy-TLS13-1-1-2021-06",
        TLS_1_1_TO_1_3,
        TLS13_1_0,
    ),
    (
        "ELBSecurityPolicy-TLS13-1-0-2021-06",
        TLS_1_0_TO_1_3,
        TLS13_1_0,
    ),
    ("ELBSecurityPolicy-TLS13-1-3-2021-06", &["TLSv1.3"], TLS13),
    ("ELBSecurityPolicy-TLS-1-2-2017-01", TLS_1_2, TLS_1_2_2017),
    ("ELBSecurityPolicy-TLS-1-1-2017-01", TLS_1_1_TO_1_2, CLASSIC),
    ("ELBSecurityPolicy-TLS-1-2-Ext-2018-06", TLS_1_2, CLASSIC),
    (
        "ELBSecurityPolicy-FS-2018-06",
        TLS_1_0_TO_1_2,
        FORWARD_SECRECY,
    ),
    ("ELBSecurityPolicy-2015-05", TLS_1_0_TO_1_2, CLASSIC),
    (
        "ELBSecurityPolicy-TLS-1-0-2015-04",
        TLS_1_0_TO_1_2,
        CLASSIC_AND_3DES,
    ),
    (
        "ELBSecurityPolicy-FS-1-2-Res-2019-08",
        TLS_1_2,
        FS_1_2_RES_2019,
    ),
    (
        "ELBSecurityPolicy-FS-1-1-2019-08",
        TLS_1_1_TO_1_2,
        FORWARD_SECRECY,
    ),
    ("ELBSecurityPolicy-FS-1-2-2019-08", TLS_1_2, FORWARD_SECRECY),
    (
        "ELBSecurityPolicy-FS-1-2-Res-2020-10",
        TLS_1_2,
        FS_1_2_RES_2020,
    ),
];

const TLS_1_2: &[&str] = &["TLSv1.2"];
const TLS_1_1_TO_1_2: &[&str] = &["TLSv1.1", "TLSv1.2"];
const TLS_1_0_TO_1_2: &[&str] = &["TLSv1", "TLSv1.1", "TLSv1.2"];
const TLS_1_2_TO_1_3: &[&str] = &["TLSv1.2", "TLSv1.3"];
const TLS_1_1_TO_1_3: &[&str] = &["TLSv1.1", "TLSv1.2", "TLSv1.3"];
const TLS_1_0_TO_1_3: &[&str] = &["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"];

const TLS13: &[&str] = &[
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];
/// ELBSecurityPolicy-2016-08's ciphers (and several older policies').
const CLASSIC: &[&str] = &[
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES128-SHA256",
    "ECDHE-RSA-AES128-SHA256",
    "ECDHE-ECDSA-AES128-SHA",
    "ECDHE-RSA-AES128-SHA",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-AES256-SHA384",
    "ECDHE-RSA-AES256-SHA384",
    "ECDHE-RSA-AES256-SHA",
    "ECDHE-ECDSA-AES256-SHA",
    "AES128-GCM-SHA256",
    "AES128-SHA256",
    "AES128-SHA",
    "AES256-GCM-SHA384",
    "AES256-SHA256",
    "AES256-SHA",
];
const CLASSIC_AND_3DES: &[&str] = &[
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES128-SHA256",
    "ECDHE-RSA-AES128-SHA256",
    "ECDHE-ECDSA-AES128-SHA",
    "ECDHE-RSA-AES128-SHA",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-AES256-SHA384",
    "ECDHE-RSA-AES256-SHA384",
    "ECDHE-RSA-AES256-SHA",
    "ECDHE-ECDSA-AES256-SHA",
    "AES128-GCM-SHA256",
    "AES128-SHA256",
    "AES128-SHA",
    "AES256-GCM-SHA384",
    "AES256-SHA256",
    "AES256-SHA",
    "DES-CBC3-SHA",
];
/// The ECDHE ciphers of CLASSIC.
const FORWARD_SECRECY: &[&str] = &[
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES128-SHA256",
    "ECDHE-RSA-AES128-SHA256",
    "ECDHE-ECDSA-AES128-SHA",
    "ECDHE-RSA-AES128-SHA",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-AES256-SHA384",
    "ECDHE-RSA-AES256-SHA384",
    "ECDHE-RSA-AES256-SHA",
    "ECDHE-ECDSA-AES256-SHA",
];
const FS_1_2_RES_2019: &[&str] = &[
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES128-SHA256",
    "ECDHE-RSA-AES128-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-AES256-SHA384",
    "ECDHE-RSA-AES256-SHA384",
];
const FS_1_2_RES_2020: &[&str] = &[
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
];
const TLS_1_2_2017: &[&str] = &[
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES128-SHA256",
    "ECDHE-RSA-AES128-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-AES256-SHA384",
    "ECDHE-RSA-AES256-SHA384",
    "AES128-GCM-SHA256",
    "AES128-SHA256",
    "AES256-GCM-SHA384",
    "AES256-SHA256",
];
const TLS13_1_2: &[&str] = &[
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES128-SHA256",
    "ECDHE-RSA-AES128-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-AES256-SHA384",
    "ECDHE-RSA-AES256-SHA384",
];
const TLS13_1_2_RES: &[&str] = &[
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
];
const TLS13_1_2_EXT1: &[&str] = &[
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES128-SHA256",
    "ECDHE-RSA-AES128-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-AES256-SHA384",
    "ECDHE-RSA-AES256-SHA384",
    "AES128-GCM-SHA256",
    "AES128-SHA256",
    "AES256-GCM-SHA384",
    "AES256-SHA256",
];
const TLS13_1_2_EXT2: &[&str] = &[
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES128-SHA256",
    "ECDHE-RSA-AES128-SHA256",
    "ECDHE-ECDSA-AES128-SHA",
    "ECDHE-RSA-AES128-SHA",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-AES256-SHA384",
    "ECDHE-RSA-AES256-SHA384",
    "ECDHE-ECDSA-AES256-SHA",
    "ECDHE-RSA-AES256-SHA",
    "AES128-GCM-SHA256",
    "AES128-SHA256",
    "AES128-SHA",
    "AES256-GCM-SHA384",
    "AES256-SHA256",
    "AES256-SHA",
];
/// ELBSecurityPolicy-TLS13-1-0-2021-06's and -1-1-'s ciphers.
const TLS13_1_0: &[&str] = &[
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES128-SHA256",
    "ECDHE-RSA-AES128-SHA256",
    "ECDHE-ECDSA-AES128-SHA",
    "ECDHE-RSA-AES128-SHA",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-AES256-SHA384",
    "ECDHE-RSA-AES256-SHA384",
    "ECDHE-RSA-AES256-SHA",
    "ECDHE-ECDSA-AES256-SHA",
    "AES128-GCM-SHA256",
    "AES128-SHA256",
    "AES128-SHA",
    "AES256-GCM-SHA384",
    "AES256-SHA256",
    "AES256-SHA",
];

/// The load balancer types every policy of the table applies to.
const POLICY_LOAD_BALANCER_TYPES: [&str; 2] = ["application", "network"];

fn ssl_policy_wire((name, protocols, ciphers): &(&str, &[&str], &[&str])) -> SslPolicy {
    SslPolicy {
        ssl_protocols: Some(protocols.iter().map(|p| p.to_string()).collect()),
        ciphers: Some(
            ciphers
                .iter()
                .zip(1..)
                .map(|(cipher, priority)| Cipher {
                    name: Some(cipher.to_string()),
                    priority: Some(priority),
                })
                .collect(),
        ),
        name: Some(name.to_string()),
        supported_load_balancer_types: Some(
            POLICY_LOAD_BALANCER_TYPES
                .iter()
                .map(|t| t.to_string())
                .collect(),
        ),
    }
}

pub(crate) fn describe_ssl_policies(
    request: DescribeSSLPoliciesInput,
) -> Result<DescribeSSLPoliciesOutput, ApiError> {
    let names = request.names.unwrap_or_default();
    if let Some(missing) = names
        .iter()
        .find(|name| !SSL_POLICIES.iter().any(|(known, _, _)| known == *name))
    {
        return Err(error(
            "SSLPolicyNotFound",
            format!("One or more SSL policies not found: '{missing}'"),
        ));
    }
    let wanted_type = request.load_balancer_type.as_deref();
    let items = SSL_POLICIES
        .iter()
        .enumerate()
        .filter(|(_, (name, _, _))| names.is_empty() || names.iter().any(|n| n == name))
        .filter(|_| wanted_type.is_none_or(|t| POLICY_LOAD_BALANCER_TYPES.contains(&t)))
        .map(|(index, policy)| (format!("{index:03}"), ssl_policy_wire(policy)))
        .collect();
    let (ssl_policies, next_marker) = paginate(
        items,
        request.marker.as_deref(),
        crate::page_size(request.page_size),
    );
    Ok(DescribeSSLPoliciesOutput {
        ssl_policies: Some(ssl_policies),
        next_marker,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssl_policies_are_listed_filtered_and_paged() {
        let all = describe_ssl_policies(DescribeSSLPoliciesInput::default()).unwrap();
        let policies = all.ssl_policies.unwrap();
        assert_eq!(policies.len(), SSL_POLICIES.len());
        let default = &policies[0];
        assert_eq!(default.name.as_deref(), Some("ELBSecurityPolicy-2016-08"));
        let ciphers = default.ciphers.as_ref().unwrap();
        assert_eq!(ciphers.len(), 18);
        assert_eq!(
            ciphers[0].name.as_deref(),
            Some("ECDHE-ECDSA-AES128-GCM-SHA256")
        );
        assert_eq!(ciphers[17].priority, Some(18));
        let named = describe_ssl_policies(DescribeSSLPoliciesInput {
            names: Some(vec!["ELBSecurityPolicy-TLS13-1-3-2021-06".into()]),
            ..Default::default()
        })
        .unwrap()
        .ssl_policies
        .unwrap();
        assert_eq!(named.len(), 1);
        assert_eq!(named[0].ssl_protocols, Some(vec!["TLSv1.3".to_string()]));
        let missing = describe_ssl_policies(DescribeSSLPoliciesInput {
            names: Some(vec!["ELBSecurityPolicy-Nope".into()]),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(missing.code, "SSLPolicyNotFound");
        let gateway = describe_ssl_policies(DescribeSSLPoliciesInput {
            load_balancer_type: Some("gateway".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(gateway.ssl_policies, Some(vec![]));
        let first = describe_ssl_policies(DescribeSSLPoliciesInput {
            page_size: Some(10),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(first.ssl_policies.unwrap().len(), 10);
        let rest = describe_ssl_policies(DescribeSSLPoliciesInput {
            marker: first.next_marker,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(rest.ssl_policies.unwrap().len(), SSL_POLICIES.len() - 10);
        assert_eq!(rest.next_marker, None);
    }
}
