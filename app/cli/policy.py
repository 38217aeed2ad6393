"""`callguard policy check | activate` (and `dry-run`, in app/cli/governance.py)."""

from __future__ import annotations

from pathlib import Path

import typer

from app.cli.root import cli, err, open_sessions, out
from app.storage.db import unit_of_work

policy_cli = typer.Typer(help="Recording policy files and versions", no_args_is_help=True)
cli.add_typer(policy_cli, name="policy")


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
    from app.recording_policy import PolicyError, load_policy_file
    from app.storage.policy_versions import activate

    try:
        policy = load_policy_file(file)
    except PolicyError as exc:
        err.print(f"[red]invalid policy:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    with unit_of_work(open_sessions()) as session:
        version, changed = activate(session, policy, file.read_text(encoding="utf-8"), "cli")
    out.print(
        f"policy version {version} {'activated' if changed else 'was already active'}",
        highlight=False,
    )
