"""The recording decision (P1-P7): every precedence row, then properties."""

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.recording_policy import (
    DEFAULT_POLICY_PATH,
    CallFacts,
    Decision,
    Department,
    DesiredState,
    FailSafe,
    OptOutAction,
    Policy,
    Reason,
    decide,
    load_policy_file,
)

OFF, PAUSED, RECORDING = DesiredState.OFF, DesiredState.PAUSED, DesiredState.RECORDING
R = Reason
DEFAULT = load_policy_file(DEFAULT_POLICY_PATH)
VERSION = 7

# Default-policy departments of each kind.
STOP = "contact-harlow"  # recorded, opt-out stops
ADVISE = "revenues-and-benefits"  # recorded, opt-out advises email
UNRECORDED = "planning"


def queued(department: str = STOP, **facts: bool) -> CallFacts:
    return CallFacts(department=department, queued=True, **facts)


WITH_POLICY = [
    # (facts, state, reasons)
    (queued(ended=True, non_recorded_line=True), OFF, (R.CALL_ENDED,)),
    (queued(non_recorded_line=True), OFF, (R.NON_RECORDED_LINE,)),
    (queued(ADVISE, non_recorded_line=True, opted_out=True), OFF, (R.NON_RECORDED_LINE,)),
    (CallFacts(), OFF, (R.NOT_YET_QUEUED,)),
    (CallFacts(department=STOP), OFF, (R.NOT_YET_QUEUED,)),
    (CallFacts(queued=True), OFF, (R.NOT_YET_QUEUED,)),
    (CallFacts(department=STOP, payment_in_progress=True), OFF, (R.NOT_YET_QUEUED,)),
    (queued("no-such-department"), OFF, (R.UNKNOWN_DEPARTMENT,)),
    (queued(UNRECORDED), OFF, (R.DEPARTMENT_NOT_RECORDED,)),
    # Nothing is recorded there, so there is nothing to pause.
    (queued(UNRECORDED, payment_in_progress=True), OFF, (R.DEPARTMENT_NOT_RECORDED,)),
    (queued(UNRECORDED, opted_out=True), OFF, (R.OPTED_OUT_STOP,)),
    (queued("no-such-department", opted_out=True), OFF, (R.OPTED_OUT_STOP,)),
    (queued(STOP, opted_out=True), OFF, (R.OPTED_OUT_STOP,)),
    # Stopped for an opt-out, then transferred to an advise_email department: still off.
    (queued(ADVISE, opted_out=True, opt_out_stopped=True), OFF, (R.OPTED_OUT_STOP,)),
    (queued(STOP, opted_out=True, payment_in_progress=True), OFF, (R.OPTED_OUT_STOP,)),
    (queued(STOP, payment_in_progress=True), PAUSED, (R.PAYMENT_IN_PROGRESS,)),
    (
        queued(ADVISE, opted_out=True, payment_in_progress=True),
        PAUSED,
        (R.PAYMENT_IN_PROGRESS, R.OPTED_OUT_ADVISE_EMAIL),
    ),
    (queued(ADVISE, opted_out=True), RECORDING, (R.DEPARTMENT_RECORDED, R.OPTED_OUT_ADVISE_EMAIL)),
    (queued(ADVISE), RECORDING, (R.DEPARTMENT_RECORDED,)),
    (queued(STOP), RECORDING, (R.DEPARTMENT_RECORDED,)),
]


@pytest.mark.parametrize("fail_safe", list(FailSafe))
@pytest.mark.parametrize(("facts", "state", "reasons"), WITH_POLICY)
def test_with_a_policy(
    facts: CallFacts, state: DesiredState, reasons: tuple[Reason, ...], fail_safe: FailSafe
) -> None:
    # With a valid policy the fail-safe setting changes nothing.
    assert decide(facts, DEFAULT, VERSION, fail_safe) == Decision(state, reasons, VERSION)


