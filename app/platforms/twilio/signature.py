"""Twilio's request signature (X-Twilio-Signature: HMAC-SHA1 of the URL and the sorted
form, keyed with the auth token), checked and made with the SDK's own validator."""

from __future__ import annotations

from collections.abc import Mapping

from twilio.request_validator import RequestValidator


def valid_signature(token: str, url: str, form: Mapping[str, str], signature: str) -> bool:
    return bool(signature) and bool(RequestValidator(token).validate(url, form, signature))


def sign(token: str, url: str, params: Mapping[str, str]) -> str:
    signature: str = RequestValidator(token).compute_signature(url, params)
    return signature
