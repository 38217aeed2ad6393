"""Connect's settings (app/platforms/connect/settings.py): CONTRACT.md's names, and a
missing or malformed one refused naming the variable; AWS's own come from boto3's chain."""

from __future__ import annotations

import pytest

from app.config import SettingsError, load_settings
from app.platforms.connect.aws import make_clients
from app.platforms.connect.settings import load_connect_settings

INSTANCE = "4bac84b1-24a7-456e-95fa-481dd28703f3"
TOKEN = "t" * 32


def test_the_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLGUARD_PROVIDER", "connect")
    monkeypatch.setenv("CALLGUARD_CONNECT_INSTANCE_ID", INSTANCE)
    monkeypatch.setenv("CALLGUARD_CONNECT_TOKEN", TOKEN)
    assert load_settings().provider == "connect"
    connect = load_connect_settings()
    assert (connect.instance_id, connect.token.get_secret_value()) == (INSTANCE, TOKEN)
    assert TOKEN not in repr(connect)  # a secret, never printed


def test_the_instance_arn_gives_its_id(monkeypatch: pytest.MonkeyPatch) -> None:
    arn = f"arn:aws:connect:eu-west-2:111122223333:instance/{INSTANCE}"
    assert load_connect_settings(instance_id=arn, token=TOKEN).instance_id == INSTANCE


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"token": TOKEN}, "CALLGUARD_CONNECT_INSTANCE_ID: required"),
        ({"instance_id": INSTANCE}, "CALLGUARD_CONNECT_TOKEN: required"),
        ({"instance_id": "harlow", "token": TOKEN}, "CALLGUARD_CONNECT_INSTANCE_ID: must be"),
        ({"instance_id": INSTANCE, "token": "short"}, "CALLGUARD_CONNECT_TOKEN: must be at least"),
    ],
)
def test_a_refused_setting_names_itself(values: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load_connect_settings(**values)


def test_an_unknown_platform_is_refused_naming_the_installed_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CALLGUARD_PROVIDER", "vonage")
    with pytest.raises(SettingsError, match="CALLGUARD_PROVIDER: must be one of connect"):
        load_settings()


def test_no_region_is_refused_naming_aws_region(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(SettingsError, match="AWS_REGION"):
        make_clients()


def test_boto3_reaches_the_endpoints_aws_variables_name(
    monkeypatch: pytest.MonkeyPatch, connect_server, s3_endpoint: str, tmp_path
) -> None:
    """CONTRACT.md: AWS_ENDPOINT_URL_CONNECT and AWS_ENDPOINT_URL_S3, boto3's own names."""
    from app.platforms import platform_named

    instance = connect_server.add_instance()
    connect_server.add_queue(instance.id, "planning")
    for name, value in connect_server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    monkeypatch.setenv("CALLGUARD_CONNECT_INSTANCE_ID", instance.arn)
    monkeypatch.setenv("CALLGUARD_CONNECT_TOKEN", TOKEN)
    settings = load_settings(provider="connect", database_url=f"sqlite:///{tmp_path}/x.db")
    platform = platform_named("connect")
    platform.check_settings(settings)
    client = platform.client(settings)
    assert client.instance_id == instance.id
    assert client.queues.refresh() == 1
    assert client.aws.s3.meta.endpoint_url == s3_endpoint
    assert platform.webhook_secret(settings) == TOKEN


def test_the_cli_refuses_a_missing_connect_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from app.cli import cli

    monkeypatch.setenv("CALLGUARD_PROVIDER", "connect")
    result = CliRunner().invoke(cli, ["migrate"])
    assert result.exit_code == 2
    assert "CALLGUARD_CONNECT_INSTANCE_ID: required" in result.output
