"""Twilio's error answers in callguard's terms, for the REST adapter and the simulator's
injected faults alike (so a simulated 404 is not-found, as Twilio's is).

* 5xx, 429 and Twilio's 20429 (too many requests) and 16114 (resource busy: "Retry the
  recording action request", twilio.com/docs/api/errors/16114) may pass if retried;
  429, 20429 and 16114 also say Twilio did nothing, so even a start may be repeated.
* 404 (20404) is not found; 21220 ("Call is not in-progress. Cannot create recording")
  says the call is over."""

from __future__ import annotations

from app.calls.provider import ProviderError

TOO_MANY_REQUESTS = 20429
RESOURCE_BUSY = 16114
CALL_NOT_IN_PROGRESS = 21220
TRANSIENT_CODES = frozenset({TOO_MANY_REQUESTS, RESOURCE_BUSY})


def error_from_response(status: int, code: int | None, message: str) -> ProviderError:
    not_attempted = status == 429 or code in TRANSIENT_CODES
    return ProviderError(
        message,
        transient=status >= 500 or not_attempted,
        status=status,
        code=code,
        not_found=status == 404,
        not_attempted=not_attempted,
        call_over=code == CALL_NOT_IN_PROGRESS,
    )
