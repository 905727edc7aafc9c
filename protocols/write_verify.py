"""The ``write-verify`` protocol: program a target conductance map cell by cell, closed loop.

Source: reference/techniques.md §5 (D1 adaptive, Alibart et al., Nanotechnology 23:075201
(2012); D2 ISPVA, Milo et al., IEEE TED 68 (2021); D4 coarse-then-fine; D5 relaxation-aware
iteration, Wan et al., Nature 608:504 (2022) "NeuRRAM"). The per-cell loop, stuck detection and
energy account are `xbarlab.protocols.programming.program_cell`; this module adds the map,
the run store, the relaxation re-check and the comparison of algorithms.

What it runs on the ``rows`` x ``cols`` rectangle from cell (0, 0) (the whole chip by default,
minus its masked cells):

1. Targets: seeded, uniform over [``g_low``, ``g_high``] siemens (the analog preset's range
   shrunk by its device-to-device spread, so every healthy cell can reach every target).
2. For each algorithm of ``algorithm`` (one name, or several joined by ``,`` to compare them on
   the same cells and targets): when comparing, every cell first gets ``prepare_pulses`` RESET
   pulses at ``-v_max`` (recorded, not charged), so no algorithm inherits another's work. Then
   every cell is programmed with `program_cell`, one `AmplitudeMemory` shared by the cells of
   the pass (a resumed run starts a fresh one).
3. Relaxation re-check (D5): the bench holds for ``relax_wait`` seconds (`hold`: an
   instrument-timed 0 V pulse train, so the same code waits on a real and a virtual bench),
   every programmed cell is re-read, and cells that drifted out of the tolerance are
   programmed again; ``relax_rounds`` times. (``settle`` > 0 instead verifies every pulse after
   that long, so the loop converges on the relaxed state.)
4. A final re-read of every cell (after ``relax_wait`` more) is the map ``final-<algorithm>``
   and decides ``reread_within_tolerance``.

Metrics per algorithm (``--json``; the first algorithm's are also at the top level, the keys
other code reads): ``success_rate`` (confirmed cells / cells not found stuck), ``mean_pulses``
and ``p95_pulses`` (over cells not found stuck, re-check pulses included), ``energy_j`` (sum),
``max_rel_error_success`` (largest relative error at confirmation among successful cells),
``stuck_cells`` (list of [row, col]), ``reread_within_tolerance`` (fraction of successful cells
still within tolerance at the final re-read) and ``reread_rel_error_p50``.

Every pulse and reading is a point of the run as it happens; each cell's result is a
checkpoint (``<algorithm>/<row>,<col>``; re-check rounds ``<algorithm>/recheck<k>``), so a
resumed run programs only what it had not finished.
"""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np
from matplotlib.figure import Figure
from xbarlab.protocols.plots import run_plot_path
from xbarlab.protocols.programming import (
    ALGORITHMS,
    AmplitudeMemory,
    CellResult,
    PulseSettings,
    hold,
    program_cell,
)
from xbarlab.protocols.recording import recorded_batches

from xbarlab.bench.protocols import register_protocol
from xbarlab.safety import signals_held

__all__ = ["program_cell", "write_verify"]


