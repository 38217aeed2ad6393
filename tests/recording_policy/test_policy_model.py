"""Policy files (P8): the bundled default, validation messages, hashing, look-ups."""

import hashlib
import json
import tomllib
from pathlib import Path

import pytest

from app.recording_policy import (
    DEFAULT_POLICY_PATH,
    Department,
    OptOutAction,
    Policy,
    PolicyError,
    load_policy_data,
    load_policy_file,
    load_policy_text,
    parse_duration,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "policies"
GOOD = FIXTURES / "good-minimal.toml"

NOTICE_DEPARTMENTS = {
    "contact-harlow": ("Contact Harlow", "P130D"),
    "revenues-and-benefits": ("Revenues and Benefits", "P2Y130D"),
    "home-ownership": ("Home Ownership", "P130D"),
    "housing-management": ("Housing Management", "P130D"),
    "housing-operations": ("Housing Operations", "P130D"),
    "supported-housing": ("Supported Housing", "P130D"),
}


@pytest.fixture(scope="module")
def default() -> Policy:
    return load_policy_file(DEFAULT_POLICY_PATH)


# --- the bundled default policy (P1, R1) ---


def test_default_records_exactly_the_notice_departments(default: Policy) -> None:
    recorded = {d.id: (d.name, d.retention) for d in default.departments if d.recorded}
    assert recorded == NOTICE_DEPARTMENTS


def test_default_has_unlisted_departments_that_are_not_recorded(default: Policy) -> None:
    unlisted = [d for d in default.departments if d.id not in NOTICE_DEPARTMENTS]
    assert len(unlisted) >= 3
    assert not any(d.recorded for d in unlisted)
    planning = default.department("planning")
    assert planning is not None
    assert not planning.recorded


def test_default_lines_and_menu(default: Policy) -> None:
    assert default.name == "Harlow Council call recording policy"
    assert default.opt_out_digit == "9"
    assert default.main_numbers == ("+441632960655",)
    assert default.payment_line == "+441632960600"
    assert default.non_recorded_line == "+441632960699"
    assert default.fallback_department == "contact-harlow"
    assert [d.ivr_digit for d in default.menu()] == list("12345678")
    assert default.is_main_number("+441632960655")
    assert not default.is_main_number("+441632960600")


def test_default_opt_out_actions(default: Policy) -> None:
    advise = {d.id: d.email for d in default.departments if d.opt_out is OptOutAction.ADVISE_EMAIL}
    assert advise == {
        "revenues-and-benefits": "revenues@harlow.gov.uk",
        "home-ownership": "homeownership@harlow.gov.uk",
    }


def test_public_dict_has_the_contract_shape_and_round_trips(default: Policy) -> None:
    public = default.to_public_dict()
    assert "version" not in public  # the API adds it
    assert set(public) == {
        "name",
        "opt_out_digit",
        "main_numbers",
        "payment_line",
        "non_recorded_line",
        "fallback_department",
        "departments",
    }
    departments = public["departments"]
    assert isinstance(departments, list)
    benefits = next(d for d in departments if d["id"] == "revenues-and-benefits")
    assert benefits == {
        "id": "revenues-and-benefits",
        "name": "Revenues and Benefits",
        "recorded": True,
        "numbers": ["+441632960020", "+441632960021"],
        "ivr_digit": "2",
        "retention": "P2Y130D",
        "opt_out": "advise_email",
        "email": "revenues@harlow.gov.uk",
    }
    assert Policy.model_validate(public) == default
    assert Policy.model_validate(public).content_hash() == default.content_hash()


# --- look-ups ---


def test_lookups() -> None:
    policy = load_policy_file(GOOD)
    assert policy.department("benefits") is policy.departments[1]
    assert policy.department("nope") is None
    assert policy.department_for_number("+441632960020") is policy.departments[1]
    assert policy.department_for_number("+441632960655") is None  # a main number
    assert policy.department_for_digit("1") is policy.departments[0]
    assert policy.department_for_digit("9") is None
    assert [d.id for d in policy.menu()] == ["front-desk", "benefits"]


def test_menu_is_ordered_by_digit_not_file_order() -> None:
    text = GOOD.read_text().replace('ivr_digit = "1"', 'ivr_digit = "5"')
    assert [d.id for d in load_policy_text(text, "t").menu()] == ["benefits", "front-desk"]


def test_unrecorded_department_retention_defaults_and_durations_are_canonical() -> None:
    parks = Department.model_validate({"id": "parks", "name": "Parks", "recorded": False})
    assert parks.retention == "P130D"
    assert parks.opt_out is OptOutAction.STOP
    weeks = Department.model_validate(
        {"id": "a", "name": "A", "recorded": True, "retention": "P2W"}
    )
    assert weeks.retention == "P14D"
    assert weeks.retention_duration == parse_duration("P14D")


# --- refused files name the source and the field (P8) ---


# Each fixture differs from good-minimal.toml in one field: (line, message).
BAD_FILES = {
    "bad-retention": (
        23,
        "departments[1] (id \"benefits\").retention: 'P13OD' is not an ISO-8601 duration such"
        " as P130D or P2Y130D",
    ),
    # A missing field is reported at its department's [[departments]] line.
    "bad-missing-email": (
        17,
        'departments[1] (id "benefits").email: required when opt_out is advise_email',
    ),
    "bad-duplicate-ivr-digit": (
        22,
        "departments[1] (id \"benefits\").ivr_digit: '1' is already used by departments[0]"
        ' (id "front-desk")',
    ),
    "bad-ivr-digit-is-opt-out": (
        22,
        "departments[1] (id \"benefits\").ivr_digit: '9' is the opt_out_digit",
    ),
    "bad-duplicate-department-id": (
        28,
        "departments[2] (id \"benefits\").id: 'benefits' is already used by departments[1]",
    ),
    "bad-number-in-two-departments": (
        31,
        'departments[2] (id "parks").numbers[0]: +441632960010 already belongs to'
        ' departments[0] (id "front-desk")',
    ),
    "bad-number-is-payment-line": (
        31,
        'departments[2] (id "parks").numbers[0]: +441632960600 is the payment line',
    ),
    "bad-unknown-fallback": (7, "fallback_department: 'reception' is not a defined department"),
    "bad-unknown-key": (32, 'departments[2] (id "parks").colour: not a known field'),
    "bad-unknown-top-level-key": (4, "record_everything: not a known field"),
    "bad-invalid-toml": (14, "invalid TOML: "),
    "bad-e164": (5, "payment_line: '01279 446600' is not an E.164 number"),
    "bad-recorded-without-retention": (9, 'departments[0] (id "front-desk").retention: required'),
    "bad-recorded-not-boolean": (
        30,
        'departments[2] (id "parks").recorded: Input should be a valid boolean',
    ),
    "bad-opt-out-action": (
        24,
        "departments[1] (id \"benefits\").opt_out: Input should be 'stop' or 'advise_email'",
    ),
    "bad-opt-out-digit": (3, "opt_out_digit: '99' is not a single keypad digit"),
}


@pytest.mark.parametrize(("fixture", "expected"), BAD_FILES.items())
def test_bad_file_is_refused_naming_source_line_and_field(
    fixture: str, expected: tuple[int, str]
) -> None:
    line, message = expected
    path = FIXTURES / f"{fixture}.toml"
    with pytest.raises(PolicyError) as caught:
        load_policy_file(path)
    text = str(caught.value)
    assert text.startswith(f"{path}:{line}: {message}")
    # One problem per file, so a message never blames a field that is fine.
    assert "\n" not in text
    assert caught.value.source == str(path)
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].line == line


