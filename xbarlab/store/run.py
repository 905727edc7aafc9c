"""One run in the store: record points and maps as they are measured, finish, read back.

Every ``record_*`` call is its own committed SQLite transaction, so a crash of the process (even
SIGKILL) loses nothing already recorded. A run is also the unit of resumption: ``done_cells`` and
``checkpoints`` tell a protocol that reopened an interrupted run what it already did.
"""

from __future__ import annotations

import itertools
import json
import math
import sqlite3
import time
import traceback as traceback_module
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from xbarlab.store.arrowread import query_blocks
from xbarlab.store.calibrations import insert_calibration, read_calibrations
from xbarlab.store.records import (
    FINAL_STATUSES,
    OPERATIONS,
    CalibrationRecord,
    MapRecord,
    Point,
    RunEvent,
    RunInfo,
    Snapshot,
)
from xbarlab.store.transfer import RunRecord, export_run
from xbarlab.store.validate import (
    check_bool,
    check_checkpoint_key,
    check_finite,
    check_int,
    check_map,
    check_name,
    check_operation,
    check_optional_real,
    check_pulse_width,
    to_json,
)

_VOLTAGE_NAN, _CURRENT_NAN = 1, 2
"""Bits of ``points.nan_mask``: SQLite stores NaN as NULL, so NaN readings are flagged here."""


MISSING_BITS = {"voltage": 1, "current": 2, "pulse_width": 4}
"""Bits of a point chunk's ``missing`` (and the HDF5 export's): the value was not measured (it
reads NaN). A NaN whose bit is clear is a NaN the instrument reported."""

POINT_CHUNK_DTYPE = (("seq", np.int64), ("row", np.int32), ("col", np.int32),
                     ("operation", np.uint8), ("voltage", np.float64), ("current", np.float64),
                     ("pulse_width", np.float64), ("compliance", np.uint8),
                     ("missing", np.uint8), ("t", np.float64))
"""The columns of `Run.point_chunks` and their types."""

MAX_LINES = 1 << 20
"""Rows (and columns) a point may name: 0 <= row < 2^20 (a CrossbarArray has at most 10^6)."""

# A point chunk is read as six numbers per point, each exact in a float64 (seq < 2^53; every
# integer field packed into one < 2^51), so a block of rows becomes one float64 array in C
# (`np.fromiter`) instead of a Python object per field: bit 31 up the row, 11 up the column,
# 7 up the operation code, bit 6 compliance, 3-5 the NULL flags of voltage, current and pulse
# width, 0-2 nan_mask.
_CHUNK_QUERY = (
    "SELECT seq, (row << 31) | (col << 11) | ((CASE operation "
    + " ".join(f"WHEN '{name}' THEN {code}" for code, name in enumerate(OPERATIONS))
    + " END) << 7) | (compliance << 6) | (((voltage IS NULL) | ((current IS NULL) << 1)"
    " | ((pulse_width IS NULL) << 2)) << 3) | nan_mask,"
    " IFNULL(voltage, 0.0), IFNULL(current, 0.0), IFNULL(pulse_width, 0.0), t"
    " FROM points WHERE run_id = {run_id} AND seq >= {start} AND seq % {every} = 0 ORDER BY seq"
)
"""The columns of `Run.point_chunks`, for a run, a first seq and a stride (placeholders, or
integers for the ADBC reader, which takes the query as text)."""
_CHUNK_FIELDS = 6

