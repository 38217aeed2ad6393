"""boto3's clients for Amazon Connect and S3, and AWS's errors in callguard's terms.

The clients read AWS's own configuration: credentials through boto3's standard chain, the
region (AWS_REGION / AWS_DEFAULT_REGION), and the endpoint overrides AWS_ENDPOINT_URL_CONNECT
and AWS_ENDPOINT_URL_S3 (so a compatible server can stand in). botocore never retries here
(one attempt per call): the call-control service owns retries, because only it knows
whether repeating an operation is safe.

Errors (`provider_error`), for the reconciler's retries and the sweep:
* transient: throttling (429, ThrottlingException, TooManyRequestsException, SlowDown),
  Connect's InternalServiceException, any 5xx, timeouts and connection failures;
  throttling and a connection never made also say AWS did nothing (`not_attempted`), so
  even a start may be repeated;
* permanent: everything else (InvalidRequestException, InvalidParameterException,
  AccessDeniedException…); ResourceNotFoundException, NoSuchKey and a 404 are `not_found`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    PartialCredentialsError,
)

from app.calls.provider import ProviderError
from app.config import SettingsError

# Connect waits 8 s for the flow's Lambda, which waits 3 s for callguard: a start asked
# while the caller is queued must answer (or fail) well within that.
CONNECT_TIMEOUTS = {"connect_timeout": 1.0, "read_timeout": 2.0}
# Retention and media move whole objects: longer reads.
S3_TIMEOUTS = {"connect_timeout": 2.0, "read_timeout": 20.0}

THROTTLED = frozenset(
    {"ThrottlingException", "TooManyRequestsException", "SlowDown", "RequestLimitExceeded"}
)
SERVER_SIDE = frozenset(
    {"InternalServiceException", "ServiceUnavailableException", "InternalError"}
)
NOT_FOUND = frozenset({"ResourceNotFoundException", "NoSuchKey", "NoSuchVersion", "NotFound"})


@dataclass(frozen=True)
class AwsClients:
    connect: Any
    s3: Any


def region(session: Any | None = None) -> str:
    """AWS_REGION (CONTRACT.md's name, which the AWS SDKs share), else boto3's own chain
    (AWS_DEFAULT_REGION, the profile's config)."""
    found = os.environ.get("AWS_REGION") or (session or boto3.session.Session()).region_name
    if not found:
        raise SettingsError(
            "AWS_REGION: required when CALLGUARD_PROVIDER=connect (the instance's region)"
        )
    return str(found)


def make_clients(session: Any | None = None) -> AwsClients:
    """boto3 clients with AWS's standard configuration and no retries of their own."""
    session = session or boto3.session.Session()
    where = region(session)
    once = {"total_max_attempts": 1, "mode": "standard"}
    return AwsClients(
        connect=session.client(
            "connect", region_name=where, config=Config(retries=once, **CONNECT_TIMEOUTS)
        ),
        s3=session.client("s3", region_name=where, config=Config(retries=once, **S3_TIMEOUTS)),
    )


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def status_of(exc: ClientError) -> int | None:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if status is not None else None


def provider_error(action: str, exc: Exception) -> ProviderError:
    """What went wrong with one AWS request, classified for the retry machinery."""
    if isinstance(exc, ClientError):
        code, status = error_code(exc), status_of(exc)
        message = exc.response.get("Error", {}).get("Message") or code
        throttled = code in THROTTLED or status == 429
        return ProviderError(
            f"{action}: {code}: {message}",
            transient=throttled or code in SERVER_SIDE or (status or 0) >= 500,
            status=status,
            code=code or None,
            not_found=code in NOT_FOUND or status == 404,
            not_attempted=throttled,
        )
    if isinstance(exc, (ConnectTimeoutError, EndpointConnectionError)):
        # The connection was never made: AWS did nothing.
        return ProviderError(f"{action}: {type(exc).__name__}", transient=True, not_attempted=True)
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError, ParamValidationError)):
        return ProviderError(f"{action}: {type(exc).__name__}: {exc}", transient=False)
    if isinstance(exc, BotoCoreError):
        # Read timeouts, dropped connections: AWS may or may not have acted.
        return ProviderError(f"{action}: {type(exc).__name__}", transient=True)
    return ProviderError(f"{action}: {type(exc).__name__}: {exc}", transient=False)
