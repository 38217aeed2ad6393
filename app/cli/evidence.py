"""`callguard evidence export|verify`: evidence packs of a recording for an investigation
(app/evidence/pack.py), and their offline check (app/evidence/offline.py, the same code an
outside party runs without callguard)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from app.cli.audit import signing_key_or_exit
from app.cli.governance import build_media
from app.cli.root import cli, configured, err, out
from app.errors import DomainError
from app.evidence import offline
from app.evidence.pack import CASE_REFERENCE, write_pack
from app.storage.db import make_engine, make_session_factory

evidence_cli = typer.Typer(help="Evidence packs a court can check", no_args_is_help=True)
cli.add_typer(evidence_cli, name="evidence")


@evidence_cli.command("export")
def evidence_export(
    recording_sid: str,
    case: Annotated[str, typer.Option("--case", help="the investigation's case reference")],
    output: Annotated[Path, typer.Option(dir_okay=False, help="the ZIP to write (new file)")],
    by: Annotated[str, typer.Option(help="who exports it (the audit actor)")] = "cli",
) -> None:
    """Write an evidence pack of a recording: its audio and fingerprint, its call's audit
    events with their proofs, the signed tree head, a statement. The export is logged."""
    case = case.strip()
    if not 1 <= len(case) <= 100 or not re.fullmatch(CASE_REFERENCE, case):
        err.print("[red]--case must be 1 to 100 characters, on one line[/red]")
        raise typer.Exit(2)
    settings = configured()
    key = signing_key_or_exit()
    engine = make_engine(settings.database_url)
    partial = output.with_name(f".{output.name}.partial")
    if output.exists():
        err.print(f"[red]{output} exists: never overwritten[/red]", highlight=False)
        raise typer.Exit(2)
    try:
        with partial.open("wb") as file:
            export = write_pack(
                engine,
                make_session_factory(engine),
                build_media(settings),
                key,
                recording_sid,
                case,
                by,
                file,
            )
        partial.replace(output)
    except DomainError as exc:
        partial.unlink(missing_ok=True)
        err.print(f"[red]no evidence pack:[/red] {exc.detail}", highlight=False)
        raise typer.Exit(1) from None
    except OSError as exc:
        partial.unlink(missing_ok=True)
        err.print(f"[red]cannot write {output}:[/red] {exc.strerror or exc}", highlight=False)
        raise typer.Exit(2) from None
    out.print(
        f"wrote {output}: recording {export.recording_sid} of call {export.call_sid}, "
        f"case {export.case_reference}",
        highlight=False,
    )


@evidence_cli.command("verify")
def evidence_verify(
    file: Path,
    public_key: Annotated[str, typer.Option(help="the log's public key to trust (base64)")],
) -> None:
    """Check a pack with no database and no network; exits 1 naming the first failure."""
    try:
        line = offline.verify_pack(str(file), public_key)
    except offline.Failed as exc:
        err.print(f"[red]FAILED:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    except offline.Unreadable as exc:
        err.print(f"[red]unreadable:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    out.print(line, highlight=False)
