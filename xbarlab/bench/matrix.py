"""Routing on matrix benches: which SMU terminal or ground drives which line, and setting the
relays and sources to match while sending only what changed.

`MatrixRouting` is part of `xbarlab.bench.operations.Bench` and works on its state (spec, guard,
channels, matrices, the relays and source levels it last set). A sensed or pulsed line gets an
SMU of its own; the other lines share one terminal per level, 0 V on a ground input when wired.
Relays break before they make and never switch a line carrying a non-zero source level.
The bench tracks the relays itself, so a close is checked against that record instead of reading
the closed set back each time; `verify_relays` compares the record with the instruments (after
a read map, and in the bench check).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from xbarlab.bench.readings import BenchError, LineReading
from xbarlab.bench.schemes import line_list, shift_candidates, shifted, tidy
from xbarlab.bench.selftest import SELF_TEST_VOLTAGE
from xbarlab.benchfile import Line
from xbarlab.interfaces import LinkedPulse, PairedPulse, Reading

TRIGGER_LINE = 1
"""The digital I/O line of a ``trigger_link`` cable a linked pulse runs on."""


@dataclass
class Source:
    """What the bench last told one SMU terminal (None: not known / not set)."""

    level: float | None = None
    current_limit: float | None = None
    output: bool = False
    lines: frozenset[Line] = frozenset()


class MatrixRouting:
    """Matrix-bench half of `Bench` (see the module docstring)."""

    def _unused_crosspoints(self, matrix: str) -> list[str]:
        """Crosspoints of `matrix` joining an unwired input or an output with no chip line."""
        inst = self.spec.instruments[matrix]
        wired_inputs = {port for ports in self._terminal_ports.values()
                        for name, port in ports.items() if name == matrix}
        wired_outputs = {port.output for port in self.spec.wiring.lines.values()
                         if port.instrument == matrix}
        return [
            self.matrices[matrix].crosspoint(i, o)
            for i in range(1, len(inst.info.inputs) + 1)
            for o in range(1, inst.output_count + 1)
            if i not in wired_inputs or o not in wired_outputs
        ]

    def _terminal_ports_from_wiring(self) -> dict[str, dict[str, int]]:
        """terminal ("smu.a" or "ground") -> {matrix: 1-based input port}."""
        ports: dict[str, dict[str, int]] = {}
        for (matrix, label), terminal in self.spec.wiring.inputs.items():
            labels = self.spec.instruments[matrix].info.inputs
            ports.setdefault(str(terminal), {})[matrix] = labels.index(label) + 1
        return ports

    def _reachable(self, terminal: str, lines: Sequence[Line]) -> bool:
        return self._instruments_of(lines) <= self._terminal_ports.get(terminal, {}).keys()

    def _instruments_of(self, lines: Sequence[Line]) -> set[str]:
        """The instruments (matrices) the lines are wired to."""
        return set(map(self._instruments_of_line().__getitem__, lines))

    def _instruments_of_line(self) -> dict[Line, str]:
        """Line -> the instrument (matrix) it is wired to."""
        if self._instrument_of_line is None:
            self._instrument_of_line = {
                line: port.instrument for line, port in self.spec.wiring.lines.items()}
        return self._instrument_of_line

    def _crosspoint(self, matrix: str, input_port: int, output: int) -> str:
        """The matrix's name of a crosspoint (asked once per crosspoint, then remembered)."""
        key = (matrix, input_port, output)
        name = self._crosspoints.get(key)
        if name is None:
            name = self._crosspoints[key] = self.matrices[matrix].crosspoint(input_port, output)
        return name

    def plan(
        self,
        levels: Mapping[Line, float | None],
        exclusive: Sequence[Line] = (),
        avoid: frozenset[str] = frozenset(),
        reserved: frozenset[str] = frozenset(),
    ) -> dict[str, tuple[float, frozenset[Line]]]:
        """Which terminal drives which lines at which level, or `BenchError` if the bench lacks
        the sources. `exclusive` lines (sensed or pulsed) get an SMU of their own, one not in
        `avoid` when there is one; `reserved` terminals (already given other lines) take none."""
        groups: dict[float, list[Line]] = {}
        for line, level in levels.items():
            if level is not None:
                groups.setdefault(level, []).append(line)
        for line in exclusive:
            if levels[line] is not None:
                groups[levels[line]].remove(line)
        groups = {level: lines for level, lines in groups.items() if lines}
        demands: list[tuple[float, list[Line], bool]] = [
            (levels[line], [line], False) for line in exclusive
        ]
        demands += [(level, lines, level == 0.0) for level, lines in sorted(groups.items())]
        free = sorted(t for t in self.channels if t not in reserved)
        assignment: dict[str, tuple[float, frozenset[Line]]] = {}
        ports = self._terminal_ports
        for k, (level, lines, groundable) in enumerate(demands):
            needed = self._instruments_of(lines)
            if groundable and needed <= ports.get("ground", {}).keys():
                assignment["ground"] = (0.0, frozenset(lines))
                continue
            order = sorted(free, key=lambda t: t in avoid) if k < len(exclusive) else free
            terminal = next((t for t in order if needed <= ports.get(t, {}).keys()), None)
            if terminal is None:
                raise BenchError(
                    f"bench {self.spec.name!r} cannot bias the lines at "
                    f"{', '.join(f'{lv:g} V' for lv, _, _ in demands)} (a sensed or pulsed "
                    "line needs an SMU of its own, every other level an SMU or, at 0 V, a "
                    f"ground input); it has {', '.join(sorted(self._terminal_ports))}"
                )
            free.remove(terminal)
            assignment[terminal] = (level, frozenset(lines))
        return assignment

    def _best_read_plan(self, levels: Mapping[Line, float | None], sensed: Sequence[Line]):
        """The assignment of the lowest max |V| among the shifts the instruments can run,
        each of the `sensed` lines on an SMU of its own."""
        best = None
        error = None
        used = {v for v in levels.values() if v is not None}
        for offset in shift_candidates(levels):
            peak = max(abs(tidy(v + offset)) for v in used)
            if best is not None and peak >= best[0] - 1e-15:
                continue  # cannot beat the plan in hand: not worth planning
            moved = levels if offset == 0.0 and all(tidy(v) == v for v in used) else shifted(
                levels, offset)  # unshifted and tidy already: the same levels
            try:
                assignment = self.plan(moved, tuple(sensed))
            except BenchError as exc:
                error = error or exc
                continue
            best = (peak, moved, assignment)
        if best is None:
            raise error
        return best[1], best[2]

    def _matrix_read(self, levels, sense: Line, limit: float, count: int = 1,
                     plan_key=None, park: bool = False) -> list[Reading]:
        """`count` readings of the current sensed on `sense` with the lines at `levels`: one
        measurement, or (count > 1) the sensing SMU's `measure_repeated` at its own level (a
        buffer fill where the model has one, list sweeps of `max_sweep_points` otherwise).
        With `park`, the lines without a level go to an SMU terminal that stays off
        (`_idle_terminal`). `plan_key` is what `levels` were made from, ``(scheme, row, col,
        volts)`` (`bias_levels`): the plan of a read that passed the guard is kept for every
        cell whose row and column are on the same matrices, and read there with the rows and
        columns exchanged (`_exchanged`: the levels are the same but for those lines)."""
        plan = None
        if plan_key is not None:
            scheme, row, col, volts = plan_key
            cell = (Line("row", row), Line("col", col))
            key = (scheme, volts, park, *map(self._instruments_of_line().__getitem__, cell))
            kept = self._read_plans.get(key)
            if kept is not None:
                plan = kept[1] if kept[0] == cell else _exchanged(
                    kept[1], zip(kept[0], cell, strict=True))
        if plan is None:
            moved, assignment = self._best_read_plan(levels, (sense,))
            plan = (assignment, self._idle_terminal(moved, assignment) if park else {})
            violations = len(self.guard.violations)
            self._check_assignment(assignment, "read level")
            if plan_key is not None and len(self.guard.violations) == violations:
                self._read_plans[key] = (cell, plan)
        assignment, idle = plan
        self._apply(assignment, limit, idle)
        self._last_read_assignment = assignment
        terminal = next(t for t, (_, lines) in assignment.items() if sense in lines)
        channel = self.channels[terminal]
        readings = [channel.measure()] if count == 1 else channel.measure_repeated(count)
        # A driving source at its limit sags every line it drives, so the sensed current is not
        # the cell's either: its compliance flag is the reading's too.
        drivers_limited = any(
            self.channels[t].in_compliance()
            for t, (level, _) in assignment.items() if t not in ("ground", terminal) and level
        )
        # the column SMU sinks the cell current: its reading is negative for a positive cell
        return [Reading(r.voltage, -r.current, r.compliance or drivers_limited, r.timestamp,
                        r.overflow) for r in readings]

    def _idle_terminal(self, levels, assignment) -> dict[str, frozenset[Line]]:
        """{terminal: lines}: every line without a level on the first SMU terminal the read
        does not use that reaches them all; its output stays off, so its output-off mode
        holds them (`BenchError` when no terminal is free)."""
        lines = frozenset(line for line, level in levels.items() if level is None)
        if not lines:
            return {}
        for terminal in sorted(t for t in self.channels if t not in assignment):
            if self._reachable(terminal, sorted(lines)):
                return {terminal: lines}
        raise BenchError(
            f"bench {self.spec.name!r} has no SMU terminal free of the read that reaches every "
            f"unselected line ({line_list(lines)}); the 'idle' scheme parks them on one")

    def _matrix_measure_lines(self, levels, sensed: Sequence[Line], limit: float, count: int
                              ) -> dict[Line, LineReading]:
        """The lines at `levels`, each sensed line on an SMU of its own; `count` readings of
        each sensed line's current into the array. A source driving a non-zero level at its
        limit flags every reading (its lines sag)."""
        _, assignment = self._best_read_plan(levels, sensed)
        self._check_assignment(assignment, "level")
        self._apply(assignment, limit)
        terminal_of = {line: terminal for terminal, (_, lines) in assignment.items()
                       for line in lines}
        result = {}
        for line in sensed:
            channel = self.channels[terminal_of[line]]
            readings = [channel.measure()] if count == 1 else channel.measure_repeated(count)
            result[line] = readings
        drivers_limited = any(
            self.channels[t].in_compliance()
            for t, (level, _) in assignment.items()
            if t != "ground" and level and not (assignment[t][1] & frozenset(sensed))
        )
        return {line: LineReading(np.array([r.current for r in readings]),
                                  np.array([r.compliance or drivers_limited for r in readings]),
                                  readings[-1].timestamp)
                for line, readings in result.items()}

    def _matrix_pulse(self, levels, pulsed: Line, v_pulse, width, count, period, limit) -> float:
        """The pulsed line on an SMU of its own. Where the scheme's other non-zero level (the
        V/2 of every unselected line) is on a second channel of the same instrument and that
        instrument pulses two channels together (`xbarlab.interfaces.PairedPulse`), both
        pulse from 0 V as one (`_paired_pulse`): every line rests at 0 V between pulses and
        each pulsing channel measures what it delivers during each pulse. Otherwise the
        pulsed line pulses from 0 V and the others hold their levels at DC. The pulse goes to
        an SMU whose model can pulse, and is checked against that SMU's pulse capability
        before anything (the bias of the other lines included) is sent.

        `last_pulse_energy` is then what the instruments measured (`_measured_pulse_energy`)
        or None where they did not measure all of it (a DC bias on another SMU: what it
        delivered during the pulse is not measured)."""
        energy = self.guard.check_pulse(str(pulsed), v_pulse, width, limit, count)
        cannot = frozenset(name for name, channel in self.channels.items()
                           if channel.pulse_capability() is None)
        together = self._paired_pulse_plan(levels, pulsed, cannot)
        if together is not None:
            return energy + self._paired_pulse(*together, pulsed, width, count, period, limit)
        dc = dict(levels)
        dc[pulsed] = 0.0
        assignment = self.plan(dc, (pulsed,), avoid=cannot)
        terminal = next(t for t, (_, lines) in assignment.items() if pulsed in lines)
        if terminal in cannot:
            raise BenchError(
                f"bench {self.spec.name!r}: no SMU free for {pulsed} can pulse "
                f"({', '.join(sorted(cannot))} cannot)"
            )
        try:
            self.channels[terminal].check_pulse(v_pulse, width, count, period)
        except ValueError as error:
            raise ValueError(f"{terminal} cannot pulse {pulsed} so: {error}") from error
        self._check_assignment(assignment, "pulse bias")
        self._apply(assignment, limit)
        try:
            readings = self.channels[terminal].pulse(v_pulse, width, count, period)
            self.last_pulse_energy = _measured_pulse_energy(assignment, {terminal: readings},
                                                            width)
        finally:
            # A pulse reprograms the SMU's source (and some models end it with the output
            # off), so what the bench last told this terminal no longer holds: forget it, and
            # the next operation sets level, limit and output again instead of trusting them.
            self._sources[terminal] = Source(lines=self._sources[terminal].lines)
        return energy

    def _paired_pulse_plan(self, levels, pulsed: Line, cannot: frozenset[str]):
        """(assignment at the pulse's levels, {instrument: its pulsing terminals}, the pulsed
        line's first) when the pulse's lines need two or more non-zero levels and their
        terminals can pulse together: two on one instrument that pulses two channels at once
        (`xbarlab.interfaces.PairedPulse`), or channels of instruments joined by a trigger
        cable (``[wiring] trigger_link``, `xbarlab.interfaces.LinkedPulse`), at most two
        each; else None."""
        try:
            assignment = self.plan(levels, (pulsed,), avoid=cannot)
        except BenchError:
            return None
        pulsing = sorted((pulsed not in lines, t) for t, (level, lines) in assignment.items()
                         if t != "ground" and level)
        if len(pulsing) < 2 or {t for _, t in pulsing} & cannot:
            return None
        groups: dict[str, list[str]] = {}
        for _, terminal in pulsing:
            groups.setdefault(terminal.rsplit(".", 1)[0], []).append(terminal)
        if any(len(terminals) > 2 for terminals in groups.values()):
            return None
        if len(groups) == 1:
            ok = all(isinstance(self.drivers.get(name), PairedPulse) for name in groups)
        else:
            ok = (set(groups) <= set(self.spec.wiring.trigger_link)
                  and all(isinstance(self.drivers.get(name), LinkedPulse) for name in groups))
        return (assignment, groups) if ok else None

    def _paired_pulse(self, assignment, groups: dict[str, list[str]], pulsed: Line, width,
                      count, period, limit) -> float:
        """Every terminal of `groups` (the pulsed line's instrument first) pulses from 0 V to
        its level of `assignment` together, every other line at its (0 V) level: one
        instrument's two channels (`pulse_pair`), or the channels of instruments on a trigger
        cable, the others armed on `TRIGGER_LINE` before the first pulses
        (`arm_linked_pulse`, `pulse_linked`, `linked_readings`). The energy all measured is
        `last_pulse_energy`. Returns the other terminals' energy bound (the guard's check of
        their pulses)."""
        terminals = [t for group in groups.values() for t in group]
        level = {t: assignment[t][0] for t in terminals}
        bound = 0.0
        for terminal in terminals:
            lines = line_list(assignment[terminal][1])
            try:
                self.channels[terminal].check_pulse(level[terminal], width, count, period)
            except ValueError as error:
                raise ValueError(f"{terminal} cannot pulse {lines} so: {error}") from error
            if terminal != terminals[0]:
                bound += self.guard.check_pulse(f"bias of {terminal} on {lines}",
                                                level[terminal], width, limit, count)
        self._check_assignment(assignment, "pulse level")
        self._apply({t: (0.0 if t in level else v, lines)
                     for t, (v, lines) in assignment.items()}, limit)
        channel_levels = {name: {t.rsplit(".", 1)[1]: level[t] for t in group}
                          for name, group in groups.items()}
        try:
            leader, *followers = groups
            if not followers:
                got = dict(zip(groups[leader], self.drivers[leader].pulse_pair(
                    *(x for t in groups[leader] for x in (t.rsplit(".", 1)[1], level[t])),
                    width, count, period), strict=True))
            else:
                got = self._linked_pulse(leader, followers, channel_levels, width, count,
                                         period)
            self.last_pulse_energy = _measured_pulse_energy(assignment, got, width)
        finally:
            for terminal in terminals:  # reprogrammed by the pulse (see _matrix_pulse)
                self._sources[terminal] = Source(lines=self._sources[terminal].lines)
        return bound

    def _linked_pulse(self, leader: str, followers: list[str], channel_levels, width, count,
                      period) -> dict[str, list]:
        """The followers' channels armed on `TRIGGER_LINE`, the leader's pulsed with their
        starts driving it, then every instrument's readings: terminal -> readings."""
        armed = []
        try:
            for name in followers:
                self.drivers[name].arm_linked_pulse(channel_levels[name], width, count,
                                                    TRIGGER_LINE)
                armed.append(name)
            readings = {leader: self.drivers[leader].pulse_linked(
                channel_levels[leader], width, count, period, TRIGGER_LINE)}
            for name in followers:
                armed.remove(name)
                readings[name] = self.drivers[name].linked_readings()
        finally:
            for name in armed:
                self.drivers[name].disarm_linked_pulse()
        return {f"{name}.{channel}": got
                for name, by_channel in readings.items() for channel, got in by_channel.items()}

    def route_fault(self, lines: Sequence[Line]) -> str:
        """Why the last read's route to `lines` does not conduct ('' when it does): each relay
        the read used to reach one of `lines` gets the bench check's continuity test (that
        line through all its cells, every line of the other kind at 0 V), once per bench
        session. For a reading that cannot be physical (an open circuit where a cell must
        be)."""
        faults = []
        for terminal, (_, driven) in self._last_read_assignment.items():
            for line in sorted(set(lines) & driven):
                key = (terminal, line)
                if key not in self._route_checks:
                    item, ok, detail = self._relay_continuity(terminal, line, SELF_TEST_VOLTAGE)
                    self._route_checks[key] = "" if ok else f"{item}: {detail}"
                if self._route_checks[key]:
                    faults.append(self._route_checks[key])
        return "; ".join(faults)

    def relay_mismatches(self) -> list[str]:
        """Where the relays each matrix reports closed differ from the bench's record (one
        query per matrix); empty when they agree."""
        mismatches = []
        for name, matrix in self.matrices.items():
            reported, recorded = set(matrix.closed()), self._closed[name]
            for what, channels in (("closed but not recorded", reported - recorded),
                                   ("recorded but not closed", recorded - reported)):
                if channels:
                    mismatches.append(f"{name}: {', '.join(sorted(channels))} {what}")
        return mismatches

    def verify_relays(self) -> None:
        """Raise `BenchError` when a matrix's closed relays differ from the bench's record."""
        mismatches = self.relay_mismatches()
        if mismatches:
            raise BenchError("relays differ from what the bench set: " + "; ".join(mismatches))

    def _check_assignment(self, assignment, what: str) -> None:
        for terminal, (level, lines) in assignment.items():
            self.guard.check_voltage(f"{what} of {terminal} on {line_list(lines)}", level)

    def _route_points(self, terminal: str, lines: frozenset[Line]) -> dict[str, frozenset[str]]:
        """{matrix: crosspoints} joining `terminal` to `lines`; worked out from the terminal's
        last route by the lines that changed (a read map moves one or two lines per cell)."""
        last = self._routes.get(terminal)
        if last is not None and last[0] == lines:
            return last[1]
        inputs, wired = self._terminal_ports[terminal], self.spec.wiring.lines
        points: dict[str, set[str]] = {}
        if last is None or len(last[0] ^ lines) > len(lines):
            added, removed = lines, ()
        else:
            points = {name: set(names) for name, names in last[1].items()}
            added, removed = lines - last[0], last[0] - lines
        for line, into in [*((line, False) for line in removed),
                           *((line, True) for line in added)]:
            port = wired[line]
            name = self._crosspoint(port.instrument, inputs[port.instrument], port.output)
            if into:
                points.setdefault(port.instrument, set()).add(name)
            else:
                points[port.instrument].discard(name)
        route = {name: frozenset(names) for name, names in points.items()}
        self._routes[terminal] = (lines, route)
        return route

    def _apply(self, assignment: Mapping[str, tuple[float, frozenset[Line]]], limit: float,
               idle: Mapping[str, frozenset[Line]] | None = None):
        """Make the relays and sources match `assignment`, sending only what changed; `idle`
        terminals get their lines with their output off (turned off before any relay closes
        onto them)."""
        idle = dict(idle or {})
        routes = [*((t, lines) for t, (_, lines) in assignment.items()), *idle.items()]
        points = [self._route_points(terminal, lines) for terminal, lines in routes]
        wanted = {name: frozenset().union(*(p[name] for p in points if name in p))
                  for name in self.matrices}
        for name, state in self._sources.items():
            new_lines = idle.get(name, assignment.get(name, (None, frozenset()))[1])
            if state.lines != new_lines and state.output and state.level not in (0.0, None):
                self.guard.source_voltage(name, self.channels[name], 0.0, state.current_limit)
                state.level = 0.0  # never switch a relay on a live non-zero source
            if name in idle and state.output:
                self.channels[name].output_off()
                state.output, state.level = False, None
            state.lines = new_lines
        for name, matrix in self.matrices.items():
            closed = self._closed[name]
            to_open, to_close = closed - wanted[name], wanted[name] - closed
            if to_open or to_close:
                matrix.reroute(sorted(to_open), sorted(to_close),
                               known_closed=sorted(closed - to_open))
                self._closed[name] = (closed - to_open) | to_close
        for terminal, (level, _) in assignment.items():
            if terminal == "ground":
                continue
            state, channel = self._sources[terminal], self.channels[terminal]
            if state.level != level or state.current_limit != limit:
                state.level = None  # unknown until the guard's read-back succeeds
                self.guard.source_voltage(terminal, channel, level, limit)
                state.level, state.current_limit = level, limit
            if not state.output:
                channel.output_on()
                state.output = True


