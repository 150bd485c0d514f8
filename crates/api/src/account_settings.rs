//! PutAccountSetting, PutAccountSettingDefault, ListAccountSettings,
//! DeleteAccountSetting.
//!
//! The account default is the root principal's own setting, as on ECS: a
//! principal's effective value is its own setting, else the root's, else
//! AWS's default.

use ecs_wire::{
    DeleteAccountSettingRequest, DeleteAccountSettingResponse, ListAccountSettingsRequest,
    ListAccountSettingsResponse, PutAccountSettingDefaultRequest, PutAccountSettingDefaultResponse,
    PutAccountSettingRequest, PutAccountSettingResponse, Setting, SettingName, SettingType,
};
use model::account_settings::{self, SettingScope, SettingSpec};
use serde::{Deserialize, Serialize};
use store::Op;

use crate::records::{self};
use crate::{keys, pagination, ApiError, Ecs, RequestContext};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct AccountSettingRecord {
    value: String,
}

fn setting(spec: &SettingSpec, value: String, principal_arn: &str) -> Setting {
    Setting {
        name: spec.name.parse::<SettingName>().ok(),
        value: Some(value),
        principal_arn: Some(principal_arn.to_string()),
        type_: Some(if spec.read_only {
            SettingType::AwsManaged
        } else {
            SettingType::User
        }),
    }
}

impl Ecs {
    /// The principal a request is about: `principalArn` if given (an IAM
    /// user, role or root of this account), else the caller.
    fn principal(
        &self,
        ctx: &RequestContext,
        principal_arn: Option<&str>,
    ) -> Result<String, ApiError> {
        let Some(arn) = principal_arn else {
            return Ok(ctx.principal_arn.clone());
        };
        let prefix = format!("arn:aws:iam::{}:", ctx.account_id);
        let valid = arn.strip_prefix(&prefix).is_some_and(|rest| {
            rest == "root"
                || rest.strip_prefix("user/").is_some_and(|n| !n.is_empty())
                || rest.strip_prefix("role/").is_some_and(|n| !n.is_empty())
        });
        if !valid {
            return Err(ApiError::invalid_parameter(format!(
                "Invalid principalArn '{arn}'. Specify the ARN of an IAM user, an IAM role, or the root user of account {}.",
                ctx.account_id
            )));
        }
        Ok(arn.to_string())
    }

    async fn own_setting(
        &self,
        ctx: &RequestContext,
        principal_arn: &str,
        name: &str,
    ) -> Result<Option<String>, ApiError> {
        let key = keys::account_setting(&ctx.region, principal_arn, name);
        Ok(records::get::<AccountSettingRecord>(self.store(), &key)
            .await?
            .map(|r| r.value.value))
    }

    pub(crate) async fn effective_account_setting(
        &self,
        ctx: &RequestContext,
        principal_arn: &str,
        name: &str,
    ) -> Result<String, ApiError> {
        let spec = account_settings::spec(name)?;
        let own = self.own_setting(ctx, principal_arn, name).await?;
        let root = ctx.arns().root_principal();
        let default = if own.is_none() && principal_arn != root {
            self.own_setting(ctx, &root, name).await?
        } else {
            None
        };
        Ok(account_settings::effective(spec, own.as_deref(), default.as_deref()).value)
    }

    async fn put_setting(
        &self,
        ctx: &RequestContext,
        principal_arn: &str,
        name: SettingName,
        value: &str,
        scope: SettingScope,
    ) -> Result<Setting, ApiError> {
        let spec = account_settings::validate_value(name.as_str(), value, scope)?;
        let key = keys::account_setting(&ctx.region, principal_arn, spec.name);
        let record = AccountSettingRecord {
            value: value.to_string(),
        };
        self.store()
            .txn(store::Txn::new().then(Op::put(key, records::encode(&record))))
            .await?;
        Ok(setting(spec, value.to_string(), principal_arn))
    }

