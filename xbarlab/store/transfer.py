"""Move a whole run from one store to another, exactly: a `RunRecord` of every row the run owns.

A campaign runs each task on a worker (another process, perhaps another machine) with a store
in memory, and only the client writes the real store (SQLite is not shared across machines).
The worker takes a `RunRecord` of its run (`export_run`); the client writes it into its store
as a new run (`RunStore.import_run`), in one transaction, so a run lands whole or not at all and
its values arrive bit for bit (the rows are copied, not re-encoded).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

RUN_COLUMNS = ("protocol", "params_json", "bench_text", "instruments_json", "software_version",
               "seed", "shape_rows", "shape_cols", "started_at", "ended_at", "status",
               "traceback", "writer_host", "writer_pid")
"""Columns of ``runs`` a record carries (not the id, which the receiving store assigns, nor
the parent, which the importer chooses)."""

CHILD_TABLES = {
    "points": ("seq", "row", "col", "operation", "voltage", "current", "nan_mask",
               "pulse_width", "compliance", "t"),
    "maps": ("seq", "name", "rows", "cols", "data", "t", "unit"),
    "checkpoints": ("key", "value_json", "t"),
    "events": ("seq", "t", "event", "detail"),
    "snapshots": ("seq", "phase", "t", "instruments_json"),
}
"""The tables whose rows belong to one run, and the columns copied (all but ``run_id``)."""


@dataclass(frozen=True)
class RunRecord:
    """Every row of one run: its ``runs`` row and the rows of each child table, as stored."""

    run: tuple[Any, ...]
    rows: dict[str, list[tuple[Any, ...]]]

    @property
    def status(self) -> str:
        return self.run[RUN_COLUMNS.index("status")]

    @property
    def n_points(self) -> int:
        return len(self.rows["points"])


def export_run(connection: sqlite3.Connection, run_id: int) -> RunRecord:
    """The `RunRecord` of run `run_id` of the store behind `connection`."""
    run = connection.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE run_id = ?",
                             (run_id,)).fetchone()
    if run is None:
        raise LookupError(f"run_id = {run_id} is not in the store")
    rows = {table: connection.execute(
                f"SELECT {', '.join(columns)} FROM {table} WHERE run_id = ?", (run_id,)
            ).fetchall()
            for table, columns in CHILD_TABLES.items()}
    return RunRecord(tuple(run), rows)


def import_run(connection: sqlite3.Connection, record: RunRecord, parent: int | None = None,
               checkpoints: dict[str, str] | None = None) -> int:
    """Write `record` as a new run (child of `parent`), with extra `checkpoints` (key to JSON
    text), in one transaction; its new id."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        cursor = connection.execute(
            f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}, parent_id)"
            f" VALUES ({', '.join('?' * (len(RUN_COLUMNS) + 1))})", (*record.run, parent))
        run_id = cursor.lastrowid
        extra = [(key, value, record.run[RUN_COLUMNS.index("ended_at")] or 0.0)
                 for key, value in (checkpoints or {}).items()]
        for table, columns in CHILD_TABLES.items():
            rows = record.rows[table] + (extra if table == "checkpoints" else [])
            if rows:
                connection.executemany(
                    f"INSERT INTO {table} (run_id, {', '.join(columns)})"
                    f" VALUES ({', '.join('?' * (len(columns) + 1))})",
                    [(run_id, *row) for row in rows])
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    return run_id
