"""SQLite schema of the run store, and the one place a store connection is opened.

Why these settings: the journal is WAL so a reader (``xbarlab runs``, a live plot) never blocks
the writer and never sees half a transaction; ``synchronous=NORMAL`` in WAL mode makes each commit
an append to the WAL file without an fsync. A commit is then durable against a crash of the
process (even SIGKILL: the bytes are in the OS page cache and SQLite replays the WAL on the next
open), and only an OS crash or power cut can lose the last commits. That trade buys per-point
commits at well over 10^4 points per second. The connection runs in autocommit mode
(``isolation_level=None``): every INSERT is its own committed transaction.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

SCHEMA_VERSION = 4
"""Stored in ``PRAGMA user_version``; a store written by a newer schema is refused, an older one
is migrated in place (version 2 added instrument snapshots and a run's parent run, version 3
each map's unit, version 4 the chips' calibration records)."""

BUSY_TIMEOUT_MS = 5000
"""How long a writer waits for another process's write transaction before raising."""

_DDL = """
CREATE TABLE IF NOT EXISTS runs (
    run_id           INTEGER PRIMARY KEY AUTOINCREMENT,
    protocol         TEXT    NOT NULL,
    params_json      TEXT    NOT NULL,
    bench_text       TEXT    NOT NULL,
    instruments_json TEXT    NOT NULL,
    software_version TEXT    NOT NULL,
    seed             INTEGER,
    shape_rows       INTEGER,
    shape_cols       INTEGER,
    started_at       REAL    NOT NULL,
    ended_at         REAL,
    status           TEXT    NOT NULL
        CHECK (status IN ('running', 'completed', 'aborted', 'failed')),
    traceback        TEXT,
    writer_host      TEXT    NOT NULL,
    writer_pid       INTEGER NOT NULL,
    parent_id        INTEGER REFERENCES runs(run_id)
);
CREATE TABLE IF NOT EXISTS points (
    run_id      INTEGER NOT NULL REFERENCES runs(run_id),
    seq         INTEGER NOT NULL,
    row         INTEGER NOT NULL,
    col         INTEGER NOT NULL,
    operation   TEXT    NOT NULL,
    -- Measured floats have no declared type: REAL affinity would store -0.0 as integer 0.
    -- NaN is stored as NULL by SQLite, so NaN readings set a bit in nan_mask (see run.py).
    voltage,
    current,
    pulse_width,
    compliance  INTEGER NOT NULL,
    nan_mask    INTEGER NOT NULL,
    t                   NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS maps (
    run_id INTEGER NOT NULL REFERENCES runs(run_id),
    seq    INTEGER NOT NULL,
    name   TEXT    NOT NULL,
    rows   INTEGER NOT NULL,
    cols   INTEGER NOT NULL,
    data   BLOB    NOT NULL,
    t      REAL    NOT NULL,
    unit   TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
    run_id     INTEGER NOT NULL REFERENCES runs(run_id),
    key        TEXT    NOT NULL,
    value_json TEXT    NOT NULL,
    t          REAL    NOT NULL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    run_id INTEGER NOT NULL REFERENCES runs(run_id),
    seq    INTEGER NOT NULL,
    t      REAL    NOT NULL,
    event  TEXT    NOT NULL,
    detail TEXT,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS calibrations (
    calibration_id INTEGER PRIMARY KEY AUTOINCREMENT,
    chip_id        TEXT    NOT NULL,
    run_id         INTEGER NOT NULL REFERENCES runs(run_id),
    created_at     REAL    NOT NULL,
    retired_at     REAL,
    record_json    TEXT    NOT NULL,
    rows           INTEGER NOT NULL,
    cols           INTEGER NOT NULL,
    conductance    BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS calibrations_by_chip ON calibrations (chip_id, created_at);
CREATE TABLE IF NOT EXISTS snapshots (
    run_id           INTEGER NOT NULL REFERENCES runs(run_id),
    seq              INTEGER NOT NULL,
    phase            TEXT    NOT NULL CHECK (phase IN ('start', 'end')),
    t                REAL    NOT NULL,
    instruments_json TEXT    NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
"""

_MIGRATIONS = {
    1: ("ALTER TABLE runs ADD COLUMN parent_id INTEGER REFERENCES runs(run_id)",),
    2: ("ALTER TABLE maps ADD COLUMN unit TEXT NOT NULL DEFAULT ''",),
    3: (),  # the calibrations table: created by the DDL below
}
"""Statements that bring a store of schema version k to k + 1 (before the DDL above, whose
``IF NOT EXISTS`` tables are then created)."""


