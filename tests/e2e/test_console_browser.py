"""O5: the console in a real browser (Debian's Chromium driven by Playwright) against a live
`callguard serve` on the simulator. Screenshots of each state go to artifacts/screenshots/
(git-ignored)."""

from __future__ import annotations

import io
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from app.people.users import Role, add_user
from app.platforms.simulator.drive import LiveCall, Platform
from app.storage.db import make_engine, make_session_factory, unit_of_work
from tests.e2e.conftest import BIN

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
axe = pytest.importorskip("axe_playwright_python.sync_playwright").Axe()
# A UK council's pages must meet WCAG 2.2 AA (the public sector accessibility regulations).
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        message = "Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("CALLGUARD_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message + "; .ci/run installs it")
    with playwright_api.sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=str(CHROMIUM))
        yield launched
        launched.close()


@dataclass
class Centre:
    """The live service, its simulated platform, and people made in its database."""

    live: dict[str, Any]

    @property
    def base(self) -> str:
        return str(self.live["env"]["CALLGUARD_PUBLIC_BASE_URL"])

    @cached_property  # one signing client (and one read of the dev token) per test
    def platform(self) -> Platform:
        token = (Path(self.live["cwd"]) / "var" / "dev-token").read_text().strip()
        return Platform(self.base, self.base, token)

    def user(self, name: str, role: Role) -> str:
        engine = make_engine(self.live["env"]["CALLGUARD_DATABASE_URL"])
        try:
            with unit_of_work(make_session_factory(engine)) as session:
                return add_user(session, name, role)
        finally:
            engine.dispose()

    def call(self, department: str, agent: str, supervisor_token: str) -> str:
        policy = self.platform.post("/simulator/policy", {}).json()
        number = next(d["numbers"][0] for d in policy["departments"] if d["id"] == department)
        call = LiveCall(self.platform, None, Console(file=io.StringIO()), talk=0)
        call.dial("console", number, "+447700900123", None)
        response = httpx.post(
            f"{self.base}/api/v1/calls/{call.sid}/assign",
            json={"agent": agent},
            headers={"Authorization": f"Bearer {supervisor_token}"},
        )
        assert response.status_code == 200, response.text
        return call.sid

    def commands(self, call_sid: str) -> list[str]:
        state = self.platform.inspect(call_sid)
        return [c["operation"] for c in state["commands"]]

    def fault(self, operation: str, status: int, times: int) -> None:
        self.platform.post(
            "/simulator/faults",
            {"operation": operation, "status": str(status), "times": str(times)},
        )


@pytest.fixture
def centre(live: dict[str, Any]) -> Centre:
    return Centre(live)


@pytest.fixture
def supervisor_token(centre: Centre) -> str:
    return centre.user("sue", Role.SUPERVISOR)


def open_console(browser: Any, centre: Centre, token: str, width: int = 1100) -> Any:
    """A new browser context (its own sessionStorage), signed in with the keyboard."""
    page = browser.new_context(viewport={"width": width, "height": 800}).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # (An HTTP error status is logged by Chromium as "Failed to load resource": expected.)
    page.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.goto(f"{centre.base}/console")
    expect(page.get_by_label("Your access token")).to_be_focused()
    page.keyboard.type(token)
    page.keyboard.press("Enter")
    expect(page.get_by_text("Signed in as")).to_be_visible()
    assert token not in page.url
    page.script_errors = errors  # checked by shot(): the page must run without errors
    return page


def card(page: Any, call_sid: str) -> Any:
    return page.locator(f'li.call[data-call-sid="{call_sid}"]')


