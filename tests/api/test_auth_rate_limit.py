"""Failed bearer tokens are limited per client (app/api/ratelimit.py): 429 with Retry-After
after the configured count, a valid token refused while limited, other clients unaffected,
a sliding window on an injected clock, bounded memory, proxies believed only when trusted,
webhooks never limited."""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from ipaddress import ip_network

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.api.ratelimit import AuthFailureLimiter, TooManyRequests, client_key
from app.config import Settings, SettingsError, load_settings
from app.main import create_app
from app.people.users import Role, disable_user
from app.storage.db import unit_of_work
from tests.factories import (
    MAIN_NUMBER,
    Clock,
    Platform,
    bearer,
    captured_logs,
    make_user,
    new_call_sid,
)

BASE_URL = "https://callguard.example.org"
LIMIT = 5
WINDOW = 60
MAX_CLIENTS = 50
PROXY = "10.0.0.2"  # in CALLGUARD_TRUSTED_PROXIES below
DIRECT = ("203.0.113.10", 40000)  # the test client's own address: no proxy in between


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(settings: Settings, services, clock: Clock) -> FastAPI:
    configured = settings.model_copy(
        update={
            "auth_failure_limit": LIMIT,
            "auth_failure_window": WINDOW,
            "auth_failure_clients": MAX_CLIENTS,
            "trusted_proxies": (ip_network("10.0.0.0/24"),),
        }
    )
    built = create_app(configured, services)
    built.state.auth_limiter.clock = clock
    return built


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """Overrides conftest's: this app, from a known address (the platform fixture uses it)."""
    with TestClient(app, base_url=BASE_URL, client=DIRECT) as test_client:
        yield test_client


def from_address(app: FastAPI, host: str) -> TestClient:
    """Another client of the same running app (its lifespan already ran)."""
    return TestClient(app, base_url=BASE_URL, client=(host, 40001))


def wrong() -> dict[str, str]:
    return bearer("cg_" + secrets.token_urlsafe(32))


def trip(client: TestClient, headers: dict[str, str] | None = None) -> None:
    for _ in range(LIMIT):
        response = client.get("/api/v1/me", headers={**wrong(), **(headers or {})})
        assert response.status_code == 401, response.text


def assert_limited(response, retry_after: int | None = None) -> None:
    assert response.status_code == 429, response.text
    assert response.json() == {"error": "too_many_requests", "detail": response.json()["detail"]}
    assert "try again in" in response.json()["detail"]
    seconds = int(response.headers["Retry-After"])
    assert 1 <= seconds <= WINDOW
    if retry_after is not None:
        assert seconds == retry_after


def test_the_limit_trips_at_the_configured_count(client: TestClient, services) -> None:
    revoked = make_user(services, "gone", Role.AGENT)
    with unit_of_work(services.sessions) as session:
        disable_user(session, "gone")
    attempts = [
        {},  # no token
        {"Authorization": "Basic dXNlcjpwdw=="},  # not a bearer token: the same as none
        bearer(revoked),
        *[wrong() for _ in range(LIMIT - 2)],
    ]
    # The missing and the Basic attempt are one credential ("none"): LIMIT distinct in all.
    for headers in attempts:
        response = client.get("/api/v1/me", headers=headers)
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "unauthorized"
    assert_limited(client.get("/api/v1/me", headers=wrong()), retry_after=WINDOW)
    assert_limited(client.get("/api/v1/calls"), retry_after=WINDOW)


def test_a_valid_token_from_a_limited_client_is_refused(app: FastAPI, client: TestClient, services):
    token = bearer(make_user(services, "ann", Role.AGENT))
    assert client.get("/api/v1/me", headers=token).status_code == 200
    trip(client)
    assert_limited(client.get("/api/v1/me", headers=token))
    assert_limited(client.post(f"/api/v1/calls/{new_call_sid()}/payment/start", headers=token))

    other = from_address(app, "198.51.100.20")  # a different client is not affected…
    assert other.get("/api/v1/me", headers=token).json()["name"] == "ann"
    assert other.get("/api/v1/me", headers=wrong()).status_code == 401  # …and has its own count
    assert other.get("/api/v1/me", headers=token).status_code == 200


