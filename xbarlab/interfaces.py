"""What the bench and the protocols may ask of an instrument, independent of its model.

Small `typing.Protocol` classes: a source-measure channel, an SMU that sweeps two of its channels
in lockstep, a switch matrix and an array board, plus the reading types they return. Concrete
drivers (`xbarlab.drivers`) satisfy them structurally; protocols program against these and never
import a driver. Every reading carries a compliance flag, because a reading taken at the current
limit is not a measurement of the device.

Units are SI base units throughout: volts, amperes, seconds.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Reading:
    """One source-measure reading.

    `voltage` and `current` are what the instrument reports at its terminal (NaN when the instrument
    did not measure that quantity); `compliance` is True when the source was at its limit, so the
    value is the limit and not a property of the device; `timestamp` is the host's `time.time()`
    when the reply arrived, in seconds. `overflow` is True when a value was beyond the fixed
    measure range (the instrument replied with its overflow value): that value is NaN, and the
    reading says "range too low", not anything about the device.
    """

    voltage: float
    current: float
    compliance: bool
    timestamp: float
    overflow: bool = False


class LineState(enum.Enum):
    """A crossbar line that is not driven at a voltage: disconnected, or tied to ground."""

    FLOAT = "F"
    GROUND = "G"


LineLevel = float | LineState
"""A line is driven at a voltage (a float, volts) or is floating or grounded."""


@dataclass(frozen=True)
class BoardReading:
    """Currents of every row and column line of an array board, measured at the same time.

    Positive current flows from the board into the array. A line that is floating or grounded has no
    sensing path and reads NaN. `*_compliance[k]` is True when line k's driver was at its current
    limit. `timestamp` is the host's `time.time()` when the reply arrived.
    """

    row_currents: np.ndarray
    column_currents: np.ndarray
    row_compliance: np.ndarray
    column_compliance: np.ndarray
    timestamp: float


@dataclass(frozen=True)
class BoardReadings:
    """Repeated measurements of some lines of an array board, taken back to back under one state.

    `row_currents[k, i]` is reading k of row line `rows[i]` (the rows asked for, in that order),
    `column_currents` likewise for `columns`: (count, len(rows)) and (count, len(columns)),
    positive from the board into the array, NaN for a line that is floating or grounded.
    `*_compliance[k]` (one flag per board line) is True when line k's driver was at its current
    limit during any of the measurements. `timestamp` is the host's `time.time()` when the reply
    arrived.
    """

    rows: tuple[int, ...]
    columns: tuple[int, ...]
    row_currents: np.ndarray
    column_currents: np.ndarray
    row_compliance: np.ndarray
    column_compliance: np.ndarray
    timestamp: float


@dataclass(frozen=True)
class PulseCapability:
    """What one source-measure channel can pulse, from its manual, so that a caller can refuse a
    pulse before it sends anything (not even the bias of the other lines).

    A pulse is `min_width` to `max_width` seconds long, repeated 1 to `max_count` times; the
    period, when given, runs from the width to `width + max_off_time` and at most `max_period`
    seconds. The level's magnitude is at most `max_voltage` volts (voltage pulses) or
    `max_current` amperes (current pulses).
    """

    min_width: float
    max_width: float
    max_count: int
    max_voltage: float
    max_current: float
    max_off_time: float = math.inf
    max_period: float = math.inf

    def longest_period(self, width: float) -> float:
        """The longest period allowed for pulses `width` seconds wide."""
        return min(width + self.max_off_time, self.max_period)


@runtime_checkable
class SourceMeasureChannel(Protocol):
    """One channel of a source-measure unit.

    Limits are always given together with the source level, so an output can never go on without a
    compliance that the caller chose. Levels, limits and ranges outside the instrument's capability
    raise `ValueError` before anything is sent.
    """

    max_sweep_points: int
    """Most levels one `sweep` takes (the model's list or buffer size)."""

    def source_voltage(self, level: float, current_limit: float) -> None:
        """Source `level` volts, current limited to `current_limit` amperes (limit set first)."""

    def source_current(self, level: float, voltage_limit: float) -> None:
        """Source `level` amperes, voltage limited to `voltage_limit` volts (limit set first)."""

    def read_current_limit(self) -> float:
        """The current limit (compliance) in amperes, read back from the instrument."""

    def set_current_range(self, amperes: float | None) -> None:
        """Fix the current measurement range, or autorange with None."""

    def set_nplc(self, nplc: float) -> None:
        """Integration time of one measurement in power-line cycles."""

    def output_on(self) -> None:
        """Connect the source to the terminals."""

    def output_off(self) -> None:
        """Disconnect the source from the terminals."""

    def output_enabled(self) -> bool:
        """Whether the output is on, as the instrument reports it."""

    def measure(self) -> Reading:
        """One reading of voltage and current at the terminals, with the compliance flag."""

    def in_compliance(self) -> bool:
        """Whether the source is at its limit now (output on), as the instrument reports it;
        for a source whose reading is not needed, cheaper than `measure` where the model has
        a query for it."""

    def sweep(self, levels: Sequence[float], delay: float) -> list[Reading]:
        """Source each level of the present source function in turn (output on), wait `delay`
        seconds, measure; all readings come back in one round trip."""

    def measure_repeated(self, count: int) -> list[Reading]:
        """`count` readings at the present source level, in as few round trips as the model
        allows (a 2600B fills its reading buffer with `measure.count` readings, other models
        take list sweeps of the present level, `max_sweep_points` at a time). A count that is
        not an integer of 1 or more raises (`ValueError` naming `count` and the allowed range)
        before anything is sent."""

    def pulse(
        self, level: float, width: float, count: int = 1, period: float | None = None
    ) -> list[Reading] | None:
        """Pulse the present source function from 0 to `level` for `width` seconds, `count` times,
        one pulse every `period` seconds. Returns one reading per pulse where the model measures
        during a pulse (its voltage and current averaged over the pulse, or over the end of a
        pulse longer than the longest integration), None where it does not. Raises
        `NotImplementedError` where the model cannot pulse."""

    def pulse_capability(self) -> PulseCapability | None:
        """What this channel can pulse; None when the model has no pulse mode (sends nothing)."""

    def check_pulse(
        self,
        level: float,
        width: float,
        count: int = 1,
        period: float | None = None,
        function: str = "VOLT",
    ) -> tuple[float, float, int, float | None]:
        """Check a pulse of `function` ("VOLT" or "CURR") against `pulse_capability` without
        sending anything: `ValueError` naming the field and the allowed range, or
        `NotImplementedError` where the model cannot pulse. Returns (level, width, count,
        period) as checked."""

    def shutdown(self) -> None:
        """Ramp the source to 0 and turn the output off."""


@runtime_checkable
class PairedSweep(Protocol):
    """An SMU instrument that runs list sweeps of two of its channels in lockstep: at every
    point both channels source their level before either measures (one trigger model, or one
    trigger for both), so a two-terminal bias steps as one. Channels are named as the bench
    file names the instrument's terminals ("a", "b"; "1", "2")."""

    def sweep_pair(
        self,
        first: str,
        first_levels: Sequence[float],
        second: str,
        second_levels: Sequence[float],
        delay: float,
    ) -> tuple[list[Reading], list[Reading]]:
        """Source `first_levels` on channel `first` and `second_levels` (as many) on `second`,
        point by point together, waiting `delay` seconds before each measurement; the readings
        of both channels come back in one operation. Levels are checked against the model
        before anything is sent (`ValueError` naming the field and the allowed range)."""


@runtime_checkable
class PairedPulse(Protocol):
    """An SMU instrument that pulses two of its channels together, measuring both during every
    pulse (one trigger model, or one trigger for both): a pulse and the half-select bias of
    its other lines start and end as one, and what every pulsing terminal delivered is
    measured. Channels are named as for `PairedSweep`."""

    def pulse_pair(
        self,
        first: str,
        first_level: float,
        second: str,
        second_level: float,
        width: float,
        count: int = 1,
        period: float | None = None,
    ) -> tuple[list[Reading] | None, list[Reading] | None]:
        """Pulse channel `first` from 0 to `first_level` and `second` from 0 to `second_level`
        together, `width` seconds, `count` times one `period` apart (each channel's present
        source function and limit); each channel's readings during the pulses as `SmuChannel.
        pulse` returns them (None where nothing was measured). Both pulses are checked against
        the model before anything is sent."""


@runtime_checkable
class LinkedPulse(Protocol):
    """An SMU instrument whose pulses can start another's, and the other way round, over a
    cable between their trigger lines (``[wiring] trigger_link`` in the bench file): one arms
    channels on a line, another pulses with each pulse's start driving the line, so that
    the channels of both pulse together and each measures what it delivered. Channels are
    named as for `PairedSweep`."""

    def pulse_linked(self, levels: Mapping[str, float], width: float, count: int = 1,
                     period: float | None = None, trigger_line: int = 1
                     ) -> dict[str, list[Reading]]:
        """Pulse the channels of `levels` (one or two) together, each pulse's start also an
        output trigger on `trigger_line`; channel -> its readings, one per pulse."""

    def arm_linked_pulse(self, levels: Mapping[str, float], width: float, count: int = 1,
                         trigger_line: int = 1) -> None:
        """Arm the channels of `levels` (one or two) to pulse on each input trigger of
        `trigger_line`, `count` times, `width` long, each measured."""

    def linked_readings(self) -> dict[str, list[Reading]]:
        """Once the pulses ran: channel -> the armed channel's readings, one per pulse."""

    def disarm_linked_pulse(self) -> None:
        """Abort what `arm_linked_pulse` armed (nothing when nothing is)."""


@runtime_checkable
class SwitchMatrix(Protocol):
    """A relay matrix connecting instrument inputs to device outputs.

    Channels are the instrument's own names (`1A03` on a 707B, `10103` on an E5250A); `crosspoint`
    builds them. Closing a forbidden channel raises before anything is sent.
    """

    def crosspoint(self, input_port: int, output_port: int) -> str:
        """The channel name joining matrix input `input_port` to output `output_port` (1-based)."""

    def close(self, channels: Iterable[str], known_closed: Iterable[str] | None = None) -> None:
        """Close these crosspoints in addition to those already closed.

        The safety check (no forbidden crosspoint, no two inputs on one output) runs against the
        crosspoints read back from the instrument, or, when the caller tracks the relays itself,
        against `known_closed` with no read-back (one round trip less per close; verify with
        `closed()` from time to time)."""

    def open(self, channels: Iterable[str]) -> None:
        """Open these crosspoints."""

    def reroute(self, opening: Iterable[str], closing: Iterable[str],
                known_closed: Iterable[str] | None = None) -> None:
        """Open `opening`, then close `closing` (either may be empty), in as few messages as
        the instrument takes; `known_closed` (what stays closed once `opening` opened) as for
        `close`."""

    def exclusive_close(self, channels: Iterable[str]) -> None:
        """Open every other crosspoint first, then close these (break before make)."""

    def open_all(self) -> None:
        """Open every crosspoint."""

    def closed(self) -> frozenset[str]:
        """The crosspoints that are closed, as the instrument reports them."""

    def set_forbidden(self, channels: Iterable[str]) -> None:
        """Crosspoints that must never close (enforced in software, and in hardware if possible)."""

    def forbidden(self) -> frozenset[str]:
        """The crosspoints that must never close."""

    def set_break_before_make(self, enabled: bool) -> None:
        """Whether existing paths break before new ones make when switching."""

    def shutdown(self) -> None:
        """Open every crosspoint."""


@runtime_checkable
class ArrayBoard(Protocol):
    """A crossbar board with a driver and a current sense on every row and column line."""

    @property
    def rows(self) -> int:
        """Number of row (word) lines."""

    @property
    def columns(self) -> int:
        """Number of column (bit) lines."""

    def set_voltage_limit(self, volts: float) -> None:
        """Largest |V| any line may be driven or pulsed to."""

    def set_current_limit(self, amperes: float) -> None:
        """Current limit (compliance) of every line driver."""

    def read_current_limit(self) -> float:
        """The line drivers' current limit in amperes, read back from the board."""

    def set_rows(self, levels: Sequence[LineLevel]) -> None:
        """Set every row line at once: a voltage, `LineState.FLOAT` or `LineState.GROUND` each."""

    def set_columns(self, levels: Sequence[LineLevel]) -> None:
        """Set every column line at once."""

    def set_lines(
        self,
        rows: Mapping[int, LineLevel] | None = None,
        columns: Mapping[int, LineLevel] | None = None,
    ) -> None:
        """Set only the given lines; the others keep their state."""

    def line_levels(self) -> tuple[list[LineLevel], list[LineLevel]]:
        """(row levels, column levels) of every board line, read back from the board."""

    def idle_mode(self) -> LineState:
        """The idle state of the lines, read back from the board."""

    def float_all(self) -> None:
        """Disconnect every line."""

    def ground_all(self) -> None:
        """Ground every line."""

    def measure_currents(self) -> BoardReading:
        """Currents of every row and every column line, sampled at the same time."""

    def measure_repeated(
        self, count: int, rows: Sequence[int] = (), columns: Sequence[int] = ()
    ) -> BoardReadings:
        """`count` measurements back to back of the given lines only, under their present levels."""

    def read_one(self, row: int, column: int, voltage: float) -> Reading:
        """Row driven at `voltage`, column at 0 V, every other line floating; the cell current."""

    def read_one_repeated(self, row: int, column: int, voltage: float, count: int) -> list[Reading]:
        """`read_one` with `count` readings taken back to back under the same line levels."""

    def pulse(
        self,
        width: float,
        rows: Mapping[int, float] | None = None,
        columns: Mapping[int, float] | None = None,
        count: int = 1,
        period: float | None = None,
    ) -> None:
        """Drive the given lines at the given voltages for `width` seconds (`count` times, one pulse
        every `period` seconds); the other lines keep their state throughout."""

    def pulse_energy(self) -> float:
        """Energy (J) every driven line delivered during the pulses since the last call (V x I
        integrated over each pulse); clears it. NaN where nothing was measured."""

    def set_idle_mode(self, state: LineState) -> None:
        """The state every line takes when idle; puts every line in it now and every gate
        (`set_gate`) at 0 V."""

    def set_gate(self, row: int, volts: float) -> None:
        """Gate voltage of board row `row`'s word line (a 1T1R chip's access transistors)."""

    def set_all_gates(self, volts: float) -> None:
        """Every word line's gate voltage."""

    def shutdown(self) -> None:
        """Put every line in the idle state."""
