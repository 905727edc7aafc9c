"""Dry run: play a protocol against a recording bench and report what it would do to the chip.

The recording instruments satisfy the `xbarlab.interfaces` protocols with no instrument I/O at
all: they keep the state they were told (levels, limits, outputs, closed relays, line levels) and
log every call. A `Ledger` watches them: after every call it works out each crossbar line's
potential from the wiring of the bench file (which relay joins which line to which terminal, what
each terminal sources) and keeps, per cell, the largest |V| across it and the largest current
the sources could push through it (the smaller compliance of its two lines). Each pulse adds
its worst-case energy |V| x I_limit x width x count, and an estimate with every biased cell at
the LRS conductance of the chip's device preset (`xbarlab.physics.presets`, used as a model
only), capped by the worst case. The safety guard runs in recording mode, so every limit the
protocol would break is listed instead of stopping it at the first.

Measurements return NaN currents (nothing is measured), so a protocol that iterates until a
target is reached runs to its iteration cap: the estimate is the worst case.

Durations: each call costs one round trip (`ROUND_TRIP` by instrument kind) plus what the
instrument spends (integration time, pulse widths and periods, sweep delays).
"""

from __future__ import annotations

import math
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xbarlab.bench import Bench, IoCounter
from xbarlab.benchfile import Bench as BenchSpec
from xbarlab.benchfile import Line, load_bench
from xbarlab.interfaces import BoardReading, LineLevel, LineState, Reading
from xbarlab.physics.presets import preset
from xbarlab.safety import SafetyGuard, Violation

ROUND_TRIP = {"smu": 2e-3, "matrix": 5e-3, "board": 1e-3}
"""Seconds per command by instrument kind: GPIB/USB round trip for an SMU, relay actuation and
settling for a matrix, serial transfer for the board."""
VIOLATIONS_SHOWN = 10
"""Violations printed by `DryRunReport.format`; the summary keeps them all."""
POWER_LINE_CYCLE = 1 / 50
"""Seconds per NPLC (50 Hz mains, the longer of 50/60 Hz)."""


class Recorder:
    """The shared log of a recording bench: every call, its instrument, and its duration."""

    def __init__(self, io: IoCounter) -> None:
        self.io = io
        self.calls: Counter[str] = Counter()
        self.duration = 0.0
        self.listeners: list[Callable[[str, str], None]] = []

    def log(self, instrument: str, kind: str, method: str, seconds: float = 0.0) -> None:
        self.io.add(instrument)
        self.calls[f"{instrument}.{method}"] += 1
        self.duration += ROUND_TRIP[kind] + seconds
        for listener in self.listeners:
            listener(instrument, method)


class RecordingSMU:
    """A source-measure channel that remembers what it was told and sends nothing."""

    def __init__(self, name: str, recorder: Recorder) -> None:
        self.name, self._recorder = name, recorder
        self.function = "VOLT"
        self.level = 0.0
        self.limit = 1e-4  # power-on compliance of a typical SMU: 100 uA
        self.output = False
        self.nplc = 1.0
        self.current_range: float | None = None
        self.pulse_active: float | None = None  # level during the pulse being logged

    def _log(self, method: str, seconds: float = 0.0) -> None:
        self._recorder.log(self.name, "smu", method, seconds)

    @property
    def current_limit(self) -> float:
        return self.limit if self.function == "VOLT" else math.nan

    def source_voltage(self, level: float, current_limit: float) -> None:
        self.function, self.limit, self.level = "VOLT", float(current_limit), float(level)
        self._log("source_voltage")

    def source_current(self, level: float, voltage_limit: float) -> None:
        self.function, self.limit, self.level = "CURR", float(voltage_limit), float(level)
        self._log("source_current")

    def set_current_range(self, amperes: float | None) -> None:
        self.current_range = amperes
        self._log("set_current_range")

    def set_nplc(self, nplc: float) -> None:
        self.nplc = float(nplc)
        self._log("set_nplc")

    def output_on(self) -> None:
        self.output = True
        self._log("output_on")

    def output_off(self) -> None:
        self.output = False
        self._log("output_off")

    def output_enabled(self) -> bool:
        self._log("output_enabled")
        return self.output

    def measure(self) -> Reading:
        self._log("measure", self.nplc * POWER_LINE_CYCLE)
        voltage = self.level if self.function == "VOLT" else math.nan
        return Reading(voltage, math.nan, False, time.time())

    def sweep(self, levels: Sequence[float], delay: float) -> list[Reading]:
        readings = []
        self.output = True
        for level in levels:
            self.level = float(level)
            self._log("sweep", delay + self.nplc * POWER_LINE_CYCLE)
            readings.append(Reading(self.level, math.nan, False, time.time()))
        return readings

    def pulse(self, level: float, width: float, count: int = 1, period: float | None = None):
        self.pulse_active = float(level)
        self.pulse_width, self.pulse_count = width, count
        try:
            self._log("pulse", count * (period if period is not None else width))
        finally:
            self.pulse_active = None

    def shutdown(self) -> None:
        self.level, self.output = 0.0, False
        self._log("shutdown")


