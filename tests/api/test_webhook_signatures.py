"""S1: every platform webhook is authenticated; a bad signature changes nothing."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from app.config import load_settings
from app.main import create_app
from app.runtime.services import build_services
from app.storage.models import AuditEvent, Call, WebhookReceipt
from tests.factories import ACCOUNT_SID, MAIN_NUMBER, Platform, new_call_sid

WEBHOOKS = {
    "/webhooks/twilio/voice": {"To": MAIN_NUMBER, "From": "+447700900123"},
    "/webhooks/twilio/ivr?step=1": {"Digits": "1"},
    "/webhooks/twilio/call-status": {"CallStatus": "ringing", "SequenceNumber": "0"},
    "/webhooks/twilio/recording-status": {
        "RecordingSid": "RE" + "2" * 32,
        "RecordingStatus": "in-progress",
    },
}


def _counts(session) -> tuple[int, int, int]:
    return tuple(  # type: ignore[return-value]
        session.scalar(select(func.count()).select_from(model))
        for model in (Call, WebhookReceipt, AuditEvent)
    )


@pytest.fixture
def form() -> dict[str, str]:
    return {"AccountSid": ACCOUNT_SID, "CallSid": new_call_sid()}


@pytest.mark.parametrize("path", list(WEBHOOKS))
def test_signed_webhook_is_accepted(platform: Platform, form, path: str) -> None:
    response = platform.post(path, {**form, **WEBHOOKS[path]})
    assert response.status_code in (200, 204), response.text


@pytest.mark.parametrize("path", list(WEBHOOKS))
@pytest.mark.parametrize("signature", [None, "", "bm90IGEgc2lnbmF0dXJl", "tampered-params"])
def test_bad_or_missing_signature_is_refused_and_changes_nothing(
    platform: Platform, services, form, path: str, signature: str | None
) -> None:
    params = {**form, **WEBHOOKS[path]}
    with services.sessions() as session:
        before = _counts(session)
    headers = {}
    if signature == "tampered-params":
        # Signed correctly, then a field is changed in transit.
        headers["X-Twilio-Signature"] = platform.sign(path, params)
        params = {**params, "To": "+441632960010", "Digits": "2"}
    elif signature is not None:
        headers["X-Twilio-Signature"] = signature
    response = platform.client.post(path, data=params, headers=headers)
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    with services.sessions() as session:
        assert _counts(session) == before


def test_signature_made_with_another_token_is_refused(platform: Platform, form) -> None:
    params = {**form, **WEBHOOKS["/webhooks/twilio/voice"]}
    url = platform.settings.public_base_url + "/webhooks/twilio/voice"
    forged = RequestValidator("someone-elses-token").compute_signature(url, params)
    response = platform.client.post(
        "/webhooks/twilio/voice", data=params, headers={"X-Twilio-Signature": forged}
    )
    assert response.status_code == 403


def test_signature_covers_the_query_string(platform: Platform, form) -> None:
    """A signature for step=1 must not validate a request for step=2."""
    params = {**form, "Digits": "1"}
    signature = platform.sign("/webhooks/twilio/ivr?step=1", params)
    response = platform.client.post(
        "/webhooks/twilio/ivr?step=2", data=params, headers={"X-Twilio-Signature": signature}
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    "public_base_url",
    ["https://calls.example.org", "https://calls.example.org:8443", "http://10.0.0.5:8000"],
)
def test_signature_checked_against_public_url_behind_a_proxy(
    migrated_url: str, tmp_path, monkeypatch, public_base_url: str
) -> None:
    """Behind a TLS proxy the app sees http://internal-host; Twilio signed the public URL."""
    monkeypatch.chdir(tmp_path)
    settings = load_settings(
        database_url=migrated_url, public_base_url=public_base_url, twilio_auth_token="tok"
    )
    services = build_services(settings)
    params = {"AccountSid": ACCOUNT_SID, "CallSid": new_call_sid(), "To": MAIN_NUMBER}
    validator = RequestValidator("tok")
    try:
        with TestClient(create_app(settings, services), base_url="http://internal:9000") as c:
            internal = validator.compute_signature(
                "http://internal:9000/webhooks/twilio/voice", params
            )
            assert (
                c.post(
                    "/webhooks/twilio/voice", data=params, headers={"X-Twilio-Signature": internal}
                ).status_code
                == 403
            )
            public = validator.compute_signature(f"{public_base_url}/webhooks/twilio/voice", params)
            assert (
                c.post(
                    "/webhooks/twilio/voice", data=params, headers={"X-Twilio-Signature": public}
                ).status_code
                == 200
            )
    finally:
        services.close()


def test_unknown_form_fields_are_accepted(platform: Platform, form) -> None:
    params = {
        **form,
        **WEBHOOKS["/webhooks/twilio/voice"],
        "CallerCountry": "GB",
        "StirVerstat": "TN-Validation-Passed-A",
        "SomeFieldTwilioAddsTomorrow": "x",
    }
    assert platform.post("/webhooks/twilio/voice", params).status_code == 200


def test_missing_call_sid_is_a_clear_400(platform: Platform) -> None:
    response = platform.post("/webhooks/twilio/voice", {"AccountSid": ACCOUNT_SID})
    assert response.status_code == 400
    assert "CallSid" in response.json()["detail"]


def test_the_lean_webhook_routes_take_only_request_form_and_services() -> None:
    """SignedOnly (app/platforms/twilio/webhooks.py) calls its endpoint with the request,
    the signed form and the services, nothing else: an endpoint asking FastAPI for more (a
    query parameter, another dependency) or a `def` one is refused when the app is built,
    never served without what it asked for."""
    from typing import Annotated

    from fastapi import APIRouter, Depends, Request

    from app.api.deps import ServicesDep
    from app.platforms.twilio.webhooks import Form, SignedOnly, voice

    def route(endpoint: object) -> None:
        APIRouter().add_api_route("/x", endpoint, route_class_override=SignedOnly)  # type: ignore[arg-type]

    route(voice)  # the real one is accepted

    async def with_query(request: Request, form: Form, services: ServicesDep, step: int) -> None:
        return None

    async def with_other(
        request: Request, form: Form, services: ServicesDep, x: Annotated[str, Depends(str)]
    ) -> None:
        return None

    def not_async(request: Request, form: Form, services: ServicesDep) -> None:
        return None

    async def no_form(request: Request, services: ServicesDep) -> None:
        return None

    for wrong in (with_query, with_other, not_async, no_form):
        with pytest.raises(TypeError, match="SignedOnly"):
            route(wrong)
