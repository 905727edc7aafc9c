"""Keithley Series 2600B System SourceMeter (2601B ... 2636B), TSP.

Commands from the Series 2600B Reference Manual ch. 7 (see commands.toml). The instrument has one
channel (`smua`) or two (`smua`, `smub`) depending on the model; each is a `Keithley2600Channel`
satisfying `SourceMeasureChannel`. Sweeps run in the channel's trigger model and come back in one
`printbuffer`; a list longer than one TSP line takes (`MAX_LIST_CHUNK`) runs as consecutive
trigger-model sweeps into the same reading buffers, the source held at each chunk's last level
until the next starts and idle only after the last, so the readings and the source are those of
one sweep. Pulses run in the trigger model (timers 1 and 2) and are measured while they last
(`Keithley2600Channel.pulse`); timed acquisitions pace the measure layer with trigger timer 1.

The 2600A series (2601A ... 2636A) is refused at connect (`SERIES_A`).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from xbarlab.interfaces import PulseCapability, Reading

from .base import Instrument, TspErrorQueue
from .errors import UnexpectedReplyError, WrongInstrumentError
from .numbers import format_integer, format_number, format_numbers, parse_bool, parse_number
from .properties import Setting
from .smu import (
    CURR,
    VOLT,
    InstrumentChannel,
    MultiChannelSmu,
    SmuChannel,
    SmuLimits,
)
from .smu_settings import Ranges, TimerCapability
from .validators import InRange, check_count


@dataclass(frozen=True)
class Model2600:
    channels: tuple[str, ...]
    limits: SmuLimits
    lowest_current_range: float
    ranges: Ranges


_LOW_VOLTAGE = SmuLimits(40.0, 3.0, 1e-8, 1e-2)  # 260xB: 40 V, 3 A DC
_HIGH_VOLTAGE = SmuLimits(200.0, 1.5, 1e-8, 1e-2)  # 261xB: 200 V, 1.5 A DC
_LOW_CURRENT = SmuLimits(200.0, 1.5, 1e-9, 1e-2)  # 263xB: 200 V, 1.5 A DC, 100 pA range
# lowest voltage range (100 mV on the 260xB, 200 mV otherwise), lowest current source range
# (100 nA; 1 nA on the 263xB), source and measure delays up to 10 s [2600B manual, ranges]
_LOW_VOLTAGE_RANGES = Ranges(0.1, 1e-7, max_source_delay=10.0, max_measure_delay=10.0)
_HIGH_VOLTAGE_RANGES = Ranges(0.2, 1e-7, max_source_delay=10.0, max_measure_delay=10.0)
_LOW_CURRENT_RANGES = Ranges(0.2, 1e-9, max_source_delay=10.0, max_measure_delay=10.0)
ONE, TWO = ("smua",), ("smua", "smub")
MODELS = {
    "2601B": Model2600(ONE, _LOW_VOLTAGE, 1e-7, _LOW_VOLTAGE_RANGES),
    "2602B": Model2600(TWO, _LOW_VOLTAGE, 1e-7, _LOW_VOLTAGE_RANGES),
    "2604B": Model2600(TWO, _LOW_VOLTAGE, 1e-7, _LOW_VOLTAGE_RANGES),
    "2611B": Model2600(ONE, _HIGH_VOLTAGE, 1e-7, _HIGH_VOLTAGE_RANGES),
    "2612B": Model2600(TWO, _HIGH_VOLTAGE, 1e-7, _HIGH_VOLTAGE_RANGES),
    "2614B": Model2600(TWO, _HIGH_VOLTAGE, 1e-7, _HIGH_VOLTAGE_RANGES),
    "2634B": Model2600(TWO, _LOW_CURRENT, 1e-10, _LOW_CURRENT_RANGES),
    "2635B": Model2600(ONE, _LOW_CURRENT, 1e-10, _LOW_CURRENT_RANGES),
    "2636B": Model2600(TWO, _LOW_CURRENT, 1e-10, _LOW_CURRENT_RANGES),
}
SERIES_A = (
    "the Keithley 2600A series is refused: this driver's commands are checked against the "
    "Series 2600B Reference Manual (2600BS-901-01) only, and the 2600A's factory pulse "
    "scripts, buffer capacity and defaults (smuX.measure.filter.type) differ; use a 2600B"
)
"""Why a 2601A ... 2636A is refused at connect (and in bench files)."""
SERIES_A_MODELS = ("2601A", "2602A", "2611A", "2612A", "2635A", "2636A")

COMPLIANCE_STATUS = 1 << 6
"""bufferVar.statuses bit 6 (0x40): the reading was taken in compliance."""
MAX_LIST_CHUNK = 100
"""Levels per `trigger.source.listv`: the list travels in one TSP line, kept well below the
input-line limit; longer sweeps run in chunks of this many."""
MAX_BUFFER_READINGS = 60000
"""Readings one `smuX.measure.count` fill of a dedicated reading buffer takes: the capacity of
one nvbuffer with source values and timestamps off (over 60,000 readings), which is also the
range of measure.count the driver uses (1 to 60000); bench-check on a real unit."""
MAX_SWEEP_POINTS = MAX_BUFFER_READINGS
"""Points per sweep: one reading buffer's capacity (the chunks all go into one buffer)."""
TIMER = TimerCapability(min_interval=1e-3, max_interval=1e3, max_count=MAX_BUFFER_READINGS)
"""Trigger timer 1 pacing the measure layer (trigger.timer[N].delay; at least 1 ms so that a
reading fits in each interval); one buffer of readings."""
REPEAT_SECONDS_PER_READING = 0.5
"""Time allowed per buffered reading before the error query times out (25 NPLC at 50 Hz),
as for a sweep point."""
PULSE_TIMING = {"min_width": 1e-4, "max_width": 1e3, "max_count": 10000, "max_off_time": 1e3}
"""Trigger-model pulses (`Keithley2600Channel.pulse`): on and off times 100 µs to 1000 s (as
the KIPulse factory scripts allow), up to 10000 pulses (readings in one buffer)."""


