"""Prometheus metrics. Labels are route templates, states, reasons and operations — never a
phone number, a sid or anything else a client wrote, so nothing personal and no unbounded
label sets.

Each process serves its own registry; with `callguard serve --workers N` set
PROMETHEUS_MULTIPROC_DIR (prometheus-client's multiprocess mode) or scrape each worker."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.calls.provider import Provider, ProviderError, RecordingInfo, TransferLeg
from app.storage.models import Call

T = TypeVar("T")

WEBHOOKS = Counter(
    "callguard_webhooks_total",
    "Platform webhooks by route template (or other) and outcome "
    "(applied, duplicate, journaled, rejected, invalid, failed)",
    ["path", "outcome"],
)
DECISIONS = Counter(
    "callguard_decisions_total",
    "Recording decisions that changed a call's desired state, by state and decisive reason",
    ["state", "reason"],
)
PROVIDER_REQUESTS = Counter(
    "callguard_provider_requests_total",
    "Requests to the telephony platform by operation and outcome",
    ["operation", "outcome"],
)
PROVIDER_SECONDS = Histogram(
    "callguard_provider_request_seconds",
    "Latency of requests to the telephony platform",
    ["operation"],
    buckets=(0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8),
)
PAUSE_ROUND_TRIP = Histogram(
    "callguard_pause_round_trip_seconds",
    "Pause for payment: from the agent's request to the platform's confirmation (or not)",
    ["confirmed"],
    buckets=(0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4),
)
RETENTION = Counter(
    "callguard_retention_recordings_total",
    "Recordings handled by retention runs, by result (destroyed, held, failed)",
    ["result"],
)
FINGERPRINTS = Counter(
    "callguard_fingerprints_total",
    "Recordings the fingerprint pass handled, by result (fingerprinted, failed)",
    ["result"],
)
FINGERPRINT_MISMATCHES = Counter(
    "callguard_fingerprint_mismatches_total",
    "Whole recordings served whose bytes did not match their stored fingerprint",
)

AUTH_RATE_LIMITED = Counter(
    "callguard_auth_rate_limited_total",
    "Failed-token rate limit: clients that tripped it (tripped) and requests refused (refused)",
    ["event"],
)


class StateCollector(Collector):
    """Read at scrape time from the database, so every instance reports the same truth:
    live calls by confirmed recording state, and this instance's journal backlog."""

    def __init__(self, sessions: sessionmaker[Session], backlog: Callable[[], int]) -> None:
        self.sessions = sessions
        self.backlog = backlog

    def collect(self) -> Iterator[GaugeMetricFamily]:
        calls = GaugeMetricFamily(
            "callguard_active_calls",
            "Live calls by confirmed recording state",
            labels=["recording"],
        )
        counts = {"recording": 0, "paused": 0, "off": 0}
        try:
            with self.sessions() as session:
                query = (
                    select(Call.recording, func.count())
                    .where(Call.ended.is_(False))
                    .group_by(Call.recording)
                )
                counts.update({state: n for state, n in session.execute(query)})
        except Exception:
            counts = {}
        for state, n in counts.items():
            calls.add_metric([state], n)
        yield calls
        backlog = GaugeMetricFamily(
            "callguard_journal_backlog", "Webhooks journalled while the database was away"
        )
        backlog.add_metric([], self.backlog())
        yield backlog


def _outcome(error: ProviderError) -> str:
    if error.not_found:
        return "not_found"
    return "transient_error" if error.transient else "permanent_error"


class MeteredProvider:
    """Wraps a Provider: counts and times every request."""

    def __init__(self, inner: Provider) -> None:
        self.inner = inner

    def _measure(self, operation: str, call: Callable[[], T]) -> T:
        started = time.perf_counter()
        try:
            result = call()
        except ProviderError as exc:
            PROVIDER_REQUESTS.labels(operation, _outcome(exc)).inc()
            raise
        finally:
            PROVIDER_SECONDS.labels(operation).observe(time.perf_counter() - started)
        PROVIDER_REQUESTS.labels(operation, "ok").inc()
        return result

    def start_recording(self, call_sid: str, segment_sid: str) -> RecordingInfo:
        return self._measure("start", lambda: self.inner.start_recording(call_sid, segment_sid))

    def pause_recording(self, call_sid: str, recording_sid: str) -> RecordingInfo:
        return self._measure("pause", lambda: self.inner.pause_recording(call_sid, recording_sid))

    def resume_recording(self, call_sid: str, recording_sid: str) -> RecordingInfo:
        return self._measure("resume", lambda: self.inner.resume_recording(call_sid, recording_sid))

    def stop_recording(self, call_sid: str, recording_sid: str) -> RecordingInfo:
        return self._measure("stop", lambda: self.inner.stop_recording(call_sid, recording_sid))

    def transfer_call(self, call_sid: str, leg: TransferLeg) -> str | None:
        return self._measure("transfer", lambda: self.inner.transfer_call(call_sid, leg))

    def fetch_recording(self, recording_sid: str) -> RecordingInfo:
        return self._measure("fetch", lambda: self.inner.fetch_recording(recording_sid))

    def delete_recording(self, recording_sid: str) -> None:
        self._measure("delete", lambda: self.inner.delete_recording(recording_sid))