class RecordingMatrix:
    """A switch matrix that remembers its closed crosspoints (named ``"<input>:<output>"``)."""

    def __init__(self, name: str, recorder: Recorder) -> None:
        self.name, self._recorder = name, recorder
        self.closed_set: set[str] = set()
        self.forbidden_set: frozenset[str] = frozenset()
        self.break_before_make = True

    def _log(self, method: str) -> None:
        self._recorder.log(self.name, "matrix", method)

    def crosspoint(self, input_port: int, output_port: int) -> str:
        return f"{input_port}:{output_port}"

    def close(self, channels: Iterable[str]) -> None:
        """Refuses, like the drivers, forbidden crosspoints and two inputs on one output."""
        channels = set(channels)
        refused = channels & self.forbidden_set
        if refused:
            raise ValueError(f"{self.name}: crosspoints {sorted(refused)} are forbidden")
        inputs: dict[int, int] = {}
        for channel in sorted(self.closed_set | channels):
            input_port, output = self.ports(channel)
            if inputs.setdefault(output, input_port) != input_port:
                raise ValueError(f"{self.name}: closing {sorted(channels)} would join inputs "
                                 f"{inputs[output]} and {input_port} on output {output}")
        self.closed_set |= channels
        self._log("close")

    def open(self, channels: Iterable[str]) -> None:
        self.closed_set -= set(channels)
        self._log("open")

    def exclusive_close(self, channels: Iterable[str]) -> None:
        self.closed_set = set()
        self.close(channels)

    def open_all(self) -> None:
        self.closed_set = set()
        self._log("open_all")

    def closed(self) -> frozenset[str]:
        self._log("closed")
        return frozenset(self.closed_set)

    def set_forbidden(self, channels: Iterable[str]) -> None:
        self.forbidden_set = frozenset(channels)
        self._log("set_forbidden")

    def forbidden(self) -> frozenset[str]:
        return self.forbidden_set

    def set_break_before_make(self, enabled: bool) -> None:
        self.break_before_make = bool(enabled)
        self._log("set_break_before_make")

    def shutdown(self) -> None:
        self.open_all()

    @staticmethod
    def ports(channel: str) -> tuple[int, int]:
        """(input, output) of a crosspoint name."""
        input_port, output_port = channel.split(":")
        return int(input_port), int(output_port)


