"""What a phone platform package (app/platforms/<name>/) gives callguard. The core — the
call-control service (app/calls/), the pure policy (app/recording_policy/), retention and
the audit log — speaks only callguard's vocabulary; a platform package holds everything of
its platform: webhook routes and their authentication, the translation of its payloads to
callguard's inputs (app/calls/inputs.py), the rendering of callguard's answers
(app/calls/answers.py), its REST adapter (a `Provider`), where its audio is stored, its ids
and its error classification.

A new platform is a package beside these whose __init__ names a `PhonePlatform` as
`PLATFORM`; app/platforms/__init__.py finds every package here, so nothing registers it. Its
name is also added to `Settings.provider`'s Literal in app/config.py (what
CALLGUARD_PROVIDER may say), with its own settings and their checks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from fastapi import APIRouter

from app.calls.journal import Entry
from app.calls.provider import Provider, RecordingStore
from app.config import Settings
from app.retention.media import MediaSource

if TYPE_CHECKING:
    from app.platforms.simulation import Simulate
    from app.runtime.services import Services


class Worker(Protocol):
    """A background thread `callguard serve` runs for the platform."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


class PhonePlatform(Protocol):
    name: str
    # A regular expression for the ids of calls and recordings in the people's API paths.
    id_pattern: str
    # Its status for an ended call: what callguard writes when it ends a call itself (the
    # platform refused a start because the call is over and its own report never came).
    ended_status: str

    def check_settings(self, settings: Settings) -> None:
        """Refuse (SettingsError, naming the variable) a setting of its own that is missing
        or malformed, before anything serves."""
        ...

    def client(self, settings: Settings) -> Any:
        """The platform's own API client (tests inject theirs into build_services)."""
        ...

    def provider(self, client: Any, settings: Settings) -> Provider:
        """callguard's recording commands over that client."""
        ...

    def recording_store(self, client: Any, settings: Settings) -> RecordingStore: ...

    def media(self, client: Any, settings: Settings) -> MediaSource:
        """Where a recording's audio is streamed from."""
        ...

    def webhook_secret(self, settings: Settings) -> str:
        """What the platform's webhooks are authenticated with."""
        ...

    def routers(self) -> list[APIRouter]:
        """Its webhook routes (and any of its own)."""
        ...

    def replay(self, services: Services, entry: Entry) -> None:
        """Apply one of its webhooks journalled while the database was down."""
        ...

    def workers(self, services: Services) -> list[Worker]: ...

    def simulation(self) -> Simulate | None:
        """How `callguard simulate` plays this platform against a running service (None:
        it cannot without a real account)."""
        ...