@register_protocol("write-verify")
def write_verify(bench, run, progress, algorithm: str = "adaptive", tolerance: float = 0.01,
                 g_low: float = 1.5e-6, g_high: float = 30e-6, seed: int = 0, rows: int = 0,
                 cols: int = 0, v_read: float = 0.2, reads: int = 2, confirm_reads: int = 0,
                 read_scheme: str = "ground", pulse_scheme: str = "v/2", width: float = 1e-6,
                 v_set_start: float = 0.8, v_reset_start: float = -0.8, v_step: float = 0.05,
                 v_max: float = 1.3,
                 max_pulses: int = 200, stuck_pulses: int = 2, stuck_change: float = 0.05,
                 current_limit: float = 0.0, settle: float = 0.0, relax_wait: float = 1.0,
                 relax_rounds: int = 1, prepare_pulses: int = 3) -> dict:
    """Program seeded targets to `tolerance` with each algorithm of `algorithm`; report pulses,
    energy, success, stuck cells and the re-read after relaxation (see the module docstring).

    Conductances in siemens, voltages in volts, `width`, `settle` (hold between a pulse and
    its verify) and `relax_wait` in seconds,
    `current_limit` in amperes (0: the bench's) for every pulse and reading.
    """
    algorithms = [name.strip() for name in algorithm.split(",")]
    for name in algorithms:
        if name not in ALGORITHMS:
            raise ValueError(f"algorithm = {algorithm!r}: allowed one or more of "
                             f"{', '.join(ALGORITHMS)} joined by ','")
    if len(set(algorithms)) != len(algorithms):
        raise ValueError(f"algorithm = {algorithm!r}: each algorithm at most once")
    rows, cols = rows or bench.rows, cols or bench.cols
    _check("rows", rows, 1, bench.rows)
    _check("cols", cols, 1, bench.cols)
    _check("g_low", g_low, 1e-12, 1.0, " S")
    _check("g_high", g_high, g_low, 1.0, " S (at least g_low)")
    _check("relax_wait", relax_wait, 1e-6, 10.0, " s")
    _check("relax_rounds", relax_rounds, 0, 100)
    _check("prepare_pulses", prepare_pulses, 0, 100)
    settings = {"tolerance": tolerance, "v_read": v_read, "reads": reads,
                "confirm_reads": confirm_reads,
                "read_scheme": read_scheme, "pulse_scheme": pulse_scheme, "width": width,
                "v_set_start": v_set_start, "v_reset_start": v_reset_start, "v_step": v_step,
                "v_max": v_max, "max_pulses": max_pulses, "stuck_pulses": stuck_pulses,
                "stuck_change": stuck_change, "current_limit": current_limit or None,
                "settle": settle}
    config = PulseSettings(**settings)
    config.check(bench.spec.limits.max_voltage)  # before anything is sent or stored
    mask = np.zeros((bench.rows, bench.cols), bool)
    mask[:rows, :cols] = True
    cells = bench.map_cells(mask)
    targets = np.full((bench.rows, bench.cols), np.nan)
    targets[:rows, :cols] = np.random.default_rng(seed).uniform(g_low, g_high, (rows, cols))
    if not run.checkpoints().get("targets"):
        run.record_map("targets", targets)
        run.checkpoint("targets", True)
    per_algorithm = {}
    finals = {}
    for name in algorithms:
        memory = AmplitudeMemory(config)
        results = _program_all(bench, run, progress, name, cells, targets, settings, memory,
                               prepare_pulses if len(algorithms) > 1 else 0, v_max, width)
        for k in range(relax_rounds):
            drifted = _recheck(bench, run, progress, f"{name}/recheck{k}", results, tolerance,
                               v_read, read_scheme, reads, relax_wait)
            redo = _program_all(bench, run, progress, f"{name}/redo{k}", drifted, targets,
                                settings, memory, 0, v_max, width)
            for cell, again in redo.items():
                results[cell] = _merged(results[cell], again)
        finals[name] = _final_map(bench, run, progress, f"final-{name}", cells, v_read,
                                  read_scheme, reads, relax_wait)
        per_algorithm[name] = _metrics(results, finals[name], targets, tolerance)
    metrics = dict(per_algorithm[algorithms[0]])
    metrics["algorithm"] = algorithms[0]
    if len(algorithms) > 1:
        metrics["algorithms"] = per_algorithm
    metrics["cells"] = len(cells)
    metrics["plot"] = str(_plot(run, per_algorithm, finals, targets, tolerance))
    return metrics


def _check(name: str, value, low, high, unit: str = "") -> None:
    if isinstance(value, bool) or not (low <= value <= high):
        raise ValueError(f"{name} = {value!r}: allowed {low:g} to {high:g}{unit}")


def _program_all(bench, run, progress, phase, cells, targets, settings, memory, prepare, v_max,
                 width) -> dict[tuple[int, int], CellResult]:
    """Program `cells` (after `prepare` RESET pulses each), sharing the adaptive amplitudes
    of `memory`; one checkpoint per cell."""
    done = run.checkpoints()
    if prepare and not done.get(f"{phase}/prepared"):
        progress.start(len(cells), f"{phase}: preparing ({prepare} RESET pulses per cell)")
        for row, col in cells:
            for _ in range(prepare):
                with signals_held():
                    bench.pulse(row, col, -v_max, width, settings["pulse_scheme"])
                    run.record_point(row, col, "reset", voltage=-v_max, pulse_width=width)
            progress.advance()
        run.checkpoint(f"{phase}/prepared", True)
    results = {}
    progress.start(len(cells), f"{phase}: programming")
    for row, col in cells:
        key = f"{phase}/{row},{col}"
        if key in done:
            state = {k: math.nan if v is None else v for k, v in done[key].items()}
            results[row, col] = CellResult(**state)
        else:
            algorithm = phase.split("/")[0]
            result = program_cell(bench, row, col, float(targets[row, col]),
                                  algorithm=algorithm, run=run, memory=memory, **settings)
            state = asdict(result)
            state.pop("trace")
            run.checkpoint(key, {k: None if isinstance(v, float) and not math.isfinite(v)
                                 else v for k, v in state.items()})  # JSON: NaN as null
            results[row, col] = result
        progress.advance()
    return results