def model_pulse_capability(model: str) -> PulseCapability:
    """What every channel of `model` can pulse (see PULSE_TIMING)."""
    return MODELS[model].limits.pulse_capability(**PULSE_TIMING)


OFF_MODE_NUMBERS = {0: "normal", 1: "zero", 2: "high_z"}
"""`smuX.source.offmode` as printed: OUTPUT_NORMAL 0, OUTPUT_ZERO 1, OUTPUT_HIGH_Z 2."""


def _off_mode(reply: str) -> str:
    number = parse_number(reply)
    if number not in OFF_MODE_NUMBERS:
        raise ValueError(f"offmode reply {reply!r}: allowed 0, 1 or 2")
    return OFF_MODE_NUMBERS[int(number)]


def _unit(function: str) -> str:
    return "v" if function == VOLT else "i"


def _limit_unit(function: str) -> str:
    return "i" if function == VOLT else "v"


def _chunks(points: list[float]) -> list[list[float]]:
    """`points` in lists of at most MAX_LIST_CHUNK levels (one TSP line each)."""
    return [points[k:k + MAX_LIST_CHUNK] for k in range(0, len(points), MAX_LIST_CHUNK)]


class Keithley2600Channel(InstrumentChannel, SmuChannel):
    """One SMU channel (`smua` or `smub`) of a 2600B."""

    max_sweep_points = MAX_SWEEP_POINTS
    timer = TIMER
    output_off_modes = {"normal": "OUTPUT_NORMAL", "zero": "OUTPUT_ZERO",
                        "high_z": "OUTPUT_HIGH_Z"}
    autozero_modes = {"off": "AUTOZERO_OFF", "once": "AUTOZERO_ONCE", "auto": "AUTOZERO_AUTO"}
    filter_types = {"repeat": "FILTER_REPEAT_AVG", "moving": "FILTER_MOVING_AVG"}

    output_off_mode = Setting(
        get="print({ch}.source.offmode)", parse=_off_mode,
        doc="The output-off mode as the channel reports it (normal, zero, high_z).")
    nplc = Setting(
        unit="PLC",
        get="print({ch}.measure.nplc)",
        set="{ch}.measure.nplc = {value}",
        validator=InRange(0.001, 25.0, "PLC"),
        doc="Integration time of every measurement, in power-line cycles (0.001 to 25).",
    )
    current_range = Setting(
        unit="A", get="print({ch}.measure.rangei)", doc="Current measure range, A."
    )
    current_autorange = Setting(
        get="print({ch}.measure.autorangei)",
        set="{ch}.measure.autorangei = {ch}.{value}",
        values={True: "AUTORANGE_ON", False: "AUTORANGE_OFF"},
        parse=parse_bool,
        doc="Whether the current measurement range follows the reading.",
    )
    current_limit = Setting(
        unit="A", get="print({ch}.source.limiti)", doc="Current limit, A (V source)."
    )
    voltage_limit = Setting(
        unit="V", get="print({ch}.source.limitv)", doc="Voltage limit, V (I source)."
    )

    def __init__(self, instrument: Keithley2600, name: str, model: Model2600):
        super().__init__(instrument, {"ch": name})
        self.name = name
        self.limits = model.limits
        self.lowest_current_range = model.lowest_current_range
        self.ranges = model.ranges

    # -- primitives ----------------------------------------------------------------------------

    def _select_source(self, function: str) -> None:
        self.configure(self._function_statement(function))

    def _write_limit(self, function: str, limit: float) -> None:
        self.configure(self._limit_statement(function, limit))

    def _write_level(self, function: str, level: float) -> None:
        self.configure(self._level_statement(function, level))

    def _write_source(self, function: str, limit: float, level: float, known: bool) -> None:
        """Function, limit and level as one chunk, one error-queue check, whether or not the
        limit is `known` (the level alone would cost as much): a statement that fails stops
        the chunk, so the level is never set without its limit."""
        self.instrument.configure_all([self._function_statement(function),
                                       self._limit_statement(function, limit),
                                       self._level_statement(function, level)])

    def _function_statement(self, function: str) -> str:
        constant = "OUTPUT_DCVOLTS" if function == VOLT else "OUTPUT_DCAMPS"
        return f"{self.name}.source.func = {self.name}.{constant}"

    def _limit_statement(self, function: str, limit: float) -> str:
        return f"{self.name}.source.limit{_limit_unit(function)} = {format_number(limit)}"

    def _level_statement(self, function: str, level: float) -> str:
        return f"{self.name}.source.level{_unit(function)} = {format_number(level)}"

    def _read_level(self, function: str) -> float:
        return parse_number(self.ask(f"print({self.name}.source.level{_unit(function)})"))

    def _read_source_function(self) -> str:
        command = f"print({self.name}.source.func)"
        reply = self.ask(command).strip()
        value = parse_number(reply)
        if value not in (0.0, 1.0):
            raise UnexpectedReplyError(self.describe(), command, reply, "1 or 0")
        self._function = VOLT if value == 1.0 else CURR
        return self._function

    def _current_range_bounds(self) -> tuple[float, float]:
        return self.lowest_current_range, self.limits.max_current

    def _write_current_range(self, amperes: float) -> None:
        """Fixing the range turns autorange off."""
        self.configure(f"{self.name}.measure.rangei = {format_number(amperes)}")

    def pulse_capability(self) -> PulseCapability:
        """Trigger-model pulses (see PULSE_TIMING)."""
        return model_pulse_capability(self.instrument.model)

    def _write_off_mode(self, word: str) -> None:
        self.configure(f"{self.name}.source.offmode = {self.name}.{word}")

    def _write_source_range(self, function: str, value: float | None) -> None:
        """A fixed range turns source autorange off."""
        unit = _unit(function)
        if value is None:
            self.configure(f"{self.name}.source.autorange{unit} = {self.name}.AUTORANGE_ON")
        else:
            self.configure(f"{self.name}.source.range{unit} = {format_number(value)}")

    def _write_voltage_range(self, volts: float | None) -> None:
        """A fixed range turns measure autorange off."""
        if volts is None:
            self.configure(f"{self.name}.measure.autorangev = {self.name}.AUTORANGE_ON")
        else:
            self.configure(f"{self.name}.measure.rangev = {format_number(volts)}")

    def _write_source_delay(self, seconds: float | None) -> None:
        value = f"{self.name}.DELAY_AUTO" if seconds is None else format_number(seconds)
        self.configure(f"{self.name}.source.delay = {value}")

    def _write_measure_delay(self, seconds: float | None) -> None:
        """None: the automatic measure delay, set by the present current range."""
        value = f"{self.name}.DELAY_AUTO" if seconds is None else format_number(seconds)
        self.configure(f"{self.name}.measure.delay = {value}")

    def _write_autozero(self, word: str) -> None:
        self.configure(f"{self.name}.measure.autozero = {self.name}.{word}")

    def _write_filter(self, count: int, word: str) -> None:
        """One chunk: type, count and on (count 1: off alone)."""
        ch = self.name
        if count == 1:
            self.configure(f"{ch}.measure.filter.enable = {ch}.FILTER_OFF")
            return
        self.instrument.configure_all([f"{ch}.measure.filter.type = {ch}.{word}",
                                       f"{ch}.measure.filter.count = {format_integer(count)}",
                                       f"{ch}.measure.filter.enable = {ch}.FILTER_ON"])

    def _timed_readings(self, count: int, interval: float) -> list[Reading]:
        """The measure layer on trigger timer 1 at the present source level (source action
        off): the timer passes the armed event through (first reading at once) and gives
        `count - 1` more, `interval` apart. One chunk (set-up, start, `waitcomplete()`), one
        error check, the stimuli back to immediate, one printbuffer."""
        ch = self.name
        statements = [
            f"{ch}.nvbuffer1.clear()", f"{ch}.nvbuffer2.clear()",
            f"trigger.timer[1].delay = {format_number(interval)}",
            f"trigger.timer[1].count = {format_integer(max(count - 1, 1))}",
            "trigger.timer[1].passthrough = true",
            f"trigger.timer[1].stimulus = {ch}.trigger.ARMED_EVENT_ID",
            f"{ch}.trigger.source.action = {ch}.DISABLE",
            f"{ch}.trigger.measure.iv({ch}.nvbuffer1, {ch}.nvbuffer2)",
            f"{ch}.trigger.measure.action = {ch}.ENABLE",
            f"{ch}.trigger.measure.stimulus = trigger.timer[1].EVENT_ID",
            f"{ch}.trigger.count = {format_integer(count)}",
            f"{ch}.trigger.initiate()", "waitcomplete()",
        ]
        restore = [f"{ch}.trigger.measure.stimulus = 0", "trigger.timer[1].stimulus = 0"]
        with self._restored_after(lambda: self.instrument.configure_all(restore)):
            self.instrument.configure_all(statements, extra_seconds=count * interval + 1)
        command = f"printbuffer(1, {format_integer(count)}, {self._buffer_fields()})"
        return self._buffer_readings(command, self.ask(command), [self], count)[0]

    def _abort(self) -> None:
        self.configure(f"{self.name}.abort()")

    # -- SourceMeasureChannel ------------------------------------------------------------------

    def output_on(self) -> None:
        self.configure(f"{self.name}.source.output = {self.name}.OUTPUT_ON")

    def output_off(self) -> None:
        self._forget()
        self.configure(f"{self.name}.source.output = {self.name}.OUTPUT_OFF")

    def output_enabled(self) -> bool:
        return parse_bool(self.ask(f"print({self.name}.source.output)"))

    def measure(self) -> Reading:
        """`measure.iv()` (current, then voltage) and the source's compliance state."""
        command = f"print({self.name}.measure.iv())"
        reply = self.ask(command)
        fields = reply.strip().split("\t")
        if len(fields) != 2:
            raise UnexpectedReplyError(self.describe(), command, reply, "I<TAB>V")
        compliance = self.in_compliance()
        return self._reading(parse_number(fields[1]), parse_number(fields[0]), compliance)

    def in_compliance(self) -> bool:
        """The source's compliance state (`source.compliance`), without a measurement."""
        command = f"print({self.name}.source.compliance)"
        reply = self.ask(command)
        try:
            return parse_bool(reply)
        except ValueError:
            raise UnexpectedReplyError(self.describe(), command, reply,
                                       "true or false") from None

    def sweep(self, levels, delay: float) -> list[Reading]:
        """List sweep in the trigger model (I into nvbuffer1, V into nvbuffer2), one printbuffer.

        Up to MAX_LIST_CHUNK levels: one trigger-model sweep. More: one sweep per chunk into
        the same buffers, each chunk but the last ending with the source held at its last level
        (`endsweep.action = SOURCE_HOLD`) until the next starts, the last ending idle, as one
        sweep does: the readings and the source are those of one sweep. A sweep that fails or
        is interrupted is aborted (`smuX.abort()`) and the remembered settings forgotten.
        """
        function, points, delay, limit = self._sweep_request(levels, delay)
        ch, n = self.name, format_integer(len(points))
        chunks = _chunks(points)
        with self.locked(), self._restored_after(lambda: None):
            for k, chunk in enumerate(chunks):
                last = k == len(chunks) - 1
                if k == 0:
                    self._load_sweep(function, chunk, delay, limit, last)
                else:
                    self.instrument.configure_all(self._chunk_statements(function, chunk, last))
                initiate = f"{ch}.trigger.initiate()"
                self.instrument.write(initiate)
                self.instrument.write("waitcomplete()")
                self.instrument.check_errors(initiate, extra_seconds=len(chunk) * (delay + 0.5))
            command = f"printbuffer(1, {n}, {self._buffer_fields()})"
            reply = self.ask(command)
        return self._buffer_readings(command, reply, [self], len(points))[0]

    def _readings_at_level(self, count: int) -> list[Reading]:
        """`count` readings at the present source level, the manual's way: `measure.count`
        readings of current and voltage into nvbuffer1 and nvbuffer2 by one `measure.iv`, and
        one printbuffer with the statuses (compliance bit) per buffer fill of at most
        MAX_BUFFER_READINGS readings. `measure.count` is set back to 1 before the buffer is
        read (so every later measurement, sweeps included, takes one reading again), and on
        every exit path."""
        readings: list[Reading] = []
        for start in range(0, count, MAX_BUFFER_READINGS):
            readings += self._buffer_fill(min(MAX_BUFFER_READINGS, count - start))
        return readings

    def _buffer_fill(self, count: int) -> list[Reading]:
        """One buffer fill of `count` readings (see `measure_repeated`): five writes, one error
        query for all of them (answered once the readings are taken) and one printbuffer."""
        ch, n = self.name, format_integer(count)
        measure = f"{ch}.measure.iv({ch}.nvbuffer1, {ch}.nvbuffer2)"
        restore = f"{ch}.measure.count = 1"
        restored = False
        try:
            self.instrument.write(f"{ch}.measure.count = {n}")
            self.instrument.write(f"{ch}.nvbuffer1.clear()")
            self.instrument.write(f"{ch}.nvbuffer2.clear()")
            self.instrument.write(measure)
            self.instrument.write(restore)
            restored = True
            self.instrument.check_errors(
                measure, extra_seconds=count * REPEAT_SECONDS_PER_READING
            )
            command = f"printbuffer(1, {n}, {self._buffer_fields()})"
            reply = self.ask(command)
        finally:
            if not restored:  # a write failed: try to leave the count at 1 anyway
                with contextlib.suppress(Exception):
                    self.instrument.write(restore)
        return self._buffer_readings(command, reply, [self], count)[0]

    def _sweep_request(self, levels, delay: float) -> tuple[str, list[float], float, float]:
        """(function, levels, delay, limit) of a sweep of the present source function, checked
        against the model before anything is configured (function and limit as this driver
        last set them, else read back)."""
        function = self._present_function()
        points = check_count("levels", levels, 1, MAX_SWEEP_POINTS)
        points = [self.limits.level(function, "sweep level", value) for value in points]
        delay = InRange(0.0, 1e3, "s")("delay", delay)
        return function, points, delay, self._read_limit(function)

    def _load_sweep(self, function: str, points: list[float], delay: float, limit: float,
                    last: bool = True):
        """Configure the channel's trigger model for a list sweep of `points` under `limit`
        and turn its output on (`_sweep_statements`, each confirmed before the next)."""
        for statement in self._sweep_statements(function, points, delay, limit, last):
            self.configure(statement)

    def _sweep_statements(self, function: str, points: list[float], delay: float,
                          limit: float, last: bool = True, count: int | None = None,
                          end_pulse: str = "SOURCE_HOLD") -> list[str]:
        """The statements that set the channel's trigger model up for a list sweep of `points`
        under `limit` (cleared buffers, source and measure actions, source held between points
        (`end_pulse`; SOURCE_IDLE: back to the DC level, a pulse) and idle at the end, or held
        when chunks follow: not `last`), `count` points (the list repeating; default one
        pass), the sweep's limit before its output goes on, output on last."""
        ch = self.name
        return [
            f"{ch}.nvbuffer1.clear()",
            f"{ch}.nvbuffer2.clear()",
            f"{ch}.measure.delay = {format_number(delay)}",
            f"{ch}.trigger.source.list{_unit(function)}({{{format_numbers(points)}}})",
            f"{ch}.trigger.source.limit{_limit_unit(function)} = {format_number(limit)}",
            f"{ch}.trigger.measure.iv({ch}.nvbuffer1, {ch}.nvbuffer2)",
            f"{ch}.trigger.measure.action = {ch}.ENABLE",
            f"{ch}.trigger.endpulse.action = {ch}.{end_pulse}",
            self._end_sweep_statement(last),
            f"{ch}.trigger.count = {format_integer(count or len(points))}",
            f"{ch}.trigger.source.action = {ch}.ENABLE",
            f"{ch}.source.output = {ch}.OUTPUT_ON",
        ]

    def _chunk_statements(self, function: str, points: list[float], last: bool) -> list[str]:
        """The next chunk of a long sweep, the trigger model otherwise as the first chunk set
        it (readings appended to the same buffers): its list, its count and how it ends."""
        ch = self.name
        return [f"{ch}.trigger.source.list{_unit(function)}({{{format_numbers(points)}}})",
                f"{ch}.trigger.count = {format_integer(len(points))}",
                self._end_sweep_statement(last)]

    def _end_sweep_statement(self, last: bool) -> str:
        """Idle after the last chunk (the source back to its DC level), held before another."""
        action = "SOURCE_IDLE" if last else "SOURCE_HOLD"
        return f"{self.name}.trigger.endsweep.action = {self.name}.{action}"

    def _buffer_fields(self) -> str:
        """The printbuffer fields of one sweep point: current, voltage, status."""
        ch = self.name
        return f"{ch}.nvbuffer1.readings, {ch}.nvbuffer2.readings, {ch}.nvbuffer1.statuses"

    def _buffer_readings(self, command: str, reply: str, channels, count: int):
        """Readings per channel from a printbuffer `reply` of `count` points, each point the
        (I, V, status) triples of `channels` in order."""
        fields = [parse_number(field) for field in reply.strip().split(",")]
        width = 3 * len(channels)
        if len(fields) != width * count:
            raise UnexpectedReplyError(
                self.describe(), command, reply,
                f"{count} points of {len(channels)} I, V, status triples",
            )
        return [
            [
                self._reading(fields[k + 3 * c + 1], fields[k + 3 * c],
                              int(fields[k + 3 * c + 2]) & COMPLIANCE_STATUS)
                for k in range(0, len(fields), width)
            ]
            for c in range(len(channels))
        ]

    def pulse(self, level: float, width: float, count: int = 1,
              period: float | None = None) -> list[Reading]:
        """`count` pulses from 0 to `level`, each `width` on and `period - width` off at 0 (off
        time = width when no period is given), with the channel's present limit, each measured
        while it lasts: the current and voltage averaged over the last `pulse_aperture(width)`
        seconds of the pulse (the whole pulse up to 25 PLC). One reading per pulse.

        The trigger model pulses (2600B Ref. Manual, 'Pulse mode sweeps' and instruments.md
        §3 pulsed sourcing (trigger model)): timer 1, started by the channel's ARMED event and
        passing it through, paces the pulses one period apart and starts the source and the
        measurement of each; timer 2, started by timer 1, ends each pulse `width` later
        (endpulse SOURCE_IDLE: back to the DC level, 0). The measurement integrates NPLC =
        aperture x line frequency after a measure delay of width - aperture. One chunk, one
        error check, one printbuffer; the stimuli, NPLC and DC level are put back on every
        way out."""
        function, level, width, count, period = self._pulse_request(
            level, width, count, period, self._read_source_function
        )
        return self.instrument._pulse_channels([(self, function, level)], width, count,
                                               period)[0]

    def _pulse_setup(self, function: str, level: float, width: float, count: int,
                     start: str = "trigger.timer[1].EVENT_ID") -> dict[str, list[str]]:
        """This channel's part of a trigger-model pulse train (`Keithley2600._pulse_channels`),
        by where it goes in the chunk: ``source`` (DC level 0, the pulse's NPLC and measure
        delay, the one-point list sweep repeated `count` times, each point ending in
        SOURCE_IDLE), ``stimuli`` (source and measure layers on the `start` event, timer 1's
        by default, the end of the pulse on timer 2), ``output`` (on); ``stimuli_back`` and
        ``settings_back`` put the stimuli, NPLC, measure delay and DC level back as they
        were."""
        ch = self.name
        previous = self._read_level(function)
        nplc = self.nplc
        measure_delay = parse_number(self.ask(f"print({ch}.measure.delay)"))
        aperture = self.pulse_aperture(width)
        nplc_pulse = min(max(aperture * self.instrument.line_frequency(), 0.001), 25.0)
        return {
            "source": [
                self._level_statement(function, 0.0),
                f"{ch}.measure.nplc = {format_number(nplc_pulse)}",
                *self._sweep_statements(function, [level], max(width - aperture, 0.0),
                                        self._read_limit(function), count=count,
                                        end_pulse="SOURCE_IDLE")[:-1]],  # output on: last
            "stimuli": [f"{ch}.trigger.source.stimulus = {start}",
                        f"{ch}.trigger.measure.stimulus = {start}",
                        f"{ch}.trigger.endpulse.stimulus = trigger.timer[2].EVENT_ID"],
            "output": [f"{ch}.source.output = {ch}.OUTPUT_ON"],
            "stimuli_back": [f"{ch}.trigger.{layer}.stimulus = 0"
                             for layer in ("source", "measure", "endpulse")],
            "settings_back": [f"{ch}.measure.nplc = {format_number(nplc)}",
                              f"{ch}.measure.delay = {format_number(measure_delay)}",
                              self._level_statement(function, previous)],
        }

    def pulse_aperture(self, width: float) -> float:
        """Seconds each pulse of `width` is measured over (its end): the whole pulse, at most
        25 PLC (the longest integration, smuX.measure.nplc)."""
        return min(width, 25.0 / self.instrument.line_frequency())


