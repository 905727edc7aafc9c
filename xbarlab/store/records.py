"""What the run store hands back: run metadata, measured points and array maps.

Plain frozen dataclasses, so a caller can compare, print and pass them around without touching
SQLite. ``None`` in a point means "not measured" (a pulse with no current reading, a read with no
pulse width); ``float('nan')`` means the instrument returned a value that is not a number. The
two are kept apart everywhere: in the database, in HDF5 and in CSV.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

OPERATIONS = ("read", "pulse", "set", "reset", "form", "unreachable")
"""Operations a point can record (``unreachable``: a cell behind a relay that failed its check,
no current); HDF5 export stores them as an enum in this order."""

STATUSES = ("running", "completed", "aborted", "failed")
"""Every status a run can have. A run is created ``running``."""

FINAL_STATUSES = ("completed", "aborted", "failed")
"""Statuses that ``Run.finish`` accepts."""

RESUMABLE_STATUSES = ("running", "aborted", "failed")
"""Statuses of an interrupted run that ``RunStore.resume`` may reopen."""


@dataclass(frozen=True)
class RunInfo:
    """Metadata of one run, as stored."""

    run_id: int
    protocol: str
    params: dict[str, Any]
    bench_text: str
    instruments: dict[str, Any]
    software_version: str
    seed: int | None
    shape: tuple[int, int] | None
    started_at: float
    ended_at: float | None
    status: str
    traceback: str | None
    writer_host: str
    writer_pid: int
    parent_id: int | None
    n_points: int
    n_maps: int


@dataclass(frozen=True)
class Point:
    """One measurement or stimulus on one crosspoint, in the order it was recorded (``seq``)."""

    seq: int
    row: int
    col: int
    operation: str
    voltage: float | None
    current: float | None
    pulse_width: float | None
    compliance: bool
    t: float


@dataclass(frozen=True, eq=False)
class MapRecord:
    """One whole-array map (for example conductance after a read map) taken at time ``t``, its
    values in ``unit`` (``"S"``, ``"V"``, ``"ohm"``, ``"1"`` for counts; ``""`` if not stated)."""

    seq: int
    name: str
    data: np.ndarray
    t: float
    unit: str = ""


@dataclass(frozen=True)
class RunEvent:
    """A change in a run's life: started, resumed, completed, aborted or failed (with detail)."""

    seq: int
    t: float
    event: str
    detail: str | None


@dataclass(frozen=True, eq=False)
class CalibrationRecord:
    """A chip's calibration as stored: measured by run ``run_id`` at ``created_at``, retired at
    ``retired_at`` (None while in use); ``record`` is its JSON (resistances with intervals,
    method, fit figures) and ``conductance`` the chip's cells (S) when it was measured."""

    calibration_id: int
    chip_id: str
    run_id: int
    created_at: float
    retired_at: float | None
    record: dict[str, Any]
    conductance: np.ndarray


@dataclass(frozen=True)
class Snapshot:
    """Every instrument's identity and settings (with units) at the ``start`` or ``end`` of one
    session of a run: ``instruments[name]`` has ``identity``, ``address``, ``model`` and
    ``settings`` (or ``error`` when the instrument could not answer)."""

    seq: int
    phase: str
    t: float
    instruments: dict[str, Any]
