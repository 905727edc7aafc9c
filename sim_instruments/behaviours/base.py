"""What every virtual instrument behaviour shares: device, world, instrument and registry."""

from __future__ import annotations

from typing import Any

from xbarlab.benchfile import Instrument

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

    def __init__(self, device: Any, world: World, instrument: Instrument):
        self.dev = device
        self.world = world
        self.inst = instrument

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
