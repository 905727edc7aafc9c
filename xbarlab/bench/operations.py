"""Crossbar-level operations over the instruments of a bench file.

A `Bench` holds SMU channels, switch matrices and array boards (any objects satisfying the
`xbarlab.interfaces` protocols: drivers on a real or virtual bench, recording fakes in a dry run)
and the bench file that says how they are wired. Leaving its `with` block, by any path, makes
every instrument safe (`xbarlab.safety`).

Operations, only through the `xbarlab.interfaces` protocols, each checked by the safety guard
before anything is sent:

* `read(row, col, v)` with a bias scheme for the unselected lines: ``float`` (disconnected),
  ``ground`` (0 V), ``v/2`` (V/2) or ``v/3`` (rows V/3, columns 2V/3). Only voltage differences
  matter to the cells, so a read may shift every level by one constant when that lets it run on
  the instruments at hand (e.g. V/2 on two SMUs and a ground input: row +V/2, column -V/2, all
  other lines grounded); among feasible shifts the lowest max |V| wins. The current is sensed
  on the selected column and returned as the cell current (positive from row to column).
* `iter_read_map` / `read_map`: every cell (minus the chip's masked cells and a user mask).
* `pulse(row, col, v, width)` with ``v/2``, ``v/3`` or ``float`` half-select protection.
* `mvm(v_rows)`: all rows driven at once on an array board, every column current back.
* `idle()`: sources to 0 and off, relays open, board lines in the idle mode.

On a matrix bench relays never switch a line carrying a non-zero source level: a source whose
lines change is first set to 0 V. The bench remembers every relay, level and limit it set and
never re-sends one already in place. It counts instrument round trips (commands written) per
operation: `round_trips()`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from xbarlab.benchfile import Bench as BenchSpec
from xbarlab.benchfile import Line
from xbarlab.interfaces import ArrayBoard, LineState, Reading, SourceMeasureChannel, SwitchMatrix
from xbarlab.safety import SafeShutdown, SafetyGuard

READ_SCHEMES = ("float", "ground", "v/2", "v/3")
"""How unselected lines are biased during a read."""
PULSE_SCHEMES = ("float", "v/2", "v/3")
"""How unselected lines are biased during a pulse (half-select protection)."""
SET_LINES_CHARACTERS = 16
"""Upper estimate of the characters one line takes in a board's set-lines command (``R12=0.1,``)."""
BOARD_COMMAND_CHARACTERS = 4000
"""Longest board command the bench builds (the board accepts 4096, array_board.md)."""
SELF_TEST_VOLTAGE = 0.1
"""Volts across the cells during the wiring self-test (well below any switching threshold)."""
CONTINUITY_CURRENT = 1e-10
"""Smallest current (A) that proves a closed path through a line's cells in the self-test."""
DEFAULT_CURRENT_LIMIT = 1e-3
"""Compliance used when an operation names none (lowered to the bench's max_compliance)."""


class BenchError(RuntimeError):
    """The bench cannot do what was asked (missing instrument, too few sources for a scheme)."""


@dataclass(frozen=True)
class CellReading:
    """The current through one cell at `voltage` across it (positive from row to column)."""

    row: int
    col: int
    voltage: float
    current: float
    compliance: bool
    timestamp: float

    @property
    def conductance(self) -> float:
        return self.current / self.voltage if self.voltage else math.nan


@dataclass(frozen=True)
class MvmResult:
    """Column currents of one matrix-vector product (positive into the columns).

    `compliance[j]` is True when column j's sense was at its limit; `row_compliance[i]` when row
    i's driver was (its voltage sagged, so every column current is off).
    """

    v_rows: np.ndarray
    currents: np.ndarray
    compliance: np.ndarray
    row_compliance: np.ndarray
    timestamp: float