class StoreSchemaError(RuntimeError):
    """The database file was written by a newer xbarlab than this one."""


class StoreOpenError(RuntimeError):
    """A store file that cannot be used: missing (read-only), empty, or not a run store."""


def connect(db_path: Path, read_only: bool = False) -> sqlite3.Connection:
    """Open the store database at ``db_path`` in WAL, autocommit mode, creating it if needed;
    with `read_only`, only an existing store is opened and nothing is written (a store on a
    read-only disk or directory can still be listed). A zero-length file is refused (a store
    file always holds its tables: an empty one was truncated), and so is a file that is not a
    run store (`StoreOpenError`, naming the file)."""
    if db_path.exists() and db_path.stat().st_size == 0:
        raise StoreOpenError(f"store {db_path} is an empty file (0 bytes), not a run store: it "
                             "was truncated (a full disk?); move it away to start a new store")
    if read_only and not db_path.exists():
        raise StoreOpenError(f"no run store at {db_path.parent} ({db_path.name} not found)")
    try:
        if not read_only and str(db_path) != ":memory:" and not db_path.exists():
            _create_store_file(db_path)
        return _open(db_path, read_only)
    except sqlite3.DatabaseError as error:
        if isinstance(error, sqlite3.OperationalError) and "locked" in str(error):
            raise
        raise StoreOpenError(f"store {db_path} cannot be opened as a run store ({error}); "
                             "it may be damaged: restore it from a copy") from error


def _create_store_file(db_path: Path) -> None:
    """A new store file, complete with its tables, put in place in one step (built under a
    temporary name, then linked): a store file is never seen empty or half made, so an empty
    one is always a damaged one. Another process creating the same store at once wins or
    loses the link; both then open the same complete file."""
    partial = db_path.with_name(f".{db_path.name}.{os.getpid()}.new")
    try:
        _open(partial, read_only=False).close()
        with contextlib.suppress(FileExistsError):  # another process made it first
            os.link(partial, db_path)
    finally:
        partial.unlink(missing_ok=True)


def _open(db_path: Path, read_only: bool) -> sqlite3.Connection:
    if read_only:
        connection = _open_read_only(db_path)
    else:
        connection = sqlite3.connect(str(db_path), isolation_level=None,
                                     timeout=BUSY_TIMEOUT_MS / 1000)
    connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if not read_only:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
    connection.execute("PRAGMA foreign_keys = ON")
    found = connection.execute("PRAGMA user_version").fetchone()[0]
    if found > SCHEMA_VERSION:
        connection.close()
        raise StoreSchemaError(
            f"store {db_path} has schema version {found}; this xbarlab reads versions "
            f"up to {SCHEMA_VERSION}"
        )
    if found < SCHEMA_VERSION:
        if read_only:
            connection.close()
            raise StoreSchemaError(f"store {db_path} has schema version {found}; open it "
                                   f"writable once (xbarlab run) to upgrade it to {SCHEMA_VERSION}")
        _create_tables(connection, found)
    connection.execute("SELECT count(*) FROM runs").fetchone()  # a damaged file fails here
    return connection


def _open_read_only(db_path: Path) -> sqlite3.Connection:
    """A read-only connection; where SQLite cannot create the WAL index next to the file (a
    read-only directory), the file is read as immutable (nobody can be writing it there)."""
    uri = f"{db_path.resolve().as_uri()}?mode=ro"
    connection = sqlite3.connect(uri, uri=True, isolation_level=None,
                                 timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        connection.execute("PRAGMA user_version").fetchone()
    except sqlite3.OperationalError:
        connection.close()
        connection = sqlite3.connect(f"{db_path.resolve().as_uri()}?immutable=1", uri=True,
                                     isolation_level=None)
    return connection


def _create_tables(connection: sqlite3.Connection, found: int) -> None:
    """Migrate a store of version `found` (0: a new file), create every table and set the
    schema version, all in one transaction."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        if found:
            for version in range(found, SCHEMA_VERSION):
                for statement in _MIGRATIONS[version]:
                    connection.execute(statement)
        for statement in _DDL.split(";"):
            if statement.strip():
                connection.execute(statement)
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
