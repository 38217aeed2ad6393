"""The Lambda function that Amazon Connect's contact flow invokes: it forwards Connect's
ContactFlowEvent, unchanged, to callguard's POST /webhooks/connect/flow and hands callguard's
flat answer back to the flow. Whenever callguard cannot answer in time or answers something
the flow could not use, it returns the contract's fail-safe answer instead (the caller still
reaches a person, unrecorded), so the contact flow never has to understand an error.

Standard library only (plus boto3, which the Lambda runtime provides, for the optional
Secrets Manager token), so it deploys as one file. Configuration, from the environment:

  CALLGUARD_URL                    callguard's base URL (https://calls.example.gov.uk)
  CALLGUARD_CONNECT_TOKEN_SECRET   name or ARN of a Secrets Manager secret holding the token
  CALLGUARD_CONNECT_TOKEN          the token itself (used when no secret is named)
  CALLGUARD_TIMEOUT_SECONDS        how long to wait for callguard (default 3; Connect waits 8)
  CALLGUARD_FALLBACK_QUEUE_ARN     the callguard-fallback queue's ARN, for the fail-safe answer
  CALLGUARD_FALLBACK_PROMPT        what the fail-safe answer says to the caller

Logs say why a fail-safe answer was given, with the contact id; never the caller's number
and never the event itself (it holds the number).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from typing import Any

logger = logging.getLogger("callguard.forwarder")
logger.setLevel(logging.INFO)

FLOW_PATH = "/webhooks/connect/flow"
KEYS = ("next", "prompt", "department", "queue", "queue_arn", "recorded")
ALLOWED = {"next": ("menu", "queue"), "recorded": ("true", "false")}
DEFAULT_TIMEOUT_SECONDS = 3.0
# Left for building the answer and for Lambda to return it once callguard's time is up.
MARGIN_SECONDS = 0.3
# Connect refuses a Lambda answer over 32 KB; anything near that is not callguard's answer.
MAX_ANSWER_BYTES = 32 * 1024
DEFAULT_PROMPT = "Thank you for calling. Please hold while we connect you to an adviser."
FALLBACK_QUEUE = "callguard-fallback"

_token_cache: dict[str, str] = {}


class Refused(Exception):
    """callguard's answer (or the lack of one) cannot be given to the flow; says why."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # urllib would follow a redirect with the token header attached, to any host: refuse.
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        raise Refused(f"callguard answered a redirect ({code})")


_opener = urllib.request.build_opener(_NoRedirect)


def fail_safe() -> dict[str, str]:
    """The contract's answer when callguard cannot decide: the fallback queue, not recorded."""
    return {
        "next": "queue",
        "prompt": os.environ.get("CALLGUARD_FALLBACK_PROMPT") or DEFAULT_PROMPT,
        "department": "",
        "queue": FALLBACK_QUEUE,
        "queue_arn": os.environ.get("CALLGUARD_FALLBACK_QUEUE_ARN", ""),
        "recorded": "false",
    }


def _token(timeout: float) -> str:
    secret = os.environ.get("CALLGUARD_CONNECT_TOKEN_SECRET", "")
    if not secret:
        token = os.environ.get("CALLGUARD_CONNECT_TOKEN", "").strip()
        if not token:
            raise Refused("no CALLGUARD_CONNECT_TOKEN_SECRET or CALLGUARD_CONNECT_TOKEN set")
        return token
    if secret not in _token_cache:  # one Secrets Manager call per warm container
        import boto3  # the Lambda runtime provides it; only needed with a secret
        from botocore.config import Config

        config = Config(
            connect_timeout=timeout, read_timeout=timeout, retries={"total_max_attempts": 1}
        )
        client = boto3.client("secretsmanager", config=config)
        # strip(): a token saved with its newline would not be a valid header value.
        value = (client.get_secret_value(SecretId=secret).get("SecretString") or "").strip()
        if not value:
            raise Refused("the token secret has no SecretString")
        _token_cache[secret] = value
    return _token_cache[secret]


def _base_url() -> str:
    url = os.environ.get("CALLGUARD_URL", "").rstrip("/")
    if not url.startswith(("https://", "http://")):
        raise Refused("CALLGUARD_URL is not set to an http(s) URL")
    return url


