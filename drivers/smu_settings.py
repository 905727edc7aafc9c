"""Measurement and output settings every SMU channel offers, checked once here over a few
per-model primitives: the output-off mode, front or rear terminals, source and voltage-measure
ranges (fixed or auto), source and measure delays, autozero, the averaging filter, readings
paced by the instrument's trigger timer, and abort.

A value outside what the model allows raises `ValueError` (naming the setting and what is
allowed) before anything is sent; a setting the model does not have raises
`NotImplementedError` with the reason in one line. Settings are named the same on every model
(``"high_z"``, ``"once"``, ``"moving"``); each driver maps them to its own words.

The output-off mode and the terminals a channel was given are remembered and sent again after
the instrument's reset (`_reapply_configuration`): ``*RST`` returns a 2400 or 2450 to the front
terminals and every model to its normal output-off state, which would silently change what an
idle crossbar line is tied to. So is the over-voltage protection of the models that have one
(`protect_voltage`): ``*RST`` turns it off.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from xbarlab.interfaces import Reading

from .errors import UnexpectedReplyError
from .numbers import format_number
from .validators import InRange, IntegerInRange, OneOf

VOLT = "VOLT"
CURR = "CURR"
OFF_MODES = ("normal", "zero", "high_z", "guard")
"""Output-off modes: normal (the model's default), zero (0 V source), high_z (output relay
open: the line floats), guard (0 A source). Each model offers some (`output_off_modes`)."""
AUTOZERO_MODES = ("off", "once", "auto")
FILTER_TYPES = ("repeat", "moving")
TERMINAL_SIDES = ("front", "rear")
MAX_FILTER_COUNT = 100
"""Largest averaging-filter count on the 2400, 2450 and 2600B (1 to 100 readings)."""


@dataclass(frozen=True)
class TimerCapability:
    """What a model's trigger timer can pace: `min_interval` to `max_interval` seconds between
    readings, up to `max_count` readings per acquisition."""

    min_interval: float
    max_interval: float
    max_count: int


@dataclass(frozen=True)
class Ranges:
    """The lowest fixed ranges of a model and its largest delays, for the validators."""

    lowest_voltage: float
    """Lowest voltage range (source and measure), volts."""
    lowest_source_current: float
    """Lowest current source range, amperes."""
    max_source_delay: float
    max_measure_delay: float = 0.0
    """0: the model has no measure delay of its own."""


def range_commands(header: str, value: float | None, auto_off_first: bool = False) -> list[str]:
    """The commands that fix the range under `header` to `value` (``<header> <value>``, after
    ``<header>:AUTO OFF`` on models that want autorange off first), or turn autorange on with
    None (``<header>:AUTO ON``)."""
    if value is None:
        return [f"{header}:AUTO ON"]
    return [*([f"{header}:AUTO OFF"] if auto_off_first else []),
            f"{header} {format_number(value)}"]


def paced(readings: list[Reading], interval: float) -> list[Reading]:
    """`readings` taken one every `interval` seconds by the instrument's timer, stamped from
    the host time of the reply (the last reading) back in steps of `interval`: the timer, not
    the transfer, sets when each was taken."""
    last = time.time()
    count = len(readings)
    return [dataclasses.replace(r, timestamp=last - (count - 1 - k) * interval)
            for k, r in enumerate(readings)]


class SmuSettings:
    """The settings half of `xbarlab.drivers.smu.SmuChannel` (see the module docstring)."""

    output_off_modes: ClassVar[Mapping[str, str]] = {}
    """xbarlab's output-off mode name -> the model's word for it."""
    autozero_modes: ClassVar[Mapping[str, str]] = {}
    filter_types: ClassVar[Mapping[str, str]] = {}
    timer: ClassVar[TimerCapability | None] = None
    ranges: ClassVar[Ranges]
    off_mode: str | None = None
    """The output-off mode this driver set (None: the instrument's own), re-applied after a
    reset."""
    terminal_side: str | None = None
    """The terminals this driver selected (None: never selected), re-applied after a reset."""
    protection_levels: ClassVar[tuple[float, ...]] = ()
    """The over-voltage protection levels the model offers, in volts, ascending; the last is
    its setting without protection (the most it sources). Empty: the model has none."""
    voltage_protection: float | None = None
    """The protection level this driver programmed (None: never), re-applied after a reset."""

    limits: Any
    describe: Callable[[], str]
    locked: Callable[[], Any]

    # -- primitives each driver implements where its model has the setting --------------------

    def _write_off_mode(self, word: str) -> None:
        raise NotImplementedError

    def _write_terminals(self, side: str) -> None:
        raise NotImplementedError(f"{self.describe()} has no front/rear terminal switch")

    def _write_source_range(self, function: str, value: float | None) -> None:
        raise NotImplementedError

    def _write_voltage_range(self, volts: float | None) -> None:
        raise NotImplementedError

    def _write_source_delay(self, seconds: float | None) -> None:
        raise NotImplementedError

    def _write_measure_delay(self, seconds: float | None) -> None:
        raise NotImplementedError(f"{self.describe()} has no measure delay of its own")

    def _write_autozero(self, word: str) -> None:
        raise NotImplementedError(f"{self.describe()} has no autozero setting")

    def _write_filter(self, count: int, word: str) -> None:
        raise NotImplementedError(f"{self.describe()} has no averaging filter")

    def _timed_readings(self, count: int, interval: float) -> list[Reading]:
        raise NotImplementedError(f"{self.describe()} has no trigger timer")

    def _abort(self) -> None:
        raise NotImplementedError

    def _write_protection(self, level: float) -> None:
        raise NotImplementedError

    def _read_protection(self) -> tuple[str, str, float]:
        """(query, reply, level in volts) of the protection read back."""
        raise NotImplementedError

    # -- shared behaviour ----------------------------------------------------------------------

    def set_output_off_mode(self, mode: str) -> None:
        """What the output does while off: ``normal``, ``zero`` (held at 0 V), ``high_z``
        (output relay open: the line floats) or ``guard`` (0 A), as far as the model offers
        them (`output_off_modes`). Sent again after every reset."""
        if mode not in self.output_off_modes:
            raise ValueError(f"output-off mode = {mode!r} is not one of the allowed values "
                             f"{', '.join(self.output_off_modes)} ({self.describe()})")
        self._write_off_mode(self.output_off_modes[mode])
        self.off_mode = mode

    def set_terminals(self, side: str) -> None:
        """Measure at the ``front`` or ``rear`` terminals (2400, 2450). Sent again after every
        reset, which returns these models to the front terminals."""
        side = OneOf(TERMINAL_SIDES)("terminals", side)
        self._write_terminals(side)
        self.terminal_side = side

    def _reapply_configuration(self) -> None:
        """After a reset: the output-off mode, terminals and over-voltage protection this
        driver had set, again."""
        if self.off_mode is not None:
            self._write_off_mode(self.output_off_modes[self.off_mode])
        if self.terminal_side is not None:
            self._write_terminals(self.terminal_side)
        if self.voltage_protection is not None:
            self._write_protection(self.voltage_protection)

    def protect_voltage(self, volts: float) -> float | None:
        """Program the instrument's own over-voltage protection to the lowest level it offers
        at or above `volts` (so it never stops what `volts` allows), read it back, and return
        the level; None on a model without one. The output then cannot exceed that level in
        either source function, whatever is asked of it (defence in depth below the bench's
        guard). Raises `ValueError` when `volts` is above every level, and
        `UnexpectedReplyError` when the instrument reads back another level."""
        if not self.protection_levels:
            return None
        volts = InRange(0.0, self.protection_levels[-1], "V")("voltage protection", volts)
        level = next(level for level in self.protection_levels if level >= volts)
        self._write_protection(level)
        query, reply, read = self._read_protection()
        if read != level:
            raise UnexpectedReplyError(self.describe(), query, reply,
                                       f"the protection level just programmed ({level:g} V)")
        self.voltage_protection = level
        return read

    def set_source_range(self, value: float | None, function: str = VOLT) -> None:
        """Fix the source range of `function` ("VOLT" or "CURR") to the one covering `value`
        (volts or amperes), or let it follow the level with None."""
        function = OneOf((VOLT, CURR))("function", function)
        if value is not None:
            if function == VOLT:
                value = InRange(self.ranges.lowest_voltage, self.limits.max_voltage, "V")(
                    "source range", value)
            else:
                value = InRange(self.ranges.lowest_source_current, self.limits.max_current,
                                "A")("source range", value)
        self._write_source_range(function, value)

    def set_voltage_range(self, volts: float | None) -> None:
        """Fix the voltage measure range to the one covering `volts`, or autorange with None."""
        if volts is not None:
            volts = InRange(self.ranges.lowest_voltage, self.limits.max_voltage, "V")(
                "voltage range", volts)
        self._write_voltage_range(volts)

    def set_source_delay(self, seconds: float | None) -> None:
        """Settling time after each source change before the measurement, or the model's
        automatic delay with None."""
        if seconds is not None:
            seconds = InRange(0.0, self.ranges.max_source_delay, "s")("source delay", seconds)
        self._write_source_delay(seconds)

    def set_measure_delay(self, seconds: float | None) -> None:
        """Extra wait before each measurement, or the model's automatic delay (set by the
        measure range) with None, where the model has a measure delay."""
        if seconds is not None and self.ranges.max_measure_delay:
            seconds = InRange(0.0, self.ranges.max_measure_delay, "s")("measure delay",
                                                                        seconds)
        self._write_measure_delay(seconds)

    def set_autozero(self, mode: str) -> None:
        """Reference and zero measurements: ``off``, ``once`` (now, then off) or ``auto`` (with
        every reading), as far as the model offers them."""
        if not self.autozero_modes:
            self._write_autozero("")
        if mode not in self.autozero_modes:
            raise ValueError(f"autozero = {mode!r} is not one of the allowed values "
                             f"{', '.join(self.autozero_modes)} ({self.describe()})")
        self._write_autozero(self.autozero_modes[mode])

    def set_filter(self, count: int, kind: str = "repeat") -> None:
        """Average `count` conversions into each reading (1: filter off), ``repeat`` (a fresh
        stack per reading) or ``moving`` (the last `count` conversions)."""
        if not self.filter_types:
            self._write_filter(0, "")
        count = IntegerInRange(1, MAX_FILTER_COUNT)("filter count", count)
        kind = OneOf(tuple(self.filter_types))("filter type", kind)
        self._write_filter(count, self.filter_types[kind])

    def measure_timed(self, count: int, interval: float) -> list[Reading]:
        """`count` readings at the present source level, one every `interval` seconds paced by
        the instrument's trigger timer (retention, drift), returned together at the end;
        timestamps from the timer (`paced`)."""
        if self.timer is None:
            self._timed_readings(0, 0.0)
        count = IntegerInRange(1, self.timer.max_count)("count", count)
        interval = InRange(self.timer.min_interval, self.timer.max_interval, "s")("interval",
                                                                                   interval)
        with self.locked():
            return paced(self._timed_readings(count, interval), interval)

    def abort(self) -> None:
        """Stop whatever the instrument's trigger model is running (a sweep, a pulse train, a
        timed acquisition) and put the channel's triggering back to one immediate reading."""
        with self.locked():
            self._abort()