    pub(crate) async fn put_account_setting(
        &self,
        ctx: &RequestContext,
        request: PutAccountSettingRequest,
    ) -> Result<PutAccountSettingResponse, ApiError> {
        let principal = self.principal(ctx, request.principal_arn.as_deref())?;
        let scope = if principal == ctx.arns().root_principal() {
            SettingScope::AccountDefault
        } else {
            SettingScope::Principal
        };
        let name = request
            .name
            .ok_or_else(|| ApiError::invalid_parameter("name can not be blank."))?;
        let value = request.value.clone().unwrap_or_default();
        Ok(PutAccountSettingResponse {
            setting: Some(
                self.put_setting(ctx, &principal, name, &value, scope)
                    .await?,
            ),
        })
    }

    pub(crate) async fn put_account_setting_default(
        &self,
        ctx: &RequestContext,
        request: PutAccountSettingDefaultRequest,
    ) -> Result<PutAccountSettingDefaultResponse, ApiError> {
        let root = ctx.arns().root_principal();
        let name = request
            .name
            .ok_or_else(|| ApiError::invalid_parameter("name can not be blank."))?;
        let value = request.value.clone().unwrap_or_default();
        Ok(PutAccountSettingDefaultResponse {
            setting: Some(
                self.put_setting(ctx, &root, name, &value, SettingScope::AccountDefault)
                    .await?,
            ),
        })
    }

    pub(crate) async fn list_account_settings(
        &self,
        ctx: &RequestContext,
        request: ListAccountSettingsRequest,
    ) -> Result<ListAccountSettingsResponse, ApiError> {
        const OP: &str = "ListAccountSettings";
        let page_size = pagination::page_size(request.max_results, 10, 10)?;
        let after = pagination::decode_token(OP, request.next_token.as_deref())?;
        let principal = self.principal(ctx, request.principal_arn.as_deref())?;
        let mut settings: Vec<Setting> = Vec::new();
        if request.effective_settings == Some(true) {
            for spec in account_settings::SETTINGS {
                let value = self
                    .effective_account_setting(ctx, &principal, spec.name)
                    .await?;
                settings.push(setting(spec, value, &principal));
            }
        } else {
            let prefix = keys::account_settings_prefix(&ctx.region, &principal);
            for (key, record) in
                records::list::<AccountSettingRecord>(self.store(), &prefix).await?
            {
                let name = &key[prefix.len()..];
                if let Ok(spec) = account_settings::spec(name) {
                    settings.push(setting(spec, record.value, &principal));
                }
            }
        }
        settings.retain(|s| {
            request.name.is_none_or(|n| s.name == Some(n))
                && request
                    .value
                    .as_deref()
                    .is_none_or(|v| s.value.as_deref() == Some(v))
        });
        let name_of = |s: &Setting| s.name.map(|n| n.as_str().to_string()).unwrap_or_default();
        settings.sort_by_key(name_of);
        let (page, next_token) =
            pagination::paginate(OP, settings, name_of, after.as_deref(), page_size, false);
        Ok(ListAccountSettingsResponse {
            settings: Some(page),
            next_token,
        })
    }

    pub(crate) async fn delete_account_setting(
        &self,
        ctx: &RequestContext,
        request: DeleteAccountSettingRequest,
    ) -> Result<DeleteAccountSettingResponse, ApiError> {
        let principal = self.principal(ctx, request.principal_arn.as_deref())?;
        let name = request
            .name
            .ok_or_else(|| ApiError::invalid_parameter("name can not be blank."))?;
        let spec = account_settings::spec(name.as_str())?;
        let scope = if principal == ctx.arns().root_principal() {
            SettingScope::AccountDefault
        } else {
            SettingScope::Principal
        };
        account_settings::check_writable(spec, scope)?;
        let key = keys::account_setting(&ctx.region, &principal, spec.name);
        let deleted = self.own_setting(ctx, &principal, spec.name).await?;
        self.store()
            .txn(store::Txn::new().then(Op::delete(key)))
            .await?;
        let value = match deleted {
            Some(value) => value,
            None => {
                self.effective_account_setting(ctx, &principal, spec.name)
                    .await?
            }
        };
        Ok(DeleteAccountSettingResponse {
            setting: Some(setting(spec, value, &principal)),
        })
    }
}