def test_every_bad_fixture_is_in_the_table() -> None:
    assert {p.stem for p in FIXTURES.glob("bad-*.toml")} == set(BAD_FILES)


def test_several_problems_are_all_reported_one_line_each() -> None:
    text = (
        GOOD.read_text()
        .replace('opt_out_digit = "9"', 'opt_out_digit = "x"')
        .replace('retention = "P2Y130D"', 'retention = "forever"')
        .replace('numbers = ["+441632960010"]', 'numbers = ["+44 1279 446010"]')
    )
    with pytest.raises(PolicyError) as caught:
        load_policy_text(text, "policy.toml")
    assert [(p.line, str(p)) for p in caught.value.problems] == [
        (3, "opt_out_digit: 'x' is not a single keypad digit 0-9"),
        (
            13,
            "departments[0] (id \"front-desk\").numbers[0]: '+44 1279 446010' is not an E.164"
            " number such as +441632960655",
        ),
        (
            23,
            "departments[1] (id \"benefits\").retention: 'forever' is not an ISO-8601 duration"
            " such as P130D or P2Y130D",
        ),
    ]
    assert str(caught.value).splitlines() == [
        f"policy.toml:{p.line}: {p}" for p in caught.value.problems
    ]


def test_a_key_in_several_departments_is_located_in_the_right_one() -> None:
    # Every department has `retention` (and `name`): the line is the erring one's.
    text = GOOD.read_text().replace('name = "Parks"', 'name = "  "')
    with pytest.raises(PolicyError) as caught:
        load_policy_text(text, "p.toml")
    assert str(caught.value) == 'p.toml:29: departments[2] (id "parks").name: must not be empty'
    assert text.splitlines()[28] == 'name = "  "'


