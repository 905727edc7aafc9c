"""The ``pipeline`` protocol: the main job end to end, from a fresh chip to a trained network.

Each stage is a protocol of its own, run on the same open bench as a child run of the
pipeline's run (`xbarlab.engine.run_stage`):

1. ``forming``: every cell surveyed (a whole row per measurement on an array board), the
   pristine ones formed.
2. ``read-map``: the conductance map before (``ground`` scheme).
3. ``calibrate-parasitics`` (unless ``calibrate`` is false): the chip's source, line and sense
   resistances measured and stored as its calibration record, with which the later stages'
   reads and products are corrected (`xbarlab.engine.run_stage` attaches it).
4. ``train``: the defect map measured, the network (``quantizer``, default ternary) trained in
   software, placed around the defects, programmed with verify, its ex-situ accuracy measured,
   then ``loop_epochs`` epochs of chip-in-the-loop training and the final accuracy.
5. ``read-map``: the conductance map after.

An interrupted pipeline resumes at the stage it stopped in (its finished stages are not run
again; the stage that was cut short continues its own run). The metrics hold one row per stage
(its run, status, pulses, energy, bench time: seconds spent in instrument I/O, which on a
virtual bench includes its simulation; wall time) and the accuracies the train stage measured;
``xbarlab run pipeline`` prints them as one table (`pipeline_table`), and ``xbarlab report``
draws every stage's figures (`pipeline_figures`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Annotated, Any

from xbarlab.protocols.parameters import Seed, VRead
from xbarlab.protocols.train import (
    Hidden,
    LoopEpochs,
    LoopSamples,
    Pool,
    TestSamples,
    WeightQuantizer,
)

from xbarlab.engine import STAGE_CHECKPOINT, run_stage
from xbarlab.params import Param, ParameterError
from xbarlab.plan import Plan
from xbarlab.registry import available_protocols, get_protocol, refuse, register_protocol

FINISHED = "stage {name}"
"""Checkpoint of a finished stage: its row of the table."""

ACCURACIES = (("software", "accuracy_software"), ("ex situ", "accuracy_ex_situ"),
              ("chip in the loop", "accuracy_chip_in_loop"))
"""(label, metric of the train stage) of each accuracy the table shows."""


@dataclass(frozen=True)
class Stage:
    """One stage: its name in the run store (``pipeline.stage``), the protocol it runs and
    that protocol's parameters, made from the pipeline's."""

    name: str
    protocol: str
    params: Callable[[Mapping[str, Any]], dict[str, Any]]


STAGES = (
    Stage("forming", "forming", lambda p: {"v_read": p["v_read"]}),
    Stage("map before", "read-map", lambda p: {"v_read": p["v_read"], "scheme": "ground"}),
    Stage("calibration", "calibrate-parasitics",
          lambda p: {"v_read": p["v_read"], "seed": p["seed"],
                     "patterns": p["calibration_patterns"]}),
    Stage("train", "train", lambda p: {key: p[key] for key in (
        "quantizer", "hidden", "pool", "seed", "loop_epochs", "loop_samples", "test_samples",
        "v_read")}),
    Stage("map after", "read-map", lambda p: {"v_read": p["v_read"], "scheme": "ground"}),
)


def _run(stage: Stage, bench, run, progress, values: Mapping[str, Any]) -> dict[str, Any]:
    """Run `stage` to its end; its row of the table."""
    start, io_start = time.perf_counter(), bench.io.seconds
    result = run_stage(stage.name, stage.protocol, bench, run, progress,
                       **stage.params(values))
    metrics = result.metrics
    energy_key = next((k for k in ("energy_j", "energy_bound_j") if k in metrics), None)
    return {"stage": stage.name, "protocol": stage.protocol, "run_id": result.run_id,
            "status": result.status,
            "pulses": next((metrics[k] for k in ("pulses", "pulses_total") if k in metrics),
                           None),
            "energy_j": metrics[energy_key] if energy_key else None,
            "energy_kind": _energy_kind(energy_key, metrics),
            "bench_s": bench.io.seconds - io_start,
            "wall_s": time.perf_counter() - start}


def _energy_kind(key: str | None, metrics: Mapping[str, Any]) -> str | None:
    """How a stage's energy was had: "measured" (what the instruments delivered), "estimated"
    (computed where nothing measured it) or "bound" (an upper bound); None without one."""
    if key is None:
        return None
    if key == "energy_bound_j":
        return "bound"
    return "estimated" if metrics.get("energy_measured") is False else "measured"


class _StageProgress:
    """The pipeline's progress as one stage sees it: its phases labelled with the stage, and
    the phases it plans counted after those already shown."""

    def __init__(self, progress, label: str):
        self._progress, self._label = progress, label

    def plan(self, phases: int) -> None:
        self._progress.plan(self._progress.phase + phases)

    def start(self, total: int, description: str) -> None:
        self._progress.start(total, f"{self._label}: {description}")

    def describe(self, description: str) -> None:
        self._progress.describe(f"{self._label}: {description}")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._progress, name)


def pipeline_table(metrics: Mapping[str, Any]) -> str:
    """The pipeline's metrics as one text table: a row per stage, the totals, the accuracies."""
    header = ("stage", "run", "status", "pulses", "energy (J)", "bench (s)", "wall (s)")
    kinds = {row["energy_kind"] for row in metrics["stages"]}
    rows = [(row["stage"], str(row["run_id"]), row["status"], _count(row["pulses"]),
             _energy(row["energy_j"], row["energy_kind"]), f"{row['bench_s']:.1f}",
             f"{row['wall_s']:.1f}") for row in metrics["stages"]]
    rows.append(("total", "", "", _count(metrics["pulses"]),
                 _energy(metrics["energy_j"], next((kind for kind in ("bound", "estimated")
                                                    if kind in kinds), None)),
                 f"{metrics['bench_time_s']:.1f}", f"{metrics['wall_time_s']:.1f}"))
    widths = [max(len(line[k]) for line in (header, *rows)) for k in range(len(header))]
    lines = ["  ".join(cell.ljust(width) if k < 3 else cell.rjust(width)
                       for k, (cell, width) in enumerate(zip(line, widths, strict=True)))
             for line in (header, *rows)]
    lines.insert(1, "-" * len(lines[0]))
    lines.insert(len(lines) - 1, "-" * len(lines[0]))
    lines.append("accuracy on the test set: " + ", ".join(
        f"{label} {_percent(metrics.get(metric))}" for label, metric in ACCURACIES))
    if "bound" in kinds:
        lines.append("<= : an upper bound (the stage reports a bound, not the delivered energy)")
    if "estimated" in kinds:
        lines.append("~ : estimated (the selected cells' share; no instrument measured it)")
    return "\n".join(lines)


