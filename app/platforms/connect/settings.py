"""Amazon Connect's own settings, with CONTRACT.md's names: the instance callguard controls
(CALLGUARD_CONNECT_INSTANCE_ID) and the token the contact flow's Lambda and EventBridge
send (CALLGUARD_CONNECT_TOKEN). AWS's credentials, region and endpoint overrides
(AWS_REGION, AWS_ENDPOINT_URL_CONNECT, AWS_ENDPOINT_URL_S3…) are boto3's own, read by
its standard chain. Kept here, not in app/config.py, so that nothing outside this package
names Connect; `check` refuses a missing or malformed one naming the variable."""

from __future__ import annotations

import re

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.config import SettingsError

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_INSTANCE_ARN = re.compile(rf"arn:aws[a-z-]*:connect:[a-z0-9-]+:\d{{12}}:instance/({UUID})")
MIN_TOKEN = 16


class ConnectSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CALLGUARD_CONNECT_", extra="ignore")

    instance_id: str
    token: SecretStr = Field(min_length=MIN_TOKEN)

    @field_validator("instance_id", mode="before")
    @classmethod
    def _instance(cls, value: object) -> object:
        """The instance's id; its ARN is accepted too (the id is its last part)."""
        if not isinstance(value, str):
            return value
        value = value.strip()
        found = _INSTANCE_ARN.fullmatch(value)
        if found:
            return found.group(1)
        if not re.fullmatch(UUID, value):
            raise ValueError("must be the Amazon Connect instance's id (a UUID) or its ARN")
        return value


def load_connect_settings(**overrides: object) -> ConnectSettings:
    """From the environment (or `overrides`), refusing with the variable named."""
    try:
        return ConnectSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "missing":
                message = "required when CALLGUARD_PROVIDER=connect"
            elif error["type"] in ("string_too_short", "too_short"):
                message = f"must be at least {MIN_TOKEN} characters (a shared secret)"
            problems.append(f"CALLGUARD_CONNECT_{field.upper()}: {message}")
        raise SettingsError("; ".join(problems)) from None
