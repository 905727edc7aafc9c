"""Keithley 2400-series SourceMeter (2400, 2401, 2410, 2420, 2425, 2430, 2440), SCPI.

Commands from the 2400 Series User's Manual, ch. 18 (see commands.toml). Readings use the elements
`VOLT,CURR,STAT`; bit 3 of the status word is the compliance flag, and a value beyond a fixed
range comes back as `OVERFLOW` (NaN with the reading's `overflow` flag). Only the Model 2430 has
a pulse mode; on every other model `pulse` raises `NotImplementedError`. Sweeps, pulse trains and
timed acquisitions put the trigger count, arm layer, source mode and shape back on every way
out (`_restored_after`): a 2400 left in list mode with a trigger count of N would answer every
later `:READ?` with N readings.
"""

from __future__ import annotations

import re

from xbarlab.interfaces import PulseCapability, Reading

from .base import Instrument, ScpiErrorQueue
from .errors import UnexpectedReplyError
from .keithley_scpi import KeithleyScpiSettings
from .numbers import format_integer, format_number, format_numbers, parse_bool, parse_number
from .properties import Setting
from .smu import CURR, VOLT, ScpiOutput, SmuChannel, SmuLimits
from .smu_settings import Ranges, TimerCapability
from .validators import InRange, check_count

MODELS = {
    # max |V| (V), max |I| (A), lowest current limit, lowest voltage limit (data sheets)
    "2400": SmuLimits(210.0, 1.05, 1e-9, 2e-4),
    "2401": SmuLimits(21.0, 1.05, 1e-9, 2e-4),
    "2410": SmuLimits(1100.0, 1.05, 1e-9, 2e-4),
    "2420": SmuLimits(63.0, 3.15, 1e-8, 2e-4),
    "2425": SmuLimits(105.0, 3.15, 1e-8, 2e-4),
    "2430": SmuLimits(105.0, 3.15, 1e-8, 2e-4),
    "2440": SmuLimits(42.0, 5.25, 1e-8, 2e-4),
}

PROTECTION_LEVELS = {
    "2400": (20.0, 40.0, 60.0, 80.0, 100.0, 120.0, 160.0, 210.0),
    "2440": (4.0, 8.0, 12.0, 16.0, 20.0, 24.0, 32.0, 42.0),
}
"""Over-voltage protection levels (User's Manual p. 18-80, :SOURce:VOLTage:PROTection): a value
between two levels selects the lower one, so the driver sends a level itself; the last is NONE
(the model's most). Models whose table is not known here get no protection programmed."""

OVERFLOW = 9.91e37
"""What a 2400 returns for a reading beyond its fixed range (User's Manual ch. 7, Range and
digits, Maximum readings: "9.91E+37 will be returned via remote")."""
COMPLIANCE_BIT = 1 << 3
"""Status word bit 3: the reading was taken in compliance (ch. 18, :FORMat:ELEMents STATus)."""
LIST_CHUNK = 100
"""Values per :SOUR:LIST command; the rest go in :APPend commands (ch. 18)."""
MAX_LIST_POINTS = 2500
PULSE_MODEL = "2430"
PULSE_TIMING = {"min_width": 1.5e-4, "max_width": 5e-3, "max_count": MAX_LIST_POINTS,
                "max_off_time": 9999.999}
"""Model 2430 pulse mode: width 0.15 ms to 5 ms (ch. 18, :SOURce:PULSe:WIDTh), off time up to
9999.999 s (:SOURce:PULSe:DELay), up to 2500 pulses per trigger count."""


def model_pulse_capability(model: str) -> PulseCapability | None:
    """What `model` can pulse: the Model 2430's pulse mode; None on every other model."""
    if model != PULSE_MODEL:
        return None
    return MODELS[model].pulse_capability(**PULSE_TIMING)


