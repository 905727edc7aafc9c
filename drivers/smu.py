"""The source-measure behaviour every SMU driver shares, written once over a few model-specific
primitives: validate level and limit before writing anything, set the limit before the level, and
shut down by ramping the source to 0 in bounded steps before turning the output off.

A driver (or one channel of a multi-channel SMU) subclasses `SmuChannel` and implements the
`_select_source`, `_write_limit`, `_write_level`, `_read_level`, `_read_source_function`,
`_current_range_bounds` and `_write_current_range` primitives with its own command strings, and
`pulse_capability` when the model can pulse. Functions are named "VOLT" and "CURR".
Channels of a multi-channel instrument also subclass `InstrumentChannel` (I/O through the
instrument), and the instrument `MultiChannelSmu` (channel look-up and shutdown of all channels).
SCPI SMUs share `ScpiOutput` (`:OUTP[n] ON|OFF`, `:OUTP[n]?`).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Hashable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

from xbarlab.interfaces import PulseCapability, Reading

from .errors import UnexpectedReplyError
from .numbers import parse_bool, parse_number
from .smu_settings import CURR, VOLT, SmuSettings
from .validators import InRange, IntegerInRange, Magnitude

OVERFLOW = 9.9e37
"""The overflow reading (a value beyond a fixed measure range) of the 2450, 2600B and B2900:
SCPI's +/-INFinity, +/-9.9E+37 (B2961A/B2962A SCPI Command Reference Ed. 6 p. 1-12, Data
Output Format; the 2400 differs, see `keithley2400.OVERFLOW`). A reading at or above it in
magnitude is NaN with the `overflow` flag."""
MAX_REPEATED_READINGS = 10_000_000
"""Most readings one `measure_repeated` call takes: a bound on one call (55 hours at 1 NPLC
and 50 Hz), not an instrument limit; larger counts are split by the model's own limits."""


@dataclass(frozen=True)
class SmuLimits:
    """What one SMU model can source and limit (from its data sheet), used by the validators."""

    max_voltage: float
    max_current: float
    min_current_limit: float
    min_voltage_limit: float

    def level(self, function: str, field: str, value: object) -> float:
        if function == VOLT:
            return Magnitude(self.max_voltage, "V")(field, value)
        return Magnitude(self.max_current, "A")(field, value)

    def pulse_capability(
        self, min_width: float, max_width: float, max_count: int, **period: float
    ) -> PulseCapability:
        """A pulse mode with these timings at this model's source levels (`period`:
        `max_off_time` and/or `max_period`)."""
        return PulseCapability(min_width, max_width, max_count, self.max_voltage,
                               self.max_current, **period)

    def limit(self, function: str, field: str, value: object) -> float:
        """A compliance for `function`: a current limit when sourcing voltage, and vice versa."""
        if function == VOLT:
            return InRange(self.min_current_limit, self.max_current, "A")(field, value)
        return InRange(self.min_voltage_limit, self.max_voltage, "V")(field, value)


def checked_pulse(
    capability: PulseCapability,
    level: float,
    width: float,
    count: int = 1,
    period: float | None = None,
    function: str = VOLT,
) -> tuple[float, float, int, float | None]:
    """(level, width, count, period) of a pulse of `function`, each checked against
    `capability`: `ValueError` naming the field and the allowed range otherwise."""
    most = capability.max_voltage if function == VOLT else capability.max_current
    level = Magnitude(most, "V" if function == VOLT else "A")("pulse level", level)
    width = InRange(capability.min_width, capability.max_width, "s")("pulse width", width)
    count = IntegerInRange(1, capability.max_count)("pulse count", count)
    if period is not None:
        period = InRange(width, capability.longest_period(width), "s")("pulse period", period)
    return level, width, count, period


def checked_repeat_count(count: object) -> int:
    """A `measure_repeated` count: an integer from 1 to MAX_REPEATED_READINGS (`ValueError`
    naming `count` and that range otherwise; `TypeError` for a non-integer)."""
    return IntegerInRange(1, MAX_REPEATED_READINGS)("count", count)


def ramp_levels(start: float, max_step: float) -> list[float]:
    """Levels from `start` to exactly 0 in equal steps of at most `max_step` (start excluded).

    Intermediate levels are rounded to 12 significant digits so that they read as intended
    (0.8, not 0.7999999999999999); the last level is exactly 0.
    """
    if start == 0:
        return []
    steps = max(1, math.ceil(abs(start) / max_step))
    return [float(f"{start * (steps - k) / steps:.12g}") for k in range(1, steps + 1)]