def shot(page: Any, name: str) -> None:
    """A screenshot of a state, which must have run without script errors and pass an
    automated WCAG 2.2 AA audit (axe-core)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    assert page.script_errors == []
    audit = axe.run(page, options={"runOnly": {"type": "tag", "values": WCAG_AA}})
    assert audit.violations_count == 0, f"{name}: {audit.generate_report()}"


def tab_to(page: Any, target: Any, limit: int = 40) -> None:
    """Press Tab until `target` has the focus: it is reachable from the keyboard."""
    for _ in range(limit):
        if target.evaluate("node => node === document.activeElement"):
            return
        page.keyboard.press("Tab")
    raise AssertionError("not reachable with the Tab key")


def test_agent_pauses_for_payment_and_resumes_with_the_keyboard(
    browser: Any, centre: Centre, supervisor_token: str
) -> None:
    token = centre.user("ann", Role.AGENT)
    call_sid = centre.call("contact-harlow", "ann", supervisor_token)
    page = open_console(browser, centre, token)
    expect(page.get_by_role("heading", name="Your live calls")).to_be_visible()
    mine = card(page, call_sid)
    expect(mine.locator(".state-label")).to_have_text("RECORDING")
    expect(mine).to_contain_text("calls to this department are recorded")
    expect(mine).to_contain_text("Contact Harlow")
    shot(page, "agent-1-recording")

    tab_to(page, mine.get_by_role("button", name="Pause for payment"))
    page.keyboard.press("Enter")
    expect(mine.locator(".state-label")).to_have_text("PAUSED FOR PAYMENT")
    expect(mine.get_by_role("button", name="Payment finished — resume")).to_be_visible()
    expect(mine.get_by_role("button", name="Pause for payment")).to_be_hidden()
    expect(mine.get_by_role("alert")).to_be_hidden()
    expect(mine).to_contain_text("You may take card details")
    assert centre.commands(call_sid)[-1] == "pause"  # the platform was asked, and confirmed
    shot(page, "agent-2-paused-for-payment")

    tab_to(page, mine.get_by_role("button", name="Payment finished — resume"))
    page.keyboard.press("Enter")
    expect(mine.locator(".state-label")).to_have_text("RECORDING")
    expect(mine.get_by_role("button", name="Pause for payment")).to_be_visible()
    assert centre.commands(call_sid)[-1] == "resume"
    shot(page, "agent-3-resumed")


def test_a_failed_pause_shows_the_red_warning_and_no_resume(
    browser: Any, centre: Centre, supervisor_token: str
) -> None:
    token = centre.user("ann", Role.AGENT)
    call_sid = centre.call("contact-harlow", "ann", supervisor_token)
    # Every pause fails, the reconciler's retries included, for the whole test.
    centre.fault("pause", 400, times=1000)
    page = open_console(browser, centre, token)
    mine = card(page, call_sid)
    mine.get_by_role("button", name="Pause for payment").click()

    warning = mine.get_by_role("alert")
    expect(warning).to_have_text("NOT paused — do not take card details")
    red = warning.evaluate("node => getComputedStyle(node).backgroundColor")
    assert red == "rgb(176, 0, 32)"
    expect(mine.locator(".state-label")).to_have_text("RECORDING")
    expect(mine.get_by_role("button", name="Payment finished — resume")).to_be_hidden()
    expect(mine.get_by_role("button", name="Try pausing again")).to_be_visible()
    shot(page, "agent-4-pause-not-confirmed")

    # The warning is the server's state, not the page's memory: a reload shows it again.
    page.reload()
    expect(card(page, call_sid).get_by_role("alert")).to_have_text(
        "NOT paused — do not take card details"
    )
    expect(
        card(page, call_sid).get_by_role("button", name="Payment finished — resume")
    ).to_be_hidden()
    shot(page, "agent-5-pause-not-confirmed-after-reload")


def test_an_agent_sees_only_their_own_calls(
    browser: Any, centre: Centre, supervisor_token: str
) -> None:
    ann = centre.user("ann", Role.AGENT)
    centre.user("bob", Role.AGENT)
    anns_call = centre.call("contact-harlow", "ann", supervisor_token)
    bobs_call = centre.call("revenues-and-benefits", "bob", supervisor_token)
    page = open_console(browser, centre, ann)
    expect(card(page, anns_call)).to_be_visible()
    expect(page.locator("li.call")).to_have_count(1)
    expect(card(page, bobs_call)).to_have_count(0)
    # Not through the page's own API client either: bob's call does not exist for ann.
    statuses = page.evaluate(
        """async (sid) => {
            const token = sessionStorage.getItem("callguard.token");
            const headers = {Authorization: `Bearer ${token}`};
            const get = await fetch(`/api/v1/calls/${sid}`, {headers});
            const url = `/api/v1/calls/${sid}/payment/start`;
            const pause = await fetch(url, {method: "POST", headers});
            return [get.status, pause.status];
        }""",
        bobs_call,
    )
    assert statuses == [404, 404]
    shot(page, "agent-6-own-calls-only")


def test_supervisor_moves_a_call_to_the_non_recorded_line_and_the_agent_sees_it(
    browser: Any, centre: Centre, supervisor_token: str
) -> None:
    agent_token = centre.user("ann", Role.AGENT)
    call_sid = centre.call("housing-management", "ann", supervisor_token)
    agent = open_console(browser, centre, agent_token)
    expect(card(agent, call_sid).locator(".state-label")).to_have_text("RECORDING")
    # An agent has no non-recorded-line button (the API would refuse them too).
    expect(
        card(agent, call_sid).get_by_role("button", name="Move to non-recorded line")
    ).to_have_count(0)

    supervisor = open_console(browser, centre, supervisor_token)
    expect(supervisor.get_by_role("heading", name="All live calls")).to_be_visible()
    theirs = card(supervisor, call_sid)
    expect(theirs).to_contain_text("Agent: ann")
    shot(supervisor, "supervisor-1-live-calls")

    theirs.get_by_role("button", name="Move to non-recorded line").click()
    dialog = supervisor.get_by_role("dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Move the call").click()  # no reason yet
    expect(dialog.get_by_role("alert")).to_contain_text("Give a reason")
    dialog.get_by_label("Reason (kept in the audit log)").fill("caller is distressed")
    shot(supervisor, "supervisor-2-non-recorded-reason")
    dialog.get_by_role("button", name="Move the call").click()
    expect(dialog).to_be_hidden()
    expect(theirs.locator(".state-label")).to_have_text("NOT RECORDED")
    expect(theirs.get_by_role("button", name="On the non-recorded line")).to_be_disabled()
    shot(supervisor, "supervisor-3-moved")

    # The agent's page updates by itself, without a reload.
    mine = card(agent, call_sid)
    expect(mine.locator(".state-label")).to_have_text("NOT RECORDED")
    expect(mine).to_contain_text("moved to the non-recorded line by a supervisor")
    shot(agent, "agent-7-not-recorded")
    assert "stop" in centre.commands(call_sid)

    timeline = theirs.get_by_role("button", name="Event timeline")
    timeline.click()
    expect(timeline).to_have_attribute("aria-expanded", "true")
    expect(theirs.locator(".events")).to_contain_text("transfer.non_recorded_line by sue")
    expect(theirs.locator(".events")).to_contain_text("recording.stopped")
    shot(supervisor, "supervisor-4-timeline")


def test_opt_out_and_transfer_from_the_agents_page(
    browser: Any, centre: Centre, supervisor_token: str
) -> None:
    token = centre.user("ann", Role.AGENT)
    call_sid = centre.call("revenues-and-benefits", "ann", supervisor_token)
    page = open_console(browser, centre, token)
    mine = card(page, call_sid)
    mine.get_by_role("button", name="Opt-out requested").click()
    expect(mine).to_contain_text("advise the caller to contact us by email at revenues@harlow")
    expect(mine.get_by_role("button", name="Opt-out recorded")).to_be_disabled()
    shot(page, "agent-8-opt-out-advise-email")

    mine.get_by_label("Transfer to").select_option(label="Planning (not recorded)")
    mine.get_by_role("button", name="Transfer", exact=True).click()
    # Transferred: the call waits in Planning's queue and leaves ann's list.
    expect(mine).to_have_count(0)
    expect(page.get_by_role("status").first).to_contain_text("transferred to Planning")
    shot(page, "agent-9-transferred")


def test_a_revoked_token_signs_the_console_out_at_once(
    browser: Any, centre: Centre, supervisor_token: str
) -> None:
    token = centre.user("ann", Role.AGENT)
    page = open_console(browser, centre, token)
    subprocess.run(
        [BIN / "callguard", "users", "disable", "ann"],
        env=centre.live["env"],
        cwd=centre.live["cwd"],
        check=True,
        capture_output=True,
    )
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.locator("#sign-in-error")).to_contain_text("revoked")
    assert page.evaluate("sessionStorage.getItem('callguard.token')") is None
    page.get_by_label("Your access token").fill("cg_not-a-token")
    page.keyboard.press("Enter")
    expect(page.locator("#sign-in-error")).to_contain_text("refused")
    shot(page, "sign-in-refused")


def test_the_accessibility_audit_does_find_a_violation(
    browser: Any, centre: Centre, supervisor_token: str
) -> None:
    """The axe audit in shot() runs inside the console's CSP: a field without a label,
    added to the live page, is reported (so a silent audit cannot pass for a clean one)."""
    page = open_console(browser, centre, supervisor_token)
    page.evaluate("document.querySelector('main').append(document.createElement('input'))")
    audit = axe.run(page, options={"runOnly": {"type": "tag", "values": WCAG_AA}})
    assert "label" in {violation["id"] for violation in audit.response["violations"]}


# --- layout, the primary action, the transfer choice, the favicon (issue 14, item 12) ---

PHONE, DESKTOP = 390, 1280

# The height of an element's content box in lines of its own text.
LINES = """node => {
    const s = getComputedStyle(node);
    const line = s.lineHeight.endsWith("px")
        ? parseFloat(s.lineHeight) : parseFloat(s.lineHeight) * parseFloat(s.fontSize);
    const box = node.getBoundingClientRect().height;
    const frame = ["paddingTop", "paddingBottom", "borderTopWidth", "borderBottomWidth"]
        .reduce((sum, side) => sum + parseFloat(s[side]), 0);
    return (box - frame) / line;
}"""


def assert_fits(page: Any) -> None:
    """Nothing scrolls sideways, and Sign out is on one line."""
    scroll, client = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    wide = page.evaluate(
        """width => [...document.querySelectorAll("body *")]
            .filter((node) => node.getBoundingClientRect().right > width)
            .map((node) => `${node.tagName}.${node.className}`)""",
        client,
    )
    assert scroll <= client, f"the page is {scroll}px wide in a {client}px window: {wide}"
    sign_out = page.get_by_role("button", name="Sign out")
    expect(sign_out).to_be_visible()
    assert sign_out.evaluate(LINES) == pytest.approx(1, abs=0.05)


STYLE = """node => {
    const s = getComputedStyle(node);
    return [s.backgroundColor, s.color, s.borderColor, s.fontWeight];
}"""


@pytest.mark.parametrize("width", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_the_console_fits_the_window_and_pausing_is_the_primary_action(
    browser: Any, centre: Centre, supervisor_token: str, width: int
) -> None:
    centre.user("ann", Role.AGENT)
    # The longest department name, and a supervisor's page: the most buttons a card has.
    call_sid = centre.call("revenues-and-benefits", "ann", supervisor_token)
    page = open_console(browser, centre, supervisor_token, width=width)
    theirs = card(page, call_sid)
    expect(theirs.locator(".state-label")).to_have_text("RECORDING")
    assert_fits(page)
    # "call …5e910f" stays whole when the title wraps.
    assert theirs.locator(".title-call").evaluate("node => node.getClientRects().length") == 1

    # Pausing is the one action that matters most: it looks unlike every other button.
    pause = theirs.get_by_role("button", name="Pause for payment")
    primary = pause.evaluate(STYLE)
    others = theirs.locator(".actions button:visible:not(.pause)")
    assert others.count() >= 4
    for index in range(others.count()):
        other = others.nth(index).evaluate(STYLE)
        assert primary[0] != other[0] and primary[1] != other[1], (primary, other)
    assert pause.evaluate(LINES) == pytest.approx(1, abs=0.05)  # its label is not broken up
    shot(page, f"layout-{width}-1-recording")

    theirs.get_by_role("button", name="Event timeline").click()
    expect(theirs.locator(".events")).to_contain_text("recording.started")
    assert_fits(page)
    shot(page, f"layout-{width}-2-timeline")

    pause.click()
    expect(theirs.locator(".state-label")).to_have_text("PAUSED FOR PAYMENT")
    # Resuming is not dressed as the primary action: a habit click cannot resume.
    resume = theirs.get_by_role("button", name="Payment finished — resume")
    assert resume.evaluate(STYLE)[0] != primary[0]
    assert_fits(page)
    shot(page, f"layout-{width}-3-paused")

    theirs.get_by_role("button", name="Move to non-recorded line").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    assert_fits(page)
    shot(page, f"layout-{width}-4-non-recorded-dialog")


@pytest.mark.parametrize("width", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_a_transfer_needs_a_department_chosen_first(
    browser: Any, centre: Centre, supervisor_token: str, width: int
) -> None:
    token = centre.user("ann", Role.AGENT)
    call_sid = centre.call("contact-harlow", "ann", supervisor_token)
    page = open_console(browser, centre, token, width=width)
    transfers: list[str] = []
    page.on("request", lambda r: transfers.append(r.url) if "/transfer" in r.url else None)
    mine = card(page, call_sid)
    menu = mine.get_by_label("Transfer to")
    go = mine.get_by_role("button", name="Transfer", exact=True)
    # Nothing is chosen for the agent: the first option says what to do.
    expect(menu).to_have_value("")
    expect(menu.locator("option:checked")).to_have_text("Choose a department")
    expect(go).to_have_attribute("aria-disabled", "true")
    assert_fits(page)
    shot(page, f"transfer-{width}-1-nothing-chosen")

    # Pressed anyway (it stays focusable so that it can say why): refused, said, no request.
    tab_to(page, go)
    page.keyboard.press("Enter")
    go.click(force=True)  # (force: Playwright itself will not click an aria-disabled button)
    expect(mine.get_by_role("status")).to_have_text("Choose a department to transfer to first.")
    expect(menu).to_be_focused()
    assert transfers == []
    assert "transfer" not in centre.commands(call_sid)
    expect(mine).to_contain_text("Contact Harlow")
    shot(page, f"transfer-{width}-2-refused")

    menu.select_option(label="Planning (not recorded)")
    expect(go).to_have_attribute("aria-disabled", "false")
    menu.select_option(value="")  # back to nothing chosen: refused again
    expect(go).to_have_attribute("aria-disabled", "true")
    menu.select_option(label="Planning (not recorded)")
    go.click()
    expect(mine).to_have_count(0)
    expect(page.get_by_role("status").first).to_contain_text("transferred to Planning")
    assert len(transfers) == 1


def test_the_page_has_a_favicon_and_nothing_it_loads_is_missing(
    browser: Any, centre: Centre, supervisor_token: str
) -> None:
    context = browser.new_context(viewport={"width": PHONE, "height": 800})
    page = context.new_page()
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.goto(f"{centre.base}/console")
    expect(page.get_by_label("Your access token")).to_be_focused()
    assert page.evaluate(  # the sign-in page fits a phone too
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )
    href = page.locator('link[rel="icon"]').get_attribute("href")
    assert href is not None
    icon = context.request.get(f"{centre.base}{href}")
    assert icon.status == 200
    assert icon.headers["content-type"].startswith("image/")
    # The icon loads under the page's own CSP (img-src): drawn into an <img>, it has a size.
    size = page.evaluate(
        """href => new Promise((done) => {
            const img = new Image();
            img.onload = () => done([img.naturalWidth, img.naturalHeight]);
            img.onerror = () => done(null);
            img.src = href;
        })""",
        href,
    )
    assert size is not None and min(size) > 0
    page.reload()
    assert failed == []