_INSERT_POINT = (
    "INSERT INTO points (run_id, seq, row, col, operation, voltage, current, nan_mask,"
    " pulse_width, compliance, t) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class RunNotFoundError(LookupError):
    """No run with the requested id exists in the store."""


class RunStateError(RuntimeError):
    """The run cannot do this in its current status (finished, read-only, still being written)."""


def read_run_info(connection: sqlite3.Connection, run_id: Any) -> RunInfo:
    """Load the metadata of ``run_id``; raise :class:`RunNotFoundError` naming the known ids."""
    run_id = check_int("run_id", run_id, minimum=1)
    row = connection.execute(INFO_QUERY + " WHERE r.run_id = ?", (run_id,)).fetchone()
    if row is None:
        raise RunNotFoundError(f"run_id = {run_id} is not in the store; {_known_ids(connection)}")
    return info_from_row(row)


INFO_QUERY = """
SELECT r.run_id, r.protocol, r.params_json, r.bench_text, r.instruments_json,
       r.software_version, r.seed, r.shape_rows, r.shape_cols, r.started_at, r.ended_at,
       r.status, r.traceback, r.writer_host, r.writer_pid, r.parent_id,
       (SELECT COALESCE(MAX(p.seq) + 1, 0) FROM points p WHERE p.run_id = r.run_id),
       (SELECT COALESCE(MAX(m.seq) + 1, 0) FROM maps m WHERE m.run_id = r.run_id)
FROM runs r
"""


def info_from_row(row: tuple) -> RunInfo:
    """Build a :class:`RunInfo` from one row of ``INFO_QUERY``."""
    (run_id, protocol, params_json, bench_text, instruments_json, version, seed, rows, cols,
     started_at, ended_at, status, tb, host, pid, parent, n_points, n_maps) = row
    return RunInfo(
        run_id=run_id,
        protocol=protocol,
        params=json.loads(params_json),
        bench_text=bench_text,
        instruments=json.loads(instruments_json),
        software_version=version,
        seed=seed,
        shape=None if rows is None else (rows, cols),
        started_at=started_at,
        ended_at=ended_at,
        status=status,
        traceback=tb,
        writer_host=host,
        writer_pid=pid,
        parent_id=parent,
        n_points=n_points,
        n_maps=n_maps,
    )


def _known_ids(connection: sqlite3.Connection) -> str:
    low, high, count = connection.execute(
        "SELECT MIN(run_id), MAX(run_id), COUNT(*) FROM runs"
    ).fetchone()
    if count == 0:
        return "the store has no runs yet"
    return f"allowed: one of the {count} stored runs, ids {low}..{high}"


class Run:
    """A run in the store. Get one from ``RunStore.start_run``, ``resume`` or ``open_run``.

    A run from ``start_run``/``resume`` is writable while its status is ``running``; one from
    ``open_run`` is read-only. As a context manager, a writable run ends ``completed`` on a normal
    exit, ``failed`` (traceback stored) on an ``Exception`` and ``aborted`` on anything else
    (``KeyboardInterrupt``, ``SystemExit`` from a SIGTERM handler); the exception propagates.
    """

    def __init__(self, connection: sqlite3.Connection, run_id: int, writable: bool) -> None:
        self._connection = connection
        info = read_run_info(connection, run_id)
        self._run_id = info.run_id
        self._shape = info.shape
        self._writable = writable
        self._status = info.status
        self._next_point = info.n_points
        self._next_map = info.n_maps

    def __repr__(self) -> str:
        mode = "writable" if self._writable else "read-only"
        return f"<Run {self._run_id} {self.status} {mode}>"

    # -- identity and metadata ---------------------------------------------------------------

    @property
    def run_id(self) -> int:
        """The run's id in its store (an integer from 1)."""
        return self._run_id

    @property
    def data_dir(self) -> Path | None:
        """The run store's data directory (the folder holding its SQLite database), where the
        run's files such as plots go; None for a store in memory (a dry run's)."""
        database = self._database_file
        return None if database is None else database.parent

    @property
    def _database_file(self) -> Path | None:
        """The store's SQLite file; None for a store in memory."""
        rows = self._connection.execute("PRAGMA database_list").fetchall()
        path = next(path for _, schema, path in rows if schema == "main")
        return Path(path) if path else None

    @property
    def shape(self) -> tuple[int, int] | None:
        """The array shape ``(rows, cols)`` given at start, or ``None`` if not declared."""
        return self._shape

    @property
    def n_points(self) -> int:
        """Points recorded so far: the sequence number the next point will get."""
        return self._next_point

    @property
    def status(self) -> str:
        """Current status, read from the store (another process may have changed it)."""
        row = self._connection.execute(
            "SELECT status FROM runs WHERE run_id = ?", (self._run_id,)
        ).fetchone()
        return row[0]

    @property
    def info(self) -> RunInfo:
        """All metadata of the run, freshly read."""
        return read_run_info(self._connection, self._run_id)

    # -- recording ---------------------------------------------------------------------------

    def record_point(
        self,
        row: int,
        col: int,
        operation: str,
        voltage: float | None = None,
        current: float | None = None,
        pulse_width: float | None = None,
        compliance: bool = False,
        t: float | None = None,
    ) -> int:
        """Commit one point on crosspoint (row, col) and return its sequence number in the run.

        ``voltage`` and ``current`` are in volts and amperes; ``None`` means not measured, NaN
        is kept as NaN. ``pulse_width`` is seconds or ``None``. ``t`` is seconds on the bench
        clock, or wall-clock Unix time when not given.
        """
        self._require_writable("record a point")
        values = self._point_row(
            self._next_point, row, col, operation, voltage, current, pulse_width, compliance, t
        )
        self._connection.execute(_INSERT_POINT, values)
        self._next_point += 1
        return self._next_point - 1

    def record_points(self, points: Iterable[Mapping[str, Any]]) -> range:
        """Commit many points in one transaction (all or none) and return their seq numbers.

        Each mapping holds ``record_point``'s keyword arguments. For readings that arrive
        together (every column current of one array-board read); a bad point refuses the whole
        batch, naming its index, before anything is written.
        """
        self._require_writable("record points")
        rows = []
        for index, point in enumerate(points):
            try:
                rows.append(self._point_row(self._next_point + index, **point))
            except (TypeError, ValueError) as error:
                raise type(error)(f"points[{index}]: {error}") from None
        return self._insert_points(rows)

    def record_point_columns(self, row, col, operation: str, voltage, current, compliance,
                             t) -> range:
        """`record_points` of points given as columns (equal-length arrays: row and col
        integers, voltage and current in V and A, NaN kept as NaN, compliance booleans, t
        finite seconds; no pulse width), checked as whole arrays: a batch of readings that
        arrive together (one array-board measurement) without a mapping per point."""
        self._require_writable("record points")
        limit_rows, limit_cols = self._shape if self._shape else (MAX_LINES, MAX_LINES)
        rows = _integer_column("row", row, limit_rows)
        cols = _integer_column("col", col, limit_cols)
        voltage, current = _real_column("voltage", voltage), _real_column("current", current)
        compliance = np.asarray(compliance)
        if compliance.dtype != bool:
            raise TypeError(f"compliance must be True or False, got {compliance.dtype} values")
        t = _real_column("t", t)
        if not np.isfinite(t).all():
            index = int(np.flatnonzero(~np.isfinite(t))[0])
            raise ValueError(f"points[{index}]: t = {float(t[index])!r} is not allowed; allowed: a "
                             "finite number")
        count = len(rows)
        if not all(len(column) == count for column in (cols, voltage, current, compliance, t)):
            raise ValueError("row, col, voltage, current, compliance and t must have one value "
                             "per point")
        check_operation(operation)
        nan_mask = np.isnan(voltage) * _VOLTAGE_NAN | np.isnan(current) * _CURRENT_NAN
        volts, amps = voltage.tolist(), current.tolist()
        if nan_mask.any():  # NaN is stored as NULL with its flag bit (`_encode_nan`)
            masks = nan_mask.tolist()
            volts = [None if m & _VOLTAGE_NAN else v for v, m in zip(volts, masks, strict=True)]
            amps = [None if m & _CURRENT_NAN else a for a, m in zip(amps, masks, strict=True)]
        first = self._next_point
        return self._insert_points(list(zip(
            itertools.repeat(self._run_id), range(first, first + count), rows.tolist(),
            cols.tolist(), itertools.repeat(operation), volts, amps, nan_mask.tolist(),
            itertools.repeat(None), compliance.tolist(), t.tolist())))

    def _insert_points(self, rows: list[tuple]) -> range:
        """Insert checked ``points`` rows in one transaction (all or none); their seqs."""
        self._connection.execute("BEGIN IMMEDIATE")
        try:
            self._connection.executemany(_INSERT_POINT, rows)
        except BaseException:
            self._connection.execute("ROLLBACK")
            raise
        self._connection.execute("COMMIT")
        first = self._next_point
        self._next_point += len(rows)
        return range(first, self._next_point)

    def _point_row(
        self,
        seq: int,
        row: int,
        col: int,
        operation: str,
        voltage: float | None = None,
        current: float | None = None,
        pulse_width: float | None = None,
        compliance: bool = False,
        t: float | None = None,
    ) -> tuple:
        """Validate one point and return its ``points`` table row. A reading as the bench
        makes them (plain ints, finite floats, a bool, no pulse width: every reading of a
        map) passes one combined check; anything else goes through each field's validator,
        which says what is wrong."""
        limit_rows, limit_cols = self._shape if self._shape else (None, None)
        if (type(row) is int and type(col) is int and type(voltage) is float
                and type(current) is float and type(compliance) is bool and type(t) is float
                and pulse_width is None and operation in OPERATIONS
                and 0 <= row < (limit_rows or MAX_LINES) and 0 <= col < (limit_cols or MAX_LINES)
                and math.isfinite(voltage) and math.isfinite(current) and math.isfinite(t)):
            return (self._run_id, seq, row, col, operation, voltage, current, 0, None,
                    compliance, t)
        return (
            self._run_id,
            seq,
            check_int("row", row, limit=limit_rows or MAX_LINES),
            check_int("col", col, limit=limit_cols or MAX_LINES),
            check_operation(operation),
            *_encode_nan(
                check_optional_real("voltage", voltage), check_optional_real("current", current)
            ),
            check_pulse_width(pulse_width),
            check_bool("compliance", compliance),
            _now_or(t),
        )

    def record_map(self, name: str, data: Any, t: float | None = None, unit: str = "") -> int:
        """Commit a whole-array map (a (rows, cols) array of real numbers) and return its seq.

        ``unit`` is what its values are in (``"S"``, ``"V"``, ``"ohm"``, ``"1"`` for a count),
        carried into exports, plots and reports. Maps of the same name accumulate (one per
        epoch, say); ``latest_map`` returns the last.
        """
        self._require_writable("record a map")
        array = check_map(check_name("map name", name), data, self._shape)
        if not isinstance(unit, str) or len(unit) > 32:
            raise ValueError(f"unit = {unit!r}: allowed a text of at most 32 characters")
        self._connection.execute(
            "INSERT INTO maps (run_id, seq, name, rows, cols, data, t, unit)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (self._run_id, self._next_map, name, *array.shape, array.tobytes(), _now_or(t),
             unit),
        )
        self._next_map += 1
        return self._next_map - 1

    def checkpoint(self, key: str, value: Any) -> None:
        """Commit a protocol checkpoint (any JSON value), replacing an earlier one of that key.

        For progress that is not a cell, e.g. ``run.checkpoint("epoch", 3)``.
        """
        self._require_writable("record a checkpoint")
        self._connection.execute(
            "INSERT OR REPLACE INTO checkpoints (run_id, key, value_json, t) VALUES (?, ?, ?, ?)",
            (self._run_id, check_checkpoint_key(key), to_json("checkpoint value", value),
             time.time()),
        )

    def record_snapshots(self, phase: str, instruments: Mapping[str, Any]) -> None:
        """Commit the instruments' snapshots (`Bench.snapshot`) at the ``start`` or ``end`` of
        this run's session (a resumed run adds a pair per session)."""
        self._require_writable("record snapshots")
        if phase not in ("start", "end"):
            raise ValueError(f"phase = {phase!r}: allowed 'start' or 'end'")
        self._connection.execute(
            "INSERT INTO snapshots (run_id, seq, phase, t, instruments_json)"
            " SELECT ?, COALESCE(MAX(seq) + 1, 0), ?, ?, ? FROM snapshots WHERE run_id = ?",
            (self._run_id, phase, time.time(), to_json("snapshot", dict(instruments)),
             self._run_id),
        )

    def record_calibration(self, chip_id: str, record: dict[str, Any], conductance: Any) -> int:
        """Store a calibration record of chip `chip_id` measured by this run (JSON `record`,
        the chip's conductance map); return its id. Later runs on the chip use the newest."""
        self._require_writable("record a calibration")
        return insert_calibration(self._connection, self._run_id, chip_id, record, conductance)

    def calibrations(self) -> list[CalibrationRecord]:
        """The calibration records this run measured, newest first (retired ones included)."""
        return read_calibrations(self._connection, run_id=self._run_id, retired=True)

    # -- ending --------------------------------------------------------------------------------

    def finish(self, status: str = "completed", detail: str | None = None) -> None:
        """End the run with a final status; ``detail`` is the traceback of a failed run."""
        if status not in FINAL_STATUSES:
            raise ValueError(
                f"status = {status!r} is not a final status; allowed: {', '.join(FINAL_STATUSES)}"
            )
        self._require_writable(f"mark it {status}")
        ended_at = time.time()
        self._connection.execute("BEGIN IMMEDIATE")
        try:
            self._connection.execute(
                "UPDATE runs SET status = ?, ended_at = ?, traceback = ? WHERE run_id = ?",
                (status, ended_at, detail if status == "failed" else None, self._run_id),
            )
            insert_event(self._connection, self._run_id, status, detail, ended_at)
        except BaseException:
            self._connection.execute("ROLLBACK")
            raise
        self._connection.execute("COMMIT")
        self._status = status

    def fail(self, error: str | BaseException) -> None:
        """End the run ``failed``, storing a traceback text or the formatted exception."""
        if isinstance(error, BaseException):
            error = "".join(
                traceback_module.format_exception(type(error), error, error.__traceback__)
            )
        self.finish("failed", error)

    def abort(self, reason: str | None = None) -> None:
        """End the run ``aborted`` (a stop by the user or a signal); it stays resumable."""
        self.finish("aborted", reason)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if not self._writable or self._status != "running":
            return False
        if exc_type is None:
            self.finish("completed")
        elif issubclass(exc_type, Exception):
            self.fail(exc)
        else:
            self.abort(exc_type.__name__)
        return False

    # -- reading back ----------------------------------------------------------------------------

    def done_cells(self, operation: str | None = None) -> set[tuple[int, int]]:
        """Crosspoints (row, col) with at least one recorded point (of ``operation``, if given)."""
        query = "SELECT DISTINCT row, col FROM points WHERE run_id = ?"
        args: tuple = (self._run_id,)
        if operation is not None:
            query += " AND operation = ?"
            args += (check_operation(operation),)
        return {(r, c) for r, c in self._connection.execute(query, args)}

    def checkpoints(self) -> dict[str, Any]:
        """Every checkpoint of the run, key to value."""
        rows = self._connection.execute(
            "SELECT key, value_json FROM checkpoints WHERE run_id = ? ORDER BY key", (self._run_id,)
        )
        return {key: json.loads(value) for key, value in rows}

    def points(
        self, row: int | None = None, col: int | None = None, operation: str | None = None
    ) -> list[Point]:
        """Recorded points in recording order, optionally only one row, column or operation."""
        query = (
            "SELECT seq, row, col, operation, voltage, current, nan_mask, pulse_width,"
            " compliance, t FROM points WHERE run_id = ?"
        )
        args: tuple = (self._run_id,)
        for field, value in (("row", row), ("col", col)):
            if value is not None:
                query += f" AND {field} = ?"
                args += (check_int(field, value),)
        if operation is not None:
            query += " AND operation = ?"
            args += (check_operation(operation),)
        return [_point_from_row(r) for r in self._connection.execute(query + " ORDER BY seq", args)]

    def point_arrays(self, every: int = 1) -> dict[str, np.ndarray]:
        """Every `every`-th point as columns (``seq``, ``row``, ``col``, ``operation``,
        ``voltage``, ``current``, ``pulse_width``, ``compliance``, ``t``; NaN where a value
        was not measured), read without building a `Point` per row: for plots and summaries
        of runs with millions of points."""
        chunks = list(self.point_chunks(every=every))
        columns = {name: np.concatenate([chunk[name] for chunk in chunks])
                   if chunks else np.zeros(0, kind) for name, kind in POINT_CHUNK_DTYPE}
        columns["operation"] = np.array(OPERATIONS, object)[columns["operation"]]
        columns["compliance"] = columns["compliance"].astype(bool)
        del columns["missing"]
        return columns

    def point_chunks(self, size: int = 1 << 16, every: int = 1, start: int = 0
                     ) -> Iterator[dict[str, np.ndarray]]:
        """The run's points from seq `start` on (every `every`-th), in recording order, as
        column arrays of at most `size` points each (`POINT_CHUNK_DTYPE`): ``operation`` as its
        index in `OPERATIONS`, NaN where a value is NaN or was not measured, and ``missing``'s
        bits (`MISSING_BITS`) telling the two apart. Memory stays bounded by `size` whatever
        the run's length: exports, ``xbarlab show --points`` and `xbarlab.load` read this."""
        size = check_int("size", size, minimum=1)
        every = check_int("every", every, minimum=1)
        start = check_int("start", start, minimum=0)
        database = self._database_file
        if database is not None:  # a file: its columns built in C (`arrowread`)
            query = _CHUNK_QUERY.format(run_id=self._run_id, start=start, every=every)
            for block in query_blocks(database, query, size):
                yield _point_chunk(block.ravel())
            return
        cursor = self._connection.execute(_CHUNK_QUERY.format(run_id="?", start="?", every="?"),
                                          (self._run_id, start, every))
        while True:
            rows = cursor.fetchmany(size)
            if not rows:
                return
            yield _point_chunk(np.fromiter(itertools.chain.from_iterable(rows), np.float64,
                                           count=_CHUNK_FIELDS * len(rows)))
            if len(rows) < size:
                return

    def operation_counts(self) -> dict[str, int]:
        """How many points of each operation the run has, without reading them."""
        rows = self._connection.execute(
            "SELECT operation, COUNT(*) FROM points WHERE run_id = ? GROUP BY operation",
            (self._run_id,))
        counts = dict(rows.fetchall())
        return {operation: counts[operation] for operation in OPERATIONS if operation in counts}

    def maps(self, name: str | None = None) -> list[MapRecord]:
        """Recorded maps in recording order, optionally only those called ``name``."""
        query = "SELECT seq, name, rows, cols, data, t, unit FROM maps WHERE run_id = ?"
        args: tuple = (self._run_id,)
        if name is not None:
            query += " AND name = ?"
            args += (name,)
        return [
            MapRecord(seq, map_name, np.frombuffer(blob, dtype="<f8").reshape(rows, cols), t,
                      unit)
            for seq, map_name, rows, cols, blob, t, unit in self._connection.execute(
                query + " ORDER BY seq", args
            )
        ]

    def map_names(self) -> list[str]:
        """The names of the run's maps, in the order each first appeared."""
        rows = self._connection.execute(
            "SELECT name FROM maps WHERE run_id = ? GROUP BY name ORDER BY MIN(seq)",
            (self._run_id,))
        return [name for (name,) in rows]

    def latest_map(self, name: str) -> np.ndarray:
        """The last map recorded under ``name``; ``KeyError`` naming the stored names if none."""
        records = self.maps(name)
        if not records:
            names = sorted({record.name for record in self.maps()})
            raise KeyError(
                f"map name = {name!r} is not in run {self._run_id}; "
                f"allowed: {names or 'none, no maps recorded yet'}"
            )
        return records[-1].data

    def snapshots(self) -> list[Snapshot]:
        """The instruments' snapshots of every session of the run, in order."""
        rows = self._connection.execute(
            "SELECT seq, phase, t, instruments_json FROM snapshots WHERE run_id = ?"
            " ORDER BY seq", (self._run_id,))
        return [Snapshot(seq, phase, t, json.loads(text)) for seq, phase, t, text in rows]

    def store(self) -> Any:
        """The `RunStore` this run lives in, sharing its connection (to start child runs, the
        stages of a pipeline, in the same store)."""
        from xbarlab.store.runstore import RunStore

        return RunStore.sharing(self._connection, self.data_dir)

    def record(self) -> RunRecord:
        """Every row of this run, to write into another store (`RunStore.import_run`)."""
        return export_run(self._connection, self._run_id)

    def events(self) -> list[RunEvent]:
        """The run's history: started, resumed, completed, aborted, failed, in order."""
        rows = self._connection.execute(
            "SELECT seq, t, event, detail FROM events WHERE run_id = ? ORDER BY seq",
            (self._run_id,),
        )
        return [RunEvent(*row) for row in rows]

    # -- internals --------------------------------------------------------------------------------

    def _require_writable(self, action: str) -> None:
        if not self._writable:
            raise RunStateError(
                f"cannot {action}: run {self._run_id} was opened read-only; "
                f"use RunStore.resume({self._run_id}) to continue it"
            )
        if self._status != "running":
            raise RunStateError(
                f"cannot {action}: run {self._run_id} status is {self._status!r}; "
                "allowed: 'running'"
            )


