"""The dry-run ledger: what the recording instruments' state does to every cell.

After every call it works out each crossbar line's potential from the bench file's wiring (which
relay joins which line to which terminal, what each terminal sources; which board line is which
chip line) and keeps, per cell, the largest |V| across it and the largest current the sources
could push through it (the smaller compliance of its two lines). Each pulse adds its worst-case
energy |V| x I_limit x width x count, and an estimate with every biased cell at the LRS
conductance of the chip's device preset, capped by the worst case; each point of a lockstep
sweep counts the same way for the point's duration.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from xbarlab.benchfile import Bench as BenchSpec
from xbarlab.benchfile import Line
from xbarlab.dryrun.instruments import (
    RecordingBoard,
    RecordingMatrix,
    RecordingPairedSMU,
    RecordingSMU,
)
from xbarlab.interfaces import LineState
from xbarlab.safety import SafetyGuard

_GROUND_LIMIT = math.inf
QUERIES = frozenset({"read_current_limit", "output_enabled", "measure", "measure_currents",
                     "closed", "line_levels", "idle_mode"})
"""Calls of the recording instruments that only read: every call that changes what a line sees
is logged, and observed, when it makes the change, so observing a query again adds nothing."""


class Ledger:
    """Per-cell worst case (|V| across, |I| the sources allow) and pulse energy, from the state of
    the recording instruments after every call."""

    def __init__(self, spec: BenchSpec, smus: Mapping[str, RecordingSMU],
                 matrices: Mapping[str, RecordingMatrix], boards: Mapping[str, RecordingBoard],
                 guard: SafetyGuard, g_on: float,
                 pairs: Mapping[str, RecordingPairedSMU] | None = None) -> None:
        self.spec, self.smus, self.matrices, self.boards = spec, smus, matrices, boards
        self.pairs = dict(pairs or {})
        self.guard, self.g_on = guard, g_on
        rows, cols = spec.chip.rows, spec.chip.cols
        self.max_voltage = np.zeros((rows, cols))
        self.max_current = np.zeros((rows, cols))
        self.energy = 0.0
        self.energy_estimate = 0.0
        self.pulses = 0
        self._board_lines: dict[tuple[str, str, int], Line] = {}
        self._matrix_lines: dict[tuple[str, int], Line] = {}  # (matrix, output) -> line
        for line, port in spec.wiring.lines.items():
            if port.instrument in matrices:
                self._matrix_lines[(port.instrument, port.output)] = line
            if port.instrument in boards:
                board_rows = spec.instruments[port.instrument].rows
                index = port.output - 1 if line.kind == "row" else port.output - 1 - board_rows
                self._board_lines[(port.instrument, line.kind, index)] = line
        self._inputs: dict[tuple[str, int], str] = {}
        for (matrix, label), terminal in spec.wiring.inputs.items():
            index = spec.instruments[matrix].info.inputs.index(label) + 1
            self._inputs[(matrix, index)] = str(terminal)

    def board_line(self, board: str, kind: str, index: int) -> Line | None:
        """The chip line on board `board`'s `kind` line `index`, if the wiring has one."""
        return self._board_lines.get((board, kind, index))

    def terminal_at(self, matrix: str, input_port: int) -> str | None:
        """The terminal wired to `matrix` input `input_port` (1-based), if any."""
        return self._inputs.get((matrix, input_port))

    def terminal_of(self, line: Line) -> str | None:
        """The terminal ("smu.a", "ground") the recording matrices join `line` to, if any."""
        port = self.spec.wiring.lines[line]
        matrix = self.matrices.get(port.instrument)
        for channel in matrix.closed_set if matrix is not None else ():
            input_port, output = RecordingMatrix.ports(channel)
            if output == port.output:
                return self.terminal_at(port.instrument, input_port)
        return None

    def observe(self, instrument: str, method: str) -> None:
        if method in QUERIES:  # the state is the one the call that set it was observed in
            return
        across, allowed = self._across(self.potentials())
        if method == "pulse":
            self._count_pulse(instrument, across)
        elif method == "sweep_pair":
            self._count_sweep_point(self.pairs[instrument], across)
        biased = ~np.isnan(across)
        self.max_voltage[biased] = np.maximum(self.max_voltage[biased], across[biased])
        current = np.where(across > 0, allowed, 0.0)
        self.max_current[biased] = np.maximum(self.max_current[biased], current[biased])

    def potentials(self) -> dict[Line, tuple[float, float]]:
        """Line -> (volts, current limit) for every line tied to a source; others float."""
        potentials: dict[Line, tuple[float, float]] = {}
        for name, matrix in self.matrices.items():
            for channel in matrix.closed_set:
                input_port, output = RecordingMatrix.ports(channel)
                line = self._matrix_lines.get((name, output))
                terminal = self.terminal_at(name, input_port)
                if line is None or terminal is None:
                    continue
                source = self._terminal_potential(terminal)
                if source is not None:
                    potentials[line] = source
        for name, board in self.boards.items():
            pulse_rows, pulse_cols = board.pulse_levels or ({}, {})
            for kind, levels, pulsed in (("row", board.row_levels, pulse_rows),
                                         ("col", board.column_levels, pulse_cols)):
                for index, level in enumerate(levels):
                    line = self.board_line(name, kind, index)
                    level = pulsed.get(index, level)
                    if line is None:
                        continue
                    if level == LineState.GROUND:
                        potentials[line] = (0.0, _GROUND_LIMIT)
                    elif level != LineState.FLOAT:
                        potentials[line] = (float(level), board.current_limit)
        return potentials

    def _terminal_potential(self, terminal: str) -> tuple[float, float] | None:
        if terminal == "ground":
            return 0.0, _GROUND_LIMIT
        smu = self.smus[terminal]
        if not smu.output:
            return None
        if smu.function == "CURR":  # the voltage can reach the voltage limit
            return smu.limit, abs(smu.level)
        level = smu.pulse_active if smu.pulse_active is not None else smu.level
        return level, smu.limit

    def _across(self, potentials: Mapping[Line, tuple[float, float]]):
        """|V| across every cell (NaN unless both its lines are tied to a source) and the
        current its sources allow through it."""
        rows, cols = self.max_voltage.shape
        v_row = np.full(rows, np.nan)
        i_row = np.full(rows, np.nan)
        v_col = np.full(cols, np.nan)
        i_col = np.full(cols, np.nan)
        for line, (volts, limit) in potentials.items():
            if line.kind == "row":
                v_row[line.index], i_row[line.index] = volts, limit
            else:
                v_col[line.index], i_col[line.index] = volts, limit
        return np.abs(v_row[:, None] - v_col[None, :]), np.minimum(i_row[:, None], i_col[None, :])

    def _count_pulse(self, instrument: str, across: np.ndarray) -> None:
        """Add a pulse's energy: the bound |V| x I_limit x on-time of its pulsed sources, and
        the estimate, every biased cell at `g_on` (V^2 x g_on x on-time), capped by the bound."""
        self.pulses += 1
        if instrument in self.boards:
            board = self.boards[instrument]
            rows, cols = board.pulse_levels or ({}, {})
            volts = sum(abs(v) for v in [*rows.values(), *cols.values()])
            on_time = board.pulse_width * board.pulse_count
            bound = volts * board.current_limit * on_time
        else:
            smu = self.smus[instrument]
            on_time = smu.pulse_width * smu.pulse_count
            bound = abs(smu.pulse_active or 0.0) * smu.limit * on_time
        self.energy += bound
        self.energy_estimate += min(bound, float(np.nansum(across**2)) * self.g_on * on_time)

    def _count_sweep_point(self, pair: RecordingPairedSMU, across: np.ndarray) -> None:
        """Add one point of a lockstep sweep like a pulse of the point's duration: the bound
        |V| x I_limit summed over the two sweeping channels, and the estimate with every biased
        cell at `g_on`, capped by the bound."""
        seconds = pair.point_seconds
        bound = sum(abs(c.level) * c.limit for c in pair.sweeping or ()) * seconds
        self.energy += bound
        self.energy_estimate += min(bound, float(np.nansum(across**2)) * self.g_on * seconds)
