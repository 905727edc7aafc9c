"""xbarlab's own array board: a DAC driver and a current sense on every row and column line,
reached over a serial port with the ASCII protocol of drivers/array_board.md (protocol version 1).

Every command gets exactly one reply line (`OK`, data, or `ERR <code>,"<message>"`), so the driver
always writes and reads in pairs; an `ERR` reply raises `InstrumentError` with the board's code and
message and the command, after removing that entry from the board's error queue. Everything the
board would refuse is refused here first, naming the field and the allowed range.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from xbarlab.interfaces import (
    BoardReading,
    BoardReadings,
    LineLevel,
    LineState,
    PulseCapability,
    Reading,
)

from .base import Instrument
from .errors import InstrumentError, UnexpectedReplyError
from .numbers import format_integer, format_number, parse_number
from .validators import InRange, IntegerInRange, Magnitude, OneOfNumbers, check_count

MAX_COMMAND_LENGTH = 4096
"""Characters per command before the terminator (array_board.md §1)."""
HARDWARE_VOLTAGE = 10.0
CURRENT_LIMIT = InRange(1e-7, 1e-2, "A")
CURRENT_RANGES = OneOfNumbers((1e-6, 1e-5, 1e-4, 1e-3, 1e-2), "A")
INTEGRATION_TIME = InRange(1e-5, 1.0, "s")
PULSE_WIDTH = InRange(1e-7, 1.0, "s")
PULSE_COUNT = IntegerInRange(1, 10000)
READING_COUNT = IntegerInRange(1, 10000)
GATE_VOLTAGE = InRange(0.0, 5.0, "V")
"""What a row's gate driver can set (array_board.md §6.6), realised to GATE_RESOLUTION."""
GATE_RESOLUTION = 1e-3
NUMBER_CHARACTERS = 14
"""Characters of one current in a reply (``-1.234567e-05,``), for the transfer time."""
SECONDS_PER_CHARACTER = 10 / 115200
"""Serial transfer time at 115200 8N1 (ten bits per character)."""
NOT_MEASURED = 9.91e37
OVERFLOW = 9.9e37
_ERROR_REPLY = re.compile(r'ERR (-?\d+),"(.*)"')
_STATE_TEXT = {LineState.FLOAT: "F", LineState.GROUND: "G"}
_IDLE_TEXT = {LineState.FLOAT: "FLOAT", LineState.GROUND: "GND"}


def model_pulse_capability(model: str = "ARRAYBOARD") -> PulseCapability:
    """What the board's line drivers can pulse (`PULSE`/`PTRAIN`, array_board.md): widths and
    counts of PULSE_WIDTH and PULSE_COUNT, periods up to 10 s, levels up to its hardware
    voltage and current limit."""
    return PulseCapability(PULSE_WIDTH.low, PULSE_WIDTH.high, PULSE_COUNT.high,
                           HARDWARE_VOLTAGE, CURRENT_LIMIT.high, max_period=10.0)


def _currents(texts: list[list[str]]) -> np.ndarray:
    """`_current` of every text, parsed as one array (the numbers of a reply; a text that is
    not a number is reported as `parse_number` reports it)."""
    try:
        values = np.array(texts, dtype=float)
    except ValueError:
        return np.array([[_current(text) for text in row] for row in texts])
    return np.where(values == NOT_MEASURED, math.nan,
                    np.where(values == OVERFLOW, math.inf, values))


def _current(text: str) -> float:
    value = parse_number(text)
    if value == NOT_MEASURED:
        return math.nan
    if value == OVERFLOW:
        return math.inf
    return value


def _flags(text: str, count: int, command: str, board: str) -> np.ndarray:
    if len(text) != count or set(text) - {"0", "1"}:
        raise UnexpectedReplyError(board, command, text, f"{count} flags of 0/1")
    return np.array([character == "1" for character in text], dtype=bool)