def insert_event(
    connection: sqlite3.Connection, run_id: int, event: str, detail: str | None, t: float
) -> None:
    """Append one event to a run's history (the caller owns the transaction)."""
    connection.execute(
        "INSERT INTO events (run_id, seq, t, event, detail)"
        " SELECT ?, COALESCE(MAX(seq) + 1, 0), ?, ?, ? FROM events WHERE run_id = ?",
        (run_id, t, event, detail, run_id),
    )


def _point_chunk(flat: np.ndarray) -> dict[str, np.ndarray]:
    """The columns of a block of `_CHUNK_QUERY` rows (flattened): `POINT_CHUNK_DTYPE`, NaN
    where a value is NaN or was not measured, ``missing`` telling the two apart."""
    values = flat.reshape(-1, _CHUNK_FIELDS)
    packed = values[:, 1].astype(np.int64)
    nulls, nans = (packed >> 3) & 0b111, packed & 0b111
    chunk = {"seq": values[:, 0].astype(np.int64),
             "row": (packed >> 31).astype(np.int32),
             "col": ((packed >> 11) & (MAX_LINES - 1)).astype(np.int32),
             "operation": ((packed >> 7) & 0b1111).astype(np.uint8),
             "compliance": ((packed >> 6) & 1).astype(np.uint8)}
    for bit, name in enumerate(("voltage", "current", "pulse_width")):
        column = values[:, 2 + bit].copy()
        column[(nulls >> bit) & 1 == 1] = np.nan
        chunk[name] = column
    chunk["missing"] = (nulls & ~nans).astype(np.uint8)
    chunk["t"] = values[:, 5].copy()
    return {name: chunk[name] for name, _ in POINT_CHUNK_DTYPE}


