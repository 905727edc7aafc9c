"""The xbarlab array board, protocol version 1 (drivers/array_board.md), on the bench's World.

Every row and column line has its own driver: driven at V (a voltage source limited to ±ILIM),
floating or grounded. A command is parsed and checked completely before anything changes
(a failing command has no effect) and replies ``OK``, data, or ``ERR <code>,"<message>"``,
which also enters the 16-entry error queue. Channel numbers follow the bench file: board row
``R k`` is channel ``k + 1``, column ``C k`` is channel ``rows + k + 1``.
"""

from __future__ import annotations

import re
from collections import deque

import numpy as np

from .base import Behaviour, register

MESSAGES = {
    100: "Unknown command",
    101: "Syntax error",
    102: "Wrong number of values",
    103: "Line index out of range",
    104: "Command too long",
    105: "Duplicate line",
    200: "Voltage out of range",
    201: "Current limit out of range",
    202: "Pulse width out of range",
    203: "Pulse timing out of range",
    204: "Current range not supported",
    205: "Integration time out of range",
    206: "Voltage limit out of range",
    207: "Reading count out of range",
    208: "Gate voltage out of range",
    350: "Error queue overflow",
}
QUEUE_SIZE = 16
HARDWARE_VLIM = 10.0
MAX_READINGS = 10000  # readings of one MEAS:REP? or READ? (spec §6.4)
CURRENT_RANGES = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2)
GATE_RANGE = (0.0, 5.0)  # V, a row's gate driver (spec §6.6)
GATE_STEP = 1e-3  # V, gate voltages are realised to the nearest millivolt
SETTLE = 1e-4  # s: outputs settle within 100 us of the terminator (spec §6.3)
OVERFLOW = 9.9e37
NOT_MEASURED = 9.91e37
_NUMBER = re.compile(r"^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$")
_LINE = re.compile(r"^([RC])(0|[1-9]\d*)$")
_INDEX = re.compile(r"^(0|[1-9]\d*)$")
# One <line>=<level> item, as `_line` and `_level` accept them; a list of them joined by ','.
_ITEM = r"([RC])(0|[1-9]\d*)=(F|G|[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)"
_ASSIGNMENT = re.compile(_ITEM)
_ASSIGNMENTS = re.compile(rf"{_ITEM}(?:,{_ITEM})*")


