"""Settings: CONTRACT.md's names and defaults; a refused setting names itself."""

from __future__ import annotations

import pytest

from app.config import PLATFORM_NAMES, SettingsError, load_settings
from app.platforms import PLATFORMS


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TWILIO_AUTH_TOKEN", "TWILIO_ACCOUNT_SID"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.database_url.startswith("sqlite:///var/")
    assert settings.fail_safe == "no-record"
    assert settings.provider == "simulator"
    assert settings.public_base_url == "http://127.0.0.1:8000"
    assert settings.twilio_api_base_url == "https://api.twilio.com"
    assert settings.default_region == "GB"
    assert str(settings.journal_dir) == "var/journal"
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.taskrouter_workflow_sid is None


def test_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "CALLGUARD_DATABASE_URL": "postgresql+psycopg://u@h/db",
        "CALLGUARD_POLICY_FILE": "/etc/callguard/policy.toml",
        "CALLGUARD_FAIL_SAFE": "record",
        "CALLGUARD_PROVIDER": "twilio",
        "CALLGUARD_PUBLIC_BASE_URL": "https://calls.example.org/",
        "TWILIO_ACCOUNT_SID": "AC" + "a" * 32,
        "TWILIO_AUTH_TOKEN": "secret",
        "CALLGUARD_TWILIO_API_BASE_URL": "http://127.0.0.1:9999",
        "CALLGUARD_TASKROUTER_WORKFLOW_SID": "WW" + "b" * 32,
        "CALLGUARD_DEFAULT_REGION": "ie",
        "CALLGUARD_NUMBER_KEY": "k" * 40,
        "CALLGUARD_JOURNAL_DIR": "/var/lib/callguard/journal",
        "CALLGUARD_HOST": "0.0.0.0",
        "CALLGUARD_PORT": "9000",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s = load_settings()
    assert s.database_url == env["CALLGUARD_DATABASE_URL"]
    assert str(s.policy_file) == env["CALLGUARD_POLICY_FILE"]
    assert s.fail_safe == "record" and s.provider == "twilio"
    assert s.public_base_url == "https://calls.example.org"
    assert (s.twilio_account_sid, s.twilio_auth_token) == (env["TWILIO_ACCOUNT_SID"], "secret")
    assert s.twilio_api_base_url == "http://127.0.0.1:9999"
    assert s.taskrouter_workflow_sid == env["CALLGUARD_TASKROUTER_WORKFLOW_SID"]
    assert s.default_region == "IE"
    assert str(s.journal_dir) == env["CALLGUARD_JOURNAL_DIR"]
    assert (s.host, s.port) == ("0.0.0.0", 9000)


@pytest.mark.parametrize(
    ("name", "value", "named"),
    [
        ("CALLGUARD_FAIL_SAFE", "maybe", "CALLGUARD_FAIL_SAFE"),
        ("CALLGUARD_PROVIDER", "vonage", "CALLGUARD_PROVIDER"),
        ("CALLGUARD_PUBLIC_BASE_URL", "calls.example.org", "CALLGUARD_PUBLIC_BASE_URL"),
        ("CALLGUARD_PORT", "99999", "CALLGUARD_PORT"),
        ("CALLGUARD_DATABASE_URL", "mysql://x", "CALLGUARD_DATABASE_URL"),
        ("CALLGUARD_DEFAULT_REGION", "GBR", "CALLGUARD_DEFAULT_REGION"),
    ],
)
def test_a_refused_setting_names_itself(monkeypatch, name: str, value: str, named: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=named):
        load_settings()


def test_twilio_provider_needs_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLGUARD_PROVIDER", "twilio")
    monkeypatch.delenv("TWILIO_ACCOUNT_SID", raising=False)
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    with pytest.raises(SettingsError, match="TWILIO_ACCOUNT_SID"):
        load_settings()


def test_development_number_key_is_refused_in_production(monkeypatch) -> None:
    monkeypatch.setenv("CALLGUARD_ENV", "production")
    monkeypatch.delenv("CALLGUARD_NUMBER_KEY", raising=False)
    with pytest.raises(SettingsError, match="CALLGUARD_NUMBER_KEY"):
        load_settings()


def test_every_platform_package_can_be_configured() -> None:
    """A platform package is found on its own (app/platforms/__init__.py); its name must
    also be one CALLGUARD_PROVIDER accepts (app/config.py reads the package folders
    without naming any), and no accepted name lacks a package."""
    assert set(PLATFORMS) == PLATFORM_NAMES