WITHOUT_POLICY = [
    # (facts, fail_safe, state, reasons)
    (queued(ended=True), FailSafe.RECORD, OFF, (R.CALL_ENDED,)),
    (queued(non_recorded_line=True), FailSafe.RECORD, OFF, (R.NON_RECORDED_LINE,)),
    (CallFacts(), FailSafe.RECORD, OFF, (R.NOT_YET_QUEUED,)),
    (CallFacts(department=STOP), FailSafe.RECORD, OFF, (R.NOT_YET_QUEUED,)),
    (queued(opted_out=True), FailSafe.RECORD, OFF, (R.OPTED_OUT_STOP, R.NO_POLICY)),
    # The action is unknown without a policy, so even an advise_email department stops.
    (queued(ADVISE, opted_out=True), FailSafe.RECORD, OFF, (R.OPTED_OUT_STOP, R.NO_POLICY)),
    (
        queued(payment_in_progress=True),
        FailSafe.RECORD,
        PAUSED,
        (R.PAYMENT_IN_PROGRESS, R.NO_POLICY),
    ),
    (
        queued(payment_in_progress=True),
        FailSafe.NO_RECORD,
        PAUSED,
        (R.PAYMENT_IN_PROGRESS, R.NO_POLICY),
    ),
    (queued(), FailSafe.NO_RECORD, OFF, (R.FAIL_SAFE_NO_RECORD, R.NO_POLICY)),
    (queued(UNRECORDED), FailSafe.NO_RECORD, OFF, (R.FAIL_SAFE_NO_RECORD, R.NO_POLICY)),
    (queued(), FailSafe.RECORD, RECORDING, (R.FAIL_SAFE_RECORD, R.NO_POLICY)),
    # The fail-safe answer queues a call with no known department: the fail-safe decides.
    (CallFacts(queued=True), FailSafe.RECORD, RECORDING, (R.FAIL_SAFE_RECORD, R.NO_POLICY)),
    (queued(ADVISE, opt_out_stopped=True), FailSafe.RECORD, OFF, (R.OPTED_OUT_STOP,)),
    (CallFacts(queued=True), FailSafe.NO_RECORD, OFF, (R.FAIL_SAFE_NO_RECORD, R.NO_POLICY)),
    # Without a policy no department is known to be unrecorded.
    (queued(UNRECORDED), FailSafe.RECORD, RECORDING, (R.FAIL_SAFE_RECORD, R.NO_POLICY)),
]


@pytest.mark.parametrize(("facts", "fail_safe", "state", "reasons"), WITHOUT_POLICY)
def test_without_a_policy(
    facts: CallFacts, fail_safe: FailSafe, state: DesiredState, reasons: tuple[Reason, ...]
) -> None:
    assert decide(facts, None, None, fail_safe) == Decision(state, reasons, None)


def test_policy_version_is_echoed() -> None:
    assert decide(queued(), DEFAULT, 42, FailSafe.NO_RECORD).policy_version == 42
    assert decide(CallFacts(ended=True), DEFAULT, 3, FailSafe.NO_RECORD).policy_version == 3


def test_enum_values_are_the_documented_codes() -> None:
    assert [r.value for r in Reason] == [
        "call_ended",
        "non_recorded_line",
        "opted_out_stop",
        "opted_out_advise_email",
        "payment_in_progress",
        "department_recorded",
        "department_not_recorded",
        "unknown_department",
        "not_yet_queued",
        "no_policy",
        "fail_safe_no_record",
        "fail_safe_record",
    ]
    assert [s.value for s in DesiredState] == ["recording", "paused", "off"]
    assert [f.value for f in FailSafe] == ["no-record", "record"]


# --- properties ---

# The state each reason leads to when it comes first.
DECISIVE = {
    R.CALL_ENDED: OFF,
    R.NON_RECORDED_LINE: OFF,
    R.OPTED_OUT_STOP: OFF,
    R.PAYMENT_IN_PROGRESS: PAUSED,
    R.DEPARTMENT_RECORDED: RECORDING,
    R.DEPARTMENT_NOT_RECORDED: OFF,
    R.UNKNOWN_DEPARTMENT: OFF,
    R.NOT_YET_QUEUED: OFF,
    R.FAIL_SAFE_NO_RECORD: OFF,
    R.FAIL_SAFE_RECORD: RECORDING,
}


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    """Small random policies; numbers and digits are unique by construction."""
    count = draw(st.integers(1, 6))
    digits = draw(st.permutations("012345678"))
    departments = []
    for i in range(count):
        action = draw(st.sampled_from(OptOutAction))
        departments.append(
            Department(
                id=f"dept-{i}",
                name=f"Department {i}",
                recorded=draw(st.booleans()),
                numbers=(f"+4416329601{i:02d}",),
                ivr_digit=draw(st.sampled_from([None, digits[i]])),
                retention=draw(st.sampled_from(["P130D", "P2Y130D", "P1M"])),
                opt_out=action,
                email="x@example.gov.uk" if action is OptOutAction.ADVISE_EMAIL else None,
            )
        )
    return Policy(
        name="Random",
        opt_out_digit="9",
        main_numbers=("+441632960655",),
        payment_line="+441632960600",
        non_recorded_line="+441632960699",
        fallback_department="dept-0",
        departments=tuple(departments),
    )