class Keithley2600(TspErrorQueue, MultiChannelSmu, Instrument):
    """A 2600B SourceMeter: `channels` maps `smua`/`smub` to their `Keithley2600Channel`."""

    catalog_name = "keithley2600"
    timeout_ms = 5000
    identity_pattern = re.compile(r"Model\s+(" + "|".join((*MODELS, *SERIES_A_MODELS)) + r")\b")
    expected_identity = "a Keithley 2600B SourceMeter (Model " + "/".join(MODELS) + ")"

    def _connected(self) -> None:
        if self.model in SERIES_A_MODELS:
            raise WrongInstrumentError(self.address, self.expected_identity, self.identity,
                                       SERIES_A)
        model = MODELS[self.model]
        self.channels = {name: Keithley2600Channel(self, name, model) for name in model.channels}
        self._line_frequency: float | None = None
        self.write("errorqueue.clear()")

    def line_frequency(self) -> float:
        """The power-line frequency NPLC counts in (Hz), asked once (`localnode.linefreq`)."""
        if self._line_frequency is None:
            frequency = parse_number(self.ask("print(localnode.linefreq)"))
            if frequency not in (50.0, 60.0):
                raise UnexpectedReplyError(self.describe(), "print(localnode.linefreq)",
                                           str(frequency), "50 or 60")
            self._line_frequency = frequency
        return self._line_frequency

    def _channel_key(self, name: str) -> str:
        """Channel `"a"`/`"smua"` or `"b"`/`"smub"` (b only on two-channel models)."""
        return name if str(name).startswith("smu") else f"smu{name}"

    @property
    def smua(self) -> Keithley2600Channel:
        return self.channels["smua"]

    @property
    def smub(self) -> Keithley2600Channel:
        if "smub" not in self.channels:
            raise AttributeError(f"the Keithley {self.model} has one channel (smua) only")
        return self.channels["smub"]

    def sweep_pair(self, first, first_levels, second, second_levels, delay: float):
        """List sweeps of two channels in lockstep: at every point both source their level,
        then both measure, then both step on; (first readings, second readings), all in one
        printbuffer.

        The first channel leads (its source is immediate); the second sources on the first's
        SOURCE_COMPLETE event, the first measures on the second's SOURCE_COMPLETE and ends the
        point on the second's MEASURE_COMPLETE (2600B manual: smuX.trigger.source/measure/
        endpulse.stimulus and the smuX.trigger.*_EVENT_ID constants, named so that the
        instrument resolves its own event numbers). The follower is initiated first so that it
        hears the leader's first event. Both lists are checked before anything is sent.

        Three round trips up to MAX_LIST_CHUNK points: one chunk (both trigger models, each
        sweep's limit before its output goes on, the stimuli, both initiates, `waitcomplete()`,
        the stimuli back to immediate), one error-queue check (answered once the chunk has
        run) and one printbuffer. Longer lists run in chunks of MAX_LIST_CHUNK points into the
        same buffers (a chunk with the next lists and counts, the starts and an error check
        each; the sources held between chunks, as `sweep` does), one printbuffer at the end. A
        statement that fails stops the chunk there, so nothing after it (an output, the start)
        runs; after any failure both channels are aborted, the stimuli set back to immediate
        and the channels' remembered settings forgotten.
        """
        lead, follow = self.channel(first), self.channel(second)
        if lead is follow:
            raise ValueError(f"channels = {first!r}, {second!r}: allowed two different channels")
        requests = [lead._sweep_request(first_levels, delay),
                    follow._sweep_request(second_levels, delay)]
        count = len(requests[0][1])
        if len(requests[1][1]) != count:
            raise ValueError(f"second_levels has {len(requests[1][1])} levels: allowed "
                             f"{count}, as many as first_levels")
        a, b = lead.name, follow.name
        stimuli = [(b, "source", a, "SOURCE_COMPLETE"), (a, "measure", b, "SOURCE_COMPLETE"),
                   (a, "endpulse", b, "MEASURE_COMPLETE")]
        immediate = [f"{ch}.trigger.{layer}.stimulus = 0" for ch, layer, _, _ in stimuli]
        chunks = list(zip(_chunks(requests[0][1]), _chunks(requests[1][1]), strict=True))
        command = (f"printbuffer(1, {format_integer(count)}, {lead._buffer_fields()}, "
                   f"{follow._buffer_fields()})")
        with self.locked():
            try:
                for k, (lead_points, follow_points) in enumerate(chunks):
                    last = k == len(chunks) - 1
                    if k == 0:
                        statements = [
                            *lead._sweep_statements(requests[0][0], lead_points,
                                                    *requests[0][2:], last),
                            *follow._sweep_statements(requests[1][0], follow_points,
                                                      *requests[1][2:], last)]
                        statements += [
                            f"{ch}.trigger.{layer}.stimulus = {source}.trigger.{event}_EVENT_ID"
                            for ch, layer, source, event in stimuli]
                    else:
                        statements = [
                            *lead._chunk_statements(requests[0][0], lead_points, last),
                            *follow._chunk_statements(requests[1][0], follow_points, last)]
                    statements += [f"{b}.trigger.initiate()", f"{a}.trigger.initiate()",
                                   "waitcomplete()", *(immediate if last else ())]
                    self.configure_all(statements,
                                       extra_seconds=len(lead_points) * (requests[0][2] + 0.5))
                reply = self.ask(command)
            except BaseException:
                self.forget_settings()
                with contextlib.suppress(Exception):  # the first failure is the one to report
                    self.configure_all([f"{ch}.abort()" for ch in (a, b)] + immediate)
                raise
        first_readings, second_readings = lead._buffer_readings(command, reply, [lead, follow],
                                                                count)
        return first_readings, second_readings

    def pulse_pair(self, first, first_level: float, second, second_level: float,
                   width: float, count: int = 1, period: float | None = None
                   ) -> tuple[list[Reading], list[Reading]]:
        """Pulses of two channels together: each from 0 to its level for `width` seconds,
        `count` times one `period` apart (2 x width when None), each channel measured during
        every pulse as `Keithley2600Channel.pulse` measures one; (first readings, second
        readings). Both pulses are checked against the model before anything is sent.

        One trigger model drives both (2600B Ref. Manual, 'Triggering': an event is heard by
        every trigger model whose stimulus names it; instruments.md §3 pulsed sourcing
        (trigger model)): timer 1, started by the first channel's ARMED event, starts the
        source and the measurement of both channels' pulses, timer 2 ends both. The second
        channel is initiated first, so it is armed when the first channel's ARMED event
        starts the timers. One chunk, one error check, one printbuffer of both channels'
        buffers; everything put back on every way out (both channels aborted after a
        failure)."""
        if self.channel(first) is self.channel(second):
            raise ValueError(f"channels = {first!r}, {second!r}: allowed two different channels")
        requests = self._pulse_requests({first: first_level, second: second_level}, width,
                                        count, period)
        width, count, period = requests[0][3:]
        first_readings, second_readings = self._pulse_channels([r[:3] for r in requests],
                                                               width, count, period)
        return first_readings, second_readings

    def _pulse_channels(self, requests, width: float, count: int, period: float | None,
                        trigger_line: int | None = None) -> list[list[Reading]]:
        """Trigger-model pulses of the channels of `requests` ((channel, function, level),
        checked), the first channel's ARMED event starting the timers; readings per
        channel (see `pulse_pair`). With a `trigger_line`, each pulse's start (timer 1's
        event) also drives a falling edge out on that digital I/O line (`pulse_linked`)."""
        period = 2 * width if period is None else period
        channels = [channel for channel, _, _ in requests]
        with self.locked():
            parts = [channel._pulse_setup(function, level, width, count)
                     for channel, function, level in requests]

            def joined(part: str) -> list[str]:
                return [statement for setup in parts for statement in setup[part]]

            statements = [
                *joined("source"),
                f"trigger.timer[1].delay = {format_number(period)}",
                f"trigger.timer[1].count = {format_integer(max(count - 1, 1))}",
                "trigger.timer[1].passthrough = true",
                f"trigger.timer[1].stimulus = {channels[0].name}.trigger.ARMED_EVENT_ID",
                f"trigger.timer[2].delay = {format_number(width)}",
                "trigger.timer[2].count = 1",
                "trigger.timer[2].passthrough = false",
                "trigger.timer[2].stimulus = trigger.timer[1].EVENT_ID",
                *joined("stimuli"), *joined("output"),
                *(_trigger_out(trigger_line) if trigger_line else ()),
                *(f"{channel.name}.trigger.initiate()" for channel in reversed(channels)),
                "waitcomplete()",
                f"delay({format_number(max(period - width, 0.0))})",  # the last off time
            ]
            restore = [*joined("stimuli_back"), "trigger.timer[1].stimulus = 0",
                       "trigger.timer[2].stimulus = 0",
                       *(_trigger_line_back(trigger_line) if trigger_line else ()),
                       *joined("settings_back")]
            try:
                with channels[0]._restored_after(lambda: self.configure_all(restore)):
                    try:
                        self.configure_all(statements, extra_seconds=count * period + 1)
                    except BaseException:
                        for channel in channels[1:]:  # the first is aborted on the way out
                            with contextlib.suppress(Exception):
                                channel._abort()
                        raise
                fields = ", ".join(channel._buffer_fields() for channel in channels)
                command = f"printbuffer(1, {format_integer(count)}, {fields})"
                return channels[0]._buffer_readings(command, self.ask(command), channels,
                                                    count)
            finally:
                for channel in channels:
                    channel._forget()  # the pulse reprograms the source: ask again

    def pulse_linked(self, levels: Mapping[str, float], width: float, count: int = 1,
                     period: float | None = None, trigger_line: int = 1
                     ) -> dict[str, list[Reading]]:
        """Pulses of the channels of `levels` (channel -> level; one or two) as `pulse_pair`
        runs them, each pulse's start also driving a falling edge out on digital I/O line
        `trigger_line` (2600B Ref. Manual, Digital I/O, 'Hardware trigger modes':
        digio.trigger[N].mode = digio.TRIG_FALLING, digio.trigger[N].stimulus = an event),
        so that the channels another 2600B armed on that line (`arm_linked_pulse`) pulse with
        them. Channel -> its readings, one per pulse."""
        requests = self._pulse_requests(levels, width, count, period)
        width, count, period = requests[0][3:]
        readings = self._pulse_channels([r[:3] for r in requests], width, count, period,
                                        trigger_line)
        return {name: got for name, got in zip(levels, readings, strict=True)}

    def arm_linked_pulse(self, levels: Mapping[str, float], width: float, count: int = 1,
                         trigger_line: int = 1) -> None:
        """Arm the channels of `levels` (channel -> level; one or two) to pulse on each
        falling edge of digital I/O line `trigger_line` (another 2600B's `pulse_linked`,
        cabled to this one's DIGITAL I/O port), `count` times, each `width` long and measured
        as `Keithley2600Channel.pulse` measures one (2600B Ref. Manual, Digital I/O, 'Hardware
        trigger modes': digio.trigger[N].mode = digio.TRIG_FALLING detects falling edges,
        digio.trigger[N].EVENT_ID is the event a detected edge generates; the source and
        measure layers and timer 2, which ends each pulse, take that event). The channels
        are initiated and wait; `linked_readings` collects what they measured. One chunk and
        one error check; after a failure everything is put back."""
        if getattr(self, "_armed", None) is not None:
            raise RuntimeError(f"{self.describe()}: a linked pulse is armed already; collect "
                               "it with linked_readings first")
        requests = self._pulse_requests(levels, width, count, None)
        width, count = requests[0][3], requests[0][4]
        event = f"digio.trigger[{format_integer(trigger_line)}].EVENT_ID"
        channels = [channel for channel, _, _, _, _, _ in requests]
        with self.locked():
            parts = [channel._pulse_setup(function, level, width, count, event)
                     for channel, function, level, _, _, _ in requests]
            line = f"digio.trigger[{format_integer(trigger_line)}]"
            statements = [
                *(statement for part in parts for statement in part["source"]),
                f"{line}.clear()", f"{line}.mode = digio.TRIG_FALLING",
                f"trigger.timer[2].delay = {format_number(width)}",
                "trigger.timer[2].count = 1", "trigger.timer[2].passthrough = false",
                f"trigger.timer[2].stimulus = {event}",
                *(statement for part in parts for statement in part["stimuli"]),
                *(statement for part in parts for statement in part["output"]),
                *(f"{channel.name}.trigger.initiate()" for channel in channels),
            ]
            restore = [*(statement for part in parts for statement in part["stimuli_back"]),
                       "trigger.timer[2].stimulus = 0", *_trigger_line_back(trigger_line),
                       *(statement for part in parts for statement in part["settings_back"])]
            try:
                self.configure_all(statements)
            except BaseException:
                self.forget_settings()
                with contextlib.suppress(Exception):
                    self.configure_all([f"{channel.name}.abort()" for channel in channels]
                                       + restore)
                raise
            self._armed = (channels, list(levels), count, restore)

    def linked_readings(self) -> dict[str, list[Reading]]:
        """Wait for the armed channels (`arm_linked_pulse`) to finish, put everything back,
        and return channel (as `arm_linked_pulse` was given it) -> its readings, one per
        pulse (one printbuffer)."""
        armed = getattr(self, "_armed", None)
        if armed is None:
            raise RuntimeError(f"{self.describe()}: no linked pulse is armed")
        channels, names, count, restore = armed
        self._armed = None
        with self.locked():
            try:
                self.configure_all(["waitcomplete()", *restore])
                fields = ", ".join(channel._buffer_fields() for channel in channels)
                command = f"printbuffer(1, {format_integer(count)}, {fields})"
                readings = channels[0]._buffer_readings(command, self.ask(command), channels,
                                                        count)
            except BaseException:
                with contextlib.suppress(Exception):
                    self.configure_all([f"{channel.name}.abort()" for channel in channels]
                                       + restore)
                raise
            finally:
                self.forget_settings()
        return dict(zip(names, readings, strict=True))

    def disarm_linked_pulse(self) -> None:
        """Abort the channels `arm_linked_pulse` armed and put everything back (when the
        pulses that were to trigger them did not run); nothing when none is armed."""
        armed, self._armed = getattr(self, "_armed", None), None
        if armed is None:
            return
        channels, _, _, restore = armed
        try:
            self.configure_all([f"{channel.name}.abort()" for channel in channels] + restore)
        finally:
            self.forget_settings()

    def _pulse_requests(self, levels: Mapping[str, float], width: float, count: int,
                        period: float | None) -> list[tuple]:
        """(channel, function, level, width, count, period) of each channel of `levels`
        (one or two different channels), each pulse checked against the model before
        anything is sent."""
        if not 1 <= len(levels) <= 2:
            raise ValueError(f"levels names {len(levels)} channels: allowed one or two")
        channels = [self.channel(name) for name in levels]
        if len({id(channel) for channel in channels}) != len(channels):
            raise ValueError(f"channels = {', '.join(map(repr, levels))}: allowed different "
                             "channels")
        requests = []
        for channel, level in zip(channels, levels.values(), strict=True):
            function, level, width, count, period = channel._pulse_request(
                level, width, count, period, channel._read_source_function)
            requests.append((channel, function, level, width, count, period))
        return requests

    def reset(self) -> None:
        """Restore the power-on defaults of the instrument and both channels (outputs off),
        then the output-off mode each channel had been given."""
        self.forget_settings()
        self.configure("reset()")
        for channel in self.channels.values():
            channel._reapply_configuration()


def _trigger_out(line: int) -> list[str]:
    """Digital I/O line `line` drives a falling edge out at every pulse's start (timer 1)."""
    name = f"digio.trigger[{format_integer(line)}]"
    return [f"{name}.mode = digio.TRIG_FALLING",
            f"{name}.stimulus = trigger.timer[1].EVENT_ID"]


def _trigger_line_back(line: int) -> list[str]:
    """Digital I/O line `line` back to its power-on state (no stimulus, bypass: a plain
    I/O line)."""
    name = f"digio.trigger[{format_integer(line)}]"
    return [f"{name}.stimulus = 0", f"{name}.mode = digio.TRIG_BYPASS"]
