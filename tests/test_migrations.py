"""Migrations: up, down and up again on the test database; the models match (alembic check)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from app.storage import migrate
from app.storage.db import make_engine

TABLES = {
    "calls",
    "recordings",
    "webhook_receipts",
    "audit_events",
    "policy_versions",
    "policy_activations",
    "users",
}


def test_upgrade_downgrade_upgrade(database_url: str) -> None:
    migrate.upgrade(database_url)
    engine = make_engine(database_url)
    try:
        assert set(inspect(engine).get_table_names()) >= TABLES
        assert migrate.current_revision(engine) == migrate.head_revision()
        migrate.downgrade(database_url, "base")
        assert not TABLES & set(inspect(engine).get_table_names())
        migrate.upgrade(database_url)
        assert set(inspect(engine).get_table_names()) >= TABLES
    finally:
        engine.dispose()


def test_models_and_migrations_agree(migrated_url: str) -> None:
    """`alembic check` raises when autogenerate would produce a new migration."""
    command.check(migrate.alembic_config(migrated_url))


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()
