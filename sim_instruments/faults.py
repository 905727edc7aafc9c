"""Faults injected into one virtual instrument, as the bench file's ``[[sim.faults]]`` asks.

- ``timeout`` after N commands: the instrument goes silent; every later query times out.
- ``drop`` after N commands: the connection is lost; every later write or read raises.
- ``garbled`` reply number N (1-based): that reply's characters are scrambled (seeded).
- ``error`` at command N + 1: the instrument refuses that message (nothing of it runs, no
  reply) and queues its data error (SCPI -222, TSP/board the same entry), as for a setting out
  of range or in conflict with another.
- ``late`` reply number N: the reply misses its read (which times out) and arrives before the
  next one, where it sits in the input until a device clear empties the session.
- ``stuck_relay`` (stuck open) and ``stuck_closed``: handled by the World (the relay never
  closes; the relay conducts whatever the matrix is told and reports).

A read that finds no reply takes the session's timeout in the World's virtual time (the
library, `XbarSimVisaLibrary.read`); nothing sleeps.
"""

from __future__ import annotations

import numpy as np
from pyvisa import constants, errors

from xbarlab.benchfile import Fault

REFUSE = "refuse"
"""`before_command`'s answer when the message must not run (an ``error`` fault)."""


class FaultInjector:
    """Counts commands and replies of one instrument and misbehaves when told to."""

    def __init__(self, faults: list[Fault], seed: int):
        self.faults = faults
        self.rng = np.random.default_rng(seed)
        self.commands = 0
        self.replies = 0
        self.silent = False
        self.dropped = False
        self.held: bytes | None = None  # a late reply not yet arrived

    def before_command(self, message: bytes) -> str:
        """Called for every complete message; raises once the connection has been dropped.
        Returns `REFUSE` when this message must not run, else ''."""
        if self.dropped:
            raise errors.VisaIOError(constants.StatusCode.error_connection_lost)
        self.commands += 1
        action = ""
        for fault in self.faults:
            if fault.kind == "drop" and self.commands > fault.after:
                self.dropped = True
                raise errors.VisaIOError(constants.StatusCode.error_connection_lost)
            if fault.kind == "timeout" and self.commands > fault.after:
                self.silent = True
            if fault.kind == "error" and self.commands == fault.after + 1:
                action = REFUSE
        return action

    def arrived(self) -> bytes | None:
        """A late reply that has arrived by now (taken: it is returned once), or None."""
        late, self.held = self.held, None
        return late

    def on_reply(self, reply: bytes) -> bytes | None:
        """The reply as sent (possibly scrambled), or None when the instrument stays silent or
        the reply comes late (held until `arrived`)."""
        if self.silent:
            return None
        self.replies += 1
        if any(f.kind == "late" and f.after == self.replies for f in self.faults):
            self.held = reply
            return None
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
