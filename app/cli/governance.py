"""The governance commands of the CLI: `retention run`, `holds place|release`,
`sar export`, `policy dry-run`, `numbers rekey`. Registered by app/cli.py."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import select

from app.audit import log as audit
from app.callers.numbers import NumberVault, vault
from app.calls.provider import RecordingStore
from app.cli.policy import policy_cli, policy_refused
from app.cli.root import cli, configured, err, open_sessions, out
from app.config import Settings
from app.errors import DomainError
from app.retention.media import MediaSource
from app.retention.run import DEFAULT_BATCH, DEFAULT_CONCURRENCY, RetentionRun
from app.storage.db import make_engine, read_only_session, unit_of_work
from app.storage.models import Call

CLI = "cli"
OLD_KEY_ENV = "CALLGUARD_OLD_NUMBER_KEY"

retention_cli = typer.Typer(
    help="Destroy recordings and numbers that are due", no_args_is_help=True
)
holds_cli = typer.Typer(help="Legal holds on recordings", no_args_is_help=True)
sar_cli = typer.Typer(help="Subject access requests", no_args_is_help=True)
numbers_cli = typer.Typer(help="Callers' numbers at rest", no_args_is_help=True)
cli.add_typer(retention_cli, name="retention")
cli.add_typer(holds_cli, name="holds")
cli.add_typer(sar_cli, name="sar")
cli.add_typer(numbers_cli, name="numbers")


def _say(text: str) -> None:
    """Plain lines, never wrapped or read as markup: operators grep and pipe them."""
    out.print(text, markup=False, highlight=False, soft_wrap=True)


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]{escape(message)}[/red]")  # it may quote a file's or a user's text
    return typer.Exit(code)


def build_provider(settings: Settings) -> RecordingStore:
    """Where the configured platform keeps recordings (tests replace this)."""
    from app.runtime.services import build_store

    if settings.provider == "simulator":
        err.print(
            "[yellow]CALLGUARD_PROVIDER=simulator: this process's simulator holds no "
            "recordings, so each reads as already gone[/yellow]"
        )
    return build_store(settings)


def _moment(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _fail(f"--now {text!r} is not an ISO-8601 date or time", 2) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@retention_cli.command("run")
def retention_run(
    now: Annotated[
        str | None,
        typer.Option(help="decide what is due as at this ISO-8601 time (default: now; UTC)"),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="list what would go; change nothing")
    ] = False,
    concurrency: Annotated[
        int, typer.Option(min=1, max=64, help="provider requests in flight")
    ] = DEFAULT_CONCURRENCY,
    batch: Annotated[int, typer.Option(min=1, max=10000, help="recordings per claim")] = (
        DEFAULT_BATCH
    ),
) -> None:
    """Destroy due recordings at the provider (confirmed gone), then erase the numbers of
    calls with nothing left to keep. Safe on several workers at once; exits 1 when
    anything failed (it stays due and the next run retries it)."""
    settings = configured()
    run = RetentionRun(
        open_sessions(),
        build_provider(settings),
        now=_moment(now),
        concurrency=concurrency,
        batch_size=batch,
        actor=CLI,
    )
    if dry_run:
        preview = run.preview()
        for item in preview.recordings:
            _say(
                f"would destroy {item.recording_sid} (call {item.call_sid}, {item.department}, "
                f"due {item.destroy_after.isoformat()})",
            )
        for call_sid in preview.numbers:
            _say(f"would erase the caller's number of call {call_sid}")
        _say(
            f"dry run: due {len(preview.recordings)}, held {preview.held}, "
            f"numbers {len(preview.numbers)}; nothing changed",
        )
        return
    due, _held = run.counts()
    progress = Progress(
        TextColumn("destroying"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=out,
        disable=not out.is_terminal,
    )
    with progress:
        task = progress.add_task("destroying", total=due)
        summary = run.run(lambda n: progress.advance(task, n))
    _say(
        f"due {summary.due}, destroyed {summary.destroyed}, held {summary.held}, "
        f"failed {summary.failed}, numbers erased {summary.numbers_erased}",
    )
    if not summary.ok:
        raise _fail(f"{summary.failed} recording(s) not destroyed: they stay due (see the log)")


@holds_cli.command("place")
def holds_place(
    recording: Annotated[str, typer.Argument(help="the recording SID")],
    case: Annotated[str, typer.Option("--case", help="the investigation's case reference")],
    reason: Annotated[str, typer.Option(help="why the recording must be kept")],
    by: Annotated[str, typer.Option(help="who places it (the audit actor)")] = CLI,
) -> None:
    """Keep a recording past its destruction date; a task to tell the caller is created."""
    from app.retention.holds import place_hold

    try:
        with unit_of_work(open_sessions()) as session:
            hold, notification_id = place_hold(session, recording, case, reason, by)
    except DomainError as exc:
        raise _fail(exc.detail) from None
    _say(
        f"hold {hold.id} placed on {recording} (case {case}); "
        f"notification {notification_id}: the caller is to be told",
    )


@holds_cli.command("release")
def holds_release(
    hold_id: Annotated[int, typer.Argument(help="the hold's id")],
    by: Annotated[str, typer.Option(help="who releases it (the audit actor)")] = CLI,
) -> None:
    """Release a hold; once a recording has none left, an overdue one goes at the next run."""
    from app.retention.holds import release_hold

    try:
        with unit_of_work(open_sessions()) as session:
            hold = release_hold(session, hold_id, by)
    except DomainError as exc:
        raise _fail(exc.detail) from None
    _say(f"hold {hold_id} on {hold.recording_sid} released")


def build_media(settings: Settings) -> MediaSource:
    """Where the configured platform streams recordings' audio from (tests replace this)."""
    from app.platforms import platform_named

    if settings.provider == "simulator":
        err.print(
            "[yellow]CALLGUARD_PROVIDER=simulator: this process's simulator holds no "
            "recordings, so each one's audio reads as gone[/yellow]"
        )
    platform = platform_named(settings.provider)
    return platform.media(platform.client(settings), settings)


