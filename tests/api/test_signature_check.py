"""valid_signature (app/platforms/twilio/signature.py) answers what the SDK's own
`validate` answers, for URLs with and without a port and for repeated fields."""

from __future__ import annotations

import pytest
from twilio.request_validator import RequestValidator

from app.platforms.twilio.signature import SignedForm, valid_signature

TOKEN = "12345678901234567890123456789012"
PAIRS = [("CallSid", "CA" + "1" * 32), ("To", "+441632960655"), ("Digits", "1")]
URLS = [
    "https://callguard.example.org/webhooks/twilio/voice",
    "https://callguard.example.org:443/webhooks/twilio/voice",
    "http://127.0.0.1:8000/webhooks/twilio/ivr?step=2",
    "http://127.0.0.1/webhooks/twilio/ivr?step=2",
]


@pytest.mark.parametrize("checked", URLS)
@pytest.mark.parametrize("signed", URLS)
@pytest.mark.parametrize("pairs", [PAIRS, [*PAIRS, ("Digits", "2")]])
def test_the_answer_is_the_sdks(checked: str, signed: str, pairs: list[tuple[str, str]]) -> None:
    form = SignedForm(pairs)
    sdk = RequestValidator(TOKEN)
    signature = sdk.compute_signature(signed, form)
    assert valid_signature(TOKEN, checked, form, signature) == sdk.validate(
        checked, form, signature
    )


def test_empty_wrong_or_non_ascii_signatures_are_refused() -> None:
    form = SignedForm(PAIRS)
    right = RequestValidator(TOKEN).compute_signature(URLS[0], form)
    assert valid_signature(TOKEN, URLS[0], form, right)
    for wrong in ("", right[:-1], right[:-1] + "é", "é" * len(right), right + "="):
        assert not valid_signature(TOKEN, URLS[0], form, wrong)
