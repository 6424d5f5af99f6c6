"""The generation store: one SQLite file in WAL mode.

Tables:

* ``generations`` - one row per generation key: model id, prompt name/kind/hash and sampling
  parameters. The key is a hash of exactly these, so changing the prompt or the model starts a
  new generation next to the old one, never a silent mix.
* ``items`` - one row per (generation, query, level, index): status (``done`` | ``failed``),
  prompt hash, model, sampling parameters (JSON, with the per-item seed), raw answer, parsed
  passage, tokens, latency (seconds), attempts, error.

A row is written only when its request has finished (one transaction per request), so a
crash or SIGKILL loses at most the requests in flight, which are simply redone. A ``done`` row
is never overwritten; a ``failed`` row is replaced when a later attempt succeeds.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (
    gen_key TEXT PRIMARY KEY, model TEXT NOT NULL, prompt_name TEXT NOT NULL, prompt_kind TEXT NOT NULL,
    prompt_hash TEXT NOT NULL, sampling TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    gen_key TEXT NOT NULL REFERENCES generations(gen_key), query_id TEXT NOT NULL, level INTEGER NOT NULL,
    idx INTEGER NOT NULL, status TEXT NOT NULL CHECK (status IN ('done', 'failed')),
    prompt_hash TEXT NOT NULL, model TEXT NOT NULL, sampling TEXT NOT NULL,
    raw TEXT, passage TEXT, prompt_tokens INTEGER, completion_tokens INTEGER, latency_s REAL,
    attempts INTEGER NOT NULL DEFAULT 1, error TEXT, endpoint TEXT, updated REAL NOT NULL,
    PRIMARY KEY (gen_key, query_id, level, idx));
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

ITEM_COLUMNS = ("gen_key", "query_id", "level", "idx", "status", "prompt_hash", "model", "sampling", "raw", "passage",
                "prompt_tokens", "completion_tokens", "latency_s", "attempts", "error", "endpoint", "updated")


@dataclass(frozen=True)
class Generation:
    """What defines a generation; ``key`` is a 16-hex-digit hash of it."""

    model: str
    prompt_name: str
    prompt_kind: str
    prompt_hash: str
    sampling: dict

    @property
    def key(self) -> str:
        blob = json.dumps([self.model, self.prompt_kind, self.prompt_hash, self.sampling], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


class Store:
    """A generation store on ``path`` (created with its folder if missing)."""

    def __init__(self, path: str | Path):
        from synthrank.data.errors import DataFormatError

        self.path = Path(path)
        if self.path.is_dir():
            raise DataFormatError(self.path, 0, "store", "is a folder; the store is a SQLite file (e.g. out/gen.sqlite)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            tables = {row[0] for row in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if tables and not {"generations", "items"} <= tables:
                self.db.close()
                raise DataFormatError(self.path, 0, "store", f"a SQLite file of another program (tables: "
                                      f"{', '.join(sorted(tables)[:5])}), not a synthrank store; nothing was changed")
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)
        except sqlite3.DatabaseError as err:  # not a database, corrupt, unreadable, locked
            raise DataFormatError(self.path, 0, "store", f"cannot open as a SQLite store: {err}") from None

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- generations ---------------------------------------------------------------------------
    def register(self, gen: Generation) -> str:
        """Record ``gen`` (idempotent) and return its key."""
        self.db.execute(
            "INSERT OR IGNORE INTO generations VALUES (?, ?, ?, ?, ?, ?, ?)",
            (gen.key, gen.model, gen.prompt_name, gen.prompt_kind, gen.prompt_hash, json.dumps(gen.sampling, sort_keys=True), time.time()),
        )
        return gen.key

    def generations(self) -> list[dict]:
        """All generations with their item counts, oldest first."""
        rows = self.db.execute(
            "SELECT g.*, SUM(i.status='done'), SUM(i.status='failed') FROM generations g "
            "LEFT JOIN items i USING (gen_key) GROUP BY g.gen_key ORDER BY g.created").fetchall()
        names = ["gen_key", "model", "prompt_name", "prompt_kind", "prompt_hash", "sampling", "created", "done", "failed"]
        out = [dict(zip(names, r)) for r in rows]
        for g in out:
            g["sampling"] = json.loads(g["sampling"])
            g["done"], g["failed"] = g["done"] or 0, g["failed"] or 0
        return out

    def resolve_generation(self, key: str | None) -> str:
        """Return ``key`` or, when None, the only generation; ``ValueError`` if ambiguous or unknown."""
        gens = self.generations()
        if key:
            matches = [g["gen_key"] for g in gens if g["gen_key"].startswith(key)]
            if len(matches) != 1:
                raise ValueError(f"{self.path}: no unique generation {key!r}; have {[g['gen_key'] for g in gens]}")
            return matches[0]
        if len(gens) != 1:
            raise ValueError(f"{self.path}: {len(gens)} generations, choose one with --generation: "
                             + ", ".join(f"{g['gen_key']} ({g['model']}, {g['prompt_name']})" for g in gens))
        return gens[0]["gen_key"]

    # -- items ---------------------------------------------------------------------------------
    def done_keys(self, gen_key: str) -> set[tuple[str, int, int]]:
        """``(query_id, level, idx)`` of every done item of a generation."""
        rows = self.db.execute("SELECT query_id, level, idx FROM items WHERE gen_key=? AND status='done'", (gen_key,))
        return {(q, lv, i) for q, lv, i in rows}

    def put(self, rows: Iterable[dict]) -> None:
        """Write finished items in one transaction. Never overwrites a ``done`` row; a ``failed`` row
        is replaced and its ``attempts`` added up."""
        cols = ", ".join(ITEM_COLUMNS)
        marks = ", ".join("?" for _ in ITEM_COLUMNS)
        updates = ", ".join(f"{c}=excluded.{c}" for c in ITEM_COLUMNS[4:] if c != "attempts")
        sql = (f"INSERT INTO items ({cols}) VALUES ({marks}) ON CONFLICT (gen_key, query_id, level, idx) DO UPDATE SET "
               f"{updates}, attempts=items.attempts+excluded.attempts WHERE items.status != 'done'")
        now, at = time.time(), ITEM_COLUMNS.index("updated")
        values = []
        for row in rows:
            value = list(map(row.get, ITEM_COLUMNS))
            if "updated" not in row:
                value[at] = now
            values.append(value)
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany(sql, values)

    def items(self, gen_key: str, status: str | None = None) -> Iterator[dict]:
        """Items of a generation ordered by (query, level desc, idx)."""
        sql = f"SELECT {', '.join(ITEM_COLUMNS)} FROM items WHERE gen_key=?"
        args: list = [gen_key]
        if status:
            sql += " AND status=?"
            args.append(status)
        for row in self.db.execute(sql + " ORDER BY query_id, level DESC, idx", args):
            yield dict(zip(ITEM_COLUMNS, row))

    # -- seeding from an export ------------------------------------------------------------------
    def import_rows(self, generation: dict, rows: Iterable[dict]) -> int:
        """Seed the store from exported rows (``generations.jsonl``); returns how many rows were read.
        Idempotent: rows already in the store win."""
        self.db.execute(
            "INSERT OR IGNORE INTO generations VALUES (?, ?, ?, ?, ?, ?, ?)",
            (generation["gen_key"], generation["model"], generation["prompt_name"], generation["prompt_kind"],
             generation["prompt_hash"], json.dumps(generation["sampling"], sort_keys=True), generation.get("created", time.time())),
        )
        cols = ", ".join(ITEM_COLUMNS)
        marks = ", ".join("?" for _ in ITEM_COLUMNS)
        batch = [dict(r, gen_key=generation["gen_key"]) for r in rows]
        values = [tuple(r.get(c) if c != "updated" else r.get(c) or time.time() for c in ITEM_COLUMNS) for r in batch]
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany(f"INSERT OR IGNORE INTO items ({cols}) VALUES ({marks})", values)
        return len(batch)