def at_limit(value: float, limit: float) -> bool:
    """Whether a reading sits at the compliance limit (within 0.1 %), for instruments whose
    buffered readings carry no compliance status of their own."""
    return abs(value) >= limit * (1 - 1e-3)


def reading(voltage: float, current: float, compliance: bool,
            overflow_value: float = OVERFLOW) -> Reading:
    """A `Reading` stamped with the host time now. A value whose magnitude is at or above
    `overflow_value` (the instrument's overflow reading: beyond the fixed measure range) is
    NaN, and the reading's `overflow` flag says so."""
    voltage, current = float(voltage), float(current)
    voltage_over = abs(voltage) >= overflow_value
    current_over = abs(current) >= overflow_value
    return Reading(math.nan if voltage_over else voltage, math.nan if current_over else current,
                   bool(compliance), time.time(), voltage_over or current_over)


class SmuChannel(SmuSettings):
    """Template for one source-measure channel; see the module docstring."""

    overflow_value: ClassVar[float] = OVERFLOW
    """The model's overflow reading (`reading`)."""

    limits: SmuLimits
    max_sweep_points: ClassVar[int]
    """Most levels one `sweep` takes (the model's list or buffer size)."""
    ramp_step_voltage: ClassVar[float] = 0.5
    """Largest voltage step at shutdown, in volts."""
    ramp_step_current: ClassVar[float] = 1e-3
    """Largest current step at shutdown, in amperes."""
    _function: str | None = None
    """Source function last selected or read, for drivers that keep it (None: ask)."""
    _known_limit: tuple[str, float] | None = None
    """(function, compliance) this driver last set without an error or read back (None: ask);
    forgotten on any error, reset or output-off, and whenever an operation that sets it is
    cut short (`_forget`)."""

    ask: Callable[..., str]
    configure: Callable[[str], None]
    locked: Callable[[], Any]
    describe: Callable[[], str]
    current_limit: Any
    voltage_limit: Any
    current_autorange: Any
    nplc: Any

    # -- primitives each driver implements -----------------------------------------------------

    def _select_source(self, function: str) -> None:
        raise NotImplementedError

    def _write_limit(self, function: str, limit: float) -> None:
        raise NotImplementedError

    def _write_level(self, function: str, level: float) -> None:
        raise NotImplementedError

    def _read_level(self, function: str) -> float:
        raise NotImplementedError

    def _read_source_function(self) -> str:
        raise NotImplementedError

    def _current_range_bounds(self) -> tuple[float, float]:
        """Lowest and highest fixed current range, in amperes."""
        raise NotImplementedError

    def _write_current_range(self, amperes: float) -> None:
        raise NotImplementedError

    def output_off(self) -> None:
        raise NotImplementedError

    def measure(self) -> Reading:
        raise NotImplementedError

    def pulse_capability(self) -> PulseCapability | None:
        """What this channel can pulse (None: no pulse mode; override where there is one)."""
        return None

    # -- shared behaviour ----------------------------------------------------------------------

    def source_voltage(self, level: float, current_limit: float) -> None:
        """Source `level` volts with the current limited to `current_limit` amperes."""
        self._source(VOLT, level, current_limit, "current_limit")

    def source_current(self, level: float, voltage_limit: float) -> None:
        """Source `level` amperes with the voltage limited to `voltage_limit` volts."""
        self._source(CURR, level, voltage_limit, "voltage_limit")

    def _source(self, function: str, level: float, limit: float, limit_field: str) -> None:
        level = self.limits.level(function, "level", level)
        limit = self.limits.limit(function, limit_field, limit)
        with self.locked():
            known = self._function == function and self._known_limit == (function, limit)
            self._forget()  # unknown until every write below is confirmed
            try:
                self._write_source(function, limit, level, known)
            except BaseException:
                self._forget()
                raise
            self._function = function
            self._known_limit = (function, limit)

    def _write_source(self, function: str, limit: float, level: float, known: bool) -> None:
        """Select `function`, then its limit, then its level, each confirmed before the next
        is sent; models that send them as one message override this (the limit must still
        be in place before the level is). `known`: this driver already set exactly this
        function and limit, with no error, reset or output-off since (a model may then skip
        the limit)."""
        self._select_source(function)
        self._write_limit(function, limit)
        self._write_level(function, level)

    def _forget(self) -> None:
        """Drop the source function and limit this driver remembers (ask again next time)."""
        self._function = None
        self._known_limit = None

    @contextmanager
    def _forgotten_on_failure(self) -> Iterator[None]:
        """Around an operation that reprograms the channel (a sweep, a pulse): if it fails or
        is interrupted, forget what this driver remembers about the channel."""
        try:
            yield
        except BaseException:
            self._forget()
            raise

    @contextmanager
    def _restored_after(self, restore: Callable[[], None]) -> Iterator[None]:
        """Around an operation that reprograms the channel's triggering (a list sweep, a pulse
        train, a timed acquisition): `restore` (the channel's idle settings: one trigger,
        fixed source mode, DC shape) runs on every way out. After a failure or an interruption
        the running operation is aborted first and what this driver remembers is forgotten;
        a failure of the restore then is not reported over the first one."""
        try:
            yield
        except BaseException:
            self._forget()
            with contextlib.suppress(Exception):
                self._abort()
            with contextlib.suppress(Exception):
                restore()
            raise
        restore()

    def _reading(self, voltage: float, current: float, compliance: bool) -> Reading:
        """`reading` with this model's overflow value."""
        return reading(voltage, current, compliance, self.overflow_value)

    def _snapshot_state(self) -> dict[str, Any]:
        """Output state, source function and level, for the run's instrument snapshots (the
        output-off mode and terminals are settings the snapshot reads as they are)."""
        function = self._read_source_function()
        return {
            "output": {"value": self.output_enabled(), "unit": ""},
            "source_function": {"value": function, "unit": ""},
            "source_level": {"value": self._read_level(function),
                             "unit": "V" if function == VOLT else "A"},
        }

    def source_function(self) -> str:
        """"VOLT" or "CURR", as the instrument reports it."""
        return self._read_source_function()

    def _present_function(self) -> str:
        """The source function: the one this driver last selected or read, else asked for."""
        return self._function or self._read_source_function()

    def _checked_function(self, command: str) -> str:
        """Ask `command`; its reply must be "VOLT" or "CURR" (SCPI source-function queries)."""
        reply = self.ask(command).strip()
        if reply not in (VOLT, CURR):
            raise UnexpectedReplyError(self.describe(), command, reply, "VOLT or CURR")
        return reply

    def measure_repeated(self, count: int) -> list[Reading]:
        """`count` readings at the present source level: one `measure` for a single reading,
        else `_readings_at_level` (count checked first, nothing sent for a bad one)."""
        count = checked_repeat_count(count)
        if count == 1:
            return [self.measure()]
        with self.locked():
            return self._readings_at_level(count)

    def _readings_at_level(self, count: int) -> list[Reading]:
        """`count` (> 1) readings at the present level: list sweeps of that level (read back
        once), `max_sweep_points` readings per round trip. Models with a native repeated
        measurement override this."""
        level = self._read_level(self._present_function())
        chunk = max(1, int(self.max_sweep_points))
        readings: list[Reading] = []
        for start in range(0, count, chunk):
            readings += self.sweep([level] * min(chunk, count - start), 0.0)
        return readings

    def in_compliance(self) -> bool:
        """Whether the source is at its limit now (output on); models with a query for it
        answer without a measurement, the others take one."""
        return self.measure().compliance

    def read_current_limit(self) -> float:
        """The current limit (compliance) in amperes, read back from the instrument."""
        return self.current_limit

    def _read_limit(self, function: str) -> float:
        """The compliance of `function`: the current limit when sourcing voltage, and vice
        versa; the one this driver last set or read for `function` while it still knows it
        (see `_known_limit`), else read from the instrument. (The safety read-back after
        setting a limit, `read_current_limit`, always asks the instrument.)"""
        if self._known_limit is not None and self._known_limit[0] == function:
            return self._known_limit[1]
        limit = self.current_limit if function == VOLT else self.voltage_limit
        self._known_limit = (function, limit)
        return limit

    def set_current_range(self, amperes: float | None) -> None:
        """Fix the current measurement range to the one covering `amperes` (within the model's
        ranges), or autorange with None."""
        if amperes is None:
            self.current_autorange = True
            return
        low, high = self._current_range_bounds()
        self._write_current_range(InRange(low, high, "A")("current range", amperes))

    def set_nplc(self, nplc: float) -> None:
        """Integration time of every measurement, in power-line cycles."""
        self.nplc = nplc

    def check_pulse(
        self,
        level: float,
        width: float,
        count: int = 1,
        period: float | None = None,
        function: str = VOLT,
    ) -> tuple[float, float, int, float | None]:
        """(level, width, count, period) checked against `pulse_capability`, sending nothing;
        `NotImplementedError` when the model has no pulse mode."""
        return checked_pulse(self._required_pulse_capability(), level, width, count, period,
                             function)

    def _required_pulse_capability(self) -> PulseCapability:
        capability = self.pulse_capability()
        if capability is None:
            raise NotImplementedError(self._no_pulse_mode())
        return capability

    def _no_pulse_mode(self) -> str:
        return f"{self.describe()} has no pulse mode"

    def _pulse_request(
        self, level: float, width: float, count: int, period: float | None,
        read_function: Callable[[], str],
    ) -> tuple[str, float, float, int, float | None]:
        """Refuse at once where there is no pulse mode, else get the source function with
        `read_function` and check the pulse for it: (function, level, width, count, period)."""
        self._required_pulse_capability()
        function = read_function()
        return (function, *self.check_pulse(level, width, count, period, function))

    def _buffered_readings(
        self, command: str, reply: str, count: int, function: str, limit: float,
        voltage_first: bool, pair_name: str,
    ) -> list[Reading]:
        """Readings from a buffer `reply` of `count` value pairs (voltage then current, or
        current then voltage). The buffer carries no compliance status, so a point counts as in
        compliance when its sensed value is within 0.1 % of `limit`."""
        values = [parse_number(field) for field in reply.strip().split(",")]
        if len(values) != 2 * count:
            raise UnexpectedReplyError(self.describe(), command, reply, f"{count} {pair_name}")
        readings = []
        for first, second in zip(values[0::2], values[1::2], strict=True):
            voltage, current = (first, second) if voltage_first else (second, first)
            sensed = current if function == VOLT else voltage
            readings.append(self._reading(voltage, current, at_limit(sensed, limit)))
        return readings

    def shutdown(self) -> None:
        """Ramp the source to 0 (`_ramp_to_zero`), then turn the output off (always)."""
        with self.locked():
            try:
                function = self._read_source_function()
                self._ramp_to_zero(function, self._read_level(function))
            finally:
                self.output_off()

    def _ramp_to_zero(self, function: str, level: float) -> None:
        """From `level` to 0 in steps of at most `ramp_step_voltage` (`ramp_step_current`),
        one level command each; models that ramp in the instrument override this."""
        step = self.ramp_step_voltage if function == VOLT else self.ramp_step_current
        for value in ramp_levels(level, step):
            self._write_level(function, value)


