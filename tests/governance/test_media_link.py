"""Issue 14 item 3: a media link serves byte ranges of its one recording for a few fetches
within its five minutes, each audited, and is refused after MEDIA_FETCH_LIMIT fetches
(concurrent ones included) or its expiry; the request log holds the route's template,
never the token."""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient

from app.people.users import Role
from app.platforms.simulator.media import silent_wav
from app.retention.access import MEDIA_FETCH_LIMIT
from app.retention.media import single_range
from app.storage.db import unit_of_work
from app.storage.models import RecordingAccess, utcnow
from tests.factories import bearer, captured_logs, make_user
from tests.governance.conftest import People, events, seed_due, years_later
from tests.governance.test_access import access
from tests.twilio_fake.server import MEDIA_BYTES, FakeTwilioServer

WAV = silent_wav()


def link(client: TestClient, sid: str, people: People) -> str:
    response = access(client, sid, "complaint", people.supervisor)
    assert response.status_code == 200, response.text
    return response.json()["media_url"]


def test_ranges_of_the_one_recording_then_refused_after_the_limit(
    client: TestClient, services, people: People, completed: tuple[str, str]
) -> None:
    _call, sid = completed
    url = link(client, sid, people)
    probe = client.get(url, headers={"Range": "bytes=0-1"})  # Safari's first request
    assert probe.status_code == 206
    assert probe.content == WAV[:2]
    assert probe.headers["content-range"] == f"bytes 0-1/{len(WAV)}"
    assert probe.headers["accept-ranges"] == "bytes"
    assert probe.headers["cache-control"] == "no-store"
    seek = client.get(url, headers={"Range": "bytes=1000-"})
    assert (seek.status_code, seek.content) == (206, WAV[1000:])
    tail = client.get(url, headers={"Range": "bytes=-44"})
    assert (tail.status_code, tail.content) == (206, WAV[-44:])
    whole = client.get(url)  # no Range, or one we do not serve: the whole recording
    assert (whole.status_code, whole.content) == (200, WAV)
    several = client.get(url, headers={"Range": "bytes=0-1,4-5"})
    assert (several.status_code, several.content) == (200, WAV)
    past = client.get(url, headers={"Range": f"bytes={len(WAV)}-"})
    assert past.status_code == 416 and past.json()["error"] == "range_not_satisfiable"
    assert past.headers["content-range"] == f"bytes */{len(WAV)}"

    served = 5  # the 416 served nothing and counts for nothing
    for _ in range(MEDIA_FETCH_LIMIT - served):
        assert client.get(url, headers={"Range": "bytes=0-"}).status_code == 206
    used_up = client.get(url, headers={"Range": "bytes=0-"})
    assert used_up.status_code == 404
    assert "ask for a new one" in used_up.json()["detail"]
    fetched = events(services, "recording.media_fetched", recording_sid=sid)
    assert [e.detail["fetch"] for e in fetched] == list(range(1, MEDIA_FETCH_LIMIT + 1))
    assert [e.detail["range"] for e in fetched[:5]] == [
        "bytes=0-1",
        "bytes=1000-",
        "bytes=-44",
        None,
        None,
    ]
    assert all(e.actor == "supervisor-1" for e in fetched)
    assert client.get(link(client, sid, people)).status_code == 200  # a new link works


def test_concurrent_fetches_never_pass_the_limit(
    client: TestClient, services, people: People, completed: tuple[str, str]
) -> None:
    _call, sid = completed
    url = link(client, sid, people)
    with ThreadPoolExecutor(12) as pool:
        statuses = list(
            pool.map(lambda _: client.get(url).status_code, range(3 * MEDIA_FETCH_LIMIT))
        )
    assert statuses.count(200) == MEDIA_FETCH_LIMIT
    assert statuses.count(404) == 2 * MEDIA_FETCH_LIMIT
    fetched = events(services, "recording.media_fetched", recording_sid=sid)
    assert sorted(e.detail["fetch"] for e in fetched) == list(range(1, MEDIA_FETCH_LIMIT + 1))


def test_an_expired_link_is_refused_with_fetches_left(
    client: TestClient, services, people: People, completed: tuple[str, str]
) -> None:
    _call, sid = completed
    url = link(client, sid, people)
    assert client.get(url).status_code == 200
    with unit_of_work(services.sessions) as session:
        for row in session.query(RecordingAccess):
            row.expires_at = utcnow() - timedelta(seconds=1)
    assert client.get(url, headers={"Range": "bytes=0-1"}).status_code == 404
    assert len(events(services, "recording.media_fetched", recording_sid=sid)) == 1


