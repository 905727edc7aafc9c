"""Calibration records of chips in the run store: which run measured them, when, and what.

A record belongs to a chip (its ``chip_id``, from the bench file) and to the run that measured
it; it holds the calibration as JSON (the calibrated resistances with their intervals, how they
were measured, the fit's figures) and the chip's conductance map at the end of the calibration.
Records are never changed, only retired: the newest record of a chip that is not retired is
the one later runs on that chip use.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

import numpy as np

from xbarlab.store.records import CalibrationRecord
from xbarlab.store.validate import check_int, check_map, to_json

_COLUMNS = ("calibration_id, chip_id, run_id, created_at, retired_at, record_json, rows, cols,"
            " conductance")


class CalibrationNotFoundError(LookupError):
    """No calibration record with the requested id (or none for the chip)."""


def insert_calibration(connection: sqlite3.Connection, run_id: int, chip_id: str,
                       record: dict[str, Any], conductance: Any) -> int:
    """Store a calibration record measured by run `run_id`; return its id."""
    if not isinstance(chip_id, str) or not chip_id:
        raise ValueError(f"chip_id = {chip_id!r}: allowed a non-empty string")
    if not isinstance(record, dict):
        raise TypeError(f"record must be a dict, got {type(record).__name__}")
    array = check_map("conductance", conductance, None)
    cursor = connection.execute(
        "INSERT INTO calibrations (chip_id, run_id, created_at, record_json, rows, cols,"
        " conductance) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (chip_id, run_id, time.time(), to_json("calibration record", record), *array.shape,
         array.tobytes()))
    return int(cursor.lastrowid)


def read_calibrations(connection: sqlite3.Connection, chip_id: str | None = None,
                      retired: bool = False, run_id: int | None = None
                      ) -> list[CalibrationRecord]:
    """Records, newest first: of one chip or all (or those run `run_id` measured), with or
    without the retired ones."""
    query = f"SELECT {_COLUMNS} FROM calibrations"
    clauses, args = [], []
    for column, value in (("chip_id", chip_id), ("run_id", run_id)):
        if value is not None:
            clauses.append(f"{column} = ?")
            args.append(value)
    if not retired:
        clauses.append("retired_at IS NULL")
    if clauses:
        query += " WHERE " + " AND ".join(clauses)
    rows = connection.execute(query + " ORDER BY created_at DESC, calibration_id DESC", args)
    return [_record(row) for row in rows]


def read_calibration(connection: sqlite3.Connection, calibration_id: Any) -> CalibrationRecord:
    """One record by id; `CalibrationNotFoundError` naming the stored ids if unknown."""
    calibration_id = check_int("calibration_id", calibration_id, minimum=1)
    row = connection.execute(f"SELECT {_COLUMNS} FROM calibrations WHERE calibration_id = ?",
                             (calibration_id,)).fetchone()
    if row is None:
        ids = [r[0] for r in connection.execute(
            "SELECT calibration_id FROM calibrations ORDER BY calibration_id")]
        allowed = f"allowed: one of {ids}" if ids else "the store has no calibration records"
        raise CalibrationNotFoundError(f"calibration_id = {calibration_id} is not in the store; "
                                       f"{allowed}")
    return _record(row)


def retire_calibration(connection: sqlite3.Connection, calibration_id: Any) -> CalibrationRecord:
    """Retire a record (later runs no longer use it); return it as it is now."""
    record = read_calibration(connection, calibration_id)
    if record.retired_at is None:
        connection.execute("UPDATE calibrations SET retired_at = ? WHERE calibration_id = ?",
                           (time.time(), record.calibration_id))
    return read_calibration(connection, record.calibration_id)


def _record(row: tuple) -> CalibrationRecord:
    calibration_id, chip_id, run_id, created, retired, text, rows, cols, blob = row
    return CalibrationRecord(calibration_id, chip_id, run_id, created, retired, json.loads(text),
                             np.frombuffer(blob, dtype="<f8").reshape(rows, cols).copy())
