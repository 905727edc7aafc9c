"""Keithley 2600B-series SMU (TSP): smua/smub terminals, measurements, buffers, pulses, sweeps.

Numbers print the way TSP's ``print`` does: ``%e`` style with ``format.asciiprecision``
significant digits (default 6, e.g. ``1.00000e+00``). A measurement integrates for
NPLC / line frequency of virtual time, during which the cells see the applied bias; the
averaging filter makes a reading of several such conversions (`AveragingFilter`), and the
measure delay (and, in sweeps, the source delay) waits before it (``DELAY_AUTO``: no wait is
simulated). Trigger timer 1 can pace a sweep's measure layer (timed acquisitions, the source as
it is). Autozero is accepted and changes nothing simulated.
"""

from __future__ import annotations

import math
import re

from ..device import OutOfRange, UnknownCommand
from .base import AveragingFilter, Behaviour, register

LINE_FREQUENCY = 50.0  # Hz; print(localnode.linefreq) -> 5.00000e+01 on the logged unit [HW]
OVERFLOW = 9.9e37  # reading beyond the fixed measure range (SCPI overflow convention)
COMPLIANCE_STATUS = 64  # bufferVar.statuses bit 6: source in compliance (drivers/commands.toml)
_BUFFER_FIELD = re.compile(r"^smu([ab])\.nvbuffer([12])\.(readings|statuses)$")
_BUFFER_COUNT = re.compile(r"^smu([ab])\.nvbuffer([12])\.n$")
# smuX.trigger.<layer>.stimulus = <event>: the layers and events the lockstep sweep uses
STIMULUS_LAYERS = ("source", "measure", "endpulse")
_EVENT = re.compile(r"^smu([ab])\.trigger\.(SOURCE_COMPLETE|MEASURE_COMPLETE)_EVENT_ID$")
TIMER_EVENT = "trigger.timer[1].EVENT_ID"
TIMER2_EVENT = "trigger.timer[2].EVENT_ID"
_ARMED = re.compile(r"^smu([ab])\.trigger\.ARMED_EVENT_ID$")
_LINE_EVENT = re.compile(r"^digio\.trigger\[(\d+)\]\.EVENT_ID$")
DIGIO_LINES = 14  # DIGITAL I/O trigger lines 1-14 [M 2600B Digital I/O]
# two channels in lockstep: (channel, layer) -> event it waits for, as (leader, follower) roles
LOCKSTEP = {
    ("follower", "source"): ("leader", "SOURCE_COMPLETE"),
    ("leader", "measure"): ("follower", "SOURCE_COMPLETE"),
    ("leader", "endpulse"): ("follower", "MEASURE_COMPLETE"),
}


