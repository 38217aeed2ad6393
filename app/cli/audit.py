"""The audit log's commands: `audit verify`, signed checkpoints (`checkpoint`,
`check-checkpoint`, `public-key`, `new-key`) and an outside `monitor`. Registered by
app/cli/__init__.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import httpx
import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.audit import monitor
from app.audit.checkpoint import (
    CheckpointError,
    check_checkpoint,
    make_checkpoint,
    new_signing_key,
    parse,
    public_key_text,
    signing_key,
)
from app.audit.verify import verify_log
from app.cli.root import cli, configured, err, out
from app.storage.db import make_engine, read_only_session

audit_cli = typer.Typer(help="The tamper-evident audit log", no_args_is_help=True)
cli.add_typer(audit_cli, name="audit")


@audit_cli.command("verify")
def audit_verify() -> None:
    """Verify the whole hash chain; exits 1 naming the first broken link."""
    with read_only_session(make_engine(configured().database_url)) as session:
        verdict = verify_log(session)
    if verdict.ok:
        out.print(f"audit log intact: {verdict.events} events", highlight=False)
        return
    err.print(
        f"[red]audit log broken at sequence {verdict.sequence}: {verdict.problem}[/red] "
        f"({verdict.events} events verified before it)",
        highlight=False,
    )
    raise typer.Exit(1)


def signing_key_or_exit() -> Ed25519PrivateKey:
    """CALLGUARD_AUDIT_SIGNING_KEY's key, or exit 2 naming the variable."""
    secret = configured().audit_signing_key
    if secret is None:
        err.print("[red]CALLGUARD_AUDIT_SIGNING_KEY is not set[/red] (callguard audit new-key)")
        raise typer.Exit(2)
    return signing_key(secret.get_secret_value())


@audit_cli.command("new-key")
def audit_new_key() -> None:
    """Print a fresh signing key for CALLGUARD_AUDIT_SIGNING_KEY (keep it secret)."""
    print(new_signing_key())


@audit_cli.command("public-key")
def audit_public_key() -> None:
    """Print the public key of CALLGUARD_AUDIT_SIGNING_KEY, for checkers to trust."""
    print(public_key_text(signing_key_or_exit()))


@audit_cli.command("checkpoint")
def audit_checkpoint(
    output: Annotated[
        Path | None, typer.Option(help="write to this new file (never overwritten)")
    ] = None,
) -> None:
    """Sign the head of the verified chain; keep the JSON somewhere the database is not."""
    key = signing_key_or_exit()
    try:
        with read_only_session(make_engine(configured().database_url)) as session:
            document = make_checkpoint(session, key, datetime.now(UTC))
    except CheckpointError as exc:
        err.print(f"[red]no checkpoint:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    text = json.dumps(document, indent=2) + "\n"
    if output is None:
        print(text, end="")
        return
    try:
        with output.open("x", encoding="utf-8") as file:
            file.write(text)
    except OSError as exc:
        err.print(f"[red]cannot write {output}:[/red] {exc.strerror}", highlight=False)
        raise typer.Exit(2) from None
    err.print(f"checkpoint at sequence {document['sequence']} written to {output}")


@audit_cli.command("check-checkpoint")
def audit_check_checkpoint(
    file: Path,
    public_key: Annotated[
        str | None,
        typer.Option(help="the key to trust (base64); default: CALLGUARD_AUDIT_SIGNING_KEY's"),
    ] = None,
) -> None:
    """Check that the chain still holds a checkpoint's hash, and verifies; exits 1 if not."""
    try:
        document = parse(file.read_text(encoding="utf-8"))
        trusted = public_key or public_key_text(signing_key_or_exit())
        with read_only_session(make_engine(configured().database_url)) as session:
            check = check_checkpoint(session, document, trusted)
    except OSError as exc:
        err.print(f"[red]cannot read {file}:[/red] {exc.strerror}", highlight=False)
        raise typer.Exit(2) from None
    except CheckpointError as exc:
        err.print(f"[red]unusable checkpoint or key:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    if check.ok:
        out.print(f"checkpoint holds: sequence {check.sequence}, chain intact", highlight=False)
        return
    detail = ""
    if check.verdict is not None and not check.verdict.ok:
        detail = f" (sequence {check.verdict.sequence}: {check.verdict.problem})"
    err.print(
        f"[red]checkpoint at sequence {check.sequence}: {check.outcome}[/red]{detail}",
        highlight=False,
    )
    raise typer.Exit(1)


@audit_cli.command("monitor")
def audit_monitor(
    url: Annotated[
        str, typer.Argument(help="callguard's base URL, e.g. https://callguard.example.org")
    ],
    public_key: Annotated[str, typer.Option(help="the log's public key to trust (base64)")],
    state: Annotated[
        Path, typer.Option(dir_okay=False, help="where the last tree head seen is kept")
    ] = Path("callguard-tree-head.json"),
) -> None:
    """Check that the log still extends the last tree head this monitor saw (RFC 9162
    consistency proof), then keep the newest; exits 1 on a rewritten, cut or badly
    signed log. Run it from cron, somewhere the council's database is not."""
    try:
        with httpx.Client(base_url=url.rstrip("/"), timeout=30.0) as client:
            seen = monitor.check(client, public_key, state)
    except (monitor.MonitorError, CheckpointError) as exc:
        err.print(f"[red]cannot check the log:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    if seen.ok:
        before = "" if seen.before is None else f"{seen.before} → "
        out.print(f"log {seen.outcome}: {before}{seen.now} events, consistent", highlight=False)
        return
    err.print(
        f"[red]log {seen.outcome}[/red]: had {seen.before} events, now says {seen.now} "
        f"(the tree head kept in {state} is the evidence)",
        highlight=False,
    )
    raise typer.Exit(1)
