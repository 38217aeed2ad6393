"""Amazon Connect (CALLGUARD_PROVIDER=connect): a call is one caller's contact chain (its
sid the chain's InitialContactId), each recorded contact one recording (its ContactId).
The contact flow's Lambda asks callguard how to route each contact; EventBridge delivers
contact events; recording is controlled with Start/Suspend/Resume/StopContactRecording; the
audio is in S3, found with DescribeContact once a contact has ended. Both endpoints are
authenticated with the shared X-Callguard-Token.

    settings.py        CALLGUARD_CONNECT_INSTANCE_ID, CALLGUARD_CONNECT_TOKEN
    aws.py             boto3's clients; AWS errors in callguard's terms
    provider.py        the Provider: recording commands; transfers are the CCP's
    webhooks.py        the two routes: token, journal while the database is down
    payloads.py        the checks every Connect payload passes; flow.py, contact_events.py
                       translate the flow's Lambda call and the contact events into inputs
    answers.py         callguard's answers as the flow's flat JSON; queues.py queue ARNs
    contacts.py        DescribeContact: a contact's successors and its audio in S3
    storage.py         S3: destruction of every version, proven; media streaming
    people.py          a contact's agent as a callguard person
    client.py          the instance's clients, built once; replay.py journalled calls
    simulate.py        `callguard simulate connect-…` against a Connect stand-in"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter

from app.calls.journal import Entry
from app.calls.provider import Provider, RecordingStore
from app.config import Settings
from app.platforms.connect.settings import UUID, load_connect_settings
from app.retention.media import MediaSource

if TYPE_CHECKING:
    from app.platforms.base import Worker
    from app.platforms.simulation import Simulate
    from app.runtime.services import Services

FINDER_SECONDS = 20.0


class ConnectPlatform:
    name = "connect"
    id_pattern = UUID
    ended_status = "DISCONNECTED"  # a contact's last event type (contact_events.ENDINGS)

    def check_settings(self, settings: Settings) -> None:
        from app.platforms.connect.aws import region

        load_connect_settings()
        region()

    def client(self, settings: Settings) -> Any:
        from app.platforms.connect.client import build_client

        return build_client(load_connect_settings(), settings.database_url)

    def provider(self, client: Any, settings: Settings) -> Provider:
        from app.platforms.connect.provider import ConnectCalls

        return ConnectCalls(client.aws, client.instance_id, client.store)

    def recording_store(self, client: Any, settings: Settings) -> RecordingStore:
        store: RecordingStore = client.store
        return store

    def media(self, client: Any, settings: Settings) -> MediaSource:
        media: MediaSource = client.store
        return media

    def webhook_secret(self, settings: Settings) -> str:
        return load_connect_settings().token.get_secret_value()

    def routers(self) -> list[APIRouter]:
        from app.platforms.connect.webhooks import router

        return [router]

    def replay(self, services: Services, entry: Entry) -> None:
        from app.platforms.connect.replay import replay

        replay(services, entry)

    def workers(self, services: Services) -> list[Worker]:
        from app.platforms.connect.queues import REFRESH
        from app.platforms.connect.webhooks import completions, connect_of
        from app.runtime.background import Periodic

        return [
            # Recordings Connect had not written when their contact ended.
            Periodic("connect-recordings", FINDER_SECONDS, completions(services).sweep),
            Periodic("connect-queues", REFRESH, connect_of(services).queues.refresh),
        ]

    def simulation(self) -> Simulate | None:
        from app.platforms.connect.simulate import run

        return run


PLATFORM = ConnectPlatform()
