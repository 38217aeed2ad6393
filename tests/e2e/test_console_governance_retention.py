"""Issue 15 item 7, retention at a glance, and item 1's destruction evidence, in a real
browser (Debian's Chromium, Playwright) against a live `callguard serve`: after a real
retention run on its database in which one deletion failed, the failure is an alert in
words with its last error, the overdue are counted and explained, the last run is
described, and the destroyed recording's card and timeline give the platform's evidence in
words. Every state is screenshotted and audited with axe, at 390 px and 1280 px."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from app.calls.provider import ProviderError
from app.people.users import Role
from app.platforms.simulator.provider import SimulatorProvider
from tests.e2e import test_console_browser as base
from tests.e2e.governance_pages import WIDTHS, rec, retention_run, seed_recordings
from tests.e2e.test_console_browser import Centre, assert_fits, expect, open_console, shot

browser = base.browser  # the browser tests' fixtures: one Chromium, a live service
centre = base.centre

OUTAGE = ProviderError(
    "the platform is down for maintenance", transient=True, status=503, code=20003
)
EVIDENCE = (
    "The platform accepted the deletion (HTTP 204); asked for it afterwards, it answered "
    "that the recording does not exist (HTTP 404, error 20404): it is gone."
)
FAILURE = (
    "Failed while asking the platform to delete it: the platform answered HTTP 503, error "
    "20003: “the platform is down for maintenance”."
)


def fact(page: Any, term: str) -> Any:
    return page.locator(f'#retention-facts dt:text-is("{term}") + dd')


@WIDTHS
def test_the_overview_on_a_new_service_says_nothing_is_due_and_no_run_yet(
    browser: Any, centre: Centre, width: int
) -> None:
    page = open_console(browser, centre, centre.user("gail", Role.GOVERNANCE), width=width)
    expect(page.get_by_role("heading", name="Retention at a glance")).to_be_visible()
    expect(fact(page, "Last retention run")).to_have_text("None recorded yet.")
    expect(fact(page, "Overdue")).to_have_text("None")
    expect(page.locator("#retention-failed")).to_be_hidden()
    shot(page, f"gov-{width}-00-retention-nothing-yet")


@WIDTHS
def test_a_failed_deletion_is_unmissable_and_a_destroyed_recording_gives_its_evidence(
    browser: Any, centre: Centre, width: int
) -> None:
    now = datetime.now(UTC)
    platform = SimulatorProvider()  # the platform the run deletes from holds `gone`
    gone_sid = platform.start_recording(platform.add_call(), "http://127.0.0.1/unused").sid
    [failing] = seed_recordings(
        centre, now - timedelta(days=200), destroy_after=now - timedelta(days=10)
    )
    [gone] = seed_recordings(
        centre,
        now - timedelta(days=190),
        destroy_after=now - timedelta(days=5),
        recording_sid=gone_sid,
    )
    [held] = seed_recordings(
        centre, now - timedelta(days=180), destroy_after=now - timedelta(days=3)
    )
    seed_recordings(
        centre, now - timedelta(days=125), destroy_after=now + timedelta(days=5, hours=1)
    )
    token = centre.user("gail", Role.GOVERNANCE)
    hold = {"case_reference": "CASE-77", "reason": "complaint about an officer"}
    placed = httpx.post(
        f"{centre.base}/api/v1/recordings/{held}/holds",
        json=hold,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert placed.status_code == 201, placed.text
    summary = retention_run(centre, platform, OUTAGE)  # the soonest due, `failing`, fails
    assert (summary.due, summary.held, summary.destroyed, summary.failed) == (2, 1, 1, 1)
    seed_recordings(centre, now - timedelta(days=131), destroy_after=now - timedelta(hours=2))

    page = open_console(browser, centre, token, width=width)
    alert = page.get_by_role("alert").filter(has_text="Deletion failed")
    expect(alert).to_be_visible()
    expect(alert.get_by_role("heading")).to_have_text(
        "Deletion failed: 1 overdue recording could not be destroyed"
    )
    expect(alert).to_contain_text(f"Recording {failing} (Contact Harlow)")
    expect(alert).to_contain_text("(overdue by 10 days). Last attempt on")
    expect(alert).to_contain_text(FAILURE)
    # Words first; the thick red frame is the second signal, never the only one.
    assert alert.evaluate("node => getComputedStyle(node).borderTopColor") == "rgb(176, 0, 32)"
    expect(fact(page, "Due in the next 7 days")).to_have_text("1 recording")
    expect(fact(page, "Due in the next 30 days")).to_have_text("1 recording (1 of them this week)")
    expect(fact(page, "Overdue")).to_have_text(
        "3 recordings: 1 kept by a legal hold, 1 failed deletion, 1 awaiting the next run"
    )
    expect(fact(page, "Last retention run")).to_contain_text(
        "finished with 1 failed deletion (due 2, kept by a hold 1, destroyed 1, callers' "
        "numbers erased 0)."
    )
    expect(fact(page, "Destroyed by the last run")).to_have_text("1 recording")
    # The lists behind the counts open from the keyboard.
    page.get_by_text("Overdue, kept by a legal hold (1)").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#retention-lists")).to_contain_text("kept for case CASE-77.")
    page.get_by_text("Destroyed by the last run (1)").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#retention-lists")).to_contain_text(
        f"Recording …{gone[-6:]}: destroyed on"
    )
    page.get_by_text("Overdue, awaiting the next run (1)").click()
    expect(page.locator("#retention-lists")).to_contain_text(
        "not held; the next retention run destroys it."
    )
    assert_fits(page)
    shot(page, f"gov-{width}-13-retention-failed")

    # Item 1: the destroyed recording's evidence, in words, on its card and in its history.
    destroyed = rec(page, gone)
    expect(destroyed.locator(".destroyed")).to_contain_text(EVIDENCE)
    expect(destroyed.locator(".destroyed")).to_contain_text("Yes, on")
    destroyed.get_by_role("button", name="Event timeline").click()
    expect(destroyed.locator(".events")).to_contain_text(
        f"recording.destroyed by system — {EVIDENCE}"
    )
    expect(destroyed.locator(".events")).to_contain_text("Retention run")
    kept = rec(page, failing)
    expect(kept.locator(".destroyed")).to_have_text("No")
    kept.get_by_role("button", name="Event timeline").click()
    expect(kept.locator(".events")).to_contain_text(
        f"recording.destroy_failed by system — not destroyed. {FAILURE} It stays due"
    )
    assert_fits(page)
    shot(page, f"gov-{width}-14-destroyed-evidence")

    # Releasing the hold moves it, at once, to awaiting the next run; the lists left open
    # stay open, and the unchanged alert is not rewritten (it would be announced again).
    alert.evaluate("node => { node.querySelector('h3').dataset.mark = 'first'; }")
    rec(page, held).get_by_role("button", name="Release case CASE-77").click()
    page.get_by_role("dialog").get_by_role("button", name="Release the hold").click()
    expect(fact(page, "Overdue")).to_have_text(
        "3 recordings: 0 kept by a legal hold, 1 failed deletion, 2 awaiting the next run"
    )
    lists = page.locator("#retention-lists")
    expect(lists.get_by_text("Overdue, kept by a legal hold")).to_have_count(0)
    expect(
        lists.locator("details[open]", has_text="Overdue, awaiting the next run (2)")
    ).to_be_visible()
    expect(alert.locator("h3[data-mark=first]")).to_have_count(1)
    shot(page, f"gov-{width}-15-retention-released")
