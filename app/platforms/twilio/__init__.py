"""Twilio Programmable Voice: webhooks signed with the account's auth token (X-Twilio-
Signature), answers in TwiML, recording controls through the REST API's call recordings
(paused with PauseBehavior=skip), audio fetched from Twilio's media URL.

    webhooks.py  the routes: signature check, journal while the database is down
    forms.py     Twilio's form fields -> callguard's inputs (ids, statuses, dedupe keys)
    answers.py   callguard's answers -> TwiML (twiml.py builds it)
    control.py   callguard's Provider over the REST side (callback and transfer URLs)
    rest.py      the REST adapter (the SDK); errors.py classifies its errors
    media.py     recording audio; replay.py journalled webhooks"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter

from app.calls.journal import Entry
from app.calls.provider import Provider, RecordingStore
from app.config import Settings
from app.retention.media import MediaSource

if TYPE_CHECKING:
    from app.platforms.base import Worker
    from app.platforms.simulation import Simulate
    from app.runtime.services import Services


class TwilioPlatform:
    name = "twilio"
    id_pattern = r"[A-Za-z0-9]{2,64}"
    ended_status = "completed"  # the CallStatus of a call that ended normally

    def check_settings(self, settings: Settings) -> None:
        """Twilio's are in app/config.py, checked as the settings load."""

    def client(self, settings: Settings) -> Any:
        from app.platforms.twilio.rest import TwilioProvider

        assert settings.twilio_account_sid  # the settings validator requires both
        assert settings.twilio_auth_token
        return TwilioProvider(
            settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_api_base_url
        )

    def provider(self, client: Any, settings: Settings) -> Provider:
        from app.platforms.twilio.control import TwilioCalls

        return TwilioCalls(client, settings.public_base_url)

    def recording_store(self, client: Any, settings: Settings) -> RecordingStore:
        store: RecordingStore = client
        return store

    def media(self, client: Any, settings: Settings) -> MediaSource:
        from app.platforms.twilio.media import TwilioMedia

        assert settings.twilio_account_sid is not None
        assert settings.twilio_auth_token is not None
        return TwilioMedia(
            settings.twilio_api_base_url, settings.twilio_account_sid, settings.twilio_auth_token
        )

    def webhook_secret(self, settings: Settings) -> str:
        assert settings.twilio_auth_token is not None
        return settings.twilio_auth_token

    def routers(self) -> list[APIRouter]:
        from app.platforms.twilio.webhooks import router

        return [router]

    def replay(self, services: Services, entry: Entry) -> None:
        from app.platforms.twilio.replay import replay

        replay(services, entry)

    def workers(self, services: Services) -> list[Worker]:
        return []

    def simulation(self) -> Simulate | None:
        return None  # a real account's calls are real: see the simulator


PLATFORM = TwilioPlatform()
