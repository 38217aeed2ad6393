"""Everything a running instance holds, built once in the app's lifespan: the configured
phone platform's package (CALLGUARD_PROVIDER) and the core services wired to it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.calls.assignment import Assignments
from app.calls.controls import CallControls
from app.calls.events import CallEvents
from app.calls.journal import Journal
from app.calls.locks import CallLocks
from app.calls.provider import RecordingStore
from app.calls.reconcile import Reconciler
from app.calls.replay import Replayer
from app.calls.segments import Segments
from app.calls.transfers import Transfers
from app.config import Settings
from app.platforms import platform_named
from app.platforms.base import PhonePlatform
from app.retention.media import MediaSource
from app.runtime.metrics import MeteredProvider
from app.storage.db import make_engine, make_session_factory


@dataclass
class Services:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    platform: PhonePlatform
    provider: Any  # the platform's own client (its REST adapter, the simulator…)
    store: RecordingStore
    media: MediaSource
    reconciler: Reconciler
    calls: CallEvents
    segments: Segments
    controls: CallControls
    transfers: Transfers
    assignments: Assignments
    journal: Journal
    replayer: Replayer
    webhook_token: str

    def close(self) -> None:
        self.engine.dispose()


def build_store(settings: Settings) -> RecordingStore:
    """Where the configured platform keeps recordings (for retention run outside serve)."""
    platform = platform_named(settings.provider)
    return platform.recording_store(platform.client(settings), settings)


def build_services(settings: Settings, provider: Any | None = None) -> Services:
    """`provider` replaces the platform's own client (tests inject theirs)."""
    platform = platform_named(settings.provider)
    client = provider if provider is not None else platform.client(settings)
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    commands = MeteredProvider(platform.provider(client, settings))
    reconciler = Reconciler(sessions, commands, CallLocks(engine), platform.ended_status)
    calls = CallEvents(settings, sessions, reconciler)
    controls = CallControls(settings, sessions, reconciler)
    journal = Journal(settings.journal_dir, settings.number_key)
    services = Services(
        settings=settings,
        engine=engine,
        sessions=sessions,
        platform=platform,
        provider=client,
        store=platform.recording_store(client, settings),
        media=platform.media(client, settings),
        reconciler=reconciler,
        calls=calls,
        segments=Segments(settings, sessions, reconciler, calls),
        controls=controls,
        transfers=Transfers(sessions, commands, reconciler, controls, calls),
        assignments=Assignments(sessions),
        journal=journal,
        replayer=Replayer(journal, lambda entry: platform.replay(services, entry)),
        webhook_token=platform.webhook_secret(settings),
    )
    return services