class IoCounter:
    """Counts instrument round trips (commands written), per instrument."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add(self, instrument: str, n: int = 1) -> None:
        self.counts[instrument] += n

    @property
    def total(self) -> int:
        return sum(self.counts.values())


# ------------------------------------------------------------------------ bias schemes


def bias_levels(
    scheme: str, row: int, col: int, volts: float, rows: int, cols: int, allowed=READ_SCHEMES
) -> dict[Line, float | None]:
    """Level of every line for cell (row, col) at `volts` under `scheme`; None = floating."""
    if scheme not in allowed:
        raise ValueError(f"scheme = {scheme!r} is not known; allowed: {', '.join(allowed)}")
    unselected_row, unselected_col = {
        "float": (None, None),
        "ground": (0.0, 0.0),
        "v/2": (volts / 2, volts / 2),
        "v/3": (volts / 3, 2 * volts / 3),
    }[scheme]
    levels: dict[Line, float | None] = {}
    for i in range(rows):
        levels[Line("row", i)] = volts if i == row else unselected_row
    for j in range(cols):
        levels[Line("col", j)] = 0.0 if j == col else unselected_col
    return levels


def shifted(levels: Mapping[Line, float | None], offset: float) -> dict[Line, float | None]:
    """Every driven level moved by `offset` (cell voltages unchanged)."""
    return {line: None if v is None else _tidy(v + offset) for line, v in levels.items()}


def shift_candidates(levels: Mapping[Line, float | None]) -> list[float]:
    """Offsets worth trying: none, or one that brings a used level to 0 (a ground input)."""
    distinct = sorted({_tidy(v) for v in levels.values() if v is not None and v != 0})
    return [0.0] + [-v for v in distinct]


def _line_list(lines: frozenset[Line]) -> str:
    shown = sorted(lines)
    text = ", ".join(str(line) for line in shown[:3])
    return text + (f" and {len(shown) - 3} more" if len(shown) > 3 else "")


def _tidy(value: float) -> float:
    return float(f"{value:.12g}")


# ------------------------------------------------------------------------ the bench


@dataclass
class _Source:
    """What the bench last told one SMU terminal (None: not known / not set)."""

    level: float | None = None
    current_limit: float | None = None
    output: bool = False
    lines: frozenset[Line] = frozenset()


class Bench:
    """Crossbar-level operations over a bench file's instruments (see the module docstring).

    `channels` maps SMU terminals (``"smu.a"``) to channels, `matrices` and `boards` map
    instrument names to drivers, as wired in `spec`. `closers` are called (after the safe
    shutdown) when the bench closes. `drivers` (instrument name to driver) and `identities`
    (instrument name to ``*IDN?`` reply) serve the bench check and the run metadata.
    """

    def __init__(
        self,
        spec: BenchSpec,
        channels: Mapping[str, SourceMeasureChannel],
        matrices: Mapping[str, SwitchMatrix],
        boards: Mapping[str, ArrayBoard],
        guard: SafetyGuard | None = None,
        io: IoCounter | None = None,
        identities: Mapping[str, str] | None = None,
        closers: Sequence[Any] = (),
        current_limit: float | None = None,
        drivers: Mapping[str, Any] | None = None,
    ):
        self.spec = spec
        self.channels = dict(channels)
        self.matrices = dict(matrices)
        self.boards = dict(boards)
        self.guard = guard or SafetyGuard(spec.limits)
        self.io = io or IoCounter()
        self.identities = dict(identities or {})
        self.drivers = dict(drivers or {})
        self._closers = list(closers)
        self.rows, self.cols = spec.chip.rows, spec.chip.cols
        self.current_limit = current_limit if current_limit is not None else min(
            DEFAULT_CURRENT_LIMIT, spec.limits.max_compliance
        )
        self.guard.check_compliance("bench current limit", self.current_limit)
        self._board = self._the_board()
        self._sources = {name: _Source() for name in self.channels}
        self._closed: dict[str, set[str]] = {name: set() for name in self.matrices}
        self._board_levels: dict[Line, float | LineState] = {}
        self._board_current_limit: float | None = None
        self._stats: dict[str, list[int]] = {}
        self._last_round_trips = 0
        self._terminal_ports = self._terminal_ports_from_wiring()
        self._cannot_pulse: set[str] = set()
        self._shutdown = SafeShutdown(self.channels, self.matrices, self.boards)
        self._prepare()

    # -- life cycle ----------------------------------------------------------------------------

    def __enter__(self) -> Bench:
        self._shutdown.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            self._shutdown.__exit__(exc_type, exc, tb)
        finally:
            self._close_sessions()
        return False

    def close(self) -> None:
        """Make every instrument safe and close the sessions (for use without `with`)."""
        try:
            with self._shutdown:
                pass
        finally:
            self._close_sessions()

    def _close_sessions(self) -> None:
        for closer in self._closers:
            closer()
        self._closers = []
        self._sources = {name: _Source() for name in self.channels}
        self._closed = {name: set() for name in self.matrices}

    def _prepare(self) -> None:
        """Known state at start: sources off, relays open, every crosspoint the wiring does not
        use forbidden, board limits set and lines idle."""
        for channel in self.channels.values():
            channel.output_off()
        for name, matrix in self.matrices.items():
            matrix.open_all()
            unused = self._unused_crosspoints(name)
            if unused:
                matrix.set_forbidden(unused)
        if self._board is not None:
            board = self._board
            board.set_voltage_limit(self.spec.limits.max_voltage)
            board.set_current_limit(self.current_limit)
            self.guard.verify_current_limit(self._board_name, board, self.current_limit)
            self._board_current_limit = self.current_limit
            board.set_idle_mode(self._idle_state)
            self._board_levels = {line: self._idle_state for line in self._all_lines()}

    @property
    def _idle_state(self) -> LineState:
        return LineState.GROUND if self.spec.idle == "ground" else LineState.FLOAT

    def _the_board(self) -> ArrayBoard | None:
        kinds = {port.instrument for port in self.spec.wiring.lines.values()}
        on_boards = kinds & set(self.boards)
        if on_boards and kinds - set(self.boards):
            raise BenchError(
                f"bench {self.spec.name!r} wires crossbar lines to both a board and a matrix; "
                "allowed: every line on one board, or every line on switch matrices"
            )
        if len(on_boards) > 1:
            raise BenchError(f"bench {self.spec.name!r} spreads lines over boards {on_boards}; "
                             "allowed: one board")
        self._board_name = next(iter(on_boards), "")
        if not on_boards:
            return None
        self._board_rows, self._board_cols = self._board_indices()
        return self.boards[self._board_name]

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

    def _all_lines(self) -> list[Line]:
        return [Line("row", i) for i in range(self.rows)] + [
            Line("col", j) for j in range(self.cols)
        ]

    # -- accounting ----------------------------------------------------------------------------

    def _count(self, operation: str, before: int) -> None:
        trips = self.io.total - before
        calls, total = self._stats.get(operation, [0, 0])
        self._stats[operation] = [calls + 1, total + trips]
        self._last_round_trips = trips

    def round_trips(self) -> dict[str, dict[str, int]]:
        """Per operation name: how many calls, and how many instrument round trips in total."""
        return {op: {"calls": c, "round_trips": t} for op, (c, t) in self._stats.items()}

    @property
    def last_round_trips(self) -> int:
        """Instrument round trips of the last operation."""
        return self._last_round_trips

    # -- operations ----------------------------------------------------------------------------

    def read(
        self,
        row: int,
        col: int,
        v_read: float = 0.2,
        scheme: str = "float",
        current_limit: float | None = None,
    ) -> CellReading:
        """Current through cell (row, col) with `v_read` across it; unselected lines per scheme."""
        self._check_cell(row, col)
        limit = self._limit(current_limit)
        levels = bias_levels(scheme, row, col, v_read, self.rows, self.cols)
        before = self.io.total
        try:
            if self._board is not None:
                reading = self._board_read(levels, row, col, v_read, scheme, limit)
            else:
                reading = self._matrix_read(levels, Line("col", col), limit)
        finally:
            self._count("read", before)
        return CellReading(row, col, v_read, reading.current, reading.compliance,
                           reading.timestamp)

    def iter_read_map(
        self,
        v_read: float = 0.2,
        scheme: str = "float",
        mask: np.ndarray | None = None,
        skip: set[tuple[int, int]] | None = None,
        current_limit: float | None = None,
    ) -> Iterator[CellReading]:
        """Read every cell in row-major order, except masked cells (the chip's, `mask` False)
        and cells in `skip` (already measured by an interrupted run); yield each reading."""
        for batch in self.iter_read_batches(v_read, scheme, mask, skip, current_limit):
            yield from batch

    def iter_read_batches(
        self,
        v_read: float = 0.2,
        scheme: str = "float",
        mask: np.ndarray | None = None,
        skip: set[tuple[int, int]] | None = None,
        current_limit: float | None = None,
    ) -> Iterator[list[CellReading]]:
        """The readings of `iter_read_map`, one list per measurement: one cell each, except on a
        board with the ``ground`` scheme, where every column is at 0 V and sensed, so one
        measurement reads a whole row (operation ``read_row``)."""
        cells = self.map_cells(mask, skip)
        if self._board is None or scheme != "ground":
            for row, col in cells:
                yield [self.read(row, col, v_read, scheme, current_limit)]
            return
        by_row: dict[int, list[int]] = {}
        for row, col in cells:
            by_row.setdefault(row, []).append(col)
        for row, cols in by_row.items():
            yield self.read_row(row, v_read, cols, current_limit)

    def read_row(
        self,
        row: int,
        v_read: float = 0.2,
        cols: Sequence[int] | None = None,
        current_limit: float | None = None,
    ) -> list[CellReading]:
        """On a board: row `row` at `v_read`, every other line at 0 V, every column current in
        one measurement; the readings of `cols` (all columns by default)."""
        if self._board is None:
            raise BenchError(f"bench {self.spec.name!r} has no array board; reading a row at "
                             "once needs every column sensed at the same time")
        self._check_cell(row, 0)
        cols = list(range(self.cols)) if cols is None else list(cols)
        for col in cols:
            self._check_cell(row, col)
        limit = self._limit(current_limit)
        levels = bias_levels("ground", row, 0, v_read, self.rows, self.cols)
        for line, level in levels.items():
            self.guard.check_voltage(f"read level on {line}", level)
        before = self.io.total
        try:
            self._board_limit(limit)
            self._board_apply(levels)
            reading = self._board.measure_currents()
        finally:
            self._count("read_row", before)
        currents = -np.asarray(reading.column_currents, float)[self._board_cols]
        flags = np.asarray(reading.column_compliance, bool)[self._board_cols]
        flags |= bool(np.asarray(reading.row_compliance, bool)[self._board_rows[row]])
        return [CellReading(row, col, v_read, float(currents[col]), bool(flags[col]),
                            reading.timestamp) for col in cols]

    def map_cells(
        self, mask: np.ndarray | None = None, skip: set[tuple[int, int]] | None = None
    ) -> list[tuple[int, int]]:
        """Cells a read map visits, in order."""
        selected = np.ones((self.rows, self.cols), bool)
        if mask is not None:
            mask = np.asarray(mask, bool)
            if mask.shape != selected.shape:
                raise ValueError(f"mask shape = {mask.shape}: allowed {selected.shape}")
            selected &= mask
        for r, c in self.spec.chip.masked:
            selected[r, c] = False
        skip = skip or set()
        return [(int(r), int(c)) for r, c in np.argwhere(selected) if (r, c) not in skip]

    def read_map(
        self,
        v_read: float = 0.2,
        scheme: str = "float",
        mask: np.ndarray | None = None,
        current_limit: float | None = None,
    ) -> np.ndarray:
        """Cell currents of the whole array (NaN where not read)."""
        currents = np.full((self.rows, self.cols), np.nan)
        for reading in self.iter_read_map(v_read, scheme, mask, None, current_limit):
            currents[reading.row, reading.col] = reading.current
        return currents

    def pulse(
        self,
        row: int,
        col: int,
        v_pulse: float,
        width: float,
        scheme: str = "v/2",
        count: int = 1,
        period: float | None = None,
        current_limit: float | None = None,
    ) -> float:
        """Pulse cell (row, col) with `v_pulse` for `width` s; unselected lines per scheme.

        Returns the worst-case energy of the operation in joules (|V| x limit x width x count
        summed over the pulsed sources), which the guard has checked against `max_energy`.
        """
        self._check_cell(row, col)
        limit = self._limit(current_limit)
        levels = bias_levels(scheme, row, col, v_pulse, self.rows, self.cols, PULSE_SCHEMES)
        before = self.io.total
        try:
            if self._board is not None:
                return self._board_pulse(levels, row, col, scheme, width, count, period, limit)
            return self._matrix_pulse(levels, Line("row", row), v_pulse, width, count, period,
                                      limit)
        finally:
            self._count("pulse", before)

    def mvm(self, v_rows: Sequence[float], current_limit: float | None = None) -> MvmResult:
        """Drive every row at `v_rows` (columns at 0 V) and return every column current."""
        if self._board is None:
            raise BenchError(
                f"bench {self.spec.name!r} has no array board; the matrix-vector product needs "
                "one (every row driven and every column sensed at once)"
            )
        v = np.asarray(v_rows, float)
        if v.shape != (self.rows,):
            raise ValueError(f"v_rows has shape {v.shape}: allowed ({self.rows},)")
        limit = self._limit(current_limit)
        targets: dict[Line, float | LineState] = {}
        for i, level in enumerate(v):
            targets[Line("row", i)] = self.guard.check_voltage(f"mvm level on row:{i}", level)
        targets.update({Line("col", j): 0.0 for j in range(self.cols)})
        before = self.io.total
        try:
            self._board_limit(limit)
            self._board_apply(targets)
            reading = self._board.measure_currents()
        finally:
            self._count("mvm", before)
        return MvmResult(v, -np.asarray(reading.column_currents, float)[self._board_cols],
                         np.asarray(reading.column_compliance, bool)[self._board_cols],
                         np.asarray(reading.row_compliance, bool)[self._board_rows],
                         reading.timestamp)

    def idle(self) -> None:
        """Sources to 0 V and off, relays open, board lines in the idle mode."""
        before = self.io.total
        try:
            for name, channel in self.channels.items():
                state = self._sources[name]
                if state.output:
                    channel.shutdown()
                self._sources[name] = _Source()
            for name, matrix in self.matrices.items():
                if self._closed[name]:
                    matrix.open_all()
                self._closed[name] = set()
            if self._board is not None:
                self._board_to_idle()
        finally:
            self._count("idle", before)

    # -- helpers -----------------------------------------------------------------------------

    def _check_cell(self, row: int, col: int) -> None:
        for name, value, size in (("row", row, self.rows), ("col", col, self.cols)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not (
                0 <= value < size
            ):
                raise ValueError(f"{name} = {value!r}: allowed 0..{size - 1}")

    def _limit(self, current_limit: float | None) -> float:
        limit = self.current_limit if current_limit is None else current_limit
        return self.guard.check_compliance("current limit", limit)

    # -- matrix benches ------------------------------------------------------------------------

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
        ports = self._terminal_ports.get(terminal, {})
        return all(self.spec.wiring.lines[line].instrument in ports for line in lines)

    def plan(
        self,
        levels: Mapping[Line, float | None],
        exclusive: Sequence[Line] = (),
        avoid: frozenset[str] = frozenset(),
    ) -> dict[str, tuple[float, frozenset[Line]]]:
        """Which terminal drives which lines at which level, or `BenchError` if the bench lacks
        the sources. `exclusive` lines (sensed or pulsed) get an SMU of their own, one not in
        `avoid` when there is one."""
        groups: dict[float, list[Line]] = {}
        for line, level in levels.items():
            if level is not None and line not in exclusive:
                groups.setdefault(level, []).append(line)
        demands: list[tuple[float, list[Line], bool]] = [
            (levels[line], [line], False) for line in exclusive
        ]
        demands += [(level, lines, level == 0.0) for level, lines in sorted(groups.items())]
        free = sorted(self.channels)
        assignment: dict[str, tuple[float, frozenset[Line]]] = {}
        for k, (level, lines, groundable) in enumerate(demands):
            if groundable and self._reachable("ground", lines):
                assignment["ground"] = (0.0, frozenset(lines))
                continue
            order = sorted(free, key=lambda t: t in avoid) if k < len(exclusive) else free
            terminal = next((t for t in order if self._reachable(t, lines)), None)
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

    def _best_read_plan(self, levels: Mapping[Line, float | None], sense: Line):
        best = None
        error = None
        for offset in shift_candidates(levels):
            moved = shifted(levels, offset)
            try:
                assignment = self.plan(moved, (sense,))
            except BenchError as exc:
                error = error or exc
                continue
            peak = max(abs(v) for v in moved.values() if v is not None)
            if best is None or peak < best[0] - 1e-15:
                best = (peak, moved, assignment)
        if best is None:
            raise error
        return best[1], best[2]

    def _matrix_read(self, levels, sense: Line, limit: float) -> Reading:
        _, assignment = self._best_read_plan(levels, sense)
        self._check_assignment(assignment, "read level")
        self._apply(assignment, limit)
        terminal = next(t for t, (_, lines) in assignment.items() if sense in lines)
        reading = self.channels[terminal].measure()
        # A driving source at its limit sags every line it drives, so the sensed current is not
        # the cell's either: its compliance flag is the reading's too.
        drivers_limited = any(
            self.channels[t].measure().compliance
            for t, (level, _) in assignment.items() if t not in ("ground", terminal) and level
        )
        # the column SMU sinks the cell current: its reading is negative for a positive cell
        return Reading(reading.voltage, -reading.current,
                       reading.compliance or drivers_limited, reading.timestamp)

    def _matrix_pulse(self, levels, pulsed: Line, v_pulse, width, count, period, limit) -> float:
        """The pulsed line on an SMU of its own, pulsing from 0 V; the others at DC. An SMU
        whose model cannot pulse (NotImplementedError, raised before it sends anything) is
        remembered, and the pulse goes to another SMU if the bench has one."""
        dc = dict(levels)
        dc[pulsed] = 0.0
        energy = self.guard.check_pulse(str(pulsed), v_pulse, width, limit, count)
        while True:
            assignment = self.plan(dc, (pulsed,), avoid=frozenset(self._cannot_pulse))
            terminal = next(t for t, (_, lines) in assignment.items() if pulsed in lines)
            if terminal in self._cannot_pulse:
                raise BenchError(
                    f"bench {self.spec.name!r}: no SMU free for {pulsed} can pulse "
                    f"({', '.join(sorted(self._cannot_pulse))} cannot)"
                )
            self._check_assignment(assignment, "pulse bias")
            self._apply(assignment, limit)
            try:
                self.channels[terminal].pulse(v_pulse, width, count, period)
            except NotImplementedError:
                self._cannot_pulse.add(terminal)
                continue
            return energy

    def _check_assignment(self, assignment, what: str) -> None:
        for terminal, (level, lines) in assignment.items():
            self.guard.check_voltage(f"{what} of {terminal} on {_line_list(lines)}", level)

    def _apply(self, assignment: Mapping[str, tuple[float, frozenset[Line]]], limit: float):
        """Make the relays and sources match `assignment`, sending only what changed."""
        wanted: dict[str, set[str]] = {name: set() for name in self.matrices}
        for terminal, (_, lines) in assignment.items():
            for line in lines:
                port = self.spec.wiring.lines[line]
                input_port = self._terminal_ports[terminal][port.instrument]
                wanted[port.instrument].add(
                    self.matrices[port.instrument].crosspoint(input_port, port.output)
                )
        for name, state in self._sources.items():
            new_lines = assignment.get(name, (None, frozenset()))[1]
            if state.lines != new_lines and state.output and state.level not in (0.0, None):
                self.guard.source_voltage(name, self.channels[name], 0.0, state.current_limit)
                state.level = 0.0  # never switch a relay on a live non-zero source
            state.lines = new_lines
        for name, matrix in self.matrices.items():
            to_open = self._closed[name] - wanted[name]
            to_close = wanted[name] - self._closed[name]
            if to_open:
                matrix.open(sorted(to_open))
                self._closed[name] -= to_open
            if to_close:
                matrix.close(sorted(to_close))
                self._closed[name] |= to_close
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

    # -- board benches -------------------------------------------------------------------------

    def _board_limit(self, limit: float) -> None:
        if limit != self._board_current_limit:
            self._board_current_limit = None
            self._board.set_current_limit(limit)
            self.guard.verify_current_limit(self._board_name, self._board, limit)
            self._board_current_limit = limit

    def _board_read(self, levels, row, col, v_read, scheme, limit) -> Reading:
        if scheme == "float":
            self.guard.check_voltage(f"read level on row:{row}", v_read)
            self._board_limit(limit)
            # the row current: positive for a positive cell current
            return self._board.read_one(int(self._board_rows[row]), int(self._board_cols[col]),
                                        v_read)
        moved = min(
            (shifted(levels, offset) for offset in shift_candidates(levels)),
            key=lambda lv: max(abs(v) for v in lv.values() if v is not None),
        )
        targets = {line: LineState.FLOAT if v is None else v for line, v in moved.items()}
        for line, level in moved.items():
            if level is not None:
                self.guard.check_voltage(f"read level on {line}", level)
        self._board_limit(limit)
        self._board_apply(targets)
        reading = self._board.measure_currents()
        on_board = self._board_cols[col]
        limited = np.asarray(reading.row_compliance, bool)[self._board_rows].any() or bool(
            reading.column_compliance[on_board])
        return Reading(math.nan, -float(reading.column_currents[on_board]), bool(limited),
                       reading.timestamp)

    def _board_apply(self, targets: Mapping[Line, float | LineState]) -> None:
        changed = {line: v for line, v in targets.items() if self._board_levels.get(line) != v}
        if not changed:
            return
        rows = {int(self._board_rows[line.index]): v
                for line, v in changed.items() if line.kind == "row"}
        cols = {int(self._board_cols[line.index]): v
                for line, v in changed.items() if line.kind == "col"}
        self._board_levels.update(changed)
        if len(changed) * SET_LINES_CHARACTERS > BOARD_COMMAND_CHARACTERS:
            if rows:  # one full-vector command per kind instead of a too long VSET
                self._board.set_rows(self._board_vector("row", self._board.rows))
            if cols:
                self._board.set_columns(self._board_vector("col", self._board.columns))
            return
        self._board.set_lines(rows=rows or None, columns=cols or None)

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
        dc: dict[Line, float | LineState] = {}
        for line, level in levels.items():
            if line in pulsed:
                neighbour = Line(line.kind, 1 if line.index == 0 else 0)
                level = levels.get(neighbour)
            dc[line] = LineState.FLOAT if level is None else level
        for line, level in dc.items():
            if level != LineState.FLOAT:
                self.guard.check_voltage(f"{scheme} bias on {line}", level)
        self._board_limit(limit)
        self._board_apply(dc)
        self._board.pulse(width, rows={int(self._board_rows[row]): pulsed[selected_row]},
                          columns={int(self._board_cols[col]): pulsed[selected_col]},
                          count=count, period=period)
        if scheme == "v/3":
            self._board_to_idle()
        return energy

    def _board_to_idle(self) -> None:
        if any(level != self._idle_state for level in self._board_levels.values()):
            self._board.set_idle_mode(self._idle_state)
            self._board_levels = {line: self._idle_state for line in self._all_lines()}

    def _check_board_pulse(self, pulsed, width, limit, count) -> float:
        """Check each pulsed line; the energy bound is the one the selected cell can receive."""
        energy = sum(
            self.guard.check_pulse(str(line), v, width, limit, count) for line, v in pulsed.items()
        )
        return self.guard.check_energy("pulse energy bound of the selected cell", energy)

    # -- bench check ---------------------------------------------------------------------------

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
        cells are all open reads less than `CONTINUITY_CURRENT`. Leaves the bench idle.
        """
        results: list[tuple[str, bool, str]] = []
        try:
            for terminal in sorted(self._terminal_ports):
                for line in self.spec.wiring.lines:
                    if self.spec.wiring.lines[line].instrument in self.matrices:
                        results.append(self._relay_continuity(terminal, line, volts))
            if self._board is not None:
                results.append(self._board_continuity(volts))
        finally:
            self.idle()
        return results

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
