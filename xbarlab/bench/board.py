"""Array-board benches: chip lines on board lines, levels set in as few commands as fit.

`BoardLines` is part of `xbarlab.bench.operations.Bench` and works on its state (spec, guard,
the board, the line levels and current limit it last set). Chip line i sits on the board line
the wiring names; a set-lines command is used while it fits the board's command length, else one
full-vector command per kind of line, after one command that puts every line in the idle state
when columns that are not idle change with the rows (the rows' new levels never meet the
columns' old ones).

A 1T1R chip (``[chip] device = "1t1r"``) has a gate on every row's word line (array_board.md
§6.6). Every operation sets its lines first, then the gates: the rows it reaches open, every
other row's transistors off (0 V), so no sneak path runs through an unselected row. Reads open
the selected row at ``limits.max_gate_voltage`` (the transistor fully on); a SET pulse opens it
at the gate voltage whose saturation current is the pulse's compliance (the chip's transistor
law, ``Chip.gate_for_compliance``), the line drivers then limited only at the bench's
max_compliance, as 1T1R arrays are programmed; a RESET opens it fully. Every idle command (the
end of a session, every error path) also puts every gate at 0 V.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from xbarlab.bench.readings import BenchError, LineReading
from xbarlab.bench.schemes import shift_candidates, shifted, tidy
from xbarlab.benchfile import Line
from xbarlab.interfaces import LineState, Reading

SET_LINES_CHARACTERS = 16
"""Upper estimate of the characters one line takes in a board's set-lines command (``R12=0.1,``)."""
BOARD_COMMAND_CHARACTERS = 4000
"""Longest board command the bench builds (the board accepts 4096, array_board.md)."""


