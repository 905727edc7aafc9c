"""The source-measure behaviour every SMU driver shares, written once over a few model-specific
primitives: validate level and limit before writing anything, set the limit before the level, and
shut down by ramping the source to 0 in bounded steps before turning the output off.

A driver (or one channel of a multi-channel SMU) subclasses `SmuChannel` and implements the
`_select_source`, `_write_limit`, `_write_level`, `_read_level`, `_read_source_function` and
`_read_limit` primitives with its own command strings. Functions are named "VOLT" and "CURR".
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from xbarlab.interfaces import Reading

from .validators import InRange, Magnitude

VOLT = "VOLT"
CURR = "CURR"


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

    def limit(self, function: str, field: str, value: object) -> float:
        """A compliance for `function`: a current limit when sourcing voltage, and vice versa."""
        if function == VOLT:
            return InRange(self.min_current_limit, self.max_current, "A")(field, value)
        return InRange(self.min_voltage_limit, self.max_voltage, "V")(field, value)


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


def reading(voltage: float, current: float, compliance: bool) -> Reading:
    """A `Reading` stamped with the host time now."""
    return Reading(float(voltage), float(current), bool(compliance), time.time())


class SmuChannel:
    """Template for one source-measure channel; see the module docstring."""

    limits: SmuLimits
    ramp_step_voltage: ClassVar[float] = 0.5
    """Largest voltage step at shutdown, in volts."""
    ramp_step_current: ClassVar[float] = 1e-3
    """Largest current step at shutdown, in amperes."""

    ask: Callable[..., str]
    configure: Callable[[str], None]
    locked: Callable[[], Any]

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

    def _read_limit(self, function: str) -> float:
        raise NotImplementedError

    def output_off(self) -> None:
        raise NotImplementedError

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
            self._select_source(function)
            self._write_limit(function, limit)
            self._write_level(function, level)

    def source_function(self) -> str:
        """"VOLT" or "CURR", as the instrument reports it."""
        return self._read_source_function()

    def shutdown(self) -> None:
        """Ramp the source to 0 in bounded steps, then turn the output off (always)."""
        with self.locked():
            try:
                function = self._read_source_function()
                step = self.ramp_step_voltage if function == VOLT else self.ramp_step_current
                for value in ramp_levels(self._read_level(function), step):
                    self._write_level(function, value)
            finally:
                self.output_off()


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
