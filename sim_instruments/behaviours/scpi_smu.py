"""SCPI source-measure units: Keithley 2400, Keithley 2450 (native SCPI), Keysight B2900.

All three share the channel model (terminal ``<instrument>.<ch>``, voltage or current source
with a limit, ranges, NPLC integration) and differ in how readings are buffered and reported:

- 2400: ``:READ?`` runs ``:TRIG:COUN`` points (through the source list in LIST mode) and
  returns the ``:FORM:ELEM`` elements of each point, in the fixed order V, I, R, TIME, STAT
  (status bit 3 = compliance);
- 2450: ``:READ?`` and ``:INIT`` (a list sweep or a trigger-model block program) store readings
  in ``defbuffer1``; ``:TRAC:DATA?`` returns the requested elements interleaved per point;
- B2900: ``:INIT (@n)`` runs ``:TRIG:COUN`` points (list or fixed, DC or pulsed, one per trigger
  period); ``:INIT:ACQ (@n)`` the acquire trigger alone (``:TRIG:ACQ:COUN`` readings at the
  present source, one per acquire timer period); ``:FETC:ARR? (@n)`` returns V, I per point;
  ``:MEAS? (@1,2)`` reads both channels from one operating point.

A reading beyond a fixed range is the model's overflow value (`OVERFLOW`). The averaging filter
(2400, 2450) makes each reading of several conversions (`AveragingFilter`); trigger delays and
timers (B2900), the source delay and arm timer (2400) and trigger timer 1 (2450 trigger model)
take virtual time. The 2400 and 2450 measure at the terminals they select (``:ROUT:TERM``): the
bench is cabled to one set (the bench file's ``terminals``, front by default), and with the other
set selected the lines see an open output relay and the instrument an open circuit. Autozero,
source ranges and automatic delays are accepted and change nothing simulated.
"""

from __future__ import annotations

import math

from ..device import OutOfRange
from .base import AveragingFilter, Behaviour, register

LINE_FREQUENCY = 50.0  # Hz
OVERFLOW = 9.9e37  # SCPI +/-INFinity: a reading beyond 105 % of a fixed range (2450, B2900)
NOT_A_NUMBER = 9.91e37  # SCPI "not measured" value
MAX_LIST_POINTS = 2500
WORLD_FUNCTION = {"VOLT": "V", "CURR": "I"}
"""The SCPI source function as the World names it (voltage or current source)."""


