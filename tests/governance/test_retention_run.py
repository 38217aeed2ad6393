"""R3: the retention run destroys what is due, confirmed at the provider, exactly once
across workers; holds, provider errors and unconfirmed deletes leave recordings due."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

from fastapi.testclient import TestClient

from app.calls.provider import ProviderError
from app.platforms.simulator.provider import SimulatorProvider
from app.retention.run import RetentionRun, Summary
from app.storage.db import make_engine, make_session_factory, unit_of_work
from app.storage.models import Recording, utcnow
from tests.governance.conftest import (
    People,
    events,
    recording,
    seed_due,
    years_later,
)
from tests.governance.test_holds import place
from tests.twilio_fake.server import FakeTwilioServer


def deletes(simulator: SimulatorProvider) -> Counter[str]:
    return Counter(args["recording_sid"] for op, args in simulator.requests if op == "delete")


def run(services, provider=None, **kwargs) -> Summary:
    return RetentionRun(services.sessions, provider or services.provider, **kwargs).run()


def test_a_due_recording_is_deleted_confirmed_and_recorded_with_evidence(
    services, simulator: SimulatorProvider, completed: tuple[str, str]
) -> None:
    call_sid, sid = completed
    assert run(services) == Summary()  # completed today: due in 130 days
    assert deletes(simulator) == Counter()

    summary = run(services, now=utcnow() + timedelta(days=131))
    assert (summary.due, summary.destroyed, summary.held, summary.failed) == (1, 1, 0, 0)
    assert simulator.recordings(call_sid) == []  # really gone at the provider
    assert deletes(simulator) == Counter({sid: 1})
    stored = recording(services, sid)
    assert stored.destroyed_at is not None
    assert stored.claimed_until is None
    [event] = events(services, "recording.destroyed", recording_sid=sid)
    assert event.call_sid == call_sid
    assert event.detail["delete"] == {"status": 204}
    assert event.detail["fetch"] == {"status": 404, "code": 20404}
    assert event.detail["destroy_after"] == stored.destroy_after.isoformat()
    [summary_event] = [e for e in events(services, "retention.run") if e.detail["destroyed"]]
    assert summary_event.detail["due"] == 1

    assert run(services, now=years_later()) == Summary()  # nothing twice
    assert deletes(simulator) == Counter({sid: 1})


def test_a_held_recording_survives_a_run_years_later_and_goes_after_the_last_release(
    client: TestClient, services, simulator: SimulatorProvider, people: People, completed
) -> None:
    _call, sid = completed
    first, second = place(client, people, sid, "A"), place(client, people, sid, "B")
    summary = run(services, now=years_later(10))
    assert (summary.due, summary.held, summary.destroyed) == (0, 1, 0)
    assert deletes(simulator) == Counter()
    client.delete(f"/api/v1/recordings/{sid}/holds/{first['id']}", headers=people.governance)
    assert run(services, now=years_later(10)).destroyed == 0  # one hold is left
    client.delete(f"/api/v1/recordings/{sid}/holds/{second['id']}", headers=people.governance)
    assert run(services, now=years_later(10)).destroyed == 1
    assert recording(services, sid).destroyed_at is not None
    gone = client.post(
        f"/api/v1/recordings/{sid}/holds",
        json={"case_reference": "C", "reason": "too late"},
        headers=people.governance,
    )
    assert gone.status_code == 410


def test_a_provider_error_leaves_it_due_logged_and_retried_by_the_next_run(
    services, simulator: SimulatorProvider
) -> None:
    [sid] = seed_due(services, simulator.platform, 1)
    simulator.inject_fault(
        "delete", ProviderError("boom", transient=True, status=500, code=20500), times=5
    )
    summary = run(services)
    assert (summary.due, summary.destroyed, summary.failed) == (1, 0, 1)
    assert not summary.ok
    assert deletes(simulator) == Counter({sid: 1})  # not retried in a loop by the same run
    stored = recording(services, sid)
    assert stored.destroyed_at is None and stored.claimed_until is None
    [failure] = events(services, "recording.destroy_failed", recording_sid=sid)
    assert (failure.detail["stage"], failure.detail["status"]) == ("delete", 500)
    assert failure.detail["transient"] is True

    simulator._faults.clear()
    assert run(services).destroyed == 1  # the next run, another worker id
    assert recording(services, sid).destroyed_at is not None


class DeleteIgnored(SimulatorProvider):
    """Answers the DELETE (204) but keeps the recording."""

    def delete_recording(self, recording_sid: str) -> None:
        self._enter("delete", recording_sid=recording_sid)


def test_a_204_while_a_later_fetch_still_finds_it_is_not_destroyed(services) -> None:
    provider = DeleteIgnored()
    [sid] = seed_due(services, provider.platform, 1)
    summary = run(services, provider)
    assert (summary.destroyed, summary.failed) == (0, 1)
    assert recording(services, sid).destroyed_at is None
    [failure] = events(services, "recording.destroy_failed", recording_sid=sid)
    assert failure.detail["error"] == "still_present"
    assert failure.detail["delete"] == {"status": 204}
    assert failure.detail["fetch"]["status"] == 200


def test_already_gone_counts_as_gone_and_a_failed_confirmation_does_not(
    services, simulator: SimulatorProvider
) -> None:
    gone, unconfirmed = seed_due(services, simulator.platform, 2)
    simulator.platform.delete_recording(gone)  # deleted at the provider by someone else
    simulator.inject_fault("fetch", ProviderError("timeout", transient=True), times=1)
    # The fetch fault hits whichever recording is confirmed first: run them one by one.
    summary = RetentionRun(services.sessions, simulator, batch_size=1, concurrency=1).run()
    assert (summary.destroyed, summary.failed) == (1, 1)
    destroyed = {e.recording_sid: e for e in events(services, "recording.destroyed")}
    [failed] = events(services, "recording.destroy_failed")
    assert failed.detail["stage"] == "confirm"
    [sid] = destroyed
    if sid == gone:
        assert destroyed[sid].detail["delete"] == {"status": 404, "code": 20404}
    assert recording(services, failed.recording_sid).destroyed_at is None
    assert {sid, failed.recording_sid} == {gone, unconfirmed}


def test_a_live_claim_is_left_alone_and_an_expired_one_is_taken_over(
    client: TestClient, services, simulator: SimulatorProvider, people: People
) -> None:
    live, expired = seed_due(services, simulator.platform, 2)
    with unit_of_work(services.sessions) as session:
        session.get(Recording, live).claimed_by = "other:1"
        session.get(Recording, live).claimed_until = utcnow() + timedelta(minutes=5)
        session.get(Recording, expired).claimed_by = "dead:1"
        session.get(Recording, expired).claimed_until = utcnow() - timedelta(minutes=1)
    busy = client.post(
        f"/api/v1/recordings/{live}/holds",
        json={"case_reference": "C", "reason": "r"},
        headers=people.governance,
    )
    assert busy.status_code == 409  # it may be being deleted right now
    summary = run(services)
    assert summary.destroyed == 1
    assert deletes(simulator) == Counter({expired: 1})


class Slow(SimulatorProvider):
    """Each DELETE takes a moment, so that workers overlap."""

    def delete_recording(self, recording_sid: str) -> None:
        time.sleep(0.003)
        super().delete_recording(recording_sid)


def test_three_workers_at_once_destroy_each_recording_exactly_once(
    services, settings, database_url: str
) -> None:
    provider = Slow()
    sids = seed_due(services, provider.platform, 60)
    engines = [make_engine(database_url) for _ in range(3)]
    summaries: list[Summary] = []
    barrier = threading.Barrier(3)

    def worker(index: int) -> None:
        worker_run = RetentionRun(
            make_session_factory(engines[index]), provider, batch_size=4, concurrency=3
        )
        barrier.wait()
        summaries.append(worker_run.run())

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for engine in engines:
        engine.dispose()
    assert deletes(provider) == Counter(dict.fromkeys(sids, 1))  # one DELETE each, no more
    assert sum(s.destroyed for s in summaries) == 60
    assert sum(s.failed for s in summaries) == 0
    destroyed = [e.recording_sid for e in events(services, "recording.destroyed")]
    assert sorted(destroyed) == sorted(sids)
    assert sum(1 for s in summaries if s.destroyed) >= 2  # the work was really shared


def twilio_env(server: FakeTwilioServer) -> dict[str, str]:
    return {
        "CALLGUARD_PROVIDER": "twilio",
        "TWILIO_ACCOUNT_SID": server.account_sid,
        "TWILIO_AUTH_TOKEN": server.auth_token,
        "CALLGUARD_TWILIO_API_BASE_URL": server.base_url,
    }


def test_the_cli_against_twilio_exits_non_zero_on_a_500_then_destroys_on_the_next_run(
    run_cli, services, twilio_server: FakeTwilioServer
) -> None:
    twilio_server.expect_violations(20404)  # the confirming fetches: gone
    sids = seed_due(services, twilio_server.platform, 3, caller="+447700900123")
    env = twilio_env(twilio_server)
    preview = run_cli("retention", "run", "--dry-run", env=env)
    assert preview.exit_code == 0, preview.output
    assert all(f"would destroy {sid}" in preview.output for sid in sids)
    assert preview.output.count("would erase the caller's number") == 3
    assert "due 3, held 0, numbers 3; nothing changed" in preview.output
    assert twilio_server.requests_for("DELETE", ".json") == []  # nothing touched
    assert events(services, "retention.run") == []

    twilio_server.inject("delete", status=500, times=1)
    failed = run_cli("retention", "run", env=env)
    assert failed.exit_code == 1, failed.output
    assert "due 3, destroyed 2, held 0, failed 1, numbers erased 2" in failed.output
    still_due = [sid for sid in sids if recording(services, sid).destroyed_at is None]
    assert len(still_due) == 1

    again = run_cli("retention", "run", env=env)
    assert again.exit_code == 0, again.output
    assert "due 1, destroyed 1, held 0, failed 0, numbers erased 1" in again.output
    deleted = Counter(r.path for r in twilio_server.requests_for("DELETE", ".json"))
    assert deleted[next(p for p in deleted if still_due[0] in p)] == 2  # the 500, then the retry
    assert all(recording(services, sid).destroyed_at is not None for sid in sids)
    assert run_cli("retention", "run", "--now", "not-a-date", env=env).exit_code == 2
    markup = run_cli("retention", "run", "--now", "[/red]", env=env)  # quoted, not markup
    assert markup.exit_code == 2
    assert "--now '[/red]' is not an ISO-8601 date" in markup.output


class Counting(SimulatorProvider):
    """Tracks how many DELETEs are in flight at once."""

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = self.peak = 0
        self.guard = threading.Lock()

    def delete_recording(self, recording_sid: str) -> None:
        with self.guard:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        time.sleep(0.01)
        with self.guard:
            self.in_flight -= 1
        super().delete_recording(recording_sid)


def test_provider_requests_run_concurrently_up_to_the_bound(services) -> None:
    provider = Counting()
    seed_due(services, provider.platform, 24)
    summary = RetentionRun(services.sessions, provider, concurrency=3, batch_size=5).run()
    assert summary.destroyed == 24
    assert provider.peak == 3
