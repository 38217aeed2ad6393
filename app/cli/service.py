"""`callguard serve` and `callguard migrate`: running the service and its database."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.root import cli, configured, out


@cli.command()
def serve(
    workers: Annotated[int, typer.Option(min=1, help="uvicorn worker processes")] = 1,
) -> None:
    """Run the service (an embedded SQLite database is migrated first)."""
    import uvicorn

    from app.storage import migrate

    chosen = configured()
    if chosen.is_sqlite:
        migrate.upgrade(chosen.database_url)
    uvicorn.run(
        "app.main:serve_app",
        factory=True,
        host=chosen.host,
        port=chosen.port,
        workers=workers,
        # X-Forwarded-For is believed only from CALLGUARD_TRUSTED_PROXIES, in one place
        # (app/api/ratelimit.py): uvicorn's own would trust any local client's header.
        proxy_headers=False,
        log_config=None,
        access_log=False,  # callguard logs each request itself, as JSON, without the query
    )


@cli.command("migrate")
def migrate_cmd() -> None:
    """Apply the database migrations (alembic upgrade head)."""
    from app.storage import migrate

    migrate.upgrade(configured().database_url)
    out.print("database at head")
