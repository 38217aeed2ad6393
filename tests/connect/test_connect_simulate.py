"""`callguard simulate` on Connect drives a running callguard (served by uvicorn on a port)
as the flow's Lambda and EventBridge would, against the Connect stand-in's controls, and
prints what the caller heard, what callguard asked of Connect and what it decided."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from rich.console import Console

from app.main import create_app
from app.platforms import platform_named
from app.platforms.simulation import CallOptions, Scenario, SimulationError
from tests.connect_fake.admin import admin_routes
from tests.connect_fake.callguard import ConnectCallguard
from tests.loopback import LoopbackServer


@pytest.fixture
def served(
    connect_callguard: ConnectCallguard, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[ConnectCallguard, str]]:
    cg = connect_callguard
    routes = cg.server.app.router.routes
    routes.insert(0, admin_routes(cg.server, cg.instance, cg.s3))
    monkeypatch.setenv("AWS_ENDPOINT_URL_CONNECT", cg.server.endpoint_url)
    app = create_app(cg.services.settings, cg.services)
    app.state.services = cg.services  # the loopback server runs no lifespan
    loop = LoopbackServer(app, "callguard")
    try:
        yield cg, loop.start()
    finally:
        loop.stop()
        routes.pop(0)


def _simulate(
    cg: ConnectCallguard, base_url: str, scenario: Scenario, **options: object
) -> tuple[bool, str]:
    out = io.StringIO()
    run = platform_named("connect").simulation()
    assert run is not None
    ok = run(
        cg.services.settings,
        scenario,
        CallOptions(talk=0, **options),  # type: ignore[arg-type]
        base_url=base_url,
        token=None,
        console=Console(file=out, width=200),
    )
    return ok, out.getvalue()


def test_payment(served: tuple[ConnectCallguard, str]) -> None:
    cg, url = served
    ok, printed = _simulate(cg, url, Scenario.PAYMENT)
    assert ok
    for line in (
        "queued: contact-harlow (recorded: true)",
        "callguard → Connect: StartContactRecording",
        "callguard → Connect: SuspendContactRecording",
        "now: contact-harlow; recording paused",
        "callguard → Connect: ResumeContactRecording",
        "recording.completed",
    ):
        assert line in printed, printed


def test_transfer_in_the_ccp(served: tuple[ConnectCallguard, str]) -> None:
    cg, url = served
    ok, printed = _simulate(cg, url, Scenario.TRANSFER, to="revenues-and-benefits")
    assert ok
    assert "Contact Control Panel (CCP)" in printed  # the API's refusal, then the CCP
    assert "queued: revenues-and-benefits (recorded: true)" in printed
    assert printed.count("completed, destroy after") == 2  # a recording per department


def test_non_recorded_line(served: tuple[ConnectCallguard, str]) -> None:
    cg, url = served
    ok, printed = _simulate(cg, url, Scenario.NON_RECORDED)
    assert ok
    assert "Now transfer the caller in the Contact Control Panel (CCP)" in printed
    assert "queued: housing-management (recorded: false)" in printed


def test_inbound_with_an_agent_and_an_opt_out(served: tuple[ConnectCallguard, str]) -> None:
    cg, url = served
    ok, printed = _simulate(cg, url, Scenario.OPT_OUT, department="revenues-and-benefits")
    assert ok and "opt-out action: advise_email" in printed
    ok, printed = _simulate(cg, url, Scenario.INBOUND, digits="1")
    assert ok and "caller presses 1" in printed


def test_it_never_runs_without_the_stand_in(
    served: tuple[ConnectCallguard, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cg, url = served
    monkeypatch.delenv("AWS_ENDPOINT_URL_CONNECT")
    with pytest.raises(SimulationError, match="stand-in"):
        _simulate(cg, url, Scenario.INBOUND)
    monkeypatch.setenv("AWS_ENDPOINT_URL_CONNECT", url)  # a server without the controls
    with pytest.raises(SimulationError, match="not the Connect stand-in"):
        _simulate(cg, url, Scenario.INBOUND)