class RecordingBoard:
    """An array board that remembers every line's level, its limits and idle mode."""

    def __init__(self, name: str, rows: int, columns: int, recorder: Recorder) -> None:
        self.name, self._recorder = name, recorder
        self._rows, self._columns = rows, columns
        self.row_levels: list[LineLevel] = [LineState.FLOAT] * rows
        self.column_levels: list[LineLevel] = [LineState.FLOAT] * columns
        self.voltage_limit = 10.0
        self.current_limit = 1e-3
        self.idle_state = LineState.FLOAT
        self.integration_time = 1e-3
        self.pulse_levels: tuple[dict[int, float], dict[int, float]] | None = None

    def _log(self, method: str, seconds: float = 0.0) -> None:
        self._recorder.log(self.name, "board", method, seconds)

    @property
    def rows(self) -> int:
        return self._rows

    @property
    def columns(self) -> int:
        return self._columns

    def set_voltage_limit(self, volts: float) -> None:
        self.voltage_limit = float(volts)
        self._log("set_voltage_limit")

    def set_current_limit(self, amperes: float) -> None:
        self.current_limit = float(amperes)
        self._log("set_current_limit")

    def _check_lines(self, rows: Iterable[int], columns: Iterable[int]) -> None:
        """Line indices the board has (it refuses others, error 103)."""
        for kind, indices, size in (("row", rows, self._rows), ("column", columns, self._columns)):
            bad = [k for k in indices if not 0 <= k < size]
            if bad:
                raise ValueError(f"{self.name}: {kind} lines {bad} outside 0..{size - 1}")

    def set_rows(self, levels: Sequence[LineLevel]) -> None:
        if len(levels) != self._rows:
            raise ValueError(f"{self.name}: {len(levels)} row levels for {self._rows} rows")
        self.row_levels = list(levels)
        self._log("set_rows")

    def set_columns(self, levels: Sequence[LineLevel]) -> None:
        if len(levels) != self._columns:
            raise ValueError(f"{self.name}: {len(levels)} column levels for {self._columns} "
                             "columns")
        self.column_levels = list(levels)
        self._log("set_columns")

    def set_lines(self, rows: Mapping[int, LineLevel] | None = None,
                  columns: Mapping[int, LineLevel] | None = None) -> None:
        self._check_lines(rows or {}, columns or {})
        for index, level in (rows or {}).items():
            self.row_levels[index] = level
        for index, level in (columns or {}).items():
            self.column_levels[index] = level
        self._log("set_lines")

    def float_all(self) -> None:
        self._all(LineState.FLOAT, "float_all")

    def ground_all(self) -> None:
        self._all(LineState.GROUND, "ground_all")

    def _all(self, state: LineState, method: str) -> None:
        self.row_levels = [state] * self._rows
        self.column_levels = [state] * self._columns
        self._log(method)

    def measure_currents(self) -> BoardReading:
        self._log("measure_currents", self.integration_time)
        return BoardReading(np.full(self._rows, np.nan), np.full(self._columns, np.nan),
                            np.zeros(self._rows, bool), np.zeros(self._columns, bool), time.time())

    def read_one(self, row: int, column: int, voltage: float) -> Reading:
        self._check_lines([row], [column])
        saved = self.row_levels[:], self.column_levels[:]
        self.row_levels = [LineState.FLOAT] * self._rows
        self.column_levels = [LineState.FLOAT] * self._columns
        self.row_levels[row], self.column_levels[column] = float(voltage), 0.0
        try:
            self._log("read_one", self.integration_time)
        finally:
            self.row_levels, self.column_levels = saved
        return Reading(float(voltage), math.nan, False, time.time())

    def pulse(self, width: float, rows: Mapping[int, float] | None = None,
              columns: Mapping[int, float] | None = None, count: int = 1,
              period: float | None = None) -> None:
        self._check_lines(rows or {}, columns or {})
        self.pulse_levels = (dict(rows or {}), dict(columns or {}))
        self.pulse_width, self.pulse_count = width, count
        try:
            self._log("pulse", count * (period if period is not None else width))
        finally:
            self.pulse_levels = None

    def set_idle_mode(self, state: LineState) -> None:
        self.idle_state = state
        self.row_levels = [state] * self._rows
        self.column_levels = [state] * self._columns
        self._log("set_idle_mode")

    def shutdown(self) -> None:
        self.set_idle_mode(self.idle_state)


# ------------------------------------------------------------------------ the ledger


_GROUND_LIMIT = math.inf


class Ledger:
    """Per-cell worst case (|V| across, |I| the sources allow) and pulse energy, from the state of
    the recording instruments after every call."""

    def __init__(self, spec: BenchSpec, smus: Mapping[str, RecordingSMU],
                 matrices: Mapping[str, RecordingMatrix], boards: Mapping[str, RecordingBoard],
                 guard: SafetyGuard, g_on: float) -> None:
        self.spec, self.smus, self.matrices, self.boards = spec, smus, matrices, boards
        self.guard, self.g_on = guard, g_on
        rows, cols = spec.chip.rows, spec.chip.cols
        self.max_voltage = np.zeros((rows, cols))
        self.max_current = np.zeros((rows, cols))
        self.energy = 0.0
        self.energy_estimate = 0.0
        self.pulses = 0
        self._board_lines: dict[tuple[str, str, int], Line] = {}
        for line, port in spec.wiring.lines.items():
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
        across, allowed = self._across(self.potentials())
        if method == "pulse":
            self._count_pulse(instrument, across)
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
                line = self.spec.wiring.line_at(name, output)
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


# ------------------------------------------------------------------------ bench and report