class ScpiSmu(Behaviour):
    """What the SCPI SMUs share: source, limits, ranges, output and one integrated reading."""

    CHANNELS: tuple[str, ...] = ("1",)
    CURRENT_RANGES: tuple[float, ...] = ()
    VOLTAGE_RANGES: tuple[float, ...] = ()

    def reset(self) -> None:
        super().reset()
        self.lists = {ch: {"VOLT": [], "CURR": []} for ch in self.channels}
        self.filters = {ch: AveragingFilter() for ch in self.channels}
        for ch in self.channels:
            self.world.set_terminal(
                self.key(ch),
                output=False,
                func="V",
                level=0.0,
                limit_i=self.dev.get("ilimit", ch),
                limit_v=self.dev.get("vlimit", ch),
            )
            self.push_off_state(None, ch)

    def key(self, ch: str) -> str:
        return f"{self.inst.name}.{ch}"

    # ------------------------------------------------------------------ settings -> World
    def push_source(self, value, ch: str) -> None:
        func = self.dev.get("func", ch)
        level = self.dev.get("volt_level" if func == "VOLT" else "curr_level", ch)
        self.world.set_terminal(self.key(ch), func=WORLD_FUNCTION[func],
                                level=self.protected(level, ch) if func == "VOLT" else level)

    def push_limits(self, value, ch: str) -> None:
        self.world.set_terminal(
            self.key(ch), limit_i=self.dev.get("ilimit", ch),
            limit_v=min(self.dev.get("vlimit", ch), self.protection(ch)))
        self.push_off_state(None, ch)

    # ------------------------------------------------------------------ over-voltage protection
    def protection(self, ch: str) -> float:
        """The most the output may reach, in volts (models without a protection: no bound)."""
        return math.inf

    def protected(self, level: float, ch: str) -> float:
        """A voltage level as the source puts it out: never beyond the protection."""
        bound = self.protection(ch)
        return max(-bound, min(bound, level))

    def set_protection(self, value, ch: str) -> None:
        """A new protection level bounds the voltage source and the I-source's compliance."""
        self.push_limits(None, ch)
        self.push_source(None, ch)

    def push_off_state(self, value, ch: str) -> None:
        """What the output does while off, from the off mode and the present ranges."""
        self.world.set_terminal(self.key(ch), off_state=self.off_state(ch))

    def off_state(self, ch: str) -> tuple[str, float] | None:
        """(func, limit) of the 0 V / 0 A source while off, or None for an open relay."""
        raise NotImplementedError

    def push_output(self, value: str, ch: str) -> None:
        self.world.set_terminal(self.key(ch), output=value == "ON" and self._cabled(ch))

    def _cabled(self, ch: str) -> bool:
        """Whether the terminals this channel measures at are the ones the bench is cabled to
        (always, on models with one set of terminals)."""
        return True

    def overflow(self, value: float) -> float:
        """The reading beyond a fixed range, with the sign of `value` (SCPI +/-INFinity)."""
        return math.copysign(OVERFLOW, value)

    # ------------------------------------------------------------------ filter, abort
    def filter_changed(self, value, ch: str) -> None:
        """A filter setting changed: the channel's filter follows its settings (fresh stack)."""
        prefix = self._filter_prefix(ch)
        self.filters[ch].set(enabled=self.dev.get(prefix + "filter", ch) == "ON",
                             count=self.dev.get(prefix + "filter_count", ch),
                             kind="repeat" if self.dev.get(prefix + "filter_type",
                                                           ch) == "REP" else "moving")

    def _filter_prefix(self, ch: str) -> str:
        """Settings-name prefix of the filter that applies now (per measure function on a
        2450)."""
        return ""

    def abort(self, ch: str = "1") -> None:
        """``:ABORt``: the trigger model back to idle (a trigger run here ends when it starts,
        so there is nothing left running to stop)."""

    def output_state(self, ch: str) -> str:
        return "1" if self.dev.get("output", ch) == "ON" else "0"

    def curr_autorange_state(self, ch: str) -> str:
        return "1" if self.dev.get("curr_autorange", ch) == "ON" else "0"

    def volt_autorange_state(self, ch: str) -> str:
        return "1" if self.dev.get("volt_autorange", ch) == "ON" else "0"

    @staticmethod
    def _range_for(value: float, ranges: tuple[float, ...]) -> float:
        """The smallest range that holds ``value`` (the instrument picks it, 'RANGe <n>')."""
        for r in ranges:
            if value <= r * (1 + 1e-9):
                return r
        raise OutOfRange(f"range {value} above the largest {ranges[-1]}")

    def set_curr_range(self, value: float, ch: str) -> None:
        """A fixed range is the smallest that holds the value, and turns autorange off."""
        self.dev.put("curr_range", self._range_for(value, self.CURRENT_RANGES), ch)
        self.dev.put("curr_autorange", "OFF", ch)
        self.push_off_state(None, ch)

    def set_volt_range(self, value: float, ch: str) -> None:
        self.dev.put("volt_range", self._range_for(value, self.VOLTAGE_RANGES), ch)
        self.dev.put("volt_autorange", "OFF", ch)
        self.push_off_state(None, ch)

    def tripped(self, ch: str) -> int:
        """``...:TRIP?``: 1 while the source is held at its limit."""
        return int(self.world.measure(self.key(ch), noise=False)[2])

    # ------------------------------------------------------------------ source lists
    def _list(self, func: str, text: str, ch: str, append: bool) -> None:
        try:
            values = [float(v) for v in text.split(",")]
        except ValueError:
            raise OutOfRange(f"list {text!r} is not numbers") from None
        span = 210.0 if func == "VOLT" else 1.05
        points = (self.lists[ch][func] if append else []) + values
        if any(abs(v) > span for v in values) or len(points) > MAX_LIST_POINTS:
            raise OutOfRange(f"{func} list beyond +-{span} or {MAX_LIST_POINTS} points")
        self.lists[ch][func] = points

    def list_volt(self, text: str, ch: str = "1") -> None:
        self._list("VOLT", text, ch, False)

    def list_volt_append(self, text: str, ch: str = "1") -> None:
        self._list("VOLT", text, ch, True)

    def list_curr(self, text: str, ch: str = "1") -> None:
        self._list("CURR", text, ch, False)

    def list_curr_append(self, text: str, ch: str = "1") -> None:
        self._list("CURR", text, ch, True)

    # ------------------------------------------------------------------ readings
    def _reading(self, ch: str) -> tuple[float, float, bool]:
        """(V, I, in compliance) of the terminal now, through the fixed ranges."""
        if not self._cabled(ch):
            level = self.world.terminal(self.key(ch)).level
            return self._through_ranges(*self._open_circuit(ch, [level])[0], ch)
        return self._through_ranges(*self.world.measure(self.key(ch)), ch)

    def _through_ranges(self, v: float, i: float, limited: bool, ch: str):
        """(V, I, limited) as the measure ranges report them: the current through the
        channel's meter (its sheet's error and resolution, `xbarlab.sim_instruments.meter`),
        overflow beyond 105 % of a fixed range."""
        get = self.dev.get
        fixed = get("curr_range", ch) if get("curr_autorange", ch) == "OFF" else None
        if fixed is not None and abs(i) > 1.05 * fixed:
            i = self.overflow(i)
        else:
            filter_ = self.filters[ch]
            i = self.meter.read_one(i, fixed, get("nplc", ch),
                                    filter_.count if filter_.active else 1)
        if get("volt_autorange", ch) == "OFF" and abs(v) > 1.05 * get("volt_range", ch):
            v = self.overflow(v)
        return v, i, limited

    def _integrate(self, ch: str, wait: float = 0.0) -> tuple[float, float, bool]:
        """One reading after `wait` and one integration (the filter's conversions, each one
        NPLC, when it is on)."""
        conversion = self.dev.get("nplc", ch) / LINE_FREQUENCY
        if not self._cabled(ch):
            self.world.advance(wait + conversion)
            return self._reading(ch)
        key = self.key(ch)
        if self.filters[ch].active:
            self.world.advance(wait)
            return self._through_ranges(*self._filtered(ch, key, [self.world.terminal(
                key).level], conversion)[0], ch)
        return self._through_ranges(*self.world.measure_after(key, wait + conversion), ch)

    def _filtered(self, ch: str, key: str, levels: list[float], dwell: float):
        """(V, I, limited) per reading at `levels`: the filter's conversions of each (one World
        sweep, each conversion `dwell` seconds), averaged as the filter does."""
        filter_ = self.filters[ch]
        levels = [self.protected(level, ch) for level in levels]
        return filter_.reduce(self.world.sweep(key, filter_.expand(levels), dwell), len(levels))

    def _open_circuit(self, ch: str, levels: list[float]) -> list[tuple[float, float, bool]]:
        """What a channel reads at terminals the bench is not cabled to: the level it sources
        (0 while off) and no current."""
        on = self.dev.get("output", ch) == "ON"
        func = self.world.terminal(self.key(ch)).func
        return [(level if on and func == "V" else 0.0, 0.0, False) for level in levels]

    def _source_points(self, ch: str, count: int) -> list[float | None]:
        """Levels of ``count`` triggered points: the list in LIST mode, else None (fixed)."""
        func = self.dev.get("func", ch)
        mode = self.dev.get("volt_mode" if func == "VOLT" else "curr_mode", ch)
        if mode == "LIST":
            points = self.lists[ch][func]
            if not points:
                raise OutOfRange("LIST mode without a source list")
            return [points[k % len(points)] for k in range(count)]
        return [None] * count

    def _run_points(self, ch: str, levels: list[float], dwell: float):
        """(V, I, limited, time) per point, each level held ``dwell`` s before its reading.

        A voltage source runs as one World sweep (one batched solve when no cell can switch);
        a current source steps point by point.
        """
        key = self.key(ch)
        start = self.world.clock
        if not self._cabled(ch):
            self.world.advance(dwell * len(levels))
            raw = self._open_circuit(ch, levels)
        elif self.world.terminal(key).func == "V":
            raw = self._filtered(ch, key, levels, dwell)
        else:
            raw = []
            for level in levels:
                self.world.set_terminal(key, level=level)
                self.world.advance(dwell)
                raw.append(self.world.measure(key))
        return [(*self._through_ranges(*r, ch), start + (k + 1) * dwell) for k, r in enumerate(raw)]


