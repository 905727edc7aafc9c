"""Keysight E5250A switch mainframe with E5252A 10x12 cards (SCPI channel lists).

A channel ``ciioo`` joins input ``ii`` (1..10) to output ``oo`` of card ``c``; in the
bench-file numbering that is output ``(c - 1) * 12 + oo``. Card 0 is auto-configuration mode,
where the outputs of all cards count on: ``0iioo`` is bench output ``oo`` (1..48). Lists are
comma-separated channels or ranges ``c1iioo:c2iioo`` (every input and output between).
With the SROU connection rule a card allows one route per input and per output: closing a
channel opens whatever held its input or output (user's guide, :ROUT:CONN:RULE).
"""

from __future__ import annotations

import re

from ..device import OutOfRange
from .base import Behaviour, register

OUTPUTS_PER_CARD = 12
INPUTS = 10
SETTLE_TIME = 3e-3  # s per switching command [U: E5252A settle time not found]
_CHANNEL = re.compile(r"^([0-4])(\d\d)(\d\d)$")


@register("scpi_matrix")
class ScpiMatrix(Behaviour):
    """The E5250A model on the bench's World."""

    def reset(self) -> None:
        super().reset()
        self.rules = {card: "FREE" for card in range(1, self.inst.cards + 1)}
        self.world.open_all(self.inst.name)

    def _output(self, card: int, out: int, text: str) -> int:
        if card == 0:
            number = out
        else:
            if card > self.inst.cards or not 1 <= out <= OUTPUTS_PER_CARD:
                raise OutOfRange(f"channel {text}: card {card} output {out} not installed")
            number = (card - 1) * OUTPUTS_PER_CARD + out
        if not 1 <= number <= self.inst.cards * OUTPUTS_PER_CARD:
            raise OutOfRange(f"channel {text}: output {out} not installed")
        return number

    def _channel(self, text: str) -> tuple[int, int, int]:
        m = _CHANNEL.match(text.strip())
        if not m or not 1 <= int(m[2]) <= INPUTS:
            raise OutOfRange(f"channel {text!r} is not <card 0-4><input 01-10><output>")
        return int(m[1]), int(m[2]), int(m[3])

    def parse_list(self, text: str) -> list[tuple[str, int]]:
        points = []
        for item in text.split(","):
            if ":" in item:
                a, b = (self._channel(p) for p in item.split(":", 1))
                if a[0] != b[0]:
                    raise OutOfRange(f"range {item} spans cards")
                points += [
                    (str(i), self._output(a[0], o, item))
                    for i in range(min(a[1], b[1]), max(a[1], b[1]) + 1)
                    for o in range(min(a[2], b[2]), max(a[2], b[2]) + 1)
                ]
            else:
                card, inp, out = self._channel(item)
                points.append((str(inp), self._output(card, out, item)))
        return points

    @staticmethod
    def channel_name(point: tuple[str, int]) -> str:
        card, out = divmod(point[1] - 1, OUTPUTS_PER_CARD)
        return f"{card + 1}{int(point[0]):02d}{out + 1:02d}"

    def _card(self, output: int) -> int:
        return (output - 1) // OUTPUTS_PER_CARD + 1

    def close(self, text: str) -> None:
        points = self.parse_list(text)
        name = self.inst.name
        for label, output in points:
            if self.rules[self._card(output)] == "SROU":
                clash = [
                    p
                    for p in self.world.closed(name)
                    if self._card(p[1]) == self._card(output) and (p[0] == label or p[1] == output)
                ]
                self.world.open(name, clash)
            self.world.close(name, [(label, output)])
        self.world.advance(SETTLE_TIME)

    def open(self, text: str) -> None:
        self.world.open(self.inst.name, self.parse_list(text))
        self.world.advance(SETTLE_TIME)

    def open_card(self, card: str) -> None:
        """``:ROUT:OPEN:CARD ALL|<card>``."""
        if card == "ALL" or card == "0":
            self.world.open_all(self.inst.name)
        else:
            number = self._card_number(card)
            closed = self.world.closed(self.inst.name)
            self.world.open(self.inst.name, [p for p in closed if self._card(p[1]) == number])
        self.world.advance(SETTLE_TIME)

    def _card_number(self, text: str) -> int:
        if not text.isdigit() or not 1 <= int(text) <= self.inst.cards:
            raise OutOfRange(f"card {text!r}")
        return int(text)

    def query_closed(self, text: str) -> str:
        """``:ROUT:CLOS? (@list)``: 1 or 0 per channel, in the order asked."""
        closed = set(self.world.closed(self.inst.name))
        return ",".join("1" if p in closed else "0" for p in self.parse_list(text))

    def closed_on_card(self, card: str) -> str:
        """``:ROUT:CLOS:CARD? <card>``: the closed channels as a channel list."""
        closed = self.world.closed(self.inst.name)
        if card != "0":
            number = self._card_number(card)
            closed = [p for p in closed if self._card(p[1]) == number]
        return "(@" + ",".join(sorted(self.channel_name(p) for p in closed)) + ")"

    def _cards(self, text: str) -> list[int]:
        return list(self.rules) if text == "ALL" else [self._card_number(text)]

    def set_rule(self, cards: str, rule: str) -> None:
        """``:ROUT:CONN:RULE <card|ALL>,FREE|SROU`` (existing routes stay as they are)."""
        if rule not in ("FREE", "SROU"):
            raise OutOfRange(f"rule {rule}")
        for card in self._cards(cards):
            self.rules[card] = rule

    def set_sequence(self, cards: str, sequence: str) -> None:
        if sequence not in ("BBM", "MBBR", "NSEQ"):
            raise OutOfRange(f"sequence {sequence}")
        self._cards(cards)
