"""Recording instruments: the `xbarlab.interfaces` protocols with no instrument I/O.

Each keeps the state it was told (levels, limits, outputs, closed relays, line levels), refuses
what the real instruments refuse (forbidden crosspoints, two inputs on one output, lines the
board does not have) and logs every call, with its estimated duration, on a shared `Recorder`.
Measurements return NaN currents: nothing is measured.
"""

from __future__ import annotations

import functools
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from xbarlab.bench import IoCounter
from xbarlab.bench.readings import ANY_PULSE
from xbarlab.drivers.smu import checked_pulse, checked_repeat_count
from xbarlab.interfaces import (
    BoardReading,
    BoardReadings,
    LineLevel,
    LineState,
    PulseCapability,
    Reading,
)

ROUND_TRIP = {"smu": 2e-3, "matrix": 5e-3, "board": 1e-3}
"""Seconds per command by instrument kind: GPIB/USB round trip for an SMU, relay actuation and
settling for a matrix, serial transfer for the board."""
POWER_LINE_CYCLE = 1 / 50
"""Seconds per NPLC (50 Hz mains, the longer of 50/60 Hz)."""


class PlayCut(BaseException):
    """The recording bench's budget of commands is spent: the play stops here (a
    BaseException, so that no protocol's ``except Exception`` carries on past it)."""


class Recorder:
    """The shared log of a recording bench: every call, its instrument, and its duration
    (`operation_s` of it the round trips and the measurements' integration, that is all
    but pulses and their periods). With a `budget`, the call after the
    budget-th raises `PlayCut` once (the safe shutdown after it is logged, not cut)."""

    def __init__(self, io: IoCounter, budget: int | None = None) -> None:
        self.io = io
        self.calls: Counter[str] = Counter()
        self.duration = 0.0
        self.operation_s = 0.0
        self.listeners: list[Callable[[str, str], None]] = []
        self.armed: list = []
        """SMU channels armed to pulse with a cabled instrument's next pulses."""
        self.budget = budget
        self.cut = False

    def log(self, instrument: str, kind: str, method: str, seconds: float = 0.0) -> None:
        self.io.add(instrument)
        self.calls[f"{instrument}.{method}"] += 1
        self.duration += ROUND_TRIP[kind] + seconds
        pulsing = method in ("pulse", "pulse_pair")
        self.operation_s += ROUND_TRIP[kind] + (0.0 if pulsing else seconds)
        for listener in self.listeners:
            listener(instrument, method)
        if self.budget is not None and self.io.total > self.budget:
            self.budget, self.cut = None, True
            raise PlayCut(f"the dry run's budget of instrument commands is spent "
                          f"({self.io.total})")


class RecordingSMU:
    """A source-measure channel that remembers what it was told and sends nothing; it pulses
    what `capability` (its model's, from the driver) allows, and nothing when that is None."""

    max_sweep_points = 100
    """The smallest list of the supported models (2600B), so a dry run counts at least as many
    sweeps as any bench would need."""

    def __init__(self, name: str, recorder: Recorder,
                 capability: PulseCapability | None = ANY_PULSE) -> None:
        self.name, self._recorder = name, recorder
        self.capability = capability
        self.function = "VOLT"
        self.level = 0.0
        self.limit = 1e-4  # power-on compliance of a typical SMU: 100 uA
        self.output = False
        self.nplc = 1.0
        self.current_range: float | None = None
        self.pulse_active: float | None = None  # level during the pulse being logged
        self.armed_level: float | None = None  # level it pulses to with a cabled instrument

    def _log(self, method: str, seconds: float = 0.0) -> None:
        self._recorder.log(self.name, "smu", method, seconds)

    @property
    def current_limit(self) -> float:
        return self.limit if self.function == "VOLT" else math.nan

    def read_current_limit(self) -> float:
        self._log("read_current_limit")
        return self.current_limit

    def pulse_capability(self) -> PulseCapability | None:
        return self.capability

    def check_pulse(self, level: float, width: float, count: int = 1,
                    period: float | None = None, function: str = "VOLT"):
        if self.capability is None:
            raise NotImplementedError(f"{self.name} has no pulse mode")
        return checked_pulse(self.capability, level, width, count, period, function)

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

    def in_compliance(self) -> bool:
        """Costed as a measurement (the worst case over the models)."""
        return self.measure().compliance

    def sweep(self, levels: Sequence[float], delay: float) -> list[Reading]:
        readings = []
        self.output = True
        for level in levels:
            self.level = float(level)
            self._log("sweep", delay + self.nplc * POWER_LINE_CYCLE)
            readings.append(Reading(self.level, math.nan, False, time.time()))
        return readings

    def measure_repeated(self, count: int) -> list[Reading]:
        """`count` readings at the present level, each logged like `measure` (its integration
        time); the count is checked as the drivers check it."""
        count = checked_repeat_count(count)
        return [self.measure() for _ in range(count)]

    def pulse(self, level: float, width: float, count: int = 1, period: float | None = None):
        self.check_pulse(level, width, count, period, self.function)
        self.pulse_active = float(level)
        self.pulse_width, self.pulse_count = width, count
        try:
            self._log("pulse", count * (period if period is not None else width))
        finally:
            self.pulse_active = None

    def shutdown(self) -> None:
        self.level, self.output = 0.0, False
        self._log("shutdown")


