"""Which grammar file and device entry simulate each instrument model of the bench schema."""

from __future__ import annotations

MODEL_GRAMMARS: dict[str, tuple[str, str]] = {
    "2636B": ("keithley_2636b.yaml", "keithley_2636b"),
    "707B": ("keithley_707b.yaml", "keithley_707b"),
}
