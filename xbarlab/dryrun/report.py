"""Dry-run report and the recording bench that produces it (`xbarlab.run_protocol` with
``dry_run=True`` plays a protocol on it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xbarlab.bench import Bench, IoCounter, driver_class
from xbarlab.bench.opening import model_pulse_capability
from xbarlab.benchfile import Bench as BenchSpec
from xbarlab.dryrun.instruments import (
    Recorder,
    RecordingBoard,
    RecordingMatrix,
    RecordingPairedSMU,
    RecordingSMU,
)
from xbarlab.dryrun.ledger import Ledger
from xbarlab.physics.presets import preset
from xbarlab.safety import SafetyGuard, Violation

VIOLATIONS_SHOWN = 10
"""Violations printed by `DryRunReport.format`; the summary keeps them all."""


@dataclass
class DryRunReport:
    """What a protocol would do: counts, per-cell worst case, time, energy and violations."""

    bench: str
    preset: str
    operations: dict[str, dict[str, int]]
    instrument_calls: int
    pulses: int
    max_voltage: np.ndarray
    max_current: np.ndarray
    duration: float
    energy: float
    energy_estimate: float
    violations: list[Violation] = field(default_factory=list)

    @property
    def operation_count(self) -> int:
        return sum(op["calls"] for op in self.operations.values())

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "bench": self.bench,
            "operations": self.operation_count,
            "operations_by_kind": self.operations,
            "instrument_calls": self.instrument_calls,
            "pulses": self.pulses,
            "max_abs_voltage": float(self.max_voltage.max(initial=0.0)),
            "max_abs_current": float(self.max_current.max(initial=0.0)),
            "estimated_duration_s": self.duration,
            "programming_energy_bound_j": self.energy,
            "programming_energy_estimate_j": self.energy_estimate,
            "violations": list(dict.fromkeys(v.describe() for v in self.violations)),
        }

    def format(self) -> str:
        """A human-readable report."""
        s = self.summary()
        kinds = ", ".join(f"{kind} {op['calls']}" for kind, op in self.operations.items())
        lines = [
            f"dry run on bench {self.bench!r}: {s['operations']} operations "
            f"({kinds or 'none'}), "
            f"{s['instrument_calls']} instrument commands, {s['pulses']} pulses",
            f"max |V| across a cell: {s['max_abs_voltage']:.4g} V; max |I| the sources allow "
            f"through a cell: {s['max_abs_current']:.4g} A",
            f"estimated duration: {s['estimated_duration_s']:.3f} s; programming energy: "
            f"{s['programming_energy_estimate_j']:.4g} J with every biased cell at the "
            f"{self.preset} preset's LRS, at most {s['programming_energy_bound_j']:.4g} J "
            "(sources at their limits)",
        ]
        if self.violations:
            shown = s["violations"][:VIOLATIONS_SHOWN]
            lines.append(f"{len(s['violations'])} distinct limit violation(s):")
            lines += [f"  - {v}" for v in shown]
            if len(s["violations"]) > len(shown):
                lines.append(f"  ... and {len(s['violations']) - len(shown)} more (--json)")
        else:
            lines.append("no limit would be broken")
        return "\n".join(lines)


class RecordingBench:
    """A `Bench` built from a bench file's wiring on recording instruments, and its ledger."""

    def __init__(self, spec: BenchSpec, current_limit: float | None = None,
                 record_violations: bool = True) -> None:
        self.spec = spec
        self.io = IoCounter()
        self.recorder = Recorder(self.io)
        self.smus: dict[str, RecordingSMU] = {}
        self.matrices: dict[str, RecordingMatrix] = {}
        self.boards: dict[str, RecordingBoard] = {}
        self.pairs: dict[str, RecordingPairedSMU] = {}
        for name, inst in spec.instruments.items():
            if inst.kind == "smu":
                channels = {}
                for terminal in inst.info.terminals:
                    key = f"{name}.{terminal}"
                    channels[terminal] = self.smus[key] = RecordingSMU(
                        key, self.recorder, model_pulse_capability(inst.driver, inst.model))
                if len(channels) >= 2 and hasattr(driver_class(inst.driver), "sweep_pair"):
                    self.pairs[name] = RecordingPairedSMU(name, channels, self.recorder)
            elif inst.kind == "matrix":
                self.matrices[name] = RecordingMatrix(name, self.recorder)
            else:
                self.boards[name] = RecordingBoard(name, inst.rows, inst.cols, self.recorder)
        self.guard = SafetyGuard(spec.limits, record_violations=record_violations)
        g_on = preset(spec.chip.preset).g_max  # the chip's device kind, as a model only
        self.ledger = Ledger(spec, self.smus, self.matrices, self.boards, self.guard, g_on,
                             self.pairs)
        self.recorder.listeners.append(self.ledger.observe)
        self.bench = Bench(spec, self.smus, self.matrices, self.boards, guard=self.guard,
                           io=self.io, identities={n: "dry run" for n in spec.instruments},
                           current_limit=current_limit, drivers=self.pairs)

    def report(self) -> DryRunReport:
        return DryRunReport(
            bench=self.spec.name,
            preset=self.spec.chip.preset,
            operations=self.bench.round_trips(),
            instrument_calls=self.io.total,
            pulses=self.ledger.pulses,
            max_voltage=self.ledger.max_voltage.copy(),
            max_current=self.ledger.max_current.copy(),
            duration=self.recorder.duration,
            energy=self.ledger.energy,
            energy_estimate=self.ledger.energy_estimate,
            violations=list(self.guard.violations),
        )
