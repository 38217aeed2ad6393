"""`callguard users add | disable`: people and their tokens."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.root import cli, err, open_sessions, out
from app.errors import DomainError
from app.people.users import Role
from app.storage.db import unit_of_work

users_cli = typer.Typer(help="People and their tokens", no_args_is_help=True)
cli.add_typer(users_cli, name="users")


@users_cli.command("add")
def users_add(
    name: str,
    role: Annotated[Role, typer.Option(help="agent, supervisor, governance or admin")],
) -> None:
    """Create a person; the new bearer token is the last line printed."""
    from app.people.users import add_user

    try:
        with unit_of_work(open_sessions()) as session:
            token = add_user(session, name, role)
    except DomainError as exc:
        err.print(f"[red]{exc.detail}[/red]")
        raise typer.Exit(1) from None
    out.print(f"created {role} {name}; their token (shown once):", highlight=False)
    print(token)


@users_cli.command("disable")
def users_disable(name: str) -> None:
    """Revoke a person's token at once."""
    from app.people.users import disable_user

    try:
        with unit_of_work(open_sessions()) as session:
            disable_user(session, name)
    except DomainError as exc:
        err.print(f"[red]{exc.detail}[/red]")
        raise typer.Exit(1) from None
    out.print(f"disabled {name}")
