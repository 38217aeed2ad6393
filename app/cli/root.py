"""The root of the operator's command line (`callguard …`) and what every command group
shares: the consoles, the settings (a refused setting exits 2, naming the variable) and a
session factory. The groups register themselves on `cli` (app/cli/__init__.py imports them)."""

from __future__ import annotations

import typer
from rich.console import Console
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings, SettingsError, get_settings
from app.storage.db import make_engine, make_session_factory

# markdown: a docstring's paragraphs are joined and re-wrapped to the terminal, so help
# text never breaks mid-sentence where the source line happened to end.
cli = typer.Typer(
    help="callguard: call-recording control middleware",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

# soft_wrap: a long line (a URL, a reason list) is left for the terminal to wrap, never
# broken by us mid-word, and piped output keeps whole lines.
err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)


def configured() -> Settings:
    from app.platforms import platform_named

    try:
        settings = get_settings()
        platform_named(settings.provider).check_settings(settings)
        return settings
    except SettingsError as exc:
        err.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from None


def open_sessions() -> sessionmaker[Session]:
    return make_session_factory(make_engine(configured().database_url))
