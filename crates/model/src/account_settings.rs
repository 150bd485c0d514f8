//! ECS account settings (PutAccountSetting and friends): the names, the
//! values each accepts, AWS's defaults, and how the effective value is
//! resolved (a principal's own setting, else the account default, else AWS's).

use crate::ModelError;

/// One account setting name with its allowed values and AWS's default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SettingSpec {
    pub name: &'static str,
    pub allowed_values: &'static [&'static str],
    pub aws_default: &'static str,
    /// Only the account default can be set (PutAccountSettingDefault), not a
    /// per-principal value.
    pub account_default_only: bool,
    /// Managed by AWS: users cannot change it at all.
    pub read_only: bool,
}

const ENABLED_DISABLED: &[&str] = &["enabled", "disabled"];

/// Every setting name in botocore's `SettingName` enum, in its order.
pub const SETTINGS: &[SettingSpec] = &[
    SettingSpec {
        name: "serviceLongArnFormat",
        allowed_values: ENABLED_DISABLED,
        aws_default: "enabled",
        account_default_only: false,
        read_only: false,
    },
    SettingSpec {
        name: "taskLongArnFormat",
        allowed_values: ENABLED_DISABLED,
        aws_default: "enabled",
        account_default_only: false,
        read_only: false,
    },
    SettingSpec {
        name: "containerInstanceLongArnFormat",
        allowed_values: ENABLED_DISABLED,
        aws_default: "enabled",
        account_default_only: false,
        read_only: false,
    },
    SettingSpec {
        name: "awsvpcTrunking",
        allowed_values: ENABLED_DISABLED,
        aws_default: "disabled",
        account_default_only: false,
        read_only: false,
    },
    SettingSpec {
        name: "containerInsights",
        allowed_values: &["enabled", "disabled", "enhanced"],
        aws_default: "disabled",
        account_default_only: false,
        read_only: false,
    },
    SettingSpec {
        name: "fargateFIPSMode",
        allowed_values: ENABLED_DISABLED,
        aws_default: "disabled",
        account_default_only: true,
        read_only: false,
    },
    SettingSpec {
        name: "tagResourceAuthorization",
        allowed_values: &["on", "off"],
        aws_default: "on",
        account_default_only: false,
        read_only: false,
    },
    SettingSpec {
        name: "fargateTaskRetirementWaitPeriod",
        allowed_values: &["0", "7", "14"],
        aws_default: "7",
        account_default_only: true,
        read_only: false,
    },
    SettingSpec {
        name: "guardDutyActivate",
        allowed_values: ENABLED_DISABLED,
        aws_default: "disabled",
        account_default_only: false,
        read_only: true,
    },
    SettingSpec {
        name: "defaultLogDriverMode",
        allowed_values: &["blocking", "non-blocking"],
        aws_default: "non-blocking",
        account_default_only: true,
        read_only: false,
    },
    SettingSpec {
        name: "fargateEventWindows",
        allowed_values: ENABLED_DISABLED,
        aws_default: "disabled",
        account_default_only: true,
        read_only: false,
    },
];

pub fn spec(name: &str) -> Result<&'static SettingSpec, ModelError> {
    SETTINGS.iter().find(|s| s.name == name).ok_or_else(|| {
        let names: Vec<&str> = SETTINGS.iter().map(|s| s.name).collect();
        ModelError::invalid_parameter(format!(
            "Invalid account setting name '{name}'. Valid names: {}.",
            names.join(", ")
        ))
    })
}

/// Which call is changing the setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SettingScope {
    /// PutAccountSetting / DeleteAccountSetting for a principal.
    Principal,
    /// PutAccountSettingDefault.
    AccountDefault,
}

/// Validates a new value for `name` set through `scope`.
pub fn validate_value(
    name: &str,
    value: &str,
    scope: SettingScope,
) -> Result<&'static SettingSpec, ModelError> {
    let spec = spec(name)?;
    check_writable(spec, scope)?;
    if !spec.allowed_values.contains(&value) {
        return Err(ModelError::invalid_parameter(format!(
            "Invalid setting 'value': '{value}' is not a valid value for {name}. Valid values: {}.",
            spec.allowed_values.join(", ")
        )));
    }
    Ok(spec)
}

pub fn check_writable(spec: &SettingSpec, scope: SettingScope) -> Result<(), ModelError> {
    if spec.read_only {
        return Err(ModelError::invalid_parameter(format!(
            "The account setting {} is managed by AWS and cannot be changed.",
            spec.name
        )));
    }
    if spec.account_default_only && scope == SettingScope::Principal {
        return Err(ModelError::invalid_parameter(format!(
            "The account setting {} can only be changed for the account default; use PutAccountSettingDefault.",
            spec.name
        )));
    }
    Ok(())
}

/// Where an effective value came from; `aws_managed` values are AWS's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EffectiveSetting {
    pub value: String,
    /// `true` when neither the principal nor the account set it.
    pub aws_managed: bool,
}

/// The effective value of a setting for a principal.
pub fn effective(
    spec: &SettingSpec,
    principal_value: Option<&str>,
    account_default_value: Option<&str>,
) -> EffectiveSetting {
    match principal_value.or(account_default_value) {
        Some(value) => EffectiveSetting {
            value: value.to_string(),
            aws_managed: false,
        },
        None => EffectiveSetting {
            value: spec.aws_default.to_string(),
            aws_managed: true,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_checked_per_setting() {
        assert!(validate_value("containerInsights", "enhanced", SettingScope::Principal).is_ok());
        assert!(validate_value("containerInsights", "on", SettingScope::Principal).is_err());
        assert!(validate_value("tagResourceAuthorization", "off", SettingScope::Principal).is_ok());
        assert!(validate_value(
            "fargateTaskRetirementWaitPeriod",
            "14",
            SettingScope::AccountDefault
        )
        .is_ok());
        assert!(validate_value(
            "fargateTaskRetirementWaitPeriod",
            "14",
            SettingScope::Principal
        )
        .is_err());
        assert!(validate_value(
            "fargateTaskRetirementWaitPeriod",
            "3",
            SettingScope::AccountDefault
        )
        .is_err());
        assert!(
            validate_value("guardDutyActivate", "enabled", SettingScope::AccountDefault).is_err()
        );
        assert!(validate_value("nope", "enabled", SettingScope::Principal).is_err());
    }

    #[test]
    fn resolution_order() {
        let spec = spec("containerInsights").unwrap();
        assert_eq!(
            effective(spec, None, None),
            EffectiveSetting {
                value: "disabled".into(),
                aws_managed: true
            }
        );
        assert_eq!(effective(spec, None, Some("enabled")).value, "enabled");
        assert_eq!(
            effective(spec, Some("enhanced"), Some("enabled")).value,
            "enhanced"
        );
    }

    #[test]
    fn every_botocore_name_known() {
        assert_eq!(SETTINGS.len(), 11);
    }
}
