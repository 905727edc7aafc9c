"""Taking cell readings and storing them as one step, and their running statistics, shared by
every protocol that reads maps.

A reading that was taken is a reading that is stored: Ctrl-C and SIGTERM are held from the
moment a batch of readings is taken until it is committed to the run, so an interrupted run
loses nothing it measured, and a resumed one does not measure it twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np

from xbarlab.bench import ReadingBatch
from xbarlab.safety import signals_held
from xbarlab.store import OPERATIONS

UNREACHABLE = "unreachable"
"""Operation of the point stored for a cell whose relay route failed its check (no current)."""


def reading_points(batch: Iterable[Any], operation: str = "read") -> list[dict]:
    """Run-store points of a batch of `CellReading`s; a cell the bench found unreachable is
    stored as an ``unreachable`` point without a current (never as 0 A)."""
    return [
        {"row": r.row, "col": r.col, "operation": UNREACHABLE, "voltage": r.voltage,
         "current": None, "compliance": False, "t": r.timestamp}
        if getattr(r, "unreachable", "") else
        {"row": r.row, "col": r.col, "operation": operation, "voltage": r.voltage,
         "current": r.current, "compliance": r.compliance, "t": r.timestamp}
        for r in batch
    ]


def record_readings(run, batch: Sequence[Any], operation: str = "read") -> None:
    """Commit a batch of `CellReading`s to `run` (`reading_points`); a `ReadingBatch` (the
    readings of one measurement, as arrays) in one bulk insert."""
    if isinstance(batch, ReadingBatch):
        run.record_point_columns(batch.row, batch.col, operation, batch.voltage, batch.current,
                                 batch.compliance, batch.timestamp)
    else:
        run.record_points(reading_points(batch, operation))


def stored_readings(run, start: int = 0) -> Iterator[SimpleNamespace]:
    """The ``read`` points of `run` from sequence number `start` on, as readings
    `ReadingStats.add` takes (row, col, voltage, current, compliance): the readings a resumed
    protocol already has. Read in chunks, without a `Point` per row."""
    read = OPERATIONS.index("read")
    for chunk in run.point_chunks(start=start):
        for row, col, operation, voltage, current, compliance in zip(
                chunk["row"], chunk["col"], chunk["operation"], chunk["voltage"],
                chunk["current"], chunk["compliance"], strict=True):
            if operation == read:
                yield SimpleNamespace(row=int(row), col=int(col), voltage=float(voltage),
                                      current=float(current), compliance=bool(compliance))


def recorded_batches(run, batches: Iterator[Sequence[Any]]) -> Iterator[Sequence[Any]]:
    """Yield each batch of `bench.iter_read_batches` after committing it to `run`; taking the
    batch and storing it happen with signals held."""
    while True:
        with signals_held():
            batch = next(batches, None)
            if batch is None:
                return
            record_readings(run, batch)
        yield batch


class ReadingStats:
    """Count, mean and spread of the readings of every cell (sensed currents).

    A reading beyond the sensing instrument's range (its `overflow` flag, or a NaN current as
    such a reading is stored) says "range too low", not a current: the cell is in `overflowed`
    and its mean, spread and so conductance are NaN (unknown), never a number made of it."""

    def __init__(self, shape: tuple[int, int]):
        self.count = np.zeros(shape)
        self._sum = np.zeros(shape)
        self._squares = np.zeros(shape)
        self.compliant: set[tuple[int, int]] = set()
        self.overflowed: set[tuple[int, int]] = set()
        self.unreachable: dict[tuple[int, int], str] = {}
        """Cells whose relay route failed its check, with the failure (no readings)."""
        self.bursts: dict[tuple[int, int, int], list[float]] = {}
        """(row, col, burst) -> [count, sum, sum of squares] of each burst of a cell: its
        readings taken back to back in one pass over the chip (`xbarlab.protocols.error_bars`)."""

    def add(self, readings, burst: int = 0) -> None:
        """Fold in readings (anything with row, col, current and compliance; a
        `ReadingBatch` as its arrays), all of one `burst` (a cell's readings taken back to
        back; another pass is another burst)."""
        if isinstance(readings, ReadingBatch):
            self.add_columns(readings.row, readings.col, readings.current, readings.compliance,
                             burst)
            return
        for r in readings:
            if getattr(r, "unreachable", ""):
                self.unreachable[r.row, r.col] = r.unreachable
                continue
            self.count[r.row, r.col] += 1
            self._sum[r.row, r.col] += r.current
            self._squares[r.row, r.col] += r.current**2
            sums = self.bursts.setdefault((r.row, r.col, burst), [0, 0.0, 0.0])
            sums[0] += 1
            sums[1] += r.current
            sums[2] += r.current**2
            if r.compliance:
                self.compliant.add((r.row, r.col))
            if getattr(r, "overflow", False) or not np.isfinite(r.current):
                self.overflowed.add((r.row, r.col))

    def add_columns(self, rows: np.ndarray, cols: np.ndarray, currents: np.ndarray,
                    compliance: np.ndarray, burst: int = 0) -> None:
        """Fold in readings given as arrays (one per reading, in order; none overflowed or
        unreachable: a NaN current still counts as overflowed, as in `add`), all of one
        `burst` as in `add`."""
        at = (rows, cols)
        np.add.at(self.count, at, 1)
        np.add.at(self._sum, at, currents)
        np.add.at(self._squares, at, currents**2)
        width = self.count.shape[1]
        cells, which = np.unique(rows * width + cols, return_inverse=True)
        sums = zip(cells.tolist(), np.bincount(which).tolist(),
                   np.bincount(which, currents).tolist(),
                   np.bincount(which, currents**2).tolist(), strict=True)
        for cell, count, total, squares in sums:
            kept = self.bursts.setdefault((cell // width, cell % width, burst), [0, 0.0, 0.0])
            kept[0] += count
            kept[1] += total
            kept[2] += squares
        if compliance.any():
            self.compliant.update(zip(rows[compliance].tolist(), cols[compliance].tolist(),
                                      strict=True))
        lost = ~np.isfinite(currents)
        if lost.any():
            self.overflowed.update(zip(rows[lost].tolist(), cols[lost].tolist(), strict=True))

    def mean(self) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return np.where(self.count > 0, self._sum / np.maximum(self.count, 1), np.nan)

    def variance_of_mean(self) -> np.ndarray:
        """Sample variance of each cell's readings over their count (NaN below two readings)."""
        n = self.count
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = self._sum / n
            spread = np.maximum(self._squares - n * mean**2, 0.0) / (n - 1)
            return np.where(n >= 2, spread / n, np.nan)