@sar_cli.command("export")
def sar_export(
    phone: Annotated[str, typer.Argument(help="the number, national or +E.164")],
    by: Annotated[str, typer.Option(help="who asks (the audit actor)")] = CLI,
    bundle: Annotated[
        Path | None,
        typer.Option(
            "--bundle",
            dir_okay=False,
            help="write a ZIP for the caller instead: the recordings' audio, summary.html, "
            "subject-access.json",
        ),
    ] = None,
) -> None:
    """Everything held for a phone number, as JSON on stdout (the export is logged)."""
    from app.callers.subject_access import export

    settings = configured()
    if bundle is not None:
        _sar_bundle(settings, phone, by, bundle)
        return
    try:
        with unit_of_work(open_sessions()) as session:
            result = export(session, vault(settings.number_key), phone, settings.default_region, by)
    except DomainError as exc:
        raise _fail(exc.detail, 2) from None
    print(json.dumps(result, indent=2))


def _sar_bundle(settings: Settings, phone: str, by: str, target: Path) -> None:
    """Written beside FILE under a temporary name, then renamed: FILE is never half a ZIP."""
    from app.callers.sar_bundle import bundle

    media = build_media(settings)
    partial = target.with_name(f".{target.name}.partial")
    try:
        with partial.open("wb") as file:
            contents = bundle(
                open_sessions(),
                vault(settings.number_key),
                media,
                phone,
                settings.default_region,
                by,
                file,
            )
        partial.replace(target)
    except DomainError as exc:
        partial.unlink(missing_ok=True)
        raise _fail(exc.detail, 2 if exc.status == 422 else 1) from None
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise _fail(f"cannot write {target}: {exc.strerror or exc}", 1) from None
    _say(
        f"wrote {target}: audio of {contents.audio} recording(s); listed without audio: "
        f"{contents.destroyed} destroyed, {contents.gone} gone at the platform, "
        f"{contents.unfinished} unfinished",
    )


