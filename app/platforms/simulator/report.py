"""What `callguard simulate` reads and prints, as the call goes: the TwiML parsed into
what the caller hears (`Step`), each thing the caller heard, the call
object after a person's action, the platform commands callguard issued, and a run's
summary (decisions with their reasons, recordings and their destruction dates, events)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from rich.console import Console
from rich.table import Table


@dataclass
class Step:
    says: list[str]
    gather_action: str | None
    redirect: str | None
    queue: str | None
    dial: str | None
    records_by_twiml: bool


def parse_twiml(body: str) -> Step:
    root = ET.fromstring(body)  # noqa: S314  (our own service's TwiML)
    says = [el.text or "" for el in root.iter("Say")]
    gather = root.find("Gather")
    redirect = root.find("Redirect")
    enqueue = root.find("Enqueue")
    dial = root.find("Dial")
    queue = None
    if enqueue is not None:
        queue = (enqueue.text or "").strip() or f"workflow {enqueue.get('workflowSid')}"
    return Step(
        says=says,
        gather_action=gather.get("action") if gather is not None else None,
        redirect=(redirect.text or "").strip() if redirect is not None else None,
        queue=queue,
        dial=(dial.text or "").strip() if dial is not None else None,
        records_by_twiml=root.find("Start/Recording") is not None,
    )


def url_path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


# -- printing -------------------------------------------------------------------------------


def heading(console: Console, title: str) -> None:
    """A rule across a terminal; piped, a plain line (a rule cuts a long title to fit)."""
    if console.is_terminal:
        console.rule(title)
    else:
        console.print(f"== {title} ==", highlight=False)


def show(console: Console, step: Step) -> None:
    for text in step.says:
        console.print(f"  [dim]says:[/dim] {text}", highlight=False)
    if step.gather_action:
        console.print("  [dim]waits for a key[/dim]")
    if step.queue:
        console.print(f"  [green]queued:[/green] {step.queue}", highlight=False)
    if step.dial:
        console.print(f"  [green]puts the caller through to:[/green] {step.dial}", highlight=False)


def show_call(console: Console, call: dict[str, Any]) -> None:
    console.print(
        f"  now: {call['department']}; recording state {call['recording']}; "
        f"callguard wants {call['desired']} because {', '.join(call['reasons'])}",
        highlight=False,
    )


def command_text(command: dict[str, Any]) -> str:
    operation, args = command["operation"], command["args"]
    if operation == "redirect":
        return f"redirect the call to {url_path(args['url'])}"
    if operation == "start":
        return "start recording"
    return f"{operation} recording {args.get('recording_sid', '')}"


def report(console: Console, state: dict[str, Any]) -> None:
    call = state["call"]
    heading(console, "what callguard did")
    console.print(f"department: {call['department']}", highlight=False)
    operations = [c["operation"] for c in state["commands"]]
    console.print(f"platform commands: {', '.join(operations) or 'none'}", highlight=False)
    for event in state["events"]:
        if event["type"] == "decision":
            console.print(
                f"decision: [bold]{event['detail']['desired']}[/bold] — "
                f"{', '.join(event['reasons'])} (policy version {event['policy_version']})",
                highlight=False,
            )
    for r in state["recordings"]:
        console.print(
            f"recording {r['recording_sid']} ({r['department']}): {r['status']}, "
            f"destroy after {r['destroy_after']}",
            highlight=False,
        )
    if not state["recordings"]:
        console.print("[yellow]not recorded[/yellow]")
    rows = [
        (
            str(e["sequence"]),
            e["type"],
            e["actor"],
            e["recording_sid"] or "",
            ", ".join(e["reasons"]),
            ", ".join(f"{k}={v}" for k, v in e["detail"].items()),
        )
        for e in state["events"]
    ]
    if not console.is_terminal:
        # Piped or redirected: one line per event, nothing cut to fit a width.
        console.print("audit events:")
        for row in rows:
            console.print("  " + "  ".join(cell for cell in row if cell), highlight=False)
        return
    table = Table(title="audit events")
    for column in ("seq", "type", "actor", "recording", "reasons", "detail"):
        # fold, never ellipsis: a narrow terminal wraps ids, types and reasons, never cuts
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console.print(table)
