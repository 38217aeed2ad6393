"""Settings, exactly the environment names of CONTRACT.md."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

VAR_DIR = Path("var")
# The phone platforms installed: one package each under app/platforms/ (listed, not
# imported: they import these settings).
PLATFORM_NAMES = frozenset(
    p.parent.name for p in (Path(__file__).parent / "platforms").glob("*/__init__.py")
)
DEV_NUMBER_KEY = "callguard-development-number-key-not-for-production"


class FailSafe(StrEnum):
    NO_RECORD = "no-record"
    RECORD = "record"


class SettingsError(ValueError):
    """A refused setting; the message names the environment variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CALLGUARD_", extra="ignore", populate_by_name=True
    )

    env: Literal["development", "test", "production"] = "development"
    database_url: str = f"sqlite:///{VAR_DIR}/callguard.db"
    policy_file: Path | None = None
    fail_safe: FailSafe = FailSafe.NO_RECORD
    provider: str = "simulator"
    public_base_url: str = "http://127.0.0.1:8000"
    twilio_account_sid: str | None = Field(
        default=None, validation_alias=AliasChoices("TWILIO_ACCOUNT_SID")
    )
    twilio_auth_token: str | None = Field(
        default=None, validation_alias=AliasChoices("TWILIO_AUTH_TOKEN")
    )
    twilio_api_base_url: str = "https://api.twilio.com"
    taskrouter_workflow_sid: str | None = None
    default_region: str = "GB"
    number_key: str = DEV_NUMBER_KEY
    journal_dir: Path = VAR_DIR / "journal"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # Failed bearer tokens (app/api/ratelimit.py): after `limit` distinct failures from one
    # client within `window` seconds, its requests are refused 429 until the oldest is older.
    auth_failure_limit: int = Field(default=20, ge=1, le=10_000)
    auth_failure_window: int = Field(default=60, ge=1, le=86_400)
    auth_failure_clients: int = Field(default=10_000, ge=1, le=1_000_000)
    # Proxies whose X-Forwarded-For is believed: comma-separated addresses or networks.
    trusted_proxies: Annotated[tuple[IPv4Network | IPv6Network, ...], NoDecode] = ()
    # Signs audit checkpoints (app/audit/checkpoint.py): base64 of an Ed25519 private key.
    audit_signing_key: SecretStr | None = None

    @field_validator("public_base_url", "twilio_api_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("provider")
    @classmethod
    def _known_platform(cls, value: str) -> str:
        if value not in PLATFORM_NAMES:
            raise ValueError(f"must be one of {', '.join(sorted(PLATFORM_NAMES))}")
        return value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:// or postgresql+psycopg:// URL")
        return value

    @field_validator("default_region")
    @classmethod
    def _region(cls, value: str) -> str:
        if len(value) != 2 or not value.isalpha():
            raise ValueError("must be a two-letter region code such as GB")
        return value.upper()

    @field_validator("audit_signing_key")
    @classmethod
    def _signing_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            from app.audit.checkpoint import CheckpointError, signing_key

            try:
                signing_key(value.get_secret_value())
            except CheckpointError as exc:
                raise ValueError(str(exc).removeprefix("CALLGUARD_AUDIT_SIGNING_KEY: ")) from None
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        networks = []
        for item in (part.strip() for part in value.split(",")):
            if not item:
                continue
            try:
                networks.append(ip_network(item, strict=False))
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
        return tuple(networks)

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.provider == "twilio":
            if not self.twilio_account_sid:
                raise ValueError("TWILIO_ACCOUNT_SID is required when CALLGUARD_PROVIDER=twilio")
            if not self.twilio_auth_token:
                raise ValueError("TWILIO_AUTH_TOKEN is required when CALLGUARD_PROVIDER=twilio")
        if self.env == "production" and self.number_key == DEV_NUMBER_KEY:
            raise ValueError(
                "CALLGUARD_NUMBER_KEY must be set: the development key is refused "
                "when CALLGUARD_ENV=production"
            )
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


_ENV_NAMES = {"twilio_account_sid": "TWILIO_ACCOUNT_SID", "twilio_auth_token": "TWILIO_AUTH_TOKEN"}


def load_settings(**overrides: object) -> Settings:
    """Build Settings, turning pydantic's error into one naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            name = _ENV_NAMES.get(field, f"CALLGUARD_{field.upper()}") if field else ""
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{name}: {message}" if name else message)
        raise SettingsError("; ".join(problems)) from None


@lru_cache
def get_settings() -> Settings:
    return load_settings()
