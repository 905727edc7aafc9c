"""Keithley Series 2600B System SourceMeter (2601B ... 2636B), TSP.

Commands from the Series 2600B Reference Manual ch. 7 (see commands.toml). The instrument has one
channel (`smua`) or two (`smua`, `smub`) depending on the model; each is a `Keithley2600Channel`
satisfying `SourceMeasureChannel`. Sweeps run in the channel's trigger model and come back in one
`printbuffer`; pulses use the KIPulse factory scripts (`PulseVMeasureI`, `PulseIMeasureV`).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

from xbarlab.interfaces import PulseCapability, Reading

from .base import Instrument, TspErrorQueue
from .errors import UnexpectedReplyError
from .numbers import format_integer, format_number, format_numbers, parse_number
from .properties import Setting
from .smu import (
    CURR,
    VOLT,
    InstrumentChannel,
    MultiChannelSmu,
    SmuChannel,
    SmuLimits,
    reading,
)
from .validators import InRange, check_count


@dataclass(frozen=True)
class Model2600:
    channels: tuple[str, ...]
    limits: SmuLimits
    lowest_current_range: float


_LOW_VOLTAGE = SmuLimits(40.0, 3.0, 1e-8, 1e-2)  # 260xB: 40 V, 3 A DC
_HIGH_VOLTAGE = SmuLimits(200.0, 1.5, 1e-8, 1e-2)  # 261xB: 200 V, 1.5 A DC
_LOW_CURRENT = SmuLimits(200.0, 1.5, 1e-9, 1e-2)  # 263xB: 200 V, 1.5 A DC, 100 pA range
ONE, TWO = ("smua",), ("smua", "smub")
MODELS = {
    "2601B": Model2600(ONE, _LOW_VOLTAGE, 1e-7),
    "2602B": Model2600(TWO, _LOW_VOLTAGE, 1e-7),
    "2604B": Model2600(TWO, _LOW_VOLTAGE, 1e-7),
    "2611B": Model2600(ONE, _HIGH_VOLTAGE, 1e-7),
    "2612B": Model2600(TWO, _HIGH_VOLTAGE, 1e-7),
    "2614B": Model2600(TWO, _HIGH_VOLTAGE, 1e-7),
    "2634B": Model2600(TWO, _LOW_CURRENT, 1e-10),
    "2635B": Model2600(ONE, _LOW_CURRENT, 1e-10),
    "2636B": Model2600(TWO, _LOW_CURRENT, 1e-10),
}

COMPLIANCE_STATUS = 1 << 6
"""bufferVar.statuses bit 6 (0x40): the reading was taken in compliance."""
MAX_SWEEP_POINTS = 100
"""Points per sweep: the list travels in one TSP line, kept well below the input-line limit."""
MAX_BUFFER_READINGS = 60000
"""Readings one `smuX.measure.count` fill of a dedicated reading buffer takes: the capacity of
one nvbuffer with source values and timestamps off (over 60,000 readings), which is also the
range of measure.count the driver uses (1 to 60000); bench-check on a real unit."""
REPEAT_SECONDS_PER_READING = 0.5
"""Time allowed per buffered reading before the error query times out (25 NPLC at 50 Hz),
as for a sweep point."""
PULSE_TIMING = {"min_width": 1e-4, "max_width": 1e3, "max_count": 10000, "max_off_time": 1e3}
"""KIPulse `PulseVMeasureI`/`PulseIMeasureV`: on and off times 100 µs to 1000 s, up to 10000
pulses."""


def model_pulse_capability(model: str) -> PulseCapability:
    """What every channel of `model` can pulse with the KIPulse scripts (see PULSE_TIMING)."""
    return MODELS[model].limits.pulse_capability(**PULSE_TIMING)


def _unit(function: str) -> str:
    return "v" if function == VOLT else "i"


def _limit_unit(function: str) -> str:
    return "i" if function == VOLT else "v"


def _tsp_bool(text: str) -> bool:
    return float(text) == 1.0


class Keithley2600Channel(InstrumentChannel, SmuChannel):
    """One SMU channel (`smua` or `smub`) of a 2600B."""

    max_sweep_points = MAX_SWEEP_POINTS

    nplc = Setting(unit="PLC",
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
        parse=_tsp_bool,
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
        """The KIPulse factory scripts (see PULSE_TIMING)."""
        return model_pulse_capability(self.instrument.model)

    # -- SourceMeasureChannel ------------------------------------------------------------------

    def output_on(self) -> None:
        self.configure(f"{self.name}.source.output = {self.name}.OUTPUT_ON")

    def output_off(self) -> None:
        self._forget()
        self.configure(f"{self.name}.source.output = {self.name}.OUTPUT_OFF")

    def output_enabled(self) -> bool:
        return _tsp_bool(self.ask(f"print({self.name}.source.output)"))

    def measure(self) -> Reading:
        """`measure.iv()` (current, then voltage) and the source's compliance state."""
        command = f"print({self.name}.measure.iv())"
        reply = self.ask(command)
        fields = reply.strip().split("\t")
        if len(fields) != 2:
            raise UnexpectedReplyError(self.describe(), command, reply, "I<TAB>V")
        compliance = self.in_compliance()
        return reading(parse_number(fields[1]), parse_number(fields[0]), compliance)

    def in_compliance(self) -> bool:
        """The source's compliance state (`source.compliance`), without a measurement."""
        compliance = self.ask(f"print({self.name}.source.compliance)").strip()
        if compliance not in ("true", "false"):
            raise UnexpectedReplyError(
                self.describe(), "compliance", compliance, "true or false"
            )
        return compliance == "true"

    def sweep(self, levels, delay: float) -> list[Reading]:
        """List sweep in the trigger model (I into nvbuffer1, V into nvbuffer2), one printbuffer."""
        function, points, delay, limit = self._sweep_request(levels, delay)
        ch, n = self.name, format_integer(len(points))
        with self.locked(), self._forgotten_on_failure():
            self._load_sweep(function, points, delay, limit)
            initiate = f"{ch}.trigger.initiate()"
            self.instrument.write(initiate)
            self.instrument.write("waitcomplete()")
            self.instrument.check_errors(initiate, extra_seconds=len(points) * (delay + 0.5))
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

    def _load_sweep(self, function: str, points: list[float], delay: float, limit: float):
        """Configure the channel's trigger model for a list sweep of `points` under `limit`
        and turn its output on (`_sweep_statements`, each confirmed before the next)."""
        for statement in self._sweep_statements(function, points, delay, limit):
            self.configure(statement)

    def _sweep_statements(self, function: str, points: list[float], delay: float,
                          limit: float) -> list[str]:
        """The statements that set the channel's trigger model up for a list sweep of `points`
        under `limit` (cleared buffers, source and measure actions, source held between points
        and idle at the end), the sweep's limit before its output goes on, output on last."""
        ch = self.name
        return [
            f"{ch}.nvbuffer1.clear()",
            f"{ch}.nvbuffer2.clear()",
            f"{ch}.measure.delay = {format_number(delay)}",
            f"{ch}.trigger.source.list{_unit(function)}({{{format_numbers(points)}}})",
            f"{ch}.trigger.source.limit{_limit_unit(function)} = {format_number(limit)}",
            f"{ch}.trigger.measure.iv({ch}.nvbuffer1, {ch}.nvbuffer2)",
            f"{ch}.trigger.measure.action = {ch}.ENABLE",
            f"{ch}.trigger.endpulse.action = {ch}.SOURCE_HOLD",
            f"{ch}.trigger.endsweep.action = {ch}.SOURCE_IDLE",
            f"{ch}.trigger.count = {format_integer(len(points))}",
            f"{ch}.trigger.source.action = {ch}.ENABLE",
            f"{ch}.source.output = {ch}.OUTPUT_ON",
        ]

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
                reading(fields[k + 3 * c + 1], fields[k + 3 * c],
                        int(fields[k + 3 * c + 2]) & COMPLIANCE_STATUS)
                for k in range(0, len(fields), width)
            ]
            for c in range(len(channels))
        ]

    def pulse(self, level: float, width: float, count: int = 1, period: float | None = None):
        """`count` pulses from 0 to `level` (KIPulse `PulseVMeasureI`/`PulseIMeasureV`), each
        `width` on and `period - width` off at 0 (off time = width when no period is given),
        with the channel's present limit. The script leaves the source at its bias (0); the
        previous level is set again afterwards."""
        function, level, width, count, period = self._pulse_request(
            level, width, count, period, self._read_source_function
        )
        off_time = width if period is None else period - width
        script = "PulseVMeasureI" if function == VOLT else "PulseIMeasureV"
        command = (
            f"{script}({self.name}, 0.0, {format_number(level)}, {format_number(width)}, "
            f"{format_number(off_time)}, {format_integer(count)})"
        )
        with self.locked():
            try:
                previous = self._read_level(function)
                self.instrument.write(command)
                self.instrument.check_errors(command,
                                             extra_seconds=count * (width + off_time) + 1)
                self._write_level(function, previous)
            finally:
                self._forget()  # the factory script reprograms the source: ask again


