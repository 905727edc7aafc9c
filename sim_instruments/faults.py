"""Faults injected into one virtual instrument, as the bench file's ``[[sim.faults]]`` asks.

- ``timeout`` after N commands: the instrument goes silent; every later query times out.
- ``drop`` after N commands: the connection is lost; every later write or read raises.
- ``garbled`` reply number N (1-based): that reply's characters are scrambled (seeded).
- ``stuck_relay``: handled by the World (the relay never closes).
"""

from __future__ import annotations

import numpy as np
from pyvisa import constants, errors

from xbarlab.benchfile import Fault


class FaultInjector:
    """Counts commands and replies of one instrument and misbehaves when told to."""

    def __init__(self, faults: list[Fault], seed: int):
        self.faults = faults
        self.rng = np.random.default_rng(seed)
        self.commands = 0
        self.replies = 0
        self.silent = False
        self.dropped = False

    def before_command(self, message: bytes) -> None:
        """Called for every complete message; raises once the connection has been dropped."""
        if self.dropped:
            raise errors.VisaIOError(constants.StatusCode.error_connection_lost)
        self.commands += 1
        for fault in self.faults:
            if fault.kind == "drop" and self.commands > fault.after:
                self.dropped = True
                raise errors.VisaIOError(constants.StatusCode.error_connection_lost)
            if fault.kind == "timeout" and self.commands > fault.after:
                self.silent = True

    def on_reply(self, reply: bytes) -> bytes | None:
        """The reply as sent (possibly scrambled), or None when the instrument stays silent."""
        if self.silent:
            return None
        self.replies += 1
        if any(f.kind == "garbled" and f.after == self.replies for f in self.faults):
            data = np.frombuffer(reply, dtype=np.uint8).copy()
            noise = self.rng.integers(33, 127, size=data.size, dtype=np.uint8)
            flip = self.rng.random(data.size) < 0.5
            flip[0] = True
            data[flip] = noise[flip]
            return data.tobytes()
        return reply

    def check_read(self) -> None:
        if self.dropped:
            raise errors.VisaIOError(constants.StatusCode.error_connection_lost)
