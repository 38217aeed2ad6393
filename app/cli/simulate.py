"""`callguard simulate`: drive calls against a running service as the platform would."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.root import cli, configured, err, out


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
    """Drive a call against a running service as the configured platform would
    (CALLGUARD_PROVIDER: the simulator's signed webhooks, or another platform's calls
    against its local stand-in), and print what the caller heard, the platform commands,
    the decisions and the audit events.

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
    from app.platforms import platform_named
    from app.platforms.simulation import CallOptions, Scenario, SimulationError

    try:
        chosen = Scenario(scenario)
    except ValueError:
        known = ", ".join(Scenario)
        err.print(f"[red]unknown scenario {scenario!r}: try {known}[/red]", highlight=False)
        raise typer.Exit(2) from None
    settings = configured()
    run = platform_named(settings.provider).simulation()
    if run is None:
        err.print(
            f"[red]CALLGUARD_PROVIDER={settings.provider} has no simulation: its calls are "
            "real (run the service with the simulator, or a platform's stand-in)[/red]",
            highlight=False,
        )
        raise typer.Exit(2)
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
