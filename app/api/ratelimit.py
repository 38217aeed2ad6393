"""Failed bearer tokens, limited per client (README *Operations*).

After `CALLGUARD_AUTH_FAILURE_LIMIT` distinct failed credentials (missing, wrong or revoked
tokens) from one client within `CALLGUARD_AUTH_FAILURE_WINDOW` seconds, every request of
that client that needs a token is answered 429 with `Retry-After` — a valid token too,
since telling a right guess from a wrong one is what the limit withholds — until the oldest
failure leaves the window. Successful requests are never limited, and they do not clear the
count (else a holder of one good token could interleave it with guesses).

Only *distinct* credentials count: the same wrong token again (a revoked token in a
forgotten script, a tab still polling) is no new guess, so it cannot lock out the other
agents behind the contact centre's NAT address. Tokens are 256-bit random values; the limit
keeps tools from hammering the database with guesses, it is not what makes guessing hopeless.

The client is the connecting address, or — when that is one of `CALLGUARD_TRUSTED_PROXIES`
— the right-most address in `X-Forwarded-For` that is not a trusted proxy (what our own
proxy saw; whatever a client writes into the header itself sits to the left of it). IPv6
clients count per /64, the block one subscriber gets. The state is per process and bounded:
at most `CALLGUARD_AUTH_FAILURE_CLIENTS` clients (the least recently failing is forgotten
first), each with at most `limit` failures.

The count is atomic per client: a credential is *admitted* for checking only while the
client's failures plus the distinct credentials still being checked stay under the limit
(others wait for those checks, up to ADMIT_WAIT seconds), so however many requests arrive
together at most `limit` distinct wrong tokens are ever looked up and answered 401."""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

import structlog
from fastapi import FastAPI, Request
from starlette.types import Scope

from app.config import Settings
from app.errors import DomainError, Unauthorized
from app.runtime.metrics import AUTH_RATE_LIMITED

log = structlog.get_logger(__name__)

Network = IPv4Network | IPv6Network
_MISSING = b""  # the tag of a request without a bearer token
_MAX_KEY = 64  # a client that is not an IP address (a unix socket, say) is cut to this
ADMIT_WAIT = 2.0  # seconds a credential waits for the client's checks in flight (ms each)


class TooManyRequests(DomainError):
    status = 429
    code = "too_many_requests"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "too many requests with a missing, wrong or revoked token from this address: "
            f"try again in {retry_after} s"
        )
        self.retry_after = retry_after
        self.headers["Retry-After"] = str(retry_after)


def client_key(host: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]) -> str:
    """Whom to count: see the module's docstring. `host` is the connecting address."""
    peer = _address(host or "")
    if trusted and _trusted(peer, trusted):
        hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
        hops = [hop for hop in hops if hop]
        for hop in reversed(hops):
            address = _address(hop)
            if not _trusted(address, trusted):
                return _key(address)
        if hops:  # every hop a trusted proxy: the first one is the client
            return _key(_address(hops[0]))
    return _key(peer)


def _address(text: str) -> IPv4Address | IPv6Address | str:
    """An address from `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:443`."""
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else text
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ip_address(text)
    except ValueError:
        return text[:_MAX_KEY]
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IPv4Address | IPv6Address | str, trusted: Iterable[Network]) -> bool:
    if isinstance(address, str):
        return False
    return any(address.version == net.version and address in net for net in trusted)


def _key(address: IPv4Address | IPv6Address | str) -> str:
    if isinstance(address, IPv6Address):
        return str(IPv6Network((address, 64), strict=False))
    return str(address)


