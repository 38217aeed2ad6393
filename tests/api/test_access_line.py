"""The access line is rendered without structlog's chain (app/runtime/logging.py
AccessLog): it must be the very line the chain writes, masked alike, and obey levels."""

from __future__ import annotations

import io
import json
import logging

import structlog

from app.runtime.logging import AccessLog, configure_logging
from tests.factories import captured_logs

FIELDS = {"method": "POST", "path": "/webhooks/twilio/voice", "status": 200, "duration_ms": 1.5}


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_the_line_is_the_chains_line() -> None:
    configure_logging()
    tokens = structlog.contextvars.bind_contextvars(request_id="abc-123", extra="x")
    try:
        with captured_logs(logging.INFO) as stream:
            AccessLog("callguard.access").info("request", **FIELDS)
            structlog.get_logger("callguard.access").info("request", **FIELDS)
    finally:
        structlog.contextvars.reset_contextvars(**tokens)
    ours, chains = _lines(stream)
    assert ours.pop("timestamp") <= chains.pop("timestamp")  # ISO in UTC: comparable
    assert ours == chains
    assert ours["request_id"] == "abc-123" and ours["level"] == "info"
    raw_ours, raw_chains = stream.getvalue().splitlines()  # byte for byte, but the time
    assert raw_ours.rsplit('"timestamp"', 1)[0] == raw_chains.rsplit('"timestamp"', 1)[0]


def test_a_number_shaped_request_id_or_method_is_masked() -> None:
    configure_logging()
    tokens = structlog.contextvars.bind_contextvars(request_id="447700900123")
    try:
        with captured_logs(logging.INFO) as stream:
            AccessLog("callguard.access").info("request", **{**FIELDS, "method": "07700900123"})
    finally:
        structlog.contextvars.reset_contextvars(**tokens)
    (line,) = _lines(stream)
    assert line["request_id"] == "[number]" and line["method"] == "[number]"
    assert "7700900123" not in stream.getvalue()


def test_levels_and_other_formatters_hold() -> None:
    configure_logging()
    with captured_logs(logging.WARNING) as stream:
        AccessLog("callguard.access").info("request", **FIELDS)
    assert stream.getvalue() == ""
    plain = io.StringIO()
    handler = logging.StreamHandler(plain)  # a handler of someone else's: the line as message
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    logger = logging.getLogger("callguard.access")
    logger.addHandler(handler)
    try:
        with captured_logs(logging.INFO):
            AccessLog("callguard.access").info("request", **FIELDS)
    finally:
        logger.removeHandler(handler)
    level, name, line = plain.getvalue().rstrip("\n").split(" ", 2)
    assert (level, name) == ("INFO", "callguard.access")
    assert json.loads(line)["event"] == "request"


def test_made_request_ids_are_uuid4_hex() -> None:
    from uuid import RFC_4122, UUID

    from app.api.observability import new_request_id

    made = {new_request_id() for _ in range(1000)}
    assert len(made) == 1000
    for request_id in made:
        parsed = UUID(request_id)
        assert (parsed.version, parsed.variant, parsed.hex) == (4, RFC_4122, request_id)
