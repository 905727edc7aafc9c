"""A pyvisa-sim Device whose grammar comes from the YAML and whose meaning comes from Python.

The YAML stays pyvisa-sim's own format (so it still loads in stock ``@sim``); we read four extra
keys that stock pyvisa-sim ignores:

- ``compute: fn`` on a property: its getter replies ``r.format(behaviour.fn([ch_id]))``;
- ``notify: fn`` on a property: ``behaviour.fn(value[, ch_id])`` runs after every accepted set;
- ``call: fn`` on a dialogue: ``behaviour.fn([ch_id])`` runs, and its return value (or the YAML
  ``r``) is the reply;
- device-level ``xbar: {behaviour: name, commands: [{q: <stringparser format>, r: ..., call: fn}]}``
  for parametrised commands the stock grammar cannot express;
- device-level ``xbar: {statements: lua | scpi}``: how one message splits into commands, as the
  instrument's own parser does (stock pyvisa-sim splits on ``delimiter`` only):

  * ``lua`` (TSP): a message is one chunk; statements are separated by ``;`` outside strings and
    brackets, one ``;`` may end the last one. An empty statement or an unbalanced bracket or
    quote is a syntax error, and so is a statement no rule accepts (this grammar's reading of an
    unknown command): nothing of the chunk runs. A statement that fails when it runs (a data
    error) ends the chunk: the statements after it do not run. Statements separated by
    whitespace alone are valid Lua but not simulated (such a message is read as one).
  * ``scpi`` (IEEE 488.2 program message units): units are separated by ``;`` outside quoted
    strings; a unit starting with ``:`` is a full header, a common command (``*...``) leaves the
    header path alone, any other unit continues the path of the previous unit (``:SOUR2:VOLT:MODE
    LIST;TRIG 0.1`` is ``:SOUR2:VOLT:TRIG 0.1``). An empty unit (``;;``, or a leading or trailing
    ``;``) is a syntax error and nothing of the message runs; a unit with an execution error
    (data error) has no effect and the units after it still run; the replies of the queries are
    joined with ``;`` into one response message.

Matching is strict: a command no rule accepts queues the instrument's ``command_error`` entry
and raises :class:`UnknownCommand` naming the instrument and the command. A command whose
grammar matches but whose value is out of range, or that the instrument's state refuses (a
behaviour raising :class:`OutOfRange`), queues ``data_error`` and has no effect.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import stringparser
from pyvisa_sim.component import NoResponse, Specs, to_bytes
from pyvisa_sim.devices import Device

from .faults import REFUSE

_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"(){}[]")
_SPECIAL = re.compile(rb"[;'\"(){}\[\]]")
"""The characters `ModelDevice._split` looks at: separators, quotes and brackets."""
_QUOTES, _OPENING, _CLOSING = b"'\"", b"({[", b")}]"


def _balanced(text: bytes) -> bool:
    """Every bracket of `text` closed after it opened, none left open."""
    depth = 0
    for byte in text.translate(None, _NOT_BRACKETS):
        depth += 1 if byte in _OPENING else -1
        if depth < 0:
            return False
    return depth == 0


RULES_KEPT = 4096
"""Command texts whose accepting rule a device remembers (`ModelDevice._rule`)."""


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

    def __init__(self, name: str, delimiter: bytes, join: bytes, statements: str = ""):
        super().__init__(name, delimiter)
        self.join = join  # separator of several replies to one compound message
        if statements not in ("", "lua", "scpi"):
            raise ValueError(f"{name}: statements = {statements!r}: allowed lua or scpi")
        self.statements = statements  # how a message splits into commands (module docstring)
        self._unit_failed = False
        self.exact: dict[bytes, Handler] = {}
        self.setters: list[tuple[stringparser.Parser, SimProperty, str | None, list]] = []
        self.patterns: list[tuple[stringparser.Parser, str | None, Callable]] = []
        self.settings: dict[str, SimProperty] = {}
        self._rules: dict[str, tuple] = {}  # text -> the rule that accepts it (`_rule`)
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
        self._unit_failed = True
        own = getattr(self.behaviour, "queue_error", None)
        if own is not None:
            own(key)
            return
        for queue in self._error_queues.values():
            queue.append(key)

    def push_syntax_error(self) -> None:
        """Queue the grammar's ``syntax_error`` entry (SCPI -102), else its ``command_error``."""
        known = any("syntax_error" in q._error_map for q in self._error_queues.values())
        self.push_error("syntax_error" if known else "command_error")

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
        if self.statements and message.endswith(b"\r"):
            # IEEE 488.2 7.5.2: white space (CR among it) may precede the NL terminator, so
            # pyvisa's default CR LF reaches an instrument as a plain message; the array board
            # has no such rule (its firmware refuses CR: drivers/array_board.md)
            message = message[:-1]
        if self.faults is not None:
            refused = self.faults.before_command(message) == REFUSE
            late = self.faults.arrived()
            if late is not None:
                self._output_buffers.append(bytearray(late) + self._response_eom)
            if self.faults.silent:
                return
            if refused:
                self.push_error("data_error")
                return
        units = self._units(message)
        replies = []
        for unit in units:
            self._unit_failed = False
            reply = self._match(unit)
            if reply is not NoResponse and reply is not None:
                replies.append(reply)
            if self._unit_failed and self.statements == "lua":
                break  # a run-time error ends the chunk
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
        """Device clear: queued replies (a late one too) and partial input are discarded."""
        self._output_buffers.clear()
        self._input_buffer = bytearray()
        if self.faults is not None:
            self.faults.arrived()

    # ------------------------------------------------------------------ splitting
    def _units(self, message: bytes) -> list[bytes]:
        """The commands of one message, in order (see the module docstring); a malformed
        message queues a syntax error and raises `UnknownCommand` with nothing run."""
        if self.statements == "lua":
            units = self._split_lua(message)
            unknown = next((u for u in units if not self._known(u)), None)
            if unknown is not None and len(units) > 1:
                self.push_error("command_error")
                raise UnknownCommand(
                    f"{self.name} at {self.resource_name}: undeclared statement "
                    f"{unknown.decode('ascii', errors='replace')!r} in chunk "
                    f"{message.decode('ascii', errors='replace')!r}; nothing of it ran")
            return units
        if self.statements == "scpi":
            return self._split_scpi(message)
        return message.split(self.delimiter) if self.delimiter else [message]

    def _malformed(self, message: bytes, problem: str) -> UnknownCommand:
        self.push_syntax_error()
        return UnknownCommand(f"{self.name} at {self.resource_name}: {problem} in "
                              f"{message.decode('ascii', errors='replace')!r}; nothing of it ran")

    def _split(self, message: bytes, brackets: bool) -> list[bytes]:
        """`message` cut at each ``;`` outside quoted strings (and, with `brackets`, outside
        brackets); a message without one is returned whole, as it stands. Only the
        characters that matter (``;``, quotes, brackets) are visited, not every byte."""
        if b";" not in message and b"'" not in message and b'"' not in message:
            if brackets:  # no split: only a bracket closed before it opened is an error
                depth = 0
                for byte in message.translate(None, _NOT_BRACKETS):
                    depth += 1 if byte in b"({[" else -1
                    if depth < 0:
                        raise self._malformed(message, "unbalanced bracket")
            return [message]
        if b"'" not in message and b'"' not in message:
            pieces = message.split(b";")
            if not brackets or all(_balanced(piece) for piece in pieces):
                return pieces
        pieces = []
        depth, quote, start = 0, 0, 0
        for found in _SPECIAL.finditer(message):
            byte = message[found.start()]
            if quote:
                quote = 0 if byte == quote else quote
            elif byte in _QUOTES:
                quote = byte
            elif byte in _OPENING:
                depth += brackets
            elif byte in _CLOSING:
                depth -= brackets
                if depth < 0:
                    raise self._malformed(message, "unbalanced bracket")
            elif depth == 0:  # a ';'
                k = found.start()
                pieces.append(message[start:k])
                start = k + 1
        if not pieces:
            return [message]
        if quote or depth:
            raise self._malformed(message, "unfinished string or bracket")
        return [*pieces, message[start:]]

    def _split_lua(self, message: bytes) -> list[bytes]:
        """Statements of one TSP chunk, split at ``;`` outside strings and brackets."""
        pieces = self._split(message, brackets=True)
        if len(pieces) == 1:
            return pieces  # one statement: matched as it stands
        pieces = [piece.strip() for piece in pieces]
        if not pieces[-1]:
            pieces.pop()  # one ';' may end the last statement
        if not all(pieces):
            raise self._malformed(message, "empty statement")
        return pieces

    def _split_scpi(self, message: bytes) -> list[bytes]:
        """Program message units, each with its full header (header path rules applied)."""
        pieces = self._split(message, brackets=False)
        if len(pieces) > 1 and not all(pieces):
            raise self._malformed(message, "empty program message unit")
        units, path = [], b""
        for piece in pieces:
            if piece.startswith(b"*"):
                units.append(piece)  # common commands leave the header path alone
                continue
            unit = piece if piece.startswith(b":") else path + piece
            header = unit.split(b" ", 1)[0]
            path = header[: header.rfind(b":") + 1]
            units.append(unit)
        return units

    def _known(self, query: bytes) -> bool:
        """Whether some rule of the grammar accepts `query` (nothing is run)."""
        if query in self.exact or query in self._error_queues:
            return True
        return self._rule(query.decode("ascii", errors="replace")) is not None

    def _rule(self, text: str) -> tuple | None:
        """The first rule that accepts `text`, setters before patterns: ``(True, setter,
        raw value)`` or ``(False, pattern, parsed fields)``; None when none does. Remembered
        per text (a bench sends the same commands again and again; at most RULES_KEPT)."""
        found = self._rules.get(text)
        if found is not None:
            return found
        found = next(self._accepting(text), None)
        if found is None:
            return None
        if len(self._rules) >= RULES_KEPT:
            self._rules.clear()
        self._rules[text] = found
        return found

    def _accepting(self, text: str):
        """Every rule that accepts `text`, in order, as `_rule` gives it."""
        for setter, entry in [(True, e) for e in self.setters] + [(False, e)
                                                                  for e in self.patterns]:
            try:
                yield setter, entry, entry[0](text)
            except ValueError:
                continue

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
        rule = self._rule(text)
        if rule is not None and rule[0]:
            _, (_, prop, ch, observers), raw = rule
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
        if rule is not None:
            _, (_, reply, fn), parsed = rule
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
