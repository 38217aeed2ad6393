"""Issue 15 item 6 on the page: the subject-access bundle downloaded in a real browser
(Debian's Chromium, Playwright) against a live `callguard serve` on the simulator. The
token goes in the Authorization header, never the URL; the ZIP is saved from a blob: URL
under the console's unchanged CSP, and opens with the summary and the call's audio; a
withheld number is refused with the API's message. Every state is screenshotted and
audited with axe, at 390 px and 1280 px."""

from __future__ import annotations

import json
import zipfile
from typing import Any

import httpx

from app.people.users import Role
from tests.e2e import test_console_browser as base
from tests.e2e.governance_pages import WIDTHS, completed_recording
from tests.e2e.test_console_browser import Centre, assert_fits, expect, open_console, shot

browser = base.browser  # the browser tests' fixtures: one Chromium, a live service
centre = base.centre

REFUSED = (
    "Not downloaded: phone: not a number that can be matched (withheld or anonymous "
    "numbers match nobody)."
)


@WIDTHS
def test_an_officer_downloads_the_bundle_a_caller_receives(
    browser: Any, centre: Centre, width: int
) -> None:
    sid = completed_recording(centre, "contact-harlow", "+447700900123")
    token = centre.user("gail", Role.GOVERNANCE)
    page = open_console(browser, centre, token, width=width)
    section = page.get_by_role("region", name="Subject access")
    sent: list[Any] = []
    page.on("request", lambda r: sent.append(r) if "/subject-access" in r.url else None)

    # Nothing is asked of the API without a number.
    section.get_by_role("button", name="Download the bundle").click()
    expect(section.get_by_role("alert")).to_have_text("The requester's phone number: is required.")
    expect(section.get_by_label("The requester's phone number (any format)")).to_be_focused()
    assert sent == []

    # A withheld number: the API's own refusal, and no download.
    downloads: list[Any] = []
    page.on("download", lambda d: downloads.append(d))
    section.get_by_label("The requester's phone number (any format)").fill("anonymous")
    page.keyboard.press("Enter")
    expect(section.get_by_role("alert")).to_have_text(REFUSED)
    assert downloads == []
    assert_fits(page)
    shot(page, f"gov-{width}-16-subject-access-refused")

    # The number in another format: the bundle downloads.
    section.get_by_label("The requester's phone number (any format)").fill("07700 900123")
    with page.expect_download() as started:
        section.get_by_role("button", name="Download the bundle").click()
    download = started.value
    assert download.suggested_filename == "subject-access.zip"
    assert download.url.startswith("blob:")
    expect(section.get_by_role("status")).to_contain_text(
        "Downloaded subject-access.zip (", timeout=30000
    )
    expect(section.get_by_role("status")).to_contain_text("for 07700 900123: give it to the caller")
    expect(section.get_by_role("alert")).to_have_text("")
    asked = sent[-1]
    assert asked.headers["authorization"] == f"Bearer {token}"
    assert token not in asked.url

    with zipfile.ZipFile(download.path()) as archive:
        assert archive.testzip() is None
        names = archive.namelist()
        summary = archive.read("summary.html").decode()
        export = json.loads(archive.read("subject-access.json"))
        [audio] = [name for name in names if name.startswith("recordings/")]
        assert audio.endswith(f"_contact-harlow_{sid}.wav")
        audio_bytes = archive.read(audio)
    assert summary.startswith("<!DOCTYPE html>")
    assert "<h1>Calls from +447700900123: what we hold</h1>" in summary
    assert summary.count("<h2>Call on ") == 1 and f"Recording {sid}" in summary
    assert export["phone"] == "+447700900123"
    # The audio is the platform's, byte for byte (as the in-page player is given it).
    headers = {"Authorization": f"Bearer {token}"}
    access = httpx.post(
        f"{centre.base}/api/v1/recordings/{sid}/access",
        json={"purpose": "subject_access"},
        headers=headers,
    ).json()
    assert httpx.get(f"{centre.base}{access['media_url']}").content == audio_bytes
    assert_fits(page)
    shot(page, f"gov-{width}-17-subject-access-downloaded")
