"""What the bench returns and counts: cell readings, matrix-vector results, round trips."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from xbarlab.interfaces import PulseCapability

ANY_PULSE = PulseCapability(min_width=0.0, max_width=math.inf, max_count=10**9,
                            max_voltage=math.inf, max_current=math.inf)
"""The pulse capability of an instrument whose driver states none: only the bench limits
apply."""


class BenchError(RuntimeError):
    """The bench cannot do what was asked (missing instrument, too few sources for a scheme)."""


class NothingMeasured(BenchError):
    """A protocol cannot go on: what it must learn from the chip came back without a value
    (NaN readings; a dry run's recording instruments measure nothing). A dry run's play stops
    there; a run says what to give instead."""


@dataclass(frozen=True)
class CellReading:
    """The current through one cell at `voltage` across it (positive from row to column).

    `overflow`: the sensing instrument's fixed range was too low for the current (its overflow
    reading): `current` is NaN, and the cell's conductance is not known, not zero or huge.
    `unreachable` names the relay route that failed its check when the cell read as an open
    circuit and a relay of its route does not conduct (`current` is then NaN: the cell was not
    measured, it is not 0 S).

    On a bench with a calibrated chip model that corrects (`Bench.corrects`), `current` is
    what the cell carries at `voltage` with nothing else in the circuit (its conductance
    times `voltage`) and `raw_current` what the instrument sensed; otherwise `raw_current`
    is NaN and `current` is the sensed current."""

    row: int
    col: int
    voltage: float
    current: float
    compliance: bool
    timestamp: float
    overflow: bool = False
    unreachable: str = ""
    raw_current: float = math.nan

    @property
    def corrected(self) -> bool:
        return not math.isnan(self.raw_current)

    @property
    def conductance(self) -> float:
        return self.current / self.voltage if self.voltage else math.nan


class ReadingBatch(list):
    """The readings of one measurement of many cells (a board's row: every column at once), as
    `CellReading`s and as the arrays they were made from, for whoever takes them in bulk (the
    run store, reading statistics): ``row``, ``col``, ``voltage``, ``current``,
    ``compliance``, ``timestamp`` and ``raw_current`` (None when not corrected). Not to be
    changed after it is made (the list and the arrays would differ)."""

    def __init__(self, row, col, voltage, current, compliance, timestamp,
                 raw_current=None):
        count = len(current)
        self.row = np.broadcast_to(np.asarray(row, dtype=np.intp), (count,))
        self.col = np.asarray(col, dtype=np.intp)
        self.voltage = np.broadcast_to(np.asarray(voltage, dtype=float), (count,))
        self.current = np.asarray(current, dtype=float)
        self.compliance = np.asarray(compliance, dtype=bool)
        self.timestamp = np.broadcast_to(np.asarray(timestamp, dtype=float), (count,))
        self.raw_current = None if raw_current is None else np.asarray(raw_current, float)
        raws = [math.nan] * count if raw_current is None else self.raw_current.tolist()
        super().__init__(map(CellReading, self.row.tolist(), self.col.tolist(),
                             self.voltage.tolist(), self.current.tolist(),
                             self.compliance.tolist(), self.timestamp.tolist(),
                             [False] * count, [""] * count, raws))

    @classmethod
    def joined(cls, batches: Sequence[ReadingBatch]) -> ReadingBatch:
        """One batch of the readings of `batches`, in their order (the measurements one
        exchange took, stored together): their readings and arrays, not made again."""
        batch = cls.__new__(cls)
        list.__init__(batch, (reading for part in batches for reading in part))
        for name in ("row", "col", "voltage", "current", "compliance", "timestamp"):
            setattr(batch, name, np.concatenate([getattr(part, name) for part in batches]))
        batch.raw_current = (None if batches[0].raw_current is None else
                             np.concatenate([part.raw_current for part in batches]))
        return batch


@dataclass(frozen=True)
class MvmResult:
    """Column currents of one matrix-vector product (positive into the columns).

    `compliance[j]` is True when column j's sense was at its limit; `row_compliance[i]` when row
    i's driver was (its voltage sagged, so every column current is off). On a bench that
    corrects with a calibrated chip model, `currents` are the ideal products the cells give
    (`ChipModel.correct_mvm`) and `raw_currents` what the board sensed (None otherwise).
    """

    v_rows: np.ndarray
    currents: np.ndarray
    compliance: np.ndarray
    row_compliance: np.ndarray
    timestamp: float
    raw_currents: np.ndarray | None = None


@dataclass(frozen=True)
class LineReading:
    """Currents of one sensed line, from its instrument into the array (A), one per reading,
    with the compliance flag of each (the line's source, or any source driving a level,
    at its limit)."""

    currents: np.ndarray
    compliance: np.ndarray
    timestamp: float


class IoCounter:
    """Counts instrument round trips (commands written), per instrument, and the seconds spent
    writing and reading (on a virtual bench, its simulation answering too)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.seconds = 0.0

    def add(self, instrument: str, n: int = 1) -> None:
        self.counts[instrument] += n

    @property
    def total(self) -> int:
        return sum(self.counts.values())