def test_the_window_slides_on_the_clock(client: TestClient, clock: Clock, services) -> None:
    token = bearer(make_user(services, "bea", Role.SUPERVISOR))
    for _ in range(LIMIT):  # one failure a second: t = 0, 1, 2, 3, 4
        assert client.get("/api/v1/me", headers=wrong()).status_code == 401
        clock.advance(1)
    clock.advance(-1)
    assert_limited(client.get("/api/v1/me", headers=token), retry_after=WINDOW - (LIMIT - 1))
    clock.advance(WINDOW - LIMIT)  # t = 59: the first failure is one second from leaving
    assert_limited(client.get("/api/v1/me", headers=token), retry_after=1)
    clock.advance(1)  # t = 60: it left the window; the other four are still in it
    assert client.get("/api/v1/me", headers=token).status_code == 200
    assert client.get("/api/v1/me", headers=wrong()).status_code == 401  # room for one more
    assert_limited(client.get("/api/v1/me", headers=token), retry_after=1)  # t=1's goes next
    clock.advance(WINDOW)
    assert client.get("/api/v1/me", headers=token).status_code == 200


def test_the_same_wrong_token_again_is_one_failure(app: FastAPI, client: TestClient, services):
    """A revoked token left in a script or a polling tab behind the contact centre's NAT
    address must not lock every agent out: only distinct credentials are guesses."""
    stale = make_user(services, "old", Role.AGENT)
    with unit_of_work(services.sessions) as session:
        disable_user(session, "old")
    token = bearer(make_user(services, "cat", Role.AGENT))
    for _ in range(LIMIT * 10):
        assert client.get("/api/v1/calls", headers=bearer(stale)).status_code == 401
        assert client.get("/api/v1/calls").status_code == 401
    assert client.get("/api/v1/calls", headers=token).status_code == 200
    assert app.state.auth_limiter.failures(f"{DIRECT[0]}") == 2


def test_successes_are_not_limited_and_do_not_clear_the_count(client: TestClient, services):
    token = bearer(make_user(services, "dan", Role.AGENT))
    for _ in range(LIMIT - 1):
        assert client.get("/api/v1/me", headers=wrong()).status_code == 401
        for _ in range(10):  # a holder of a good token cannot wash the count with it
            assert client.get("/api/v1/me", headers=token).status_code == 200
    assert client.get("/api/v1/me", headers=wrong()).status_code == 401
    assert_limited(client.get("/api/v1/me", headers=token))


def test_webhooks_health_and_the_console_are_never_limited(
    app: FastAPI, client: TestClient, platform: Platform, services
) -> None:
    """Twilio's callbacks must get through whatever the API sees from the same address
    (all traffic may come through one proxy), and a bad signature counts for nothing here:
    it is refused 403 before anything is read, and counted as `rejected`."""
    token = bearer(make_user(services, "eve", Role.AGENT))
    for _ in range(LIMIT * 6):
        unsigned = client.post("/webhooks/twilio/voice", data={"CallSid": new_call_sid()})
        assert unsigned.status_code == 403
    assert client.get("/api/v1/me", headers=token).status_code == 200
    assert client.get("/api/v1/me", headers=wrong()).status_code == 401  # not a 429

    for _ in range(LIMIT - 1):  # with the one above: the API limit trips
        assert client.get("/api/v1/me", headers=wrong()).status_code == 401
    assert_limited(client.get("/api/v1/me", headers=token))
    call_sid = new_call_sid()
    answered = platform.voice(call_sid, MAIN_NUMBER)
    assert answered.status_code == 200 and "<Gather" in answered.text
    assert platform.ivr(call_sid, 1, "1").status_code == 200
    assert platform.call_status(call_sid, "completed", 1).status_code == 204
    assert client.post("/webhooks/twilio/voice", data={}).status_code == 403
    for path in ("/healthz", "/readyz", "/console", "/metrics"):
        assert client.get(path).status_code == 200, path


def test_forwarded_for_is_believed_only_from_a_trusted_proxy(app: FastAPI, client: TestClient):
    # Direct, untrusted: a made-up X-Forwarded-For on each request changes nothing.
    for n in range(LIMIT):
        spoofed = {**wrong(), "X-Forwarded-For": f"192.0.2.{n}"}
        assert client.get("/api/v1/me", headers=spoofed).status_code == 401
    assert_limited(client.get("/api/v1/me", headers={"X-Forwarded-For": "192.0.2.200"}))

    # Through the trusted proxy: the address it appended (right-most) is the client.
    proxy = from_address(app, PROXY)
    for n in range(LIMIT):  # what the attacker writes sits left of what the proxy adds
        forwarded = {**wrong(), "X-Forwarded-For": f"192.0.2.{n}, 198.51.100.7"}
        assert proxy.get("/api/v1/me", headers=forwarded).status_code == 401
    assert_limited(proxy.get("/api/v1/me", headers={"X-Forwarded-For": "198.51.100.7"}))
    # The victim the attacker named, the proxy's other clients and the proxy are untouched.
    for forwarded in ("192.0.2.0", "198.51.100.8", "198.51.100.8, 10.0.0.3"):
        response = proxy.get("/api/v1/me", headers={"X-Forwarded-For": forwarded})
        assert response.status_code == 401, forwarded  # no token: 401, not 429
    assert proxy.get("/api/v1/me").status_code == 401