class ArrayBoard(Instrument):
    """An xbarlab array board on a serial port (`ASRL<n>::INSTR`)."""

    catalog_name = "array_board"
    timeout_ms = 2000
    identity_pattern = re.compile(r"^XBARLAB,(ARRAYBOARD),")
    expected_identity = "an xbarlab array board (*IDN? starting 'XBARLAB,ARRAYBOARD,')"

    def _prepare_resource(self, resource: Any) -> None:
        """115200 baud, 8N1, no flow control, on serial resources (array_board.md §1)."""
        if hasattr(resource, "baud_rate"):
            from pyvisa import constants

            resource.baud_rate = 115200
            resource.data_bits = 8
            resource.parity = constants.Parity.none
            resource.stop_bits = constants.StopBits.one
            resource.flow_control = constants.ControlFlow.none

    def _connected(self) -> None:
        self._set("*CLS")
        dimensions = self._query("DIM?")
        match = re.fullmatch(r"(\d+),(\d+)", dimensions)
        if match is None:
            raise UnexpectedReplyError(self.describe(), "DIM?", dimensions, "<rows>,<cols>")
        self._rows, self._columns = int(match.group(1)), int(match.group(2))
        self.voltage_limit = parse_number(self._query("VLIM?"))
        self.integration_time = parse_number(self._query("TINT?"))
        self.idle_state = self.idle_mode()

    # -- transport -----------------------------------------------------------------------------

    def _query(self, command: str, busy_seconds: float = 0.0) -> str:
        """Send one command and return its reply; an `ERR` reply raises `InstrumentError`."""
        if len(command) > MAX_COMMAND_LENGTH:
            raise ValueError(
                f"command is {len(command)} characters; the board accepts at most "
                f"{MAX_COMMAND_LENGTH} (set fewer lines per command)"
            )
        reply_chars = 16 * (self._rows + self._columns) if hasattr(self, "_rows") else 64
        transfer = (len(command) + reply_chars) * SECONDS_PER_CHARACTER
        with self.locked():
            reply = self.ask(command, extra_seconds=busy_seconds + transfer).strip()
            error = _ERROR_REPLY.fullmatch(reply)
            if error is not None:
                self.ask("ERR?")  # the same entry sits in the board's queue: remove it
                raise InstrumentError(self.describe(), int(error.group(1)), error.group(2), command)
        return reply

    def _set(self, command: str, busy_seconds: float = 0.0) -> None:
        reply = self._query(command, busy_seconds)
        if reply != "OK":
            raise UnexpectedReplyError(self.describe(), command, reply, "OK")

    def _next_error(self, extra_seconds: float = 0.0) -> tuple[int, str]:
        reply = self.ask("ERR?", extra_seconds).strip()
        match = re.fullmatch(r'(-?\d+),"(.*)"', reply)
        if match is None:
            raise UnexpectedReplyError(self.describe(), "ERR?", reply, '<code>,"<message>"')
        return int(match.group(1)), match.group(2)

    def error_count(self) -> int:
        """Entries waiting in the board's error queue."""
        return int(self._query("ERR:COUNT?"))

    # -- settings ------------------------------------------------------------------------------

    @property
    def rows(self) -> int:
        return self._rows

    @property
    def columns(self) -> int:
        return self._columns

    def set_voltage_limit(self, volts: float) -> None:
        """Largest |V| any line may be driven or pulsed to (1 mV to 10 V)."""
        volts = InRange(1e-3, HARDWARE_VOLTAGE, "V")("voltage limit", volts)
        self._set(f"VLIM {format_number(volts)}")
        self.voltage_limit = volts

    def set_current_limit(self, amperes: float) -> None:
        """Current limit of every line driver, 100 nA to 10 mA."""
        self._set(f"ILIM {format_number(CURRENT_LIMIT('current limit', amperes))}")

    def read_current_limit(self) -> float:
        """The line drivers' current limit in amperes, read back from the board."""
        return parse_number(self._query("ILIM?"))

    def current_limit(self) -> float:
        """The same as `read_current_limit` (the name older callers use)."""
        return self.read_current_limit()

    def set_current_range(self, amperes: float | None) -> None:
        """Fixed sense range (1e-6, 1e-5, 1e-4, 1e-3 or 1e-2 A), or autorange with None."""
        if amperes is None:
            self._set("IRANGE AUTO")
            return
        self._set(f"IRANGE {format_number(CURRENT_RANGES('current range', amperes))}")

    def current_range(self) -> float | None:
        """The fixed sense range in amperes, or None when autoranging."""
        reply = self._query("IRANGE?")
        return None if reply == "AUTO" else parse_number(reply)

    def set_integration_time(self, seconds: float) -> None:
        """Integration time of one current measurement, 10 µs to 1 s."""
        seconds = INTEGRATION_TIME("integration time", seconds)
        self._set(f"TINT {format_number(seconds)}")
        self.integration_time = seconds

    # -- line levels ---------------------------------------------------------------------------

    def _level_text(self, field: str, level: LineLevel) -> str:
        if type(level) is float and -self.voltage_limit <= level <= self.voltage_limit:
            return repr(level) if level else "0.0"  # format_number of a finite float
        if isinstance(level, LineState):
            return _STATE_TEXT[level]
        return format_number(Magnitude(self.voltage_limit, "V")(field, level))

    def _line(self, kind: str, index: int) -> str:
        count = self._rows if kind == "R" else self._columns
        if type(index) is not int or not 0 <= index < count:  # else: the checked int
            index = IntegerInRange(0, count - 1)("row" if kind == "R" else "column", index)
        return f"{kind}{index}"

    def _assignments(
        self,
        rows: Mapping[int, Any] | None,
        columns: Mapping[int, Any] | None,
        what: str,
        text: Callable[[str, Any], str],
        operation: str,
    ) -> str:
        """`R<i>=<value>,...,C<j>=<value>` for the given lines, each line index and value
        checked (`text(field, value)` formats a value); at least one line is required."""
        items = [
            f"{self._line(kind, index)}={text(f'{kind}{index} {what}', value)}"
            for kind, lines in (("R", rows or {}), ("C", columns or {}))
            for index, value in lines.items()
        ]
        if not items:
            raise ValueError(f"{operation} needs at least one row or column")
        return ",".join(items)

    def set_rows(self, levels: Sequence[LineLevel]) -> None:
        """Every row at once: a voltage, `LineState.FLOAT` or `LineState.GROUND` each."""
        levels = check_count("row levels", levels, self._rows, self._rows)
        texts = [self._level_text(f"row {k} level", level) for k, level in enumerate(levels)]
        self._set("VROW " + ",".join(texts))

    def set_columns(self, levels: Sequence[LineLevel]) -> None:
        """Every column at once."""
        levels = check_count("column levels", levels, self._columns, self._columns)
        texts = [self._level_text(f"column {k} level", level) for k, level in enumerate(levels)]
        self._set("VCOL " + ",".join(texts))

    def set_lines(
        self,
        rows: Mapping[int, LineLevel] | None = None,
        columns: Mapping[int, LineLevel] | None = None,
    ) -> None:
        """Only the given lines; the others keep their state."""
        items = self._assignments(rows, columns, "level", self._level_text, "set_lines")
        self._set("VSET " + items)

    def line_levels(self) -> tuple[list[LineLevel], list[LineLevel]]:
        """Present (row levels, column levels) as the board reports them."""
        def parse(text: str) -> LineLevel:
            return {"F": LineState.FLOAT, "G": LineState.GROUND}.get(text) or parse_number(text)

        rows = [parse(item) for item in self._query("VROW?").split(",")]
        columns = [parse(item) for item in self._query("VCOL?").split(",")]
        return rows, columns

    def idle_mode(self) -> LineState:
        """The idle state of the lines, read back from the board."""
        idle = self._query("IDLE?")
        if idle not in ("FLOAT", "GND"):
            raise UnexpectedReplyError(self.describe(), "IDLE?", idle, "FLOAT or GND")
        return LineState.FLOAT if idle == "FLOAT" else LineState.GROUND

    def _snapshot_state(self) -> dict[str, Any]:
        """Limits, range, idle mode and every line's level, for the run's snapshots."""
        rows, columns = self.line_levels()

        def level(value: LineLevel) -> str | float:
            return value.name.lower() if isinstance(value, LineState) else value

        return {
            "current_limit": {"value": self.read_current_limit(), "unit": "A"},
            "current_range": {"value": self.current_range(), "unit": "A"},
            "idle_mode": {"value": self.idle_mode().name.lower(), "unit": ""},
            "row_levels": {"value": [level(v) for v in rows], "unit": "V"},
            "column_levels": {"value": [level(v) for v in columns], "unit": "V"},
        }

    def float_all(self) -> None:
        self._set("FLOAT ALL")

    def ground_all(self) -> None:
        self._set("GND ALL")

    def set_idle_mode(self, state: LineState) -> None:
        """The idle state of every line; every line goes into it now and every gate to 0 V."""
        if state not in _IDLE_TEXT:
            raise ValueError(
                f"idle state = {state!r} is not one of the allowed values FLOAT, GROUND"
            )
        self._set(f"IDLE {_IDLE_TEXT[state]}")
        self.idle_state = state

    # -- measuring -----------------------------------------------------------------------------

    def measure_currents(self) -> BoardReading:
        """Every row and column current, integrated together for the integration time."""
        command = "MEAS:ALL?"
        reply = self._query(command, busy_seconds=self.integration_time)
        parts = reply.split(";")
        if len(parts) != 4:
            raise UnexpectedReplyError(self.describe(), command, reply, "4 ';'-separated parts")
        rows = [_current(text) for text in parts[0].split(",")]
        columns = [_current(text) for text in parts[1].split(",")]
        if (len(rows), len(columns)) != (self._rows, self._columns):
            raise UnexpectedReplyError(
                self.describe(), command, reply, f"{self._rows} + {self._columns} currents"
            )
        return BoardReading(
            row_currents=np.array(rows),
            column_currents=np.array(columns),
            row_compliance=_flags(parts[2], self._rows, command, self.describe()),
            column_compliance=_flags(parts[3], self._columns, command, self.describe()),
            timestamp=time.time(),
        )

    def _line_currents(self, command: str, count: int) -> tuple[np.ndarray, np.ndarray]:
        reply = self._query(command, busy_seconds=self.integration_time)
        currents, _, flags = reply.partition(";")
        values = [_current(text) for text in currents.split(",")]
        if len(values) != count:
            raise UnexpectedReplyError(self.describe(), command, reply, f"{count} currents")
        return np.array(values), _flags(flags, count, command, self.describe())

    def measure_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """(currents, compliance flags) of every row line."""
        return self._line_currents("MEAS:ROW?", self._rows)

    def measure_columns(self) -> tuple[np.ndarray, np.ndarray]:
        """(currents, compliance flags) of every column line."""
        return self._line_currents("MEAS:COL?", self._columns)

    def measure_repeated(
        self, count: int, rows: Sequence[int] = (), columns: Sequence[int] = ()
    ) -> BoardReadings:
        """`count` measurements back to back (one integration time each) of the given lines
        only, under their present levels (`MEAS:REP?`): one command and one reply for all."""
        count = READING_COUNT("reading count", count)
        rows, columns = tuple(rows), tuple(columns)
        names = [self._line("R", k) for k in rows] + [self._line("C", k) for k in columns]
        if not names:
            raise ValueError("measure_repeated needs at least one row or column")
        if len(set(names)) != len(names):
            raise ValueError(f"lines {names} name a line twice; each line at most once")
        command = f"MEAS:REP? {format_integer(count)}," + ",".join(names)
        transfer = count * len(names) * NUMBER_CHARACTERS * SECONDS_PER_CHARACTER
        reply = self._query(command, busy_seconds=count * self.integration_time + transfer)
        parts = reply.split(";")
        if len(parts) != count + 2:
            raise UnexpectedReplyError(self.describe(), command, reply[:200],
                                       f"{count} readings and two sets of flags")
        values = [part.split(",") for part in parts[:count]]
        if any(len(reading) != len(names) for reading in values):
            raise UnexpectedReplyError(self.describe(), command, reply[:200],
                                       f"{len(names)} currents per reading")
        currents = _currents(values).reshape(count, len(names))
        return BoardReadings(
            rows=rows,
            columns=columns,
            row_currents=currents[:, : len(rows)],
            column_currents=currents[:, len(rows):],
            row_compliance=_flags(parts[-2], self._rows, command, self.describe()),
            column_compliance=_flags(parts[-1], self._columns, command, self.describe()),
            timestamp=time.time(),
        )

    def read_one(self, row: int, column: int, voltage: float) -> Reading:
        """Row at `voltage`, column at 0 V, every other line floating; the row current."""
        command, volts = self._read_one_command(row, column, voltage)
        reply = self._query(command, busy_seconds=self.integration_time)
        current, _, flag = reply.partition(";")
        compliance = _flags(flag, 1, command, self.describe())[0]
        return Reading(volts, _current(current), bool(compliance), time.time())

    def read_one_repeated(self, row: int, column: int, voltage: float, count: int
                          ) -> list[Reading]:
        """`read_one` with `count` readings back to back under the same levels (one
        `READ?` with a count); each carries the compliance flag of them all."""
        count = READING_COUNT("reading count", count)
        command, volts = self._read_one_command(row, column, voltage)
        command += f",{format_integer(count)}"
        transfer = count * NUMBER_CHARACTERS * SECONDS_PER_CHARACTER
        reply = self._query(command, busy_seconds=count * self.integration_time + transfer)
        currents, _, flag = reply.partition(";")
        values = currents.split(",")
        if len(values) != count:
            raise UnexpectedReplyError(self.describe(), command, reply[:200],
                                       f"{count} currents")
        compliance = bool(_flags(flag, 1, command, self.describe())[0])
        when = time.time()
        return [Reading(volts, _current(text), compliance, when) for text in values]

    def _read_one_command(self, row: int, column: int, voltage: float) -> tuple[str, float]:
        """`READ? <row>,<col>,<V>` (each checked) and the voltage it reads at."""
        row_text = format_integer(IntegerInRange(0, self._rows - 1)("row", row))
        column_text = format_integer(IntegerInRange(0, self._columns - 1)("column", column))
        volts = Magnitude(self.voltage_limit, "V")("read voltage", voltage)
        return f"READ? {row_text},{column_text},{format_number(volts)}", volts

    def limit_flags(self) -> tuple[np.ndarray, np.ndarray]:
        """Lines that hit the current limit since the last call (rows, columns); clears them."""
        reply = self._query("LIMIT?")
        rows, _, columns = reply.partition(";")
        return (
            _flags(rows, self._rows, "LIMIT?", self.describe()),
            _flags(columns, self._columns, "LIMIT?", self.describe()),
        )

    # -- pulses --------------------------------------------------------------------------------

    def pulse_energy(self) -> float:
        """Energy (J) every driven line delivered during the pulses since the last call
        (`ENERGY?`: V x I integrated over each pulse's width); clears it."""
        return parse_number(self._query("ENERGY?"))

    def pulse(
        self,
        width: float,
        rows: Mapping[int, float] | None = None,
        columns: Mapping[int, float] | None = None,
        count: int = 1,
        period: float | None = None,
    ) -> None:
        """Drive the given lines at the given voltages for `width` seconds, `count` times one
        `period` apart (`PTRAIN`), or once (`PULSE`); the other lines keep their state."""
        width = PULSE_WIDTH("pulse width", width)
        count = PULSE_COUNT("pulse count", count)
        check = Magnitude(self.voltage_limit, "V")
        items = self._assignments(rows, columns, "pulse",
                                  lambda field, volts: format_number(check(field, volts)), "pulse")
        if count == 1 and period is None:
            self._set(f"PULSE {format_number(width)}," + items, busy_seconds=width)
            return
        if period is None:
            raise ValueError("pulse period is required for a train of more than one pulse")
        period = InRange(width + 1e-6, 10.0, "s")("pulse period", period)
        command = (
            f"PTRAIN {format_number(width)},{format_number(period)},{format_integer(count)},"
            + items
        )
        self._set(command, busy_seconds=count * period)

    # -- gates (1T1R chips) --------------------------------------------------------------------

    def set_gate(self, row: int, volts: float) -> None:
        """Gate voltage of board row `row`'s word line (0 to 5 V, realised to 1 mV): on a
        1T1R chip, how far that row's access transistors conduct (array_board.md §6.6)."""
        row_text = format_integer(IntegerInRange(0, self._rows - 1)("gate row", row))
        volts = GATE_VOLTAGE(f"row {row} gate voltage", volts)
        self._set(f"GATE {row_text},{format_number(volts)}")

    def set_all_gates(self, volts: float) -> None:
        """Every row's gate voltage at once (0 V: every access transistor off)."""
        self._set(f"GATE:ALL {format_number(GATE_VOLTAGE('gate voltage', volts))}")

    def gate(self, row: int) -> float:
        """Board row `row`'s gate voltage as the board realised it (V)."""
        row_text = format_integer(IntegerInRange(0, self._rows - 1)("gate row", row))
        return parse_number(self._query(f"GATE? {row_text}"))

    # -- life cycle ----------------------------------------------------------------------------

    def reset(self) -> None:
        """Power-on defaults: every line floating, VLIM 10 V, ILIM 1 mA, autorange, TINT 1 ms."""
        self._set("*RST")
        self.voltage_limit = HARDWARE_VOLTAGE
        self.integration_time = 1e-3
        self.idle_state = LineState.FLOAT

    def shutdown(self) -> None:
        """Every line into the idle state and every gate at 0 V (`IDLE`, §6.3 and §6.6)."""
        self.set_idle_mode(self.idle_state)
