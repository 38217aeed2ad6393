"""R5, R6, S3: callers' numbers are normalised, sealed at rest (no plaintext in any column
of any table), found by a keyed hash, and made unrecoverable once nothing is kept."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from app.callers.numbers import NumberVault, normalise, vault
from app.platforms.simulator.provider import SimulatorProvider
from app.retention.run import RetentionRun
from app.storage.models import utcnow
from tests.factories import DEFAULT_CALLER, Platform
from tests.governance.conftest import (
    POLICY,
    People,
    call_row,
    completed_call,
    events,
    queue_call_from,
    raw_dump,
)
from tests.governance.test_holds import place

DIGITS = "7700900123"  # the caller's number in every form: +44 7700 900123, 07700 900123


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("07700 900123", "+447700900123"),
        ("+447700900123", "+447700900123"),
        ("0044 7700 900123", "+447700900123"),
        ("+1 415 555 0100", "+14155550100"),
        ("anonymous", None),
        ("Restricted", None),
        ("+266696687", None),  # Twilio's ANONYMOUS
        ("+86282452253", None),  # UNAVAILABLE
        ("+8656696", None),  # UNKNOWN
        ("", None),
        (None, None),
        ("client:alice", None),
        ("12", None),
    ],
)
def test_numbers_normalise_to_e164_and_withheld_ones_to_nothing(
    raw: str | None, expected: str | None
) -> None:
    assert normalise(raw, "GB") == expected


def test_a_sealed_number_needs_its_call_and_the_key() -> None:
    from app.storage.models import Call

    keys = NumberVault("one secret")
    call = Call(call_sid="CA1")
    sealed = keys.seal("CA1", "+447700900123")
    call.caller_number_ciphertext = sealed.ciphertext
    call.caller_number_wrapped_key = sealed.wrapped_key
    call.caller_number_key_id = sealed.key_id
    assert keys.reveal(call) == "+447700900123"
    assert DIGITS.encode() not in sealed.ciphertext + sealed.wrapped_key
    assert NumberVault("another secret").reveal(call) is None
    moved = Call(
        call_sid="CA2",
        caller_number_ciphertext=sealed.ciphertext,
        caller_number_wrapped_key=sealed.wrapped_key,
        caller_number_key_id=sealed.key_id,
    )
    assert keys.reveal(moved) is None  # bound to its call
    assert keys.lookup_hash("+447700900123") != NumberVault("x").lookup_hash("+447700900123")


def test_no_table_holds_the_number_in_clear_after_a_call_and_its_governance(
    client: TestClient, services, platform: Platform, people: People, database_url: str
) -> None:
    call_sid, sid = completed_call(platform, caller="07700 900123")
    hold = place(client, people, sid)
    client.post(
        f"/api/v1/notifications/{hold['notification_id']}/done",
        json={"method": "phone"},
        headers=people.governance,
    )
    client.post(
        f"/api/v1/recordings/{sid}/access", json={"purpose": "complaint"}, headers=people.governance
    )
    client.post(
        f"/api/v1/recordings/{sid}/disclosures",
        json={"recipient": "Essex Police", "agreement_reference": "DSA-1"},
        headers=people.governance,
    )
    export = client.get(
        "/api/v1/subject-access", params={"phone": DEFAULT_CALLER}, headers=people.governance
    )
    assert [c["call_sid"] for c in export.json()["calls"]] == [call_sid]

    stored = call_row(services, call_sid)
    assert stored.caller_number_hash == vault(services.settings.number_key).lookup_hash(
        DEFAULT_CALLER
    )
    assert vault(services.settings.number_key).reveal(stored) == DEFAULT_CALLER
    dump = raw_dump(database_url)
    assert call_sid in dump and sid in dump  # the dump did read the tables
    assert DIGITS not in dump
    assert "07700" not in dump


def test_a_withheld_number_stores_nothing_and_matches_nobody(
    client: TestClient, services, platform: Platform, people: People
) -> None:
    for withheld in ("anonymous", "+266696687", ""):
        call_sid = queue_call_from(
            platform, POLICY.department("contact-harlow").numbers[0], withheld
        )
        stored = call_row(services, call_sid)
        assert stored.caller_number_wrapped_key is None
        assert stored.caller_number_hash is None
        refused = client.get(
            "/api/v1/subject-access", params={"phone": withheld or " "}, headers=people.governance
        )
        assert refused.status_code == 422
        assert "withheld" in refused.json()["detail"]


def test_the_number_is_erased_once_recordings_are_destroyed_and_retention_passed(
    client: TestClient,
    services,
    platform: Platform,
    simulator: SimulatorProvider,
    people: People,
    database_url: str,
) -> None:
    recorded, _ = completed_call(platform)
    unrecorded = queue_call_from(platform, POLICY.department("planning").numbers[0], DEFAULT_CALLER)
    platform.hangup(unrecorded)
    kept, kept_recording = completed_call(platform)
    place(client, people, kept_recording)
    keys = vault(services.settings.number_key)
    digest = keys.lookup_hash(DEFAULT_CALLER)

    def run(days: int):
        return RetentionRun(services.sessions, simulator, now=utcnow() + timedelta(days=days)).run()

    assert run(100).numbers_erased == 0  # retention (130 days) not over yet
    summary = run(131)
    assert (summary.destroyed, summary.held, summary.numbers_erased) == (1, 1, 2)
    for call_sid in (recorded, unrecorded):
        erased = call_row(services, call_sid)
        assert erased.number_erased_at is not None
        assert erased.caller_number_wrapped_key is None
        assert erased.caller_number_hash is None
        assert keys.reveal(erased) is None
        [event] = events(services, "call.number_erased", call_sid=call_sid)
        assert DIGITS not in str(event.detail)
    assert keys.reveal(call_row(services, kept)) == DEFAULT_CALLER  # its recording is held
    export = client.get(
        "/api/v1/subject-access", params={"phone": "07700 900123"}, headers=people.governance
    ).json()
    assert [c["call_sid"] for c in export["calls"]] == [kept]
    dump = raw_dump(database_url)
    assert dump.count(digest) == 1  # only the held call's hash is left anywhere
    assert run(131).numbers_erased == 0  # once only


def test_numbers_rekey_moves_every_call_to_the_new_key(
    run_cli, services, platform: Platform, database_url: str
) -> None:
    old_secret = services.settings.number_key
    call_sid, _ = completed_call(platform)
    new_secret = "a-new-number-key-for-the-rotation-test"
    refused = run_cli("numbers", "rekey", env={"CALLGUARD_NUMBER_KEY": new_secret})
    assert refused.exit_code == 2
    result = run_cli(
        "numbers",
        "rekey",
        env={"CALLGUARD_NUMBER_KEY": new_secret, "CALLGUARD_OLD_NUMBER_KEY": old_secret},
    )
    assert result.exit_code == 0, result.output
    assert "1 call number(s) re-keyed" in result.output
    stored = call_row(services, call_sid)
    new, old = NumberVault(new_secret), NumberVault(old_secret)
    assert stored.caller_number_key_id == new.key_id
    assert new.reveal(stored) == DEFAULT_CALLER
    assert old.reveal(stored) is None
    assert stored.caller_number_hash == new.lookup_hash(DEFAULT_CALLER)
    assert old.lookup_hash(DEFAULT_CALLER) not in raw_dump(database_url)
    [event] = events(services, "numbers.rekeyed")
    assert event.detail["calls"] == 1