def test_memory_is_bounded_when_addresses_rotate(app: FastAPI, client: TestClient) -> None:
    limiter: AuthFailureLimiter = app.state.auth_limiter
    proxy = from_address(app, PROXY)
    for n in range(MAX_CLIENTS * 2 + 7):
        forwarded = {**wrong(), "X-Forwarded-For": f"198.51.{n // 250}.{n % 250}"}
        assert proxy.get("/api/v1/me", headers=forwarded).status_code == 401
        assert len(limiter) <= MAX_CLIENTS
    assert len(limiter) == MAX_CLIENTS


def test_limiter_bounds_clients_and_failures_per_client() -> None:
    clock = Clock()
    limiter = AuthFailureLimiter(limit=5, window=60, max_clients=100, clock=clock)
    for n in range(20_000):
        for k in range(3):
            limiter.failed(f"198.51.{n // 250}.{n % 250}", f"guess-{k}")
        limiter.failed("attacker", f"guess-{n}")  # no record grows past the limit
        assert len(limiter) <= 100
    assert len(limiter) == 100
    assert max(len(f) for f in limiter._failures.values()) <= 5

    # A limited client is forgotten only after max_clients others failed after it.
    limited = AuthFailureLimiter(limit=5, window=60, max_clients=100, clock=clock)
    for k in range(5):
        limited.failed("attacker", f"guess-{k}")
    for n in range(99):
        limited.failed(f"203.0.113.{n}", "x")
    assert limited.retry_after("attacker") == 60
    limited.failed("203.0.113.250", "x")
    assert limited.retry_after("attacker") is None  # evicted: the oldest record goes first


