"""Keysight B2900 Precision Source/Measure Units (B2901, B2902, B2911, B2912; A and B), SCPI.

Commands from the B2900 SCPI Command Reference (see commands.toml). Setting commands carry the
channel in the header (`:SOUR2:...`), measurement and fetch queries take a channel list (`(@2)`):
a missing `(@n)` would silently mean channel 1, so every query here names its channel. A value
beyond a fixed range reads +/-9.9E+37 (SCPI infinity; NaN with the `overflow` flag). Timed
acquisitions run the acquire trigger alone on its timer; `KeysightB2900.measure_channels` takes
one spot reading of both channels at once.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from xbarlab.interfaces import PulseCapability, Reading

from .base import Instrument, ScpiErrorQueue
from .errors import UnexpectedReplyError
from .numbers import format_integer, format_number, format_numbers, parse_bool, parse_number
from .properties import Setting
from .smu import (
    CURR,
    VOLT,
    InstrumentChannel,
    MultiChannelSmu,
    ScpiOutput,
    SmuChannel,
    SmuLimits,
)
from .smu_settings import Ranges, TimerCapability, range_commands
from .validators import InRange, ZeroOrInRange, check_count


@dataclass(frozen=True)
class ModelB2900:
    channels: tuple[int, ...]
    lowest_current_range: float
    shortest_pulse: float

    @property
    def ranges(self) -> Ranges:
        """200 mV lowest voltage range; the lowest current range sources too."""
        return Ranges(0.2, self.lowest_current_range, **DELAY_RANGES)


LIMITS = SmuLimits(max_voltage=210.0, max_current=3.03, min_current_limit=1e-9,
                   min_voltage_limit=1e-3)
TIMER = TimerCapability(min_interval=1e-5, max_interval=1e5, max_count=100000)
"""The acquire trigger on its timer (:TRIGger:ACQuire:TIMer 10 µs to 100 ks, :COUNt up to
100000)."""
DELAY_RANGES = {"max_source_delay": 1e5, "max_measure_delay": 1e5}
"""Transient and acquire trigger delays (:TRIGger:TRANsient|ACQuire:DELay, 0 to 100 ks)."""
MODELS = {
    "B2901": ModelB2900((1,), 1e-7, 5e-5),
    "B2902": ModelB2900((1, 2), 1e-7, 5e-5),
    "B2911": ModelB2900((1,), 1e-8, 1e-5),
    "B2912": ModelB2900((1, 2), 1e-8, 1e-5),
}
MAX_APERTURE = 2.0
"""Longest integration time, s ([:SENSe[c]]:<function>:APERture 8 µs to 2 s)."""
LIST_CHUNK = 100
MAX_LIST_POINTS = 2500
MAX_PULSES = 100000
LONGEST_PULSE = 100.0
LONGEST_PERIOD = 1e5
"""Pulse shape: widths from the model's shortest to 100 s, one pulse per trigger-timer period
(up to 100 ks), up to 100000 triggers."""


def model_pulse_capability(model: str) -> PulseCapability:
    """What every channel of `model` (``B2902``, or with its A/B generation as a bench file
    names it, ``B2902B``) can pulse with the pulse shape (see MAX_PULSES)."""
    model = model[:5] if model[:5] in MODELS else model
    return LIMITS.pulse_capability(MODELS[model].shortest_pulse, LONGEST_PULSE, MAX_PULSES,
                                   max_period=LONGEST_PERIOD)


def _sensed(function: str) -> str:
    return CURR if function == VOLT else VOLT


class KeysightB2900Channel(InstrumentChannel, ScpiOutput, SmuChannel):
    """One channel (1 or 2) of a B2900."""

    limits = LIMITS
    max_sweep_points = MAX_LIST_POINTS
    output_header = ":OUTP{ch}"
    timer = TIMER
    output_off_modes = {"normal": "NORM", "zero": "ZERO", "high_z": "HIZ"}
    output_off_mode = Setting(
        get=":OUTP{ch}:OFF:MODE?", replies={"NORM": "normal", "ZERO": "zero", "HIZ": "high_z"},
        doc="The output-off mode as the channel reports it (normal, zero, high_z).")
    nplc = Setting(
        unit="PLC",
        get=":SENS{ch}:CURR:NPLC?",
        set=":SENS{ch}:CURR:NPLC {value}",
        validator=InRange(4.8e-4, 100.0, "PLC"),
        doc="Integration time in power-line cycles (4.8e-4 to 100, valid at 50 and 60 Hz).",
    )
    current_range = Setting(unit="A", get=":SENS{ch}:CURR:RANG?", doc="Current measure range, A.")
    current_autorange = Setting(
        get=":SENS{ch}:CURR:RANG:AUTO?",
        set=":SENS{ch}:CURR:RANG:AUTO {value}",
        values={True: "ON", False: "OFF"},
        parse=parse_bool,
        doc="Whether the current measurement range follows the reading.",
    )
    current_limit = Setting(
        unit="A", get=":SENS{ch}:CURR:PROT?", doc="Current limit, A (V source)."
    )
    voltage_limit = Setting(
        unit="V", get=":SENS{ch}:VOLT:PROT?", doc="Voltage limit, V (I source)."
    )

    def __init__(self, instrument: KeysightB2900, number: int, model: ModelB2900):
        super().__init__(instrument, {"ch": str(number)})
        self.number = number
        self.model = model
        self.ranges = model.ranges

    # -- primitives ----------------------------------------------------------------------------

    def _select_source(self, function: str) -> None:
        for command in self._function_commands(function):
            self.configure(command)
        self._function = function

    def _write_limit(self, function: str, limit: float) -> None:
        self.configure(self._limit_command(function, limit))

    def _write_level(self, function: str, level: float) -> None:
        self.configure(self._level_command(function, level))

    def _write_source(self, function: str, limit: float, level: float, known: bool) -> None:
        """Function, fixed mode and limit in one program message with the error query at its
        end; the level in a second one only once that reported no error (a SCPI unit after an
        execution error still runs, so the level never shares a message with its limit).
        When this driver already set exactly this limit (`known`), function, fixed mode and
        level go in one message and the limit is not sent again."""
        if known:
            self.instrument.ask_checked([*self._function_commands(function),
                                         self._level_command(function, level)])
            return
        self.instrument.ask_checked([*self._function_commands(function),
                                     self._limit_command(function, limit)])
        self.instrument.ask_checked([self._level_command(function, level)])

    def _function_commands(self, function: str) -> list[str]:
        n = self.number
        return [f":SOUR{n}:FUNC:MODE {function}", f":SOUR{n}:{function}:MODE FIX"]

    def _limit_command(self, function: str, limit: float) -> str:
        return f":SENS{self.number}:{_sensed(function)}:PROT {format_number(limit)}"

    def _level_command(self, function: str, level: float) -> str:
        return f":SOUR{self.number}:{function} {format_number(level)}"

    def _read_level(self, function: str) -> float:
        return parse_number(self.ask(f":SOUR{self.number}:{function}?"))

    def _read_source_function(self) -> str:
        self._function = self._checked_function(f":SOUR{self.number}:FUNC:MODE?")
        return self._function

    def _current_range_bounds(self) -> tuple[float, float]:
        return self.model.lowest_current_range, LIMITS.max_current

    def _write_current_range(self, amperes: float) -> None:
        """Autorange off first, then the fixed range."""
        self.current_autorange = False
        self.configure(f":SENS{self.number}:CURR:RANG {format_number(amperes)}")

    def pulse_capability(self) -> PulseCapability:
        """The pulse shape of the source (see MAX_PULSES)."""
        return model_pulse_capability(self.instrument.model)

    def _write_off_mode(self, word: str) -> None:
        self.configure(f":OUTP{self.number}:OFF:MODE {word}")

    def _write_source_range(self, function: str, value: float | None) -> None:
        """Autorange off first, then the fixed range."""
        for command in range_commands(f":SOUR{self.number}:{function}:RANG", value, True):
            self.configure(command)

    def _write_voltage_range(self, volts: float | None) -> None:
        """Autorange off first, then the fixed range."""
        for command in range_commands(f":SENS{self.number}:VOLT:RANG", volts, True):
            self.configure(command)

    def _write_source_delay(self, seconds: float | None) -> None:
        """The transient (source) trigger delay."""
        self.configure(f":TRIG{self.number}:TRAN:DEL {self._delay(seconds, 'source')}")

    def _write_measure_delay(self, seconds: float | None) -> None:
        """The acquire (measurement) trigger delay."""
        self.configure(f":TRIG{self.number}:ACQ:DEL {self._delay(seconds, 'measure')}")

    def _delay(self, seconds: float | None, which: str) -> str:
        if seconds is None:
            raise NotImplementedError(
                f"{self.describe()}: a B2900 trigger delay has no automatic setting; give the "
                f"{which} delay in seconds")
        return format_number(seconds)

    def _write_autozero(self, word: str) -> None:
        raise NotImplementedError(
            f"{self.describe()}: the B2900 SCPI command set has no autozero setting (its "
            "measurements are zeroed by the instrument)")

    def _write_filter(self, count: int, word: str) -> None:
        raise NotImplementedError(
            f"{self.describe()}: the B2900 has no averaging filter; a longer integration "
            "(set_nplc) averages each reading")

    def _timed_readings(self, count: int, interval: float) -> list[Reading]:
        """The acquire trigger alone on its timer (the source stays as it is): `count`
        readings `interval` apart. Two program messages ending with the error query: the
        trigger settings; then, once those reported no error, the start, `*OPC?` (answered at
        the end), the fetch and the acquire trigger back to one automatic event."""
        n = self.number
        function = self._present_function()
        limit = self._read_limit(function)
        restore = [f":TRIG{n}:ACQ:COUN 1", f":TRIG{n}:ACQ:SOUR AINT"]
        fetch = f":FETC:ARR? (@{n})"
        with self._restored_after(lambda: self.instrument.ask_checked(restore)):
            self.instrument.ask_checked([f":TRIG{n}:ACQ:SOUR TIM",
                                         f":TRIG{n}:ACQ:TIM {format_number(interval)}",
                                         f":TRIG{n}:ACQ:COUN {format_integer(count)}"])
            reply = self.instrument.ask_checked([f":INIT:ACQ (@{n})", "*OPC?", fetch],
                                                extra_seconds=count * interval + 1)[1]
        return self._buffered_readings(fetch, reply, count, function, limit,
                                       voltage_first=True, pair_name="V,I pairs")

    def _abort(self) -> None:
        self.configure(f":ABOR (@{self.number})")

    # -- SourceMeasureChannel ------------------------------------------------------------------

    def measure(self) -> Reading:
        """`:MEAS? (@n)` (voltage, current) and the limit-tripped flag of the sensed quantity."""
        function = self._present_function()
        command = f":MEAS? (@{self.number})"
        reply = self.ask(command)
        fields = reply.strip().split(",")
        if len(fields) != 2:
            raise UnexpectedReplyError(self.describe(), command, reply, "V,I")
        return self._reading(parse_number(fields[0]), parse_number(fields[1]),
                             self._tripped(function))

    def in_compliance(self) -> bool:
        """Whether the limit of the sensed quantity is tripped, without a measurement."""
        return self._tripped(self._present_function())

    def _tripped(self, function: str) -> bool:
        return parse_bool(self.ask(self._trip_query(function)))

    def _trip_query(self, function: str) -> str:
        return f":SENS{self.number}:{_sensed(function)}:PROT:TRIP?"

    def _set_trigger(self, period: float | None, count: int) -> None:
        for command in self._trigger_commands(period, count):
            self.configure(command)

    def _trigger_commands(self, period: float | None, count: int) -> list[str]:
        n = self.number
        timer = ([f":TRIG{n}:SOUR AINT"] if period is None
                 else [f":TRIG{n}:SOUR TIM", f":TRIG{n}:TIM {format_number(period)}"])
        return [*timer, f":TRIG{n}:COUN {format_integer(count)}"]

    def _run(self, count: int, period: float) -> None:
        """Start the channel's trigger system and wait until it is idle again."""
        self.configure(f":INIT (@{self.number})")
        self.ask("*OPC?", extra_seconds=count * period + 1)

    def _restore_trigger(self) -> None:
        for command in self._trigger_restore_commands():
            self.configure(command)

    def _trigger_restore_commands(self) -> list[str]:
        """One trigger, automatic (the channel's idle trigger state)."""
        return [f":TRIG{self.number}:COUN 1", f":TRIG{self.number}:SOUR AINT"]

    def _restore_commands(self, function: str) -> list[str]:
        """One trigger, automatic, and the fixed source mode again (after a list sweep)."""
        return [*self._trigger_restore_commands(), f":SOUR{self.number}:{function}:MODE FIX"]

    def sweep(self, levels, delay: float) -> list[Reading]:
        """List sweep, one point per trigger-timer period `delay` (immediate when 0); readings
        from one `:FETC:ARR?`. A point counts as in compliance within 0.1 % of the limit."""
        function, points, delay, limit = self._sweep_request(levels, delay)
        with self.locked(), self._forgotten_on_failure():
            self._load_sweep(function, points, delay)
            self._run(len(points), delay + 0.25)
            command, reply = self._fetch_and_restore(function)
        return self._buffered_readings(command, reply, len(points), function, limit,
                                       voltage_first=True, pair_name="V,I pairs")

    def _sweep_request(self, levels, delay: float) -> tuple[str, list[float], float, float]:
        """(function, levels, delay, limit) of a sweep of the present source function, checked
        against the model before anything is configured (the limit is read back)."""
        function = self._present_function()
        points = check_count("levels", levels, 1, MAX_LIST_POINTS)
        points = [self.limits.level(function, "sweep level", value) for value in points]
        delay = ZeroOrInRange(1e-5, 1e5, "s")("delay", delay)
        return function, points, delay, self._read_limit(function)

    def _load_sweep(self, function: str, points: list[float], delay: float) -> None:
        """The source list (in chunks), one trigger per point (timer at `delay`, or automatic
        when 0) and the output on, each command confirmed before the next."""
        for command in self._list_commands(function, points, delay):
            self.configure(command)
        self.output_on()

    def _list_commands(self, function: str, points: list[float], delay: float) -> list[str]:
        """List mode, the source list (in chunks of LIST_CHUNK values) and one trigger per
        point (timer at `delay`, or automatic when 0)."""
        n = self.number
        commands = [f":SOUR{n}:{function}:MODE LIST"]
        for start in range(0, len(points), LIST_CHUNK):
            chunk = format_numbers(points[start : start + LIST_CHUNK])
            append = ":APP" if start else ""
            commands.append(f":SOUR{n}:LIST:{function}{append} {chunk}")
        return commands + self._trigger_commands(delay or None, len(points))

    def _fetch_and_restore(self, function: str) -> tuple[str, str]:
        """(command, reply) of the channel's `:FETC:ARR?`; then one trigger and the fixed
        source mode again."""
        command = f":FETC:ARR? (@{self.number})"
        reply = self.ask(command)
        for restore in self._restore_commands(function):
            self.configure(restore)
        return command, reply

    def pulse(self, level: float, width: float, count: int = 1,
              period: float | None = None) -> list[Reading]:
        """Pulses from a base of 0 to `level` (pulse shape, triggered level), one every `period`
        seconds from the trigger timer, each measured while it lasts: the acquisition starts
        `width - pulse_aperture(width)` after the trigger and integrates for the aperture
        (the whole pulse, at most 2 s), so its V and I are the pulse's averages. One reading
        per pulse from `:FETC:ARR?`; afterwards DC shape, the previous level, NPLC and acquire
        delay. A point counts as in compliance within 0.1 % of the limit."""
        function, level, width, count, period = self._pulse_request(
            level, width, count, period, self._present_function
        )
        with self.locked(), self._forgotten_on_failure():
            limit, put_back = self._pulse_setup(function, level, width, count, period)
            self._run(count, (period or width) + 0.01)
            command = f":FETC:ARR? (@{self.number})"
            reply = self.ask(command)
            put_back()
        return self._buffered_readings(command, reply, count, function, limit,
                                       voltage_first=True, pair_name="V,I pairs")

    def _pulse_setup(self, function: str, level: float, width: float, count: int,
                     period: float | None) -> tuple[float, Callable[[], None]]:
        """Set the channel up for `count` pulses of `level` (checked) and turn its output on;
        (its limit, a function that puts DC shape, trigger, acquire delay, NPLC and level
        back). The acquisition starts `width - pulse_aperture(width)` after each trigger and
        integrates for the aperture (User's Guide, pulse measurement timing)."""
        n = self.number
        aperture = self.pulse_aperture(width)
        limit = self._read_limit(function)
        previous = self._read_level(function)
        nplc = self.nplc
        acquire_delay = parse_number(self.ask(f":TRIG{n}:ACQ:DEL?"))
        self._write_level(function, 0.0)
        self.configure(f":SOUR{n}:FUNC:SHAP PULS")
        self.configure(f":SOUR{n}:{function}:TRIG {format_number(level)}")
        self.configure(f":SOUR{n}:PULS:DEL 0.0")
        self.configure(f":SOUR{n}:PULS:WIDT {format_number(width)}")
        self.configure(f":SENS{n}:CURR:APER {format_number(aperture)}")
        self.configure(f":TRIG{n}:ACQ:DEL {format_number(width - aperture)}")
        self._set_trigger(period, count)
        self.output_on()

        def put_back() -> None:
            self.configure(f":SOUR{n}:FUNC:SHAP DC")
            self._restore_trigger()
            self.configure(f":TRIG{n}:ACQ:DEL {format_number(acquire_delay)}")
            self.nplc = nplc
            self._write_level(function, previous)

        return limit, put_back

    @staticmethod
    def pulse_aperture(width: float) -> float:
        """Seconds each pulse of `width` is measured over (its end): the whole pulse, at most
        the longest aperture, 2 s (:SENSe:CURRent:APERture 8 µs to 2 s)."""
        return min(width, MAX_APERTURE)