def _now_or(t: Any) -> float:
    return time.time() if t is None else check_finite("t", t)


def _integer_column(field: str, values, limit: int) -> np.ndarray:
    """`values` as an integer array, every one 0 <= value < `limit` (`check_int` of each)."""
    array = np.asarray(values)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{field} must be integers, got an array of {array.dtype}")
    bad = np.flatnonzero((array < 0) | (array >= limit))
    if bad.size:
        raise ValueError(f"points[{int(bad[0])}]: {field} = {int(array[bad[0]])} is out of "
                         f"range; allowed: 0 <= {field} < {limit}")
    return array


def _real_column(field: str, values) -> np.ndarray:
    """`values` as a float array (NaN and infinities kept; `check_real` of each)."""
    array = np.asarray(values)
    if array.dtype.kind not in "fiu":
        raise TypeError(f"{field} must be real numbers, got an array of {array.dtype}")
    return array.astype(float, copy=False)


def _encode_nan(voltage: float | None, current: float | None) -> tuple:
    """Return (voltage, current, nan_mask) with NaN stored as NULL plus its flag bit."""
    mask = 0
    if voltage is not None and math.isnan(voltage):
        voltage, mask = None, mask | _VOLTAGE_NAN
    if current is not None and math.isnan(current):
        current, mask = None, mask | _CURRENT_NAN
    return voltage, current, mask


def _point_from_row(row: tuple) -> Point:
    seq, r, c, operation, voltage, current, mask, pulse_width, compliance, t = row
    return Point(
        seq=seq,
        row=r,
        col=c,
        operation=operation,
        voltage=math.nan if mask & _VOLTAGE_NAN else voltage,
        current=math.nan if mask & _CURRENT_NAN else current,
        pulse_width=pulse_width,
        compliance=bool(compliance),
        t=t,
    )
