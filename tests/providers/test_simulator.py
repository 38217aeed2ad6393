"""The simulator's state machine, its callbacks, fault injection and thread safety."""

from __future__ import annotations

import dataclasses
import queue
import re
import threading

import pytest

from app.calls.provider import ProviderError, RecordingStatus
from app.platforms.simulator.platform import SimulatedPlatform
from app.platforms.simulator.provider import SimulatorProvider
from app.platforms.simulator.resources import TWILIO_CURRENT, Callback, new_call_sid, new_sid
from app.platforms.twilio.control import TwilioApi as Provider
from tests.factories import Clock

CALLBACK = "https://callguard.example.com/webhooks/recording-status"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sim(clock: Clock) -> SimulatorProvider:
    return SimulatorProvider(clock=clock)


def drain(outbox: queue.Queue[Callback]) -> list[Callback]:
    items = []
    while not outbox.empty():
        items.append(outbox.get_nowait())
    return items


def statuses(outbox: queue.Queue[Callback]) -> list[str]:
    return [c.params["RecordingStatus"] for c in drain(outbox)]


def test_is_a_provider() -> None:
    provider: Provider = SimulatorProvider()  # mypy checks the Protocol here
    assert provider is not None


def test_sids_look_like_twilio() -> None:
    sim = SimulatorProvider()
    assert re.fullmatch("AC[0-9a-f]{32}", sim.account_sid)
    rec = sim.start_recording(new_call_sid(), CALLBACK)
    assert re.fullmatch("RE[0-9a-f]{32}", rec.sid)


def test_start_sends_in_progress_callback_shaped_like_twilio(sim: SimulatorProvider) -> None:
    call = new_call_sid()
    rec = sim.start_recording(call, CALLBACK)
    assert (rec.call_sid, rec.status) == (call, RecordingStatus.IN_PROGRESS)
    [callback] = drain(sim.outbox)
    assert (callback.url, callback.method) == (CALLBACK, "POST")
    assert callback.params == {
        "AccountSid": sim.account_sid,
        "CallSid": call,
        "RecordingSid": rec.sid,
        "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{sim.account_sid}/Recordings/{rec.sid}",
        "RecordingStatus": "in-progress",
        "RecordingChannels": "2",
        "RecordingStartTime": "Tue, 14 Nov 2023 22:13:20 +0000",
        "RecordingSource": "StartCallRecordingAPI",
        "RecordingTrack": "both",
        "ErrorCode": "0",
    }
    assert sim.requests == [("start", {"call_sid": call, "status_callback": CALLBACK})]


def test_pause_and_resume_send_no_callback(sim: SimulatorProvider) -> None:
    call = new_call_sid()
    rec = sim.start_recording(call, CALLBACK).sid
    drain(sim.outbox)
    assert sim.pause_recording(call, rec).status is RecordingStatus.PAUSED
    assert sim.recordings(call)[0].status is RecordingStatus.PAUSED
    assert sim.resume_recording(call, rec).status is RecordingStatus.IN_PROGRESS
    assert sim.outbox.empty()


def test_stop_answers_stopped_then_completes_with_duration(
    sim: SimulatorProvider, clock: Clock
) -> None:
    call = new_call_sid()
    rec = sim.start_recording(call, CALLBACK).sid
    clock.advance(10)
    sim.pause_recording(call, rec)  # skip: the pause is not recorded
    clock.advance(30)
    sim.resume_recording(call, rec)
    clock.advance(5)
    assert sim.stop_recording(call, rec).status is RecordingStatus.STOPPED
    assert sim.recordings(call)[0].status is RecordingStatus.COMPLETED
    assert sim.fetch_recording(rec).status is RecordingStatus.COMPLETED
    in_progress, completed = drain(sim.outbox)
    assert in_progress.params["RecordingStatus"] == "in-progress"
    assert completed.params["RecordingStatus"] == "completed"
    assert completed.params["RecordingDuration"] == "15"


def test_silence_pause_counts_toward_duration(clock: Clock) -> None:
    platform = SimulatedPlatform(clock=clock)
    call = platform.add_call()
    rec = platform.create_recording(call, status_callback=CALLBACK).sid
    clock.advance(10)
    platform.update_recording(call, rec, "paused")  # PauseBehavior defaults to silence
    clock.advance(10)
    stopped = platform.update_recording(call, rec, "stopped")
    assert stopped.status is RecordingStatus.STOPPED
    assert platform.fetch_recording(rec).duration == 20
    # Twilio's default events: only `completed`.
    assert [c.params["RecordingStatus"] for c in drain(platform.outbox)] == ["completed"]


