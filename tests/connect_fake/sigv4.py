"""Checking a request's AWS Signature Version 4 the way AWS does, with botocore's own signer.

The Authorization header is parsed, then the signature is recomputed by
`botocore.auth.SigV4Auth` over the request as received (method, raw path and query, the
headers it names as signed, the body) at the request's own X-Amz-Date, and compared in
constant time. Nothing of SigV4's canonical form is written here.

Refusals, all 403 as AWS answers them (Connect API reference, Common Errors):
MissingAuthenticationTokenException (no Authorization), IncompleteSignatureException (one
that is not a well-formed AWS4-HMAC-SHA256 header), UnrecognizedClientException (an access
key the stand-in does not know: "The security token included in the request is invalid"),
InvalidSignatureException (wrong scope, a date more than 5 minutes off, or a signature that
does not match).
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = timedelta(minutes=5)  # AWS: "Signature expired" beyond five minutes
_FIELD = re.compile(r"\s*(Credential|SignedHeaders|Signature)=([^,\s]+)\s*")


class AuthError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class SignedRequest:
    """What the signature covers, exactly as it arrived."""

    method: str
    raw_path: str  # still percent-encoded
    raw_query: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes


def verify(
    req: SignedRequest,
    secrets: Mapping[str, str],
    *,
    region: str,
    service: str,
    now: datetime | None = None,
) -> str:
    """The access key the request was signed with, or AuthError."""
    header = req.headers.get("authorization")
    if not header:
        raise AuthError("MissingAuthenticationTokenException", "Missing Authentication Token")
    algorithm, _, rest = header.partition(" ")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        if m := _FIELD.fullmatch(part):
            fields[m[1]] = m[2]
    if algorithm != ALGORITHM or set(fields) != {"Credential", "SignedHeaders", "Signature"}:
        raise AuthError(
            "IncompleteSignatureException",
            f"Authorization header requires {ALGORITHM} with Credential, SignedHeaders "
            "and Signature",
        )
    scope = fields["Credential"].split("/")
    if len(scope) != 5:
        raise AuthError(
            "IncompleteSignatureException", "Credential is not key/date/region/service/aws4_request"
        )
    access_key, date, scope_region, scope_service, terminal = scope
    secret = secrets.get(access_key)
    if secret is None:
        raise AuthError(
            "UnrecognizedClientException", "The security token included in the request is invalid."
        )
    stamp = req.headers.get("x-amz-date", "")
    try:
        signed_at = datetime.strptime(stamp, SIGV4_TIMESTAMP).replace(tzinfo=UTC)
    except ValueError:
        raise AuthError(
            "IncompleteSignatureException",
            "Authorization header requires existence of a valid 'X-Amz-Date' header",
        ) from None
    if terminal != "aws4_request" or scope_service != service:
        raise AuthError(
            "InvalidSignatureException",
            f"Credential should be scoped to correct service: '{service}'.",
        )
    if scope_region != region:
        raise AuthError(
            "InvalidSignatureException",
            f"Credential should be scoped to a valid region, not '{scope_region}'.",
        )
    if date != stamp[:8]:
        raise AuthError(
            "InvalidSignatureException",
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            "from HTTP",
        )
    current = now or datetime.now(UTC)
    if abs(current - signed_at) > MAX_SKEW:
        raise AuthError(
            "InvalidSignatureException",
            f"Signature expired: {stamp} is now earlier or later than "
            f"{current.strftime(SIGV4_TIMESTAMP)} by more than 5 min.",
        )
    signed = fields["SignedHeaders"].split(";")
    if "host" not in signed:
        raise AuthError("InvalidSignatureException", "'Host' must be a signed header")
    expected = _signature(req, signed, stamp, Credentials(access_key, secret), region, service)
    if not hmac.compare_digest(expected, fields["Signature"]):
        raise AuthError(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. Consult the service "
            "documentation for details.",
        )
    return access_key


def _signature(
    req: SignedRequest,
    signed: list[str],
    stamp: str,
    credentials: Credentials,
    region: str,
    service: str,
) -> str:
    headers = {name: req.headers.get(name, "") for name in signed}
    url = f"http://{req.headers.get('host', '')}{req.raw_path}" + (
        f"?{req.raw_query}" if req.raw_query else ""
    )
    aws_request = AWSRequest(method=req.method, url=url, headers=headers, data=req.body)
    aws_request.context["timestamp"] = stamp  # the request's own time, not the clock's
    signer = SigV4Auth(credentials, service, region)
    if sorted(signer.headers_to_sign(aws_request)) != sorted(signed):
        # A header botocore never signs (e.g. User-Agent) was named: it cannot match.
        return ""
    canonical = signer.canonical_request(aws_request)
    return str(signer.signature(signer.string_to_sign(aws_request, canonical), aws_request))
