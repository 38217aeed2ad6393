"""Twilio's request signature (X-Twilio-Signature: HMAC-SHA1 of the URL and the sorted
form, keyed with the auth token), checked and made with the SDK's own validator."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from functools import lru_cache
from urllib.parse import urlparse

from starlette.datastructures import ImmutableMultiDict
from twilio.request_validator import RequestValidator, add_port, remove_port


class SignedForm(ImmutableMultiDict[str, str]):
    """A webhook's form. `getall` is the name the SDK's validator asks a multi-dict for
    every value of a field: without it the validator raises and catches an AttributeError
    per field before it tries `getlist`, on every webhook."""

    getall = ImmutableMultiDict.getlist


@lru_cache(maxsize=4)
def _validator(token: str) -> RequestValidator:
    return RequestValidator(token)


@lru_cache(maxsize=256)
def _urls(url: str) -> tuple[str, str]:
    """The URL as configured first, then the other (with or without the port): the
    SDK's `validate` signs both; a genuine webhook matches the first. A few URLs per
    deployment (a path each, the IVR's steps), so cached."""
    parsed = urlparse(url)
    if parsed.port:
        return add_port(parsed), remove_port(parsed)
    return remove_port(parsed), add_port(parsed)


def valid_signature(token: str, url: str, form: Mapping[str, str], signature: str) -> bool:
    """What the SDK's `validate` answers for a form: whether `signature` is the URL's
    without its port or with it (Twilio's signing has used both). This is on every
    webhook's path, so it signs the URL as configured first and stops when it matches,
    and compares in C (hmac.compare_digest, constant time like the SDK's `compare`; a
    non-ASCII header, which it cannot compare, is no base64 signature anyway)."""
    if not signature or not signature.isascii():
        return False
    validator = _validator(token)
    return any(
        hmac.compare_digest(validator.compute_signature(variant, form), signature)
        for variant in _urls(url)
    )


def sign(token: str, url: str, params: Mapping[str, str]) -> str:
    signature: str = _validator(token).compute_signature(url, params)
    return signature