class ScpiOutput:
    """Output switching of SCPI SMUs: `<header> ON|OFF` and `<header>?` replying 1 or 0, where
    `output_header` is `:OUTP` (with `{ch}` for the channel number of a multi-channel model)."""

    output_header: ClassVar[str] = ":OUTP"
    command_fields: dict[str, str]
    ask: Callable[..., str]
    configure: Callable[[str], None]

    def _output(self) -> str:
        return self.output_header.format(**self.command_fields)

    def output_on(self) -> None:
        self.configure(f"{self._output()} ON")

    def output_off(self) -> None:
        forget = getattr(self, "_forget", None)
        if forget is not None:
            forget()
        self.configure(f"{self._output()} OFF")

    def output_enabled(self) -> bool:
        """The output state as the instrument reports it (`parse_bool`: 1, 1.0, ON ...)."""
        return parse_bool(self.ask(f"{self._output()}?"))


class InstrumentChannel:
    """One channel of a multi-channel instrument: all I/O goes through the instrument's session
    and lock; `command_fields` fills the channel into declared settings."""

    def __init__(self, instrument: Any, command_fields: Mapping[str, str]):
        self.instrument = instrument
        self.command_fields = dict(command_fields)

    def ask(self, command: str, extra_seconds: float = 0.0) -> str:
        return self.instrument.ask(command, extra_seconds)

    def configure(self, command: str) -> None:
        self.instrument.configure(command)

    def locked(self) -> AbstractContextManager[None]:
        return self.instrument.locked()

    def describe(self) -> str:
        return self.instrument.describe()


class MultiChannelSmu:
    """An instrument with several `SmuChannel`s in `channels`, keyed by the instrument's own
    channel names; `_channel_key` maps the names users may give to those keys."""

    channels: dict[Hashable, SmuChannel]

    def _channel_key(self, name: Any) -> Hashable:
        return name

    def channel(self, name: Any) -> SmuChannel:
        """The channel called `name`; `ValueError` listing the allowed names otherwise."""
        key = self._channel_key(name)
        if key not in self.channels:
            allowed = ", ".join(str(key) for key in self.channels)
            raise ValueError(f"channel = {name!r} is not one of the allowed values {allowed}")
        return self.channels[key]

    def shutdown(self) -> None:
        """Ramp every channel to 0 and turn it off; every channel is tried even if one fails."""
        shutdown_channels(self.channels.values())


def shutdown_channels(channels) -> None:
    """Shut every channel down; every channel is tried even if one fails, then the first
    failure is raised."""
    failures = []
    for channel in channels:
        try:
            channel.shutdown()
        except Exception as error:  # noqa: BLE001 - re-raised below after the other channels
            failures.append(error)
    if failures:
        raise failures[0]
