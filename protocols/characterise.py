"""A short characterisation of a few cells: the conductance range the chip's cells span, measured.

Protocols that need to know where a chip's cells can go (write-verify's target range,
program-efficient's HRS and LRS targets) learn it here instead of assuming a device's numbers:
each probed cell is driven to its HRS bound by trains of full RESET pulses (``-v_max``) and to its
LRS bound by trains of full SET pulses (``+v_max``), a train at a time until a read moves by less
than `SETTLED` of its value (soft bounds: a cell approaches its bound ever slower), and each bound
is the mean of ``reads`` readings there. A cell whose two bounds are less than `SWITCHING_RATIO`
apart did not switch (a stuck cell): it is left out. The cells end at their LRS bound; the
protocols that use this program them afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from xbarlab.protocols.recording import reading_points

from xbarlab.bench import BenchError, NothingMeasured
from xbarlab.plan import Phase
from xbarlab.safety import signals_held

TRAIN = 10
"""Pulses per train, between two reads."""
SETTLED = 0.02
"""A bound is reached when a train moves the mean read by less than this fraction."""
MAX_TRAINS = 30
"""Most trains toward one bound (then the last read is taken as the bound)."""
SWITCHING_RATIO = 2.0
"""Least LRS / HRS ratio of a cell that switches; below it the cell is taken as stuck."""


@dataclass(frozen=True)
class CellRange:
    """Measured HRS and LRS bounds (S) of the probed cells that switch, and the cells left out."""

    hrs: np.ndarray
    lrs: np.ndarray
    stuck: tuple[tuple[int, int], ...]
    pulses: int = 0
    """Pulses the characterisation took."""
    unmeasured: int = 0
    """Probed cells whose reads came back without a value (NaN: nothing measured)."""

    def require(self, what: str) -> None:
        """`BenchError` naming `what` when no probed cell switched; `NothingMeasured` when
        nothing was measured."""
        if self.unmeasured:
            raise NothingMeasured(
                f"{what}: the instruments measured no conductance on the {self.unmeasured} "
                "cells probed (a dry run measures nothing); give the targets as parameters")
        if not self.hrs.size:
            raise BenchError(
                f"{what}: none of the {len(self.stuck)} cells probed switched (LRS / HRS < "
                f"{SWITCHING_RATIO:g}); give the targets as parameters or probe other cells")


def learned_values(run, key: str, given: Sequence[float],
                   learn: Callable[[CellRange], Sequence[float]],
                   measure: Callable[[], CellRange], what: str
                   ) -> tuple[list[float], bool, int]:
    """(`given`, False, 0) when none is 0; else (values, True, pulses), each 0 of `given`
    replaced by `learn`'s value from a `measure`d characterisation of that many pulses: once
    per run, kept in the run's checkpoint `key` so that a resumed run uses the same values."""
    if all(given):
        return list(given), False, 0
    kept = run.checkpoints().get(key)
    if kept:
        return list(kept["values"]), True, int(kept["pulses"])
    measured = measure()
    measured.require(what)
    values = [value or learnt for value, learnt in zip(given, learn(measured), strict=True)]
    run.checkpoint(key, {"values": values, "pulses": measured.pulses})
    return values, True, measured.pulses


def characterise_phase(probe: int, cells: int, reads: int, width: float) -> Phase:
    """The plan of a characterisation of `probe` of `cells` cells (`measure_range`), at its
    budget: every probed cell taken to both bounds in `MAX_TRAINS` trains of `TRAIN` pulses
    of `width` seconds, `reads` readings before and after each train."""
    probed = min(probe, cells)
    pulses = probed * 2 * MAX_TRAINS * TRAIN
    return Phase("characterising: learning the targets", probed, pulses,
                 probed * 2 * (1 + MAX_TRAINS) * reads, pulses * width)


def probe_cells(cells, count: int) -> list[tuple[int, int]]:
    """`count` cells spread evenly over `cells` (all of them when there are fewer)."""
    cells = list(cells)
    if len(cells) <= count:
        return cells
    picks = np.linspace(0, len(cells) - 1, count).round().astype(int)
    return [cells[k] for k in picks]


def measure_range(bench, cells, *, v_max: float, width: float, pulse_scheme: str,
                  v_read: float, read_scheme: str, reads: int,
                  current_limit: float | None = None, run=None) -> CellRange:
    """The HRS and LRS bounds of `cells` (module docstring), through `bench`'s operations;
    every pulse and reading recorded on `run` as it happens, when one is given."""
    hrs, lrs, stuck, unmeasured = [], [], [], 0
    probe = _Probe(bench, run, width, pulse_scheme, v_read, read_scheme, reads, current_limit)
    for row, col in cells:
        low = probe.bound(row, col, -abs(v_max))
        high = probe.bound(row, col, abs(v_max))
        if np.isnan(low) or np.isnan(high):
            unmeasured += 1
        elif high >= SWITCHING_RATIO * max(low, 0.0) and low > 0:
            hrs.append(low)
            lrs.append(high)
        else:
            stuck.append((row, col))
    return CellRange(np.array(hrs), np.array(lrs), tuple(stuck), probe.pulses, unmeasured)


class _Probe:
    """Pulse trains and reads of one characterisation (`measure_range`)."""

    def __init__(self, bench, run, width, pulse_scheme, v_read, read_scheme, reads,
                 current_limit):
        self.bench, self.run, self.width, self.pulse_scheme = bench, run, width, pulse_scheme
        self.v_read, self.read_scheme, self.reads = v_read, read_scheme, reads
        self.current_limit = current_limit
        self.pulses = 0

    def bound(self, row: int, col: int, volts: float) -> float:
        """Mean conductance of cell (row, col) once trains of `volts` pulses stop moving it."""
        last = self.mean_read(row, col)
        for _ in range(MAX_TRAINS):
            for _ in range(TRAIN):  # single pulses: no pulse period to fit each instrument
                with signals_held():
                    self.bench.pulse(row, col, volts, self.width, self.pulse_scheme,
                                     current_limit=self.current_limit)
                    self.pulses += 1
                    if self.run is not None:
                        self.run.record_point(row, col, "set" if volts > 0 else "reset",
                                              voltage=volts, pulse_width=self.width)
            now = self.mean_read(row, col)
            if np.isnan(now) or abs(now - last) <= SETTLED * max(abs(now), abs(last)):
                return now  # settled, or nothing measured (NaN): no train will tell more
            last = now
        return last

    def mean_read(self, row: int, col: int) -> float:
        batch = self.bench.read_repeated(row, col, self.v_read, self.read_scheme, self.reads)
        if self.run is not None:
            self.run.record_points(reading_points(batch))
        return float(np.mean([reading.conductance for reading in batch]))
