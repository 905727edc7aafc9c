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
_GROUNDED = -math.inf
"""A grounded board line's level in `Ledger.line_arrays` (0 V, no current limit)."""
_LEVEL_VOLTS = {LineState.FLOAT: math.nan, LineState.GROUND: _GROUNDED}
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
        self._board_indices: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
        for name in boards:  # (board, kind) -> (board line indices, their chip lines)
            for kind in ("row", "col"):
                pairs = sorted((k, line.index) for (board, of, k), line
                               in self._board_lines.items() if board == name and of == kind)
                self._board_indices[(name, kind)] = (np.array([k for k, _ in pairs], int),
                                                     np.array([i for _, i in pairs], int))
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
        across, allowed = self._across()
        if method in ("pulse", "pulse_pair"):
            self._count_pulse(instrument, across)
        elif method == "sweep_pair":
            self._count_sweep_point(self.pairs[instrument], across)
        np.fmax(self.max_voltage, across, out=self.max_voltage)  # NaN (floating): unchanged
        np.fmax(self.max_current, np.where(across > 0, allowed, across), out=self.max_current)

    def potentials(self) -> dict[Line, tuple[float, float]]:
        """Line -> (volts, current limit) for every line tied to a source; others float."""
        arrays = self.line_arrays()
        return {Line(kind, int(k)): (float(volts[k]), float(limit[k]))
                for kind, (volts, limit) in zip(("row", "col"), (arrays[:2], arrays[2:]),
                                                strict=True)
                for k in np.flatnonzero(~np.isnan(volts))}

    def line_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Volts and current limit of every row and every column (NaN where it floats)."""
        rows, cols = self.max_voltage.shape
        v_row, i_row = np.full(rows, np.nan), np.full(rows, np.nan)
        v_col, i_col = np.full(cols, np.nan), np.full(cols, np.nan)
        by_kind = {"row": (v_row, i_row), "col": (v_col, i_col)}
        for name, matrix in self.matrices.items():
            for channel in matrix.closed_set:
                input_port, output = RecordingMatrix.ports(channel)
                line = self._matrix_lines.get((name, output))
                terminal = self.terminal_at(name, input_port)
                if line is None or terminal is None:
                    continue
                source = self._terminal_potential(terminal)
                if source is not None:
                    volts, limit = by_kind[line.kind]
                    volts[line.index], limit[line.index] = source
        for name, board in self.boards.items():
            pulse_rows, pulse_cols = board.pulse_levels or ({}, {})
            for kind, levels, pulsed in (("row", board.row_levels, pulse_rows),
                                         ("col", board.column_levels, pulse_cols)):
                on_board, on_chip = self._board_indices[(name, kind)]
                board_volts = np.array([_LEVEL_VOLTS.get(level, level) if isinstance(
                    level, LineState) else level for level in levels], float)
                for index, level in pulsed.items():
                    board_volts[index] = _LEVEL_VOLTS.get(level, level) if isinstance(
                        level, LineState) else level
                board_limit = np.where(board_volts == _GROUNDED, _GROUND_LIMIT,
                                       board.current_limit)
                volts, limit = by_kind[kind]
                chosen = board_volts[on_board]
                tied = ~np.isnan(chosen)
                volts[on_chip[tied]] = np.where(chosen[tied] == _GROUNDED, 0.0, chosen[tied])
                limit[on_chip[tied]] = board_limit[on_board][tied]
        return v_row, i_row, v_col, i_col

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

    def _across(self):
        """|V| across every cell (NaN unless both its lines are tied to a source) and the
        current its sources allow through it."""
        v_row, i_row, v_col, i_col = self.line_arrays()
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
        else:  # one channel, or every channel pulsing with an instrument's (paired, armed)
            smus = [smu for smu in self.smus.values() if smu.pulse_active is not None]
            on_time = smus[0].pulse_width * smus[0].pulse_count
            bound = sum(abs(smu.pulse_active) * smu.limit for smu in smus) * on_time
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
