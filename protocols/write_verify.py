"""The ``write-verify`` protocol: program a target conductance map cell by cell, closed loop.

Source: reference/techniques.md §5 (D1 adaptive, Alibart et al., Nanotechnology 23:075201
(2012); D2 ISPVA, Milo et al., IEEE TED 68 (2021); D4 coarse-then-fine; D5 relaxation-aware
iteration, Wan et al., Nature 608:504 (2022) "NeuRRAM"). The per-cell loop, stuck detection and
energy account are `xbarlab.protocols.programming.program_cell`; this module adds the map,
the run store, the relaxation re-check and the comparison of algorithms.

Success means: within the tolerance at the final re-read after relaxation, in the final map.
Two things move a cell after a verify that looked right, and the flow is built against both.
Relaxation (Wan 2022 on the ``analog`` preset: a spread of 0.7-2.3 µS one second after a
switching event, growing as the square root of the move for small corrective moves; τ
0.1 s) moves every cell after its last pulse; and the ground-scheme read of a board is biased
low by the IR drop of its selected row, which carries the current of every cell of that row,
so a cell confirmed early reads differently once the rest of its row has been programmed.

What it runs on the ``rows`` x ``cols`` rectangle from cell (0, 0) (the whole chip by default,
minus its masked cells):

1. Targets: seeded, uniform over [``g_low``, ``g_high``] siemens. Left at 0 (the default),
   the range is learned from the chip (`xbarlab.protocols.characterise`): ``probe`` cells of
   the rectangle are driven to their HRS and LRS bounds with ``v_max`` pulses and measured,
   and the targets span ``LOW_MARGIN`` x the highest HRS bound to ``HIGH_MARGIN`` x the lowest
   LRS bound measured, so that every healthy cell like them can reach every target without
   creeping along a soft bound (metrics ``g_low``, ``g_high``, ``target_range``: "learned" or
   "given"; ``probe_pulses``: the characterisation's pulses, recorded, not in
   ``pulses_total``).
2. For each algorithm of ``algorithm`` (one name, or several joined by ``,`` to compare them on
   the same cells and targets): when comparing, every cell first gets ``prepare_pulses`` RESET
   pulses at ``-v_max`` (recorded, not charged), so no algorithm inherits another's work. One
   `AmplitudeMemory` is shared by the cells of the algorithm (a resumed run starts a fresh
   one).
3. First pass (``first_pass`` > 0): every cell to within ``first_pass`` (relative, 10 % by
   default), stopping at the first verify inside, no confirmation. Every row then carries
   nearly its final current, so the second pass verifies each cell in about its final
   environment (from a RESET map, the ground read of a 32-column row of targets shifts by up
   to 1 %). Stuck cells are found here.
4. Second pass: every healthy cell to ``tolerance`` with `program_cell`, each verify
   ``settle`` seconds after its pulse (1 s, ten relaxation times: the relaxed state), each
   confirmation inside the guard band (``guard`` 3 standard deviations of the difference
   between the confirming mean and an independent mean of ``reread_reads`` readings;
   `programming` module docstring).
5. Re-check rounds (D5, up to ``relax_rounds``): after ``relax_wait`` seconds (`hold`: an
   instrument-timed 0 V pulse train, so the same code waits on a real and a virtual bench),
   every cell of the rectangle is re-read ``reread_reads`` times in the final map (a whole
   row per measurement on a board), cells still undecided near their band's edge up to
   ``REFINE`` times more; confirmed cells now outside their guard band are programmed again
   (pulses counted). The first round that re-programs nothing is the final re-read; if the
   rounds run out, one more re-read is.
6. The final re-read (map ``final-<algorithm>``) decides success: inside the guard band.
   A cell that never gets there is reported (``failed_cells``, with its error), never hidden.

Metrics per algorithm (``--json``; the first algorithm's are also at the top level, the keys
other code reads): ``success_rate`` (successful cells / cells not found stuck), ``mean_pulses``
and ``p95_pulses`` (over cells not found stuck, every pulse of both passes and of re-check
re-programming included), ``energy_j`` (the pulses' energy delivered by the instruments,
`programming` says how; ``energy_measured`` False where some is an estimate),
``max_rel_error_success`` (largest relative error
at the final re-read among successful cells), ``stuck_cells`` (list of [row, col]),
``reread_within_tolerance`` (fraction of successful cells within tolerance at the final
re-read: 1 by construction, the guard band being inside it), ``reread_rel_error_p50``,
``failed_cells`` ([row, col, relative error] of healthy cells not successful) and
``reprogrammed`` (cells re-programmed in each re-check round). Disturb (top level, over every
algorithm run): ``disturb_cells`` cells outside the programmed rectangle, a seeded sample, read
``disturb_reads`` times before the first pulse and after the final re-read
(`xbarlab.protocols.disturb`): ``disturb_rel_median`` / ``disturb_rel_max`` (relative change),
``disturb_null_rel_median`` (the change with no pulse, 30 s apart: the noise alone),
``disturb_rel_stderr_median`` and ``disturb_beyond_3se`` (cells beyond the noise); none when
the rectangle is the whole chip.

Pulses (``benchmarks/bench_write_verify.py``, the whole 32 x 32 ``analog`` bench, both
algorithms on the same cells and targets): adaptive 15.1 per healthy cell (p95 35), ISPVA 67.6.
Cells with low targets take most: on the analog preset a pulse that moves a cell a little is
mostly noise (cycle-to-cycle noise of 3.5 % of the range x sqrt(levels moved), and a relaxation
of sigma(g) x sqrt(d / (0.2 x range)) for a move d, with sigma(g) / g 25-60 % at 1.5-5 µS), so
a cell lands in its ±0.8 % band through a search whose steps shrink with its error (the
adaptive amplitudes, `programming.AmplitudeMemory`). Even knowing the device exactly and
reading it without noise, a cell needs 12.0 pulses on average from its HRS
(``benchmarks/study_write_verify_bound.py``).

The ground read's IR-drop bias (a cell's true conductance lies above its uncorrected re-read
by about 1 % on the 32 x 32 analog bench at the target map) is removed when the chip has a
calibration record (``calibrate-parasitics``): every verify and re-read then comes back
corrected with the calibrated model (``correct``, on by default; `xbarlab.calibration`).

Every pulse and reading is a point of the run as it happens; each cell's result is a
checkpoint (``<algorithm>/first/<row>,<col>``, ``<algorithm>/<row>,<col>``; re-check rounds
``<algorithm>/recheck<k>`` and ``<algorithm>/redo<k>/<row>,<col>``), so a resumed run
programs only what it had not finished. A cell cut off while programmed has its account so far
(pulses, energy, readings) in its checkpoint and goes on with it counted; a re-read cut off goes
on from its stored readings. The metrics of a resumed run are those of its stored points.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Annotated

import numpy as np
from xbarlab.protocols.characterise import (
    characterise_phase,
    learned_values,
    measure_range,
    probe_cells,
)
from xbarlab.protocols.disturb import (
    NULL_WAIT,
    WATCHED_CELLS,
    disturb_metrics,
    disturb_phases,
    read_watched_once,
    watched_cells,
)
from xbarlab.protocols.parameters import (
    Cols,
    Correct,
    PulseScheme,
    ReadScheme,
    Rows,
    Seed,
    VRead,
    Width,
)
from xbarlab.protocols.plots import save_figures, stored_parameters
from xbarlab.protocols.programming import (
    ALGORITHMS,
    DECIDED,
    MOVE_FRACTION,
    AmplitudeMemory,
    CellResult,
    ConfirmReads,
    CurrentLimit,
    Guard,
    MaxPulses,
    MoveFraction,
    PulseSettings,
    Reads,
    Settle,
    StuckChange,
    StuckPulses,
    Tolerance,
    VMax,
    VResetStart,
    VSetStart,
    VStep,
    cell_budget,
    hold,
    program_cell,
)
from xbarlab.protocols.recording import ReadingStats, recorded_batches, stored_readings

from xbarlab.bench import BenchError
from xbarlab.engine import json_ready
from xbarlab.params import Param
from xbarlab.plan import Phase, Plan
from xbarlab.registry import bound_operations, register_protocol
from xbarlab.safety import signals_held

__all__ = ["program_cell", "write_verify"]

LOW_MARGIN, HIGH_MARGIN = 1.5, 0.75
"""A learned target range spans LOW_MARGIN x the highest HRS bound measured to HIGH_MARGIN x
the lowest LRS bound measured: targets clear of every probed cell's bounds, where a soft-bound
cell's response to a pulse has flattened (module docstring, 1.)."""

