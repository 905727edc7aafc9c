"""Keithley 707B (six slots) and 708B (one slot) switching matrices, TSP.

Commands from the 707B/708B Reference Manual ch. 7 (see commands.toml). Channels are named
`<slot><row><column>`, e.g. `1A03`: slot 1 to 6 (1 on a 708B), row A to H (the instrument side),
column 01 to 12 (the device side). `crosspoint` numbers the device-side outputs across the installed
cards, 12 per card (output 13 is `2A01`). `channel.getclose` replies `nil` when nothing is closed.
Forbidden channels are set in the instrument as well (`channel.setforbidden`), and break-before-make
is the connect rule from the moment the driver connects.
"""

from __future__ import annotations

import re

from .base import Instrument, TspErrorQueue
from .switch import SwitchMatrixBase
from .validators import IntegerInRange

ROWS = "ABCDEFGH"
SLOTS = {"707B": 6, "708B": 1}


class Keithley707B(TspErrorQueue, SwitchMatrixBase, Instrument):
    """A 707B or 708B switching matrix; `cards` is how many slots hold a 12-column matrix card
    (all slots when not given)."""

    catalog_name = "keithley707b"
    timeout_ms = 5000
    identity_pattern = re.compile(r"Model\s+(70[78]B)\b")
    expected_identity = "a Keithley 707B or 708B switching matrix"
    channel_format = "<slot 1-6><row A-H><column 01-12>, e.g. 1A03"

    def __init__(self, resource, cards: int | None = None):
        self._cards_option = cards
        super().__init__(resource)

    def _connected(self) -> None:
        most = SLOTS[self.model]
        self.slots = most if self._cards_option is None else IntegerInRange(1, most)(
            "cards", self._cards_option
        )
        self.channel_pattern = re.compile(rf"[1-{self.slots}][A-H](?:0[1-9]|1[0-2])")
        self.write("errorqueue.clear()")
        self.configure("channel.connectrule = channel.BREAK_BEFORE_MAKE")

    def crosspoint(self, input_port: int, output_port: int) -> str:
        """Channel joining row `input_port` (1-8 = A-H) to output `output_port`, numbered across
        the installed cards (1 to 12 x cards)."""
        row = IntegerInRange(1, 8)("input_port", input_port)
        output = IntegerInRange(1, 12 * self.slots)("output_port", output_port)
        slot, column = divmod(output - 1, 12)
        return f"{slot + 1}{ROWS[row - 1]}{column + 1:02d}"

    def _ports(self, channel: str) -> tuple[tuple[str, str], tuple[str, str]]:
        return (channel[0], channel[1]), (channel[0], channel[2:])

    def _close(self, channels: list[str]) -> None:
        self.configure(f'channel.close("{",".join(channels)}")')

    def _open(self, channels: list[str]) -> None:
        self.configure(f'channel.open("{",".join(channels)}")')

    def _reroute(self, opening: list[str], closing: list[str]) -> None:
        """Both in one TSP chunk (open first) and one error check: a failing open ends the
        chunk before anything closes."""
        commands = []
        if opening:
            commands.append(f'channel.open("{",".join(opening)}")')
        if closing:
            commands.append(f'channel.close("{",".join(closing)}")')
        self.configure_all(commands)

    def _exclusive_close(self, channels: list[str]) -> None:
        self.configure(f'channel.exclusiveclose("{",".join(channels)}")')

    def open_all(self) -> None:
        self.configure('channel.open("allslots")')

    def closed(self) -> frozenset[str]:
        """Closed channels from `channel.getclose("allslots")` (`nil` = none)."""
        reply = self.ask('print(channel.getclose("allslots"))').strip()
        if reply == "nil":
            return frozenset()
        return frozenset(reply.split(";"))

    def set_forbidden(self, channels) -> None:
        """Forbid `channels` in software and in the instrument (after clearing the old set)."""
        super().set_forbidden(channels)
        self.configure('channel.clearforbidden("allslots")')
        if self._forbidden:
            self.configure(f'channel.setforbidden("{",".join(sorted(self._forbidden))}")')

    def set_break_before_make(self, enabled: bool) -> None:
        """BREAK_BEFORE_MAKE, or OFF (no guaranteed order, fastest)."""
        rule = "BREAK_BEFORE_MAKE" if enabled else "OFF"
        self.configure(f"channel.connectrule = channel.{rule}")

    def reset(self) -> None:
        """Instrument reset (all channels open), then break-before-make again."""
        self.configure("reset()")
        self.configure("channel.connectrule = channel.BREAK_BEFORE_MAKE")
