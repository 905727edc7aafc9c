"""What every switch-matrix driver shares: channel-name checks, forbidden crosspoints refused in
software before anything is sent, and no two inputs (sources) ever closed onto one output.

A driver subclasses `SwitchMatrixBase`, sets `channel_pattern`, and implements `_ports` (a
channel's input and output), `_close`, `_open`, `_exclusive_close`, `open_all` and `closed`.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable
from typing import Any, ClassVar


class SwitchMatrixBase:
    """Template for a switch matrix; see the module docstring."""

    channel_pattern: ClassVar[re.Pattern[str]]
    """A valid channel name (anchored)."""
    channel_format: ClassVar[str]
    """How a channel name is written, for error messages."""

    _forbidden: frozenset[str] = frozenset()

    # -- what each driver implements -----------------------------------------------------------

    def _ports(self, channel: str) -> tuple[Hashable, Hashable]:
        """(input, output) that `channel` connects."""
        raise NotImplementedError

    def _close(self, channels: list[str]) -> None:
        raise NotImplementedError

    def _open(self, channels: list[str]) -> None:
        raise NotImplementedError

    def _exclusive_close(self, channels: list[str]) -> None:
        raise NotImplementedError

    def _reroute(self, opening: list[str], closing: list[str]) -> None:
        """Open, then close (a driver whose instrument takes both in one message overrides)."""
        if opening:
            self._open(opening)
        if closing:
            self._close(closing)

    def open_all(self) -> None:
        raise NotImplementedError

    def closed(self) -> frozenset[str]:
        raise NotImplementedError

    # -- shared behaviour ----------------------------------------------------------------------

    def _snapshot_state(self) -> dict[str, Any]:
        """The relays closed now, for the run's instrument snapshots."""
        return {"closed": {"value": sorted(self.closed()), "unit": ""}}

    def channel_list(self, channels: Iterable[str] | str) -> list[str]:
        """Checked channel names, in the given order, without duplicates."""
        names = [channels] if isinstance(channels, str) else list(channels)
        if not names:
            raise ValueError("channels is empty; give at least one channel")
        ports = self._port_pairs()
        try:
            checked = ports.keys() >= set(names)  # every one checked before
        except TypeError:  # an unhashable name: refused below
            checked = False
        for name in () if checked else names:
            if name in ports:
                continue  # checked before
            if not isinstance(name, str) or not self.channel_pattern.fullmatch(name):
                raise ValueError(
                    f"channel = {name!r} is not a channel name ({self.channel_format})"
                )
            ports[name] = self._ports(name)
        return list(dict.fromkeys(names))

    def _port_pairs(self) -> dict[str, tuple[Hashable, Hashable]]:
        """(input, output) of every channel name checked so far (a bench reroutes the same
        channels again and again)."""
        pairs = self.__dict__.get("_checked_ports")
        if pairs is None:
            pairs = self.__dict__["_checked_ports"] = {}
        return pairs

    def _check_safe(self, channels: list[str], already_closed: Iterable[str]) -> None:
        refused = [name for name in channels if name in self._forbidden]
        if refused:
            raise ValueError(f"channels {', '.join(refused)} are forbidden and must never close")
        staying = frozenset(already_closed)
        outputs = self._outputs_of(staying)
        if outputs is not None:  # the closed set is consistent: check what closes against it
            ports, pair = self._port_pairs(), self._ports
            outputs = dict(outputs)
            for name in channels:
                source, output = ports.get(name) or pair(name)
                other = outputs.setdefault(output, (source, name))
                if other[0] != source:
                    break
            else:
                return
        self._check_all_safe([*already_closed, *channels])

    def _check_all_safe(self, names: list[str]) -> None:
        """Raise naming the first of `names` that would join a second input on an output."""
        inputs_per_output: dict[Hashable, str] = {}
        ports = self._port_pairs()
        pair = self._ports
        for name in names:
            source, output = ports.get(name) or pair(name)  # read back: not checked by name
            other = inputs_per_output.setdefault(output, name)
            if (ports.get(other) or pair(other))[0] != source:
                raise ValueError(
                    f"closing {name} would join two inputs on one output ({other} is closed "
                    "there): two sources on one line; open one first"
                )

    def _outputs_of(self, closed: frozenset[str]) -> dict | None:
        """{output: (input, channel)} of a closed set, or None when two of its channels join
        two inputs on one output; worked out from the last set asked about by the channels
        that differ (a bench reroutes a few relays of a hundred at a time)."""
        ports, pair = self._port_pairs(), self._ports
        last = self.__dict__.get("_last_closed")
        if last is not None and len(last[0] ^ closed) < len(closed):
            before, outputs = last
            outputs = dict(outputs)
            for name in before - closed:
                del outputs[(ports.get(name) or pair(name))[1]]
            added = closed - before
        else:
            outputs, added = {}, closed
        for name in added:
            source, output = ports.get(name) or pair(name)  # read back: not checked by name
            if outputs.setdefault(output, (source, name))[0] != source:
                return None
        self.__dict__["_last_closed"] = (closed, outputs)
        return outputs

    def close(
        self, channels: Iterable[str] | str, known_closed: Iterable[str] | None = None
    ) -> None:
        """Close `channels` in addition to those already closed. The safety check runs against
        the closed set read back from the instrument, or against `known_closed` when the caller
        tracks the relays itself (no read-back: one query less per close)."""
        names = self.channel_list(channels)
        if known_closed is None:
            closed: Iterable[str] = self.closed()
        else:
            closed = list(known_closed)
            closed = self.channel_list(closed) if closed else []
        self._check_safe(names, closed)
        self._close(names)

    def open(self, channels: Iterable[str] | str) -> None:
        """Open `channels`."""
        self._open(self.channel_list(channels))

    def reroute(self, opening: Iterable[str], closing: Iterable[str],
                known_closed: Iterable[str] | None = None) -> None:
        """Open `opening`, then close `closing` (break before make; either may be empty), in
        one message where the instrument takes several commands in one. The safety check of
        `closing` runs before anything is sent, against `known_closed` (what stays closed
        once `opening` opened) or, without it, the closed set read back less `opening`."""
        opening = self.channel_list(opening) if opening else []
        closing = self.channel_list(closing) if closing else []
        if closing:
            if known_closed is None:
                staying: Iterable[str] = self.closed() - set(opening)
            else:
                staying = list(known_closed)
                staying = self.channel_list(staying) if staying else []
            self._check_safe(closing, staying)
        if opening or closing:
            self._reroute(opening, closing)

    def exclusive_close(self, channels: Iterable[str] | str) -> None:
        """Open every other channel, then close `channels`."""
        names = self.channel_list(channels)
        self._check_safe(names, ())
        self._exclusive_close(names)

    def set_forbidden(self, channels: Iterable[str] | str) -> None:
        """Channels that must never close; replaces the previous set (empty list: none)."""
        names = [] if not channels else self.channel_list(channels)
        self._forbidden = frozenset(names)

    def forbidden(self) -> frozenset[str]:
        return self._forbidden

    def shutdown(self) -> None:
        """Open every crosspoint."""
        self.open_all()