def test_hangup_completes_every_unfinished_recording(sim: SimulatorProvider) -> None:
    call = new_call_sid()
    first = sim.start_recording(call, CALLBACK).sid
    sim.stop_recording(call, first)
    second = sim.start_recording(call, CALLBACK).sid
    third = sim.start_recording(call, CALLBACK).sid
    sim.pause_recording(call, third)
    drain(sim.outbox)
    sim.hangup(call)
    completed = drain(sim.outbox)
    assert {c.params["RecordingSid"] for c in completed} == {second, third}
    assert {c.params["RecordingStatus"] for c in completed} == {"completed"}
    assert {r.status for r in sim.recordings(call)} == {RecordingStatus.COMPLETED}
    sim.hangup(call)  # hanging up twice changes nothing
    assert sim.outbox.empty()


def test_ended_call_refuses_start_and_redirect(sim: SimulatorProvider) -> None:
    call = new_call_sid()
    sim.hangup(call)
    for attempt in (
        lambda: sim.start_recording(call, CALLBACK),
        lambda: sim.redirect_call(call, "https://callguard.example.com/twiml"),
    ):
        with pytest.raises(ProviderError) as caught:
            attempt()
        err = caught.value
        assert (err.status, err.code, err.transient, err.not_found) == (400, 21220, False, False)
    assert sim.recordings(call) == []


@pytest.mark.parametrize("operation", ["pause", "resume", "stop"])
def test_updating_a_finished_recording_fails(sim: SimulatorProvider, operation: str) -> None:
    call = new_call_sid()
    rec = sim.start_recording(call, CALLBACK).sid
    sim.stop_recording(call, rec)
    update = {
        "pause": sim.pause_recording,
        "resume": sim.resume_recording,
        "stop": sim.stop_recording,
    }[operation]
    with pytest.raises(ProviderError) as caught:
        update(call, rec)
    assert (caught.value.status, caught.value.code, caught.value.transient) == (400, 21220, False)
    assert sim.recordings(call)[0].status is RecordingStatus.COMPLETED


def test_updates_after_hangup_fail(sim: SimulatorProvider) -> None:
    call = new_call_sid()
    rec = sim.start_recording(call, CALLBACK).sid
    sim.hangup(call)
    with pytest.raises(ProviderError) as caught:
        sim.resume_recording(call, rec)
    assert caught.value.code == 21220


def test_repeating_the_current_state_succeeds(sim: SimulatorProvider) -> None:
    call = new_call_sid()
    rec = sim.start_recording(call, CALLBACK).sid
    assert sim.resume_recording(call, rec).status is RecordingStatus.IN_PROGRESS
    sim.pause_recording(call, rec)
    assert sim.pause_recording(call, rec).status is RecordingStatus.PAUSED


def test_twilio_current(sim: SimulatorProvider) -> None:
    call = new_call_sid()
    with pytest.raises(ProviderError) as caught:
        sim.pause_recording(call, TWILIO_CURRENT)  # nothing to refer to
    assert caught.value.not_found
    rec = sim.start_recording(call, CALLBACK).sid
    assert sim.pause_recording(call, TWILIO_CURRENT).sid == rec
    sim.start_recording(call, CALLBACK)
    with pytest.raises(ProviderError) as caught:
        sim.stop_recording(call, TWILIO_CURRENT)
    err = caught.value
    assert (err.status, err.code, err.transient, err.not_found) == (400, 16108, False, False)
    sim.stop_recording(call, rec)  # one active recording left: CURRENT is unambiguous
    assert sim.stop_recording(call, TWILIO_CURRENT).status is RecordingStatus.STOPPED


def test_unknown_recordings_are_not_found(sim: SimulatorProvider) -> None:
    call = new_call_sid()
    other_call_rec = sim.start_recording(new_call_sid(), CALLBACK).sid
    for attempt in (
        lambda: sim.fetch_recording(new_sid("RE")),
        lambda: sim.delete_recording(new_sid("RE")),
        lambda: sim.pause_recording(call, new_sid("RE")),
        lambda: sim.pause_recording(call, other_call_rec),  # another call's recording
    ):
        with pytest.raises(ProviderError) as caught:
            attempt()
        err = caught.value
        assert (err.status, err.code, err.not_found, err.transient) == (404, 20404, True, False)


def test_delete_twice_is_not_found_the_second_time(sim: SimulatorProvider) -> None:
    call = new_call_sid()
    rec = sim.start_recording(call, CALLBACK).sid
    sim.stop_recording(call, rec)
    sim.delete_recording(rec)
    assert sim.recordings(call) == []
    with pytest.raises(ProviderError) as caught:
        sim.delete_recording(rec)
    assert caught.value.not_found