REFINE = 3
"""Further batches of re-read readings for a cell whose mean is still undecided (near the edge
of its guard band): a decision of up to 4 x reread_reads readings instead of a re-programming
[E]."""


def _planned(values, spec) -> None:
    """Cross-check: algorithms x cells x most pulses a cell x (a pulse and its readings)."""
    algorithms = len(values["algorithm"].split(","))
    cells = (values["rows"] or spec.chip.rows) * (values["cols"] or spec.chip.cols)
    each = 1 + values["reads"]
    bound_operations(algorithms * cells * values["max_pulses"] * each,
                     f"{algorithms} algorithm(s) x {cells} cells x {values['max_pulses']} "
                     f"pulses x {each} operations")


PULSE_SETTINGS = ("tolerance", "v_read", "reads", "confirm_reads", "read_scheme", "pulse_scheme",
                  "width", "v_set_start", "v_reset_start", "v_step", "v_max", "max_pulses",
                  "stuck_pulses", "stuck_change", "move_fraction", "current_limit", "settle",
                  "guard")
"""The parameters write-verify passes on to `program_cell` as they are."""


def write_verify_plan(values, spec) -> Plan:
    """Per algorithm: its preparation, first pass, programming, `relax_rounds` re-checks (a
    re-read of every cell and all of them programmed again, at most) and the final re-read,
    each cell at ``max_pulses`` pulses with a verify after each and a confirmation before each
    (up to ``reread_reads`` readings with a guard)."""
    v = values
    algorithms = [name.strip() for name in v["algorithm"].split(",")]
    cells = (v["rows"] or spec.chip.rows) * (v["cols"] or spec.chip.cols)
    config = PulseSettings(**{key: v[key] for key in PULSE_SETTINGS}, guard_reads=v["reread_reads"])
    pulses, readings, pulse_s = (cells * n for n in cell_budget(config))
    first = cells * cell_budget(config, confirm=False)[1]
    reread = cells * v["reread_reads"] * (1 + REFINE if v["guard"] else 1)
    before, after = disturb_phases(v["disturb_cells"], cells, spec.chip.rows * spec.chip.cols,
                                   v["disturb_reads"])
    phases = before
    if not (v["g_low"] and v["g_high"]):
        phases.insert(0, characterise_phase(v["probe"], cells, max(v["reads"], 8), v["width"]))
    for name in algorithms:
        if len(algorithms) > 1 and v["prepare_pulses"]:
            prepared = cells * v["prepare_pulses"]
            phases.append(Phase(f"{name}: preparing", cells, prepared, 0,
                                prepared * v["width"]))
        if v["first_pass"]:
            phases.append(Phase(f"{name}/first: programming", cells, pulses, first, pulse_s))
        phases.append(Phase(f"{name}: programming", cells, pulses, readings, pulse_s))
        rounds = v["relax_rounds"]
        if rounds:
            phases.append(Phase(f"{name}: {rounds} re-check rounds", cells, rounds * pulses,
                                rounds * (reread + readings),
                                rounds * (v["relax_wait"] + pulse_s)))
        phases.append(Phase(f"final-{name}: re-reading", cells, 0, reread, v["relax_wait"]))
    return Plan.of(phases + after)


