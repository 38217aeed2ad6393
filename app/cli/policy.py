"""`callguard policy check | activate` (and `dry-run`, in app/cli/governance.py)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from app.cli.root import cli, err, open_sessions, out
from app.storage.db import unit_of_work

policy_cli = typer.Typer(help="Recording policy files and versions", no_args_is_help=True)
cli.add_typer(policy_cli, name="policy")


def policy_refused(exc: Exception) -> typer.Exit:
    # Escaped: the message quotes the file's values, which must not be read as markup.
    # Unwrapped: each problem is one "file:line: field: problem" line, as compilers print.
    err.print(f"[red]invalid policy:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
    return typer.Exit(1)


@policy_cli.command("check")
def policy_check(file: Path) -> None:
    """Validate a policy file; exits non-zero naming the field when invalid."""
    from app.recording_policy import PolicyError, load_policy_file

    try:
        policy = load_policy_file(file)
    except PolicyError as exc:
        raise policy_refused(exc) from None
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
        raise policy_refused(exc) from None
    with unit_of_work(open_sessions()) as session:
        version, changed = activate(session, policy, file.read_text(encoding="utf-8"), "cli")
    out.print(
        f"policy version {version} {'activated' if changed else 'was already active'}",
        highlight=False,
    )