class RecordingPairedSMU:
    """An SMU instrument whose two recording channels sweep in lockstep (`sweep_pair`), for
    models that can (a 2600B or B2900 with two channels). Each point is one logged call with
    both channels at their levels, so the ledger sees every point's bias and counts its
    worst-case energy; `point_seconds` is the present point's duration."""

    def __init__(self, name: str, channels: Mapping[str, RecordingSMU],
                 recorder: Recorder) -> None:
        self.name, self.channels, self._recorder = name, dict(channels), recorder
        self.sweeping: tuple[RecordingSMU, ...] | None = None
        self.armed: tuple[RecordingSMU, ...] = ()  # waiting for a cabled instrument's pulses
        self.point_seconds = 0.0

    def sweep_pair(self, first: str, first_levels: Sequence[float], second: str,
                   second_levels: Sequence[float], delay: float):
        if len(first_levels) != len(second_levels):
            raise ValueError(f"second_levels has {len(second_levels)} levels: allowed "
                             f"{len(first_levels)}, as many as first_levels")
        pair = (self.channels[first], self.channels[second])
        self.point_seconds = delay + max(c.nplc for c in pair) * POWER_LINE_CYCLE
        readings: tuple[list[Reading], list[Reading]] = ([], [])
        self.sweeping = pair
        try:
            for levels in zip(first_levels, second_levels, strict=True):
                for channel, level, into in zip(pair, levels, readings, strict=True):
                    channel.level, channel.output = float(level), True
                    into.append(Reading(channel.level, math.nan, False, time.time()))
                self._recorder.log(self.name, "smu", "sweep_pair", self.point_seconds)
        finally:
            self.sweeping = None
        return readings


    def pulse_pair(self, first: str, first_level: float, second: str, second_level: float,
                   width: float, count: int = 1, period: float | None = None):
        """Both channels pulse together: one logged call with both at their pulse levels
        (the ledger counts the pulse's bound over every pulsing channel); nothing measured."""
        got = self.pulse_linked({first: first_level, second: second_level}, width, count,
                                period)
        return got[first], got[second]

    def pulse_linked(self, levels: Mapping[str, float], width: float, count: int = 1,
                     period: float | None = None, trigger_line: int = 1):
        """The channels of `levels` pulse together (with any a cabled instrument armed): one
        logged call with them at their pulse levels; nothing measured."""
        pulsing = self._pulse_levels(levels, width, count, period)
        for channel in self._recorder.armed:  # a cabled instrument's channels pulse too
            channel.pulse_active = channel.armed_level
        pulsing += self._recorder.armed
        self.sweeping = tuple(pulsing)
        try:
            self._recorder.log(self.name, "smu", "pulse_pair",
                               count * (period if period is not None else width))
        finally:
            self.sweeping = None
            for channel in pulsing:
                channel.pulse_active = None
        return dict.fromkeys(levels)

    def arm_linked_pulse(self, levels: Mapping[str, float], width: float, count: int = 1,
                         trigger_line: int = 1) -> None:
        """The channels of `levels` wait for a cabled instrument's pulses, to pulse at their
        levels with those (the ledger counts them then)."""
        armed = self._pulse_levels(levels, width, count, None)
        for channel in armed:
            channel.armed_level, channel.pulse_active = channel.pulse_active, None
        self.armed = tuple(armed)
        self._recorder.armed += armed

    def linked_readings(self):
        """Nothing measured; the armed channels stop waiting."""
        self.disarm_linked_pulse()
        return {}

    def disarm_linked_pulse(self) -> None:
        self._recorder.armed = [c for c in self._recorder.armed if c not in self.armed]
        self.armed = ()

    def _pulse_levels(self, levels, width, count, period) -> list[RecordingSMU]:
        """The channels of `levels`, each checked and set at its pulse level."""
        pulsing = [self.channels[name] for name in levels]
        for channel, level in zip(pulsing, levels.values(), strict=True):
            channel.check_pulse(level, width, count, period, channel.function)
        for channel, level in zip(pulsing, levels.values(), strict=True):
            channel.pulse_active, channel.pulse_width, channel.pulse_count = (
                float(level), width, count)
        return pulsing


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

    def close(self, channels: Iterable[str], known_closed: Iterable[str] | None = None) -> None:
        """Refuses, like the drivers, forbidden crosspoints and two inputs on one output (always
        against the relays really closed, whatever `known_closed` says); reads nothing back."""
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

    def reroute(self, opening: Iterable[str], closing: Iterable[str],
                known_closed: Iterable[str] | None = None) -> None:
        opening, closing = list(opening), list(closing)
        if opening:
            self.open(opening)
        if closing:
            self.close(closing, known_closed)

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
    @functools.cache  # the ledger asks for every closed crosspoint after every call
    def ports(channel: str) -> tuple[int, int]:
        """(input, output) of a crosspoint name."""
        input_port, output_port = channel.split(":")
        return int(input_port), int(output_port)


