"""Bench check: error queues, and a wiring self-test that drives current through the chip.

`SelfTest` is part of `xbarlab.bench.operations.Bench` and uses its routing and board helpers.
"""

from __future__ import annotations

import numpy as np

from xbarlab.benchfile import Line

SELF_TEST_VOLTAGE = 0.1
"""Volts across the cells during the wiring self-test (well below any switching threshold)."""
CONTINUITY_CURRENT = 1e-10
"""Smallest current (A) that proves a closed path through a line's cells in the self-test."""


class SelfTest:
    """Bench-check half of `Bench` (see the module docstring)."""

    def check_error_queues(self) -> list[tuple[str, bool, str]]:
        """Drain every instrument's error queue: (instrument, empty, first error)."""
        results = []
        for name, driver in self.drivers.items():
            try:
                driver.check_errors("xbarlab bench check")
            except Exception as error:  # report every instrument, not only the first
                results.append((f"{name} error queue", False, str(error)))
            else:
                results.append((f"{name} error queue", True, "empty"))
        return results

    def self_test(self, volts: float = SELF_TEST_VOLTAGE) -> list[tuple[str, bool, str]]:
        """Wiring self-test through the chip: every relay of every wired matrix input, and every
        board line, must carry current. Returns (item, ok, detail) per relay or board.

        A matrix relay joining terminal T to line L is tested with L at `volts` from T (or from
        an SMU when T is ground) and every line of the other kind at 0 V, so the current flows
        through all of L's cells in parallel; a relay stuck open, an open line or a line whose
        cells are all open reads less than `CONTINUITY_CURRENT`; the closed relays are read back
        and must be the ones the bench set. Where a ground input reaches every line, each SMU
        terminal is first checked isolated (`_isolation`: a relay stuck closed). Leaves the
        bench idle.
        """
        results: list[tuple[str, bool, str]] = []
        try:
            every_line = sorted(self.spec.wiring.lines)
            if self.matrices and self._reachable("ground", every_line):
                results += [self._isolation(t, frozenset(every_line), volts)
                            for t in sorted(self.channels)]
            for terminal in sorted(self._terminal_ports):
                for line in self.spec.wiring.lines:
                    if self.spec.wiring.lines[line].instrument in self.matrices:
                        results.append(self._relay_continuity(terminal, line, volts))
            if self._board is not None:
                results.append(self._board_continuity(volts))
        finally:
            self.idle()
        return results

    def stuck_closed_relays(self, volts: float = SELF_TEST_VOLTAGE) -> dict[Line, tuple[str, str]]:
        """Matrix relays stuck closed, once per bench session: line -> (the input terminal it is
        stuck to, or "" when that is an input the check cannot name such as ground; the
        finding). Each SMU terminal is checked isolated (`_isolation`, where a ground input
        reaches every line); one that is not has its line found by grounding one line at a
        time (its stuck relay then shorts it to ground: the terminal in compliance; through
        the cells it is not). Then, where one terminal reaches every line, that terminal on
        every line with nothing else connected carries current only if a line is tied to
        another input too; that line shorts the terminal when it is the only line driven.
        A line two inputs are stuck to is reported once. The next operation sets the lines
        again (as after `route_fault`)."""
        if self._stuck_closed is not None:
            return self._stuck_closed
        found: dict[Line, tuple[str, str]] = {}
        lines = frozenset(line for line, port in self.spec.wiring.lines.items()
                          if port.instrument in self.matrices)
        if lines and self._reachable("ground", sorted(lines)):
            for terminal in sorted(t for t in self.channels if t in self._terminal_ports):
                _, ok, _ = self._isolation(terminal, lines, volts)
                if not ok:
                    for line in self._shorted_lines(terminal, lines, volts, grounded=True):
                        found[line] = (terminal, f"matrix input for {terminal} stuck closed "
                                                 f"to {line} (output "
                                                 f"{self.spec.wiring.lines[line].output})")
        sensing = next((t for t in sorted(self.channels) if t in self._terminal_ports
                        and self._reachable(t, sorted(lines))), None)
        if lines and sensing is not None and not self._isolated_alone(sensing, lines, volts):
            for line in self._shorted_lines(sensing, lines - set(found), volts,
                                            grounded=False):
                found[line] = ("", f"a matrix input other than the SMU terminals (ground) "
                                   f"stuck closed to {line} (output "
                                   f"{self.spec.wiring.lines[line].output})")
        self._stuck_closed = found
        return found

    def _isolated_alone(self, terminal: str, lines: frozenset[Line], volts: float) -> bool:
        """`terminal` at `volts` on every line, nothing else connected: no current."""
        return abs(self._sensed({terminal: (volts, lines)}, terminal).current) \
            < CONTINUITY_CURRENT

    def _sensed(self, assignment, terminal: str):
        """The reading of `terminal` with the lines at `assignment` (self-test levels)."""
        self._check_assignment(assignment, "self-test level")
        self._apply(assignment, self.current_limit)
        return self.channels[terminal].measure()

    def _shorted_lines(self, terminal: str, lines: frozenset[Line], volts: float,
                       grounded: bool) -> list[Line]:
        """The lines that short `terminal` (it reads in compliance) when each line alone is
        grounded (`grounded`: the terminal has no relay closed) or alone driven by it (else:
        the other lines float)."""
        shorted = []
        for line in sorted(lines):
            assignment = ({"ground": (0.0, frozenset([line])), terminal: (volts, frozenset())}
                          if grounded else {terminal: (volts, frozenset([line]))})
            if self._sensed(assignment, terminal).compliance:
                shorted.append(line)
        return shorted

    def stuck_closed_fault(self, assignment) -> str:
        """Why a reading taken under `assignment` (terminal -> (level, lines)) is not the
        cell's ('' when it is): a line tied by a relay stuck closed to an input other than
        the one the read gave it (a stuck line of an unnamed input: any but ground). Only
        what `stuck_closed_relays` found so far."""
        faults = []
        for line, (stuck_to, finding) in (self._stuck_closed or {}).items():
            given = next((t for t, (_, lines) in assignment.items() if line in lines), None)
            if given != (stuck_to or "ground"):
                faults.append(finding)
        return "; ".join(faults)

    def _isolation(self, terminal: str, lines: frozenset[Line], volts: float):
        """SMU `terminal` at `volts` with none of its relays closed and every line on ground:
        any current is a relay of its matrix input stuck closed (or a short at the input)."""
        current = abs(self._sensed({"ground": (0.0, lines), terminal: (volts, frozenset())},
                                   terminal).current)
        ok = current < CONTINUITY_CURRENT
        return (f"{terminal} isolated with its relays open", ok,
                f"{current:.3g} A" if ok else f"{current:.3g} A with none of its relays "
                "closed: a relay of its matrix input stuck closed")

    def _relay_continuity(self, terminal: str, line: Line, volts: float):
        others = frozenset(other for other in self.spec.wiring.lines if other.kind != line.kind)
        smus = sorted(self.channels)
        if terminal == "ground":
            sensing = next((t for t in smus if self._reachable(t, sorted(others))), None)
            assignment = {"ground": (0.0, frozenset([line]))}
            if sensing is not None:
                assignment[sensing] = (volts, others)
        else:
            sensing = terminal
            assignment = {terminal: (volts, frozenset([line]))}
            back = "ground" if self._reachable("ground", sorted(others)) else next(
                (t for t in smus if t != terminal and self._reachable(t, sorted(others))), None)
            if back is not None:
                assignment[back] = (0.0, others)
        port = self.spec.wiring.lines[line]
        item = f"{port.instrument} input for {terminal} to {line} (output {port.output})"
        if len(assignment) < 2:
            return item, False, "no second terminal to close the circuit through the chip"
        self._check_assignment(assignment, "self-test level")
        self._apply(assignment, self.current_limit)
        mismatches = self.relay_mismatches()
        if mismatches:
            return item, False, "; ".join(mismatches)
        current = abs(self.channels[sensing].measure().current)
        ok = current >= CONTINUITY_CURRENT
        return item, ok, (f"{current:.3g} A through the chip" if ok else
                          f"{current:.3g} A: relay stuck open, line open or every cell open")

    def _board_continuity(self, volts: float):
        self.guard.check_voltage("self-test level", volts)
        targets = {line: (volts if line.kind == "row" else 0.0) for line in self._all_lines()}
        self._board_apply(targets)
        reading = self._board.measure_currents()
        rows = np.abs(np.asarray(reading.row_currents, float)[self._board_rows])
        cols = np.abs(np.asarray(reading.column_currents, float)[self._board_cols])
        dead = [f"row:{i}" for i in np.flatnonzero(~(rows >= CONTINUITY_CURRENT))] + [
            f"col:{j}" for j in np.flatnonzero(~(cols >= CONTINUITY_CURRENT))]
        detail = (f"every line carries current (min {min(rows.min(), cols.min()):.3g} A)"
                  if not dead else f"no current on {', '.join(dead[:8])}"
                  + (f" and {len(dead) - 8} more" if len(dead) > 8 else ""))
        return f"{self._board_name} line drivers and senses", not dead, detail
