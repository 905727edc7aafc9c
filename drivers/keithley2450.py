"""Keithley 2450 SourceMeter in its native SCPI command set.

Commands from the 2450 Reference Manual 2450-901-01 (see commands.toml). The 2450 also speaks TSP
and a 2400-emulation set (SCPI2400); this driver refuses both at connect, because they accept
different commands and would fail half-way through a protocol. The 2450 has no pulse mode: pulses
are built in the trigger model (source on, constant delay, source off, delay, counted branch).
Timed acquisitions wait on trigger timer 1 in the trigger model; the safe shutdown ramps a
voltage source to 0 with one linear sweep in the instrument (`ramp_to`). A sweep, pulse train or
timed acquisition that fails or is interrupted is aborted and its settings put back.
"""

from __future__ import annotations

import math
import re

from xbarlab.interfaces import PulseCapability, Reading

from .base import Instrument, ScpiErrorQueue
from .errors import UnexpectedReplyError, WrongInstrumentError
from .keithley_scpi import KeithleyScpiSettings
from .numbers import format_integer, format_number, format_numbers, parse_bool, parse_number
from .properties import Setting
from .smu import CURR, VOLT, ScpiOutput, SmuChannel, SmuLimits
from .smu_settings import Ranges, TimerCapability
from .validators import InRange, ZeroOrInRange, check_count

LIMITS = SmuLimits(max_voltage=210.0, max_current=1.05, min_current_limit=1e-9,
                   min_voltage_limit=0.02)
"""±210 V, ±1.05 A; ILIM 1e-9..1.05 A, VLIM 0.02..210 V (round-trips on hardware, PR #1492)."""
LIST_CHUNK = 100
MAX_LIST_POINTS = 2500
PROTECTION_WORDS = {2.0: "PROT2", 5.0: "PROT5", 10.0: "PROT10", 20.0: "PROT20", 40.0: "PROT40",
                    60.0: "PROT60", 80.0: "PROT80", 100.0: "PROT100", 120.0: "PROT120",
                    140.0: "PROT140", 160.0: "PROT160", 180.0: "PROT180", 210.0: "NONE"}
"""Over-voltage protection levels and their words (Reference Manual p. 6-73,
:SOURce[1]:<function>:PROTection[:LEVel]); NONE: no protection (the 2450's 210 V)."""
BUFFER = '"defbuffer1"'
PULSE_TIMING = {"min_width": 1e-3, "max_width": 1e4, "max_count": 100000, "max_off_time": 1e4}
"""Trigger-model pulses (constant-delay blocks up to 10 ks, a counted branch): the output is on
for the delay block plus the source-block switching time (about 1.2 ms on firmware 1.7.7b,
tektronix SimplePulse_SVMI.tsp), so widths below 1 ms are refused rather than silently
lengthened."""

LANGUAGE_HINT = (
    "This driver needs the native SCPI command set. Send '*LANG SCPI' (or front panel: MENU > "
    "System > Settings > Command Set > SCPI) and power-cycle the 2450; the change takes effect "
    "only after a restart (2450 Reference Manual p. B-5)."
)


SWEEP_DELAY = ZeroOrInRange(5e-5, 1e4, "s")
"""List-sweep delay: 0, or 50 µs to 10 ks (the 'auto' delay, -1, is not offered)."""
TIMER = TimerCapability(min_interval=5e-5, max_interval=1e5, max_count=100000)
"""Trigger timer 1 pacing readings: 50 µs (the shortest average timer interval) to 100 ks,
up to 100000 readings (defbuffer1's default capacity)."""


def model_pulse_capability(model: str = "2450") -> PulseCapability:
    """Pulses built in the trigger model (see PULSE_TIMING)."""
    return LIMITS.pulse_capability(**PULSE_TIMING)