def write_verify_figures(run) -> list:
    """Final re-read against target per algorithm (stuck cells as crosses), and each
    algorithm's mean pulses per healthy cell; from the stored metrics and maps."""
    metrics = run.checkpoints().get("metrics")
    if not metrics or "targets" not in run.map_names():
        return []
    per_algorithm = metrics.get("algorithms") or {metrics["algorithm"]: metrics}
    finals = {name: run.latest_map(f"final-{name}") for name in per_algorithm
              if f"final-{name}" in run.map_names()}
    return [("final re-read against target, and pulses per cell", _figure(
        per_algorithm, finals, run.latest_map("targets"), stored_parameters(run)["tolerance"]))]


@register_protocol("write-verify", checks=[_planned],
                   figures=write_verify_figures, plan=write_verify_plan,
                   default_bench="analog")
def write_verify(
    bench, run, progress, *,
    algorithm: Annotated[str, Param("programming algorithm; several joined by ',' are compared "
                                    "on the same cells and targets", choices=ALGORITHMS,
                                    multiple=True)] = "adaptive",
    tolerance: Tolerance = 0.01,
    g_low: Annotated[float, Param("lowest target", unit="S", zero="learned from the probed "
                                  "cells' HRS bounds", minimum=1e-12, maximum=1.0)] = 0.0,
    g_high: Annotated[float, Param("highest target", unit="S", zero="learned from the probed "
                                   "cells' LRS bounds", minimum="g_low", maximum=1.0)] = 0.0,
    probe: Annotated[int, Param("cells driven to their bounds to learn a target range left "
                                "at 0", minimum=1, maximum=1024)] = 8,
    seed: Seed = 0,
    rows: Rows = 0,
    cols: Cols = 0,
    v_read: VRead = 0.2,
    reads: Reads = 8,
    confirm_reads: ConfirmReads = 8,
    read_scheme: ReadScheme = "ground",
    pulse_scheme: PulseScheme = "v/2",
    width: Width = 1e-6,
    v_set_start: VSetStart = 0.8,
    v_reset_start: VResetStart = -0.8,
    v_step: VStep = 0.05,
    v_max: VMax = 1.3,
    max_pulses: MaxPulses = 200,
    stuck_pulses: StuckPulses = 2,
    stuck_change: StuckChange = 0.05,
    move_fraction: MoveFraction = MOVE_FRACTION,
    current_limit: CurrentLimit = 0.0,
    settle: Settle = 1.0,
    guard: Guard = 3.0,
    first_pass: Annotated[float, Param("relative tolerance of a first pass over every cell",
                                       zero="no first pass", minimum="tolerance",
                                       maximum=0.5)] = 0.1,
    relax_wait: Annotated[float, Param("wait before each re-check re-read", unit="s",
                                       minimum=1e-6, maximum=10.0)] = 1.0,
    relax_rounds: Annotated[int, Param("re-check rounds after relaxation", minimum=0,
                                       maximum=100)] = 6,
    reread_reads: Annotated[int, Param("readings per cell of each re-check re-read", minimum=2,
                                       maximum=10000)] = 512,
    prepare_pulses: Annotated[int, Param("RESET pulses per cell before each algorithm when "
                                         "comparing several", minimum=0, maximum=100)] = 3,
    correct: Correct = True,
    disturb_cells: Annotated[int, Param("cells outside the programmed rectangle read before and "
                                        "after, for the disturb", minimum=0,
                                        maximum=4096)] = WATCHED_CELLS,
    disturb_reads: Annotated[int, Param("readings per disturb cell, before and after",
                                        minimum=2, maximum=10000)] = 64,
) -> dict:
    """Program seeded targets to `tolerance` with each algorithm of `algorithm`; report pulses,
    energy, success, stuck cells, the re-read after relaxation and the disturb of the cells
    left alone (see the module docstring)."""
    bench.correct = correct
    algorithms = [name.strip() for name in algorithm.split(",")]
    rows, cols = rows or bench.rows, cols or bench.cols
    settings = {"tolerance": tolerance, "v_read": v_read, "reads": reads,
                "confirm_reads": confirm_reads,
                "read_scheme": read_scheme, "pulse_scheme": pulse_scheme, "width": width,
                "v_set_start": v_set_start, "v_reset_start": v_reset_start, "v_step": v_step,
                "v_max": v_max, "max_pulses": max_pulses, "stuck_pulses": stuck_pulses,
                "stuck_change": stuck_change, "move_fraction": move_fraction,
                "current_limit": current_limit,
                "settle": settle, "guard": guard, "guard_reads": reread_reads}
    config = PulseSettings(**settings)
    rough = {**settings, "tolerance": first_pass,
             "coarse_tolerance": max(first_pass, config.coarse_tolerance)}
    mask = np.zeros((bench.rows, bench.cols), bool)
    mask[:rows, :cols] = True
    cells = bench.map_cells(mask)
    g_low, g_high, learned, probe_pulses = _target_range(bench, run, cells, g_low, g_high,
                                                         probe, config)
    targets = np.full((bench.rows, bench.cols), np.nan)
    targets[:rows, :cols] = np.random.default_rng(seed).uniform(g_low, g_high, (rows, cols))
    if not run.checkpoints().get("targets"):
        run.record_map("targets", targets, unit="S")
        run.checkpoint("targets", True)
    reread = (v_read, read_scheme, reread_reads, relax_wait, config, targets)
    watched = watched_cells(bench, cells, disturb_cells, seed)
    disturb_before = read_watched_once(bench, run, "disturb/before", watched, v_read,
                                       read_scheme, disturb_reads)
    disturb_null = read_watched_once(bench, run, "disturb/null", watched, v_read, read_scheme,
                                     disturb_reads, NULL_WAIT)
    progress.plan(len(algorithms) * ((1 if len(algorithms) > 1 and prepare_pulses else 0)
                                     + (1 if first_pass else 0) + 1 + relax_rounds + 1))
    per_algorithm = {}
    finals = {}
    for name in algorithms:
        memory = AmplitudeMemory(config)
        prepare = prepare_pulses if len(algorithms) > 1 else 0
        results: dict[tuple[int, int], CellResult] = {}
        if first_pass:
            results = _program_all(bench, run, progress, f"{name}/first", cells, targets,
                                   rough, memory, prepare, v_max, width, confirm=False)
            prepare = 0
        todo = [cell for cell in cells if not (cell in results and results[cell].stuck)]
        _merge_into(results, _program_all(bench, run, progress, name, todo, targets, settings,
                                          memory, prepare, v_max, width))
        healthy = [cell for cell in cells if not results[cell].stuck]
        final = None
        reprogrammed = []
        for k in range(relax_rounds):
            measured = _reread(bench, run, progress, f"{name}/recheck{k}", cells, *reread)
            drifted = [cell for cell in healthy if results[cell].success
                       and not _accepted(config, measured, cell, targets)]
            run.checkpoint(f"{name}/recheck{k}/drifted", [list(cell) for cell in drifted])
            if not drifted:
                final = measured
                break
            reprogrammed.append(len(drifted))
            progress.add_phases()  # programming them again: a phase the plan could not know
            _merge_into(results, _program_all(bench, run, progress, f"{name}/redo{k}", drifted,
                                              targets, settings, memory, 0, v_max, width))
        if final is None:
            final = _reread(bench, run, progress, f"final-{name}", cells, *reread)
        elif not run.checkpoints().get(f"final-{name}"):
            run.record_map(f"final-{name}", final[0], unit="S")
            run.checkpoint(f"final-{name}", True)
        for cell in healthy:  # success: inside the guard band at the final re-read
            results[cell].final_g = float(final[0][cell])
            results[cell].success = _accepted(config, final, cell, targets)
        finals[name] = final[0]
        per_algorithm[name] = _metrics(results, final[0], targets, tolerance)
        per_algorithm[name]["reprogrammed"] = reprogrammed
    metrics = dict(per_algorithm[algorithms[0]])
    metrics |= disturb_metrics(watched, disturb_before, disturb_null, read_watched_once(
        bench, run, "disturb/after", watched, v_read, read_scheme, disturb_reads))
    metrics["algorithm"] = algorithms[0]
    if len(algorithms) > 1:
        metrics["algorithms"] = per_algorithm
    metrics["cells"] = len(cells)
    metrics.update(g_low=g_low, g_high=g_high, target_range="learned" if learned else "given",
                   probe_pulses=probe_pulses)
    run.checkpoint("metrics", json_ready(metrics))  # what the figures read (the engine adds
    plot = save_figures(run, "write-verify", write_verify_figures)  # round trips after)
    metrics["plot"] = None if plot is None else str(plot)
    return metrics


