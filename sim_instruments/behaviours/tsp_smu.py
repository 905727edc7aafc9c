"""Keithley 2600B-series SMU (TSP): smua/smub terminals, measurements, buffers, pulses, sweeps.

Numbers print the way TSP's ``print`` does: ``%e`` style with ``format.asciiprecision``
significant digits (default 6, e.g. ``1.00000e+00``). A measurement integrates for
NPLC / line frequency of virtual time, during which the cells see the applied bias.
"""

from __future__ import annotations

from ..device import OutOfRange
from .base import Behaviour, register

LINE_FREQUENCY = 50.0  # Hz; print(localnode.linefreq) -> 5.00000e+01 on the logged unit [HW]


@register("tsp_smu")
class TspSmu(Behaviour):
    """The 2600B channel model; terminal keys are ``<instrument>.a`` and ``<instrument>.b``."""

    CHANNELS = ("a", "b")

    def reset(self) -> None:
        super().reset()
        self.buffers = {ch: [] for ch in self.CHANNELS}
        self.sweep_points = {ch: [] for ch in self.CHANNELS}
        self.sweep_buffer = {ch: False for ch in self.CHANNELS}
        self.idle_after_sweep = {ch: True for ch in self.CHANNELS}
        for ch in self.CHANNELS:
            self.reset_channel(ch)

    def reset_channel(self, ch: str) -> None:
        """``smuX.reset()``: output off, DC volts at 0 V, default limits."""
        for name in (
            "source_func",
            "output",
            "levelv",
            "leveli",
            "limiti",
            "limitv",
            "nplc",
            "measure_count",
            "trigger_count",
            "trigger_limiti",
        ):
            self.dev.settings[name].values.pop(ch, None)
        self.world.set_terminal(
            self.key(ch),
            output=False,
            func="V",
            level=0.0,
            limit_i=self.dev.get("limiti", ch),
            limit_v=self.dev.get("limitv", ch),
        )

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

    # ------------------------------------------------------------------ measuring
    def _integrate(self, ch: str) -> tuple[float, float, bool]:
        """One reading: NPLC of virtual time under bias, then the terminal's V, I, limit flag."""
        self.world.advance(self.dev.get("nplc", ch) / LINE_FREQUENCY)
        return self.world.measure(self.key(ch))

    def measure_i(self, ch: str) -> str:
        return self.num(self._integrate(ch)[1])

    def measure_v(self, ch: str) -> str:
        return self.num(self._integrate(ch)[0])

    def measure_iv(self, ch: str) -> str:
        v, i, _ = self._integrate(ch)
        return f"{self.num(i)}\t{self.num(v)}"

    # ------------------------------------------------------------------ buffers
    def clear_buffer(self, ch: str) -> None:
        self.buffers[ch] = []

    def buffer_count(self, ch: str) -> str:
        return self.num(len(self.buffers[ch]))

    def measure_into_buffer(self, ch: str) -> None:
        """``smuX.measure.i(smuX.nvbuffer1)``: ``measure.count`` readings appended."""
        for _ in range(self.dev.get("measure_count", ch)):
            self.buffers[ch].append(self._integrate(ch)[1])

    def print_buffer(self, start: int, end: int, ch: str) -> str:
        """``printbuffer(start, end, smuX.nvbuffer1.readings)``, ``", "`` separated."""
        readings = self.buffers[ch]
        if not 1 <= start <= end <= len(readings):
            raise OutOfRange(f"printbuffer({start}, {end}) of a {len(readings)}-reading buffer")
        return ", ".join(self.num(x) for x in readings[start - 1 : end])

    def print_whole_buffer(self, start: int, ch: str) -> str:
        return self.print_buffer(start, len(self.buffers[ch]), ch)

    # ------------------------------------------------------------------ time and pulses
    def delay(self, seconds: str) -> None:
        """``delay(s)``: virtual time passes with every output as it is."""
        value = _number(seconds)
        if not 0.0 <= value <= 1e4:
            raise OutOfRange(f"delay({seconds})")
        self.world.advance(value)

    def pulse_v_measure_i(self, bias, level, ton, toff, points, ch: str) -> None:
        """KIPulse ``PulseVMeasureI``: ``points`` pulses from bias to level, I read at the top.

        The output turns on at the bias, each pulse holds ``level`` for ``ton`` (the reading
        is taken at its end) and ``bias`` for ``toff``; readings go to ``smuX.nvbuffer1``.
        """
        bias, level, ton, toff = (_number(x) for x in (bias, level, ton, toff))
        for name, value, lo, hi in (
            ("bias", bias, -200, 200),
            ("level", level, -200, 200),
            ("ton", ton, 0.0, 1e3),
            ("toff", toff, 0.0, 1e3),
        ):
            if not lo <= value <= hi:
                raise OutOfRange(f"PulseVMeasureI {name} = {value}")
        if not 1 <= points <= 60000:
            raise OutOfRange(f"PulseVMeasureI points = {points}")
        self.source_volts(ch)
        self.dev.put("levelv", bias, ch)
        self._push_level(ch)
        self.output_on(ch)
        self.buffers[ch] = []
        for _ in range(points):
            self.world.set_terminal(self.key(ch), level=level)
            self.world.advance(ton)
            self.buffers[ch].append(self.world.measure(self.key(ch))[1])
            self.world.set_terminal(self.key(ch), level=bias)
            self.world.advance(toff)

    # ------------------------------------------------------------------ trigger-model sweeps
    def sweep_list(self, values: str, ch: str) -> None:
        points = [_number(v) for v in values.split(",")]
        if not 1 <= len(points) <= 60000 or any(abs(v) > 200 for v in points):
            raise OutOfRange(f"listv with {len(points)} points")
        self.sweep_points[ch] = points

    def sweep_linear(self, start: str, stop: str, count: int, ch: str) -> None:
        a, b = _number(start), _number(stop)
        if not 2 <= count <= 60000 or abs(a) > 200 or abs(b) > 200:
            raise OutOfRange(f"linearv({start}, {stop}, {count})")
        self.sweep_points[ch] = [a + (b - a) * k / (count - 1) for k in range(count)]

    def sweep_measure_i(self, ch: str) -> None:
        self.sweep_buffer[ch] = True

    def end_sweep_idle(self, ch: str) -> None:
        self.idle_after_sweep[ch] = True

    def end_sweep_hold(self, ch: str) -> None:
        self.idle_after_sweep[ch] = False

    def sweep_initiate(self, ch: str) -> None:
        """``smuX.trigger.initiate()``: run the whole sweep now (virtual time).

        ``trigger.count`` points, cycling through the configured source values, each held
        for one NPLC integration under ``trigger.source.limiti``; readings fill nvbuffer1
        when ``trigger.measure.i(smuX.nvbuffer1)`` was given.
        """
        points = self.sweep_points[ch]
        if not points:
            raise OutOfRange("trigger.initiate() without a source list")
        key = self.key(ch)
        saved_limit = self.world.terminal(key).limit_i
        self.world.set_terminal(key, func="V", limit_i=self.dev.get("trigger_limiti", ch))
        readings = []
        for k in range(self.dev.get("trigger_count", ch)):
            self.world.set_terminal(key, level=points[k % len(points)])
            readings.append(self._integrate(ch)[1])
        if self.sweep_buffer[ch]:
            self.buffers[ch].extend(readings)
        end_level = self.dev.get("levelv", ch) if self.idle_after_sweep[ch] else points[-1]
        self.world.set_terminal(key, level=end_level, limit_i=saved_limit)


def _number(text) -> float:
    """A Lua number literal (what a TSP script would accept as a number)."""
    try:
        return float(text)
    except (TypeError, ValueError):
        raise OutOfRange(f"{text!r} is not a number") from None