class BoardError(Exception):
    """A command the firmware refuses: carries the protocol's error code."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


def _number(text: str) -> float:
    if len(text) > 32 or not _NUMBER.match(text):
        raise BoardError(101)
    return float(text)


def _fmt(value: float) -> str:
    """C ``printf("%.6e")``: 7 significant digits, sign only when negative."""
    return f"{value:.6e}"


def _replies(method):
    """Turn a BoardError into the ``ERR`` reply (and queue entry); success replies as given."""

    def wrapped(self, *args, **kwargs):
        try:
            reply = method(self, *args, **kwargs)
        except BoardError as exc:
            self.queue_code(exc.code)
            return f'ERR {exc.code},"{MESSAGES[exc.code]}"'
        return "OK" if reply is None else reply

    wrapped.__name__ = method.__name__
    wrapped.__doc__ = method.__doc__
    return wrapped


@register("array_board")
class ArrayBoard(Behaviour):
    """Board state (limits, ranges, integration time, idle mode, latched flags) and commands."""

    def reset(self) -> None:
        """Power-on defaults (spec §5); the error queue survives ``*RST``."""
        if not hasattr(self, "errors"):
            self.errors: deque[int] = deque()
        self.rows, self.cols = self.inst.rows, self.inst.cols
        self._keys = [f"{self.inst.name}.{k + 1}" for k in range(self.rows + self.cols)]
        self.vlim, self.ilim, self.irange, self.tint = HARDWARE_VLIM, 1e-3, "AUTO", 1e-3
        self.idle = "FLOAT"
        self.latched = np.zeros(self.rows + self.cols, dtype=bool)
        self.energy = 0.0  # delivered during pulses since the last ENERGY? (ENERGY?)
        self.levels: list[float | str] = ["F"] * (self.rows + self.cols)
        self._apply_levels()
        self.gates = np.zeros(self.rows)
        self._apply_gates()

    # ------------------------------------------------------------------ error queue
    def queue_code(self, code: int) -> None:
        if len(self.errors) >= QUEUE_SIZE:
            self.errors[-1] = 350
        else:
            self.errors.append(code)

    def queue_error(self, key: str) -> None:
        """Errors found by the grammar layer: an unknown header is error 100."""
        self.queue_code(100 if key == "command_error" else 101)

    def error_count_now(self) -> int:
        return len(self.errors)

    def clear_status(self) -> None:
        self.errors.clear()
        self.latched[:] = False
        self.energy = 0.0

    def next_error(self) -> str:
        if not self.errors:
            return '0,"No error"'
        code = self.errors.popleft()
        return f'{code},"{MESSAGES[code]}"'

    def error_count(self) -> str:
        return str(len(self.errors))

    def dimensions(self) -> str:
        return f"{self.rows},{self.cols}"

    # ------------------------------------------------------------------ parsing
    def _line(self, text: str) -> int:
        """Line name ``R<k>``/``C<k>`` -> index into ``levels`` (rows first); a name read
        before is looked up (a map names the same lines again and again)."""
        known = self.__dict__.setdefault("_lines_named", {})
        line = known.get(text)
        if line is None:
            line = known[text] = self._parse_line(text)
        return line

    def _parse_line(self, text: str) -> int:
        m = _LINE.match(text)
        if not m:
            raise BoardError(101)
        k = int(m[2])
        if k >= (self.rows if m[1] == "R" else self.cols):
            raise BoardError(103)
        return k if m[1] == "R" else self.rows + k

    def _level(self, text: str) -> float | str:
        if text in ("F", "G"):
            return text
        value = _number(text)
        if abs(value) > self.vlim:
            raise BoardError(200)
        return value

    def _assignments(self, text: str, pulse: bool) -> dict[int, float | str]:
        """``<line>=<level>,...`` -> line index -> level; a well-formed list is read in one
        pass, anything else item by item for the first error's code."""
        parsed = self._well_formed_assignments(text, pulse)
        if parsed is not None:
            return parsed
        items = text.split(",")
        if not items or len(items) > self.rows + self.cols:
            raise BoardError(102)
        parsed: dict[int, float | str] = {}
        for item in items:
            name, sep, value = item.partition("=")
            if not sep:
                raise BoardError(101)
            line = self._line(name)
            if line in parsed:
                raise BoardError(105)
            if pulse and value in ("F", "G"):
                raise BoardError(101)
            parsed[line] = self._level(value)
        return parsed

    def _well_formed_assignments(self, text: str, pulse: bool) -> dict[int, float | str] | None:
        """The assignments when every item is valid (else None): lines in range and named
        once, levels numbers of at most 32 characters within VLIM (or F/G outside pulses)."""
        if not _ASSIGNMENTS.fullmatch(text):
            return None
        items = _ASSIGNMENT.findall(text)
        if len(items) > self.rows + self.cols:
            return None
        parsed: dict[int, float | str] = {}
        for kind, index, level in items:
            k = int(index)
            if k >= (self.rows if kind == "R" else self.cols):
                return None
            line = k if kind == "R" else self.rows + k
            if line in parsed:
                return None
            if level in ("F", "G"):
                if pulse:
                    return None
                parsed[line] = level
                continue
            value = float(level)
            if len(level) > 32 or abs(value) > self.vlim:
                return None
            parsed[line] = value
        return parsed

    @staticmethod
    def _check_chars(text: str) -> None:
        if len(text) > 4096:
            raise BoardError(104)
        if not (text.isascii() and text.isprintable()) or " " in text:  # 0x21..0x7E only
            raise BoardError(101)

    # ------------------------------------------------------------------ World
    def _channel(self, line: int) -> int:
        return line + 1  # bench-file channel numbering: rows 1..rows, then columns

    def _apply_levels(self, levels: list[float | str] | None = None) -> None:
        """Drive the World's board lines at `levels` (default: the DC levels), sending only
        the lines whose level differs from what the World was last given."""
        levels = self.levels if levels is None else levels
        applied = getattr(self, "_applied", None)
        changed = {k + 1: level for k, level in enumerate(levels)
                   if applied is None or applied[k] != level or type(applied[k]) is not type(level)}
        self._applied = list(levels)
        if changed:
            self.world.set_board_lines(self.inst.name, changed, self.ilim)

    def _measure(self, lines: range) -> tuple[np.ndarray, np.ndarray]:
        """Integrate TINT, then the current of `lines` (SCPI specials; the others read as not
        measured) and every line's limit flag (at the limit at any time of the integration)."""
        driven = [k for k in lines if not isinstance(self.levels[k], str)]
        got = self.world.read([self._key(k) for k in driven], 1, self.tint)
        currents = np.full(len(self.levels), NOT_MEASURED)
        currents[driven] = self._through_range(got.current[0])
        flags = self._flags_during(got.limited_during)
        self.latched |= flags
        return currents, flags

    def _through_range(self, currents: np.ndarray) -> np.ndarray:
        """Currents as the sense range reports them: beyond 1.05 x a fixed range, overflow."""
        if self.irange == "AUTO":
            return currents
        return np.where(np.abs(currents) > 1.05 * self.irange, OVERFLOW, currents)

    def _latch(self, limited: set[str]) -> None:
        """Latch the flags of the lines whose drivers were at their limit (``LIMIT?``)."""
        if limited:
            self.latched |= [key in limited for key in self._keys]

    # ------------------------------------------------------------------ limits and timing
    @_replies
    def set_vlim(self, text: str):
        value = _number(text)
        if not 0 < value <= HARDWARE_VLIM:
            raise BoardError(206)
        if any(not isinstance(v, str) and abs(v) > value for v in self.levels):
            raise BoardError(200)
        self.vlim = value

    @_replies
    def set_ilim(self, text: str):
        value = _number(text)
        if not 1e-7 <= value <= 1e-2:
            raise BoardError(201)
        self.ilim = value
        self.world.set_board_limit(self.inst.name, value)

    @_replies
    def set_irange(self, text: str):
        if text == "AUTO":
            self.irange = "AUTO"
            return None
        value = _number(text)
        match = [r for r in CURRENT_RANGES if abs(value - r) <= 1e-9 * r]
        if not match:
            raise BoardError(204)
        self.irange = match[0]
        return None

    @_replies
    def set_tint(self, text: str):
        value = _number(text)
        if not 1e-5 <= value <= 1.0:
            raise BoardError(205)
        self.tint = value

    def get_vlim(self) -> str:
        return _fmt(self.vlim)

    def get_ilim(self) -> str:
        return _fmt(self.ilim)

    def get_irange(self) -> str:
        return "AUTO" if self.irange == "AUTO" else _fmt(self.irange)

    def get_tint(self) -> str:
        return _fmt(self.tint)

    # ------------------------------------------------------------------ levels
    def _set(self, new: dict[int, float | str]) -> None:
        for k, level in new.items():
            self.levels[k] = level
        self._apply_levels()
        self.world.advance(SETTLE)

    @_replies
    def set_rows(self, text: str):
        self._check_chars(text)
        values = text.split(",")
        if len(values) != self.rows:
            raise BoardError(102)
        self._set({k: self._level(v) for k, v in enumerate(values)})

    @_replies
    def set_cols(self, text: str):
        self._check_chars(text)
        values = text.split(",")
        if len(values) != self.cols:
            raise BoardError(102)
        self._set({self.rows + k: self._level(v) for k, v in enumerate(values)})

    @_replies
    def set_lines(self, text: str):
        self._check_chars(text)
        self._set(self._assignments(text, pulse=False))

    def _level_text(self, level: float | str) -> str:
        return level if isinstance(level, str) else _fmt(level)

    def get_rows(self) -> str:
        return ",".join(self._level_text(v) for v in self.levels[: self.rows])

    def get_cols(self) -> str:
        return ",".join(self._level_text(v) for v in self.levels[self.rows :])

    @_replies
    def float_all(self):
        self._set(dict.fromkeys(range(len(self.levels)), "F"))

    @_replies
    def ground_all(self):
        self._set(dict.fromkeys(range(len(self.levels)), "G"))

    @_replies
    def idle_float(self):
        self.idle = "FLOAT"
        self._close_gates()
        self._set(dict.fromkeys(range(len(self.levels)), "F"))

    @_replies
    def idle_ground(self):
        self.idle = "GND"
        self._close_gates()
        self._set(dict.fromkeys(range(len(self.levels)), "G"))

    # ------------------------------------------------------------------ gates (spec §6.6)
    def _apply_gates(self) -> None:
        """Tell the World the gate voltage of every chip row on a board row."""
        self.world.set_board_gates(self.inst.name, {k + 1: float(v)
                                                    for k, v in enumerate(self.gates)})

    def _close_gates(self) -> None:
        if self.gates.any():
            self.gates[:] = 0.0
            self._apply_gates()

    def _gate_volts(self, text: str) -> float:
        value = _number(text)
        if not GATE_RANGE[0] <= value <= GATE_RANGE[1]:
            raise BoardError(208)
        return round(value / GATE_STEP) / round(1 / GATE_STEP)

    def _gate_row(self, text: str) -> int:
        if not _INDEX.match(text):
            raise BoardError(101)
        row = int(text)
        if row >= self.rows:
            raise BoardError(103)
        return row

    @_replies
    def set_gate(self, text: str):
        """``GATE row,V``: one row's gate voltage."""
        self._check_chars(text)
        parts = text.split(",")
        if len(parts) != 2:
            raise BoardError(102)
        row, volts = self._gate_row(parts[0]), self._gate_volts(parts[1])
        self.gates[row] = volts
        self._apply_gates()
        self.world.advance(SETTLE)

    @_replies
    def set_all_gates(self, text: str):
        """``GATE:ALL V``: every row's gate voltage."""
        self._check_chars(text)
        self.gates[:] = self._gate_volts(text)
        self._apply_gates()
        self.world.advance(SETTLE)

    @_replies
    def get_gate(self, text: str):
        """``GATE? row``: the row's gate voltage as realised."""
        self._check_chars(text)
        return _fmt(self.gates[self._gate_row(text)])

    def get_idle(self) -> str:
        return self.idle

    # ------------------------------------------------------------------ measuring
    @staticmethod
    def _currents(values: np.ndarray) -> str:
        return ",".join(np.char.mod("%.6e", values).tolist())

    @staticmethod
    def _flags(values: np.ndarray) -> str:
        return "".join("1" if f else "0" for f in values)

    def measure_rows(self) -> str:
        r = self.rows
        currents, flags = self._measure(range(r))
        return f"{self._currents(currents[:r])};{self._flags(flags[:r])}"

    def measure_cols(self) -> str:
        r = self.rows
        currents, flags = self._measure(range(r, len(self.levels)))
        return f"{self._currents(currents[r:])};{self._flags(flags[r:])}"

    def measure_all(self) -> str:
        """``MEAS:ALL?``: every row and column current from one solve (one model call)."""
        currents, flags = self._measure(range(len(self.levels)))
        r = self.rows
        return ";".join(
            (
                self._currents(currents[:r]),
                self._currents(currents[r:]),
                self._flags(flags[:r]),
                self._flags(flags[r:]),
            )
        )

    def _count(self, text: str) -> int:
        """A reading count: a decimal integer (101), 1 .. MAX_READINGS (207)."""
        if not _INDEX.match(text):
            raise BoardError(101)
        count = int(text)
        if not 1 <= count <= MAX_READINGS:
            raise BoardError(207)
        return count

    @_replies
    def measure_repeated(self, text: str):
        """``MEAS:REP? count,line,...``: `count` measurements back to back, each integrating
        TINT, of the listed lines: the readings (listed lines joined by ``,``) joined by
        ``;``, then the row and column flags (at the limit during any of them)."""
        self._check_chars(text)
        head, sep, rest = text.partition(",")
        if not sep:
            raise BoardError(102)
        count = self._count(head)
        position: dict[int, int] = {}  # line -> its place in the list
        for name in rest.split(","):
            line = self._line(name)
            if line in position:
                raise BoardError(105)
            position[line] = len(position)
        lines = list(position)
        driven = [k for k in lines if not isinstance(self.levels[k], str)]
        keys = [self._key(k) for k in driven]
        got = self.world.read(keys, count, self.tint)
        currents = np.full((count, len(lines)), NOT_MEASURED)
        columns = [position[k] for k in driven]
        currents[:, columns] = self._through_range(got.current)
        flags = self._flags_during(got.limited_during)
        self.latched |= flags
        texts = np.char.mod("%.6e", currents)
        readings = ";".join(",".join(row) for row in texts.tolist())
        r = self.rows
        return f"{readings};{self._flags(flags[:r])};{self._flags(flags[r:])}"

    def _key(self, line: int) -> str:
        return self._keys[line]

    def _flags_during(self, limited: set[str]) -> np.ndarray:
        """Every line's flag: driven, and its driver at the limit at some moment."""
        flags = np.zeros(len(self.levels), dtype=bool)
        if limited:
            flags[:] = [not isinstance(level, str) and self._keys[k] in limited
                        for k, level in enumerate(self.levels)]
        return flags

    @_replies
    def read_one(self, text: str):
        """``READ? r,c,V[,count]``: row r at V, column c at 0 V, all else floating; `count`
        readings (1 by default) of the row current back to back; then restore."""
        self._check_chars(text)
        parts = text.split(",")
        if len(parts) not in (3, 4):
            raise BoardError(102)
        row_text, col_text, volts = parts[:3]
        if not _INDEX.match(row_text) or not _INDEX.match(col_text):
            raise BoardError(101)
        row, col = int(row_text), int(col_text)
        if row >= self.rows or col >= self.cols:
            raise BoardError(103)
        level = self._level(volts)
        count = self._count(parts[3]) if len(parts) == 4 else 1
        saved = list(self.levels)
        self.levels = ["F"] * len(saved)
        self.levels[row] = level
        self.levels[self.rows + col] = 0.0
        self._apply_levels()
        self.world.advance(SETTLE)
        key = self._key(row)
        got = self.world.read([key], count, self.tint)
        currents = self._through_range(got.current[:, 0])
        flags = self._flags_during(got.limited_during)
        self.latched |= flags
        limited = flags[row]
        self.levels = saved
        self._apply_levels()
        self.world.advance(SETTLE)
        return f"{','.join(_fmt(i) for i in currents)};{'1' if limited else '0'}"

    # ------------------------------------------------------------------ pulses
    def _pulse_once(self, pulses: dict[int, float | str], width: float) -> None:
        levels = list(self.levels)
        for k, v in pulses.items():
            levels[k] = v
        self._apply_levels(levels)
        before = self.world.energy  # the board drives every line of its chip
        self._latch(self.world.advance_watching_limits(width))
        self.energy += self.world.energy - before
        self._apply_levels()

    @_replies
    def pulse(self, text: str):
        """``PULSE width,line=V,...``: listed lines at V for width; the rest keep their state."""
        self._check_chars(text)
        width_text, sep, rest = text.partition(",")
        if not sep:
            raise BoardError(102)
        width = _number(width_text)
        pulses = self._assignments(rest, pulse=True)
        if not 1e-7 <= width <= 1.0:
            raise BoardError(202)
        self._pulse_once(pulses, round(width / 1e-8) * 1e-8)

    @_replies
    def pulse_train(self, text: str):
        """``PTRAIN width,period,count,line=V,...``: count pulses, one every period."""
        self._check_chars(text)
        head = text.split(",", 3)
        if len(head) != 4:
            raise BoardError(102)
        width, period = _number(head[0]), _number(head[1])
        if not _INDEX.match(head[2]):
            raise BoardError(101 if not _NUMBER.match(head[2]) else 203)
        count = int(head[2])
        pulses = self._assignments(head[3], pulse=True)
        if not 1e-7 <= width <= 1.0:
            raise BoardError(202)
        if not (width + 1e-6 <= period <= 10.0) or not 1 <= count <= 10000:
            raise BoardError(203)
        width, period = round(width / 1e-8) * 1e-8, round(period / 1e-8) * 1e-8
        for _ in range(count):
            self._pulse_once(pulses, width)
            self.world.advance(period - width)

    def pulse_energy(self) -> str:
        """``ENERGY?``: energy the driven lines delivered during pulses since the last read
        (Σ V·I over every driven line, integrated over each pulse's width); reading clears it."""
        reply, self.energy = _fmt(self.energy), 0.0
        return reply

    def latched_limits(self) -> str:
        """``LIMIT?``: lines that hit ILIM since the last read; reading clears them."""
        r = self.rows
        reply = f"{self._flags(self.latched[:r])};{self._flags(self.latched[r:])}"
        self.latched[:] = False
        return reply