def _target_range(bench, run, cells, g_low, g_high, probe, config: PulseSettings
                  ) -> tuple[float, float, bool, int]:
    """(g_low, g_high, learned, pulses): the given range, or where a bound is 0, the one
    learned from `probe` of `cells` (module docstring, 1.) with that many pulses, the same on
    resuming."""
    def measure():
        return measure_range(bench, probe_cells(cells, probe), v_max=config.v_max,
                             width=config.width, pulse_scheme=config.pulse_scheme,
                             v_read=config.v_read, read_scheme=config.read_scheme,
                             reads=max(config.reads, 8),
                             current_limit=config.current_limit or None, run=run)

    (low, high), learned, pulses = learned_values(
        run, "target_range", (g_low, g_high),
        lambda found: (LOW_MARGIN * float(found.hrs.max()),
                       HIGH_MARGIN * float(found.lrs.min())),
        measure, "write-verify's target range")
    if not high > low:
        raise BenchError(f"write-verify's target range {low:.3g} to {high:.3g} S is empty "
                         "(learned from the probed cells' bounds); give g_low and g_high")
    return low, high, learned, pulses


def _program_all(bench, run, progress, phase, cells, targets, settings, memory, prepare, v_max,
                 width, confirm: bool = True) -> dict[tuple[int, int], CellResult]:
    """Program `cells` (after `prepare` RESET pulses each), sharing the adaptive amplitudes
    of `memory`; one checkpoint per cell. Without `confirm`, a cell stops at its first verify
    inside the tolerance (a first pass)."""
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
        if key in done and not done[key].get("partial"):
            state = {k: math.nan if v is None else v for k, v in done[key].items()}
            results[row, col] = CellResult(**state)
        else:  # not started, or interrupted: then it goes on with its pulses counted
            algorithm = phase.split("/")[0]
            result = program_cell(bench, row, col, float(targets[row, col]),
                                  algorithm=algorithm, run=run, memory=memory,
                                  confirm=confirm, checkpoint=key, partial=done.get(key),
                                  **settings)
            state = asdict(result)
            state.pop("trace")
            run.checkpoint(key, {k: None if isinstance(v, float) and not math.isfinite(v)
                                 else v for k, v in state.items()})  # JSON: NaN as null
            results[row, col] = result
        progress.advance()
    return results


