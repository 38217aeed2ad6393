"""The operator's command line: `callguard …`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings, SettingsError, get_settings
from app.db import make_engine, make_session_factory, unit_of_work
from app.errors import DomainError
from app.users import Role

cli = typer.Typer(help="callguard: call-recording control middleware", no_args_is_help=True)
users_cli = typer.Typer(help="People and their tokens", no_args_is_help=True)
policy_cli = typer.Typer(help="Recording policy files and versions", no_args_is_help=True)
cli.add_typer(users_cli, name="users")
cli.add_typer(policy_cli, name="policy")

err = Console(stderr=True)
out = Console()


def _settings() -> Settings:
    try:
        return get_settings()
    except SettingsError as exc:
        err.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from None


def _sessions() -> sessionmaker[Session]:
    return make_session_factory(make_engine(_settings().database_url))


@cli.command()
def serve(
    workers: Annotated[int, typer.Option(min=1, help="uvicorn worker processes")] = 1,
) -> None:
    """Run the service (an embedded SQLite database is migrated first)."""
    import uvicorn

    from app import migrate

    settings = _settings()
    if settings.is_sqlite:
        migrate.upgrade(settings.database_url)
    uvicorn.run(
        "app.main:serve_app",
        factory=True,
        host=settings.host,
        port=settings.port,
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
    from app import migrate

    migrate.upgrade(_settings().database_url)
    out.print("database at head")


@users_cli.command("add")
def users_add(
    name: str,
    role: Annotated[Role, typer.Option(help="agent, supervisor, governance or admin")],
) -> None:
    """Create a person; the new bearer token is the last line printed."""
    from app.users import add_user

    try:
        with unit_of_work(_sessions()) as session:
            token = add_user(session, name, role)
    except DomainError as exc:
        err.print(f"[red]{exc.detail}[/red]")
        raise typer.Exit(1) from None
    out.print(f"created {role} {name}; their token (shown once):", highlight=False)
    print(token)


@users_cli.command("disable")
def users_disable(name: str) -> None:
    """Revoke a person's token at once."""
    from app.users import disable_user

    try:
        with unit_of_work(_sessions()) as session:
            disable_user(session, name)
    except DomainError as exc:
        err.print(f"[red]{exc.detail}[/red]")
        raise typer.Exit(1) from None
    out.print(f"disabled {name}")


@policy_cli.command("check")
def policy_check(file: Path) -> None:
    """Validate a policy file; exits non-zero naming the field when invalid."""
    from app.recording_policy import PolicyError, load_policy_file

    try:
        policy = load_policy_file(file)
    except PolicyError as exc:
        err.print(f"[red]invalid policy:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    recorded = [d.id for d in policy.departments if d.recorded]
    out.print(
        f"{file}: valid — {len(policy.departments)} departments, recorded: {', '.join(recorded)}",
        highlight=False,
    )


@policy_cli.command("activate")
def policy_activate(file: Path) -> None:
    """Store the file as a policy version and make it the active one for every instance."""
    from app.policy_store import activate
    from app.recording_policy import PolicyError, load_policy_file

    try:
        policy = load_policy_file(file)
    except PolicyError as exc:
        err.print(f"[red]invalid policy:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    with unit_of_work(_sessions()) as session:
        version, changed = activate(session, policy, file.read_text(encoding="utf-8"), "cli")
    out.print(
        f"policy version {version} {'activated' if changed else 'was already active'}",
        highlight=False,
    )


@cli.command()
def simulate(
    scenario: Annotated[
        str, typer.Argument(help="inbound, payment, opt-out, transfer, non-recorded or live")
    ] = "inbound",
    department: Annotated[
        str | None,
        typer.Option(
            help="department id: dial its number (default: the main number for inbound, "
            "contact-harlow for the others)"
        ),
    ] = None,
    number: Annotated[str | None, typer.Option(help="the number dialled (E.164)")] = None,
    caller: Annotated[str, typer.Option(help="the caller's number")] = "+447700900123",
    digits: Annotated[
        str | None, typer.Option(help="keys pressed in the IVR, e.g. 1 or 91 (opt out, then 1)")
    ] = None,
    talk: Annotated[float, typer.Option(help="seconds each stretch of talk lasts")] = 1.0,
    to: Annotated[
        str | None,
        typer.Option(
            help="department a transfer goes to (default: planning for transfer, "
            "housing-management for non-recorded)"
        ),
    ] = None,
    agent: Annotated[
        str | None, typer.Option(help="live: the person the call is assigned to")
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="CALLGUARD_TOKEN",
            show_default=False,
            help="a supervisor's bearer token (default: ./var/simulate-token, see above)",
        ),
    ] = None,
    url: Annotated[str | None, typer.Option(help="the service; default PUBLIC_BASE_URL")] = None,
) -> None:
    """Drive a call against a running service as the platform would (signed webhooks), and
    print what the caller heard, the platform commands, the decisions and the audit events.

    Scenarios: inbound (a caller dials and is queued); payment (the agent pauses for a card
    payment, then ends it); opt-out (the agent records the caller's opt-out); transfer (to
    --to); non-recorded (a supervisor moves the call to the non-recorded line, then
    transfers it to --to: recording stays off); live (the call is assigned to --agent and
    stays up for --talk seconds, to be watched and acted on in the console).

    All but inbound act through the people's API as a supervisor, with --token or
    CALLGUARD_TOKEN. Without either, simulate creates the supervisor simulator-supervisor
    directly in the configured database (so run it from the service's directory, with the
    same settings) and keeps its token in ./var/simulate-token (mode 0600) for the next
    runs; if the service refuses the kept token, it creates simulator-supervisor-2 (-3, …).
    """
    from app.simulate import CallOptions, Scenario, SimulationError, run

    try:
        chosen = Scenario(scenario)
    except ValueError:
        known = ", ".join(Scenario)
        err.print(f"[red]unknown scenario {scenario!r}: try {known}[/red]", highlight=False)
        raise typer.Exit(2) from None
    settings = _settings()
    options = CallOptions(
        department=department,
        number=number,
        caller=caller,
        digits=digits,
        talk=talk,
        to=to,
        agent=agent,
    )
    try:
        ok = run(
            settings,
            chosen,
            options,
            base_url=url or settings.public_base_url,
            token=token,
            console=out,
        )
    except SimulationError as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(1) from None
    raise typer.Exit(0 if ok else 1)


# Registers retention, holds, sar, numbers and policy dry-run on the apps above.
from app import cli_audit, cli_governance  # noqa: E402, F401


def main() -> None:
    cli()