@register("tsp_smu")
class TspSmu(Behaviour):
    """The 2600B channel model; terminal keys are ``<instrument>.a`` and ``<instrument>.b``."""

    CHANNELS = ("a", "b")

    def reset(self) -> None:
        super().reset()
        # nvbuffer1 holds currents, nvbuffer2 voltages; each entry (reading, status bits)
        self.buffers = {(ch, n): [] for ch in self.channels for n in (1, 2)}
        self.sweep_points = {ch: [] for ch in self.channels}
        self.sweep_func = {ch: "V" for ch in self.channels}
        self.sweep_buffers = {ch: () for ch in self.channels}
        self.idle_after_sweep = {ch: True for ch in self.channels}
        self.stimuli: dict[tuple[str, str], tuple[str, str] | None] = {}
        self.armed: set[str] = set()
        self.filters = {ch: AveragingFilter() for ch in self.channels}
        self.source_action = {ch: False for ch in self.channels}
        self.timer = {"passthrough": False, "stimulus": None}  # trigger.timer[1]
        self.timer2_started_by_timer1 = False  # trigger.timer[2].stimulus
        self.timer2_line: int | None = None  # trigger.timer[2].stimulus = digio.trigger[N]...
        # digital I/O trigger lines: mode (BYPASS or FALLING) and whether timer 1's event
        # drives an output trigger (digio.trigger[N].stimulus); the channels armed on a line
        self.digio = {n: {"mode": "BYPASS", "out": False} for n in range(1, DIGIO_LINES + 1)}
        self.armed_on_line: dict[int, set[str]] = {}
        self.idle_after_pulse = {ch: False for ch in self.channels}  # endpulse.action
        for ch in self.channels:
            self.reset_channel(ch)

    def reset_channel(self, ch: str) -> None:
        """``smuX.reset()``: output off, DC volts at 0 V, default limits and ranges, trigger
        stimuli immediate and the trigger model idle."""
        for prop in self.dev.settings.values():
            prop.values.pop(ch, None)
        for layer in STIMULUS_LAYERS:
            self.stimuli[(ch, layer)] = None
        self.armed.discard(ch)
        self._disarm_line(ch)
        self.filters[ch] = AveragingFilter()
        self.source_action[ch] = False
        self.world.set_terminal(
            self.key(ch),
            output=False,
            func="V",
            level=0.0,
            limit_i=self.dev.get("limiti", ch),
            limit_v=self.dev.get("limitv", ch),
        )
        self._push_off_state(ch)

    # ------------------------------------------------------------------ output-off state
    OFF_MODES = {0: "NORMAL", 1: "ZERO", 2: "HIGH_Z"}  # smuX.OUTPUT_NORMAL = 0, ...

    def _push_off_state(self, ch: str) -> None:
        """NORMAL: 0 V limited to offlimiti; ZERO: 0 V with limiti; HIGH_Z: relay open."""
        mode = self.OFF_MODES[self.dev.get("offmode", ch)]
        if mode == "HIGH_Z":
            state = None
        else:
            state = ("V", self.dev.get("offlimiti" if mode == "NORMAL" else "limiti", ch))
        self.world.set_terminal(self.key(ch), off_state=state)

    def _set_off_mode(self, code: int, ch: str) -> None:
        self.dev.put("offmode", code, ch)
        self._push_off_state(ch)

    def off_normal(self, ch: str) -> None:
        self._set_off_mode(0, ch)

    def off_zero(self, ch: str) -> None:
        self._set_off_mode(1, ch)

    def off_high_z(self, ch: str) -> None:
        self._set_off_mode(2, ch)

    def set_offlimiti(self, value: float, ch: str) -> None:
        self._push_off_state(ch)

    # ------------------------------------------------------------------ filter, delays, abort
    def filter_repeat(self, ch: str) -> None:
        self.filters[ch].set(kind="repeat")

    def filter_moving(self, ch: str) -> None:
        self.filters[ch].set(kind="moving")

    def set_filter_count(self, value: int, ch: str) -> None:
        self.filters[ch].set(count=value)

    def filter_on(self, ch: str) -> None:
        self.filters[ch].set(enabled=True)

    def filter_off(self, ch: str) -> None:
        self.filters[ch].set(enabled=False)

    def source_delay_auto(self, ch: str) -> None:
        self.dev.put("source_delay", -1.0, ch)

    def measure_delay_auto(self, ch: str) -> None:
        self.dev.put("measure_delay", -1.0, ch)

    def _wait(self, ch: str, source_changes: bool) -> float:
        """Seconds waited before a measurement: the measure delay, and the source delay when
        the source has just changed (an automatic delay, -1, is not simulated: 0)."""
        names = ("measure_delay", "source_delay") if source_changes else ("measure_delay",)
        return sum(max(self.dev.get(name, ch), 0.0) for name in names)

    def abort_channel(self, ch: str) -> None:
        """``smuX.abort()``: the channel's trigger model back to idle (a sweep here runs to its
        end when it starts, so only an armed, waiting channel has anything to stop)."""
        self.armed.discard(ch)
        self._disarm_line(ch)

    def source_action_on(self, ch: str) -> None:
        self.source_action[ch] = True

    def source_action_off(self, ch: str) -> None:
        self.source_action[ch] = False

    def timer_passthrough_on(self) -> None:
        self.timer["passthrough"] = True

    def timer_passthrough_off(self) -> None:
        self.timer["passthrough"] = False

    def set_timer_stimulus(self, event: str) -> None:
        """``trigger.timer[1].stimulus = 0 | smuX.trigger.ARMED_EVENT_ID`` (other events are
        not simulated: unknown)."""
        text = event.strip()
        match = _ARMED.match(text)
        if text != "0" and match is None:
            raise UnknownCommand(f"trigger.timer[1].stimulus = {text}")
        self.timer["stimulus"] = None if match is None else match[1]

    def set_timer2_stimulus(self, event: str) -> None:
        """``trigger.timer[2].stimulus = 0 | trigger.timer[1].EVENT_ID |
        digio.trigger[N].EVENT_ID`` (other events are not simulated: unknown)."""
        text = event.strip()
        line = self._line_event(text)
        if text not in ("0", TIMER_EVENT) and line is None:
            raise UnknownCommand(f"trigger.timer[2].stimulus = {text}")
        self.timer2_started_by_timer1 = text == TIMER_EVENT
        self.timer2_line = line

    def _line_event(self, text: str) -> int | None:
        """N of ``digio.trigger[N].EVENT_ID`` (a line 1-14), else None."""
        match = _LINE_EVENT.match(text)
        if match is None:
            return None
        line = int(match[1])
        if not 1 <= line <= DIGIO_LINES:
            raise OutOfRange(f"digio.trigger[{line}]: lines 1 to {DIGIO_LINES}")
        return line

    def _line(self, text: str) -> int:
        line = _integer(text)
        if not 1 <= line <= DIGIO_LINES:
            raise OutOfRange(f"digio.trigger[{text}]: lines 1 to {DIGIO_LINES}")
        return line

    def digio_clear(self, line: str) -> None:
        """``digio.trigger[N].clear()``: forget a detected edge (none is kept here)."""
        self._line(line)

    def digio_mode(self, line: str, mode: str) -> None:
        """``digio.trigger[N].mode = digio.TRIG_FALLING | digio.TRIG_BYPASS`` [M Digital I/O,
        hardware trigger modes]; other modes are not simulated (unknown)."""
        if mode.strip() not in ("TRIG_FALLING", "TRIG_BYPASS"):
            raise UnknownCommand(f"digio.trigger[{line}].mode = digio.{mode}")
        self.digio[self._line(line)]["mode"] = mode.strip()[5:]

    def digio_stimulus(self, line: str, event: str) -> None:
        """``digio.trigger[N].stimulus = 0 | trigger.timer[1].EVENT_ID``: the event that
        drives an output trigger on line N (other events are not simulated: unknown)."""
        text = event.strip()
        if text not in ("0", TIMER_EVENT):
            raise UnknownCommand(f"digio.trigger[{line}].stimulus = {text}")
        self.digio[self._line(line)]["out"] = text == TIMER_EVENT

    def _disarm_line(self, ch: str) -> None:
        """``ch`` no longer waits on a digital I/O line."""
        for line, waiting in list(self.armed_on_line.items()):
            waiting.discard(ch)
            if not waiting:
                del self.armed_on_line[line]
                if self.world.armed_on_line.get((self.inst.name, line)) is self:
                    del self.world.armed_on_line[(self.inst.name, line)]

    def end_pulse_idle(self, ch: str) -> None:
        self.idle_after_pulse[ch] = True

    def end_pulse_hold(self, ch: str) -> None:
        self.idle_after_pulse[ch] = False

    def print_offmode(self, ch: str) -> str:
        return self.num(self.dev.get("offmode", ch))

    def print_offlimiti(self, ch: str) -> str:
        return self.num(self.dev.get("offlimiti", ch))

    def key(self, ch: str) -> str:
        return f"{self.inst.name}.{ch}"

    def num(self, value: float) -> str:
        """A number as TSP prints it under the current ascii precision."""
        digits = self.dev.get("ascii_precision") - 1
        return f"{value:.{digits}e}"

    # ------------------------------------------------------------------ source settings
    def _push_level(self, ch: str) -> None:
        func = "V" if self.dev.get("source_func", ch) == 1 else "I"
        level = self.dev.get("levelv" if func == "V" else "leveli", ch)
        self.world.set_terminal(self.key(ch), func=func, level=level)

    def set_source_func(self, value: int, ch: str) -> None:
        self._push_level(ch)

    def source_volts(self, ch: str) -> None:
        self.dev.put("source_func", 1, ch)
        self._push_level(ch)

    def source_amps(self, ch: str) -> None:
        self.dev.put("source_func", 0, ch)
        self._push_level(ch)

    def set_output(self, value: int, ch: str) -> None:
        self.world.set_terminal(self.key(ch), output=bool(value))

    def output_on(self, ch: str) -> None:
        self.dev.put("output", 1, ch)
        self.set_output(1, ch)

    def output_off(self, ch: str) -> None:
        self.dev.put("output", 0, ch)
        self.set_output(0, ch)

    def set_levelv(self, value: float, ch: str) -> None:
        self._push_level(ch)

    def set_leveli(self, value: float, ch: str) -> None:
        self._push_level(ch)

    def set_limiti(self, value: float, ch: str) -> None:
        self.world.set_terminal(self.key(ch), limit_i=value)
        self._push_off_state(ch)

    def set_limitv(self, value: float, ch: str) -> None:
        self.world.set_terminal(self.key(ch), limit_v=value)

    def print_source_func(self, ch: str) -> str:
        return self.num(self.dev.get("source_func", ch))

    def print_output(self, ch: str) -> str:
        return self.num(self.dev.get("output", ch))

    def print_levelv(self, ch: str) -> str:
        return self.num(self.dev.get("levelv", ch))

    def print_leveli(self, ch: str) -> str:
        return self.num(self.dev.get("leveli", ch))

    def print_limiti(self, ch: str) -> str:
        return self.num(self.dev.get("limiti", ch))

    def print_limitv(self, ch: str) -> str:
        return self.num(self.dev.get("limitv", ch))

    def print_measure_count(self, ch: str) -> str:
        return self.num(self.dev.get("measure_count", ch))

    def print_measure_delay(self, ch: str) -> str:
        return self.num(self.dev.get("measure_delay", ch))

    def print_nplc(self, ch: str) -> str:
        return self.num(self.dev.get("nplc", ch))

    def ascii_precision(self) -> str:
        return self.num(self.dev.get("ascii_precision"))

    def line_frequency(self) -> str:
        return self.num(LINE_FREQUENCY)

    def error_count(self) -> str:
        return self.num(self.dev.error_count())

    def print_compliance(self, ch: str) -> str:
        """``smuX.source.compliance``: true while the source is limited (no time passes)."""
        return "true" if self.world.measure(self.key(ch), noise=False)[2] else "false"

    def set_rangei(self, value: float, ch: str) -> None:
        """A fixed measure range turns autorange off (2600B manual, smuX.measure.rangeY)."""
        self.dev.put("autorangei", 0, ch)

    def set_rangev(self, value: float, ch: str) -> None:
        self.dev.put("autorangev", 0, ch)

    def autorange_i_on(self, ch: str) -> None:
        self.dev.put("autorangei", 1, ch)

    def autorange_i_off(self, ch: str) -> None:
        self.dev.put("autorangei", 0, ch)

    def autorange_v_on(self, ch: str) -> None:
        self.dev.put("autorangev", 1, ch)

    def autorange_v_off(self, ch: str) -> None:
        self.dev.put("autorangev", 0, ch)

    def print_rangei(self, ch: str) -> str:
        return self.num(self.dev.get("measure_rangei", ch))

    def print_rangev(self, ch: str) -> str:
        return self.num(self.dev.get("measure_rangev", ch))

    def print_autorangei(self, ch: str) -> str:
        return self.num(self.dev.get("autorangei", ch))

    def print_autorangev(self, ch: str) -> str:
        return self.num(self.dev.get("autorangev", ch))

    # ------------------------------------------------------------------ measuring
    def _read(self, ch: str) -> tuple[float, float, int]:
        """(current, voltage, status) of the terminal now, through the measure ranges.

        A reading beyond 1.01 x a fixed range is the overflow value 9.9e37; status bit 6 (64)
        marks a source in compliance.
        """
        return self._through_ranges(*self.world.measure(self.key(ch)), ch)

    def _through_ranges(self, v: float, i: float, limited: bool, ch: str):
        """(current, voltage, status) as the measure ranges report them."""
        return self._all_through_ranges([(v, i, limited)], ch)[0]

    def _all_through_ranges(self, readings, ch: str) -> list[tuple[float, float, int]]:
        """(current, voltage, status) of each (V, I, limited) as the measure ranges report
        them (the range settings read once): currents through the channel's meter (its
        sheet's error and resolution, `xbarlab.sim_instruments.meter`), overflow beyond 1.01
        x a fixed range."""
        get = self.dev.get
        fixed = None if get("autorangei", ch) else get("measure_rangei", ch)
        top_i = math.inf if fixed is None else 1.01 * fixed
        top_v = math.inf if get("autorangev", ch) else 1.01 * get("measure_rangev", ch)
        readings = list(readings)
        filter_ = self.filters[ch]
        nplc, conversions = get("nplc", ch), filter_.count if filter_.active else 1
        currents = ([self.meter.read_one(readings[0][1], fixed, nplc, conversions)]
                    if len(readings) == 1 else
                    self.meter.read([i for _, i, _ in readings], fixed, nplc, conversions))
        return [(OVERFLOW if abs(i) > top_i else float(metered),
                 OVERFLOW if abs(v) > top_v else v, COMPLIANCE_STATUS if limited else 0)
                for (v, i, limited), metered in zip(readings, currents, strict=True)]

    def _integrate(self, ch: str) -> tuple[float, float, int]:
        """One reading after the measure delay and NPLC of virtual time under bias (the
        filter's conversions, each NPLC, when it is on)."""
        get = self.dev.get
        wait = max(get("measure_delay", ch), 0.0)  # `_wait` of a measurement alone
        conversion = get("nplc", ch) / LINE_FREQUENCY
        key = f"{self.inst.name}.{ch}"
        if not self.filters[ch].active:
            return self._through_ranges(*self.world.measure_after(key, wait + conversion), ch)
        self.world.advance(wait)
        return self._all_through_ranges(
            self._filtered(ch, key, [self.world.terminal(key).level], conversion), ch)[0]

    def _filtered(self, ch: str, key: str, levels: list[float], dwell: float):
        """(V, I, limited) per reading at `levels`: the filter's conversions of each, one World
        sweep (each conversion `dwell` seconds), averaged as the filter does."""
        filter_ = self.filters[ch]
        return filter_.reduce(self.world.sweep(key, filter_.expand(levels), dwell), len(levels))

    def measure_i(self, ch: str) -> str:
        return self.num(self._integrate(ch)[0])

    def measure_v(self, ch: str) -> str:
        return self.num(self._integrate(ch)[1])

    def measure_iv(self, ch: str) -> str:
        i, v, _ = self._integrate(ch)
        return f"{self.num(i)}\t{self.num(v)}"

    # ------------------------------------------------------------------ buffers
    def clear_buffer1(self, ch: str) -> None:
        self.buffers[(ch, 1)] = []

    def clear_buffer2(self, ch: str) -> None:
        self.buffers[(ch, 2)] = []

    def buffer1_count(self, ch: str) -> str:
        return self.num(len(self.buffers[(ch, 1)]))

    def buffer2_count(self, ch: str) -> str:
        return self.num(len(self.buffers[(ch, 2)]))

    def _repeated_readings(self, ch: str) -> list[tuple[float, float, int]]:
        """``measure.count`` readings at the present source level, each after the measure
        delay and one NPLC of virtual time (the World's repeated reading: one operating point
        and a read-noise draw per reading when nothing moves; with the filter on, its
        conversions as one World sweep), through the measure ranges."""
        key, count = self.key(ch), self.dev.get("measure_count", ch)
        dwell = self._wait(ch, False) + self.dev.get("nplc", ch) / LINE_FREQUENCY
        if self.filters[ch].active:
            levels = [self.world.terminal(key).level] * count
            return self._all_through_ranges(self._filtered(ch, key, levels, dwell), ch)
        got = self.world.read([key], count, dwell)
        readings = zip(got.voltage[:, 0].tolist(), got.current[:, 0].tolist(),
                       got.limited[:, 0].tolist(), strict=True)
        return self._all_through_ranges(readings, ch)

    def measure_into_buffer(self, ch: str) -> None:
        """``smuX.measure.i(smuX.nvbuffer1)``: ``measure.count`` currents appended."""
        self.buffers[(ch, 1)] += [(i, status) for i, _, status in self._repeated_readings(ch)]

    def measure_iv_into_buffers(self, ch: str) -> None:
        """``smuX.measure.iv(smuX.nvbuffer1, smuX.nvbuffer2)``: ``measure.count`` currents
        and voltages appended, each with its status."""
        readings = self._repeated_readings(ch)
        self.buffers[(ch, 1)] += [(i, status) for i, _, status in readings]
        self.buffers[(ch, 2)] += [(v, status) for _, v, status in readings]

    def print_buffer(self, start: str, end: str, fields: str) -> str:
        """``printbuffer(start, end, smuX.nvbufferN.readings|statuses, ...)``.

        Readings of several fields interleave per index; ``end`` may be ``smuX.nvbufferN.n``.
        """
        columns = []
        for field in (f.strip() for f in fields.split(",")):
            m = _BUFFER_FIELD.match(field)
            if not m:
                raise UnknownCommand(f"printbuffer field {field!r}")
            entries = self.buffers[(m[1], int(m[2]))]
            columns.append([e[0] if m[3] == "readings" else float(e[1]) for e in entries])
        n_end = _BUFFER_COUNT.match(end)
        last = len(self.buffers[(n_end[1], int(n_end[2]))]) if n_end else _integer(end)
        first = _integer(start)
        size = min(len(c) for c in columns)
        if not 1 <= first <= last <= size:
            raise OutOfRange(f"printbuffer({start}, {end}) of a {size}-reading buffer")
        return ", ".join(self.num(col[k]) for k in range(first - 1, last) for col in columns)

    # ------------------------------------------------------------------ time and pulses
    def delay(self, seconds: str) -> None:
        """``delay(s)``: virtual time passes with every output as it is."""
        value = _number(seconds)
        if not 0.0 <= value <= 1e4:
            raise OutOfRange(f"delay({seconds})")
        self.world.advance(value)

    def _pulse_train(self, func, bias, level, ton, toff, points, ch: str) -> None:
        """KIPulse pulse train: output on at the bias, ``points`` pulses to ``level`` of
        ``ton`` then ``toff`` at the bias; one reading at the top of each pulse into
        nvbuffer1. ``func`` is "V" (PulseVMeasureI) or "I" (PulseIMeasureV)."""
        bias, level, ton, toff = (_number(x) for x in (bias, level, ton, toff))
        span = 200.0 if func == "V" else 1.5
        checks = (
            ("bias", bias, -span, span),
            ("level", level, -span, span),
            ("ton", ton, 0.0, 1e3),
            ("toff", toff, 0.0, 1e3),
        )
        for name, value, lo, hi in checks:
            if not lo <= value <= hi:
                raise OutOfRange(f"pulse {name} = {value}")
        if not 1 <= points <= 60000:
            raise OutOfRange(f"pulse points = {points}")
        key = self.key(ch)
        self.dev.put("source_func", 1 if func == "V" else 0, ch)
        self.dev.put("levelv" if func == "V" else "leveli", bias, ch)
        self.dev.put("output", 1, ch)
        self.world.set_terminal(key, func=func, level=bias, output=True)
        self.buffers[(ch, 1)] = []
        for _ in range(points):
            self.world.set_terminal(key, level=level)
            self.world.advance(ton)
            i, v, status = self._read(ch)
            self.buffers[(ch, 1)].append((i if func == "V" else v, status))
            self.world.set_terminal(key, level=bias)
            self.world.advance(toff)

    def pulse_v_measure_i(self, bias, level, ton, toff, points, ch: str) -> None:
        self._pulse_train("V", bias, level, ton, toff, points, ch)

    def pulse_i_measure_v(self, bias, level, ton, toff, points, ch: str) -> None:
        self._pulse_train("I", bias, level, ton, toff, points, ch)

    # ------------------------------------------------------------------ trigger-model sweeps
    def _set_sweep(self, func: str, points: list[float], ch: str) -> None:
        span = 200.0 if func == "V" else 1.5
        if not 1 <= len(points) <= 60000 or any(abs(v) > span for v in points):
            raise OutOfRange(f"sweep of {len(points)} points beyond +-{span}")
        self.sweep_points[ch] = points
        self.sweep_func[ch] = func

    def sweep_list_v(self, values: str, ch: str) -> None:
        self._set_sweep("V", [_number(v) for v in values.split(",")], ch)

    def sweep_list_i(self, values: str, ch: str) -> None:
        self._set_sweep("I", [_number(v) for v in values.split(",")], ch)

    def sweep_linear_v(self, start: str, stop: str, count: int, ch: str) -> None:
        a, b = _number(start), _number(stop)
        if count < 2:
            raise OutOfRange(f"linearv count {count}")
        self._set_sweep("V", [a + (b - a) * k / (count - 1) for k in range(count)], ch)

    def sweep_measure_i(self, ch: str) -> None:
        self.sweep_buffers[ch] = (1,)

    def sweep_measure_iv(self, ch: str) -> None:
        self.sweep_buffers[ch] = (1, 2)

    def end_sweep_idle(self, ch: str) -> None:
        self.idle_after_sweep[ch] = True

    def end_sweep_hold(self, ch: str) -> None:
        self.idle_after_sweep[ch] = False

    def set_stimulus(self, layer: str, event: str, ch: str) -> None:
        """``smuX.trigger.<layer>.stimulus = <event>``: 0 (immediate), or the other channel's
        ``SOURCE_COMPLETE_EVENT_ID`` / ``MEASURE_COMPLETE_EVENT_ID`` (2600B manual,
        smuX.trigger.source.stimulus and the smuX.trigger.*_EVENT_ID constants). A channel's own
        events pass in order anyway, so they count as immediate. Other layers and events are
        not simulated and are refused as unknown."""
        if layer not in STIMULUS_LAYERS:
            raise UnknownCommand(f"smu{ch}.trigger.{layer}.stimulus")
        text = event.strip()
        timers = {("measure", TIMER_EVENT): "1", ("source", TIMER_EVENT): "1",
                  ("endpulse", TIMER2_EVENT): "2"}
        if (layer, text) in timers:
            self.stimuli[(ch, layer)] = ("timer", timers[(layer, text)])
            return
        line = self._line_event(text)
        if line is not None and layer in ("source", "measure"):
            self.stimuli[(ch, layer)] = ("digio", line)
            return
        match = _EVENT.match(text)
        if text != "0" and match is None:
            raise UnknownCommand(f"smu{ch}.trigger.{layer}.stimulus = {text}")
        own = match is None or match[1] == ch
        self.stimuli[(ch, layer)] = None if own else (match[1], match[2])

    def _waits_on(self, ch: str, other: str) -> bool:
        """Whether a layer of ``ch``'s trigger model waits for an event of ``other``."""
        return any((self.stimuli[(ch, layer)] or ("",))[0] == other for layer in STIMULUS_LAYERS)

    def sweep_initiate(self, ch: str) -> None:
        """``smuX.trigger.initiate()``: run the sweep now (virtual time), alone or in lockstep.

        A channel whose trigger model waits for the other channel's events starts only when
        both run: initiated first, it waits (armed) for the other's ``initiate()``. Then both
        sweep in lockstep (:meth:`_run_pair`). A leader (source immediate) initiated before its
        follower is armed would fire its first SOURCE_COMPLETE unheard and both would wait
        forever; that is refused (data error) instead of hanging. A channel whose source
        waits for timer 1 started by the other channel, or for a digital I/O line's input
        trigger, is armed: it pulses with the other channel, or with the pulses of a 2600B
        cabled to this one (:meth:`_run_pulses`).
        """
        other = "b" if ch == "a" else "a"
        source = self.stimuli[(ch, "source")]
        if self.source_action[ch] and source is not None and source[0] == "digio":
            # pulses on each input trigger of the line: a cabled 2600B's pulses (_run_pulses)
            self.armed_on_line.setdefault(source[1], set()).add(ch)
            self.world.armed_on_line[(self.inst.name, source[1])] = self
            return
        if (self.source_action[ch] and self.stimuli[(ch, "source")] == ("timer", "1")
                and self.timer["stimulus"] == other):
            self.armed.add(ch)  # pulses when the other channel's ARMED event starts timer 1
            return
        if self._waits_on(ch, other):
            if other in self.armed:
                self.armed.discard(other)
                leader = ch if self.stimuli[(ch, "source")] is None else other
                self._run_pair(leader, other if leader == ch else ch)
            elif self.stimuli[(ch, "source")] is None:
                raise OutOfRange(f"smu{ch} starts before smu{other} is armed: its first "
                                 "SOURCE_COMPLETE goes unheard and both wait forever")
            else:
                self.armed.add(ch)
            return
        if other in self.armed and self._waits_on(other, ch):
            self.armed.discard(other)
            self._run_pair(ch, other)
            return
        self._run_single(ch)

    def _run_single(self, ch: str) -> None:
        """One channel's sweep: ``trigger.count`` points through the source list, each held
        for the source and measure delays and one reading (NPLC, or the filter's
        conversions) under ``trigger.source.limitY``; currents go to nvbuffer1 and voltages to
        nvbuffer2 as ``trigger.measure`` asked. At the end the source idles (its DC level) or
        holds. With the source action off, the measure layer alone (`_run_measure_only`)."""
        if not self.source_action[ch]:
            self._run_measure_only(ch)
            return
        if self.stimuli[(ch, "source")] == ("timer", "1"):
            self._run_pulses(ch)
            return
        key, levels, saved = self._start_sweep(ch)
        if self.sweep_func[ch] == "V":  # one batched solve when no point can switch a cell
            dwell = self._wait(ch, True) + self.dev.get("nplc", ch) / LINE_FREQUENCY
            readings = self._all_through_ranges(self._filtered(ch, key, levels, dwell), ch)
        else:
            readings = []
            for level in levels:
                self.world.set_terminal(key, level=level)
                self.world.advance(self._wait(ch, True))
                readings.append(self._integrate(ch))
        self._end_sweep(ch, readings, saved)

    def _run_measure_only(self, ch: str) -> None:
        """The measure layer alone (``trigger.source.action = DISABLE``): ``trigger.count``
        readings at the present source, immediate, or paced by trigger timer 1 when the measure
        stimulus is its event: the timer, started by this channel's ARMED event, passes it
        through (``passthrough = true``: a reading at once) and gives ``trigger.timer[1].count``
        more events ``trigger.timer[1].delay`` apart. Fewer events than readings would wait for
        ever: refused (data error)."""
        key = self.key(ch)
        count = self.dev.get("trigger_count", ch)
        conversion = self.dev.get("nplc", ch) / LINE_FREQUENCY
        level = self.world.terminal(key).level
        if self.stimuli[(ch, "measure")] != ("timer", "1"):
            readings = self._filtered(ch, key, [level] * count, self._wait(ch, False) +
                                      conversion)
        else:
            if self.timer["stimulus"] != ch:
                raise OutOfRange(f"smu{ch} measures on trigger timer 1, which nothing starts")
            passthrough = self.timer["passthrough"]
            events = int(passthrough) + self.dev.get("timer_count")
            if events < count:
                raise OutOfRange(f"smu{ch}.trigger.count = {count} readings on {events} timer "
                                 "events: the sweep would wait for ever")
            delay = self.dev.get("timer_delay")
            first = self._filtered(ch, key, [level], conversion if passthrough else delay)
            readings = first + self._filtered(ch, key, [level] * (count - 1), delay)
        for i, v, status in self._all_through_ranges(readings, ch):
            for n in self.sweep_buffers[ch]:
                self.buffers[(ch, n)].append((i if n == 1 else v, status))

    def _run_pulses(self, ch: str) -> None:
        """Pulses in the trigger model (instruments.md §3, pulsed sourcing): trigger timer 1,
        started by this channel's ARMED event, starts each pulse (its source level and its
        measurement) ``trigger.timer[1].delay`` apart; timer 2, started by timer 1, ends it
        ``trigger.timer[2].delay`` later (endpulse SOURCE_IDLE: back to the DC level). The
        measurement comes after the source and measure delays and integrates for its NPLC,
        the source still at the pulse level (a pulse lasts until both its timer 2 event and
        its measurement are done): V and I averaged over that window (`World.integrate`).

        Others pulse with it: the other channel, initiated before with its source, measure
        and endpulse layers on the same timer events (armed: `sweep_initiate`), and, where a
        digital I/O line drives an output trigger on timer 1's event, the channels of every
        2600B cabled to this one (``[wiring] trigger_link``) armed on that line, their source
        and measure layers on its input trigger and their timer 2 (started by it) ending
        their pulse. All levels go on at each pulse's start, all are measured over the same
        window (`World.integrate_together`; their delays, NPLC and widths must equal this
        channel's) and all go back at its end. Other pulse set-ups (no timer 2, a held end,
        the averaging filter, unequal counts) are not simulated (data error)."""
        followers = sorted(o for o in self.armed if self.stimuli[(o, "source")] == ("timer", "1"))
        self.armed.difference_update(followers)
        if not self.timer2_started_by_timer1 or self.timer["stimulus"] != ch:
            raise OutOfRange(f"smu{ch}: only pulses started by trigger timer 1 (on the ARMED "
                             "event) and ended by timer 2 are simulated")
        get = self.dev.get
        count, width = get("trigger_count", ch), get("timer2_delay")
        if int(self.timer["passthrough"]) + get("timer_count") < count:
            raise OutOfRange(f"smu{ch}.trigger.count = {count} pulses on fewer timer 1 events: "
                             "the sweep would wait for ever")
        taking = [(self, one, ("timer", "1")) for one in (ch, *followers)]
        for line, state in self.digio.items():
            if state["out"] and state["mode"] == "FALLING":
                taking += self._linked_followers(line, width)
        timing = set()
        for unit, one, start in taking:
            unit._check_pulse_layers(one, start)
            timing.add((unit.dev.get("trigger_count", one), unit._wait(one, True),
                        unit.dev.get("nplc", one)))
        if len(timing) != 1:
            raise OutOfRange("pulses of several channels with different counts, delays or NPLC "
                             "are not simulated")
        started = [(unit, one, *unit._start_sweep(one)) for unit, one, _ in taking]
        period = get("timer_delay")
        wait, aperture = self._wait(ch, True), get("nplc", ch) / LINE_FREQUENCY
        top = max(width, wait + aperture)
        if not self.timer["passthrough"]:
            self.world.advance(period)
        readings: list[list] = [[] for _ in started]
        keys = [key for _, _, key, _, _ in started]
        for k in range(count):
            for _, _, key, levels, _ in started:
                self.world.set_terminal(key, level=levels[k])
            self.world.advance(wait)
            integrated = self.world.integrate_together(keys, aperture)
            for got, key in zip(readings, keys, strict=True):
                got.append(integrated[key])
            self.world.advance(top - wait - aperture)
            for unit, one, _, _, _ in started:
                unit._push_level(one)
            if k < count - 1:
                self.world.advance(max(period - top, 0.0))
        for (unit, one, _, _, saved), got in zip(started, readings, strict=True):
            unit._end_sweep(one, unit._all_through_ranges(got, one), saved)

    def _check_pulse_layers(self, ch: str, start: tuple) -> None:
        """`OutOfRange` unless ``ch`` pulses as `_run_pulses` simulates: source and measure
        layers on `start` (timer 1's event, or a digital I/O line's), the end on timer 2,
        SOURCE_IDLE after each pulse, no averaging filter."""
        if (self.stimuli[(ch, "source")] != start or self.stimuli[(ch, "measure")] != start
                or self.stimuli[(ch, "endpulse")] != ("timer", "2")
                or not self.idle_after_pulse[ch] or self.filters[ch].active):
            raise OutOfRange(f"smu{ch}: only pulses whose source and measure layers start on "
                             "one event and whose end is timer 2 into SOURCE_IDLE, without the "
                             "averaging filter, are simulated")

    def _linked_followers(self, line: int, width: float) -> list[tuple]:
        """(behaviour, channel, start) of every channel of the 2600Bs cabled to this one that
        waits on digital I/O `line`, each taken off the line: it pulses now. A follower's
        timer 2 must start on the line's event and last `width`, and its line must detect
        falling edges."""
        taking = []
        for other in sorted(self.world.trigger_linked.get(self.inst.name, ())):
            unit = self.world.armed_on_line.pop((other, line), None)
            if unit is None:
                continue
            if (unit.timer2_line != line or unit.digio[line]["mode"] != "FALLING"
                    or unit.dev.get("timer2_delay") != width):
                raise OutOfRange(f"{other}: only channels whose timer 2 starts on digio line "
                                 f"{line} (detecting falling edges) and lasts the leader's "
                                 "pulse width are simulated")
            taking += [(unit, one, ("digio", line)) for one in sorted(unit.armed_on_line.pop(line))]
        return taking

    def _run_pair(self, leader: str, follower: str) -> None:
        """Both channels in lockstep: at every point both source their list level, then both
        measure (one integration, the longer NPLC), then the next point (the stimuli of
        ``LOCKSTEP``); one World sweep of both terminals. Other cross-channel stimuli, unequal
        counts or current sweeps are not simulated (data error)."""
        self._check_lockstep(leader, follower)
        count = self.dev.get("trigger_count", leader)
        if count != self.dev.get("trigger_count", follower) or "I" in (
            self.sweep_func[leader], self.sweep_func[follower]
        ):
            raise OutOfRange("lockstep sweeps need equal trigger counts and voltage lists")
        if any(self.filters[ch].active for ch in (leader, follower)):
            raise OutOfRange("lockstep sweeps with the averaging filter on are not simulated")
        started = {ch: self._start_sweep(ch) for ch in (leader, follower)}
        dwell = max(self._wait(ch, True) + self.dev.get("nplc", ch) / LINE_FREQUENCY
                    for ch in started)
        raw = self.world.sweep_together({key: levels for key, levels, _ in started.values()},
                                        dwell)
        for ch, (key, _, saved) in started.items():
            self._end_sweep(ch, self._all_through_ranges(raw[key], ch), saved)

    def _check_lockstep(self, leader: str, follower: str) -> None:
        """`OutOfRange` unless every stimulus of both channels is what ``LOCKSTEP`` gives
        their roles (immediate where it names none)."""
        channels = {"leader": leader, "follower": follower}
        for role, ch in channels.items():
            for layer in STIMULUS_LAYERS:
                wanted = LOCKSTEP.get((role, layer))
                expected = None if wanted is None else (channels[wanted[0]], wanted[1])
                if self.stimuli[(ch, layer)] != expected:
                    raise OutOfRange(f"smu{ch}.trigger.{layer}.stimulus: only the lockstep "
                                     "pair of LOCKSTEP is simulated")

    def _start_sweep(self, ch: str) -> tuple[str, list[float], tuple]:
        """The channel's terminal as the sweep sources it (function, trigger limits): its key,
        the ``trigger.count`` levels and what to restore afterwards."""
        points, func = self.sweep_points[ch], self.sweep_func[ch]
        if not points:
            raise OutOfRange(f"smu{ch}.trigger.initiate() without a source list")
        key = self.key(ch)
        state = self.world.terminal(key)
        saved = (state.func, state.level, state.limit_i, state.limit_v)
        self.world.set_terminal(
            key,
            func=func,
            limit_i=self.dev.get("trigger_limiti", ch),
            limit_v=self.dev.get("trigger_limitv", ch),
        )
        levels = [points[k % len(points)] for k in range(self.dev.get("trigger_count", ch))]
        return key, levels, saved

    def _end_sweep(self, ch: str, readings: list[tuple[float, float, int]], saved) -> None:
        """Readings into the buffers ``trigger.measure`` named; the source idles (its DC
        level) or holds, and its DC limits return."""
        for i, v, status in readings:
            for n in self.sweep_buffers[ch]:
                self.buffers[(ch, n)].append((i if n == 1 else v, status))
        _, _, limit_i0, limit_v0 = saved
        key = self.key(ch)
        if self.idle_after_sweep[ch]:
            self._push_level(ch)  # the idle source: the programmed DC function and level
        self.world.set_terminal(key, limit_i=limit_i0, limit_v=limit_v0)


def _number(text) -> float:
    """A Lua number literal (what a TSP script would accept as a number)."""
    try:
        return float(text)
    except (TypeError, ValueError):
        raise OutOfRange(f"{text!r} is not a number") from None


def _integer(text) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        raise OutOfRange(f"{text!r} is not an integer") from None
