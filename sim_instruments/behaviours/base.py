"""What every virtual instrument behaviour shares: device, world, instrument and registry; and
the averaging filter of the simulated SMUs."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from xbarlab.benchfile import Instrument

from ..meter import Meter, meter_for
from ..world import World

BEHAVIOURS: dict[str, type[Behaviour]] = {}


def register(name: str):
    """Class decorator: make a behaviour available to grammars as ``xbar.behaviour: name``."""

    def decorate(cls):
        BEHAVIOURS[name] = cls
        return cls

    return decorate


class Behaviour:
    """Base behaviour: owns nothing but references; subclasses add the instrument's meaning."""

    CHANNELS: tuple[str, ...] = ()
    """The family's channels, when the grammar's ``smu`` group does not name them."""

    def __init__(self, device: Any, world: World, instrument: Instrument):
        self.dev = device
        self.world = world
        self.inst = instrument

    @cached_property
    def meter(self) -> Meter:
        """The instrument's current meter (its sheet's error and resolution per range)."""
        return meter_for(self.world, self.inst)

    @property
    def channels(self) -> tuple[str, ...]:
        """This model's channel ids (its grammar's ``smu`` group)."""
        return tuple(getattr(self.dev, "channel_ids", ())) or self.CHANNELS

    def reset(self) -> None:
        """``*RST``: every setting back to its grammar default."""
        self.dev.reset_settings()

    def clear_status(self) -> None:
        """``*CLS``: empty the error queue."""
        self.dev.clear_errors()

    def clear_errors(self) -> None:
        self.dev.clear_errors()

    def error_count(self) -> Any:
        return self.dev.error_count()

    def status_byte(self) -> int:
        """IEEE 488.2 status byte: bit 2 error queue not empty, bit 4 message available."""
        stb = 0
        if self.dev.error_count():
            stb |= 4
        if self.dev._output_buffers:
            stb |= 16
        return stb


Conversion = tuple[float, float, bool]
"""(V, I, limited) of one A/D conversion at a terminal."""


class AveragingFilter:
    """An SMU channel's averaging filter: each reading is the mean of `count` conversions,
    fresh ones (``repeat``: a new stack per reading) or the last `count` (``moving``: the
    first reading fills the stack, then each takes one new conversion). Off, or a count of 1,
    a reading is one conversion. The stack is emptied whenever a setting changes."""

    def __init__(self) -> None:
        self.enabled, self.count, self.kind = False, 1, "repeat"
        self.stack: deque[Conversion] = deque()

    def set(self, **changes: Any) -> None:
        for name, value in changes.items():
            setattr(self, name, value)
        self.stack = deque(maxlen=self.count)

    @property
    def active(self) -> bool:
        return self.enabled and self.count > 1

    def conversions(self, points: int) -> list[int]:
        """How many new conversions each of `points` readings takes."""
        if not self.active:
            return [1] * points
        if self.kind == "repeat":
            return [self.count] * points
        first = self.count - len(self.stack)
        return [max(first, 1)] + [1] * (points - 1)

    def expand(self, levels: Sequence[float]) -> list[float]:
        """The source level of every conversion the readings at `levels` take."""
        return [level for level, n in zip(levels, self.conversions(len(levels)), strict=True)
                for _ in range(n)]

    def reduce(self, conversions: Sequence[Conversion], points: int) -> list[Conversion]:
        """The `points` readings made of `conversions` (as `expand` laid them out): mean V and
        I of each reading's stack, limited if its last conversion was."""
        readings, k = [], 0
        for n in self.conversions(points):
            new = conversions[k:k + n]
            k += n
            if not self.active:
                readings.append(new[0])
                continue
            stack = list(new) if self.kind == "repeat" else [*self.stack, *new][-self.count:]
            if self.kind == "moving":
                self.stack.extend(new)
            readings.append((sum(c[0] for c in stack) / len(stack),
                             sum(c[1] for c in stack) / len(stack), stack[-1][2]))
        return readings