@st.composite
def cases(draw: st.DrawFn) -> tuple[CallFacts, Policy | None]:
    policy = draw(st.one_of(st.none(), st.just(DEFAULT), policies()))
    known = [d.id for d in (policy or DEFAULT).departments]
    department = draw(st.one_of(st.none(), st.sampled_from(known), st.text(max_size=12)))
    facts = draw(
        st.builds(
            CallFacts,
            department=st.just(department),
            queued=st.booleans(),
            payment_in_progress=st.booleans(),
            opted_out=st.booleans(),
            non_recorded_line=st.booleans(),
            ended=st.booleans(),
            opt_out_stopped=st.booleans(),
        )
    )
    return facts, policy


fail_safes = st.sampled_from(FailSafe)
versions = st.one_of(st.none(), st.integers(1, 10_000))


@given(cases(), versions, fail_safes)
def test_reasons_are_consistent_with_the_state(
    case: tuple[CallFacts, Policy | None], version: int | None, fail_safe: FailSafe
) -> None:
    facts, policy = case
    decision = decide(facts, policy, version, fail_safe)
    assert decision.reasons
    assert DECISIVE[decision.reasons[0]] is decision.state
    assert len(set(decision.reasons)) == len(decision.reasons)
    assert decision.policy_version == version
    assert (R.NO_POLICY in decision.reasons) <= (policy is None)
    # Decisions are pure: same inputs, same answer.
    assert decide(replace(facts), policy, version, fail_safe) == decision


@given(cases(), fail_safes)
def test_never_records_what_must_not_be_recorded(
    case: tuple[CallFacts, Policy | None], fail_safe: FailSafe
) -> None:
    facts, policy = case
    state = decide(facts, policy, 1, fail_safe).state
    if facts.payment_in_progress:
        assert state is not RECORDING  # P2
    if facts.non_recorded_line or facts.ended or facts.opt_out_stopped:
        assert state is OFF  # P4, and a stop opt-out stays a stop (sticky)
    if not facts.queued or (facts.department is None and policy is not None):
        assert state is OFF  # nothing before the notice and the opt-out offer
    if policy is None:
        if facts.opted_out or fail_safe is FailSafe.NO_RECORD:
            assert state is not RECORDING  # P7
        return
    department = policy.department(facts.department or "")
    if department is None or not department.recorded:
        assert state is OFF  # P1, P5
        return
    if facts.opted_out and department.opt_out is OptOutAction.STOP:
        assert state is OFF  # P3


@given(cases())
def test_fail_safe_matters_only_without_a_policy(case: tuple[CallFacts, Policy | None]) -> None:
    facts, policy = case
    record = decide(facts, policy, 1, FailSafe.RECORD)
    no_record = decide(facts, policy, 1, FailSafe.NO_RECORD)
    if policy is not None:
        assert record == no_record
    elif record != no_record:
        assert (record.state, no_record.state) == (RECORDING, OFF)


@given(cases(), fail_safes)
def test_advise_email_opt_out_keeps_recording_but_is_reported(
    case: tuple[CallFacts, Policy | None], fail_safe: FailSafe
) -> None:
    facts, policy = case
    if policy is None:
        return
    department = policy.department(facts.department or "")
    if department is None or department.opt_out is not OptOutAction.ADVISE_EMAIL:
        return
    opted = decide(replace(facts, opted_out=True), policy, 1, fail_safe)
    plain = decide(replace(facts, opted_out=False), policy, 1, fail_safe)
    assert opted.state is plain.state
    assert (R.OPTED_OUT_ADVISE_EMAIL in opted.reasons) == (opted.state is not OFF)