@policy_cli.command("dry-run")
def policy_dry_run(
    file: Path,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """How FILE would have decided past calls, and the destruction dates it would give
    (which are not changed: dates already set never move)."""
    from app.recording_policy import PolicyError, load_policy_file
    from app.retention.dry_run import dry_run

    try:
        candidate = load_policy_file(file)
    except PolicyError as exc:
        raise policy_refused(exc) from None
    settings = configured()
    # A read-only snapshot: a long dry run over a large database makes no writer wait.
    with read_only_session(make_engine(settings.database_url)) as session:
        report = dry_run(session, candidate, settings.fail_safe)
    if as_json:
        print(
            json.dumps(
                {
                    "calls": report.calls,
                    "recordings": report.recordings,
                    "decisions": [
                        {
                            "call_sid": c.call_sid,
                            "department": c.department,
                            "before": {"state": c.before.state, "reasons": c.before.reasons},
                            "after": {"state": c.after.state, "reasons": c.after.reasons},
                        }
                        for c in report.decisions
                    ],
                    "dates": [
                        {
                            "recording_sid": d.recording_sid,
                            "call_sid": d.call_sid,
                            "department": d.department,
                            "current": d.current.isoformat() if d.current else None,
                            "candidate": d.candidate.isoformat() if d.candidate else None,
                            "note": d.note,
                        }
                        for d in report.dates
                    ],
                },
                indent=2,
            )
        )
        return

    def decision(state: str, reasons: tuple[str, ...]) -> str:
        return f"{state} ({', '.join(reasons)})"

    for change in report.decisions:
        _say(
            f"call {change.call_sid} [{change.department or '-'}]: "
            f"{decision(change.before.state, change.before.reasons)} -> "
            f"{decision(change.after.state, change.after.reasons)}",
        )
    for date in report.dates:
        current = date.current.isoformat() if date.current else "-"
        proposed = date.candidate.isoformat() if date.candidate else "-"
        _say(
            f"recording {date.recording_sid} [{date.department}]: destroy_after {current} "
            f"would be {proposed} ({date.note})",
        )
    _say(
        f"{report.calls} calls replayed, {len(report.decisions)} decided differently; "
        f"{len(report.dates)} of {report.recordings} recordings' dates would differ. "
        "Nothing was changed: dates already set keep their value.",
    )


@numbers_cli.command("rekey")
def numbers_rekey(batch: Annotated[int, typer.Option(min=1)] = 500) -> None:
    """Key rotation: re-wrap every call's number key, and recompute its lookup hash, from
    the old CALLGUARD_NUMBER_KEY (in CALLGUARD_OLD_NUMBER_KEY) to the current one."""
    old_secret = os.environ.get(OLD_KEY_ENV)
    if not old_secret:
        raise _fail(f"{OLD_KEY_ENV} must hold the previous CALLGUARD_NUMBER_KEY", 2)
    old, new = NumberVault(old_secret), vault(configured().number_key)
    if old.key_id == new.key_id:
        raise _fail(f"{OLD_KEY_ENV} is the current key: nothing to do", 2)
    sessions, after, moved = open_sessions(), "", 0
    while True:
        with unit_of_work(sessions) as session:
            calls = session.scalars(
                select(Call)
                .where(Call.caller_number_key_id == old.key_id, Call.call_sid > after)
                .order_by(Call.call_sid)
                .limit(batch)
            ).all()
            if not calls:
                break
            after = calls[-1].call_sid
            done = sum(new.adopt(call, old) for call in calls)
            moved += done
            audit.append(
                session,
                audit.EventType.NUMBERS_REKEYED,
                actor=CLI,
                detail={"calls": done, "from_key_id": old.key_id, "to_key_id": new.key_id},
            )
    _say(f"{moved} call number(s) re-keyed to key {new.key_id}")
