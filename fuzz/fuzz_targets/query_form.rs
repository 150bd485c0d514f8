//! The query-protocol form decoder: `aws_protocol::query::parse_form` (which
//! must round-trip what it decoded once re-encoded), and `elbv2_wire::Form`
//! decoded into every ELBv2 operation's input shape, with the `Action`
//! chosen by the input or, when it names no operation, every one in turn.
//! Violations are answers; a panic is a bug.
#![no_main]

use elbv2_wire::{Form, Request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| berth_fuzz::on_worker_stack(|| run(data)));

fn run(data: &[u8]) {
    let pairs = aws_protocol::query::parse_form(data);
    let encoded = pairs
        .iter()
        .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
        .collect::<Vec<_>>()
        .join("&");
    assert_eq!(
        aws_protocol::query::parse_form(encoded.as_bytes()),
        pairs,
        "re-encoding {encoded:?} changed the pairs"
    );

    let form = Form::parse(data);
    match form.action() {
        Some(action) if elbv2_wire::OPERATIONS.contains(&action) => decode_as(&form, action),
        _ => {
            for action in elbv2_wire::OPERATIONS {
                decode_as(&form, action);
            }
        }
    }
}

/// Percent-encodes every byte but the unreserved ones.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn decode<R: Request>(form: &Form) {
    let _ = R::decode(form);
}

macro_rules! decoders {
    ($($shape:ident),* $(,)?) => {
        fn decode_as(form: &Form, action: &str) {
            $(
                if action == <elbv2_wire::$shape as Request>::ACTION {
                    return decode::<elbv2_wire::$shape>(form);
                }
            )*
            panic!("no input shape for {action}");
        }
    };
}

decoders!(
    AddListenerCertificatesInput,
    AddTagsInput,
    AddTrustStoreRevocationsInput,
    CreateListenerInput,
    CreateLoadBalancerInput,
    CreateRuleInput,
    CreateTargetGroupInput,
    CreateTrustStoreInput,
    DeleteListenerInput,
    DeleteLoadBalancerInput,
    DeleteRuleInput,
    DeleteSharedTrustStoreAssociationInput,
    DeleteTargetGroupInput,
    DeleteTrustStoreInput,
    DeregisterTargetsInput,
    DescribeAccountLimitsInput,
    DescribeCapacityReservationInput,
    DescribeListenerAttributesInput,
    DescribeListenerCertificatesInput,
    DescribeListenersInput,
    DescribeLoadBalancerAttributesInput,
    DescribeLoadBalancersInput,
    DescribeRulesInput,
    DescribeSSLPoliciesInput,
    DescribeTagsInput,
    DescribeTargetGroupAttributesInput,
    DescribeTargetGroupsInput,
    DescribeTargetHealthInput,
    DescribeTrustStoreAssociationsInput,
    DescribeTrustStoreRevocationsInput,
    DescribeTrustStoresInput,
    GetResourcePolicyInput,
    GetTrustStoreCaCertificatesBundleInput,
    GetTrustStoreRevocationContentInput,
    ModifyCapacityReservationInput,
    ModifyIpPoolsInput,
    ModifyListenerInput,
    ModifyListenerAttributesInput,
    ModifyLoadBalancerAttributesInput,
    ModifyRuleInput,
    ModifyTargetGroupInput,
    ModifyTargetGroupAttributesInput,
    ModifyTrustStoreInput,
    RegisterTargetsInput,
    RemoveListenerCertificatesInput,
    RemoveTagsInput,
    RemoveTrustStoreRevocationsInput,
    SetIpAddressTypeInput,
    SetRulePrioritiesInput,
    SetSecurityGroupsInput,
    SetSubnetsInput,
);