def test_concurrent_failures_never_overfill_a_record() -> None:
    limiter = AuthFailureLimiter(limit=20, window=60, max_clients=10)

    def guess() -> None:
        for _ in range(500):
            limiter.failed("203.0.113.1", secrets.token_hex(8))

    threads = [threading.Thread(target=guess) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert limiter.failures("203.0.113.1") == 20
    assert limiter.retry_after("203.0.113.1") == 60


TRUSTED = (ip_network("10.0.0.0/8"), ip_network("2001:db8:ffff::/48"))


@pytest.mark.parametrize(
    ("peer", "forwarded", "key"),
    [
        ("203.0.113.9", [], "203.0.113.9"),
        ("203.0.113.9", ["198.51.100.1"], "203.0.113.9"),  # not a proxy we trust
        ("10.1.1.1", ["198.51.100.1"], "198.51.100.1"),
        ("10.1.1.1", ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),
        ("10.1.1.1", ["6.6.6.6", "198.51.100.1, 10.2.2.2"], "198.51.100.1"),  # two proxies
        ("10.1.1.1", ["198.51.100.1:5555"], "198.51.100.1"),
        ("10.1.1.1", ["[2001:db8:1:2:3::9]:443"], "2001:db8:1:2::/64"),
        ("10.1.1.1", ["10.9.9.9"], "10.9.9.9"),  # all trusted: the first is the client
        ("10.1.1.1", [], "10.1.1.1"),
        ("10.1.1.1", [" , "], "10.1.1.1"),
        ("::ffff:203.0.113.9", [], "203.0.113.9"),
        ("2001:db8:1:2:aaaa::1", ["198.51.100.1"], "2001:db8:1:2::/64"),  # one subscriber
        ("2001:db8:ffff::5", ["198.51.100.1"], "198.51.100.1"),
        ("testclient", ["198.51.100.1"], "testclient"),
        (None, [], ""),
    ],
)
def test_client_key(peer: str | None, forwarded: list[str], key: str) -> None:
    assert client_key(peer, forwarded, TRUSTED) == key


def test_limit_events_are_logged_and_counted_without_the_token(
    client: TestClient, services
) -> None:
    def counted(event: str) -> float:
        text = client.get("/metrics").text
        sample = f'callguard_auth_rate_limited_total{{event="{event}"}}'
        lines = [line for line in text.splitlines() if line.startswith(sample)]
        return float(lines[0].rsplit(" ", 1)[1]) if lines else 0.0

    before = counted("tripped"), counted("refused")
    with captured_logs(logging.INFO) as stream:
        valid = make_user(services, "fay", Role.AGENT)  # its logs are checked too
        guesses = ["cg_" + secrets.token_urlsafe(32) for _ in range(LIMIT)]
        for guess in guesses:
            assert client.get("/api/v1/me", headers=bearer(guess)).status_code == 401
        assert_limited(client.get("/api/v1/me", headers=bearer(valid)))
        assert_limited(client.get("/api/v1/me", headers=bearer(guesses[0])))
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    tripped = [line for line in lines if line["event"] == "auth_rate_limit_tripped"]
    refused = [line for line in lines if line["event"] == "auth_rate_limited"]
    assert len(tripped) == 1 and tripped[0]["client"] == DIRECT[0]
    assert tripped[0]["failures"] == LIMIT and tripped[0]["window_seconds"] == WINDOW
    assert len(refused) == 2 and all(line["retry_after"] == WINDOW for line in refused)
    for secret in [valid, *guesses]:
        assert secret not in stream.getvalue()
    assert (counted("tripped"), counted("refused")) == (before[0] + 1, before[1] + 2)


def test_settings_defaults_and_refusals(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = load_settings()
    assert (defaults.auth_failure_limit, defaults.auth_failure_window) == (20, 60)
    assert defaults.auth_failure_clients == 10_000 and defaults.trusted_proxies == ()
    monkeypatch.setenv("CALLGUARD_AUTH_FAILURE_LIMIT", "50")
    monkeypatch.setenv("CALLGUARD_AUTH_FAILURE_WINDOW", "300")
    monkeypatch.setenv("CALLGUARD_AUTH_FAILURE_CLIENTS", "2000")
    monkeypatch.setenv("CALLGUARD_TRUSTED_PROXIES", "10.0.0.5, 192.168.0.0/16,2001:db8::1")
    configured = load_settings()
    assert (configured.auth_failure_limit, configured.auth_failure_window) == (50, 300)
    assert configured.auth_failure_clients == 2000
    assert [str(n) for n in configured.trusted_proxies] == [
        "10.0.0.5/32",
        "192.168.0.0/16",
        "2001:db8::1/128",
    ]
    for name, value in [
        ("CALLGUARD_AUTH_FAILURE_LIMIT", "0"),
        ("CALLGUARD_AUTH_FAILURE_WINDOW", "a minute"),
        ("CALLGUARD_AUTH_FAILURE_CLIENTS", "-1"),
        ("CALLGUARD_TRUSTED_PROXIES", "10.0.0.5, proxy.internal"),
    ]:
        monkeypatch.setenv(name, value)
        with pytest.raises(SettingsError, match=name):
            load_settings()
        monkeypatch.delenv(name)


def test_concurrent_wrong_tokens_get_exactly_the_limit_of_401s(
    app: FastAPI, client: TestClient, services
) -> None:
    """Issue 14 item 6: 50 wrong tokens at once from one client; the count is atomic, so
    only `limit` of them are looked up and answered 401, every other one 429."""
    token = bearer(make_user(services, "gil", Role.AGENT))
    guesses = [wrong() for _ in range(10 * LIMIT)]
    start = threading.Barrier(len(guesses))

    def attempt(headers: dict[str, str]) -> int:
        start.wait()
        return client.get("/api/v1/me", headers=headers).status_code

    with ThreadPoolExecutor(len(guesses)) as pool:
        statuses = list(pool.map(attempt, guesses))
    assert statuses.count(401) == LIMIT, statuses
    assert statuses.count(429) == len(guesses) - LIMIT
    assert app.state.auth_limiter.failures(DIRECT[0]) == LIMIT
    assert_limited(client.get("/api/v1/me", headers=token))
    assert app.state.auth_limiter._checking == {}  # nothing left reserved


def test_checks_in_flight_hold_back_new_guesses_only_near_the_limit() -> None:
    limiter = AuthFailureLimiter(limit=3, window=60, max_clients=10, clock=Clock())
    a, b, c, d = (limiter.tag(f"guess-{n}") for n in range(4))
    limiter.admit("x", a)
    limiter.admit("x", b)
    limiter.admit("x", c)  # three distinct checks in flight: the limit's worth
    limiter.admit("x", a)  # the same credential again is no new guess
    with pytest.raises(TooManyRequests) as refused:
        limiter.admit("x", d, wait=0.05)  # would be a fourth: refused once the wait is over
    assert refused.value.retry_after == 1
    limiter.settle("x", a, failed=False)  # a valid token after all
    limiter.settle("x", a, failed=False)
    limiter.admit("x", d, wait=0)  # room again
    for tag in (b, c, d):
        limiter.settle("x", tag, failed=True)
    assert limiter.failures("x") == 3
    with pytest.raises(TooManyRequests) as limited:
        limiter.admit("x", a)
    assert limited.value.retry_after == 60
