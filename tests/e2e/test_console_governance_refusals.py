"""Issue 15: what the governance console refuses, and to whom, in a real browser (Debian's
Chromium, Playwright) against a live `callguard serve`: a hold while a retention run holds
the recording (409) and once destroyed (410), a disclosure of a destroyed recording, a task
closed from another screen, an admin's read-only view, and no view at all for agents and
supervisors. Every state is screenshotted and audited with axe, at 390 px and 1280 px."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from app.people.users import Role
from tests.e2e import test_console_browser as base
from tests.e2e.governance_pages import (
    WIDTHS,
    api_status,
    change_recording,
    completed_recording,
    rec,
)
from tests.e2e.test_console_browser import (
    Centre,
    assert_fits,
    expect,
    open_console,
    shot,
)

browser = base.browser  # the browser tests' fixtures: one Chromium, a live service
centre = base.centre


@WIDTHS
def test_a_hold_is_refused_while_retention_destroys_it_and_once_destroyed(
    browser: Any, centre: Centre, width: int
) -> None:
    leased = completed_recording(centre, "contact-harlow", "+447700900123")
    gone = completed_recording(centre, "contact-harlow", "+447700900124")
    page = open_console(browser, centre, centre.user("gail", Role.GOVERNANCE), width=width)
    expect(page.locator("#gov-status")).to_have_text("2 recordings found, newest first.")
    # Behind the page's back: a worker leases one, the other is destroyed.
    now = datetime.now(UTC)
    change_recording(
        centre, leased, claimed_by="worker-7", claimed_until=now + timedelta(minutes=10)
    )
    change_recording(centre, gone, destroyed_at=now)

    for sid, said in (
        (leased, "is being destroyed by retention run worker-7"),
        (gone, "has already been destroyed: there is nothing left to keep"),
    ):
        rec(page, sid).get_by_role("button", name="Place a legal hold").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_label("Case reference").fill("INV-1")
        dialog.get_by_label("Reason").fill("fraud investigation")
        dialog.get_by_role("button", name="Place the hold").click()
        expect(dialog.get_by_role("alert")).to_contain_text("Not placed:")
        expect(dialog.get_by_role("alert")).to_contain_text(said)
        assert_fits(page)
        shot(page, f"gov-{width}-hold-refused-{'409' if sid == leased else '410'}")
        dialog.get_by_role("button", name="Cancel").click()
    expect(page.locator("li.task")).to_have_count(0)  # nothing was placed, nobody to tell

    # A disclosure of the destroyed recording: the API's own refusal, in the form.
    rec(page, gone).get_by_role("button", name="Record a disclosure").click()
    form = page.get_by_role("dialog")
    form.get_by_label("Recipient (organisation)").fill("Essex Police")
    form.get_by_label("Data sharing agreement reference").fill("DSA-77")
    form.get_by_role("button", name="Record the disclosure").click()
    expect(form.get_by_role("alert")).to_contain_text(f"Not recorded: recording {gone}")
    expect(form.get_by_role("alert")).to_contain_text("destroyed")
    shot(page, f"gov-{width}-disclosure-refused-410")
    form.get_by_role("button", name="Cancel").click()

    page.get_by_role("button", name="Search").click()  # the list now shows the truth
    destroyed = rec(page, gone)
    expect(destroyed.locator(".destroyed")).to_contain_text("Yes, on")
    # Marked destroyed behind the retention run's back: no evidence, and the card says so.
    expect(destroyed.locator(".destroyed")).to_contain_text(
        "The audit log holds no evidence from the platform for it."
    )
    expect(destroyed.get_by_role("button", name="Place a legal hold")).to_be_hidden()
    expect(destroyed.get_by_label("Purpose")).to_be_hidden()
    assert_fits(page)
    shot(page, f"gov-{width}-destroyed-recording")


@WIDTHS
def test_an_admin_sees_the_view_read_only(browser: Any, centre: Centre, width: int) -> None:
    sid = completed_recording(centre, "contact-harlow", "+447700900123")
    page = open_console(browser, centre, centre.user("ada", Role.ADMIN), width=width)
    expect(page.get_by_role("heading", name="All live calls")).to_be_visible()
    expect(page.get_by_role("heading", name="Recordings")).to_be_visible()
    expect(page.locator("#read-only-note")).to_be_visible()
    card = rec(page, sid)
    expect(card).to_contain_text("Contact Harlow")
    # Nothing the API refuses an admin is offered.
    expect(card.get_by_role("button", name="Place a legal hold")).to_be_hidden()
    expect(card.get_by_role("button", name="Record a disclosure")).to_be_hidden()
    expect(page.get_by_role("heading", name="Callers to tell")).to_be_hidden()
    expect(page.get_by_role("heading", name="Subject access")).to_be_hidden()
    expect(page.get_by_role("heading", name="Retention at a glance")).to_be_visible()
    purposes = card.get_by_label("Purpose").locator("option").all_text_contents()
    assert purposes == [
        "Choose a purpose",
        "Quality monitoring and training",
        "Investigating a complaint",
        "Staff safety",
    ]
    # ...and the API does refuse them if sent anyway.
    assert (
        api_status(page, "POST", f"/recordings/{sid}/access", {"purpose": "crime_prevention"})
        == 403
    )
    hold = {"case_reference": "X", "reason": "y"}
    assert api_status(page, "POST", f"/recordings/{sid}/holds", hold) == 403
    assert api_status(page, "GET", "/notifications?pending=true") == 403
    assert api_status(page, "GET", "/subject-access/bundle?phone=%2B447700900123") == 403
    card.get_by_label("Purpose").select_option(label="Investigating a complaint")
    card.get_by_role("button", name="Listen").click()
    expect(card.locator("audio")).to_be_visible()
    page.get_by_role("button", name="Verify the audit chain").click()
    expect(page.locator("#verify-result")).to_contain_text("The audit log is intact")
    assert_fits(page)
    shot(page, f"gov-{width}-12-admin-read-only")


@WIDTHS
@pytest.mark.parametrize("role", [Role.AGENT, Role.SUPERVISOR])
def test_agents_and_supervisors_never_see_the_governance_view(
    browser: Any, centre: Centre, role: Role, width: int
) -> None:
    completed_recording(centre, "contact-harlow", "+447700900123")
    page = open_console(browser, centre, centre.user("sam", role), width=width)
    expect(page.get_by_role("heading", name="live calls")).to_be_visible()
    for name in (
        "Retention at a glance",
        "Recordings",
        "Subject access",
        "Callers to tell",
        "Audit log",
    ):
        expect(page.get_by_role("heading", name=name)).to_be_hidden()
    assert api_status(page, "GET", "/recordings") == 403
    assert api_status(page, "GET", "/retention/overview") == 403
    assert api_status(page, "GET", "/subject-access/bundle?phone=%2B447700900123") == 403
    assert api_status(page, "GET", "/audit/verify") == 403
    assert_fits(page)
    shot(page, f"gov-{width}-refused-{role}")


@WIDTHS
def test_a_task_closed_elsewhere_is_refused_with_the_apis_message(
    browser: Any, centre: Centre, width: int
) -> None:
    sid = completed_recording(centre, "contact-harlow", "+447700900123")
    token = centre.user("gail", Role.GOVERNANCE)
    headers = {"Authorization": f"Bearer {token}"}
    base_url = f"{centre.base}/api/v1"
    hold = {"case_reference": "INV-9", "reason": "complaint"}
    placed = httpx.post(f"{base_url}/recordings/{sid}/holds", json=hold, headers=headers)
    task_id = placed.json()["notification_id"]
    page = open_console(browser, centre, token, width=width)
    expect(page.locator("li.task")).to_contain_text("Tell the caller on +447700900123")
    # A colleague closes it first, from another screen.
    done = {"method": "phone call"}
    closed = httpx.post(f"{base_url}/notifications/{task_id}/done", json=done, headers=headers)
    assert closed.status_code == 200, closed.text
    page.locator("li.task").get_by_role("button", name="The caller has been told").click()
    told = page.get_by_role("dialog")
    told.get_by_label("How they were told").fill("letter")
    told.get_by_role("button", name="Close the task").click()
    expect(told.get_by_role("alert")).to_have_text(
        f"Not closed: notification {task_id} was already closed."
    )
    assert_fits(page)
    shot(page, f"gov-{width}-task-already-closed")
