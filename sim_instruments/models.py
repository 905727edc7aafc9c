"""Which grammar file and device entry simulate each instrument model of the bench schema."""

from __future__ import annotations

MODEL_GRAMMARS: dict[str, tuple[str, str]] = {
    "2636B": ("keithley_2636b.yaml", "keithley_2636b"),
    "707B": ("keithley_707b.yaml", "keithley_707b"),
    "2400": ("keithley_2400.yaml", "keithley_2400"),
    "2450": ("keithley_2450.yaml", "keithley_2450"),
    "B2902B": ("keysight_b2902b.yaml", "keysight_b2902b"),
    "E5250A": ("keysight_e5250a.yaml", "keysight_e5250a"),
    "ARRAYBOARD": ("xbarlab_arrayboard.yaml", "xbarlab_arrayboard"),
}