def test_registered_calls_only() -> None:
    sim = SimulatorProvider(auto_register_calls=False)
    call = new_call_sid()
    with pytest.raises(ProviderError) as caught:
        sim.start_recording(call, CALLBACK)
    assert (caught.value.status, caught.value.not_found) == (404, True)
    assert sim.add_call(call) == call
    assert sim.start_recording(call, CALLBACK).status is RecordingStatus.IN_PROGRESS


def test_malformed_call_sid_is_not_found(sim: SimulatorProvider) -> None:
    with pytest.raises(ProviderError) as caught:
        sim.start_recording("CA123", CALLBACK)
    assert caught.value.not_found


def test_redirect_is_recorded(sim: SimulatorProvider) -> None:
    call = sim.add_call()
    sim.redirect_call(call, "https://callguard.example.com/twiml/transfer")
    assert sim.platform.call(call).url == "https://callguard.example.com/twiml/transfer"
    assert sim.requests[-1] == (
        "redirect",
        {"call_sid": call, "url": "https://callguard.example.com/twiml/transfer"},
    )


def test_absent_recording(sim: SimulatorProvider) -> None:
    call = new_call_sid()
    rec = sim.start_recording(call, CALLBACK).sid
    sim.platform.mark_absent(rec)
    drain(sim.outbox)
    sim.hangup(call)
    [callback] = drain(sim.outbox)
    assert (callback.params["RecordingStatus"], callback.params["ErrorCode"]) == ("absent", "16101")
    assert sim.fetch_recording(rec).status is RecordingStatus.ABSENT


def test_injected_faults_fail_the_next_calls_and_leave_state_alone(sim: SimulatorProvider) -> None:
    call = new_call_sid()
    rec = sim.start_recording(call, CALLBACK).sid
    busy = ProviderError("busy", transient=True, status=408, code=16114)
    sim.inject_fault("pause", busy, times=2)
    for _ in range(2):
        with pytest.raises(ProviderError) as caught:
            sim.pause_recording(call, rec)
        assert caught.value is busy
    assert sim.recordings(call)[0].status is RecordingStatus.IN_PROGRESS
    assert sim.pause_recording(call, rec).status is RecordingStatus.PAUSED
    assert [op for op, _ in sim.requests] == ["start", "pause", "pause", "pause"]


def test_injected_faults_queue_per_operation(sim: SimulatorProvider) -> None:
    first = ProviderError("first", transient=True, status=500)
    second = ProviderError("second", transient=False, status=404, not_found=True)
    sim.inject_fault("delete", first)
    sim.inject_fault("delete", second)
    rec = new_sid("RE")
    raised = []
    for _ in range(3):
        with pytest.raises(ProviderError) as caught:
            sim.delete_recording(rec)
        raised.append(caught.value)
    assert raised[:2] == [first, second]
    assert raised[2].code == 20404  # the real answer once the faults are used up


def test_inject_fault_refuses_unknown_operations(sim: SimulatorProvider) -> None:
    with pytest.raises(ValueError, match="unknown operation"):
        sim.inject_fault("hangup", ProviderError("x", transient=True))


def test_callback_is_frozen() -> None:
    callback = Callback(url=CALLBACK, params={"RecordingStatus": "completed"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        callback.url = "https://elsewhere.example.com"  # type: ignore[misc]


def test_threads_share_the_simulator_safely() -> None:
    sim = SimulatorProvider()
    shared_call = new_call_sid()
    errors: list[BaseException] = []
    rounds = 25

    def own_calls() -> None:
        try:
            for _ in range(rounds):
                call = new_call_sid()
                rec = sim.start_recording(call, CALLBACK).sid
                sim.pause_recording(call, rec)
                sim.resume_recording(call, rec)
                sim.stop_recording(call, rec)
        except BaseException as exc:  # collected and re-raised by the test thread
            errors.append(exc)

    def shared() -> None:
        try:
            for _ in range(rounds):
                sim.start_recording(shared_call, CALLBACK)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=own_calls) for _ in range(4)]
    threads += [threading.Thread(target=shared) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    sim.hangup(shared_call)
    callbacks = drain(sim.outbox)
    total = 8 * rounds
    assert len({c.params["RecordingSid"] for c in callbacks}) == total
    assert sorted(c.params["RecordingStatus"] for c in callbacks).count("completed") == total
    assert len(sim.requests) == 4 * rounds * 4 + 4 * rounds
    assert len(sim.recordings(shared_call)) == 4 * rounds
