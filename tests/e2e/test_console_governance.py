"""Issue 15 items 1-5 and 8: the information-governance officer's view of the console in a
real browser (Debian's Chromium, Playwright) against a live `callguard serve` on the
simulator, as an officer uses it: recordings, legal holds, callers to tell, listening for
a purpose, disclosures and the audit log. The refusals are in
test_console_governance_refusals.py. Every state is screenshotted and audited with axe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text

from app.people.users import Role
from app.storage.db import make_engine
from tests.e2e import test_console_browser as base
from tests.e2e.governance_pages import (
    WIDTHS,
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
    tab_to,
)

browser = base.browser  # the browser tests' fixtures: one Chromium, a live service
centre = base.centre


@WIDTHS
def test_an_officer_finds_holds_tells_the_caller_discloses_and_releases(
    browser: Any, centre: Centre, width: int
) -> None:
    harlow = completed_recording(centre, "contact-harlow", "+447700900123")
    revenues = completed_recording(centre, "revenues-and-benefits", "+447700900456")
    page = open_console(browser, centre, centre.user("gail", Role.GOVERNANCE), width=width)
    expect(page.get_by_role("heading", name="Recordings")).to_be_visible()
    expect(page.get_by_role("heading", name="Your live calls")).to_be_hidden()
    expect(page.locator("#read-only-note")).to_be_hidden()
    expect(page.locator("#gov-status")).to_have_text("2 recordings found, newest first.")
    card = rec(page, harlow)
    expect(card).to_contain_text("Contact Harlow")
    expect(card.locator(".destroy-after")).to_contain_text("(in 130 days)")
    expect(card.locator(".destroyed")).to_have_text("No")
    expect(card.locator(".holds-summary")).to_have_text("None")
    assert_fits(page)
    shot(page, f"gov-{width}-01-recordings")

    # Any format of the number finds the caller; held=true finds nothing yet.
    page.get_by_label("Caller's phone number (any format)").fill("07700 900456")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#gov-status")).to_have_text("1 recording found, newest first.")
    expect(rec(page, revenues)).to_contain_text("Revenues and Benefits")
    expect(rec(page, harlow)).to_have_count(0)
    shot(page, f"gov-{width}-02-found-by-phone")
    page.get_by_label("Caller's phone number (any format)").fill("not a number")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#gov-status")).to_contain_text("Search refused:")
    page.get_by_label("Caller's phone number (any format)").fill("")
    page.get_by_label("Legal hold", exact=True).select_option(label="Held")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#gov-status")).to_have_text("No recordings match.")
    page.get_by_label("Legal hold", exact=True).select_option(label="Not held")
    page.get_by_label("Department", exact=True).select_option(label="Contact Harlow")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#gov-status")).to_have_text("1 recording found, newest first.")

    # Item 2: a hold, with the keyboard; the form asks for what the API requires.
    card = rec(page, harlow)
    tab_to(page, card.get_by_role("button", name="Place a legal hold"))
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="Place the hold").click()
    expect(dialog.get_by_role("alert")).to_have_text("Case reference: is required.")
    dialog.get_by_label("Case reference").fill("INV-2026-14")
    dialog.get_by_label("Reason").fill("complaint about a council officer")
    assert_fits(page)
    shot(page, f"gov-{width}-03-hold-form")
    dialog.get_by_role("button", name="Place the hold").click()
    expect(dialog).to_be_hidden()
    expect(card.locator(".outcome")).to_contain_text("The caller must be told: task")
    expect(card.locator(".holds-summary")).to_have_text("1 active: kept until released")
    expect(card.locator(".holds")).to_contain_text("Case INV-2026-14: held by gail")
    shot(page, f"gov-{width}-04-held")

    # Item 3: the caller to tell; how is required and when cannot be in the future.
    closes: list[str] = []
    page.on("request", lambda r: closes.append(r.url) if r.url.endswith("/done") else None)
    task = page.locator("li.task")
    expect(task).to_have_count(1)
    expect(task).to_contain_text("Tell the caller on +447700900123")
    expect(page.locator("#tasks-status")).to_have_text("1 caller still to tell.")
    task.get_by_role("button", name="The caller has been told").click()
    told = page.get_by_role("dialog")
    told.get_by_role("button", name="Close the task").click()
    expect(told.get_by_role("alert")).to_contain_text("How the caller was told: is required")
    told.get_by_label("How they were told").fill("letter")
    tomorrow = (datetime.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    told.get_by_label("When (leave empty for now)").fill(tomorrow)
    told.get_by_role("button", name="Close the task").click()
    expect(told.get_by_role("alert")).to_have_text(
        "When the caller was told: cannot be in the future."
    )
    assert closes == []
    assert_fits(page)
    shot(page, f"gov-{width}-05-told-refused")
    yesterday = (datetime.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    told.get_by_label("When (leave empty for now)").fill(yesterday)
    told.get_by_role("button", name="Close the task").click()
    expect(told).to_be_hidden()
    expect(page.locator("#tasks-status")).to_contain_text("the caller was told by letter")
    expect(page.locator("#tasks-status")).to_contain_text("Nobody is waiting to be told.")
    assert len(closes) == 1
    page.get_by_label("Show").select_option(label="Already told")
    expect(page.locator("li.task")).to_contain_text("Told by letter on")
    expect(page.locator("li.task")).to_contain_text("closed by gail")
    shot(page, f"gov-{width}-06-told")

    # Item 5: a disclosure needs an agreement, and consent or a legal basis when sensitive.
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if "/disclosures" in r.url else None)
    card.get_by_role("button", name="Record a disclosure").click()
    form = page.get_by_role("dialog")
    form.get_by_label("Recipient (organisation)").fill("Essex Police")
    form.get_by_role("button", name="Record the disclosure").click()
    expect(form.get_by_role("alert")).to_have_text("Data sharing agreement reference: is required.")
    form.get_by_label("Data sharing agreement reference").fill("DSA-77")
    form.get_by_label("A sensitive matter").check()
    form.get_by_role("button", name="Record the disclosure").click()
    expect(form.get_by_role("alert")).to_contain_text("consent reference or the legal basis")
    expect(form.get_by_label("Consent reference", exact=True)).to_be_focused()
    assert sent == []
    assert_fits(page)
    shot(page, f"gov-{width}-07-disclosure-refused")
    form.get_by_label("Legal basis", exact=True).fill(
        "Data Protection Act 2018, Schedule 2, paragraph 2"
    )
    form.get_by_role("button", name="Record the disclosure").click()
    expect(form).to_be_hidden()
    expect(card.locator(".outcome")).to_contain_text(
        "Disclosure to Essex Police recorded under agreement DSA-77 (sensitive)"
    )
    assert len(sent) == 1
    shot(page, f"gov-{width}-08-disclosed")

    # Release: the consequence first, in words.
    card.get_by_role("button", name="Release case INV-2026-14").click()
    release = page.get_by_role("dialog")
    expect(release).to_contain_text("No other hold keeps this recording: it will be destroyed")
    shot(page, f"gov-{width}-09-release-confirm")
    release.get_by_role("button", name="Release the hold").click()
    expect(release).to_be_hidden()
    expect(card.locator(".outcome")).to_contain_text("Hold for case INV-2026-14 released.")
    expect(card.locator(".holds-summary")).to_have_text("None active (all released)")
    expect(card.locator(".holds")).to_contain_text("released by gail")

    # Item 8: the call's timeline has all of it, as events of the audit log.
    card.get_by_role("button", name="Event timeline").click()
    events = card.locator(".events")
    for kind in ("hold.placed by gail", "notification.done by gail", "disclosure.recorded"):
        expect(events).to_contain_text(kind)
    assert_fits(page)
    shot(page, f"gov-{width}-10-released-timeline")


@WIDTHS
def test_listening_needs_a_purpose_the_role_may_use(
    browser: Any, centre: Centre, width: int
) -> None:
    sid = completed_recording(centre, "contact-harlow", "+447700900123")
    page = open_console(browser, centre, centre.user("gail", Role.GOVERNANCE), width=width)
    card = rec(page, sid)
    # The list loads after sign-in: read the options once the card is there (all_text_contents
    # does not wait, and read an empty list when the search answered late).
    expect(card.get_by_label("Purpose")).to_be_visible()
    purposes = card.get_by_label("Purpose").locator("option").all_text_contents()
    assert "Preventing or detecting crime" in purposes
    assert "A subject access request" in purposes
    card.get_by_role("button", name="Listen").click()
    expect(card.locator(".outcome")).to_have_text("Choose the purpose you are listening for first.")
    expect(card.get_by_label("Purpose")).to_be_focused()
    card.get_by_label("Purpose").select_option(label="Preventing or detecting crime")
    card.get_by_role("button", name="Listen").click()
    expect(card.locator(".outcome")).to_contain_text("recorded in the audit log: press play")
    audio = card.locator("audio")
    expect(audio).to_be_visible()
    assert audio.get_attribute("src", timeout=5000).startswith("/api/v1/media/")
    # The audio loads under the page's CSP (media-src 'self'): it has a duration.
    page.wait_for_function(
        "el => el.readyState >= 1 && el.duration > 0", arg=audio.element_handle()
    )
    card.get_by_role("button", name="Event timeline").click()
    expect(card.locator(".events")).to_contain_text("recording.accessed by gail")
    expect(card.locator(".events")).to_contain_text("recording.media_fetched")
    assert_fits(page)
    shot(page, f"gov-{width}-11-listening")


@WIDTHS
def test_the_audit_check_says_where_the_chain_breaks(
    browser: Any, centre: Centre, width: int
) -> None:
    completed_recording(centre, "contact-harlow", "+447700900123")
    page = open_console(browser, centre, centre.user("gail", Role.GOVERNANCE), width=width)
    tab_to(page, page.get_by_role("button", name="Verify the audit chain"))
    page.keyboard.press("Enter")
    result = page.locator("#verify-result")
    expect(result).to_contain_text("The audit log is intact: all")
    assert_fits(page)
    shot(page, f"gov-{width}-audit-intact")

    # What a database superuser could do: change event 3 around the triggers.
    engine = make_engine(centre.live["env"]["CALLGUARD_DATABASE_URL"])
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SET session_replication_role = replica"))
            else:
                for (name,) in connection.execute(
                    text("SELECT name FROM sqlite_master WHERE type = 'trigger'")
                ).all():
                    connection.execute(text(f"DROP TRIGGER {name}"))
            connection.execute(
                text("UPDATE audit_events SET type = 'call.tampered' WHERE sequence = 3")
            )
            connection.commit()
    finally:
        engine.dispose()
    page.get_by_role("button", name="Verify the audit chain").click()
    expect(result).to_have_text(
        "The audit log is BROKEN at event 3: that event no longer matches its seal: "
        "its content was changed. Report it now."
    )
    shot(page, f"gov-{width}-audit-broken")


@WIDTHS
def test_releasing_the_last_hold_on_an_overdue_recording_says_it_goes_next_run(
    browser: Any, centre: Centre, width: int
) -> None:
    sid = completed_recording(centre, "contact-harlow", "+447700900123")
    token = centre.user("gail", Role.GOVERNANCE)
    headers = {"Authorization": f"Bearer {token}"}
    for case in ("INV-1", "INV-2"):
        hold = {"case_reference": case, "reason": "complaint"}
        placed = httpx.post(
            f"{centre.base}/api/v1/recordings/{sid}/holds", json=hold, headers=headers
        )
        assert placed.status_code == 201, placed.text
    change_recording(centre, sid, destroy_after=datetime.now(UTC) - timedelta(days=3))
    page = open_console(browser, centre, token, width=width)
    card = rec(page, sid)
    expect(card.locator(".destroy-after")).to_contain_text("(overdue by 3 days)")
    expect(card.locator(".holds-summary")).to_have_text("2 active: kept until released")

    card.get_by_role("button", name="Release case INV-1").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("1 other hold still keeps this recording.")
    dialog.get_by_role("button", name="Release the hold").click()
    expect(dialog).to_be_hidden()
    # The card shows the release before the next is asked for (its consequence counts holds).
    expect(card.locator(".holds-summary")).to_have_text("1 active: kept until released")
    card.get_by_role("button", name="Release case INV-2").click()
    expect(dialog).to_contain_text(
        "No other hold keeps this recording and its destruction date has passed: "
        "it will be destroyed at the next retention run."
    )
    assert_fits(page)
    shot(page, f"gov-{width}-release-overdue")
    dialog.get_by_role("button", name="Release the hold").click()
    expect(card.locator(".outcome")).to_contain_text("destroyed at the next retention run")
    expect(card.locator(".holds-summary")).to_have_text("None active (all released)")