def _count(value: Any) -> str:
    return "-" if value is None else f"{value:,}"


def _energy(value: Any, kind: str | None) -> str:
    mark = {"bound": "<= ", "estimated": "~ "}.get(kind, "")
    return "-" if value is None else f"{mark}{value:.3g}"


def _percent(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def pipeline_figures(run) -> Iterable[tuple[str, Any]]:
    """Every stage's figures (its maps and its protocol's own), then pulses and energy per
    stage."""
    from xbarlab.figures import map_figures

    store = run.store()
    protocols = available_protocols()
    for child in store.children(run.run_id):
        stage = store.open_run(child.run_id)
        label = stage.checkpoints().get(STAGE_CHECKPOINT, child.protocol)
        for caption, figure in map_figures(stage):
            yield f"{label}: {caption}", figure
        own = getattr(protocols.get(child.protocol), "figures", None)
        if own is not None:
            for caption, figure in own(stage):
                yield f"{label}: {caption}", figure
    metrics = run.checkpoints().get("metrics")
    if metrics:
        yield "pulses and energy per stage", _costs_figure(metrics["stages"])


def _costs_figure(rows: list[Mapping[str, Any]]):
    """Bars of each stage's pulses and energy."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 3.2))
    names = [row["stage"] for row in rows]
    for axes, key, label in zip(figure.subplots(1, 2), ("pulses", "energy_j"),
                                ("pulses (count)", "energy (J)"), strict=True):
        axes.bar(names, [row[key] or 0 for row in rows], color="tab:blue")
        axes.set_ylabel(label)
        axes.set_xlabel("stage")
        axes.tick_params(axis="x", labelrotation=30)
    return figure


def _stages_fit(values: Mapping[str, Any], spec) -> None:
    """Cross-check: every stage's parameters hold on this bench (a width the bench cannot
    pulse, a network larger than the chip), so a pipeline that cannot finish is refused in one
    line before anything opens, not after its first stages."""
    for stage in _stages(values):
        try:
            get_protocol(stage.protocol).resolve(stage.params(values), spec)
        except ParameterError as error:
            refuse(f"stage {stage.name!r} ({stage.protocol}): {error}")


def _stages(values: Mapping[str, Any]) -> list[Stage]:
    """The stages the pipeline runs with parameters `values`."""
    return [stage for stage in STAGES
            if values["calibrate"] or stage.protocol != "calibrate-parasitics"]


def pipeline_plan(values: Mapping[str, Any], spec) -> Plan:
    """Every stage's plan with the parameters the pipeline gives it, its phases named after
    the stage."""
    phases = []
    for stage in _stages(values):
        protocol = get_protocol(stage.protocol)
        plan = protocol.plan(protocol.resolve(stage.params(values), spec), spec)
        phases += [replace(phase, name=f"{stage.name}: {phase.name}") for phase in plan.phases]
    return Plan.of(phases)


@register_protocol("pipeline", checks=[_stages_fit], figures=pipeline_figures,
                   table=pipeline_table, plan=pipeline_plan,
                   default_bench="board")
def pipeline(
    bench, run, progress, *,
    quantizer: WeightQuantizer = "ternary",
    hidden: Hidden = 16,
    pool: Pool = 1,
    loop_epochs: LoopEpochs = 2,
    loop_samples: LoopSamples = 300,
    test_samples: TestSamples = 0,
    calibrate: Annotated[bool, Param("measure the parasitic resistances and correct the "
                                     "later stages' reads and products with them")] = True,
    calibration_patterns: Annotated[int, Param(
        "random binary patterns the calibration programs and measures", zero="the chip as it "
        "is (fast; a line without low-resistance cells stays unidentified, as its interval "
        "says)", minimum=0, maximum=16)] = 0,
    seed: Seed = 0,
    v_read: VRead = 0.2,
) -> dict:
    """Form the chip, map it, measure its parasitics (unless calibrate is false), train and
    program a quantized network ex situ and with the chip in the loop, map it again, on the
    embedded board bench unless another is named (see the module docstring); one table of
    accuracies, pulses, energy and times per stage."""
    values = {"quantizer": quantizer, "hidden": hidden, "pool": pool, "loop_epochs": loop_epochs,
              "loop_samples": loop_samples, "test_samples": test_samples, "seed": seed,
              "v_read": v_read, "calibrate": calibrate,
              "calibration_patterns": calibration_patterns}
    stages = _stages(values)
    done = run.checkpoints()
    rows, trained = [], {}
    for number, stage in enumerate(stages, 1):
        key = FINISHED.format(name=stage.name)
        if key not in done:
            done[key] = _run(stage, bench, run, _StageProgress(
                progress, f"stage {number} of {len(stages)} ({stage.name})"), values)
            run.checkpoint(key, done[key])
        rows.append(done[key])
        if stage.protocol == "train":
            trained = run.store().open_run(done[key]["run_id"]).checkpoints().get("metrics", {})
    return {"stages": rows,
            **{metric: trained.get(metric) for _, metric in ACCURACIES},
            "pulses": sum(row["pulses"] or 0 for row in rows),
            "energy_j": sum(row["energy_j"] or 0.0 for row in rows),
            "bench_time_s": sum(row["bench_s"] for row in rows),
            "wall_time_s": sum(row["wall_s"] for row in rows)}