class KeysightB2900(ScpiErrorQueue, MultiChannelSmu, Instrument):
    """A B2900 SMU: `channels` maps 1 (and 2) to their `KeysightB2900Channel`."""

    catalog_name = "keysight_b2900"
    timeout_ms = 5000
    identity_pattern = re.compile(r"\b(" + "|".join(MODELS) + r")[AB]?\b")
    expected_identity = "a Keysight B2900 SMU (" + "/".join(MODELS) + ", A or B)"

    def _connected(self) -> None:
        model = MODELS[self.model]
        self.channels = {n: KeysightB2900Channel(self, n, model) for n in model.channels}
        self.write("*CLS")
        self.configure(":FORM:ELEM:SENS VOLT,CURR")
        for n in self.channels:
            self.configure(f':SENS{n}:FUNC "VOLT","CURR"')

    def _channel_key(self, number: int | str) -> int | str:
        """Channel 1 or 2 (2 only on the B2902/B2912); "1" and "2" are accepted too."""
        return int(number) if isinstance(number, str) and number.isdigit() else number

    def sweep_pair(self, first, first_levels, second, second_levels, delay: float):
        """List sweeps of both channels started by one `:INIT (@1,2)`: the channels take each
        point on the same trigger (automatic, or their trigger timers at `delay`), so every
        point applies both levels at once; (first readings, second readings). Both lists are
        checked before anything is sent.

        Two round trips, each a program message ending with the error query: the lists and
        triggers of both channels; then, only once those reported no error, both outputs on,
        the start, `*OPC?` (answered when both sweeps are done), one `:FETC:ARR?` per channel
        and each channel back to one automatic trigger in fixed mode. After any failure the
        channels are put back the same way (best effort) and their remembered settings are
        forgotten.
        """
        channels = (self.channel(first), self.channel(second))
        if channels[0] is channels[1]:
            raise ValueError(f"channels = {first!r}, {second!r}: allowed two different channels")
        requests = [channels[0]._sweep_request(first_levels, delay),
                    channels[1]._sweep_request(second_levels, delay)]
        count = len(requests[0][1])
        if len(requests[1][1]) != count:
            raise ValueError(f"second_levels has {len(requests[1][1])} levels: allowed "
                             f"{count}, as many as first_levels")
        delay = requests[0][2]
        load = [command for channel, (function, points, _, _) in zip(channels, requests,
                                                                      strict=True)
                for command in channel._list_commands(function, points, delay)]
        fetches = [f":FETC:ARR? (@{channel.number})" for channel in channels]
        restore = [command for channel, request in zip(channels, requests, strict=True)
                   for command in channel._restore_commands(request[0])]
        run = [*(f":OUTP{channel.number} ON" for channel in channels), ":INIT (@1,2)", "*OPC?",
               *fetches, *restore]
        with self.locked():
            try:
                self.ask_checked(load)
                replies = self.ask_checked(run, extra_seconds=count * (delay + 0.25) + 1)
            except BaseException:
                self.forget_settings()
                with contextlib.suppress(Exception):  # the first failure is the one to report
                    self.ask_checked(restore)
                raise
        first_readings, second_readings = (
            channel._buffered_readings(command, reply, count, function, limit,
                                       voltage_first=True, pair_name="V,I pairs")
            for channel, command, reply, (function, _, _, limit)
            in zip(channels, fetches, replies[1:], requests, strict=True)
        )
        return first_readings, second_readings

    def pulse_pair(self, first, first_level: float, second, second_level: float,
                   width: float, count: int = 1, period: float | None = None
                   ) -> tuple[list[Reading], list[Reading]]:
        """Pulses of both channels together: each from 0 to its level for `width` seconds,
        `count` times one `period` apart, each channel measured during every pulse as
        `KeysightB2900Channel.pulse` measures one; (first readings, second readings). Both
        pulses are checked against the model before anything is sent.

        Both channels are set up as for a pulse of their own, then one `:INIT (@1,2)` starts
        them (B2900 SCPI Command Reference, :INITiate <chanlist>: the channels of the list
        start together and take their points on the same trigger), `*OPC?` waits for both,
        one `:FETC:ARR?` per channel; both put back to DC afterwards, and after a failure
        their remembered settings are forgotten."""
        channels = (self.channel(first), self.channel(second))
        if channels[0] is channels[1]:
            raise ValueError(f"channels = {first!r}, {second!r}: allowed two different channels")
        requests = []
        for channel, level in zip(channels, (first_level, second_level), strict=True):
            function, level, width, count, period = channel._pulse_request(
                level, width, count, period, channel._present_function)
            requests.append((function, level))
        fetched = []
        with self.locked():
            try:
                setups = [channel._pulse_setup(function, level, width, count, period)
                          for channel, (function, level) in zip(channels, requests,
                                                                 strict=True)]
                self.configure(":INIT (@1,2)")
                self.ask("*OPC?", extra_seconds=count * ((period or width) + 0.01) + 1)
                for channel in channels:
                    command = f":FETC:ARR? (@{channel.number})"
                    fetched.append((command, self.ask(command)))
                for _, put_back in setups:
                    put_back()
            except BaseException:
                self.forget_settings()
                raise
        first_readings, second_readings = (
            channel._buffered_readings(command, reply, count, function, limit,
                                       voltage_first=True, pair_name="V,I pairs")
            for channel, (command, reply), (function, _), (limit, _)
            in zip(channels, fetched, requests, setups, strict=True))
        return first_readings, second_readings

    def reset(self) -> None:
        """Restore the defaults (outputs off), this driver's reading format and the output-off
        mode each channel had been given."""
        self.forget_settings()
        self.configure("*RST")
        self.configure(":FORM:ELEM:SENS VOLT,CURR")
        for channel in self.channels.values():
            channel._function = None
            self.configure(f':SENS{channel.number}:FUNC "VOLT","CURR"')
            channel._reapply_configuration()

    def measure_channels(self) -> tuple[Reading, Reading]:
        """One spot reading of both channels taken together (`:MEAS? (@1,2)`: both integrate
        on the same trigger), with each channel's limit-tripped flag, in one program message
        (the error query at its end). A single-channel model has nothing to pair."""
        if len(self.channels) < 2:
            raise NotImplementedError(f"{self.describe()}: the {self.model} has one channel")
        channels = [self.channels[1], self.channels[2]]
        functions = [channel._present_function() for channel in channels]
        command = ":MEAS? (@1,2)"
        with self.locked():
            replies = self.ask_checked([command, *(channel._trip_query(function) for
                                                   channel, function in zip(channels, functions,
                                                                            strict=True))])
        fields = replies[0].strip().split(",")
        if len(fields) != 4:
            raise UnexpectedReplyError(self.describe(), command, replies[0],
                                       "V1,I1,V2,I2")
        values = [parse_number(field) for field in fields]
        first, second = (
            channel._reading(values[2 * k], values[2 * k + 1], parse_bool(replies[1 + k]))
            for k, channel in enumerate(channels))
        return first, second