class Keithley2400(ScpiErrorQueue, ScpiOutput, KeithleyScpiSettings, SmuChannel, Instrument):
    """One 2400-series SourceMeter; the instrument is its own (single) source-measure channel."""

    catalog_name = "keithley2400"
    max_sweep_points = MAX_LIST_POINTS
    timeout_ms = 5000
    overflow_value = OVERFLOW
    ranges = Ranges(lowest_voltage=0.2, lowest_source_current=1e-6, max_source_delay=9999.998)
    timer = TimerCapability(min_interval=0.001, max_interval=99999.99,
                            max_count=MAX_LIST_POINTS)
    """Arm-layer timer (:ARM:TIMer 0.001 to 99999.99 s); arm count x trigger count <= 2500."""
    identity_pattern = re.compile(r"MODEL\s+(" + "|".join(MODELS) + r")\b")
    expected_identity = "a Keithley 2400-series SourceMeter (MODEL " + "/".join(MODELS) + ")"

    nplc = Setting(
        unit="PLC",
        get=":SENS:CURR:NPLC?",
        set=":SENS:CURR:NPLC {value}",
        validator=InRange(0.01, 10.0, "PLC"),
        doc="Integration time of every measurement, in power-line cycles (0.01 to 10).",
    )
    current_range = Setting(unit="A",
        get=":SENS:CURR:RANG?",
        doc="Current measurement range in amperes (the range that covers the set value).",
    )
    current_autorange = Setting(
        get=":SENS:CURR:RANG:AUTO?",
        set=":SENS:CURR:RANG:AUTO {value}",
        values={True: "ON", False: "OFF"},
        parse=parse_bool,
        doc="Whether the current measurement range follows the reading.",
    )
    current_limit = Setting(unit="A",
        get=":SENS:CURR:PROT?",
        doc="Current compliance in amperes, used while sourcing voltage.",
    )
    voltage_limit = Setting(unit="V",
        get=":SENS:VOLT:PROT?",
        doc="Voltage compliance in volts, used while sourcing current.",
    )

    def _connected(self) -> None:
        self.limits = MODELS[self.model]
        self.protection_levels = PROTECTION_LEVELS.get(self.model, ())
        self.write("*CLS")
        self.configure(":FORM:ELEM VOLT,CURR,STAT")
        self.configure(':SENS:FUNC "VOLT","CURR"')

    def reset(self) -> None:
        """Restore the instrument's power-on defaults (output off), then this driver's reading
        format and the output-off mode and terminals it had set (*RST selects the front
        terminals and the normal off state)."""
        self.forget_settings()
        self.configure("*RST")
        self.configure(":FORM:ELEM VOLT,CURR,STAT")
        self.configure(':SENS:FUNC "VOLT","CURR"')
        self._reapply_configuration()

    # -- primitives ----------------------------------------------------------------------------

    def _select_source(self, function: str) -> None:
        self.configure(f":SOUR:FUNC {function}")
        self.configure(f":SOUR:{function}:MODE FIX")

    def _write_limit(self, function: str, limit: float) -> None:
        sensed = CURR if function == VOLT else VOLT
        self.configure(f":SENS:{sensed}:PROT {format_number(limit)}")

    def _write_level(self, function: str, level: float) -> None:
        self.configure(f":SOUR:{function}:LEV {format_number(level)}")

    def _write_protection(self, level: float) -> None:
        self.configure(f":SOUR:VOLT:PROT {format_number(level)}")

    def _read_protection(self) -> tuple[str, str, float]:
        reply = self.ask(":SOUR:VOLT:PROT?")
        return ":SOUR:VOLT:PROT?", reply, parse_number(reply)

    def _read_level(self, function: str) -> float:
        return parse_number(self.ask(f":SOUR:{function}:LEV?"))

    def _read_source_function(self) -> str:
        return self._checked_function(":SOUR:FUNC?")

    def _current_range_bounds(self) -> tuple[float, float]:
        return 1e-6, self.limits.max_current

    def _write_current_range(self, amperes: float) -> None:
        self.configure(f":SENS:CURR:RANG {format_number(amperes)}")

    def _write_source_delay(self, seconds: float | None) -> None:
        """Auto delay, or a fixed one (auto off first)."""
        if seconds is None:
            self.configure(":SOUR:DEL:AUTO ON")
            return
        self.configure(":SOUR:DEL:AUTO OFF")
        self.configure(f":SOUR:DEL {format_number(seconds)}")

    def _write_measure_delay(self, seconds: float | None) -> None:
        raise NotImplementedError(
            f"the Keithley {self.model} settles between source and measurement with its source "
            "delay (set_source_delay); it has no measure delay of its own")

    def _write_autozero(self, word: str) -> None:
        self.configure(f":SYST:AZER {word}")

    def _write_filter(self, count: int, word: str) -> None:
        """Count 1: filter off; else type, count, on."""
        if count == 1:
            self.configure(":SENS:AVER OFF")
            return
        self.configure(f":SENS:AVER:TCON {word}")
        self.configure(f":SENS:AVER:COUN {format_integer(count)}")
        self.configure(":SENS:AVER ON")

    def _timed_readings(self, count: int, interval: float) -> list[Reading]:
        """The arm layer on its timer: `count` arm events `interval` apart, one reading each,
        all from one `:READ?`; the arm layer back to one immediate event afterwards."""
        with self._restored_after(self._restore_arm):
            self.configure(":ARM:SOUR TIM")
            self.configure(f":ARM:TIM {format_number(interval)}")
            self.configure(f":ARM:COUN {format_integer(count)}")
            self.configure(":TRIG:COUN 1")
            reply = self.ask(":READ?", extra_seconds=count * interval + 1)
        return self._readings(reply, ":READ?")

    def _restore_arm(self) -> None:
        self.configure(":ARM:SOUR IMM")
        self.configure(":ARM:COUN 1")

    def pulse_capability(self) -> PulseCapability | None:
        """The Model 2430's pulse mode; None on every other model."""
        return model_pulse_capability(self.model)

    def _no_pulse_mode(self) -> str:
        return f"the Keithley {self.model} has no pulse mode (only the Model 2430 does)"

    # -- SourceMeasureChannel ------------------------------------------------------------------

    def measure(self) -> Reading:
        """One `:READ?` (output must be on): voltage, current and the compliance bit."""
        return self._readings(self.ask(":READ?"), ":READ?")[0]

    def _readings(self, reply: str, command: str) -> list[Reading]:
        fields = reply.strip().split(",")
        if len(fields) % 3:
            raise UnexpectedReplyError(self.describe(), command, reply, "V,I,STATUS triples")
        values = [parse_number(field) for field in fields]
        return [
            self._reading(values[k], values[k + 1], int(values[k + 2]) & COMPLIANCE_BIT)
            for k in range(0, len(values), 3)
        ]

    def sweep(self, levels, delay: float) -> list[Reading]:
        """List sweep of the present source function: all readings from one `:READ?`.

        Turns the output on; afterwards (on every way out) the source is back in fixed mode
        with a trigger count of 1.
        """
        function = self._read_source_function()
        points = check_count("levels", levels, 1, MAX_LIST_POINTS)
        points = [self.limits.level(function, "sweep level", value) for value in points]
        delay = InRange(0.0, 9999.998, "s")("delay", delay)

        def restore() -> None:
            self.configure(":TRIG:COUN 1")
            self.configure(f":SOUR:{function}:MODE FIX")

        with self.locked(), self._restored_after(restore):
            self.configure(f":SOUR:{function}:MODE LIST")
            for start in range(0, len(points), LIST_CHUNK):
                chunk = format_numbers(points[start : start + LIST_CHUNK])
                append = ":APP" if start else ""
                self.configure(f":SOUR:LIST:{function}{append} {chunk}")
            self.configure(f":SOUR:DEL {format_number(delay)}")
            self.configure(f":TRIG:COUN {format_integer(len(points))}")
            self.configure(":OUTP ON")
            reply = self.ask(":READ?", extra_seconds=len(points) * (delay + 0.25))
        return self._readings(reply, ":READ?")

    def pulse(self, level: float, width: float, count: int = 1, period: float | None = None):
        """Pulses from 0 to `level` (Model 2430 pulse mode only); back to DC at the old level
        with one trigger, on every way out."""
        function, level, width, count, period = self._pulse_request(
            level, width, count, period, self._read_source_function
        )
        off_time = 0.0 if period is None else period - width
        with self.locked():
            previous = self._read_level(function)

            def restore() -> None:
                self._write_level(function, previous)
                self.configure(":TRIG:COUN 1")
                self.configure(":SOUR:FUNC:SHAP DC")

            with self._restored_after(restore):
                self.configure(":SOUR:FUNC:SHAP PULS")
                self._write_level(function, level)
                self.configure(f":SOUR:PULS:WIDT {format_number(width)}")
                self.configure(f":SOUR:PULS:DEL {format_number(off_time)}")
                self.configure(f":TRIG:COUN {format_integer(count)}")
                self.configure(":OUTP ON")
                self.ask(":READ?", extra_seconds=count * (width + off_time + 0.01))