class Keithley2600(TspErrorQueue, MultiChannelSmu, Instrument):
    """A 2600B SourceMeter: `channels` maps `smua`/`smub` to their `Keithley2600Channel`."""

    catalog_name = "keithley2600"
    timeout_ms = 5000
    identity_pattern = re.compile(r"Model\s+(" + "|".join(MODELS) + r")\b")
    expected_identity = "a Keithley 2600B SourceMeter (Model " + "/".join(MODELS) + ")"

    def _connected(self) -> None:
        model = MODELS[self.model]
        self.channels = {name: Keithley2600Channel(self, name, model) for name in model.channels}
        self.write("errorqueue.clear()")

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

        Three round trips: one chunk (both trigger models, each sweep's limit before its output
        goes on, the stimuli, both initiates, `waitcomplete()`, the stimuli back to immediate),
        one error-queue check (answered once the chunk has run) and one printbuffer. A
        statement that fails stops the chunk there, so nothing after it (an output, the start)
        runs; after any failure the stimuli are set back to immediate again and the channels'
        remembered settings are forgotten.
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
        statements = [*lead._sweep_statements(*requests[0]),
                      *follow._sweep_statements(*requests[1])]
        statements += [f"{ch}.trigger.{layer}.stimulus = {source}.trigger.{event}_EVENT_ID"
                       for ch, layer, source, event in stimuli]
        statements += [f"{b}.trigger.initiate()", f"{a}.trigger.initiate()", "waitcomplete()",
                       *immediate]
        command = (f"printbuffer(1, {format_integer(count)}, {lead._buffer_fields()}, "
                   f"{follow._buffer_fields()})")
        with self.locked():
            try:
                self.configure_all(statements, extra_seconds=count * (requests[0][2] + 0.5))
                reply = self.ask(command)
            except BaseException:
                self.forget_settings()
                with contextlib.suppress(Exception):  # the first failure is the one to report
                    self.configure_all(immediate)
                raise
        first_readings, second_readings = lead._buffer_readings(command, reply, [lead, follow],
                                                                count)
        return first_readings, second_readings

    def reset(self) -> None:
        """Restore the power-on defaults of the instrument and both channels (outputs off)."""
        self.forget_settings()
        self.configure("reset()")
