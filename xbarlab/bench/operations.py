"""Crossbar-level operations over the instruments of a bench file.

A `Bench` holds SMU channels, switch matrices and array boards (any objects satisfying the
`xbarlab.interfaces` protocols: drivers on a real or virtual bench, recording fakes in a dry run)
and the bench file that says how they are wired. Leaving its `with` block, by any path, makes
every instrument safe (`xbarlab.safety`).

Operations, only through the `xbarlab.interfaces` protocols, each checked by the safety guard
before anything is sent:

* `read(row, col, v)` with a bias scheme for the unselected lines: ``float`` (disconnected),
  ``ground`` (0 V), ``v/2`` (V/2), ``v/3`` (rows V/3, columns 2V/3) or ``idle`` (on an SMU
  terminal left off: its output-off mode decides; `xbarlab.bench.schemes`). Only voltage differences
  matter to the cells, so a read may shift every level by one constant when that lets it run on
  the instruments at hand (e.g. V/2 on two SMUs and a ground input: row +V/2, column -V/2, all
  other lines grounded); among feasible shifts the lowest max |V| wins. The current is sensed
  on the selected column and returned as the cell current (positive from row to column).
* `iter_read_map` / `read_map`: every cell (minus the chip's masked cells and a user mask).
* `sweep_cell(row, col, levels)`: a staircase of voltages across one cell (``float``, ``ground``
  or ``v/2``) as lockstep list sweeps of two channels of one SMU, the readings of a whole list
  in one round trip (`xbarlab.bench.sweeps`); `BenchError` where no instrument can.
* `pulse(row, col, v, width)` with ``v/2``, ``v/3`` or ``float`` half-select protection.
* `mvm(v_rows)`: all rows driven at once on an array board, every column current back.
* `measure_lines(levels, sensed)`: any line levels (None = floating) and the currents of the
  sensed lines (a board senses every line at once, a matrix bench one line per SMU): the
  raw terminal currents a parasitic calibration measures.
* `idle()`: sources to 0 and off, relays open, board lines in the idle mode.
* `verify_relays()`: the relays each matrix reports closed against the bench's record (the
  bench checks each close against that record instead of reading the matrix back every time;
  a read map on a matrix bench ends with this check, and so does each relay of the self-test).

Correction: with a calibrated model of the chip attached (`chip_model`, an
`xbarlab.calibration.ChipModel`, which `xbarlab.run_protocol` attaches from the newest
calibration record of the chip) and `correct` True, every cell read (any scheme), row read and
matrix-vector product reports what the cells are, with the raw sensed values beside it
(`CellReading.raw_current`, `MvmResult.raw_currents`); `measure_lines` is always raw.

On a matrix bench relays never switch a line carrying a non-zero source level: a source whose
lines change is first set to 0 V. The bench remembers every relay, level and limit it set and
never re-sends one already in place. It counts instrument round trips (commands written) per
operation: `round_trips()`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

import numpy as np

from xbarlab.bench.board import BoardLines
from xbarlab.bench.guarded import guard_instruments
from xbarlab.bench.matrix import MatrixRouting, Source
from xbarlab.bench.readings import (
    BenchError,
    CellReading,
    IoCounter,
    LineReading,
    MvmResult,
    ReadingBatch,
)
from xbarlab.bench.schemes import PULSE_SCHEMES, bias_levels
from xbarlab.bench.selftest import CONTINUITY_CURRENT, SelfTest
from xbarlab.bench.sweeps import CellSweeps
from xbarlab.benchfile import Bench as BenchSpec
from xbarlab.benchfile import Line
from xbarlab.interfaces import ArrayBoard, LineState, SourceMeasureChannel, SwitchMatrix
from xbarlab.safety import SafeShutdown, SafetyGuard

PROTECTED = frozenset({"spec", "guard", "channels", "matrices", "boards", "drivers",
                       "_spec", "_guard", "_handles", "_drivers"})
"""Attributes of a `Bench` that cannot be set after it opens."""
DEFAULT_CURRENT_LIMIT = 1e-3
"""Compliance used when an operation names none (lowered to the bench's max_compliance)."""


class Bench(MatrixRouting, BoardLines, CellSweeps, SelfTest):
    """Crossbar-level operations over a bench file's instruments (see the module docstring).

    `channels` maps SMU terminals (``"smu.a"``) to channels, `matrices` and `boards` map
    instrument names to drivers, as wired in `spec`. `closers` are called (after the safe
    shutdown) when the bench closes. `drivers` (instrument name to driver) and `identities`
    (instrument name to ``*IDN?`` reply) serve the bench check and the run metadata; drivers
    that are `xbarlab.interfaces.PairedSweep`s also run cell sweeps on their channels.
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
        guard = guard or SafetyGuard(spec.limits)
        if guard.limits != spec.limits:
            raise BenchError(f"bench {spec.name!r}: the guard's limits {guard.limits} are not "
                             f"the bench file's {spec.limits}")
        handles = guard_instruments(guard, channels, matrices, boards, drivers or {})
        object.__setattr__(self, "_spec", spec)
        object.__setattr__(self, "_guard", guard)
        object.__setattr__(self, "_handles", tuple(MappingProxyType(h) for h in handles))
        object.__setattr__(self, "_drivers", dict(drivers or {}))
        self.io = io or IoCounter()
        self.identities = dict(identities or {})
        self._closers = list(closers)
        self.rows, self.cols = spec.chip.rows, spec.chip.cols
        self.current_limit = current_limit if current_limit is not None else min(
            DEFAULT_CURRENT_LIMIT, spec.limits.max_compliance
        )
        self.guard.check_compliance("bench current limit", self.current_limit)
        self._board = self._the_board()
        self.last_pulse_energy: float | None = None
        """Energy (J) the instruments measured they delivered during the last `pulse` (every
        driven line, V x I over the pulse: the array board's ``ENERGY?``, or on a matrix bench
        the pulsing SMU's readings during each pulse when every other line is at 0 V or
        floats, `matrix._measured_pulse_energy`); None where the bench's instruments do not
        measure all of it (an SMU that does not measure during a pulse, a non-zero bias on
        another SMU, a dry run)."""
        self._sources = {name: Source() for name in self.channels}
        self._closed: dict[str, set[str]] = {name: set() for name in self.matrices}
        self._crosspoints: dict[tuple[str, int, int], str] = {}
        self._read_plans: dict[tuple, tuple] = {}  # one per scheme, volts and matrices
        self._routes: dict[str, tuple] = {}  # terminal -> (lines, crosspoints): _route_points
        self._instrument_of_line: dict[Line, str] | None = None  # see _instruments_of
        self._board_levels: dict[Line, float | LineState] = {}
        self._board_gate_levels: dict[int, float] = {}  # chip row -> gate volts (1T1R chips)
        self._board_current_limit: float | None = None
        self._stats: dict[str, list[int]] = {}
        self._last_round_trips = 0
        self._terminal_ports = self._terminal_ports_from_wiring()
        self._last_read_assignment: dict = {}
        self._route_checks: dict = {}
        self._stuck_closed: dict | None = None  # relays stuck closed, once checked
        self._shutdown = SafeShutdown(self.channels, self.matrices, self.boards)
        self.chip_model: Any = None
        self.correct = True
        self._prepare()

    # -- what the bench hands out ------------------------------------------------------------

    @property
    def spec(self) -> BenchSpec:
        """The bench file this bench was opened from (read-only)."""
        return self._spec

    @property
    def guard(self) -> SafetyGuard:
        """The safety guard of the bench file's limits (read-only: it cannot be swapped)."""
        return self._guard

    @property
    def channels(self) -> Mapping[str, SourceMeasureChannel]:
        """SMU terminals ("smu.a") to guarded channel handles (`xbarlab.bench.guarded`)."""
        return self._handles[0]

    @property
    def matrices(self) -> Mapping[str, SwitchMatrix]:
        """Matrix names to guarded matrix handles."""
        return self._handles[1]

    @property
    def boards(self) -> Mapping[str, ArrayBoard]:
        """Board names to guarded board handles."""
        return self._handles[2]

    @property
    def drivers(self) -> Mapping[str, Any]:
        """Instrument names to guarded instrument handles (identity, error queue, snapshot,
        paired sweeps)."""
        return self._handles[3]

    def __setattr__(self, attribute: str, value: Any) -> None:
        if attribute in PROTECTED:
            raise AttributeError(f"bench {self._spec.name!r}: {attribute!r} is fixed when the "
                                 "bench opens (the limits come from the bench file)")
        object.__setattr__(self, attribute, value)

    # -- life cycle ----------------------------------------------------------------------------

    def __enter__(self) -> Bench:
        self._shutdown.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            self._shutdown.__exit__(exc_type, exc, tb)
        finally:
            self.disconnect()
        return False

    def close(self) -> None:
        """Make every instrument safe and close the sessions (for use without `with`)."""
        try:
            with self._shutdown:
                pass
        finally:
            self.disconnect()

    @contextmanager
    def made_safe(self) -> Iterator[Bench]:
        """The safe shutdown of `with bench` around a block, leaving the sessions open (for a
        last look at the instruments, such as `snapshot`; `disconnect` closes them)."""
        with self._shutdown:
            yield self

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Each instrument's identity, address and settings as it reports them now
        (`xbarlab.drivers.base.Instrument.snapshot`); an instrument that cannot answer gets
        its error instead of settings, and the others are still asked."""
        shots = {}
        for name, inst in self.spec.instruments.items():
            shot: dict[str, Any] = {"identity": self.identities.get(name, ""),
                                    "address": inst.address, "model": inst.model}
            driver = self.drivers.get(name)
            try:
                shot["settings"] = driver.snapshot() if driver is not None else {}
            except Exception as error:  # one instrument's failure must not hide the others
                shot["error"] = f"{type(error).__name__}: {error}"
            shots[name] = shot
        return shots

    def disconnect(self) -> None:
        """Close the instrument sessions (after `made_safe`; `close` does both)."""
        for closer in self._closers:
            closer()
        self._closers = []
        self._sources = {name: Source() for name in self.channels}
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
            self._gates_closed()

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

    @property
    def can_mvm(self) -> bool:
        """True when an array board carries every line, so `mvm` and `read_row` work."""
        return self._board is not None

    def _all_lines(self) -> list[Line]:
        return [Line("row", i) for i in range(self.rows)] + [
            Line("col", j) for j in range(self.cols)
        ]

    @property
    def sense_capacity(self) -> int:
        """How many lines one `measure_lines` can sense at once: every line on a board, one
        per SMU channel on a matrix bench."""
        return self.rows + self.cols if self._board is not None else len(self.channels)

    @property
    def corrects(self) -> bool:
        """Whether readings and products are reported corrected (a chip model is attached and
        `correct` is on)."""
        return self.correct and self.chip_model is not None

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
        """Current through cell (row, col) with `v_read` across it; unselected lines per scheme.
        `v_read` is within limits.max_read_voltage (a read never moves the cell)."""
        return self.read_repeated(row, col, v_read, scheme, 1, current_limit)[0]

    def sweep_point(
        self,
        row: int,
        col: int,
        volts: float,
        scheme: str = "v/2",
        current_limit: float | None = None,
    ) -> CellReading:
        """One point of a staircase across cell (row, col), measured as a read is but meant to
        switch the cell: `volts` within limits.max_voltage, not the read-voltage limit (for an
        IV sweep on a bench that cannot run `sweep_cell`)."""
        return self._readings(row, col, volts, scheme, 1, current_limit, "read")[0]

    def read_repeated(
        self,
        row: int,
        col: int,
        v_read: float = 0.2,
        scheme: str = "float",
        count: int = 1,
        current_limit: float | None = None,
    ) -> list[CellReading]:
        """`count` readings of cell (row, col) under one bias state (averaging, or measuring the
        spread of the readings). On a matrix bench the sensing SMU takes them at its own level
        in as few round trips as its model allows (`measure_repeated`: a 2600B fills a reading
        buffer, other models run list sweeps of that level); on a board they are one repeated
        measurement of the sensed line (`measure_repeated`, or `read_one_repeated` for the
        ``float`` scheme): one round trip."""
        self.guard.check_read_voltage(f"read voltage across cell ({row}, {col})", v_read)
        return self._readings(row, col, v_read, scheme, count, current_limit, "read")

    def _readings(self, row, col, v_read, scheme, count, current_limit, operation):
        """`count` readings of cell (row, col) at `v_read` (its levels checked against
        max_voltage by the routing), counted as `operation` in the round trips."""
        self._check_cell(row, col)
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
            raise ValueError(f"count = {count!r}: allowed 1 or more readings")
        limit = self._limit(current_limit)
        levels = bias_levels(scheme, row, col, v_read, self.rows, self.cols)
        before = self.io.total
        try:
            if self._board is not None:
                readings = self._board_read(levels, row, col, v_read, scheme, limit, count)
            else:
                readings = self._matrix_read(levels, Line("col", col), limit, count,
                                             (scheme, row, col, v_read), park=scheme == "idle")
                assignment = self._last_read_assignment
                fault = ""
                if all(abs(r.current) < CONTINUITY_CURRENT for r in readings):
                    fault = self.route_fault([Line("row", row), Line("col", col)])
                if not fault and any(r.compliance for r in readings):
                    self.stuck_closed_relays()  # a source at its limit: a relay stuck closed?
                if not fault:
                    fault = self.stuck_closed_fault(assignment)
                if fault:
                    return [CellReading(row, col, v_read, math.nan, False, r.timestamp,
                                        unreachable=fault) for r in readings]
        finally:
            self._count(operation, before)
        if not self.corrects:
            return [CellReading(row, col, v_read, r.current, r.compliance, r.timestamp,
                                r.overflow) for r in readings]
        raw = np.array([r.current for r in readings])
        g = self.chip_model.correct_cell(self.modelled_levels(scheme, row, col, v_read), row,
                                         col, raw, [not r.compliance for r in readings])
        return [CellReading(row, col, v_read, float(value * v_read), r.compliance, r.timestamp,
                            r.overflow, raw_current=r.current)
                for value, r in zip(g, readings, strict=True)]

    def iter_read_map(self, *args: Any, **kwargs: Any) -> Iterator[CellReading]:
        """Each reading of `iter_read_batches` (same arguments) in turn."""
        for batch in self.iter_read_batches(*args, **kwargs):
            yield from batch

    def iter_read_batches(
        self,
        v_read: float = 0.2,
        scheme: str = "float",
        mask: np.ndarray | None = None,
        skip: set[tuple[int, int]] | None = None,
        current_limit: float | None = None,
        count: int | Mapping[tuple[int, int], int] = 1,
    ) -> Iterator[list[CellReading]]:
        """Read every cell `count` times (or `count[cell]` times: a mapping per cell) in
        row-major order, except masked cells (the chip's, `mask` False) and cells in `skip`
        (already measured by an interrupted run); yield the readings, one list per cell
        (`read_repeated`), except on a board with the ``ground`` scheme, where every column is
        at 0 V and sensed, so one measurement reads a whole row (operation ``read_row``: as many
        measurements as the row's cells want most, all of a row from one repeated measurement,
        `read_row_repeated`, and yielded as one list, measurement after measurement). Each
        list is what one exchange with the instruments took, so a caller that stores a list
        at once stores every reading it took together."""
        cells = self.map_cells(mask, skip)
        times = count.__getitem__ if isinstance(count, Mapping) else lambda cell: count
        if not self.reads_rows(scheme):
            for row, col in cells:
                yield self.read_repeated(row, col, v_read, scheme, times((row, col)),
                                         current_limit)
            if self.matrices and cells:
                self.verify_relays()
            return
        by_row: dict[int, list[int]] = {}
        for row, col in cells:
            by_row.setdefault(row, []).append(col)
        for row, cols in by_row.items():
            count = max(times((row, col)) for col in cols)
            yield ReadingBatch.joined(self.read_row_repeated(row, v_read, cols, count,
                                                             current_limit))

    def reads_rows(self, scheme: str) -> bool:
        """Whether `iter_read_batches` with `scheme` reads whole rows at once (a board, ground
        scheme: `read_row`)."""
        return self._board is not None and scheme == "ground"

    def read_row(
        self,
        row: int,
        v_read: float = 0.2,
        cols: Sequence[int] | None = None,
        current_limit: float | None = None,
    ) -> ReadingBatch:
        """On a board: row `row` at `v_read`, every other line at 0 V, every column current in
        one measurement; the readings of `cols` (all columns by default)."""
        return self.read_row_repeated(row, v_read, cols, 1, current_limit)[0]

    def read_row_repeated(
        self,
        row: int,
        v_read: float = 0.2,
        cols: Sequence[int] | None = None,
        count: int = 1,
        current_limit: float | None = None,
    ) -> list[ReadingBatch]:
        """`read_row` `count` times under one bias state, all from one repeated measurement of
        the columns of `cols` (one round trip); one list of readings per measurement."""
        if self._board is None:
            raise BenchError(f"bench {self.spec.name!r} has no array board; reading a row at "
                             "once needs every column sensed at the same time")
        self._check_cell(row, 0)
        cols = list(range(self.cols)) if cols is None else list(cols)
        for col in cols:
            if type(col) is not int or not 0 <= col < self.cols:  # else checked already
                self._check_cell(row, col)
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
            raise ValueError(f"count = {count!r}: allowed 1 or more readings")
        limit = self._limit(current_limit)
        self.guard.check_read_voltage(f"read voltage across row {row}", v_read)
        levels = bias_levels("ground", row, 0, v_read, self.rows, self.cols)
        self.guard.check_voltages("read level", levels)
        measured = list(range(self.cols)) if self.corrects else cols  # a correction needs all
        got = self._board_measure_repeated("read_row", levels, limit, count,
                                           [int(self._board_cols[col]) for col in measured],
                                           self._read_gate([row]))
        flags = np.asarray(got.column_compliance, bool)[self._board_cols[measured]]
        flags |= bool(np.asarray(got.row_compliance, bool)[self._board_rows[row]])
        currents = -np.asarray(got.column_currents, float)
        at = np.array(cols, dtype=np.intp)
        if not self.corrects:
            return [ReadingBatch(row, at, v_read, reading, flags, got.timestamp)
                    for reading in currents]
        batches = []
        for reading in currents:
            g = self.chip_model.correct_row(row, v_read, reading, ~flags)
            batches.append(ReadingBatch(row, at, v_read, g[at] * v_read, flags[at],
                                        got.timestamp, raw_current=reading[at]))
        return batches

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
        rows, cols = np.nonzero(selected)  # row-major
        cells = list(zip(rows.tolist(), cols.tolist(), strict=True))
        return [cell for cell in cells if cell not in skip] if skip else cells

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
        What the instruments measured they delivered is in `last_pulse_energy` afterwards.
        """
        self._check_cell(row, col)
        limit = self._limit(current_limit)
        levels = bias_levels(scheme, row, col, v_pulse, self.rows, self.cols, PULSE_SCHEMES)
        before = self.io.total
        self.last_pulse_energy = None
        try:
            if self._board is not None:
                bound = self._board_pulse(levels, row, col, scheme, width, count, period, limit)
                measured = self._board.pulse_energy()
                self.last_pulse_energy = measured if math.isfinite(measured) else None
                return bound
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
            self.guard.check_read_voltage(f"mvm read voltage on row:{i}", level)
            targets[Line("row", i)] = self.guard.check_voltage(f"mvm level on row:{i}", level)
        targets.update({Line("col", j): 0.0 for j in range(self.cols)})
        reading = self._board_measure("mvm", targets, limit, self._read_gate(range(self.rows)))
        currents = -np.asarray(reading.column_currents, float)[self._board_cols]
        raw = None
        if self.corrects:
            currents, raw = self.chip_model.correct_mvm(currents, v), currents
        return MvmResult(v, currents, np.asarray(reading.column_compliance, bool)[self._board_cols],
                         np.asarray(reading.row_compliance, bool)[self._board_rows],
                         reading.timestamp, raw)

    def measure_lines(
        self,
        levels: Mapping[Line, float | None],
        sensed: Sequence[Line],
        current_limit: float | None = None,
        count: int = 1,
    ) -> dict[Line, LineReading]:
        """Lines at `levels` (volts, or None: floating; a line not named floats), then `count`
        readings of the current from the instrument into each `sensed` line, raw (never
        corrected). Every level is checked by the safety guard first; a matrix bench needs an
        SMU for each sensed line and one per other distinct level (`BenchError` otherwise).
        On a board with a 1T1R chip the driven rows' gates open, the others' close."""
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
            raise ValueError(f"count = {count!r}: allowed 1 or more readings")
        full = {line: levels.get(line) for line in self._all_lines()}
        unknown = [str(line) for line in list(levels) + list(sensed) if line not in full]
        if unknown:
            raise ValueError(f"lines {', '.join(unknown)} are not on the "
                             f"{self.rows}x{self.cols} chip")
        floating = [str(line) for line in sensed if full[line] is None]
        if floating:
            raise ValueError(f"sensed lines {', '.join(floating)} float; allowed: sensing "
                             "driven lines")
        limit = self._limit(current_limit)
        before = self.io.total
        try:
            if self._board is not None:
                return self._board_measure_lines(full, sensed, limit, int(count))
            return self._matrix_measure_lines(full, sensed, limit, int(count))
        finally:
            self._count("measure_lines", before)

    def idle(self) -> None:
        """Sources to 0 V and off, relays open, board lines in the idle mode."""
        before = self.io.total
        try:
            for name, channel in self.channels.items():
                state = self._sources[name]
                if state.output:
                    channel.shutdown()
                self._sources[name] = Source()
            for name, matrix in self.matrices.items():
                if self._closed[name]:
                    matrix.open_all()
                self._closed[name] = set()
            if self._board is not None:
                self._board_to_idle()
        finally:
            self._count("idle", before)

    # -- helpers -----------------------------------------------------------------------------

    def modelled_levels(self, scheme: str, row: int, col: int, v_read: float
                        ) -> dict[Line, float | None]:
        """The line levels a correction models for a read of cell (row, col) with `scheme`
        (None: floating): the scheme's, except that under ``idle`` the unselected lines are
        what the idle state holds them at: 0 V (a grounded board, an SMU off at zero or
        normal) or floating (a floating board, an SMU off at high impedance, whose lines are
        then modelled each floating on its own, not tied together on its matrix input)."""
        levels = bias_levels(scheme, row, col, v_read, self.rows, self.cols)
        if scheme != "idle":
            return levels
        if self._board is not None:
            held = self.spec.idle == "ground"
        else:
            modes = {inst.off_mode for inst in self.spec.instruments.values()
                     if inst.kind == "smu"}
            held = "high_z" not in modes
        return {line: 0.0 if level is None and held else level
                for line, level in levels.items()}

    def _check_cell(self, row: int, col: int) -> None:
        for name, value, size in (("row", row, self.rows), ("col", col, self.cols)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not (
                0 <= value < size
            ):
                raise ValueError(f"{name} = {value!r}: allowed 0..{size - 1}")

    def _board_measure(self, operation: str, targets, limit: float, gates):
        """Operation `operation` on the board: lines at `targets` under `limit`, the rows of
        `gates` open (1T1R chips), then every line current in one measurement (round trips
        counted)."""
        before = self.io.total
        try:
            self._board_limit(limit)
            self._board_apply(targets)
            self._board_gates(gates)
            return self._board.measure_currents()
        finally:
            self._count(operation, before)

    def _board_measure_repeated(self, operation: str, targets, limit: float, count: int,
                                columns: list[int], gates):
        """Operation `operation` on the board: lines at `targets` under `limit`, the rows of
        `gates` open (1T1R chips), then `count` measurements of board columns `columns` in one
        repeated measurement (round trips counted)."""
        before = self.io.total
        try:
            self._board_limit(limit)
            self._board_apply(targets)
            self._board_gates(gates)
            return self._board.measure_repeated(count, columns=columns)
        finally:
            self._count(operation, before)

    def _limit(self, current_limit: float | None) -> float:
        limit = self.current_limit if current_limit is None else current_limit
        return self.guard.check_compliance("current limit", limit)

    # -- matrix benches ------------------------------------------------------------------------