class RecordingBoard:
    """An array board that remembers every line's level, its limits and idle mode."""

    def __init__(self, name: str, rows: int, columns: int, recorder: Recorder) -> None:
        self.name, self._recorder = name, recorder
        self.rows, self.columns = rows, columns
        self.row_levels: list[LineLevel] = [LineState.FLOAT] * rows
        self.column_levels: list[LineLevel] = [LineState.FLOAT] * columns
        self.voltage_limit = 10.0
        self.current_limit = 1e-3
        self.idle_state = LineState.FLOAT
        self.integration_time = 1e-3
        self.pulse_levels: tuple[dict[int, float], dict[int, float]] | None = None
        self.gates = [0.0] * rows

    def _log(self, method: str, seconds: float = 0.0) -> None:
        self._recorder.log(self.name, "board", method, seconds)

    def set_gate(self, row: int, volts: float) -> None:
        self._check_lines([row], [])
        self.gates[row] = float(volts)
        self._log("set_gate")

    def set_all_gates(self, volts: float) -> None:
        self.gates = [float(volts)] * self.rows
        self._log("set_all_gates")

    def gate(self, row: int) -> float:
        self._log("gate")
        return self.gates[row]

    def set_voltage_limit(self, volts: float) -> None:
        self.voltage_limit = float(volts)
        self._log("set_voltage_limit")

    def set_current_limit(self, amperes: float) -> None:
        self.current_limit = float(amperes)
        self._log("set_current_limit")

    def read_current_limit(self) -> float:
        self._log("read_current_limit")
        return self.current_limit

    def line_levels(self) -> tuple[list[LineLevel], list[LineLevel]]:
        self._log("line_levels")
        return list(self.row_levels), list(self.column_levels)

    def idle_mode(self) -> LineState:
        self._log("idle_mode")
        return self.idle_state

    def _check_lines(self, rows: Iterable[int], columns: Iterable[int]) -> None:
        """Line indices the board has (it refuses others, error 103)."""
        for kind, indices, size in (("row", rows, self.rows), ("column", columns, self.columns)):
            bad = [k for k in indices if not 0 <= k < size]
            if bad:
                raise ValueError(f"{self.name}: {kind} lines {bad} outside 0..{size - 1}")

    def set_rows(self, levels: Sequence[LineLevel]) -> None:
        if len(levels) != self.rows:
            raise ValueError(f"{self.name}: {len(levels)} row levels for {self.rows} rows")
        self.row_levels = list(levels)
        self._log("set_rows")

    def set_columns(self, levels: Sequence[LineLevel]) -> None:
        if len(levels) != self.columns:
            raise ValueError(f"{self.name}: {len(levels)} column levels for {self.columns} "
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
        self.row_levels = [state] * self.rows
        self.column_levels = [state] * self.columns
        self._log(method)

    def measure_currents(self) -> BoardReading:
        self._log("measure_currents", self.integration_time)
        return BoardReading(np.full(self.rows, np.nan), np.full(self.columns, np.nan),
                            np.zeros(self.rows, bool), np.zeros(self.columns, bool), time.time())

    def measure_repeated(self, count: int, rows: Sequence[int] = (),
                         columns: Sequence[int] = ()) -> BoardReadings:
        self._check_lines(rows, columns)
        self._log("measure_repeated", count * self.integration_time)
        return BoardReadings(tuple(rows), tuple(columns), np.full((count, len(rows)), np.nan),
                             np.full((count, len(columns)), np.nan), np.zeros(self.rows, bool),
                             np.zeros(self.columns, bool), time.time())

    def read_one(self, row: int, column: int, voltage: float) -> Reading:
        return self.read_one_repeated(row, column, voltage, 1)[0]

    def read_one_repeated(self, row: int, column: int, voltage: float,
                          count: int) -> list[Reading]:
        self._check_lines([row], [column])
        saved = self.row_levels[:], self.column_levels[:]
        self.row_levels = [LineState.FLOAT] * self.rows
        self.column_levels = [LineState.FLOAT] * self.columns
        self.row_levels[row], self.column_levels[column] = float(voltage), 0.0
        try:
            self._log("read_one", count * self.integration_time)
        finally:
            self.row_levels, self.column_levels = saved
        return [Reading(float(voltage), math.nan, False, time.time())] * count

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

    def pulse_energy(self) -> float:
        """Nothing was delivered: NaN (not measured)."""
        self._log("pulse_energy")
        return math.nan

    def set_idle_mode(self, state: LineState) -> None:
        self.idle_state = state
        self.gates = [0.0] * self.rows
        self.row_levels = [state] * self.rows
        self.column_levels = [state] * self.columns
        self._log("set_idle_mode")

    def shutdown(self) -> None:
        self.set_idle_mode(self.idle_state)
