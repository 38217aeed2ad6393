"""Line numbers for policy errors (app/recording_policy/locate.py): every key, table and
array item of a TOML text is found at the line it is written on, whatever the spelling."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.recording_policy import DEFAULT_POLICY_PATH, PolicyError, load_policy_text
from app.recording_policy.locate import Loc, key_lines, line_of

FIXTURES = Path(__file__).parent.parent / "fixtures" / "policies"


def paths(value: Any, at: Loc = ()) -> list[Loc]:
    """Every path tomllib's data holds, as pydantic would name them."""
    found: list[Loc] = [at] if at else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*at, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*at, index))
    return found


def line(text: str, number: int) -> str:
    return text.splitlines()[number - 1]


def test_arrays_of_tables_number_each_element_and_its_keys() -> None:
    text = DEFAULT_POLICY_PATH.read_text()
    lines = key_lines(text)
    data = tomllib.loads(text)
    assert set(paths(data)) <= set(lines)
    headers = [n for n, t in enumerate(text.splitlines(), 1) if t == "[[departments]]"]
    for index, department in enumerate(data["departments"]):
        assert lines[("departments", index)] == headers[index]
        # `retention` is in several departments: each is found in its own block.
        if "retention" in department:
            at = lines[("departments", index, "retention")]
            assert line(text, at) == f'retention = "{department["retention"]}"'
            assert headers[index] < at < [*headers, 10**6][index + 1]
    assert lines[("departments",)] == headers[0]


@pytest.mark.parametrize("fixture", sorted(FIXTURES.glob("*.toml")), ids=lambda p: p.stem)
def test_every_path_of_every_fixture_is_found(fixture: Path) -> None:
    text = fixture.read_text()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        assert key_lines(text) == {}  # not followed: no lines rather than wrong ones
        return
    lines = key_lines(text)
    for path in paths(data):
        assert path in lines, path
        if isinstance(path[-1], str):
            assert path[-1] in line(text, lines[path]), path


TRICKY = """\
# [[departments]] in a comment is not a header; neither is retention = "x"
name = "a # not a comment [[departments]]"
"quoted key" = 'literal # [x]'
"ret\\u0065ntion" = "P1D"
notes = \"\"\"
[[departments]]
retention = "P13OD"
a "quote" and two ""quotes"" inside\"\"\"\"
lit = '''
'x' ''y''
[[departments]]'''''
owner.contact.email = "o@example.org"  # a dotted key
when = 1979-05-27 07:32:00Z
nested = [[1, 2], [3, [4, 5]]]
numbers = [
  "+441632960010",  # first
  # a comment between items
  "+441632960011",
]
inline = [ { id = "a", retention = "P1D" },
           { id = "b", "retention" = "P2D", sub = { deep = true } } ]

[[departments]]
id = "front-desk"
retention = "P130D"

[departments.extra]
colour = "blue"

[[departments]]
  id   =   "benefits"
  retention="P2Y130D"
  [[departments.contacts]]
  email = "b@example.org"
  [[departments.contacts]]
  email = "c@example.org"

[settings . "odd key" ]
'x.y' = 1
"""


def test_tricky_spellings_are_located() -> None:
    lines = key_lines(TRICKY)
    data = tomllib.loads(TRICKY)
    assert set(paths(data)) <= set(lines)
    expected = {
        ("name",): 2,
        ("quoted key",): 3,
        ("retention",): 4,  # a quoted key with an escape is the same key as the bare one
        ("notes",): 5,
        ("lit",): 9,
        ("owner", "contact", "email"): 12,
        ("owner",): 12,
        ("when",): 13,
        ("nested", 1, 1, 0): 14,
        ("numbers", 0): 16,
        ("numbers", 1): 18,
        ("inline", 0, "retention"): 20,
        ("inline", 1): 21,
        ("inline", 1, "retention"): 21,
        ("inline", 1, "sub", "deep"): 21,
        ("departments",): 23,
        ("departments", 0): 23,
        ("departments", 0, "retention"): 25,
        ("departments", 0, "extra"): 27,
        ("departments", 0, "extra", "colour"): 28,
        ("departments", 1): 30,
        ("departments", 1, "id"): 31,
        ("departments", 1, "retention"): 32,
        ("departments", 1, "contacts", 0, "email"): 34,
        ("departments", 1, "contacts", 1): 35,
        ("departments", 1, "contacts", 1, "email"): 36,
        ("settings", "odd key", "x.y"): 39,
    }
    assert {loc: lines.get(loc) for loc in expected} == expected
    # The strings' contents added no departments.
    assert len(data["departments"]) == 2
    assert ("departments", 2) not in lines


def test_crlf_line_endings() -> None:
    text = "a = 1\r\n\r\n[[d]]\r\nb = 'x'\r\n"
    assert key_lines(text) == {("a",): 1, ("d",): 3, ("d", 0): 3, ("d", 0, "b"): 4}


def test_text_it_cannot_follow_gives_no_lines() -> None:
    assert key_lines("a = = 1") == {}
    assert key_lines('a = "unterminated') == {}
    assert key_lines("[[d]\n") == {}


