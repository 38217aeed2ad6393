"""Statements sent straight to the database driver, inside a SQLAlchemy transaction.

Every webhook claims a receipt, reads the active policy, keeps its answer and places its
audit events: a handful of small statements whose SQL never changes. SQLAlchemy's execution
of a statement built once still costs ~50 µs (parameter processing, result metadata, events,
its context object) against ~4 µs for sqlite3's own cursor — measured on this project's
machine, issue 17 — so those few statements (and only those: they take plain values, no
type of SQLAlchemy's needs to process them) are written here once as SQL and run on the
transaction's own driver connection. Everything else stays on the ORM and Core.

What SQLAlchemy would have done and these must still do: a driver's error becomes
SQLAlchemy's (`DBAPIError` and its kinds: the webhooks journal on it, the API answers 503),
and a lost connection is invalidated so that the pool does not hand it out again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

_NAMED = re.compile(r"(?<![:\w]):(\w+)")  # :name, not a ::cast


class Sql:
    """One statement, written with :name parameters (sqlite3's named style) and rewritten
    once into psycopg's %(name)s."""

    __slots__ = ("postgresql", "sqlite")

    def __init__(self, text: str) -> None:
        self.sqlite = text
        self.postgresql = _NAMED.sub(r"%(\1)s", text.replace("%", "%%"))

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
    if connection.dialect.name == "postgresql":
        return moment
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