def _merge_into(results: dict, again: dict) -> None:
    """Cells programmed again: the second outcome, with the pulses, energy, readings and
    reversals of both."""
    for cell, second in again.items():
        first = results.get(cell)
        if first is not None:
            second.pulses += first.pulses
            second.energy_j += first.energy_j
            second.energy_measured = second.energy_measured and first.energy_measured
            second.reads += first.reads
            second.reversals += first.reversals
        results[cell] = second


def _reread(bench, run, progress, phase, cells, v_read, read_scheme, reads, relax_wait,
            config: PulseSettings | None = None, targets=None) -> tuple[np.ndarray, ...]:
    """After `relax_wait` seconds on the instruments' clock, `reads` readings of each of
    `cells` (each recorded); with `config`, cells whose mean lies within DECIDED standard
    errors of the edge of their guard band (`config.distance` around `targets`) get `reads`
    more, up to REFINE times. Returns maps (NaN elsewhere) of the mean, the standard deviation
    of one reading from their scatter, and the count of readings, stored as ``<phase>``,
    ``<phase>-scatter`` and ``<phase>-count`` (``/`` in the phase written ``-``).

    An interrupted re-read goes on from its stored readings (from the point whose sequence
    number the ``<phase>/from`` checkpoint holds): round k reads only what its cells still
    lack of (k + 1) x `reads`, and a cell is in round k when it was read in it already or,
    read in every earlier round, is still undecided (the decision an uninterrupted re-read
    takes, on the same readings)."""
    name = phase.replace("/", "-")
    done = run.checkpoints()
    if done.get(phase):
        return tuple(run.latest_map(f"{name}{part}") for part in ("", "-scatter", "-count"))
    shape = (bench.rows, bench.cols)
    stats = ReadingStats(shape)
    if f"{phase}/from" in done:
        stats.add(stored_readings(run, done[f"{phase}/from"]))
    else:
        hold(bench, relax_wait)
        run.checkpoint(f"{phase}/from", run.n_points)
    todo = list(cells)
    for k in range(1 + REFINE):
        want = (k + 1) * reads
        missing = {}
        for cell in todo:
            if stats.count[cell] < want:
                missing.setdefault(int(want - stats.count[cell]), []).append(cell)
        steps = sum(n * len(group) for n, group in missing.items())
        if k == 0:
            progress.start(steps, f"{phase}: re-reading")
        else:  # the undecided cells' further readings: the same re-read, a longer phase
            progress.extend(steps)
        for count, group in missing.items():
            mask = np.zeros(shape, bool)
            mask[tuple(np.array(group).T)] = True
            batches = bench.iter_read_batches(v_read, read_scheme, mask=mask, count=count)
            for batch in recorded_batches(run, batches):
                stats.add(batch)
                progress.advance(len(batch))
        count = stats.count
        mean = stats.mean() / v_read  # conductances: every reading at v_read
        scatter = np.sqrt(stats.variance_of_mean() * count) / abs(v_read)
        if config is None or config.guard == 0:
            break
        todo = [cell for cell in cells if count[cell] > want or (count[cell] == want and abs(
            config.distance(mean[cell], scatter[cell], int(count[cell]), targets[cell]))
            < DECIDED * scatter[cell] / math.sqrt(count[cell]))]
        if not todo:
            break
    inside = count > 0
    maps = (np.where(inside, mean, np.nan), np.where(inside, scatter, np.nan),
            np.where(inside, count, np.nan))
    for part, data, unit in zip(("", "-scatter", "-count"), maps, ("S", "S", "1"), strict=True):
        run.record_map(f"{name}{part}", data, unit=unit)
    run.checkpoint(phase, True)
    return maps


def _accepted(config: PulseSettings, measured, cell, targets) -> bool:
    """The re-read mean of `cell` inside its guard band (`PulseSettings.distance`, the scatter
    from the re-read's own readings)."""
    mean, scatter, count = measured
    return bool(config.distance(float(mean[cell]), float(scatter[cell]), int(count[cell]),
                                float(targets[cell])) >= 0)


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
        "energy_measured": all(r.energy_measured for r in results.values()),
        "max_rel_error_success": max((r.rel_error for r in success), default=None),
        "stuck_cells": sorted([r.row, r.col] for r in results.values() if r.stuck),
        "reread_within_tolerance": float(np.mean(reread <= tolerance)) if success else None,
        "reread_rel_error_p50": float(np.median(reread)) if success else None,
        "pulses_total": int(sum(r.pulses for r in results.values())),
        "failed_cells": sorted([r.row, r.col, r.rel_error] for r in healthy if not r.success),
    }


def _figure(per_algorithm, finals, targets, tolerance):
    from matplotlib.figure import Figure

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
    right.set(xlabel="algorithm", ylabel="mean pulses per cell (count)",
              title="pulses per healthy cell")
    right.legend(fontsize="small")
    return figure
