"""Keysight (Agilent) E5250A low-leakage switch mainframe with E5252A 10x12 matrix cards, SCPI.

Commands from the E5250A User's Guide ch. 5-6 (see commands.toml). Channels are five digits
`<card><input 01-10><output 01-12>`, sent as `(@10103,10205)`, with cards in normal configuration
mode (numbered 1 to 4). `crosspoint` numbers the outputs across the installed cards, 12 per card
(output 17 is card 2 output 05). Closes accumulate on this instrument, so exclusive close
opens the cards first. The E5250A has no forbidden-channel list: forbidden crosspoints are refused
in software. The connection sequence is break-before-make from the moment the driver connects.
"""

from __future__ import annotations

import re

from .base import Instrument, ScpiErrorQueue
from .errors import UnexpectedReplyError
from .switch import SwitchMatrixBase
from .validators import IntegerInRange

_LIST = re.compile(r"\(@(.*)\)", re.DOTALL)
_ITEM = re.compile(r"(\d)(\d\d)(\d\d)")


def closed_channels(reply: str) -> set[str] | None:
    """The channels of a `:ROUT:CLOS:CARD?` reply, or None when it is not a channel list.

    The channel_list syntax of the E5250A User's Guide (Ed. 9 p. 5-6, Figure 5-1): ``(@`` then
    channels ``ciioo`` or ranges ``ciioo:ciioo`` (every input and output between the corners,
    on one card) separated by commas, then ``)``; spaces around items are allowed. A card with
    nothing closed has an empty list: ``(@)``, and an empty reply is read the same way."""
    text = reply.strip()
    if not text:
        return set()
    match = _LIST.fullmatch(text)
    if match is None:
        return None
    channels: set[str] = set()
    for item in (part.strip() for part in match.group(1).split(",")):
        if not item and "," not in match.group(1):
            continue  # (@) or (@ ): the empty list
        corners = [_ITEM.fullmatch(end.strip()) for end in item.split(":")]
        if not 1 <= len(corners) <= 2 or None in corners:
            return None
        first, last = corners[0], corners[-1]
        if first[1] != last[1]:
            return None
        (in_lo, in_hi), (out_lo, out_hi) = (sorted((int(first[k]), int(last[k]))) for k in (2, 3))
        channels.update(f"{first[1]}{i:02d}{o:02d}" for i in range(in_lo, in_hi + 1)
                        for o in range(out_lo, out_hi + 1))
    return channels


class KeysightE5250A(ScpiErrorQueue, SwitchMatrixBase, Instrument):
    """An E5250A mainframe with `cards` E5252A cards installed as cards 1 to `cards`."""

    catalog_name = "keysight_e5250a"
    timeout_ms = 5000
    identity_pattern = re.compile(r"\b(E5250A)\b")
    expected_identity = "a Keysight/Agilent E5250A switch mainframe"
    channel_format = "<card><input 01-10><output 01-12>, e.g. 10103"

    def __init__(self, resource, cards: int = 1):
        count = IntegerInRange(1, 4)("cards", cards)
        self.cards = tuple(range(1, count + 1))
        self.channel_pattern = re.compile(rf"[1-{count}](?:0[1-9]|10)(?:0[1-9]|1[0-2])")
        super().__init__(resource)

    def _connected(self) -> None:
        self.write("*CLS")
        self.configure(":ROUT:CONN:RULE ALL,FREE")
        self.configure(":ROUT:CONN:SEQ ALL,BBM")

    def crosspoint(self, input_port: int, output_port: int) -> str:
        """Channel joining `input_port` (1-10) to output `output_port`, numbered across the
        installed cards (1 to 12 x cards)."""
        source = IntegerInRange(1, 10)("input_port", input_port)
        output = IntegerInRange(1, 12 * len(self.cards))("output_port", output_port)
        card, local = divmod(output - 1, 12)
        return f"{card + 1}{source:02d}{local + 1:02d}"

    def _ports(self, channel: str) -> tuple[tuple[str, str], tuple[str, str]]:
        return (channel[0], channel[1:3]), (channel[0], channel[3:])

    def _close(self, channels: list[str]) -> None:
        self.configure(f":ROUT:CLOS (@{','.join(channels)})")

    def _open(self, channels: list[str]) -> None:
        self.configure(f":ROUT:OPEN (@{','.join(channels)})")

    def _exclusive_close(self, channels: list[str]) -> None:
        with self.locked():
            self.open_all()
            self._close(channels)

    def open_all(self) -> None:
        self.configure(":ROUT:OPEN:CARD ALL")

    def closed(self) -> frozenset[str]:
        """Closed channels of every installed card (`:ROUT:CLOS:CARD?`, read by
        `closed_channels`: an empty card answers an empty list)."""
        names: set[str] = set()
        for card in self.cards:
            command = f":ROUT:CLOS:CARD? {card}"
            reply = self.ask(command)
            channels = closed_channels(reply)
            if channels is None:
                raise UnexpectedReplyError(self.describe(), command, reply,
                                           "a channel list (@ciioo,...)")
            names |= channels
        return frozenset(names)

    def set_break_before_make(self, enabled: bool) -> None:
        """BBM, or NSEQ (no sequence: fastest, no guaranteed order)."""
        self.configure(f":ROUT:CONN:SEQ ALL,{'BBM' if enabled else 'NSEQ'}")

    def reset(self) -> None:
        """Instrument reset (all open), then free routing with break-before-make again."""
        self.configure("*RST")
        self.configure(":ROUT:CONN:RULE ALL,FREE")
        self.configure(":ROUT:CONN:SEQ ALL,BBM")