class FrontRear:
    """Keithley 2400/2450 terminals: the selected set (``:ROUT:TERM``) reaches the crossbar only
    when it is the set the bench is cabled to (the bench file's ``terminals``, front by
    default); the other set leaves the lines with an open output relay."""

    dev: object
    inst: object

    def _cabled(self, ch: str) -> bool:
        wired = "REAR" if self.inst.terminals == "rear" else "FRON"
        return self.dev.get("terminals", ch) == wired

    def push_terminals(self, value, ch: str) -> None:
        """Other terminals selected: the output (and its off state) moves with them."""
        self.push_output(self.dev.get("output", ch), ch)
        self.push_off_state(None, ch)


@register("scpi_2400")
class Keithley2400(FrontRear, ScpiSmu):
    """Keithley 2400: ``:READ?`` is the buffered operation (list sweeps in one round trip)."""

    CURRENT_RANGES = (1.05e-6, 1.05e-5, 1.05e-4, 1.05e-3, 1.05e-2, 1.05e-1, 1.05)
    VOLTAGE_RANGES = (0.21, 2.1, 21.0, 210.0)
    ELEMENTS = ("VOLT", "CURR", "RES", "TIME", "STAT")
    COMPLIANCE_BIT = 8  # status word bit 3

    def overflow(self, value: float) -> float:
        """The 2400 returns 9.91E+37 for a reading beyond its range (User's Manual ch. 7,
        Maximum readings)."""
        return NOT_A_NUMBER

    def off_state(self, ch: str) -> tuple[str, float] | None:
        """NORM: 0 V at 0.5 % of the current range; ZERO: 0 V, compliance unchanged; HIMP:
        relay open; GUAR: 0 A at 0.5 % of the voltage range (User's Manual p. 18-59). At
        terminals the bench is not cabled to, the lines see an open relay."""
        get = self.dev.get
        if not self._cabled(ch):
            return None
        return {
            "NORM": ("V", 0.005 * get("curr_range", ch)),
            "ZERO": ("V", get("ilimit", ch)),
            "HIMP": None,
            "GUAR": ("I", 0.005 * get("volt_range", ch)),
        }[get("off_mode", ch)]

    PROTECTION_LEVELS = (20.0, 40.0, 60.0, 80.0, 100.0, 120.0, 160.0)
    NO_PROTECTION = 210.0

    def set_protection(self, value: float, ch: str) -> None:
        """The level the manual's table selects (p. 18-80): below 20 V the lowest, between two
        levels the lower, above 160 V none (210 V); for either sign."""
        magnitude = abs(value)
        level = (self.NO_PROTECTION if magnitude > self.PROTECTION_LEVELS[-1] else
                 max([self.PROTECTION_LEVELS[0]]
                     + [level for level in self.PROTECTION_LEVELS if level <= magnitude]))
        self.dev.put("protection", level, ch)
        super().set_protection(level, ch)

    def protection(self, ch: str) -> float:
        return self.dev.get("protection", ch)

    def set_elements(self, value: str, ch: str) -> None:
        names = value.split(",")
        if not names or any(n not in self.ELEMENTS for n in names) or len(set(names)) != len(names):
            raise OutOfRange(f":FORM:ELEM {value}")

    def read(self) -> str:
        """``:READ?``: ``:ARM:COUN`` x ``:TRIG:COUN`` points, each after the source delay and
        one integration; with the arm layer on its timer (``:ARM:SOUR TIM``) the arm events,
        and so the readings, come one timer interval apart. In the 2430's pulse mode each
        point is one pulse (`_pulse_points`)."""
        ch = "1"
        if self.dev.get("output", ch) != "ON":
            self.dev.push_error("output_off")
            return None
        wanted = set(self.dev.get("elements", ch).split(","))
        count = self.dev.get("arm_count", ch) * self.dev.get("trigger_count", ch)
        if count > MAX_LIST_POINTS:
            raise OutOfRange(f"arm count x trigger count = {count} > {MAX_LIST_POINTS}")
        level_now = self.world.terminal(self.key(ch)).level
        levels = [
            level_now if level is None else level
            for level in self._source_points(ch, count)
        ]
        dwell = self.dev.get("source_delay", ch) + self.dev.get("nplc", ch) / LINE_FREQUENCY
        if self.dev.get("arm_source", ch) == "TIM":
            dwell = max(dwell, self.dev.get("arm_timer", ch))
        if "shape" in self.dev.settings and self.dev.get("shape", ch) == "PULS":
            points = self._pulse_points(ch, levels)
        else:
            points = self._run_points(ch, levels, dwell)
        values = []
        for v, i, limited, when in points:
            measured = abs(v) < NOT_A_NUMBER and 0.0 < abs(i) < NOT_A_NUMBER
            row = {
                "VOLT": v,
                "CURR": i,
                "RES": v / i if measured else NOT_A_NUMBER,
                "TIME": when,
                "STAT": float(self.COMPLIANCE_BIT if limited else 0),
            }
            values += [row[e] for e in self.ELEMENTS if e in wanted]
        self.push_source(None, ch)  # after a list the source returns to its DC level
        return ",".join(f"{x:+.6E}" for x in values)

    def _pulse_points(self, ch: str, levels: list[float]):
        """Model 2430 pulse mode: each point holds its level for the pulse width and is read
        at its end, then the output rests at 0 (the normal off state, the only one in pulse
        mode) for the pulse delay (User's Manual ch. 18 :SOURce:PULSe)."""
        key = self.key(ch)
        width, rest = self.dev.get("pulse_width", ch), self.dev.get("pulse_delay", ch)
        points = []
        for level in levels:
            self.world.set_terminal(key, level=self.protected(level, ch))
            self.world.advance(width)
            points.append((*self._reading(ch), self.world.clock))
            self.world.set_terminal(key, level=0.0)
            self.world.advance(rest)
        return points


