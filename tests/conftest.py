"""Test fixtures. Every test database is built by the real Alembic migrations.

Set CALLGUARD_TEST_DATABASE_URL to a PostgreSQL URL to run the suite there (CI does both);
each test then gets a fresh database schema."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from app.config import Settings, get_settings, load_settings
from app.main import create_app
from app.platforms.simulator.provider import SimulatorProvider
from app.runtime.services import Services, build_services
from app.storage import migrate
from tests.factories import Platform

pytest_plugins = [
    "tests.twilio_fake.fixtures",
    "tests.connect_fake.fixtures",
    "tests.connect_fake.callguard",
]

PG_URL = os.environ.get("CALLGUARD_TEST_DATABASE_URL")


def _fresh_postgres(base_url: str, template: str | None = None) -> Iterator[str]:
    """A throw-away database on the server named by base_url (a copy of `template`)."""
    url = make_url(base_url)
    name = f"cg_test_{uuid.uuid4().hex[:12]}"
    # No pooled connection to go stale: a test may restart the server in between.
    admin = create_engine(
        url.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    copy = f' TEMPLATE "{template}"' if template else ""
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"{copy}'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def _migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One database migrated to head per test run; each test that wants a migrated
    database gets a copy of it (the migrations themselves are tested on fresh ones)."""
    if PG_URL:
        for url in _fresh_postgres(PG_URL):
            migrate.upgrade(url)
            yield str(make_url(url).database)
    else:
        path = tmp_path_factory.mktemp("template") / "callguard.db"
        migrate.upgrade(f"sqlite:///{path}")  # its last connection closed: no WAL left
        yield str(path)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests configure callguard explicitly: nothing leaks in from the developer's shell."""
    for name in list(os.environ):
        if name.startswith(("CALLGUARD_", "TWILIO_")) and name != "CALLGUARD_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """This test's database: empty, or at head when the test also asks for migrated_url."""
    template = (
        request.getfixturevalue("_migrated_template")
        if "migrated_url" in request.fixturenames
        else None
    )
    if PG_URL:
        yield from _fresh_postgres(PG_URL, template)
    else:
        path = tmp_path / "callguard.db"
        if template:
            shutil.copyfile(template, path)
        yield f"sqlite:///{path}"


@pytest.fixture
def migrated_url(database_url: str) -> str:
    migrate.upgrade(database_url)  # already at head (a copy of the template): a no-op check
    return database_url


@pytest.fixture
def settings(migrated_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.chdir(tmp_path)  # ./var/dev-token and friends land in the test's folder
    return load_settings(
        database_url=migrated_url,
        public_base_url="https://callguard.example.org",
        twilio_auth_token="test-auth-token",
        env="test",
    )


@pytest.fixture
def simulator() -> SimulatorProvider:
    return SimulatorProvider()


@pytest.fixture
def services(settings: Settings, simulator: SimulatorProvider) -> Iterator[Services]:
    built = build_services(settings, provider=simulator)
    yield built
    built.close()


@pytest.fixture
def client(settings: Settings, services: Services) -> Iterator[TestClient]:
    app = create_app(settings, services)
    with TestClient(app, base_url="https://callguard.example.org") as test_client:
        yield test_client


@pytest.fixture
def platform(client: TestClient, settings: Settings, simulator: SimulatorProvider) -> Platform:
    return Platform(client, settings, simulator)


@pytest.fixture
def session(services: Services):  # type: ignore[no-untyped-def]
    """For reading after the app has acted (on SQLite a transaction takes the write lock)."""
    with services.sessions() as s:
        yield s
