"""Dry-run report and the recording bench that produces it (`xbarlab.run_protocol` with
``dry_run=True`` plays a protocol on it, up to a budget of commands, beside the protocol's
declared plan)."""

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
from xbarlab.plan import Plan, duration
from xbarlab.safety import SafetyGuard, Violation

VIOLATIONS_SHOWN = 10
"""Violations printed by `DryRunReport.format`; the summary keeps them all."""
PLAYED_COMMANDS = 2000
"""Instrument commands a dry run plays on recording instruments before it stops (under a
second or two of play): enough to play small runs whole and the first operations of any run,
whose limits and costs the report shows; the rest of a larger run is its declared plan."""


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
    complete: bool = True
    """Whether the play ran the protocol to its end (else it stopped at the budget, or at
    `stopped`)."""
    stopped: str = ""
    """Why the play stopped before the budget: the protocol needed a measured value (what it
    said); empty otherwise."""
    operation_s: float = 0.0
    """Seconds of the played duration that are round trips and integration (the rest is
    pulses)."""
    points: int = 0
    """Points (readings and pulses) the played part recorded in its run: the unit of a plan."""
    plan: Plan | None = None
    protocol: str = ""
    limits: dict[str, str] = field(default_factory=dict)
    """What the run will set, in words with units: the bench's limits and the protocol's
    parameters that carry a unit."""

    @property
    def operation_count(self) -> int:
        return sum(op["calls"] for op in self.operations.values())

    @property
    def seconds_per_operation(self) -> float:
        """Seconds a played reading or pulse (a point of its run; a bench operation when the
        protocol records no points) took beyond its pulses: round trips and integration (0
        when none was played)."""
        played = self.points or self.operation_count
        return self.operation_s / played if played else 0.0

    @property
    def estimated_duration(self) -> float | None:
        """The played duration of a complete play; else the plan's bound (None without one)."""
        if self.complete:
            return self.duration
        return None if self.plan is None else self.plan.seconds(self.seconds_per_operation)

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
            "estimated_duration_s": self.estimated_duration,
            "played_duration_s": self.duration,
            "played_whole": self.complete,
            "play_stopped_for": self.stopped or None,
            "programming_energy_bound_j": self.energy,
            "programming_energy_estimate_j": self.energy_estimate,
            "violations": list(dict.fromkeys(v.describe() for v in self.violations)),
            "limits": dict(self.limits),
            "plan": None if self.plan is None else self.plan.summary(self.seconds_per_operation),
        }

    def format(self) -> str:
        """A human-readable report."""
        s = self.summary()
        kinds = ", ".join(f"{kind} {op['calls']}" for kind, op in self.operations.items())
        lines = [f"dry run{' of ' + self.protocol if self.protocol else ''} on bench "
                 f"{self.bench!r}: nothing opened, nothing stored"]
        if self.plan is not None:
            lines.append("plan, each phase at its budget:")
            lines += self.plan.format(self.seconds_per_operation)
        lines += [f"will set: {text}" for text in self.limits.values()]
        played = "played whole" if self.complete else (
            f"played up to where it needs a measured value ({self.stopped})" if self.stopped
            else "played its first operations (the dry run stops after "
            f"{PLAYED_COMMANDS} instrument commands)")
        lines += [
            f"{played} on recording instruments: {s['operations']} operations "
            f"({kinds or 'none'}), "
            f"{s['instrument_calls']} instrument commands, {s['pulses']} pulses",
            f"max |V| across a cell: {s['max_abs_voltage']:.4g} V; max |I| the sources allow "
            f"through a cell: {s['max_abs_current']:.4g} A",
            f"programming energy: "
            f"{s['programming_energy_estimate_j']:.4g} J with every biased cell at the "
            f"{self.preset} preset's LRS, at most {s['programming_energy_bound_j']:.4g} J "
            "(sources at their limits)" + ("" if self.complete else " in what was played"),
        ]
        estimate = self.estimated_duration
        if self.complete:
            lines.append(f"estimated duration: {duration(estimate)}")
        elif estimate is not None:
            lines.append(f"estimated duration: at most {duration(estimate)} (every phase at "
                         "its budget)")
        else:
            lines.append(f"estimated duration: more than {duration(self.duration)} (played); "
                         "the protocol declares no plan")
        if self.violations:
            shown = s["violations"][:VIOLATIONS_SHOWN]
            lines.append(f"{len(s['violations'])} distinct limit violation(s):")
            lines += [f"  - {v}" for v in shown]
            if len(s["violations"]) > len(shown):
                lines.append(f"  ... and {len(s['violations']) - len(shown)} more (--json)")
        else:
            lines.append("no limit would be broken" + ("" if self.complete else
                         " in what was played; every parameter is within the bench's limits"))
        return "\n".join(lines)


class RecordingBench:
    """A `Bench` built from a bench file's wiring on recording instruments, and its ledger."""

    def __init__(self, spec: BenchSpec, current_limit: float | None = None,
                 record_violations: bool = True, budget: int | None = None) -> None:
        self.spec = spec
        self.io = IoCounter()
        self.recorder = Recorder(self.io, budget)
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

    def report(self, plan: Plan | None = None, protocol: str = "",
               limits: dict[str, str] | None = None, points: int = 0,
               stopped: str = "") -> DryRunReport:
        """The report of what was played; `points` the readings and pulses it recorded;
        `stopped`: why the protocol stopped, needing a measured value (empty: it did not)."""
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
            complete=not (self.recorder.cut or stopped),
            stopped=stopped,
            operation_s=self.recorder.operation_s,
            points=points,
            plan=plan,
            protocol=protocol,
            limits=dict(limits or {}),
        )
