"""Twilio's request signature (X-Twilio-Signature: HMAC-SHA1 of the URL and the sorted
form, keyed with the auth token), checked and made with the SDK's own validator."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from urllib.parse import urlparse

from twilio.request_validator import RequestValidator, add_port, compare, remove_port


@lru_cache(maxsize=4)
def _validator(token: str) -> RequestValidator:
    return RequestValidator(token)


def valid_signature(token: str, url: str, form: Mapping[str, str], signature: str) -> bool:
    """What the SDK's `validate` answers for a form: whether `signature` is the URL's
    without its port or with it (Twilio's signing has used both). `validate` always
    signs both; this signs the URL as configured first and stops when it matches, as
    it does for every genuine webhook: this is on every webhook's path."""
    if not signature:
        return False
    validator = _validator(token)
    parsed = urlparse(url)
    variants = (add_port, remove_port) if parsed.port else (remove_port, add_port)
    return any(
        compare(validator.compute_signature(variant(parsed), form), signature)
        for variant in variants
    )


def sign(token: str, url: str, params: Mapping[str, str]) -> str:
    signature: str = _validator(token).compute_signature(url, params)
    return signature
