"""Cell sweeps: a staircase of voltages across one cell as lockstep list sweeps of two channels
of one SMU, one round trip for the readings of a whole list.

`CellSweeps` is part of `xbarlab.bench.operations.Bench` and works on its state (spec, guard,
channels, drivers, the relays and source levels it last set). Only voltage differences reach the
cells, so a scheme whose unselected lines all sit at one fraction u of V (``float``: none,
``ground``: 0, ``v/2``: V/2) is the same bias as the selected row at (1 - u) V, the selected
column at -u V and every other line at 0 V (or floating). Across a staircase only the two
selected lines change: the row on one channel and the column on another channel of the same
instrument, swept point by point together (`xbarlab.interfaces.PairedSweep`), every other line
on the ground input (or an SMU at 0 V). ``v/3`` holds unselected rows and columns at different
levels that follow V, which two channels cannot do.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from xbarlab.bench.matrix import Source
from xbarlab.bench.readings import BenchError, CellReading
from xbarlab.bench.schemes import bias_levels, tidy
from xbarlab.benchfile import Line
from xbarlab.drivers.validators import finite_real
from xbarlab.interfaces import PairedSweep


class CellSweeps:
    """Cell-sweep half of `Bench` (see the module docstring)."""

    def sweep_cell(
        self,
        row: int,
        col: int,
        levels: Sequence[float],
        scheme: str = "v/2",
        current_limit: float | None = None,
    ) -> list[CellReading]:
        """The current through cell (row, col) at each of `levels` (volts across the cell, in
        order), unselected lines per `scheme`, as lockstep list sweeps of two channels of one
        SMU (operation ``sweep_cell``). Every level, across the cell and on both lines, is
        checked against the bench limits, and the bench's ability to run the sweep, before
        anything is sent: `BenchError` when no instrument sweeps two channels together on the
        selected lines, or the scheme needs more than two lines to move."""
        self._check_cell(row, col)
        volts = _staircase_levels(levels)
        limit = self._limit(current_limit)
        if self._board is not None:
            raise BenchError(f"bench {self.spec.name!r} drives its lines from a board; a cell "
                             "sweep needs two channels of one SMU on a switch matrix")
        row_levels, col_levels, rest = self._two_line_levels(scheme, row, col, volts)
        row_line, col_line = Line("row", row), Line("col", col)
        for where, values in ((f"across cell ({row}, {col})", volts),
                              (f"on {row_line}", row_levels), (f"on {col_line}", col_levels)):
            for value in values:
                self.guard.check_voltage(f"sweep level {where}", value)
        name, row_terminal, col_terminal, assignment = self._pair_plan(row_line, col_line, rest)
        before = self.io.total
        try:
            self._apply(assignment, limit)
            row_readings, col_readings = self._paired_sweeps(
                self.drivers[name], row_terminal, col_terminal, row_levels, col_levels)
        except BaseException:
            for terminal in (row_terminal, col_terminal):  # level unknown after a failed sweep
                self._sources[terminal] = Source(lines=self._sources[terminal].lines)
            raise
        finally:
            self._count("sweep_cell", before)
        # the column channel sinks the cell current; a limited row source sags the cell too
        return [CellReading(row, col, v, -c.current, c.compliance or r.compliance, c.timestamp,
                            c.overflow)
                for v, r, c in zip(volts, row_readings, col_readings, strict=True)]

    def _two_line_levels(self, scheme: str, row: int, col: int, volts: list[float]):
        """(row levels, column levels, every other line's level) of `scheme` shifted so that
        only the selected row and column follow V; `BenchError` when no shift does that."""
        if scheme == "idle":
            raise BenchError("scheme 'idle' parks the unselected lines on an SMU that stays "
                             "off; a cell sweep offers float, ground and v/2")
        unit = bias_levels(scheme, row, col, 1.0, self.rows, self.cols)
        selected = (Line("row", row), Line("col", col))
        fractions = {v for line, v in unit.items() if line not in selected and v is not None}
        if len(fractions) > 1:
            raise BenchError(
                f"scheme {scheme!r} holds the unselected rows and columns at different levels "
                f"that follow V ({', '.join(f'{f:g} V' for f in sorted(fractions))} per volt); "
                "a cell sweep moves two lines only (allowed: float, ground, v/2)")
        u = fractions.pop() if fractions else 0.0
        rest = {line: None if v is None else 0.0 for line, v in unit.items()
                if line not in selected}
        return [tidy((1 - u) * v) for v in volts], [tidy(-u * v) for v in volts], rest

    def _pair_plan(self, row_line: Line, col_line: Line, rest):
        """(instrument, row terminal, column terminal, assignment at 0 V) of the first
        instrument that sweeps two channels together and reaches both selected lines, the
        other lines on ground or other SMUs; `BenchError` naming what is missing."""
        for name, driver in sorted(self.drivers.items()):
            if not isinstance(driver, PairedSweep):
                continue
            terminals = sorted(t for t in self.channels if t.rsplit(".", 1)[0] == name)
            for col_terminal in terminals:
                for row_terminal in terminals:
                    if row_terminal == col_terminal or not (
                        self._reachable(col_terminal, [col_line])
                        and self._reachable(row_terminal, [row_line])
                    ):
                        continue
                    try:
                        others = self.plan(rest, reserved=frozenset((row_terminal,
                                                                     col_terminal)))
                    except BenchError:
                        continue
                    assignment = {col_terminal: (0.0, frozenset([col_line])),
                                  row_terminal: (0.0, frozenset([row_line])), **others}
                    return name, row_terminal, col_terminal, assignment
        raise BenchError(
            f"bench {self.spec.name!r} has no instrument that sweeps two of its channels "
            f"together with one on {row_line} and one on {col_line} and the other lines "
            "biased (a 2600B or B2900 with two channels on the matrix inputs)")

    def _paired_sweeps(self, instrument: PairedSweep, row_terminal: str, col_terminal: str,
                       row_levels: list[float], col_levels: list[float]):
        """Both channels' readings of lockstep sweeps of the whole staircase, in lists of at
        most the channels' `max_sweep_points`."""
        chunk = max(1, min(int(self.channels[t].max_sweep_points)
                           for t in (row_terminal, col_terminal)))
        rows, cols = [], []
        for start in range(0, len(row_levels), chunk):
            r, c = instrument.sweep_pair(
                row_terminal.rsplit(".", 1)[1], row_levels[start:start + chunk],
                col_terminal.rsplit(".", 1)[1], col_levels[start:start + chunk], 0.0)
            rows += r
            cols += c
        return rows, cols


def _staircase_levels(levels: Sequence[float]) -> list[float]:
    """The sweep's levels as floats; `ValueError` for an empty list or a level that is not a
    finite number."""
    if isinstance(levels, (str, bytes)) or not isinstance(levels, (Sequence, np.ndarray)):
        raise ValueError(f"levels = {levels!r}: allowed a sequence of volts")
    if len(levels) == 0:
        raise ValueError("levels is empty: allowed 1 or more levels")
    return [finite_real(f"levels[{k}]", value) for k, value in enumerate(levels)]
