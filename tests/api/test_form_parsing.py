"""forms.parse_form is parse_qsl(body, keep_blank_values=True), field for field."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from hypothesis import given
from hypothesis import strategies as st

from app.platforms.twilio.forms import parse_form

# Bodies made mostly of the characters that matter to the parse, and some that do not.
BODIES = st.text(alphabet=st.sampled_from("&=+%2Fafz09 é;\x00"), max_size=40)
FIELDS = st.lists(st.tuples(st.text(max_size=8), st.text(max_size=12)), max_size=6)


@given(BODIES)
def test_any_body_parses_as_parse_qsl_parses_it(body: str) -> None:
    assert parse_form(body) == parse_qsl(body, keep_blank_values=True)


@given(FIELDS)
def test_encoded_forms_come_back(fields: list[tuple[str, str]]) -> None:
    body = urlencode(fields)
    assert parse_form(body) == parse_qsl(body, keep_blank_values=True)


def test_the_edges() -> None:
    for body in ("", "&", "a", "a=", "=b", "a=b=c", "a=%ZZ", "a=%C3", "+=+", "a=1&&b=2"):
        assert parse_form(body) == parse_qsl(body, keep_blank_values=True), body