@pytest.mark.parametrize(
    ("header", "canonical"),
    [
        ("bytes=0-", "bytes=0-"),
        ("bytes=0-1", "bytes=0-1"),
        ("bytes=007-9", "bytes=7-9"),
        ("bytes=-500", "bytes=-500"),
        ("bytes=5-4", None),  # invalid: ignored
        ("bytes=-", None),
        ("bytes=0-1,3-4", None),  # several: the whole is sent
        ("items=0-1", None),
        ("bytes=" + "9" * 16 + "-", None),
        ("", None),
        (None, None),
    ],
)
def test_single_range(header: str | None, canonical: str | None) -> None:
    assert single_range(header) == canonical


def test_the_request_log_holds_the_route_not_the_token(
    client: TestClient, people: People, completed: tuple[str, str]
) -> None:
    _call, sid = completed
    url = link(client, sid, people)
    token = url.rsplit("/", 1)[1]
    with captured_logs(logging.DEBUG) as stream:
        assert client.get(url).status_code == 200
        trailing = client.get(url + "/", follow_redirects=False)
        assert trailing.status_code in (307, 404)  # a trailing slash: no route matched
        assert client.get(url, headers={"Range": "bytes=999999-"}).status_code == 416
    logs = stream.getvalue()
    assert token not in logs and token[:16] not in logs
    requests = [json.loads(line) for line in logs.splitlines()]
    paths = [line["path"] for line in requests if line.get("event") == "request"]
    assert paths == ["/api/v1/media/{token}", "other", "/api/v1/media/{token}"]


def test_with_twilio_the_range_is_asked_for_and_its_answer_relayed(
    twilio_app, twilio_server: FakeTwilioServer
) -> None:
    client, services = twilio_app
    [sid] = seed_due(services, twilio_server.platform, 1, destroy_after=years_later())
    governance = bearer(make_user(services, "ig", Role.GOVERNANCE))
    url = access(client, sid, "crime_prevention", governance).json()["media_url"]
    part = client.get(url, headers={"Range": "bytes=4-9"})
    assert part.status_code == 206, part.text
    assert part.content == MEDIA_BYTES[4:10]
    assert part.headers["content-range"] == f"bytes 4-9/{len(MEDIA_BYTES)}"
    assert part.headers["content-length"] == "6"
    whole = client.get(url)
    assert (whole.status_code, whole.content) == (200, MEDIA_BYTES)
    assert "content-range" not in whole.headers
    past = client.get(url, headers={"Range": "bytes=999-"})
    assert past.status_code == 416
    assert past.headers["content-range"] == f"bytes */{len(MEDIA_BYTES)}"
    assert twilio_server.media_ranges == ["bytes=4-9", None, "bytes=999-"]
    assert len(events(services, "recording.media_fetched", recording_sid=sid)) == 2


def test_with_twilio_downloads_share_one_client(
    twilio_app, twilio_server: FakeTwilioServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client per download built a TLS context each time (~19 ms of CPU): under load the
    fingerprint pass spent more CPU on that than the webhooks on their work (issue 17)."""
    client, services = twilio_app
    [sid] = seed_due(services, twilio_server.platform, 1, destroy_after=years_later())
    governance = bearer(make_user(services, "ig", Role.GOVERNANCE))
    url = access(client, sid, "crime_prevention", governance).json()["media_url"]
    built: list[object] = []
    real = httpx.Client
    monkeypatch.setattr(
        "app.platforms.twilio.media.httpx.Client", lambda *a, **k: built.append(1) or real(*a, **k)
    )
    for _ in range(3):
        assert client.get(url).content == MEDIA_BYTES
    opened = services.media.open(sid)
    opened.close()
    assert built == []


def test_a_shared_twilio_client_keeps_no_cookies_between_downloads() -> None:
    """Shared between downloads, the client must not carry what one response set (a
    storage host's cookie) into the next request."""
    from app.platforms.twilio.media import TwilioMedia

    seen: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("cookie"))
        return httpx.Response(
            200, stream=httpx.ByteStream(b"RIFF"), headers={"set-cookie": "track=1; Path=/"}
        )

    media = TwilioMedia("https://api.twilio.example", "AC" + "1" * 32, "token")
    media._client._transport = httpx.MockTransport(answer)
    for sid in ("RE" + "1" * 32, "RE" + "2" * 32):
        opened = media.open(sid)
        assert b"".join(opened.chunks) == b"RIFF"
        opened.close()
    assert seen == [None, None]