def test_a_department_without_a_readable_id_is_named_by_index_alone() -> None:
    base = GOOD.read_text()
    for old, new in [
        ('id = "parks"', "id = 7"),  # not text
        ('id = "parks"\n', ""),  # absent
        ('id = "parks"', 'id = "par\\u0007ks"'),  # a control character
        ('id = "parks"', f'id = "{"p" * 65}"'),  # too long to help
    ]:
        text = base.replace(old, new, 1).replace('name = "Parks"', 'name = ""')
        with pytest.raises(PolicyError) as caught:
            load_policy_text(text, "p.toml")
        assert "departments[2].name: must not be empty" in str(caught.value), new


def test_an_invalid_but_readable_id_is_still_shown_escaped() -> None:
    text = GOOD.read_text().replace('id = "parks"', 'id = "Parks \\"Dept\\""')
    with pytest.raises(PolicyError) as caught:
        load_policy_text(text, "p.toml")
    assert str(caught.value).startswith(
        'p.toml:28: departments[2] (id "Parks \\"Dept\\"").id: \'Parks "Dept"\' is not'
    )


def test_policy_data_without_text_has_ids_but_no_lines() -> None:
    data = tomllib.loads(GOOD.read_text().replace('retention = "P2Y130D"', 'retention = "x"'))
    with pytest.raises(PolicyError) as caught:
        load_policy_data(data, "policy version 3")
    assert str(caught.value).startswith(
        'policy version 3: departments[1] (id "benefits").retention'
    )
    assert caught.value.problems[0].line is None


