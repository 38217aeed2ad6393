"""Benchmark of the audit log's Merkle tree (app/audit/merkle.py) at 10 million events, and
what storing it costs: every node, or tiles.

1. Build. N random 32-byte entries (seeded) are leaf-hashed and appended with
   merkle.Frontier in batches of BATCH, one transaction per batch as a sequencer would.
   Every node the frontier returns goes to two SQLite files (plain sqlite3, WAL):
   - the node store: one row per node, merkle_nodes(level, idx, hash), about 2N rows;
   - the tile store: C2SP tlog-tiles' layout (Trillian's and Go's sumdb's): only the
     hashes of levels 0, 8, 16, ..., 256 to a row (8 KiB), about N(1 + 1/255) hashes, each
     level's last, partial tile rewritten at each batch; a node of another level is
     recomputed from the up to 128 hashes beneath it in one tile.
   Timed apart: the hashing (leaf and inner-node hashes/s), the node inserts, the tile
   inserts. Reported: each file's size on disk per event.
2. Proofs. Q inclusion proofs (a random tree size, a random leaf in it) and Q consistency
   proofs (random sizes m < n), each made from both stores (which must agree) and checked
   with the RFC verifiers against the root of its size (made from the node store); p50 and
   p99 of each. Target: p99 under TARGET_MS for a proof made from the node store.

    python bench/merkle.py            # full: 10,000,000 events
    python bench/merkle.py --quick    # CI: 100,000 events, a few seconds; exit 0 whatever
    python bench/merkle.py --postgres # and both layouts' size on PostgreSQL (<= 1M events)

Exit status: 0 done (and, in full mode, the target met); 1 an error (a proof that does not
verify, the stores or the frontier disagreeing, the time limit); 3 full mode and the target
missed. The temporary files are removed on exit, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

from webhook import PG_SERVER, BenchError, postgres_database, unwind_on_signals

from app.audit import merkle
from app.audit.merkle import Frontier, MissingNode, Node, StoredNode

TARGET_MS = 10.0  # p99 of making one proof from the node store
BATCH = 10_000  # leaves per transaction while building
TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
SEED = 9162
PG_EVENTS = 1_000_000  # at most this many events for the PostgreSQL sizes (linear in N)
T = TypeVar("T")


def connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None)  # transactions: explicit
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    return connection


def select_many(db: sqlite3.Connection, table: str, keys: Sequence[Node]) -> dict[Node, bytes]:
    """The rows of `keys` (level, idx) in one statement, each found by the primary key (a
    join on VALUES: SQLite scans the table for a row-value IN list)."""
    if not keys:
        return {}
    wanted = ",".join(["(?, ?)"] * len(keys))
    rows = db.execute(
        f"SELECT t.* FROM (VALUES {wanted}) AS w JOIN {table} AS t "  # noqa: S608 (no input)
        "ON t.level = w.column1 AND t.idx = w.column2",
        [part for key in keys for part in key],
    )
    return {(level, idx): blob for level, idx, blob in rows}


class SqliteNodeStore:
    """A merkle.NodeStore with a row per node; one SELECT answers a whole proof."""

    def __init__(self, path: Path) -> None:
        self.db = connect(path)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS merkle_nodes (level INTEGER NOT NULL, "
            "idx INTEGER NOT NULL, hash BLOB NOT NULL, PRIMARY KEY (level, idx)) WITHOUT ROWID"
        )

    def put_many(self, nodes: Sequence[StoredNode]) -> None:
        # Plain INSERT: storing a node twice is an error, never an overwrite.
        self.db.executemany("INSERT INTO merkle_nodes VALUES (?, ?, ?)", nodes)

    def get_many(self, nodes: Sequence[Node]) -> list[bytes]:
        found = select_many(self.db, "merkle_nodes", nodes)
        try:
            return [found[node] for node in nodes]
        except KeyError as exc:
            raise MissingNode(f"no node {exc.args[0]}") from None


class SqliteTileStore:
    """A merkle.NodeStore keeping only the hashes of every TILE_HEIGHT-th level, in rows of
    TILE_WIDTH (C2SP tlog-tiles); the levels between are recomputed when read."""

    def __init__(self, path: Path) -> None:
        self.db = connect(path)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS merkle_tiles (level INTEGER NOT NULL, "
            "idx INTEGER NOT NULL, hashes BLOB NOT NULL, PRIMARY KEY (level, idx)) WITHOUT ROWID"
        )
        self.partial: dict[int, tuple[int, bytearray]] = {}  # tile level: (index, hashes)

    def put_many(self, nodes: Sequence[StoredNode]) -> None:
        """Buffer the nodes of stored levels (they arrive in order); insert full tiles."""
        full = []
        for level, index, digest in nodes:
            if level % TILE_HEIGHT:
                continue
            tile_level, (tile, offset) = level // TILE_HEIGHT, divmod(index, TILE_WIDTH)
            _, hashes = self.partial.setdefault(tile_level, (tile, bytearray()))
            if len(hashes) != offset * merkle.HASH_SIZE:
                raise BenchError(f"tile store: node {(level, index)} out of order")
            hashes += digest
            if offset == TILE_WIDTH - 1:
                full.append((tile_level, tile, bytes(hashes)))
                del self.partial[tile_level]
        self.db.executemany("INSERT OR REPLACE INTO merkle_tiles VALUES (?, ?, ?)", full)

    def flush(self) -> None:
        """Write each level's partial tile (replacing the previous one)."""
        self.db.executemany(
            "INSERT OR REPLACE INTO merkle_tiles VALUES (?, ?, ?)",
            [(level, tile, bytes(hashes)) for level, (tile, hashes) in self.partial.items()],
        )

    def get_many(self, nodes: Sequence[Node]) -> list[bytes]:
        wanted = []  # per node: its tile, and the span of stored hashes beneath it
        for level, index in nodes:
            tile_level, height = divmod(level, TILE_HEIGHT)
            start = index << height
            wanted.append(((tile_level, start // TILE_WIDTH), start % TILE_WIDTH, 1 << height))
        found = select_many(self.db, "merkle_tiles", sorted({tile for tile, _, _ in wanted}))
        size = merkle.HASH_SIZE
        out = []
        for node, (tile, offset, count) in zip(nodes, wanted, strict=True):
            blob = found.get(tile, b"")
            if len(blob) < (offset + count) * size:
                raise MissingNode(f"no node {node}")
            row = [blob[i * size : (i + 1) * size] for i in range(offset, offset + count)]
            while len(row) > 1:
                row = [merkle.node_hash(row[i], row[i + 1]) for i in range(0, len(row), 2)]
            out.append(row[0])
        return out


def disk_bytes(path: Path, connection: sqlite3.Connection) -> int:
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.stat().st_size + sum(
        p.stat().st_size for p in path.parent.glob(path.name + "-*") if p.exists()
    )


# -- 1. build ------------------------------------------------------------------------------


@dataclass
class Build:
    events: int = 0
    hash_seconds: float = 0.0
    node_seconds: float = 0.0
    tile_seconds: float = 0.0
    nodes: int = 0
    node_bytes: int = 0
    tile_bytes: int = 0


def build(
    nodes: SqliteNodeStore, tiles: SqliteTileStore, count: int, deadline: float
) -> tuple[Build, Frontier]:
    """`count` events appended in batches; each batch one transaction in each store."""
    rng, frontier, result = random.Random(SEED), Frontier(), Build()
    sha256, size, clock = hashlib.sha256, merkle.HASH_SIZE, time.perf_counter
    reported = time.monotonic()
    while frontier.size < count:
        take = min(BATCH, count - frontier.size)
        blob = rng.randbytes(take * size)  # the entries: random 32-byte strings
        t0 = clock()
        leaves = [sha256(b"\x00" + blob[i * size : (i + 1) * size]).digest() for i in range(take)]
        made = frontier.append(leaves)
        t1 = clock()
        nodes.db.execute("BEGIN")
        nodes.put_many(made)
        nodes.db.execute("COMMIT")
        t2 = clock()
        tiles.db.execute("BEGIN")
        tiles.put_many(made)
        tiles.flush()
        tiles.db.execute("COMMIT")
        t3 = clock()
        result.hash_seconds += t1 - t0
        result.node_seconds += t2 - t1
        result.tile_seconds += t3 - t2
        result.nodes += len(made)
        if time.monotonic() > deadline:
            raise BenchError(f"time limit passed while building, at {frontier.size} events")
        if time.monotonic() - reported > 30:
            reported = time.monotonic()
            print(f"[build] {frontier.size:,} events", flush=True)
    result.events = frontier.size
    return result, frontier


def report_build(result: Build, seconds: float) -> None:
    events, inner = result.events, result.nodes - result.events
    print(
        f"\nbuild of {events:,} events in {seconds:.1f}s ({events / seconds:,.0f} events/s "
        f"in all)\n"
        f"  hashing: {events:,} leaf + {inner:,} inner hashes in {result.hash_seconds:.1f}s: "
        f"{result.nodes / result.hash_seconds:,.0f} hashes/s "
        f"({events / result.hash_seconds:,.0f} events/s, Frontier.append included)\n"
        f"  node store: {result.nodes:,} rows inserted in {result.node_seconds:.1f}s "
        f"({result.nodes / result.node_seconds:,.0f} rows/s)\n"
        f"  tile store: inserted in {result.tile_seconds:.1f}s"
    )
    tile_hashes = sum(events >> (TILE_HEIGHT * level) for level in range(8))
    print(
        f"\n{'storage':12} {'on disk':>12} {'bytes/event':>12} {'of which hashes':>16}\n"
        f"{'every node':12} {result.node_bytes / 2**20:>8.1f} MiB "
        f"{result.node_bytes / events:>12.1f} {32 * result.nodes / events:>16.1f}\n"
        f"{'tiles':12} {result.tile_bytes / 2**20:>8.1f} MiB "
        f"{result.tile_bytes / events:>12.1f} {32 * tile_hashes / events:>16.1f}"
    )


# The two layouts on PostgreSQL, the app's database: rows generated by the server (the
# sizes depend on the rows' shapes, not on the hash values; SHA-256 outputs, like real
# hashes, do not compress).
PG_LAYOUTS = (
    "CREATE TABLE merkle_nodes (level smallint NOT NULL, idx bigint NOT NULL, "
    "hash bytea NOT NULL, PRIMARY KEY (level, idx))",
    "INSERT INTO merkle_nodes SELECT l, i, sha256((l * 10000000000 + i)::text::bytea) "
    "FROM generate_series(0, :levels) AS l, "
    "LATERAL generate_series(0, (CAST(:n AS bigint) >> l) - 1) AS i",
    "CREATE TABLE merkle_tiles (level smallint NOT NULL, idx bigint NOT NULL, "
    "hashes bytea NOT NULL, PRIMARY KEY (level, idx))",
    "INSERT INTO merkle_tiles SELECT t, j, (SELECT string_agg("
    "sha256((t * 10000000000 + k)::text::bytea), ''::bytea ORDER BY k) "
    "FROM generate_series(j * 256, least((j + 1) * 256, CAST(:n AS bigint) >> (8 * t)) - 1) "
    "AS k) FROM generate_series(0, :levels / 8) AS t, "
    "LATERAL generate_series(0, ((CAST(:n AS bigint) >> (8 * t)) + 255) / 256 - 1) AS j",
)


def postgres_sizes(server: str, events: int) -> tuple[int, int]:
    """Bytes on disk (heap, TOAST and index) of both layouts for `events` events."""
    from sqlalchemy import create_engine, text

    with postgres_database(server) as url:
        engine = create_engine(url)
        try:
            with engine.begin() as connection:
                for statement in PG_LAYOUTS:
                    # (levels bounded here: PostgreSQL's >> takes the shift modulo 64)
                    parameters = {"n": events, "levels": events.bit_length() - 1}
                    connection.execute(text(statement), parameters)
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.execute(text("VACUUM ANALYZE merkle_nodes, merkle_tiles"))
                nodes, tiles = connection.execute(
                    text(
                        "SELECT pg_total_relation_size('merkle_nodes'), "
                        "pg_total_relation_size('merkle_tiles')"
                    )
                ).one()
        finally:
            engine.dispose()
    return nodes, tiles


def report_postgres(nodes: int, tiles: int, events: int) -> None:
    print(f"PostgreSQL, at {events:,} events (heap + TOAST + primary key):")
    for name, size in (("every node", nodes), ("tiles", tiles)):
        print(f"{name:12} {size / 2**20:>8.1f} MiB {size / events:>12.1f}")


# -- 2. proofs -----------------------------------------------------------------------------

LABELS = (
    "root (node store)",
    "inclusion: make (node store)",
    "inclusion: make (tile store)",
    "inclusion: verify",
    "consistency: make (node store)",
    "consistency: make (tile store)",
    "consistency: verify",
)


@dataclass
class Samples:
    """Wall-clock seconds (what a caller waits, preemption on this shared machine
    included) and the process's CPU seconds (what the work itself costs)."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


def timed(into: Samples, work: Callable[[], T]) -> T:
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    into.cpu.append(time.process_time() - cpu)
    into.wall.append(time.perf_counter() - wall)
    return result


def proofs(
    nodes: SqliteNodeStore, tiles: SqliteTileStore, size: int, queries: int, deadline: float
) -> dict[str, Samples]:
    """`queries` inclusion and consistency proofs at random points, from both stores."""
    rng = random.Random(SEED + 1)
    took = {label: Samples() for label in LABELS}
    rt, inc_n, inc_t, inc_v, con_n, con_t, con_v = (took[label] for label in LABELS)
    for _ in range(queries):
        n = rng.randint(1, size)
        index = rng.randrange(n)
        root = timed(rt, partial(merkle.root, nodes, n))
        proof = timed(inc_n, partial(merkle.inclusion_proof, nodes, index, n))
        if timed(inc_t, partial(merkle.inclusion_proof, tiles, index, n)) != proof:
            raise BenchError(f"the stores disagree on the inclusion proof of {index} in {n}")
        leaf = nodes.get_many([(0, index)])[0]
        check = partial(merkle.verify_inclusion, leaf, index, n, proof, root)
        if not timed(inc_v, check):
            raise BenchError(f"the inclusion proof of {index} in {n} does not verify")

        second = rng.randint(2, size)
        first = rng.randint(1, second - 1)
        roots = merkle.root(nodes, first), merkle.root(nodes, second)
        proof = timed(con_n, partial(merkle.consistency_proof, nodes, first, second))
        if timed(con_t, partial(merkle.consistency_proof, tiles, first, second)) != proof:
            raise BenchError(f"the stores disagree on the consistency proof {first}->{second}")
        check = partial(merkle.verify_consistency, first, second, *roots, proof)
        if not timed(con_v, check):
            raise BenchError(f"the consistency proof {first}->{second} does not verify")
        if time.monotonic() > deadline:
            raise BenchError("time limit passed while proving")
    return took


def percentile_ms(values: Sequence[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000


def report_proofs(took: dict[str, Samples], size: int) -> float:
    """Print the table; return the worse wall-clock p99 of making a proof from the node
    store."""
    print(
        f"\n{f'at {size:,} events':32} {'count':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"
        f" {'CPU p50':>8} {'CPU p99':>8}"
    )
    for label, samples in took.items():
        wall, cpu = samples.wall, samples.cpu
        print(
            f"{label:32} {len(wall):>6} {percentile_ms(wall, 0.5):>8.3f} "
            f"{percentile_ms(wall, 0.99):>8.3f} {max(wall) * 1000:>8.3f} "
            f"{percentile_ms(cpu, 0.5):>8.3f} {percentile_ms(cpu, 0.99):>8.3f}"
        )
    return max(percentile_ms(took[label].wall, 0.99) for label in (LABELS[1], LABELS[4]))


# -- the run -------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark the audit Merkle tree: build, storage per event, proofs."
    )
    parser.add_argument("--events", type=int, help="leaves in the tree (10000000; quick 100000)")
    parser.add_argument("--queries", type=int, help="proofs of each kind (1000; quick 200)")
    parser.add_argument("--timeout", type=float, help="seconds allowed in all (3600; quick 120)")
    parser.add_argument(
        "--quick", action="store_true", help="CI: 100000 events; exit 0 whatever the figures"
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help=f"also size both layouts on PostgreSQL (at most {PG_EVENTS} events)",
    )
    parser.add_argument(
        "--pg-server",
        default=PG_SERVER,
        help="PostgreSQL server (loopback) on which callguard_bench_<pid> is created/dropped",
    )
    args = parser.parse_args(argv)
    if args.events is None:
        args.events = 100_000 if args.quick else 10_000_000
    if args.queries is None:
        args.queries = 200 if args.quick else 1000
    if args.timeout is None:
        args.timeout = 120.0 if args.quick else 3600.0
    if not 2 <= args.events <= 100_000_000:
        parser.error("--events must be between 2 and 100000000")
    if not 1 <= args.queries <= 100_000:
        parser.error("--queries must be between 1 and 100000")
    if not 0 < args.timeout <= 7200:
        parser.error("--timeout must be between 0 and 7200 seconds")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    unwind_on_signals()
    mode = "quick" if args.quick else "full"
    print(
        f"== callguard audit Merkle tree benchmark ({mode}): {args.events:,} events, "
        f"{args.queries} proofs of each kind, SQLite {sqlite3.sqlite_version} ==",
        flush=True,
    )
    deadline = time.monotonic() + args.timeout
    try:
        with tempfile.TemporaryDirectory(prefix="cg-bench-merkle-") as tmp:
            node_path, tile_path = Path(tmp) / "nodes.db", Path(tmp) / "tiles.db"
            nodes, tiles = SqliteNodeStore(node_path), SqliteTileStore(tile_path)
            try:
                started = time.perf_counter()
                result, frontier = build(nodes, tiles, args.events, deadline)
                seconds = time.perf_counter() - started
                result.node_bytes = disk_bytes(node_path, nodes.db)
                result.tile_bytes = disk_bytes(tile_path, tiles.db)
                head = frontier.root()
                for name, store in (("node", nodes), ("tile", tiles)):
                    if merkle.root(store, args.events) != head:
                        raise BenchError(f"the {name} store's root is not the frontier's")
                report_build(result, seconds)
                if args.postgres:
                    pg_events = min(args.events, PG_EVENTS)
                    report_postgres(*postgres_sizes(args.pg_server, pg_events), pg_events)
                took = proofs(nodes, tiles, args.events, args.queries, deadline)
            finally:
                nodes.db.close()
                tiles.db.close()
    except BenchError as exc:
        print(f"FAIL: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: cleaned up", file=sys.stderr)
        return 130
    worst = report_proofs(took, args.events)
    met = worst < TARGET_MS
    print(
        f"proof p99 from the node store: {worst:.3f} ms (target < {TARGET_MS:g} ms): "
        f"{'MET' if met else 'MISSED'}; every proof verified, both stores agreed"
    )
    if args.quick:
        print("(quick mode: the figures are informative only)")
        return 0
    return 0 if met else 3


if __name__ == "__main__":
    sys.exit(main())
