"""The operator's command line, `callguard …`: one module per command group, each
registering itself on the root app (app/cli/root.py) when imported here."""

from __future__ import annotations

from app.cli import audit, evidence, governance, policy, service, simulate, users  # noqa: F401
from app.cli.root import cli


def main() -> None:
    cli()