@register("scpi_2450")
class Keithley2450(FrontRear, ScpiSmu):
    """Keithley 2450 native SCPI: readings go to ``defbuffer1``; trigger-model programs run,
    trigger timer 1 among their events."""

    CURRENT_RANGES = (1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
    VOLTAGE_RANGES = (0.02, 0.2, 2.0, 20.0, 200.0)

    def reset(self) -> None:
        super().reset()
        self.trace: list[tuple[float, float, float]] = []  # (reading, source value, time)
        self.blocks: dict[int, tuple] = {}
        self.program = "none"  # "sweep" or "blocks": what :INIT runs
        self.sweep_func = "VOLT"
        self.sweep_delay = 0.0
        self.sweep_levels: list[float] = []
        self.timer_events: list[float] = []  # times trigger timer 1 fires, still to be waited on

    def protection(self, ch: str) -> float:
        word = self.dev.get("protection", ch)
        return math.inf if word == "NONE" else float(word.removeprefix("PROT"))

    def _filter_prefix(self, ch: str) -> str:
        """The filter of the function measured now (kept per measure function)."""
        return "curr_" if self.dev.get("sense", ch) == "CURR" else "volt_"

    def off_state(self, ch: str) -> tuple[str, float] | None:
        """NORM: 0 V at 10 % of the current range; ZERO: 0 V at the full current range; HIMP:
        relay open; GUAR: 0 A at 10 % of the voltage range (Reference Manual p. 6-32, 8-139).
        At terminals the bench is not cabled to, the lines see an open relay."""
        get = self.dev.get
        if not self._cabled(ch):
            return None
        return {
            "NORM": ("V", 0.1 * get("curr_range", ch)),
            "ZERO": ("V", get("curr_range", ch)),
            "HIMP": None,
            "GUAR": ("I", 0.1 * get("volt_range", ch)),
        }[get("off_mode", ch)]

    def clear_trace(self) -> None:
        self.trace = []

    def _store(self, ch: str) -> tuple[float, float, float]:
        v, i, _ = self._integrate(ch)
        func = self.dev.get("func", ch)
        reading = i if self.dev.get("sense", ch) == "CURR" else v
        source = self.dev.get("volt_level" if func == "VOLT" else "curr_level", ch)
        state = self.world.terminal(self.key(ch))
        entry = (reading, state.level if state.output else source, self.world.clock)
        self.trace.append(entry)
        return entry

    def _elements(self, entry, names: str) -> list[float]:
        columns = {"READ": 0, "SOUR": 1, "REL": 2}
        picked = [n.strip() for n in names.split(",")]
        if any(n not in columns for n in picked):
            raise OutOfRange(f"buffer elements {names}")
        return [entry[columns[n]] for n in picked]

    def read_elements(self, names: str) -> str:
        """``:READ? "defbuffer1",<elements>``: one reading, stored and returned."""
        if self.dev.get("output", "1") != "ON":
            self.dev.push_error("output_off")
            return None
        entry = self._store("1")
        return ",".join(f"{x:.6E}" for x in self._elements(entry, names))

    def trace_data(self, start: int, end: int, names: str) -> str:
        if not 1 <= start <= end <= len(self.trace):
            raise OutOfRange(f":TRAC:DATA? {start},{end} of {len(self.trace)} readings")
        values = []
        for entry in self.trace[start - 1 : end]:
            values += self._elements(entry, names)
        return ",".join(f"{x:.6E}" for x in values)

    # ------------------------------------------------------------------ sweeps and programs
    def _sweep(self, func: str, start: int, delay: str) -> None:
        try:
            seconds = float(delay)
        except ValueError:
            raise OutOfRange(f"sweep delay {delay!r}") from None
        if start != 1 or not (seconds == -1 or 0 <= seconds <= 1e4):
            raise OutOfRange(f":SOUR:SWE:{func}:LIST {start},{delay}")
        if not self.lists["1"][func]:
            raise OutOfRange(f":SOUR:SWE:{func}:LIST without a source list")
        self.sweep_func, self.sweep_delay, self.program = func, max(seconds, 0.0), "sweep"
        self.sweep_levels = list(self.lists["1"][func])

    def sweep_volt_linear(self, start: str, stop: str, points: int, delay: str) -> None:
        """``:SOUR:SWE:VOLT:LIN <start>,<stop>,<points>,<delay>``: `points` (2 .. 1e6) evenly
        spaced levels, each held `delay` seconds before its reading."""
        try:
            first, last, seconds = float(start), float(stop), float(delay)
        except ValueError:
            raise OutOfRange(f":SOUR:SWE:VOLT:LIN {start},{stop},{points},{delay}") from None
        if not 2 <= points <= 1_000_000 or max(abs(first), abs(last)) > 210.0 or not (
                seconds == -1 or 0 <= seconds <= 1e4):
            raise OutOfRange(f":SOUR:SWE:VOLT:LIN {start},{stop},{points},{delay}")
        self.sweep_levels = [first + (last - first) * k / (points - 1) for k in range(points)]
        self.sweep_func, self.sweep_delay, self.program = "VOLT", max(seconds, 0.0), "sweep"

    def sweep_volt_list(self, start: int, delay: str) -> None:
        self._sweep("VOLT", start, delay)

    def sweep_curr_list(self, start: int, delay: str) -> None:
        self._sweep("CURR", start, delay)

    def load_empty(self) -> None:
        """``:TRIG:LOAD "Empty"``: an empty trigger model to fill with blocks."""
        self.blocks, self.program = {}, "blocks"

    def _block(self, n: int, block: tuple) -> None:
        if not 1 <= n <= 63:
            raise OutOfRange(f"trigger block {n}")
        self.blocks[n] = block

    def block_source(self, n: int, state: str) -> None:
        if state not in ("ON", "OFF"):
            raise OutOfRange(f"source state {state}")
        self._block(n, ("source", state == "ON"))

    def block_delay(self, n: int, seconds: str) -> None:
        try:
            value = float(seconds)
        except ValueError:
            raise OutOfRange(f"delay {seconds!r}") from None
        if not 0 <= value <= 1e4:
            raise OutOfRange(f"delay {value}")
        self._block(n, ("delay", value))

    def block_branch(self, n: int, count: int, target: int) -> None:
        if count < 1 or not 1 <= target < n:
            raise OutOfRange(f"branch counter {n},{count},{target}")
        self._block(n, ("branch", count, target))

    def block_measure(self, n: int) -> None:
        self._block(n, ("measure",))

    def block_notify(self, n: int, notify: int) -> None:
        """``:TRIG:BLOC:NOT <block>, <id>``: the block generates NOTify<id>."""
        if not 1 <= notify <= 8:
            raise OutOfRange(f"notify id {notify}")
        self._block(n, ("notify", notify))

    def block_wait(self, n: int, event: str) -> None:
        """``:TRIG:BLOC:WAIT <block>, TIM1``: wait for trigger timer 1 (the only event
        simulated; others are refused as data errors)."""
        if event.strip() != "TIM1":
            raise OutOfRange(f"wait event {event!r} (only TIM1 is simulated)")
        self._block(n, ("wait",))

    def _notify(self, notify: int, ch: str) -> None:
        """NOTify<id>: starts trigger timer 1 when the timer is on and starts on it: events
        ``:TRIG:TIM1:DEL`` apart, ``:TRIG:TIM1:COUN`` of them."""
        get = self.dev.get
        if get("timer_state") == "ON" and get("timer_stimulus") == f"NOT{notify}":
            delay, count = get("timer_delay"), get("timer_count")
            self.timer_events = [self.world.clock + k * delay for k in range(1, count + 1)]

    def _wait_for_timer(self) -> None:
        """Until trigger timer 1's next event; none left: the model would wait for ever."""
        if not self.timer_events:
            raise OutOfRange("the trigger model waits for trigger timer 1, which will not fire")
        when = self.timer_events.pop(0)
        self.world.advance(max(when - self.world.clock, 0.0))

    def initiate(self) -> None:
        """``:INIT``: run the last loaded program (list sweep or block program) to its end."""
        ch, key = "1", self.key("1")
        if self.program == "sweep":
            self.dev.put("output", "ON", ch)
            self.world.set_terminal(key, output=self._cabled(ch),
                                    func=WORLD_FUNCTION[self.sweep_func])
            levels = self.sweep_levels
            dwell = self.sweep_delay + self.dev.get("nplc", ch) / LINE_FREQUENCY
            sense_current = self.dev.get("sense", ch) == "CURR"
            for level, (v, i, _, when) in zip(
                levels, self._run_points(ch, levels, dwell), strict=True
            ):
                self.trace.append((i if sense_current else v, level, when))
            self.push_source(None, ch)
        elif self.program == "blocks":
            self._run_blocks(ch, key)

    def _run_blocks(self, ch: str, key: str) -> None:
        counters: dict[int, int] = {}
        pc = 1
        last = max(self.blocks, default=0)
        while pc <= last:
            block = self.blocks.get(pc)
            pc += 1
            if block is None:
                continue
            if block[0] == "source":
                self.dev.put("output", "ON" if block[1] else "OFF", ch)
                self.world.set_terminal(key, output=block[1] and self._cabled(ch))
            elif block[0] == "delay":
                self.world.advance(block[1])
            elif block[0] == "measure":
                self._store(ch)
            elif block[0] == "notify":
                self._notify(block[1], ch)
            elif block[0] == "wait":
                self._wait_for_timer()
            else:  # branch on counter: jump back until the block has run `count` times
                here = pc - 1
                counters[here] = counters.get(here, 0) + 1
                if counters[here] < block[1]:
                    pc = block[2]


@register("scpi_b2900")
class KeysightB2900(ScpiSmu):
    """Keysight B2900: per-channel trigger runs (DC or pulsed, list or fixed), FETC:ARR?."""

    CHANNELS = ("1", "2")
    CURRENT_RANGES = (1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 1.5, 3.0)
    VOLTAGE_RANGES = (0.2, 2.0, 20.0, 200.0)

    def reset(self) -> None:
        super().reset()
        self.arrays = {ch: [] for ch in self.channels}  # (V, I) per point

    def off_state(self, ch: str) -> tuple[str, float] | None:
        """NORM and HIZ open the output relay; ZERO holds 0 V (User's Guide table 6-1)."""
        return ("V", self.dev.get("ilimit", ch)) if self.dev.get("off_mode", ch) == "ZERO" else None

    def measure(self, ch: str) -> str:
        """``:MEAS? (@n)``: one spot reading after the acquire delay, V and I
        (``:FORM:ELEM:SENS VOLT,CURR``)."""
        v, i, _ = self._integrate(ch, self.dev.get("acq_delay", ch))
        return f"{v:+.6E},{i:+.6E}"

    def measure_both(self) -> str:
        """``:MEAS? (@1,2)``: both channels integrate together (the longer acquire delay and
        NPLC) and are read from one operating point: V1,I1,V2,I2."""
        get = self.dev.get
        wait = max(get("acq_delay", ch) + get("nplc", ch) / LINE_FREQUENCY for ch in "12")
        levels = {self.key(ch): [self.world.terminal(self.key(ch)).level] for ch in "12"}
        raw = self.world.sweep_together(levels, wait)
        values = [self._through_ranges(*raw[self.key(ch)][0], ch)[:2] for ch in "12"]
        return ",".join(f"{x:+.6E}" for pair in values for x in pair)

    def sync_acquire(self, value, ch: str) -> None:
        """``:TRIG<c>[:ALL]:...`` sets the acquire layer too (source, timer, count)."""
        get = self.dev.get
        self.dev.put("acq_source", get("trigger_source", ch), ch)
        self.dev.put("acq_period", get("trigger_period", ch), ch)
        self.dev.put("acq_count", get("trigger_count", ch), ch)

    def initiate_acquire(self, ch: str) -> None:
        """``:INIT:ACQ (@n)``: the acquire action alone, the source as it is: ``:TRIG:ACQ:COUN``
        readings one acquire-timer period apart (``:TRIG:ACQ:SOUR TIM``; at least one
        integration each) after the acquire delay; V, I per reading for ``:FETC:ARR?``."""
        get = self.dev.get
        key = self.key(ch)
        conversion = get("nplc", ch) / LINE_FREQUENCY
        period = get("acq_period", ch) if get("acq_source", ch) == "TIM" else 0.0
        self.world.advance(get("acq_delay", ch))
        levels = [self.world.terminal(key).level] * get("acq_count", ch)
        readings = self._run_points(ch, levels, max(period, conversion))
        self.arrays[ch] = [(v, i) for v, i, _, _ in readings]

    def initiate(self, ch: str) -> None:
        """``:INIT (@n)``: ``:TRIG:COUN`` points, one per trigger period.

        DC: each level is held for one trigger period (at least one integration) and read at
        its end, as one World sweep. Pulsed (``:FUNC:SHAP PULS``): the
        output rests at the DC level, steps to the point's level after the pulse delay for the
        pulse width, and the reading integrates over the aperture from the acquire delay
        (`_pulse_points`). The point's level is the
        list value (LIST mode) or the triggered level (``:VOLT:TRIG``).
        """
        get = self.dev.get
        key = self.key(ch)
        func = get("func", ch)
        base = get("volt_level" if func == "VOLT" else "curr_level", ch)
        period = get("trigger_period", ch) if get("trigger_source", ch) == "TIM" else 0.0
        self.arrays[ch] = []
        if get("shape", ch) != "PULS":
            levels, dwell = self._dc_points(ch)
            readings = self._run_points(ch, levels, dwell)
            self.arrays[ch] = [(v, i) for v, i, _, _ in readings]
            self.world.set_terminal(key, level=base)
            return
        self._pulse_points([ch], period)

    def _pulse_points(self, channels: list[str], period: float) -> None:
        """The pulsed points of `channels` (started by one trigger: their counts, pulse and
        acquire timing must agree), each channel's (V, I) per point into its array."""
        get = self.dev.get
        for ch in channels:
            self.arrays[ch] = []
        points = {}
        for ch in channels:
            func = get("func", ch)
            triggered = get("volt_triggered" if func == "VOLT" else "curr_triggered", ch)
            points[ch] = [triggered if level is None else level
                          for level in self._source_points(ch, get("trigger_count", ch))]
        for k in range(len(points[channels[0]])):
            got = self._pulse_point({ch: points[ch][k] for ch in channels}, period)
            for ch, (v, i, limited) in got.items():
                self.arrays[ch].append(self._through_ranges(v, i, limited, ch)[:2])

    def _pulse_point(self, levels: dict[str, float], period: float):
        """One pulsed point of each channel of `levels` from one trigger: each output at its
        DC (base) level, at its pulse level from the pulse delay for the pulse width; the
        acquisition from the acquire delay for the aperture (NPLC / line frequency), wherever
        it falls; the point lasts the trigger period (or until both are over). Channel ->
        (V, I, limited) averaged over the aperture (`World.integrate_together`)."""
        get = self.dev.get
        timing = {(get("pulse_delay", ch), get("pulse_width", ch), get("acq_delay", ch),
                   get("nplc", ch)) for ch in levels}
        if len(timing) != 1:
            raise OutOfRange("pulses of two channels with different pulse or acquire timing "
                             "are not simulated")
        start, width, acquire, nplc = timing.pop()
        aperture = nplc / LINE_FREQUENCY
        keys = {ch: self.key(ch) for ch in levels}
        base = {ch: get("volt_level" if get("func", ch) == "VOLT" else "curr_level", ch)
                for ch in levels}
        times = sorted({0.0, start, start + width, acquire, acquire + aperture})
        sums = {ch: [0.0, 0.0, False] for ch in levels}
        for a, b in zip(times, times[1:], strict=False):
            for ch, level in levels.items():
                self.world.set_terminal(keys[ch], level=level if start <= a < start + width
                                        else base[ch])
            if acquire <= a < acquire + aperture:
                got = self.world.integrate_together(list(keys.values()), b - a)
                for ch, key in keys.items():
                    v, i, at_limit = got[key]
                    sums[ch][0] += v * (b - a)
                    sums[ch][1] += i * (b - a)
                    sums[ch][2] |= at_limit
            else:
                self.world.advance(b - a)
        for ch in levels:
            self.world.set_terminal(keys[ch], level=base[ch])
        self.world.advance(max(period - times[-1], 0.0))
        return {ch: (v / aperture, i / aperture, limited) for ch, (v, i, limited) in sums.items()}

    def set_aperture(self, value: float, ch: str) -> None:
        """``:SENS:CURR:APER``: the integration time in seconds is NPLC / line frequency."""
        self.dev.put("nplc", value * LINE_FREQUENCY, ch)

    def _dc_points(self, ch: str) -> tuple[list[float], float]:
        """Levels of a DC run (list values in LIST mode, else the triggered level) and how
        long each is held: one trigger period, at least one integration."""
        get = self.dev.get
        func = get("func", ch)
        triggered = get("volt_triggered" if func == "VOLT" else "curr_triggered", ch)
        period = get("trigger_period", ch) if get("trigger_source", ch) == "TIM" else 0.0
        points = self._source_points(ch, get("trigger_count", ch))
        levels = [triggered if level is None else level for level in points]
        delays = get("tran_delay", ch) + get("acq_delay", ch)
        return levels, max(period, delays + get("nplc", ch) / LINE_FREQUENCY)

    def initiate_both(self) -> None:
        """``:INIT (@1,2)``: both channels start on the same trigger and step together, one
        point per trigger period; every point applies both levels at once (one World sweep of
        both terminals), each read at its end. Pulsed (``:FUNC:SHAP PULS`` on both): both
        pulse on each trigger and integrate over the same aperture (`_pulse_points`).
        Simulated for voltage runs of equal count, trigger timing and shape (data error
        otherwise)."""
        get = self.dev.get
        timing = {(get("trigger_count", ch), get("trigger_source", ch),
                   get("trigger_period", ch) if get("trigger_source", ch) == "TIM" else None,
                   get("shape", ch), get("func", ch)) for ch in self.channels}
        if len(timing) != 1 or next(iter(timing))[4] != "VOLT":
            raise OutOfRange(":INIT (@1,2) of channels with different counts, timing or shape")
        if next(iter(timing))[3] == "PULS":
            period = get("trigger_period", "1") if get("trigger_source", "1") == "TIM" else 0.0
            self._pulse_points(list(self.channels), period)
            return
        runs = {ch: self._dc_points(ch) for ch in self.channels}
        dwell = max(dwell for _, dwell in runs.values())
        raw = self.world.sweep_together({self.key(ch): levels for ch, (levels, _) in runs.items()},
                                        dwell)
        for ch in self.channels:
            self.arrays[ch] = [self._through_ranges(*r, ch)[:2] for r in raw[self.key(ch)]]
            self.world.set_terminal(self.key(ch), level=get("volt_level", ch))

    def fetch_array(self, ch: str) -> str:
        if not self.arrays[ch]:
            raise OutOfRange(f":FETC:ARR? (@{ch}) with no data")
        return ",".join(f"{v:+.6E},{i:+.6E}" for v, i in self.arrays[ch])
