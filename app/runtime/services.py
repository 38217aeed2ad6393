"""Everything a running instance holds, built once in the app's lifespan."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.calls.assignment import Assignments
from app.calls.controls import CallControls
from app.calls.journal import Journal
from app.calls.locks import CallLocks
from app.calls.platform import PlatformEvents
from app.calls.reconcile import Reconciler
from app.calls.replay import Replayer
from app.calls.transfers import Transfers
from app.config import VAR_DIR, Settings
from app.providers.base import Provider
from app.runtime.metrics import MeteredProvider
from app.storage.db import make_engine, make_session_factory

DEV_TOKEN_FILE = VAR_DIR / "dev-token"


@dataclass
class Services:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    provider: Provider
    reconciler: Reconciler
    platform: PlatformEvents
    controls: CallControls
    transfers: Transfers
    assignments: Assignments
    journal: Journal
    replayer: Replayer
    webhook_token: str

    def close(self) -> None:
        self.engine.dispose()


def dev_token(path: Path = DEV_TOKEN_FILE) -> str:
    """The simulator's signing token: kept across restarts so `callguard simulate` and
    an already running simulator keep agreeing."""
    if path.exists():
        token = path.read_text(encoding="utf-8").strip()
        if token:
            return token
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(32)
    path.write_text(token + "\n", encoding="utf-8")
    path.chmod(0o600)
    return token


def webhook_token(settings: Settings) -> str:
    """Webhooks are always signed: with Twilio's auth token, else the development token."""
    if settings.twilio_auth_token:
        return settings.twilio_auth_token
    return dev_token()


def build_provider(settings: Settings) -> Provider:
    if settings.provider == "twilio":
        from app.providers.twilio import TwilioProvider

        assert settings.twilio_account_sid  # the settings validator requires both
        assert settings.twilio_auth_token
        return TwilioProvider(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            settings.twilio_api_base_url,
        )
    from app.providers.simulator import SimulatorProvider

    return SimulatorProvider()


def build_services(settings: Settings, provider: Provider | None = None) -> Services:
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    provider = provider or build_provider(settings)
    metered = MeteredProvider(provider)
    reconciler = Reconciler(
        sessions,
        metered,
        f"{settings.public_base_url}/webhooks/twilio/recording-status",
        CallLocks(engine),
    )
    platform = PlatformEvents(settings, sessions, reconciler)
    controls = CallControls(settings, sessions, reconciler)
    assignments = Assignments(sessions)
    journal = Journal(settings.journal_dir, settings.number_key)
    return Services(
        settings=settings,
        engine=engine,
        sessions=sessions,
        provider=provider,
        reconciler=reconciler,
        platform=platform,
        controls=controls,
        transfers=Transfers(sessions, metered, reconciler, controls, platform),
        assignments=assignments,
        journal=journal,
        replayer=Replayer(journal, platform, assignments),
        webhook_token=webhook_token(settings),
    )