def _merged(first: CellResult, again: CellResult) -> CellResult:
    """A cell programmed twice: the second outcome, the pulses and energy of both."""
    again.pulses += first.pulses
    again.energy_j += first.energy_j
    again.reads += first.reads
    again.reversals += first.reversals
    return again


def _read_cells(bench, run, progress, phase, cells, v_read, read_scheme, reads) -> np.ndarray:
    """Mean of `reads` readings of each cell (each recorded) as a map; NaN elsewhere."""
    mask = np.zeros((bench.rows, bench.cols), bool)
    for row, col in cells:
        mask[row, col] = True
    total = np.zeros(mask.shape)
    progress.start(len(cells) * reads, f"{phase}: re-reading")
    for _ in range(reads):
        for batch in recorded_batches(run, bench.iter_read_batches(v_read, read_scheme,
                                                                     mask=mask)):
            for r in batch:
                total[r.row, r.col] += r.conductance
            progress.advance(len(batch))
    return np.where(mask, total / reads, np.nan)


def _recheck(bench, run, progress, phase, results, tolerance, v_read, read_scheme, reads,
             relax_wait) -> list[tuple[int, int]]:
    """D5: wait, re-read the successful cells, return those now outside the tolerance."""
    done = run.checkpoints()
    if phase in done:
        return [tuple(cell) for cell in done[phase]]
    chosen = [cell for cell, result in results.items() if result.success]
    hold(bench, relax_wait)
    conductance = _read_cells(bench, run, progress, phase, chosen, v_read, read_scheme, reads)
    drifted = [cell for cell in chosen
               if abs(conductance[cell] - results[cell].target) > tolerance * results[cell].target]
    run.checkpoint(phase, [list(cell) for cell in drifted])
    return drifted


def _final_map(bench, run, progress, phase, cells, v_read, read_scheme, reads,
               relax_wait) -> np.ndarray:
    done = run.checkpoints()
    if done.get(phase):
        return run.latest_map(phase)
    hold(bench, relax_wait)
    conductance = _read_cells(bench, run, progress, phase, cells, v_read, read_scheme, reads)
    run.record_map(phase, conductance)
    run.checkpoint(phase, True)
    return conductance


def _metrics(results, final, targets, tolerance) -> dict:
    healthy = [r for r in results.values() if not r.stuck]
    success = [r for r in healthy if r.success]
    pulses = np.array([r.pulses for r in healthy], float)
    reread = np.array([abs(final[r.row, r.col] - r.target) / r.target for r in success])
    return {
        "success_rate": len(success) / len(healthy) if healthy else None,
        "mean_pulses": float(pulses.mean()) if healthy else None,
        "p95_pulses": float(np.percentile(pulses, 95)) if healthy else None,
        "energy_j": float(sum(r.energy_j for r in results.values())),
        "max_rel_error_success": max((r.rel_error for r in success), default=None),
        "stuck_cells": sorted([r.row, r.col] for r in results.values() if r.stuck),
        "reread_within_tolerance": float(np.mean(reread <= tolerance)) if success else None,
        "reread_rel_error_p50": float(np.median(reread)) if success else None,
        "pulses_total": int(sum(r.pulses for r in results.values())),
    }


def _plot(run, per_algorithm, finals, targets, tolerance):
    """Final re-read against target per algorithm (stuck cells as crosses), and each
    algorithm's mean pulses per healthy cell."""
    figure = Figure(figsize=(11, 4.4))
    left, right = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    line = np.array([np.nanmin(targets), np.nanmax(targets)]) * 1e6
    left.plot(line, line, "k-", linewidth=0.8, label="target")
    left.fill_between(line, line * (1 - tolerance), line * (1 + tolerance), color="0.8")
    for name, final in finals.items():
        stuck = np.zeros(targets.shape, bool)
        for row, col in per_algorithm[name]["stuck_cells"]:
            stuck[row, col] = True
        for cells, marker, label in ((np.isfinite(targets) & ~stuck, ".", "final re-read"),
                                     (stuck, "x", "stuck")):
            left.plot(targets[cells] * 1e6, final[cells] * 1e6, marker, markersize=3,
                      label=f"{name}: {label}")
    left.set(xlabel="target (µS)", ylabel="re-read conductance (µS)",
             title=f"write-verify ±{tolerance:.0%}, re-read after relaxation")
    left.legend(fontsize="small")
    for name, metrics in per_algorithm.items():
        right.bar([name], [metrics["mean_pulses"] or 0.0],
                  label=f"{name}: mean {metrics['mean_pulses'] or 0:.1f}, "
                        f"p95 {metrics['p95_pulses'] or 0:.0f}")
    right.set(ylabel="pulses per cell (mean)", title="pulses per healthy cell")
    right.legend(fontsize="small")
    path = run_plot_path(run, "write-verify")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path