class Keithley2450(ScpiErrorQueue, ScpiOutput, KeithleyScpiSettings, SmuChannel, Instrument):
    """One Keithley 2450 (native SCPI); the instrument is its own source-measure channel."""

    catalog_name = "keithley2450"
    max_sweep_points = MAX_LIST_POINTS
    timeout_ms = 5000
    identity_pattern = re.compile(r"MODEL\s+(2450)\b")
    expected_identity = "a Keithley 2450 SourceMeter (*IDN? with 'MODEL 2450')"
    limits = LIMITS
    ranges = Ranges(lowest_voltage=0.02, lowest_source_current=1e-8, max_source_delay=1e4)
    timer = TIMER
    protection_levels = tuple(PROTECTION_WORDS)

    current_range = Setting(
        unit="A", get=":SENS:CURR:RANG?", doc="Current measurement range in amperes."
    )
    current_autorange = Setting(
        get=":SENS:CURR:RANG:AUTO?",
        set=":SENS:CURR:RANG:AUTO {value}",
        values={True: "ON", False: "OFF"},
        parse=parse_bool,
        doc="Whether the current measurement range follows the reading.",
    )
    current_nplc = Setting(
        unit="PLC",
        get=":SENS:CURR:NPLC?", doc="Integration time of current measurements, power-line cycles."
    )
    current_limit = Setting(unit="A",
        get=":SOUR:VOLT:ILIM?", doc="Current limit in amperes, used while sourcing voltage."
    )
    voltage_limit = Setting(unit="V",
        get=":SOUR:CURR:VLIM?", doc="Voltage limit in volts, used while sourcing current."
    )

    def _connected(self) -> None:
        language = self.ask("*LANG?").strip()
        if language != "SCPI":
            raise WrongInstrumentError(
                self.address, "the native SCPI command set (*LANG? = SCPI)", language,
                LANGUAGE_HINT,
            )
        self._function = None
        self.write("*CLS")

    def reset(self) -> None:
        """Restore the power-on defaults (output off), then the output-off mode and terminals
        this driver had set (*RST selects the front terminals and the normal off state)."""
        self.forget_settings()
        self.configure("*RST")
        self._reapply_configuration()

    # -- primitives ----------------------------------------------------------------------------

    def _select_source(self, function: str) -> None:
        sensed = CURR if function == VOLT else VOLT
        self.configure(f":SOUR:FUNC {function}")
        self.configure(f':SENS:FUNC "{sensed}"')
        self._function = function

    def _write_limit(self, function: str, limit: float) -> None:
        if function == VOLT:
            self.configure(f":SOUR:VOLT:ILIM {format_number(limit)}")
        else:
            self.configure(f":SOUR:CURR:VLIM {format_number(limit)}")

    def _write_level(self, function: str, level: float) -> None:
        self.configure(f":SOUR:{function} {format_number(level)}")

    def _write_protection(self, level: float) -> None:
        self.configure(f":SOUR:VOLT:PROT {PROTECTION_WORDS[level]}")

    def _read_protection(self) -> tuple[str, str, float]:
        reply = self.ask(":SOUR:VOLT:PROT?")
        levels = {word: level for level, word in PROTECTION_WORDS.items()}
        if reply.strip() not in levels:
            raise UnexpectedReplyError(self.describe(), ":SOUR:VOLT:PROT?", reply,
                                       "one of " + ", ".join(levels))
        return ":SOUR:VOLT:PROT?", reply, levels[reply.strip()]

    def _read_level(self, function: str) -> float:
        return parse_number(self.ask(f":SOUR:{function}?"))

    def _read_source_function(self) -> str:
        self._function = self._checked_function(":SOUR:FUNC?")
        return self._function

    def _current_range_bounds(self) -> tuple[float, float]:
        return 1e-8, 1.0  # 10 nA to 1 A

    def _write_current_range(self, amperes: float) -> None:
        self.configure(f":SENS:CURR:RANG {format_number(amperes)}")

    def pulse_capability(self) -> PulseCapability:
        """Pulses built in the trigger model (see PULSE_TIMING)."""
        return model_pulse_capability()

    def _write_source_delay(self, seconds: float | None) -> None:
        """Both source functions (the delay is kept per function): auto, or auto off and the
        fixed delay."""
        for function in (VOLT, CURR):
            if seconds is None:
                self.configure(f":SOUR:{function}:DEL:AUTO ON")
            else:
                self.configure(f":SOUR:{function}:DEL:AUTO OFF")
                self.configure(f":SOUR:{function}:DEL {format_number(seconds)}")

    def _write_measure_delay(self, seconds: float | None) -> None:
        raise NotImplementedError(
            "the Keithley 2450 settles between source and measurement with its source delay "
            "(set_source_delay); it has no measure delay of its own")

    def _write_autozero(self, word: str) -> None:
        """Once: one reference now; else both measure functions (kept per function)."""
        if word == "ONCE":
            self.configure(":SENS:AZER:ONCE")
            return
        for quantity in (CURR, VOLT):
            self.configure(f":SENS:{quantity}:AZER {word}")

    def _write_filter(self, count: int, word: str) -> None:
        """Both measure functions (kept per function); count 1: filter off."""
        for quantity in (CURR, VOLT):
            if count == 1:
                self.configure(f":SENS:{quantity}:AVER OFF")
                continue
            self.configure(f":SENS:{quantity}:AVER:TCON {word}")
            self.configure(f":SENS:{quantity}:AVER:COUN {format_integer(count)}")
            self.configure(f":SENS:{quantity}:AVER ON")

    def _timed_readings(self, count: int, interval: float) -> list[Reading]:
        """Trigger timer 1 (`interval`, `count` events, started by notify block 1) paces the
        readings: blocks 1 notify, 2 measure, 3 wait for the timer, 4 branch back to 2 until
        `count` readings; one `:TRAC:DATA?`; the timer off again on every way out."""
        function = self._present_function()
        limit = self._read_limit(function)
        command = f":TRAC:DATA? 1,{format_integer(count)},{BUFFER},READ,SOUR"
        with self._restored_after(lambda: self.configure(":TRIG:TIM1:STAT OFF")):
            for setup in (f":TRAC:CLE {BUFFER}", ':TRIG:LOAD "Empty"',
                          f":TRIG:TIM1:DEL {format_number(interval)}",
                          f":TRIG:TIM1:COUN {format_integer(count)}",
                          ":TRIG:TIM1:STAR:STIM NOT1", ":TRIG:TIM1:STAT ON",
                          ":TRIG:BLOC:NOT 1,1", ":TRIG:BLOC:MEAS 2", ":TRIG:BLOC:WAIT 3,TIM1",
                          f":TRIG:BLOC:BRAN:COUN 4,{format_integer(count)},2"):
                self.configure(setup)
            self.write(":INIT")
            self.write("*WAI")
            reply = self.ask(command, extra_seconds=count * interval + 1)
            self.check_errors(":INIT")
        return self._buffered_readings(command, reply, count, function, limit,
                                       voltage_first=function == CURR,
                                       pair_name="reading,source pairs")

    def ramp_to(self, level: float, step: float | None = None) -> None:
        """Move the voltage source from its present level to `level` in steps of at most
        `step` volts (`ramp_step_voltage` when None) with one linear sweep run by the
        instrument (one round trip for the whole ramp), then hold `level`. Sourcing current,
        with the output off or within one step, the level is simply set."""
        step = self.ramp_step_voltage if step is None else InRange(1e-3, 210.0, "V")(
            "ramp step", step)
        with self.locked():
            function = self._present_function()
            level = self.limits.level(function, "ramp level", level)
            self._ramp(function, self._read_level(function), level, step)

    def _ramp_to_zero(self, function: str, level: float) -> None:
        """The safe shutdown's ramp: one instrument sweep to 0 (`ramp_to`)."""
        self._ramp(function, level, 0.0, self.ramp_step_voltage)

    def _ramp(self, function: str, start: float, level: float, step: float) -> None:
        points = math.ceil(abs(level - start) / step) + 1
        if function == VOLT and points > 2 and self.output_enabled():
            sweep = (f":SOUR:SWE:VOLT:LIN {format_number(start)},{format_number(level)},"
                     f"{format_integer(points)},0.0")
            with self._restored_after(lambda: None):
                self.configure(sweep)
                self.write(":INIT")
                self.write("*WAI")
                self.check_errors(sweep, extra_seconds=points * 0.25)
        if start != level:
            self._write_level(function, level)

    # -- SourceMeasureChannel ------------------------------------------------------------------

    def set_nplc(self, nplc: float) -> None:
        """Integration time of the measured quantity, 0.01 to 10 power-line cycles."""
        nplc = InRange(0.01, 10.0, "PLC")("nplc", nplc)
        sensed = CURR if self._present_function() == VOLT else VOLT
        self.configure(f":SENS:{sensed}:NPLC {format_number(nplc)}")

    def measure(self) -> Reading:
        """One reading (output must be on) and the limit-tripped flag of the source."""
        function = self._present_function()
        command = f':READ? {BUFFER},READ,SOUR'
        measured, sourced = self._pair(self.ask(command), command)
        if function == VOLT:
            return self._reading(sourced, measured, self._tripped(function))
        return self._reading(measured, sourced, self._tripped(function))

    def in_compliance(self) -> bool:
        """Whether the source's limit is tripped, without a measurement."""
        return self._tripped(self._present_function())

    def _tripped(self, function: str) -> bool:
        limit = "VOLT:ILIM" if function == VOLT else "CURR:VLIM"
        return parse_bool(self.ask(f":SOUR:{limit}:TRIP?"))

    def _pair(self, reply: str, command: str) -> tuple[float, float]:
        fields = reply.strip().split(",")
        if len(fields) != 2:
            raise UnexpectedReplyError(self.describe(), command, reply, "<reading>,<source>")
        return parse_number(fields[0]), parse_number(fields[1])

    def sweep(self, levels, delay: float) -> list[Reading]:
        """List sweep in the trigger model; readings from one `:TRAC:DATA?`.

        The buffer carries no compliance status, so a point counts as in compliance when its
        measured value is within 0.1 % of the limit. A sweep that fails or is interrupted is
        aborted (`:ABOR`) and what this driver remembers is forgotten.
        """
        function = self._present_function()
        points = check_count("levels", levels, 1, MAX_LIST_POINTS)
        points = [self.limits.level(function, "sweep level", value) for value in points]
        delay = SWEEP_DELAY("delay", delay)
        limit = self._read_limit(function)
        with self.locked(), self._restored_after(lambda: None):
            self.configure(f":TRAC:CLE {BUFFER}")
            for start in range(0, len(points), LIST_CHUNK):
                chunk = format_numbers(points[start : start + LIST_CHUNK])
                append = ":APP" if start else ""
                self.configure(f":SOUR:LIST:{function}{append} {chunk}")
            self.configure(f":SOUR:SWE:{function}:LIST 1,{format_number(delay)}")
            self.configure(":OUTP ON")
            self.write(":INIT")
            self.write("*WAI")
            command = f":TRAC:DATA? 1,{format_integer(len(points))},{BUFFER},READ,SOUR"
            reply = self.ask(command, extra_seconds=len(points) * (delay + 0.25))
            self.check_errors(":INIT")
        return self._buffered_readings(command, reply, len(points), function, limit,
                                       voltage_first=function == CURR,
                                       pair_name="reading,source pairs")

    def pulse(self, level: float, width: float, count: int = 1, period: float | None = None):
        """Pulses from output-off to `level` in the trigger model; the previous level is set
        again on every way out (after an abort when the train failed or was interrupted).

        Blocks: 1 source on, 2 delay `width`, 3 source off, 4 delay `period - width`,
        5 branch back to 1 until `count` pulses are done.
        """
        function, level, width, count, period = self._pulse_request(
            level, width, count, period, self._present_function
        )
        off_time = 0.0 if period is None else period - width
        with self.locked():
            previous = self._read_level(function)
            with self._restored_after(lambda: self._write_level(function, previous)):
                self.configure(':TRIG:LOAD "Empty"')
                self._write_level(function, level)
                self.configure(":TRIG:BLOC:SOUR:STAT 1,ON")
                self.configure(f":TRIG:BLOC:DEL:CONS 2,{format_number(width)}")
                self.configure(":TRIG:BLOC:SOUR:STAT 3,OFF")
                self.configure(f":TRIG:BLOC:DEL:CONS 4,{format_number(off_time)}")
                self.configure(f":TRIG:BLOC:BRAN:COUN 5,{format_integer(count)},1")
                self.write(":INIT")
                self.write("*WAI")
                self.check_errors(":INIT", extra_seconds=count * (width + off_time + 0.01))