def _post(url: str, body: bytes, deadline: float) -> dict[str, str]:
    """POST the event; return callguard's answer once it is known to be one the flow can use."""
    token = _token(max(deadline - time.monotonic(), 0.01))
    request = urllib.request.Request(  # noqa: S310 (_base_url admits http(s) only)
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-Callguard-Token": token,
            "User-Agent": "callguard-connect-forwarder/1",
        },
    )
    try:
        with _opener.open(request, timeout=max(deadline - time.monotonic(), 0.01)) as response:
            raw = response.read(MAX_ANSWER_BYTES + 1)
    except urllib.error.HTTPError as error:
        if error.code in (401, 403):
            _token_cache.clear()  # the token may have been rotated: read it again next time
        raise Refused(f"callguard answered HTTP {error.code}") from None
    if len(raw) > MAX_ANSWER_BYTES:
        raise Refused("callguard's answer is too large")
    return check_answer(raw)


def check_answer(raw: bytes) -> dict[str, str]:
    """The contract's flat answer: a JSON object of strings with every key, known values."""
    try:
        answer = json.loads(raw)
    except ValueError:
        raise Refused("callguard's answer is not JSON") from None
    if not isinstance(answer, dict):
        raise Refused("callguard's answer is not a JSON object")
    if not all(isinstance(value, str) for value in answer.values()):
        raise Refused("callguard's answer is not flat (a value is not a string)")
    missing = [key for key in KEYS if key not in answer]
    if missing:
        raise Refused(f"callguard's answer lacks {', '.join(missing)}")
    for key, allowed in ALLOWED.items():
        if answer[key] not in allowed:
            raise Refused(f"callguard's answer has an unknown {key}")
    return answer


def _timeout(context: Any) -> float:
    """callguard's time: the configured timeout, cut short by what the invocation has left."""
    try:
        timeout = float(os.environ.get("CALLGUARD_TIMEOUT_SECONDS") or DEFAULT_TIMEOUT_SECONDS)
    except ValueError:
        timeout = DEFAULT_TIMEOUT_SECONDS
    if not 0 < timeout < 60:  # also refuses nan and inf
        timeout = DEFAULT_TIMEOUT_SECONDS
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is not None:
        timeout = min(timeout, remaining() / 1000 - MARGIN_SECONDS)
    return timeout


def _why(outcome: BaseException | None, timeout: float) -> str:
    if outcome is None:
        return "no time left" if timeout <= 0 else f"no answer within {timeout:.2f} s"
    if isinstance(outcome, Refused):
        return str(outcome)
    # Connection refused, TLS, DNS, Secrets Manager…: the kind of failure, never its text.
    reason = getattr(outcome, "reason", None)
    failure = reason if isinstance(reason, BaseException) else outcome
    if isinstance(failure, TimeoutError):
        # The socket's own timeout, at the same deadline as the join: the same cause.
        return f"no answer within {timeout:.2f} s"
    return f"{type(failure).__name__} reaching callguard"


def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    """Connect's entry point: callguard's answer, or the fail-safe answer; never an error."""
    started = time.monotonic()
    result: list[dict[str, str] | BaseException] = []
    timeout = 0.0
    try:
        timeout = _timeout(context)
        deadline = started + timeout

        def work() -> None:
            try:
                body = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
                result.append(_post(_base_url() + FLOW_PATH, body, deadline))
            except BaseException as error:  # reported below
                result.append(error)

        if timeout > 0:
            # A thread, because urllib's timeout bounds each socket operation, not the whole
            # exchange (nor the DNS lookup); the join bounds all of it by the deadline.
            worker = threading.Thread(target=work, daemon=True)
            worker.start()
            worker.join(max(deadline - time.monotonic(), 0))
    except Exception as error:
        result.append(error)
    outcome = result[0] if result else None
    if isinstance(outcome, dict):
        return outcome
    try:
        contact = str(event["Details"]["ContactData"]["ContactId"])
    except (KeyError, TypeError):
        contact = "?"
    elapsed = int((time.monotonic() - started) * 1000)
    why = _why(outcome, timeout)
    logger.warning("fail-safe answer for contact %s: %s (%d ms)", contact, why, elapsed)
    return fail_safe()