def test_a_missing_top_level_key_has_no_line() -> None:
    text = GOOD.read_text().replace('payment_line = "+441632960600"\n', "")
    with pytest.raises(PolicyError) as caught:
        load_policy_text(text, "p.toml")
    assert str(caught.value) == "p.toml: payment_line: required"


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(PolicyError, match=r"nope\.toml: cannot read: "):
        load_policy_file(missing)
    with pytest.raises(PolicyError, match=r"^relative/nope\.toml: cannot read: "):
        load_policy_file("relative/nope.toml")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('main_numbers = ["+441632960655"]', "main_numbers = []", "4: main_numbers: at least one"),
        (
            'main_numbers = ["+441632960655"]',
            'main_numbers = ["+441632960655", "+441632960655"]',
            "4: main_numbers[1]: +441632960655 is listed twice",
        ),
        (
            'non_recorded_line = "+441632960699"',
            'non_recorded_line = "+441632960600"',
            "6: non_recorded_line: +441632960600 is already",
        ),
        (
            'numbers = ["+441632960020"]',
            'numbers = ["+441632960655"]',
            '21: departments[1] (id "benefits").numbers[0]: +441632960655 is a main number',
        ),
        (
            'numbers = ["+441632960020"]',
            'numbers = ["+441632960020", "+441632960020"]',
            '21: departments[1] (id "benefits").numbers[1]: +441632960020 already belongs to'
            " this department",
        ),
        (
            'id = "parks"',
            'id = "Parks Dept"',
            "28: departments[2] (id \"Parks Dept\").id: 'Parks Dept' is not a lower-case",
        ),
        (
            'name = "Parks"',
            'name = "  "',
            '29: departments[2] (id "parks").name: must not be empty',
        ),
        (
            "email = ",
            'email = "not-an-address"\nx = ',
            "25: departments[1] (id \"benefits\").email: 'not-an-address'",
        ),
        (
            'ivr_digit = "1"',
            'ivr_digit = "#"',
            "14: departments[0] (id \"front-desk\").ivr_digit: '#' is not a single",
        ),
        (
            'ivr_digit = "1"',
            "ivr_digit = 1",
            '14: departments[0] (id "front-desk").ivr_digit: Input should be',
        ),
    ],
)
def test_more_refusals(old: str, new: str, message: str) -> None:
    text = GOOD.read_text()
    assert old in text
    with pytest.raises(PolicyError) as caught:
        load_policy_text(text.replace(old, new, 1), "p.toml")
    assert f"p.toml:{message}" in str(caught.value)


def test_no_departments_is_refused() -> None:
    text = GOOD.read_text().split("[[departments]]")[0] + "departments = []\n"
    with pytest.raises(PolicyError, match="departments: at least one department is required"):
        load_policy_text(text, "p.toml")


# --- content hash: one version per meaning, not per spelling ---


def test_hash_ignores_comments_whitespace_and_key_order() -> None:
    text = GOOD.read_text()
    header, *departments = text.split("[[departments]]")
    header_lines = [line for line in header.splitlines() if line and not line.startswith("#")]
    respelled = (
        "# reordered, commented, re-spaced\n"
        + "\n".join(reversed(header_lines))
        + "\n\n"
        + "".join(
            "[[departments]]\n"
            + "\n".join(reversed([line for line in block.splitlines() if line.strip()]))
            + "   # trailing comment\n\n"
            for block in departments
        )
    )
    assert respelled != text
    assert load_policy_text(respelled, "b").content_hash() == load_policy_file(GOOD).content_hash()


def test_hash_ignores_spelling_of_defaults() -> None:
    base = load_policy_file(GOOD)
    explicit = GOOD.read_text().replace(
        "recorded = false\nnumbers = []", 'recorded = false\nnumbers = []\nretention = "P130D"'
    )
    assert explicit != GOOD.read_text()
    assert load_policy_text(explicit, "e").content_hash() == base.content_hash()


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('retention = "P2Y130D"', 'retention = "P2Y131D"'),
        ("recorded = false", 'recorded = true\nretention = "P130D"'),
        ('opt_out_digit = "9"', 'opt_out_digit = "0"'),
        ('name = "Parks"', 'name = "Parks and Open Spaces"'),
    ],
)
def test_hash_changes_when_a_value_changes(old: str, new: str) -> None:
    text = GOOD.read_text()
    changed = load_policy_text(text.replace(old, new, 1), "c")
    assert changed.content_hash() != load_policy_file(GOOD).content_hash()
    assert len(changed.content_hash()) == 64


def test_hash_is_sha256_of_sorted_compact_json() -> None:
    # Pinned so that a stored version's hash can be recomputed without this code.
    policy = load_policy_file(GOOD)
    canonical = json.dumps(policy.to_public_dict(), sort_keys=True, separators=(",", ":"))
    assert policy.content_hash() == hashlib.sha256(canonical.encode()).hexdigest()


def test_models_are_frozen() -> None:
    policy = load_policy_file(GOOD)
    with pytest.raises(ValueError, match="frozen"):
        policy.name = "x"  # type: ignore[misc]
