"""The recording policy (P8): a validated, immutable model loaded from TOML."""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    StrictBool,
    ValidationError,
    model_validator,
)

from .duration import IsoDuration, parse_duration
from .locate import Loc, key_lines, line_of

DEFAULT_POLICY_PATH: Path = Path(__file__).with_name("default_policy.toml")

# ASCII classes on purpose: \d would also accept other scripts' digits.
_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_DIGIT = re.compile(r"[0-9]")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class OptOutAction(StrEnum):
    STOP = "stop"
    ADVISE_EMAIL = "advise_email"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a policy: the field (with the department's id when it has a
    readable one), what is wrong, and the file's line when the policy came from text."""

    where: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"

    def located(self, source: str) -> str:
        # "file:line: " as compilers write it, so editors and terminals can jump there.
        at = source if self.line is None else f"{source}:{self.line}"
        return f"{at}: {self}"


class PolicyError(ValueError):
    """A policy that cannot be used; one line per problem: ``<source>[:<line>]: <field>:
    <problem>``."""

    def __init__(self, source: str, problems: tuple[Problem, ...]) -> None:
        super().__init__("\n".join(p.located(source) for p in problems))
        self.source = source
        self.problems = problems


class _Problems(ValueError):
    """Cross-field problems, each with a path relative to the model that found it.

    Pydantic keeps the raised exception in the error's ctx, so the paths survive
    into PolicyError instead of being flattened into one message.
    """

    def __init__(self, problems: list[tuple[Loc, str]]) -> None:
        super().__init__("; ".join(f"{_path(loc)}: {problem}" for loc, problem in problems))
        self.problems = problems


