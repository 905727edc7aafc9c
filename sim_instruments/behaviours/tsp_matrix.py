"""Keithley 707B/708B switching matrix (TSP): channel lists, closes, opens, getclose.

A channel ``<slot><row><col>`` (``3C12``) joins matrix input ``row`` (A..H) to output
``(slot - 1) * 12 + col`` (the bench-file numbering). Lists are comma-separated items: a
channel, a range ``1A01:1B05`` (every slot, row and column between the two corners), ``slotN``
or ``allslots``. Each switching command costs the relay settling time of virtual time.
"""

from __future__ import annotations

import re

from ..device import OutOfRange
from .base import Behaviour, register

COLUMNS_PER_CARD = 12
ROWS = "ABCDEFGH"
# Relay settle time per switching command. The 707B adds the card's settle time to every
# close/open (manual p.7-17); 7174A-class cards settle in about 3 ms [U: card-dependent].
SETTLE_TIME = 3e-3

_CHANNEL = re.compile(r"^([1-6])([A-H])(\d\d)$")
_SLOT = re.compile(r"slot[1-6]")
# Channel lists whose crosspoints a matrix remembers (a bench sends the same lists again).
LISTS_KEPT = 4096


@register("tsp_matrix")
class TspMatrix(Behaviour):
    """The 707B/708B model on the bench's World; outputs follow the bench-file numbering."""

    def reset(self) -> None:
        super().reset()
        self.forbidden: set[tuple[str, int]] = set()
        self._lists: dict[str, tuple[tuple[str, int], ...]] = {}
        self.world.open_all(self.inst.name)

    # ------------------------------------------------------------------ channel lists
    def _channel(self, text: str) -> tuple[int, str, int]:
        m = _CHANNEL.match(text)
        if not m:
            raise OutOfRange(f"channel {text!r} is not <slot><row A-H><column 01-12>")
        slot, row, col = int(m[1]), m[2], int(m[3])
        if slot > self.inst.cards or not 1 <= col <= COLUMNS_PER_CARD:
            raise OutOfRange(f"channel {text!r} is not on the {self.inst.cards} installed cards")
        return slot, row, col

    def _slot(self, slot: int) -> list[tuple[int, str, int]]:
        return [(slot, r, c) for r in ROWS for c in range(1, COLUMNS_PER_CARD + 1)]

    def parse_list(self, text: str) -> tuple[tuple[str, int], ...]:
        """Channel-list text -> (input label, output number) crosspoints (remembered)."""
        points = self._lists.get(text)
        if points is None:
            points = self._parse_list(text)
            if len(self._lists) >= LISTS_KEPT:
                self._lists.clear()
            self._lists[text] = points
        return points

    def _parse_list(self, text: str) -> tuple[tuple[str, int], ...]:
        channels: list[tuple[int, str, int]] = []
        for item in (part.strip() for part in text.split(",")):
            if item == "allslots":
                for slot in range(1, self.inst.cards + 1):
                    channels += self._slot(slot)
            elif _SLOT.fullmatch(item):
                slot = int(item[4:])
                if slot > self.inst.cards:
                    raise OutOfRange(f"{item} is not an installed card")
                channels += self._slot(slot)
            elif ":" in item:
                lo, hi = (self._channel(p.strip()) for p in item.split(":", 1))
                rows = ROWS[ROWS.index(min(lo[1], hi[1])) : ROWS.index(max(lo[1], hi[1])) + 1]
                channels += [
                    (s, r, c)
                    for s in range(min(lo[0], hi[0]), max(lo[0], hi[0]) + 1)
                    for r in rows
                    for c in range(min(lo[2], hi[2]), max(lo[2], hi[2]) + 1)
                ]
            else:
                channels.append(self._channel(item))
        return tuple((row, (slot - 1) * COLUMNS_PER_CARD + col) for slot, row, col in channels)

    @staticmethod
    def channel_name(crosspoint: tuple[str, int]) -> str:
        row, output = crosspoint
        slot, col = divmod(output - 1, COLUMNS_PER_CARD)
        return f"{slot + 1}{row}{col + 1:02d}"

    # ------------------------------------------------------------------ commands
    def _closable(self, text: str) -> list[tuple[str, int]]:
        points = self.parse_list(text)
        barred = sorted(self.channel_name(p) for p in set(points) & self.forbidden)
        if barred:
            raise OutOfRange(f"forbidden channels {','.join(barred)}")
        return points

    def close(self, text: str) -> None:
        """``channel.close(list)``: adds to the channels already closed [M p.7-17]."""
        self.world.close(self.inst.name, self._closable(text))
        self.world.advance(SETTLE_TIME)

    def open(self, text: str) -> None:
        points = self.parse_list(text)
        self.world.open(self.inst.name, points)
        self.world.advance(SETTLE_TIME)

    def exclusive_close(self, text: str) -> None:
        """``channel.exclusiveclose(list)``: opens everything else, then closes the list."""
        points = self._closable(text) if text else []
        self.world.open_all(self.inst.name)
        self.world.close(self.inst.name, points)
        self.world.advance(SETTLE_TIME)

    def reset_channels(self, text: str) -> None:
        self.open(text)

    def get_closed(self, scope: str) -> str:
        """``print(channel.getclose(scope))``: sorted, ';'-delimited, ``nil`` when none."""
        wanted = set(self.parse_list(scope))
        names = sorted(
            self.channel_name(cp) for cp in self.world.closed(self.inst.name) if cp in wanted
        )
        return ";".join(names) if names else "nil"

    def set_forbidden(self, text: str) -> None:
        """``channel.setforbidden(list)``: these channels refuse to close until cleared."""
        self.forbidden.update(self.parse_list(text))

    def clear_forbidden(self, text: str) -> None:
        self.forbidden.difference_update(self.parse_list(text))

    def get_forbidden(self, scope: str) -> str:
        wanted = set(self.parse_list(scope))
        names = sorted(self.channel_name(cp) for cp in self.forbidden & wanted)
        return ";".join(names) if names else "nil"

    def error_count(self) -> str:
        """``print(errorqueue.count)``: a TSP number (``%e`` style, 6 significant digits)."""
        return f"{self.dev.error_count():.5e}"

    def delay(self, seconds: str) -> None:
        try:
            value = float(seconds)
        except ValueError:
            raise OutOfRange(f"delay({seconds})") from None
        if not 0.0 <= value <= 1e4:
            raise OutOfRange(f"delay({seconds})")
        self.world.advance(value)
