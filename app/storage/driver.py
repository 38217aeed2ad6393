"""Statements sent straight to the database driver, inside a SQLAlchemy transaction.

Every webhook claims a receipt, reads the active policy, keeps its answer and places its
audit events: a handful of small statements whose SQL never changes. SQLAlchemy's execution
of a statement built once still costs ~50 µs (parameter processing, result metadata, events,
its context object) against ~4 µs for sqlite3's own cursor — measured on this project's
machine, issue 17 — so those few statements (plain values; NewRow stores the two types
of SQLAlchemy's they meet, JSON and UTC times, as those types do) are written here once
as SQL and run on the transaction's own driver connection. Everything else stays on the
ORM and Core.

What SQLAlchemy would have done and these must still do: a driver's error becomes
SQLAlchemy's (`DBAPIError` and its kinds: the webhooks journal on it, the API answers 503),
and a lost connection is invalidated so that the pool does not hand it out again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Connection, Table
from sqlalchemy.exc import DBAPIError

_NAMED = re.compile(r"(?<![:\w]):(\w+)")  # :name, not a ::cast


class Sql:
    """One statement, written with :name parameters (sqlite3's named style) and rewritten
    once into psycopg's %(name)s."""

    __slots__ = ("postgresql", "sqlite")

    def __init__(self, text: str, *, postgresql_suffix: str = "") -> None:
        self.sqlite = text
        self.postgresql = _NAMED.sub(r"%(\1)s", (text + postgresql_suffix).replace("%", "%%"))

    def run(self, connection: Connection, params: Mapping[str, Any] | None = None) -> Any:
        """The driver's cursor, executed (fetch from it)."""
        return _execute(connection, self, params or {}, many=False)

    def run_many(
        self, connection: Connection, rows: Sequence[Mapping[str, Any] | tuple[Any, ...]]
    ) -> None:
        if rows:
            _execute(connection, self, rows, many=True)


def _execute(connection: Connection, sql: Sql, params: Any, *, many: bool) -> Any:
    postgres = connection.dialect.name == "postgresql"
    text = sql.postgresql if postgres else sql.sqlite
    raw = connection.connection.driver_connection
    assert raw is not None  # a live connection in a transaction
    cursor = raw.cursor()
    try:
        if many:
            cursor.executemany(text, params)
        else:
            cursor.execute(text, params)
    except connection.dialect.loaded_dbapi.Error as exc:
        gone = connection.dialect.is_disconnect(exc, raw, cursor)
        if gone:
            connection.invalidate(exc)
        raise DBAPIError.instance(
            text,
            params,
            exc,
            connection.dialect.loaded_dbapi.Error,
            connection_invalidated=gone,
            dialect=connection.dialect,
        ) from exc
    return cursor


def stored_time(connection: Connection, moment: datetime) -> Any:
    """A UTC time as app.storage.models.UTCDateTime stores it: SQLite holds naive UTC text
    in SQLAlchemy's format, PostgreSQL a timestamptz."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: callguard stores UTC-aware times only")
    if connection.dialect.name == "postgresql":
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


class NewRow:
    """INSERT … ON CONFLICT DO NOTHING of a whole row of `table`: the columns not given are
    filled from the model's Python defaults, and values stored as SQLAlchemy's types would
    (JSON as text, UTC times as app.storage.models.UTCDateTime). `run` says whether the
    row was inserted."""

    def __init__(self, table: Table, conflict: str) -> None:
        self.columns = [column.key for column in table.columns]
        self.defaults: dict[str, Callable[[], Any]] = {}
        self.json = {c.key for c in table.columns if isinstance(c.type, JSON)}
        self.times = {c.key for c in table.columns if getattr(c.type, "is_utc_time", False)}
        for column in table.columns:
            default = column.default
            if default is None:
                self.defaults[column.key] = lambda: None
            elif getattr(default, "is_scalar", False):
                self.defaults[column.key] = lambda value=default.arg: value  # type: ignore[attr-defined,misc]
            else:  # a callable SQLAlchemy wrapped to take its execution context
                self.defaults[column.key] = lambda call=default.arg: call(None)  # type: ignore[attr-defined,misc]
        names = ", ".join(self.columns)
        values = ", ".join(f":{name}" for name in self.columns)
        self.sql = Sql(
            f"INSERT INTO {table.name} ({names}) VALUES ({values})"  # noqa: S608 (the model's names)
            f" ON CONFLICT ({conflict}) DO NOTHING"
        )

    def run(self, connection: Connection, given: Mapping[str, Any]) -> bool:
        row = {
            name: given[name] if name in given else self.defaults[name]() for name in self.columns
        }
        for name in self.json:
            row[name] = None if row[name] is None else json.dumps(row[name])
        for name in self.times:
            row[name] = None if row[name] is None else stored_time(connection, row[name])
        inserted: int = self.sql.run(connection, row).rowcount
        return inserted == 1