def _measured_pulse_energy(assignment, readings: Mapping[str, list | None], width: float
                           ) -> float | None:
    """Energy (J) the sources delivered during a matrix pulse, as the instruments measured it:
    V x I x `width` of each reading of each pulsing terminal (`readings`: terminal -> its
    readings, one taken during each pulse), when every other driven terminal of `assignment`
    holds 0 V (ground, or an SMU at 0 V: it delivers nothing, V x I = 0; between pulses the
    pulsing lines are at 0 V too). None when a pulsing SMU does not measure during a pulse, a
    reading is missing or at a limit (its level is then not what the source delivered), or
    another terminal holds a non-zero bias: that SMU is not synchronised with the pulse, so
    what it delivered during it is not measured."""
    if any(level for t, (level, _) in assignment.items() if t not in readings):
        return None
    taken = [r for got in readings.values() for r in (got if got is not None else [None])]
    if any(r is None or r.compliance or r.overflow or not math.isfinite(r.voltage * r.current)
           for r in taken):
        return None
    return sum(r.voltage * r.current for r in taken) * width


def _exchanged(plan, pairs):
    """A read plan (assignment, idle) with each pair of lines (a, b) of `pairs` exchanged:
    whoever drove a drives b and the other way round. A plan depends on the lines only
    through their levels and the matrices they are on, so a cell's plan is another cell's
    with its row and column exchanged for the other's (same scheme, volts and matrices)."""
    pairs = [(a, b) for a, b in pairs if a != b]

    def swap(lines: frozenset[Line]) -> frozenset[Line]:
        for a, b in pairs:
            if (a in lines) != (b in lines):
                lines = (lines - {a, b}) | {b if a in lines else a}
        return lines

    assignment, idle = plan
    return ({t: (level, swap(lines)) for t, (level, lines) in assignment.items()},
            {t: swap(lines) for t, lines in idle.items()})
