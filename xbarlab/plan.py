"""A protocol's plan: its phases and what each may do at most, from its parameters and the bench
file alone.

A protocol that loops until a measurement says stop (a write-verify loop, a forming ramp) can
only be bounded before it runs: by its budgets (most pulses a cell, readings a verify, re-check
rounds). ``register_protocol(name, plan=fn)`` declares ``fn(values, bench_spec) -> Plan``; the
dry run prints it (``xbarlab run NAME --dry-run``) in a fraction of a second whatever the
budgets, where playing every pulse of them on recording instruments could take hours.

Each `Phase` counts the cells it works on, the most pulses and readings it may take, and the
most instrument time it may spend in pulses and waits (pulse widths, settle and hold waits,
retention delays). The plan's duration adds, for each operation, its round trips and
integration, at the cost the dry run measured for the protocol's first operations on the
recording bench.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Phase:
    """One phase of a plan: `cells` worked on, at most `pulses` pulses and `readings` readings
    (sweep points, verify and re-read readings, products), and at most `seconds` of instrument
    time in pulses and waits."""

    name: str
    cells: int
    pulses: int = 0
    readings: int = 0
    seconds: float = 0.0

    @property
    def operations(self) -> int:
        return self.pulses + self.readings


@dataclass(frozen=True)
class Plan:
    """The phases a run goes through, in order, each at its budget."""

    phases: tuple[Phase, ...]

    @classmethod
    def of(cls, phases: Iterable[Phase]) -> Plan:
        return cls(tuple(phases))

    @property
    def pulses(self) -> int:
        return sum(phase.pulses for phase in self.phases)

    @property
    def readings(self) -> int:
        return sum(phase.readings for phase in self.phases)

    @property
    def operations(self) -> int:
        return self.pulses + self.readings

    def seconds(self, per_operation: float) -> float:
        """The most time the plan takes: its pulses and waits, and `per_operation` seconds
        (round trips and integration) for each of its operations."""
        return sum(phase.seconds for phase in self.phases) + self.operations * per_operation

    def summary(self, per_operation: float) -> dict:
        """JSON-ready: every phase, the totals and the duration bound."""
        return {"phases": [{"name": p.name, "cells": p.cells, "pulses_at_most": p.pulses,
                            "readings_at_most": p.readings, "instrument_s_at_most": p.seconds}
                           for p in self.phases],
                "pulses_at_most": self.pulses, "readings_at_most": self.readings,
                "duration_s_at_most": self.seconds(per_operation)}

    def format(self, per_operation: float) -> list[str]:
        """The plan as a table, one line a phase, and its duration bound."""
        width = max([len("phase"), *(len(p.name) for p in self.phases)])
        lines = [f"  {'phase':<{width}}  {'cells':>6}  {'pulses <=':>11}  {'readings <=':>12}"
                 f"  {'time <=':>9}"]
        for p in self.phases:
            lines.append(f"  {p.name:<{width}}  {p.cells:>6}  {p.pulses:>11}  {p.readings:>12}"
                         f"  {duration(p.seconds + p.operations * per_operation):>9}")
        lines.append(f"  {'total':<{width}}  {'':>6}  {self.pulses:>11}  {self.readings:>12}"
                     f"  {duration(self.seconds(per_operation)):>9}")
        return lines


def duration(seconds: float) -> str:
    """Seconds in the largest unit that keeps the number readable (s, min, h, d)."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= 2 * size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} s"


__all__ = ["Phase", "Plan", "duration"]
