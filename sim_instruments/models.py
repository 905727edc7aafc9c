"""Which grammar simulates each instrument model of the bench schema, and how a model differs
from the family's grammar: its ``*IDN?`` reply, its channels, the spans of its levels, limits
and ranges (from the model's data sheet, as the drivers' model tables give them) and the
commands a family member lacks (only the 2430 of the 2400 series pulses).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from .grammar import load_grammar


@dataclass(frozen=True)
class SimModel:
    """One model: its family grammar and what differs from it."""

    grammar: str
    device: str
    idn: str = ""
    """The ``*IDN?`` reply ("" = the grammar's)."""
    channels: tuple[str, ...] = ()
    """The ``smu`` channel ids (() = the grammar's)."""
    spans: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Setting name -> (min, max) replacing the grammar's specs."""
    lacks: tuple[str, ...] = ()
    """Settings (by name) and device-level dialogues (by query) of the family grammar this
    model does not have (removed)."""


def _k2400(model: str, volts: float, amps: float, pulses: bool = False) -> SimModel:
    """A 2400-series model: ±`volts`, ±`amps` (data sheet), pulse mode on the 2430 only."""
    idn = f"KEITHLEY INSTRUMENTS INC.,MODEL {model},4500325,C32   Oct  4 2010 14:20:11/A02  /S/K"
    spans = {"volt_level": (-volts, volts), "curr_level": (-amps, amps),
             "ilimit": (1e-9, amps), "vlimit": (2e-4, volts), "curr_range": (0.0, amps),
             "volt_range": (0.0, volts)}
    return SimModel("keithley_2400.yaml", "keithley_2400", idn, spans=spans,
                    lacks=() if pulses else ("shape", "pulse_width", "pulse_delay"))


def _k2600(model: str, channels: tuple[str, ...], volts: float, amps: float,
           lowest_range: float) -> SimModel:
    """A 2600B: its channels, ±`volts` and ±`amps` (the top source ranges, as the family
    grammar and the driver bound them), lowest current measure range."""
    idn = f"Keithley Instruments Inc., Model {model}, 4500136, 4.0.4"
    spans = {"levelv": (-volts, volts), "leveli": (-amps, amps), "limiti": (1e-9, amps),
             "limitv": (0.02, volts), "trigger_limiti": (1e-9, amps),
             "trigger_limitv": (0.02, volts), "measure_rangei": (lowest_range, amps),
             "rangev": (0.1, volts)}
    return SimModel("keithley_2636b.yaml", "keithley_2636b", idn, channels, spans)


def _b2900(model: str, channels: tuple[str, ...], shortest_pulse: float) -> SimModel:
    vendor = "Agilent Technologies" if model.endswith("A") else "Keysight Technologies"
    idn = f"{vendor},{model},MY59000229,5.0.2041.2001"
    both = (":INIT (@1,2)", ":MEAS? (@1,2)")  # one channel: nothing to run together
    return SimModel("keysight_b2902b.yaml", "keysight_b2902b", idn, channels,
                    {"pulse_width": (shortest_pulse, 100000.0)},
                    lacks=() if len(channels) == 2 else both)


_A, _AB = ("a",), ("a", "b")
MODELS: dict[str, SimModel] = {
    "2400": _k2400("2400", 210.0, 1.05),
    "2401": _k2400("2401", 21.0, 1.05),
    "2410": _k2400("2410", 1100.0, 1.05),
    "2420": _k2400("2420", 63.0, 3.15),
    "2425": _k2400("2425", 105.0, 3.15),
    "2430": _k2400("2430", 105.0, 3.15, pulses=True),
    "2440": _k2400("2440", 42.0, 5.25),
    "2450": SimModel("keithley_2450.yaml", "keithley_2450"),
    "2601B": _k2600("2601B", _A, 40.0, 3.0, 1e-7),
    "2602B": _k2600("2602B", _AB, 40.0, 3.0, 1e-7),
    "2604B": _k2600("2604B", _AB, 40.0, 3.0, 1e-7),
    "2611B": _k2600("2611B", _A, 200.0, 1.5, 1e-7),
    "2612B": _k2600("2612B", _AB, 200.0, 1.5, 1e-7),
    "2614B": _k2600("2614B", _AB, 200.0, 1.5, 1e-7),
    "2634B": _k2600("2634B", _AB, 200.0, 1.5, 1e-9),
    "2635B": _k2600("2635B", _A, 200.0, 1.5, 1e-10),
    "2636B": SimModel("keithley_2636b.yaml", "keithley_2636b"),
    **{model: _b2900(model, ("1",) if model[4] == "1" else ("1", "2"),
                     5e-5 if model[3] == "0" else 1e-5)
       for model in ("B2901A", "B2901B", "B2902A", "B2911A", "B2911B", "B2912A", "B2912B")},
    "B2902B": SimModel("keysight_b2902b.yaml", "keysight_b2902b"),
    "707B": SimModel("keithley_707b.yaml", "keithley_707b"),
    "708B": SimModel("keithley_707b.yaml", "keithley_707b",
                     "Keithley Instruments Inc., Model 708B, 04088797, 1.7.0a"),
    "E5250A": SimModel("keysight_e5250a.yaml", "keysight_e5250a"),
    "ARRAYBOARD": SimModel("xbarlab_arrayboard.yaml", "xbarlab_arrayboard"),
}


@cache
def model_grammar(model: str) -> tuple[dict[str, Any], str]:
    """(grammar, device name) simulating `model`: the family grammar with the model's
    differences applied (a copy; the family grammar itself is cached unchanged)."""
    spec = MODELS[model]
    grammar = load_grammar(spec.grammar)
    if not (spec.idn or spec.channels or spec.spans or spec.lacks):
        return grammar, spec.device
    grammar = copy.deepcopy(grammar)
    table = grammar["devices"][spec.device]
    if spec.idn:
        for dialogue in table["dialogues"]:
            if dialogue["q"] == "*IDN?":
                dialogue["r"] = spec.idn
    groups = [table, *table.get("channels", {}).values()]
    if spec.channels:
        table["channels"]["smu"]["ids"] = list(spec.channels)
    table["dialogues"] = [d for d in table["dialogues"] if d["q"] not in spec.lacks]
    for group in groups:
        properties = group.get("properties", {})
        for name in spec.lacks:
            properties.pop(name, None)
        for name, (low, high) in spec.spans.items():
            if name in properties:
                properties[name]["specs"]["min"] = repr(low)
                properties[name]["specs"]["max"] = repr(high)
                default = float(properties[name]["default"])  # within the model's span
                properties[name]["default"] = repr(min(max(default, low), high))
    return grammar, spec.device
