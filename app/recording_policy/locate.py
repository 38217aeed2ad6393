"""Where each key of a policy file is written: the line numbers in a refusal message.

tomllib reports no positions, so this walks the source text of a document tomllib has
already accepted and records the line of every key, table header and array item, by the
same path pydantic reports an error at: ``("departments", 1, "retention")``. Valid input
keeps it small: strings are skipped whole (a ``[[departments]]`` inside a string or a
comment is not a header), and anything it does not follow yields no lines at all rather
than a wrong one.
"""

from __future__ import annotations

import re
import tomllib
from bisect import bisect_right
from collections.abc import Mapping

Loc = tuple[str | int, ...]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_BASIC = re.compile(r'"(?:[^"\\\n]|\\.)*"')
_LITERAL = re.compile(r"'[^'\n]*'")
# A multi-line string may end with one or two quotes of its own before the closing three.
_ML_BASIC = re.compile(r'"""(?:[^"\\]|\\[\s\S]|"{1,2}(?!"))*"{3,5}')
_ML_LITERAL = re.compile(r"'''(?:[^']|'{1,2}(?!'))*'{3,5}")
_SCALAR = re.compile(r"[^\s,\]}#]+")  # numbers, booleans, dates and times
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_SPACED_TIME = re.compile(r" [0-9]{2}:")  # "1979-05-27 07:32:00": a space for the T


class _Unreadable(Exception):
    """The text is not TOML as this scanner follows it."""


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.lines: dict[Loc, int] = {}
        self._arrays: dict[Loc, int] = {}  # each [[array]] of tables: its last index
        self._starts = [0, *(m.end() for m in re.finditer("\n", text))]

    def scan(self) -> dict[Loc, int]:
        table: Loc = ()
        while self._skip_blank(newlines=True):
            if self.text.startswith("[[", self.pos):
                line = self._line()
                self.pos += 2
                table = self._array_table(self._key(), line)
                self._expect("]]")
            elif self.text.startswith("[", self.pos):
                line = self._line()
                self.pos += 1
                table = self._resolve(self._key(), line)
                self._expect("]")
            else:
                self._key_value(table)
            self._end_of_line()
        return self.lines

    # -- positions -----------------------------------------------------------------------

    def _line(self) -> int:
        return bisect_right(self._starts, self.pos)

    def _record(self, loc: Loc, line: int) -> None:
        # The first mention wins: an error about `departments` points at its first table.
        self.lines.setdefault(loc, line)

    # -- tables and keys -----------------------------------------------------------------

    def _resolve(self, keys: list[str], line: int) -> Loc:
        """The path of a [table] header: a name that is an array of tables means its
        newest element, as in TOML."""
        loc: Loc = ()
        for key in keys:
            loc = (*loc, key)
            self._record(loc, line)
            if loc in self._arrays:
                loc = (*loc, self._arrays[loc])
        return loc

    def _array_table(self, keys: list[str], line: int) -> Loc:
        loc = (*self._resolve(keys[:-1], line), keys[-1])
        index = self._arrays.get(loc, -1) + 1
        self._arrays[loc] = index
        self._record(loc, line)
        self._record((*loc, index), line)
        return (*loc, index)

    def _key(self) -> list[str]:
        keys: list[str] = []
        while True:
            self._skip_blank(newlines=False)
            if self._peek() == '"':
                # Decoded by tomllib itself, so "ret\u0065ntion" is retention.
                raw = self._match(_BASIC)
                keys.append(str(tomllib.loads(f"k = {raw}")["k"]))
            elif self._peek() == "'":
                keys.append(self._match(_LITERAL)[1:-1])
            else:
                keys.append(self._match(_BARE_KEY))
            self._skip_blank(newlines=False)
            if self._peek() != ".":
                return keys
            self.pos += 1

    def _key_value(self, table: Loc) -> None:
        line = self._line()
        keys = self._key()
        for end in range(1, len(keys) + 1):
            self._record((*table, *keys[:end]), line)
        self._expect("=")
        self._skip_blank(newlines=False)
        self._value((*table, *keys))

    # -- values --------------------------------------------------------------------------

    def _value(self, loc: Loc) -> None:
        char = self._peek()
        if char == "[":
            self._array(loc)
        elif char == "{":
            self._inline_table(loc)
        elif self.text.startswith('"""', self.pos):
            self._match(_ML_BASIC)
        elif self.text.startswith("'''", self.pos):
            self._match(_ML_LITERAL)
        elif char == '"':
            self._match(_BASIC)
        elif char == "'":
            self._match(_LITERAL)
        else:
            token = self._match(_SCALAR)
            if _DATE.fullmatch(token) and _SPACED_TIME.match(self.text, self.pos):
                self.pos += 1
                self._match(_SCALAR)

    def _array(self, loc: Loc) -> None:
        self.pos += 1
        index = 0
        while self._skip_blank(newlines=True) and self._peek() != "]":
            self._record((*loc, index), self._line())
            self._value((*loc, index))
            self._skip_blank(newlines=True)
            if self._peek() == ",":
                self.pos += 1
            index += 1
        self._expect("]")

    def _inline_table(self, loc: Loc) -> None:
        self.pos += 1
        # Newlines are allowed here although TOML 1.0 forbids them: tomllib has already
        # refused them, and TOML 1.1 permits them.
        while self._skip_blank(newlines=True) and self._peek() != "}":
            if self._peek() == ",":
                self.pos += 1
            else:
                self._key_value(loc)
        self._expect("}")

    # -- characters ----------------------------------------------------------------------

    def _peek(self) -> str:
        return self.text[self.pos : self.pos + 1]

    def _match(self, pattern: re.Pattern[str]) -> str:
        found = pattern.match(self.text, self.pos)
        if found is None or not found.group():
            raise _Unreadable(self.pos)
        self.pos = found.end()
        return found.group()

    def _expect(self, token: str) -> None:
        if not self.text.startswith(token, self.pos):
            raise _Unreadable(self.pos)
        self.pos += len(token)

    def _skip_blank(self, *, newlines: bool) -> bool:
        """Skip spaces and comments (and newlines if asked); False at the end of the text."""
        blank = " \t\r\n" if newlines else " \t"
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char in blank:
                self.pos += 1
            elif char == "#" and newlines:
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end
            else:
                return True
        return False

    def _end_of_line(self) -> None:
        self._skip_blank(newlines=False)
        if self._peek() == "#":
            end = self.text.find("\n", self.pos)
            self.pos = len(self.text) if end < 0 else end
        if self._peek() not in ("", "\r", "\n"):
            raise _Unreadable(self.pos)


def key_lines(text: str) -> dict[Loc, int]:
    """Each key, table and array item of a valid TOML text by path, to its 1-based line;
    empty when the text cannot be followed (then messages just have no line)."""
    try:
        return _Scanner(text).scan()
    except _Unreadable:
        return {}


def line_of(lines: Mapping[Loc, int], loc: Loc) -> int | None:
    """The line of `loc`, or of its nearest ancestor written in the file (a missing key
    is reported at its table); None when not even the first part is written."""
    for end in range(len(loc), 0, -1):
        if (line := lines.get(loc[:end])) is not None:
            return line
    return None
