"""A pyvisa-sim Device whose grammar comes from the YAML and whose meaning comes from Python.

The YAML stays pyvisa-sim's own format (so it still loads in stock ``@sim``); we read four extra
keys that stock pyvisa-sim ignores:

- ``compute: fn`` on a property: its getter replies ``r.format(behaviour.fn([ch_id]))``;
- ``notify: fn`` on a property: ``behaviour.fn(value[, ch_id])`` runs after every accepted set;
- ``call: fn`` on a dialogue: ``behaviour.fn([ch_id])`` runs, and its return value (or the YAML
  ``r``) is the reply;
- device-level ``xbar: {behaviour: name, commands: [{q: <stringparser format>, r: ..., call: fn}]}``
  for parametrised commands the stock grammar cannot express.

Matching is strict: a command no rule accepts queues the instrument's ``command_error`` entry
and raises :class:`UnknownCommand` naming the instrument and the command. A command whose
grammar matches but whose value is out of range, or that the instrument's state refuses (a
behaviour raising :class:`OutOfRange`), queues ``data_error`` and has no effect.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import stringparser
from pyvisa_sim.component import NoResponse, Specs, to_bytes
from pyvisa_sim.devices import Device


class UnknownCommand(ValueError):
    """A virtual instrument received a command its grammar does not declare."""


class OutOfRange(ValueError):
    """A behaviour rejects a value that the grammar accepted (queued as the data error)."""


class SimProperty:
    """A validated instrument setting, one value per channel (``None`` for device-level)."""

    def __init__(self, name: str, default: str, specs: dict[str, str]):
        self.name = name
        self.specs = Specs(specs) if specs else None
        self.default = self.validate(default)
        self.values: dict[str | None, Any] = {}

    def validate(self, text: str) -> Any:
        """Convert and range-check a value; raise OutOfRange naming the setting and the range."""
        if self.specs is None:
            return text
        try:
            value = self.specs.type(text)
        except (TypeError, ValueError):
            raise OutOfRange(f"{self.name}: {text!r} is not a {self.specs.type.__name__}") from None
        lo, hi, valid = self.specs.min, self.specs.max, self.specs.valid
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise OutOfRange(f"{self.name}: {value!r} outside {lo}..{hi}")
        if valid and value not in valid:
            raise OutOfRange(f"{self.name}: {value!r} not one of {sorted(valid)}")
        return value

    def get(self, ch: str | None = None) -> Any:
        return self.values.get(ch, self.default)

    def set(self, value: Any, ch: str | None = None) -> None:
        self.values[ch] = value


Handler = Callable[[], Any]


class ModelDevice(Device):
    """pyvisa-sim Device with exact-match hooks, observable settings and strict matching."""

    def __init__(self, name: str, delimiter: bytes, join: bytes):
        super().__init__(name, delimiter)
        self.join = join  # separator of several replies to one compound message
        self.exact: dict[bytes, Handler] = {}
        self.setters: list[tuple[stringparser.Parser, SimProperty, str | None, list]] = []
        self.patterns: list[tuple[stringparser.Parser, str | None, Callable]] = []
        self.settings: dict[str, SimProperty] = {}
        self.behaviour: Any = None
        self.faults: Any = None  # FaultInjector or None

    # ------------------------------------------------------------------ settings access
    def get(self, name: str, ch: str | None = None) -> Any:
        return self.settings[name].get(ch)

    def put(self, name: str, value: Any, ch: str | None = None) -> None:
        """Set a setting without notifying (behaviours use this to mirror instrument state)."""
        self.settings[name].set(value, ch)

    def reset_settings(self) -> None:
        for prop in self.settings.values():
            prop.values.clear()

    def push_error(self, key: str) -> None:
        """Queue an error by its YAML ``error_queue`` key (``command_error``, ``data_error``).

        A behaviour with its own error queue (``queue_error``) takes it instead.
        """
        own = getattr(self.behaviour, "queue_error", None)
        if own is not None:
            own(key)
            return
        for queue in self._error_queues.values():
            queue.append(key)

    def clear_errors(self) -> None:
        for queue in self._error_queues.values():
            queue.clear()

    def error_count(self) -> int:
        own = getattr(self.behaviour, "error_count_now", None)
        if own is not None:
            return own()
        return max((len(q._queue) for q in self._error_queues.values()), default=0)

    # ------------------------------------------------------------------ I/O
    def write(self, data: bytes) -> None:
        """Buffer input; on a complete message, answer every unit and queue one joined reply."""
        self._input_buffer.extend(data)
        eom = self._query_eom
        if not self._input_buffer.endswith(eom):
            return
        message = bytes(self._input_buffer[: len(self._input_buffer) - len(eom)])
        self._input_buffer = bytearray()
        if self.faults is not None:
            self.faults.before_command(message)
            if self.faults.silent:
                return
        units = message.split(self.delimiter) if self.delimiter else [message]
        replies = []
        for unit in units:
            reply = self._match(unit)
            if reply is not NoResponse and reply is not None:
                replies.append(reply)
        if replies:
            out = self.join.join(replies)
            if self.faults is not None:
                out = self.faults.on_reply(out)
                if out is None:
                    return
            self._output_buffers.append(bytearray(out) + self._response_eom)

    def take_output(self, count: int) -> tuple[bytes, bool]:
        """Pop up to ``count`` bytes of the oldest reply; True when the reply ended."""
        if not self._output_buffers:
            return b"", False
        buf = self._output_buffers[0]
        if len(buf) <= count:
            self._output_buffers.popleft()
            return bytes(buf), True
        chunk = bytes(buf[:count])
        del buf[:count]
        return chunk, False

    def clear_io(self) -> None:
        self._output_buffers.clear()
        self._input_buffer = bytearray()

    # ------------------------------------------------------------------ matching
    def _match(self, query: bytes) -> Any:
        handler = self.exact.get(query)
        if handler is not None:
            try:
                return handler()
            except OutOfRange:
                self.push_error("data_error")
                return NoResponse
        if query in self._error_queues:
            return self._error_queues[query].value
        text = query.decode("ascii", errors="replace")
        for parser, prop, ch, observers in self.setters:
            try:
                raw = parser(text)
            except ValueError:
                continue
            try:
                value = prop.validate(raw)
            except OutOfRange:
                self.push_error("data_error")
                return NoResponse
            previous = prop.values.get(ch, ...)
            prop.set(value, ch)
            try:
                for observe in observers:
                    observe(value) if ch is None else observe(value, ch)
            except OutOfRange:
                if previous is ...:
                    prop.values.pop(ch, None)
                else:
                    prop.set(previous, ch)
                self.push_error("data_error")
            return NoResponse
        for parser, reply, fn in self.patterns:
            try:
                parsed = parser(text)
            except ValueError:
                continue
            try:
                if isinstance(parsed, dict):
                    result = fn(**parsed)
                elif isinstance(parsed, (list, tuple)):
                    result = fn(*parsed)
                else:
                    result = fn(parsed)
            except OutOfRange:
                self.push_error("data_error")
                return NoResponse
            except UnknownCommand as exc:
                self.push_error("command_error")
                raise UnknownCommand(f"{self.name} at {self.resource_name}: {exc}") from None
            return reply_bytes(reply, result)
        self.push_error("command_error")
        raise UnknownCommand(f"{self.name} at {self.resource_name}: undeclared command {text!r}")


def reply_bytes(fmt: str | None, result: Any) -> Any:
    """Turn a behaviour result into reply bytes: formatted by ``fmt`` or taken verbatim."""
    if result is NoResponse:
        return NoResponse
    if fmt is None:
        return NoResponse if result is None else to_bytes(str(result))
    return to_bytes(fmt.format(result) if result is not None else fmt)
