"""PutAccountSetting, PutAccountSettingDefault, ListAccountSettings and
DeleteAccountSetting: a principal's own setting overrides the account default,
effectiveSettings resolves that, and values are validated.

This module's server is fresh, and the tests run in file order: the first one
sees AWS's defaults."""

from __future__ import annotations

from typing import Optional

import pytest

from berth_harness import ACCOUNT_ID, api_error

ROOT = f"arn:aws:iam::{ACCOUNT_ID}:root"
ALICE = f"arn:aws:iam::{ACCOUNT_ID}:user/alice"
BOB = f"arn:aws:iam::{ACCOUNT_ID}:role/bob"


def effective(ecs, name: str, principal: Optional[str] = None) -> str:
    request = {"name": name, "effectiveSettings": True}
    if principal:
        request["principalArn"] = principal
    settings = ecs.list_account_settings(**request)["settings"]
    assert [s["name"] for s in settings] == [name], settings
    return settings[0]["value"]


def test_effective_settings_start_at_aws_defaults(ecs) -> None:
    assert effective(ecs, "containerInsights") == "disabled"
    settings = ecs.list_account_settings(effectiveSettings=True)["settings"]
    assert settings, "effectiveSettings=true lists every setting"
    assert all(s["principalArn"].startswith(f"arn:aws:iam::{ACCOUNT_ID}:") for s in settings), settings


def test_put_account_setting_default(ecs) -> None:
    setting = ecs.put_account_setting_default(name="containerInsights", value="enabled")["setting"]
    assert setting["name"] == "containerInsights"
    assert setting["value"] == "enabled"
    assert setting["principalArn"] == ROOT
    assert effective(ecs, "containerInsights") == "enabled"
    assert effective(ecs, "containerInsights", ALICE) == "enabled"


def test_a_principal_setting_overrides_the_default(ecs) -> None:
    ecs.put_account_setting_default(name="containerInsights", value="enabled")
    setting = ecs.put_account_setting(name="containerInsights", value="disabled", principalArn=ALICE)["setting"]
    assert setting == {**setting, "name": "containerInsights", "value": "disabled", "principalArn": ALICE}
    assert effective(ecs, "containerInsights", ALICE) == "disabled"
    assert effective(ecs, "containerInsights", BOB) == "enabled"
    own = ecs.list_account_settings(name="containerInsights", principalArn=ALICE)["settings"]
    assert [(s["name"], s["value"], s["principalArn"]) for s in own] == [("containerInsights", "disabled", ALICE)]


def test_without_effective_settings_only_explicit_ones_are_listed(ecs) -> None:
    assert ecs.list_account_settings(name="awsvpcTrunking", principalArn=BOB)["settings"] == []


def test_put_account_setting_for_the_caller(ecs) -> None:
    setting = ecs.put_account_setting(name="awsvpcTrunking", value="enabled")["setting"]
    assert setting["name"] == "awsvpcTrunking"
    assert setting["value"] == "enabled"
    assert setting["principalArn"].startswith(f"arn:aws:iam::{ACCOUNT_ID}:"), setting
    listed = ecs.list_account_settings(name="awsvpcTrunking")["settings"]
    assert ("awsvpcTrunking", "enabled") in [(s["name"], s["value"]) for s in listed]


def test_delete_account_setting_falls_back_to_the_default(ecs) -> None:
    ecs.put_account_setting_default(name="containerInsights", value="enabled")
    ecs.put_account_setting(name="containerInsights", value="disabled", principalArn=BOB)
    assert effective(ecs, "containerInsights", BOB) == "disabled"
    deleted = ecs.delete_account_setting(name="containerInsights", principalArn=BOB)["setting"]
    assert deleted["name"] == "containerInsights"
    assert deleted["principalArn"] == BOB
    assert effective(ecs, "containerInsights", BOB) == "enabled"
    assert ecs.list_account_settings(name="containerInsights", principalArn=BOB)["settings"] == []


def test_list_filtered_by_value(ecs) -> None:
    ecs.put_account_setting(name="containerInsights", value="disabled", principalArn=ALICE)
    matching = ecs.list_account_settings(name="containerInsights", value="disabled", principalArn=ALICE)
    assert [s["value"] for s in matching["settings"]] == ["disabled"]
    other = ecs.list_account_settings(name="containerInsights", value="enabled", principalArn=ALICE)
    assert other["settings"] == []


@pytest.mark.parametrize(
    ("name", "value"),
    [("containerInsights", "sometimes"), ("awsvpcTrunking", "ENABLED"), ("fargateTaskRetirementWaitPeriod", "3")],
)
def test_invalid_value_is_refused(ecs, name: str, value: str) -> None:
    error = api_error("InvalidParameterException", ecs.put_account_setting_default, name=name, value=value)
    assert "Invalid setting 'value'" in error.message, error.message


def test_unknown_setting_name_is_refused(ecs) -> None:
    error = api_error("InvalidParameterException", ecs.put_account_setting, name="turboMode", value="enabled")
    assert "turboMode" in error.message, error.message
    api_error("InvalidParameterException", ecs.list_account_settings, name="turboMode")