class AuthFailureLimiter:
    """Sliding window of distinct failed credentials per client; thread-safe (the `def`
    handlers' dependencies run on FastAPI's thread pool)."""

    def __init__(
        self,
        limit: int,
        window: float,
        max_clients: int,
        trusted_proxies: Sequence[Network] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_clients = max_clients
        self.trusted_proxies = tuple(trusted_proxies)
        self.clock = clock
        self._lock = threading.Condition()
        # client → {credential tag: when it first failed}, oldest first in both.
        self._failures: OrderedDict[str, dict[bytes, float]] = OrderedDict()
        # client → credential tags being checked now (bounded by the requests in flight).
        self._checking: dict[str, Counter[bytes]] = {}
        # Tags are keyed hashes: nothing in memory can be matched to a stored token digest.
        self._tag_key = secrets.token_bytes(32)

    @classmethod
    def from_settings(cls, settings: Settings) -> AuthFailureLimiter:
        return cls(
            settings.auth_failure_limit,
            settings.auth_failure_window,
            settings.auth_failure_clients,
            settings.trusted_proxies,
        )

    def client(self, scope: Scope) -> str:
        peer = scope.get("client")
        headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
        forwarded = [v.decode("latin-1") for k, v in headers if k == b"x-forwarded-for"]
        return client_key(peer[0] if peer else None, forwarded, self.trusted_proxies)

    def __len__(self) -> int:
        return len(self._failures)

    def failures(self, client: str) -> int:
        with self._lock:
            return len(self._current(client, self.clock()))

    def retry_after(self, client: str) -> int | None:
        """Seconds until this client may try again, or None if it is not limited."""
        now = self.clock()
        with self._lock:
            failures = self._current(client, now)
            if len(failures) < self.limit:
                return None
            oldest = next(iter(failures.values()))
        return max(1, math.ceil(oldest + self.window - now))

    def tag(self, credential: str | None) -> bytes:
        if not credential:
            return _MISSING
        return hashlib.blake2b(credential.encode(), key=self._tag_key, digest_size=8).digest()

    def admit(self, client: str, tag: bytes, wait: float = ADMIT_WAIT) -> None:
        """Let this credential be checked, or raise TooManyRequests: the client is limited,
        or its failures and the distinct credentials being checked would reach the limit
        and none of those checks ended within `wait` seconds. Pair with settle()."""
        deadline = time.monotonic() + wait
        with self._lock:
            while True:
                now = self.clock()
                failures = self._current(client, now)
                if len(failures) >= self.limit:
                    oldest = next(iter(failures.values()))
                    raise TooManyRequests(max(1, math.ceil(oldest + self.window - now)))
                checking = self._checking.get(client, Counter())
                new = [t for t in checking if t not in failures]
                # A repeat of a known failure, or of a credential being checked, is no new guess.
                if tag in failures or tag in checking or len(failures) + len(new) < self.limit:
                    checking[tag] += 1
                    self._checking[client] = checking
                    return
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TooManyRequests(1)
                self._lock.wait(left)

    def settle(self, client: str, tag: bytes, failed: bool) -> bool:
        """The check admit() allowed has ended; count it if it failed. True when this
        failure reached the limit."""
        with self._lock:
            checking = self._checking[client]
            checking[tag] -= 1
            if checking[tag] <= 0:
                del checking[tag]
            if not checking:
                del self._checking[client]
            tripped = self._record(client, tag) if failed else False
            self._lock.notify_all()
        return tripped

    def failed(self, client: str, credential: str | None) -> bool:
        """Count a failed credential; True when this one reached the limit."""
        tag = self.tag(credential)
        with self._lock:
            tripped = self._record(client, tag)
            self._lock.notify_all()
        return tripped

    def _record(self, client: str, tag: bytes) -> bool:
        """Holds the lock."""
        now = self.clock()
        failures = self._current(client, now)
        if not failures:
            while len(self._failures) >= self.max_clients:
                self._failures.popitem(last=False)
            self._failures[client] = failures
        self._failures.move_to_end(client)
        if tag in failures or len(failures) >= self.limit:
            return False  # a repeat is no new guess; a full record has nothing to add
        failures[tag] = now
        return len(failures) == self.limit

    def _current(self, client: str, now: float) -> dict[bytes, float]:
        """The client's failures still inside the window (a new dict if none; the caller
        stores it). Holds the lock."""
        failures = self._failures.get(client)
        if failures is None:
            return {}
        horizon = now - self.window
        for tag, at in list(failures.items()):
            if at > horizon:
                break
            del failures[tag]
        if not failures:
            del self._failures[client]
        return failures


def limiter(request: Request) -> AuthFailureLimiter:
    found: AuthFailureLimiter = request.app.state.auth_limiter
    return found


@contextmanager
def checking(request: Request, credential: str | None) -> Iterator[None]:
    """Around the check of a request's bearer token: refused with TooManyRequests before
    it when the client is limited (see AuthFailureLimiter.admit); an Unauthorized raised
    inside counts as a failure of this credential."""
    guard = limiter(request)
    client = guard.client(request.scope)
    tag = guard.tag(credential)
    try:
        guard.admit(client, tag)
    except TooManyRequests as exc:
        AUTH_RATE_LIMITED.labels("refused").inc()
        log.info("auth_rate_limited", client=client, retry_after=exc.retry_after)
        raise
    failed = False
    try:
        yield
    except Unauthorized:
        failed = True
        raise
    finally:
        if guard.settle(client, tag, failed):
            AUTH_RATE_LIMITED.labels("tripped").inc()
            log.warning(
                "auth_rate_limit_tripped",
                client=client,
                failures=guard.limit,
                window_seconds=guard.window,
            )


def install(app: FastAPI, settings: Settings) -> None:
    app.state.auth_limiter = AuthFailureLimiter.from_settings(settings)
