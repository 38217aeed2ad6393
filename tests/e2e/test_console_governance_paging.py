"""Issue 15 item 1, paged and by date, in a real browser (Debian's Chromium, Playwright)
against a live `callguard serve`: the recordings come 50 a page (the API's default limit)
and *More* follows the API's `next` cursor, keeping the search's filters; the completion
dates are whole days in the browser's zone, both included, and a range that ends before it
starts is refused in the page. Every state is screenshotted and audited with axe, at
390 px and 1280 px."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from app.people.users import Role
from tests.e2e import test_console_browser as base
from tests.e2e.governance_pages import WIDTHS, seed_recordings
from tests.e2e.test_console_browser import Centre, assert_fits, expect, open_console, shot

browser = base.browser  # the browser tests' fixtures: one Chromium, a live service
centre = base.centre

PAGE_SHOWN = "50 recordings shown, newest first: More shows older ones."


def shown(page: Any) -> list[str]:
    return list(
        page.locator("li.recording-card").evaluate_all(
            "cards => cards.map((card) => card.dataset.recordingSid)"
        )
    )


def day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")


@WIDTHS
def test_fifty_a_page_then_more_and_a_range_of_completion_dates(
    browser: Any, centre: Centre, width: int
) -> None:
    # At midday UTC: the same calendar day in any zone the browser may be in.
    noon = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    early, busy_day, late = (noon - timedelta(days=days) for days in (40, 20, 5))
    older = seed_recordings(centre, *(early + timedelta(minutes=i) for i in range(3)))
    busy = seed_recordings(centre, *(busy_day + timedelta(minutes=i) for i in range(52)))
    [newest] = seed_recordings(centre, late)
    page = open_console(browser, centre, centre.user("gail", Role.GOVERNANCE), width=width)
    searches: list[dict[str, list[str]]] = []
    page.on(
        "request",
        lambda r: (
            searches.append(parse_qs(urlsplit(r.url).query))
            if urlsplit(r.url).path == "/api/v1/recordings"
            else None
        ),
    )
    status = page.locator("#gov-status")
    more = page.get_by_role("button", name="More (older recordings)")
    expect(status).to_have_text(PAGE_SHOWN)
    expect(page.locator("li.recording-card")).to_have_count(50)
    expect(more).to_be_visible()
    assert_fits(page)
    shot(page, f"gov-{width}-18-first-page")

    more.press("Enter")  # from the keyboard
    expect(status).to_have_text("56 recordings found, newest first.")
    expect(more).to_be_hidden()
    assert shown(page) == [newest, *reversed(busy), *reversed(older)]  # in order, none twice
    assert "cursor" in searches[-1] and "limit" not in searches[-1]  # the API's 50
    # The keyboard carries on from the first card of the new page.
    expect(page.locator("li.recording-card article").nth(50)).to_be_focused()
    shot(page, f"gov-{width}-19-every-page")

    # One day: more than a page, and More keeps the dates.
    page.get_by_label("Completed on or after").fill(day(busy_day))
    page.get_by_label("Completed on or before").fill(day(busy_day))
    page.get_by_role("button", name="Search").click()
    expect(status).to_have_text(PAGE_SHOWN)
    first = searches[-1]
    assert "from" in first and "to" in first and "cursor" not in first
    more.click()
    expect(status).to_have_text("52 recordings found, newest first.")
    assert searches[-1]["from"] == first["from"] and searches[-1]["to"] == first["to"]
    assert shown(page) == list(reversed(busy))
    assert_fits(page)
    shot(page, f"gov-{width}-20-one-day")

    # Up to a day, its end included.
    page.get_by_label("Completed on or after").fill("")
    page.get_by_label("Completed on or before").fill(day(early))
    page.get_by_role("button", name="Search").click()
    expect(status).to_have_text("3 recordings found, newest first.")
    expect(more).to_be_hidden()
    assert shown(page) == list(reversed(older))

    # A range that ends before it starts: refused in the page, nothing sent.
    sent = len(searches)
    page.get_by_label("Completed on or after").fill(day(late))
    page.get_by_role("button", name="Search").click()
    expect(status).to_have_text(
        "Completed on or after: must not be later than “completed on or before”."
    )
    expect(page.get_by_label("Completed on or after")).to_be_focused()
    assert len(searches) == sent
    assert_fits(page)
    shot(page, f"gov-{width}-21-dates-refused")