def _matching(pattern: re.Pattern[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"{value!r} is not {what}")
        return value

    return AfterValidator(check)


def _non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _retention(value: str) -> str:
    # Stored canonically (P2W becomes P14D) so equal periods hash equally.
    return str(parse_duration(value))


Slug = Annotated[str, _matching(_SLUG, "a lower-case slug such as revenues-and-benefits")]
E164 = Annotated[str, _matching(_E164, "an E.164 number such as +441632960655")]
Digit = Annotated[str, _matching(_DIGIT, "a single keypad digit 0-9")]
Email = Annotated[str, _matching(_EMAIL, "an email address")]
Text = Annotated[str, AfterValidator(_non_empty)]
Retention = Annotated[str, AfterValidator(_retention)]


class Department(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Slug
    name: Text
    recorded: StrictBool  # strict: "no" in a TOML string must not read as True
    numbers: tuple[E164, ...] = ()
    ivr_digit: Digit | None = None
    retention: Retention
    opt_out: OptOutAction = OptOutAction.STOP
    email: Email | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_retention(cls, data: Any) -> Any:
        # Unrecorded departments still keep the caller's number for a while (R6);
        # a recorded one must state its retention explicitly.
        # (Also when `recorded` itself is invalid, so that is the one error shown.)
        missing = isinstance(data, Mapping) and "retention" not in data
        if missing and data.get("recorded") is not True:
            return {**data, "retention": "P130D"}
        return data

    @model_validator(mode="after")
    def _email_for_advice(self) -> Department:
        if self.opt_out is OptOutAction.ADVISE_EMAIL and self.email is None:
            raise _Problems([(("email",), "required when opt_out is advise_email")])
        return self

    @property
    def retention_duration(self) -> IsoDuration:
        return parse_duration(self.retention)


class Policy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Text
    opt_out_digit: Digit
    main_numbers: tuple[E164, ...]
    payment_line: E164
    non_recorded_line: E164
    fallback_department: str
    departments: tuple[Department, ...]

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        problems = [*self._check_lines(), *self._check_departments()]
        if self.department(self.fallback_department) is None:
            problems.append(
                (
                    ("fallback_department",),
                    f"{self.fallback_department!r} is not a defined department",
                )
            )
        if problems:
            raise _Problems(problems)
        return self

    def _check_lines(self) -> Iterable[tuple[Loc, str]]:
        if not self.main_numbers:
            yield ("main_numbers",), "at least one number is required"
        if not self.departments:
            yield ("departments",), "at least one department is required"
        seen: set[str] = set()
        for i, number in enumerate(self.main_numbers):
            if number in seen:
                yield ("main_numbers", i), f"{number} is listed twice"
            seen.add(number)
        for field in ("payment_line", "non_recorded_line"):
            number = getattr(self, field)
            if number in seen:
                yield (field,), f"{number} is already a main number or the payment line"
            seen.add(number)

    def _check_departments(self) -> Iterable[tuple[Loc, str]]:
        lines = {n: "a main number" for n in self.main_numbers}
        lines[self.payment_line] = "the payment line"
        lines[self.non_recorded_line] = "the non-recorded line"
        ids: dict[str, int] = {}
        digits: dict[str, int] = {}
        owners: dict[str, int] = {}
        # The other department of a clash, named as the message's own subject is.
        other = {i: _department(i, d.id) for i, d in enumerate(self.departments)}
        for i, dept in enumerate(self.departments):
            at = ("departments", i)
            if dept.id in ids:
                yield (*at, "id"), f"{dept.id!r} is already used by {other[ids[dept.id]]}"
            ids.setdefault(dept.id, i)
            digit = dept.ivr_digit
            if digit is not None:
                if digit == self.opt_out_digit:
                    yield (*at, "ivr_digit"), f"{digit!r} is the opt_out_digit"
                elif (j := digits.get(digit)) is not None:
                    yield (*at, "ivr_digit"), f"{digit!r} is already used by {other[j]}"
                digits.setdefault(digit, i)
            for k, number in enumerate(dept.numbers):
                if number in lines:
                    yield (*at, "numbers", k), f"{number} is {lines[number]}"
                elif (j := owners.get(number)) is not None:
                    owner = "this department" if j == i else other[j]
                    yield (*at, "numbers", k), f"{number} already belongs to {owner}"
                owners.setdefault(number, i)

    def department(self, id: str) -> Department | None:
        return next((d for d in self.departments if d.id == id), None)

    def department_for_number(self, number: str) -> Department | None:
        return next((d for d in self.departments if number in d.numbers), None)

    def department_for_digit(self, digit: str) -> Department | None:
        return next((d for d in self.departments if d.ivr_digit == digit), None)

    def is_main_number(self, number: str) -> bool:
        return number in self.main_numbers

    def menu(self) -> tuple[Department, ...]:
        listed = [d for d in self.departments if d.ivr_digit is not None]
        return tuple(sorted(listed, key=lambda d: d.ivr_digit or ""))

    def to_public_dict(self) -> dict[str, object]:
        """The ``GET /api/v1/policy`` shape without ``version`` (the caller adds it)."""
        return self.model_dump(mode="json")

    def content_hash(self) -> str:
        # Hash the parsed model, not the file: comments, whitespace and key order
        # in the TOML must not create a new policy version.
        canonical = json.dumps(
            self.to_public_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _path(loc: Loc) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")


def _department(index: int, id: object) -> str:
    """``departments[1] (id "benefits")``: the index alone is hard to count to in a long
    file. An id that is not short printable text is left out rather than echoed."""
    readable = isinstance(id, str) and 0 < len(id) <= 64 and id.isprintable()
    return f"departments[{index}]" + (
        f" (id {json.dumps(id, ensure_ascii=False)})" if readable else ""
    )


def _where(loc: Loc, data: Mapping[str, Any]) -> str:
    match loc:
        case ("departments", int(index), *rest):
            departments = data.get("departments")
            found = departments[index] if isinstance(departments, list | tuple) else None
            id = found.get("id") if isinstance(found, Mapping) else None
            return _department(index, id) + "".join(
                f"[{part}]" if isinstance(part, int) else f".{part}" for part in rest
            )
    return _path(loc) or "(top level)"


# Pydantic's wording for the mistakes an officer editing the file makes most.
_PLAIN = {"missing": "required", "extra_forbidden": "not a known field (check the spelling)"}


def _describe(
    error: ValidationError, data: Mapping[str, Any], lines: Mapping[Loc, int]
) -> tuple[Problem, ...]:
    found: list[tuple[Loc, str]] = []
    for item in error.errors():
        loc = tuple(item["loc"])
        cause = item.get("ctx", {}).get("error")
        if isinstance(cause, _Problems):
            found.extend(((*loc, *sub), msg) for sub, msg in cause.problems)
        else:
            found.append(
                (loc, _PLAIN.get(item["type"]) or item["msg"].removeprefix("Value error, "))
            )
    return tuple(Problem(_where(loc, data), msg, line_of(lines, loc)) for loc, msg in found)


# tomllib puts the position in the message only: "... (at line 5, column 3)".
_TOML_LINE = re.compile(r"\(at line ([0-9]+), column [0-9]+\)")


def _validate(data: Mapping[str, Any], source: str, text: str | None) -> Policy:
    try:
        return Policy.model_validate(data)
    except ValidationError as error:
        # Lines are looked for only once a file is refused: a valid one never pays for it.
        lines = key_lines(text) if text is not None else {}
        raise PolicyError(source, _describe(error, data, lines)) from error


def load_policy_data(data: Mapping[str, Any], source: str) -> Policy:
    """Validate already-parsed policy data (e.g. a stored version's public dict)."""
    return _validate(data, source, None)


def load_policy_text(text: str, source: str) -> Policy:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        at = _TOML_LINE.search(str(error))
        line = int(at.group(1)) if at else None
        raise PolicyError(source, (Problem("invalid TOML", str(error), line),)) from error
    return _validate(data, source, text)


def load_policy_file(path: str | Path) -> Policy:
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise PolicyError(
            source, (Problem("cannot read", str(error.strerror or error)),)
        ) from error
    except UnicodeDecodeError as error:
        problem = Problem("cannot read", f"not UTF-8 text ({error.reason})")
        raise PolicyError(source, (problem,)) from error
    return load_policy_text(text, source)