@dataclass
class DryRunReport:
    """What a protocol would do: counts, per-cell worst case, time, energy and violations."""

    bench: str
    preset: str
    operations: dict[str, dict[str, int]]
    instrument_calls: int
    pulses: int
    max_voltage: np.ndarray
    max_current: np.ndarray
    duration: float
    energy: float
    energy_estimate: float
    violations: list[Violation] = field(default_factory=list)

    @property
    def operation_count(self) -> int:
        return sum(op["calls"] for op in self.operations.values())

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "bench": self.bench,
            "operations": self.operation_count,
            "operations_by_kind": self.operations,
            "instrument_calls": self.instrument_calls,
            "pulses": self.pulses,
            "max_abs_voltage": float(self.max_voltage.max(initial=0.0)),
            "max_abs_current": float(self.max_current.max(initial=0.0)),
            "estimated_duration_s": self.duration,
            "programming_energy_bound_j": self.energy,
            "programming_energy_estimate_j": self.energy_estimate,
            "violations": list(dict.fromkeys(v.describe() for v in self.violations)),
        }

    def format(self) -> str:
        """A human-readable report."""
        s = self.summary()
        kinds = ", ".join(f"{kind} {op['calls']}" for kind, op in self.operations.items())
        lines = [
            f"dry run on bench {self.bench!r}: {s['operations']} operations "
            f"({kinds or 'none'}), "
            f"{s['instrument_calls']} instrument commands, {s['pulses']} pulses",
            f"max |V| across a cell: {s['max_abs_voltage']:.4g} V; max |I| the sources allow "
            f"through a cell: {s['max_abs_current']:.4g} A",
            f"estimated duration: {s['estimated_duration_s']:.3f} s; programming energy: "
            f"{s['programming_energy_estimate_j']:.4g} J with every biased cell at the "
            f"{self.preset} preset's LRS, at most {s['programming_energy_bound_j']:.4g} J "
            "(sources at their limits)",
        ]
        if self.violations:
            shown = s["violations"][:VIOLATIONS_SHOWN]
            lines.append(f"{len(s['violations'])} distinct limit violation(s):")
            lines += [f"  - {v}" for v in shown]
            if len(s["violations"]) > len(shown):
                lines.append(f"  ... and {len(s['violations']) - len(shown)} more (--json)")
        else:
            lines.append("no limit would be broken")
        return "\n".join(lines)


class RecordingBench:
    """A `Bench` built from a bench file's wiring on recording instruments, and its ledger."""

    def __init__(self, spec: BenchSpec, current_limit: float | None = None) -> None:
        self.spec = spec
        self.io = IoCounter()
        self.recorder = Recorder(self.io)
        self.smus: dict[str, RecordingSMU] = {}
        self.matrices: dict[str, RecordingMatrix] = {}
        self.boards: dict[str, RecordingBoard] = {}
        for name, inst in spec.instruments.items():
            if inst.kind == "smu":
                for terminal in inst.info.terminals:
                    key = f"{name}.{terminal}"
                    self.smus[key] = RecordingSMU(key, self.recorder)
            elif inst.kind == "matrix":
                self.matrices[name] = RecordingMatrix(name, self.recorder)
            else:
                self.boards[name] = RecordingBoard(name, inst.rows, inst.cols, self.recorder)
        self.guard = SafetyGuard(spec.limits, record_violations=True)
        g_on = preset(spec.chip.preset).g_max  # the chip's device kind, as a model only
        self.ledger = Ledger(spec, self.smus, self.matrices, self.boards, self.guard, g_on)
        self.recorder.listeners.append(self.ledger.observe)
        self.bench = Bench(spec, self.smus, self.matrices, self.boards, guard=self.guard,
                           io=self.io, identities={n: "dry run" for n in spec.instruments},
                           current_limit=current_limit)

    def report(self) -> DryRunReport:
        return DryRunReport(
            bench=self.spec.name,
            preset=self.spec.chip.preset,
            operations=self.bench.round_trips(),
            instrument_calls=self.io.total,
            pulses=self.ledger.pulses,
            max_voltage=self.ledger.max_voltage.copy(),
            max_current=self.ledger.max_current.copy(),
            duration=self.recorder.duration,
            energy=self.ledger.energy,
            energy_estimate=self.ledger.energy_estimate,
            violations=list(self.guard.violations),
        )


def dry_run(protocol: Callable[..., Any], bench_file: str | None = None,
            **params: Any) -> DryRunReport:
    """Play a registered-style protocol, ``protocol(bench, run, progress, **params)``, on a
    recording copy of the bench (`bench_file`, or the embedded default) and report it.

    Its points go to a scratch run store that is deleted afterwards: a dry run leaves nothing.
    """
    from xbarlab.progress import Progress
    from xbarlab.store import RunStore

    recording = RecordingBench(load_bench(bench_file))
    with tempfile.TemporaryDirectory() as scratch, RunStore(scratch) as store:
        run = store.start_run("dry-run", params, recording.spec.text,
                              shape=(recording.bench.rows, recording.bench.cols))
        with run, recording.bench as bench:
            protocol(bench, run, Progress(show=False), **params)
    return recording.report()