class BoardLines:
    """Board-bench half of `Bench` (see the module docstring)."""

    def _board_indices(self) -> tuple[np.ndarray, np.ndarray]:
        """Board line index of every chip row and column, from the wiring: channel k is board
        row k-1 for k <= the board's rows, else board column k-1-rows (benchfile)."""
        inst = self.spec.instruments[self._board_name]
        rows, cols = np.zeros(self.rows, int), np.zeros(self.cols, int)
        for line, port in self.spec.wiring.lines.items():
            on_row_driver = port.output <= inst.rows
            if on_row_driver != (line.kind == "row"):
                raise BenchError(
                    f"bench {self.spec.name!r}: {line} is on board channel {port.output}; "
                    f"allowed: rows on channels 1..{inst.rows}, columns on "
                    f"{inst.rows + 1}..{inst.rows + inst.cols}"
                )
            if line.kind == "row":
                rows[line.index] = port.output - 1
            else:
                cols[line.index] = port.output - 1 - inst.rows
        return rows, cols

    def _board_gates(self, open_rows: Mapping[int, float]) -> None:
        """1T1R chips: the gates of chip rows `open_rows` at their voltages (V), every other
        row's at 0 V; each checked against max_gate_voltage before anything is sent, and only
        what changed sent (after an idle command every gate is at 0 V). Nothing elsewhere."""
        if self.spec.chip.device != "1t1r":
            return
        for row, volts in open_rows.items():
            self.guard.check_gate_voltage(f"gate of row:{row}", volts)
        target = dict.fromkeys(range(self.rows), 0.0) | dict(open_rows)
        changed = {row: v for row, v in target.items() if self._board_gate_levels.get(row) != v}
        every = set(target.values())
        if len(changed) > 1 and len(every) == 1 or len(changed) > 2 * len(open_rows) + 1:
            # every row at one voltage (an mvm) or many to close: one command for all first
            volts = every.pop() if len(every) == 1 else 0.0
            self._board.set_all_gates(volts)
            self._board_gate_levels = dict.fromkeys(range(self.rows), volts)
            changed = {row: v for row, v in target.items() if v != volts}
        for row, volts in changed.items():
            self._board_gate_levels.pop(row, None)
            self._board.set_gate(int(self._board_rows[row]), volts)
            self._board_gate_levels[row] = volts

    def _gates_closed(self) -> None:
        """An idle command put every gate at 0 V (array_board.md §6.3)."""
        self._board_gate_levels = dict.fromkeys(range(self.rows), 0.0)

    def _read_gate(self, rows) -> dict[int, float]:
        """Rows `rows` open for a read: their transistors fully on."""
        return dict.fromkeys(rows, self.spec.limits.max_gate_voltage)

    def _board_limit(self, limit: float) -> None:
        if limit != self._board_current_limit:
            self._board_current_limit = None
            self._board.set_current_limit(limit)
            self.guard.verify_current_limit(self._board_name, self._board, limit)
            self._board_current_limit = limit

    def _board_read(self, levels, row, col, v_read, scheme, limit, count) -> list[Reading]:
        """`count` readings of cell (row, col) under one bias state, in one round trip: the
        board's read-one helper for ``float``, else the lines at the scheme's levels and one
        repeated measurement of the cell's column."""
        if scheme == "float":
            self.guard.check_voltage(f"read level on row:{row}", v_read)
            self._board_limit(limit)
            self._board_gates(self._read_gate([row]))
            # the row current: positive for a positive cell current
            on_board = int(self._board_rows[row]), int(self._board_cols[col])
            if count == 1:
                return [self._board.read_one(*on_board, v_read)]
            return self._board.read_one_repeated(*on_board, v_read, count)
        moved = min(
            (shifted(levels, offset) for offset in shift_candidates(levels)),
            key=lambda lv: max(abs(v) for v in lv.values() if v is not None),
        )
        rest = self._idle_state if scheme == "idle" else LineState.FLOAT
        targets = {line: rest if v is None else v for line, v in moved.items()}
        self.guard.check_voltages("read level", {
            line: level for line, level in moved.items() if level is not None})
        self._board_limit(limit)
        self._board_apply(targets)
        self._board_gates(self._read_gate([row]))
        on_board = int(self._board_cols[col])
        got = self._board.measure_repeated(count, columns=[on_board])
        limited = np.asarray(got.row_compliance, bool)[self._board_rows].any() or bool(
            got.column_compliance[on_board])
        return [Reading(math.nan, -float(current), bool(limited), got.timestamp)
                for current in np.asarray(got.column_currents, float)[:, 0]]

    def _board_measure_lines(self, levels, sensed, limit: float, count: int
                             ) -> dict[Line, LineReading]:
        """The lines at `levels` (floating where None), then `count` measurements of every
        line current; each sensed line's currents into the array. Any line driver at its
        limit flags the measurement (its line sagged)."""
        targets = {line: LineState.FLOAT if v is None else v for line, v in levels.items()}
        for line, level in levels.items():
            if level is not None:
                self.guard.check_voltage(f"level on {line}", level)
        self._board_limit(limit)
        self._board_apply(targets)
        driven_rows = [line.index for line, level in levels.items()
                       if line.kind == "row" and level is not None]
        self._board_gates(self._read_gate(driven_rows))
        readings = [self._board.measure_currents() for _ in range(count)]
        result = {}
        for line in sensed:
            on_board = (self._board_rows if line.kind == "row" else self._board_cols)[line.index]
            currents = np.array([(r.row_currents if line.kind == "row" else r.column_currents)
                                 [on_board] for r in readings], float)
            limited = np.array([bool(np.any(r.row_compliance) or np.any(r.column_compliance))
                                for r in readings])
            result[line] = LineReading(currents, limited, readings[-1].timestamp)
        return result

    def _board_apply(self, targets: Mapping[Line, float | LineState]) -> None:
        """Lines to `targets`, each level at 12 significant digits (BOARD_LEVEL_CHARACTERS),
        sending only what changed."""
        tidied = {v: v if isinstance(v, LineState) else tidy(v) for v in set(targets.values())}
        # (0.0 and -0.0 share an entry: the board is sent either as "0.0")
        targets = {line: tidied[v] for line, v in targets.items()}
        changed = dict(sorted(targets.items() - self._board_levels.items()))  # lines in order
        if not changed:
            return
        rows = {int(self._board_rows[line.index]): v
                for line, v in changed.items() if line.kind == "row"}
        cols = {int(self._board_cols[line.index]): v
                for line, v in changed.items() if line.kind == "col"}
        columns_idle = all(self._board_levels.get(line) == self._idle_state
                           for line in changed if line.kind == "col")
        self._board_levels.update(changed)
        states = set(self._board_levels.values())
        if len(states) == 1 and isinstance(state := next(iter(states)), LineState) and (
                state == self._idle_state or self._board_is_the_chip()):
            # every board line to one state (the lines no chip line uses are idle)
            self._board.float_all() if state == LineState.FLOAT else self._board.ground_all()
            return
        if len(changed) * SET_LINES_CHARACTERS > BOARD_COMMAND_CHARACTERS:
            if rows and not columns_idle:
                # between two commands the new rows would face the old columns (from +V/2 to
                # -V/2 everywhere: V across every cell); every line goes idle at once first
                self._board.set_idle_mode(self._idle_state)
                self._gates_closed()
            if rows:  # one full-vector command per kind instead of a too long VSET
                self._board.set_rows(self._board_vector("row", self._board.rows))
            if cols:
                self._board.set_columns(self._board_vector("col", self._board.columns))
            return
        self._board.set_lines(rows=rows or None, columns=cols or None)

    def _board_is_the_chip(self) -> bool:
        """Every board line carries a chip line."""
        return (self._board.rows, self._board.columns) == (self.rows, self.cols)

    def _board_vector(self, kind: str, size: int) -> list[float | LineState]:
        """Every board line of `kind`: its chip line's level, idle where no chip line is."""
        vector: list[float | LineState] = [self._idle_state] * size
        indices = self._board_rows if kind == "row" else self._board_cols
        for index, on_board in enumerate(indices):
            vector[on_board] = self._board_levels[Line(kind, index)]
        return vector

    def _board_pulse(self, levels, row, col, scheme, width, count, period, limit) -> float:
        """Unselected lines biased in DC, then one PULSE of the selected row and column.

        ``v/2``: every line sits at V/2 in DC (no cell sees a voltage between pulses) and stays
        there. ``v/3``: unselected rows at V/3, columns at 2V/3 and the selected pair with them
        (every cell at -V/3 in DC, as during the pulse), then back to the idle mode at once.
        """
        selected_row, selected_col = Line("row", row), Line("col", col)
        pulsed = {selected_row: levels[selected_row], selected_col: levels[selected_col]}
        energy = self._check_board_pulse(pulsed, width, limit, count)
        gate = self._pulse_gate(pulsed[selected_row] - pulsed[selected_col], limit)
        if gate is not None and pulsed[selected_row] > pulsed[selected_col]:
            limit = self.spec.limits.max_compliance  # the transistor is the compliance
        dc: dict[Line, float | LineState] = {}
        floating = LineState.FLOAT
        for line, level in levels.items():
            if line in pulsed:
                neighbour = Line(line.kind, 1 if line.index == 0 else 0)
                level = levels.get(neighbour)
            dc[line] = floating if level is None else level
        self.guard.check_voltages(f"{scheme} bias", {
            line: level for line, level in dc.items() if level is not floating})
        self._board_limit(limit)
        self._board_apply(dc)
        if gate is not None:
            self._board_gates({row: gate})
        self._board.pulse(width, rows={int(self._board_rows[row]): pulsed[selected_row]},
                          columns={int(self._board_cols[col]): pulsed[selected_col]},
                          count=count, period=period)
        if scheme == "v/3":
            self._board_to_idle()
        return energy

    def _pulse_gate(self, volts: float, limit: float) -> float | None:
        """1T1R chips: the selected row's gate for a pulse of `volts` across the cell: a SET
        (positive) at the gate whose saturation current is `limit`, a RESET fully open;
        None for a chip without gates."""
        if self.spec.chip.device != "1t1r":
            return None
        if volts <= 0.0:
            return self.spec.limits.max_gate_voltage
        return self.guard.check_gate_voltage(
            f"gate of the selected row for a SET compliance of {limit:g} A",
            self.spec.chip.gate_for_compliance(limit))

    def _board_to_idle(self) -> None:
        if any(level != self._idle_state for level in self._board_levels.values()) or any(
                self._board_gate_levels.values()):
            self._board.set_idle_mode(self._idle_state)
            self._board_levels = {line: self._idle_state for line in self._all_lines()}
            self._gates_closed()

    def _check_board_pulse(self, pulsed, width, limit, count) -> float:
        """Check each pulsed line; the energy bound is the one the selected cell can receive."""
        energy = sum(
            self.guard.check_pulse(str(line), v, width, limit, count) for line, v in pulsed.items()
        )
        return self.guard.check_energy("pulse energy bound of the selected cell", energy)
