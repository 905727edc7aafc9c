"""The settings the Keithley 2400 and 2450 (native SCPI) send with the same commands: output-off
state (`:OUTP:SMOD`), terminals (`:ROUT:TERM`), source and voltage-measure ranges, abort; and
the words both use for autozero and the averaging filter (see commands.toml, both tables)."""

from __future__ import annotations

from collections.abc import Callable

from .properties import Setting
from .smu_settings import range_commands


class KeithleyScpiSettings:
    """Mixin of `Keithley2400` and `Keithley2450` (before `SmuChannel` in their bases)."""

    output_off_modes = {"normal": "NORM", "zero": "ZERO", "high_z": "HIMP", "guard": "GUAR"}
    autozero_modes = {"off": "OFF", "once": "ONCE", "auto": "ON"}
    filter_types = {"repeat": "REP", "moving": "MOV"}
    configure: Callable[[str], None]

    output_off_mode = Setting(
        get=":OUTP:SMOD?", replies={"NORM": "normal", "ZERO": "zero", "HIMP": "high_z",
                                    "GUAR": "guard"},
        doc="The output-off state as the instrument reports it (normal, zero, high_z, guard).")
    terminals = Setting(get=":ROUT:TERM?", replies={"FRON": "front", "REAR": "rear"},
                        doc="The terminals in use as the instrument reports them (front, rear).")

    def _write_off_mode(self, word: str) -> None:
        """On a 2450: for every source function (the command without its function)."""
        self.configure(f":OUTP:SMOD {word}")

    def _write_terminals(self, side: str) -> None:
        self.configure(f":ROUT:TERM {'FRON' if side == 'front' else 'REAR'}")

    def _write_source_range(self, function: str, value: float | None) -> None:
        for command in range_commands(f":SOUR:{function}:RANG", value):
            self.configure(command)

    def _write_voltage_range(self, volts: float | None) -> None:
        """The voltage measure range (on a 2450 it applies while sourcing current)."""
        for command in range_commands(":SENS:VOLT:RANG", volts):
            self.configure(command)

    def _abort(self) -> None:
        self.configure(":ABOR")