def test_line_of_falls_back_to_the_nearest_written_ancestor() -> None:
    lines = key_lines("[[departments]]\nid = 'a'\n")
    assert line_of(lines, ("departments", 0, "email")) == 1
    assert line_of(lines, ("departments", 0, "id")) == 2
    assert line_of(lines, ("main_numbers",)) is None
    assert line_of(lines, ()) is None


def test_inline_table_departments_get_lines_in_messages() -> None:
    text = DEFAULT_POLICY_PATH.read_text().split("\n[[departments]]\n")[0] + (
        "\ndepartments = [\n"
        '  { id = "contact-harlow", name = "Contact Harlow", recorded = true,'
        ' retention = "P130D" },\n'
        '  { id = "revenues-and-benefits", name = "R", recorded = true, retention = "P13OD" },\n'
        "]\n"
    )
    with pytest.raises(PolicyError) as caught:
        load_policy_text(text, "policy.toml")
    number = text.splitlines().index(
        '  { id = "revenues-and-benefits", name = "R", recorded = true, retention = "P13OD" },'
    )
    assert str(caught.value) == (
        f'policy.toml:{number + 1}: departments[1] (id "revenues-and-benefits").retention:'
        " 'P13OD' is not an ISO-8601 duration such as P130D or P2Y130D"
    )


# --- generated documents: whatever the spelling, each path is at the line it is written on ---

_BARE = re.compile(r"[A-Za-z0-9_-]+")
keys = st.sampled_from(["id", "retention", "a-b_1", "x y", "dé", "ret.ention", "#", "[[d]]", "="])
# Every printable ASCII character, newlines and a non-ASCII letter: what strings may hold.
texts = st.text(st.sampled_from([*map(chr, range(32, 127)), "\n", "é"]), max_size=12)
scalars = st.one_of(texts, st.integers(-(10**6), 10**6), st.booleans())


@st.composite
def spelled_key(draw: st.DrawFn, key: str) -> str:
    options = [json.dumps(key, ensure_ascii=False)]
    if _BARE.fullmatch(key):
        options.append(key)
    if "'" not in key:
        options.append(f"'{key}'")
    return draw(st.sampled_from(options))


@st.composite
def spelled_scalar(draw: st.DrawFn, value: object) -> str:
    if not isinstance(value, str):
        return json.dumps(value)
    options = [json.dumps(value, ensure_ascii=False)]
    if "'" not in value and "\n" not in value:
        options.append(f"'{value}'")
    if "'" not in value:
        options.append(f"'''{value}'''")
    return draw(st.sampled_from(options))


tables = st.dictionaries(keys, scalars | st.lists(scalars, max_size=3), max_size=4)
documents = st.fixed_dictionaries(
    {"top": tables, "departments": st.lists(tables, max_size=3), "inline": st.lists(tables)}
)


@st.composite
def rendered(draw: st.DrawFn) -> tuple[str, dict[Loc, int]]:
    """A document written out in a drawn style, with the line each path is written on."""
    doc = draw(documents)
    out: list[str] = []
    where: dict[Loc, int] = {}

    def emit(text: str) -> int:
        out.append(text)
        return sum(part.count("\n") + 1 for part in out[:-1]) + 1

    def assign(at: Loc, key: str, value: object) -> None:
        spelled = draw(spelled_key(key))
        if isinstance(value, list) and draw(st.booleans()):  # one item a line
            where[(*at, key)] = emit(f"{spelled} = [  # items")
            for index, item in enumerate(value):
                where[(*at, key, index)] = emit(f"  {draw(spelled_scalar(item))},")
            emit("]")
        elif isinstance(value, list):
            items = [draw(spelled_scalar(item)) for item in value]
            number = emit(f"{spelled} = [{', '.join(items)}]")
            where[(*at, key)] = number
            for index in range(len(items)):  # an item after a multi-line string is lower down
                where[(*at, key, index)] = number + "".join(items[:index]).count("\n")
        else:
            where[(*at, key)] = emit(f"{spelled} = {draw(spelled_scalar(value))}")

    for key, value in doc["top"].items():
        assign((), key, value)
    if doc["inline"]:
        emit("inline = [")
        for index, table in enumerate(doc["inline"]):
            flat = {k: v for k, v in table.items() if not isinstance(v, list)}
            pairs = [f"{draw(spelled_key(k))} = {draw(spelled_scalar(v))}" for k, v in flat.items()]
            number = emit("  { " + ", ".join(pairs) + " },")
            where[("inline", index)] = number
            for n, k in enumerate(flat):
                where[("inline", index, k)] = number + "".join(pairs[:n]).count("\n")
        emit("]")
    for index, table in enumerate(doc["departments"]):
        header = draw(st.sampled_from(["[[departments]]", "[[ 'departments' ]]"]))
        where[("departments", index)] = emit(header)
        for key, value in table.items():
            assign(("departments", index), key, value)
    return "\n".join(out) + "\n", where


@settings(max_examples=200)
@given(rendered())
def test_generated_documents_are_located_exactly(case: tuple[str, dict[Loc, int]]) -> None:
    text, where = case
    data = tomllib.loads(text)  # the renderer writes valid TOML
    lines = key_lines(text)
    assert set(paths(data)) <= set(lines)
    assert {loc: lines[loc] for loc in where} == where
