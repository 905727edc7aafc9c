"""The ``program-efficient`` protocol: energy-efficient programming of a binary crossbar, side by
side with the full-precision baseline on the same cells.

Source: Pham, Tran, Nguyen, Min, "Asymmetrical training scheme of binary-memristor-crossbar-based
neural networks for energy-efficient edge-computing nanoscale systems", Micromachines 10(2):141
(2019); reference/techniques.md §6 (E1, E3) and §5 (write-verify, energy per cell).

Why it saves energy: in a binary crossbar the column current is carried by the LRS cells
(G_on/G_off ≈ 100), so an HRS cell's absolute error hardly moves the output. Programming HRS
targets with coarse steps and a loose tolerance while LRS targets keep fine steps and a tight
tolerance (C-F) cuts the pulses that dominate the energy (RESET pulses start from the LRS, where
every pulse draws the LRS current) and leaves the LRS error distribution as it was with fine
programming of both (F-F).

What it runs, all on one rectangle of cells (``rows`` x ``cols`` from ``row0``, ``col0``; 0 rows
or columns: to the chip's edge):

1. **F-F** then **C-F**: a seeded binary target map (``lrs_fraction`` of the cells at ``g_lrs``,
   the rest at ``g_hrs``). Fairness: both schemes program the *same* cells (same devices, same
   defects, same wiring) from the same kind of start: before each scheme every cell gets one
   full-strength pulse (``v_init``) towards the *opposite* of its target, so every cell must be
   switched and neither scheme inherits the other's work. That preparation is recorded but not
   charged to either scheme. Each cell is then programmed by the shared write-verify routine
   (`xbarlab.protocols.programming.program_cell`, adaptive algorithm D1) with the setting of
   its class. By default every cell starts from its class's first amplitude, as in the
   paper's per-cell incremental program-verify; with ``shared_amplitudes`` the amplitudes are
   learned per class across the cells of a scheme (one `AmplitudeMemory`, fresh for every
   scheme), which makes fine RESETs from the LRS nearly as cheap as one full RESET, so C-F
   then saves mostly pulses and less energy.
   Settings: fine (``fine_tolerance``, ``fine_step``, first amplitude ``fine_start``) or
   coarse (``coarse_*``). E1's coarse HRS is "a loose tolerance, or a single RESET pulse": by
   default the first coarse pulse is the full reference RESET (``coarse_start`` 1.3 V), checked
   against the loose window, and corrected only if it lands outside.

   Targets left at 0 (the default) are learned from the chip
   (`xbarlab.protocols.characterise`): ``probe`` cells of the rectangle are driven to their
   HRS and LRS bounds with ``v_init`` pulses and measured; ``g_hrs`` is ``HRS_MARGIN`` x the
   highest HRS bound measured, just above every probed cell's own bound (so F-F's tight
   window is reachable, and C-F's ±50 % window contains the bound itself), and ``g_lrs``
   ``LRS_FRACTION`` x the median LRS bound, inside a typical cell's range (metrics
   ``g_hrs``, ``g_lrs``, ``targets``: "learned" or "given"; ``probe_pulses``: the
   characterisation's pulses, recorded, charged to neither scheme).
2. **Significance-thresholded update** (E3): a seeded new target map moves ``update_fraction`` of
   the cells to the other level and nudges every other cell by up to ``nudge`` of its target.
   Only cells whose target moved by more than ``threshold`` x ``g_lrs`` are programmed (C-F
   settings); then the rest are programmed too, which completes "program every cell". Each cell
   starts from the same state whether or not the significant ones were done first, so
   ``energy_j_all`` = significant + rest is the measured cost of programming everything, and
   the saving is the measured cost of the skipped cells.

After each scheme, and ``relax_wait`` seconds later, the whole rectangle is re-read (``v_read``,
``read_scheme``); the relative errors ``|G - target| / target`` (``*_rel_error_p50/p95``) come
from that re-read, so relaxation after programming counts, and are taken on the same cells for
every scheme: those no phase found stuck. ``*_verify_error_p95`` are the routine's last verify
readings (before relaxation). Energy is what the instruments delivered during the pulses,
Σ V·I·t over every driven line, measured where the instrument measures it
(``energy_measured``; otherwise the selected cell's share estimated from the verify readings
around each pulse, `xbarlab.protocols.programming`); verify reads are counted
(``verify_reads``), their energy is not (their integration time is the instrument's).
``seconds`` is the wall-clock time spent programming.
Pulses use ``pulse_scheme`` half-select protection (``v/2`` by default; with ``float`` the
floating lines can carry a neighbour's pulse to other cells, which then drift). The drift of
the cells outside the rectangle is measured: ``disturb_cells`` of them (a seeded sample) are
read ``disturb_reads`` times before the first pulse and after the last re-read
(`xbarlab.protocols.disturb`; ``disturb_rel_median``, ``disturb_rel_max``, beside
``disturb_null_rel_median``, the change with no pulse, and ``disturb_beyond_3se``; none when
the rectangle is the chip).

Every pulse and reading is recorded by the routine as it happens; each cell's result is a
checkpoint (``<phase>/<row>,<col>``), so a resumed run programs only the cells it had not
finished (a cell interrupted half-way is programmed again from where it is; the energy its
first attempt spent is recorded as points but not in the totals).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Annotated

import numpy as np
from xbarlab.protocols.characterise import (
    CellRange,
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
    Compliance,
    PulseScheme,
    ReadScheme,
    Seed,
    VRead,
    Width,
)
from xbarlab.protocols.plots import save_figures, stored_parameters
from xbarlab.protocols.programming import (
    AmplitudeMemory,
    PulseSettings,
    cell_budget,
    hold,
    program_cell,
)
from xbarlab.protocols.recording import recorded_batches

from xbarlab.bench import BenchError
from xbarlab.engine import json_ready
from xbarlab.params import Param
from xbarlab.plan import Phase, Plan
from xbarlab.registry import bound_operations, refuse, register_protocol
from xbarlab.safety import signals_held

SCHEMES = ("ff", "cf")
"""Programming schemes compared: fine-fine baseline, then coarse-HRS / fine-LRS."""
UPDATE_PHASES = ("update-significant", "update-rest")
"""The thresholded update, then the cells it skipped (together: programming every cell)."""
HRS_MARGIN, LRS_FRACTION = 1.2, 0.5
"""Learned targets: g_hrs 20 % above the highest HRS bound measured, g_lrs half the median LRS
bound measured (module docstring, 1.)."""


@dataclass(frozen=True)
class Setting:
    """How one class of cells is programmed: verify tolerance (relative), amplitude step and
    first amplitude of either polarity (V)."""

    tolerance: float
    v_step: float
    v_start: float


@dataclass(frozen=True)
class CellOutcome:
    """One programmed cell as stored in its checkpoint."""

    pulses: int
    reads: int
    energy_j: float
    final_g: float
    success: bool
    stuck: bool
    seconds: float
    energy_measured: bool = True


def binary_targets(shape: tuple[int, int], lrs_fraction: float, g_lrs: float, g_hrs: float,
                   rng: np.random.Generator) -> np.ndarray:
    """A binary target map: exactly round(lrs_fraction * cells) cells at `g_lrs`, placed at
    random, the rest at `g_hrs` (S)."""
    cells = shape[0] * shape[1]
    lrs = np.zeros(cells, bool)
    lrs[rng.permutation(cells)[: round(lrs_fraction * cells)]] = True
    return np.where(lrs, g_lrs, g_hrs).reshape(shape)


def updated_targets(old: np.ndarray, g_lrs: float, g_hrs: float, update_fraction: float,
                    nudge: float, rng: np.random.Generator) -> np.ndarray:
    """A new target map after one training update: `update_fraction` of the cells flip to the
    other level, every other cell moves by a uniform factor in [1 - nudge, 1 + nudge]."""
    cells = old.size
    flip = np.zeros(cells, bool)
    flip[rng.permutation(cells)[: round(update_fraction * cells)]] = True
    flip = flip.reshape(old.shape)
    is_lrs = old > math.sqrt(g_lrs * g_hrs)
    flipped = np.where(is_lrs, g_hrs, g_lrs)
    nudged = old * (1.0 + rng.uniform(-nudge, nudge, old.shape))
    return np.where(flip, flipped, nudged)


def significant(old: np.ndarray, new: np.ndarray, threshold: float, g_lrs: float) -> np.ndarray:
    """Cells whose target moved by more than `threshold` x `g_lrs` (E3's |ΔW| > θ, with the
    weight range expressed as the LRS conductance)."""
    return np.abs(new - old) > threshold * g_lrs


def relative_errors(conductance: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """|G - target| / target, elementwise."""
    return np.abs(conductance - targets) / targets


def percentile(values: np.ndarray, q: float) -> float | None:
    """The q-th percentile of the finite values, or None when there are none (a dry run)."""
    finite = values[np.isfinite(values)]
    return float(np.percentile(finite, q)) if finite.size else None


def _rectangle_fits(values, spec) -> None:
    """Cross-check: the rectangle from (row0, col0) fits the chip."""
    for size, start, lines in (("rows", "row0", spec.chip.rows), ("cols", "col0", spec.chip.cols)):
        if values[size] > lines - values[start]:
            refuse(f"{size} = {values[size]}: allowed 0 (to the last line) or up to "
                   f"{lines - values[start]} ({lines} lines of the chip from {start} = "
                   f"{values[start]})")


Fraction = Annotated[float, Param("fraction of the cells", minimum=0.0, maximum=1.0)]
Tolerance = Annotated[float, Param("relative tolerance around the target", minimum=1e-4,
                                   maximum=1.0)]
StartVoltage = Annotated[float, Param("first pulse amplitude", unit="V", minimum=0.0,
                                      maximum="limits.max_voltage")]


def _planned(values, spec) -> None:
    """Cross-check: cells x most pulses a cell (a pulse and a read each) within the bound."""
    cells = (values["rows"] or spec.chip.rows) * (values["cols"] or spec.chip.cols)
    bound_operations(cells * values["max_pulses"] * 2,
                     f"{cells} cells x {values['max_pulses']} pulses x 2")


def program_efficient_plan(values, spec) -> Plan:
    """Per scheme: a preparation pulse a cell, every cell programmed at its budget and the
    rectangle re-read; then the update (its significant cells and the rest: every cell once)
    with a re-read after each part."""
    v = values
    cells = (v["rows"] or spec.chip.rows - v["row0"]) * (v["cols"] or spec.chip.cols - v["col0"])
    config = PulseSettings(**{key: v[key] for key in ("width", "pulse_scheme", "v_read",
                                                       "read_scheme", "current_limit",
                                                       "max_pulses")})
    pulses, readings, seconds = (cells * n for n in cell_budget(config))
    before, after = disturb_phases(v["disturb_cells"], cells, spec.chip.rows * spec.chip.cols,
                                   v["disturb_reads"])
    phases = before
    if not (v["g_lrs"] and v["g_hrs"]):
        phases.insert(0, characterise_phase(v["probe"], cells, 8, v["width"]))
    for scheme in SCHEMES:
        phases += [Phase(f"{scheme}: preparing", cells, cells, 0, cells * v["width"]),
                   Phase(f"{scheme}: programming", cells, pulses, readings, seconds),
                   Phase(f"{scheme}: re-reading", cells, 0, cells, v["relax_wait"])]
    return Plan.of([*phases, Phase("update: programming", cells, pulses, readings, seconds),
                    Phase("update: re-reading", cells, 0, 2 * cells, 2 * v["relax_wait"]),
                    *after])


def program_efficient_figures(run) -> list:
    """Energy and pulses of F-F, C-F and the update, and the re-read error distributions,
    from the stored metrics, maps and per-cell checkpoints (targets drawn again from the
    stored seed, as the run drew them)."""
    state = run.checkpoints()
    metrics = state.get("metrics")
    if not metrics or not set(SCHEMES) <= set(run.map_names()):
        return []
    p = stored_parameters(run)
    shape = run.info.shape
    rows, cols = p["rows"] or shape[0] - p["row0"], p["cols"] or shape[1] - p["col0"]
    box = (slice(p["row0"], p["row0"] + rows), slice(p["col0"], p["col0"] + cols))
    g_lrs, g_hrs = metrics.get("g_lrs") or p["g_lrs"], metrics.get("g_hrs") or p["g_hrs"]
    targets = binary_targets((rows, cols), p["lrs_fraction"], g_lrs, g_hrs,
                             np.random.default_rng(p["seed"]))
    stuck = np.zeros((rows, cols), bool)
    for key, value in state.items():
        if "/" in key and isinstance(value, dict) and value.get("stuck"):
            row, col = (int(part) for part in key.rsplit("/", 1)[1].split(","))
            stuck[row - p["row0"], col - p["col0"]] = True
    maps = {scheme: run.latest_map(scheme)[box] for scheme in SCHEMES}
    is_lrs = targets > math.sqrt(g_lrs * g_hrs)
    return [("energy, pulses and re-read error of F-F, C-F and the update",
             _figure(metrics, maps, targets, is_lrs, stuck))]


@register_protocol("program-efficient", checks=[_rectangle_fits, _planned],
                   figures=program_efficient_figures, plan=program_efficient_plan)
def program_efficient(
    bench, run, progress, *,
    rows: Annotated[int, Param("rows of the rectangle", zero="to the last row", minimum=1,
                               maximum="chip.rows")] = 0,
    cols: Annotated[int, Param("columns of the rectangle", zero="to the last column",
                               minimum=1, maximum="chip.cols")] = 0,
    row0: Annotated[int, Param("first row of the rectangle", minimum=0,
                               below="chip.rows")] = 0,
    col0: Annotated[int, Param("first column of the rectangle", minimum=0,
                               below="chip.cols")] = 0,
    lrs_fraction: Fraction = 0.5,
    g_lrs: Annotated[float, Param("LRS target conductance", unit="S", zero="learned from "
                                  "the probed cells' LRS bounds", minimum="2*g_hrs",
                                  maximum=1.0)] = 0.0,
    g_hrs: Annotated[float, Param("HRS target conductance", unit="S", zero="learned from "
                                  "the probed cells' HRS bounds", minimum=1e-12,
                                  maximum=1.0)] = 0.0,
    probe: Annotated[int, Param("cells driven to their bounds to learn a target left at 0",
                                minimum=1, maximum=1024)] = 8,
    fine_tolerance: Tolerance = 0.02,
    fine_step: Annotated[float, Param("amplitude step of fine programming", unit="V",
                                      minimum=1e-4, maximum=1.0)] = 0.01,
    fine_start: StartVoltage = 0.8,
    coarse_tolerance: Tolerance = 0.5,
    coarse_step: Annotated[float, Param("amplitude step of coarse programming", unit="V",
                                        minimum="fine_step", maximum=1.0)] = 0.05,
    coarse_start: StartVoltage = 1.3,
    width: Width = 1e-4,
    pulse_scheme: PulseScheme = "v/2",
    v_init: Annotated[float, Param("amplitude of the preparation pulse", unit="V",
                                   minimum="-limits.max_voltage",
                                   maximum="limits.max_voltage")] = 1.3,
    current_limit: Compliance = 1e-2,
    max_pulses: Annotated[int, Param("most pulses per cell", minimum=1,
                                     maximum=100000)] = 200,
    v_read: VRead = 0.2,
    read_scheme: ReadScheme = "ground",
    relax_wait: Annotated[float, Param("wait before each re-read", unit="s", minimum=0.0,
                                       maximum=10.0)] = 1.0,
    update_fraction: Fraction = 0.1,
    nudge: Annotated[float, Param("relative spread of the update's small moves", minimum=0.0,
                                  maximum=0.9)] = 0.15,
    threshold: Annotated[float, Param("significance threshold of an update, in units of g_lrs",
                                      minimum=0.0, maximum=10.0)] = 0.1,
    shared_amplitudes: Annotated[bool, Param("one amplitude memory for the whole chip instead "
                                             "of one per setting")] = False,
    seed: Seed = 0,
    disturb_cells: Annotated[int, Param("cells outside the rectangle read before and after, "
                                        "for the disturb", minimum=0,
                                        maximum=4096)] = WATCHED_CELLS,
    disturb_reads: Annotated[int, Param("readings per disturb cell, before and after",
                                        minimum=2, maximum=10000)] = 64,
) -> dict:
    """Program the rectangle with F-F and with C-F, then a significance-thresholded update;
    return energy, pulses, time and conductance error per scheme, and the disturb of the cells
    outside the rectangle (see the module docstring).
    """
    rows, cols = rows or bench.rows - row0, cols or bench.cols - col0
    rng = np.random.default_rng(seed)
    cells = [(row0 + i, col0 + j) for i in range(rows) for j in range(cols)]
    (g_lrs, g_hrs), learned, probe_pulses = learned_values(
        run, "target_levels", (g_lrs, g_hrs), _levels_from,
        lambda: measure_range(bench, probe_cells(cells, probe), v_max=v_init, width=width,
                              pulse_scheme=pulse_scheme, v_read=v_read,
                              read_scheme=read_scheme, reads=8, current_limit=current_limit,
                              run=run),
        "program-efficient's targets")
    if not g_lrs >= 2 * g_hrs:
        raise BenchError(f"program-efficient's targets: g_lrs {g_lrs:.3g} S is below 2 x g_hrs "
                         f"({g_hrs:.3g} S); give g_lrs and g_hrs")
    targets = binary_targets((rows, cols), lrs_fraction, g_lrs, g_hrs, rng)
    new_targets = updated_targets(targets, g_lrs, g_hrs, update_fraction, nudge, rng)
    is_lrs = targets > math.sqrt(g_lrs * g_hrs)
    fine = Setting(fine_tolerance, fine_step, fine_start)
    coarse = Setting(coarse_tolerance, coarse_step, coarse_start)
    settings = {"ff": (fine, fine), "cf": (coarse, fine)}  # (HRS setting, LRS setting)
    common = {"width": width, "pulse_scheme": pulse_scheme, "v_read": v_read,
              "read_scheme": read_scheme,
              "current_limit": current_limit, "max_pulses": max_pulses}
    done = run.checkpoints()
    box = (slice(row0, row0 + rows), slice(col0, col0 + cols))

    def program_phase(phase, subset, table, lrs_mask, hrs_setting, lrs_setting):
        """Program `subset` to its targets in `table` (LRS cells, per `lrs_mask`, with
        `lrs_setting`, the others with `hrs_setting`), then re-read the rectangle."""
        local = {cell: (cell[0] - row0, cell[1] - col0) for cell in subset}
        results[phase] = _program(
            bench, run, progress, phase, done, subset,
            {cell: float(table[local[cell]]) for cell in subset},
            {cell: ("lrs", lrs_setting) if lrs_mask[local[cell]] else ("hrs", hrs_setting)
             for cell in subset}, common, shared_amplitudes)
        maps[phase] = _reread(bench, run, progress, phase, done, box, v_read, read_scheme,
                              relax_wait)

    results: dict[str, dict[tuple[int, int], CellOutcome]] = {}
    maps: dict[str, np.ndarray] = {}
    watched = watched_cells(bench, cells, disturb_cells, seed)
    disturb_before = read_watched_once(bench, run, "disturb/before", watched, v_read,
                                       read_scheme, disturb_reads)
    disturb_null = read_watched_once(bench, run, "disturb/null", watched, v_read, read_scheme,
                                     disturb_reads, NULL_WAIT)
    progress.plan(3 * len(SCHEMES) + 2 * len(UPDATE_PHASES))  # prepare, program, re-read
    for scheme in SCHEMES:
        if not done.get(f"{scheme}/prepared"):
            _prepare(bench, run, progress, cells, is_lrs, row0, col0, v_init, common, scheme)
            run.checkpoint(f"{scheme}/prepared", True)
        program_phase(scheme, cells, targets, is_lrs, *settings[scheme])

    moved = significant(targets, new_targets, threshold, g_lrs)
    new_is_lrs = new_targets > math.sqrt(g_lrs * g_hrs)
    for phase, chosen in zip(UPDATE_PHASES, (moved, ~moved), strict=True):
        subset = [cell for cell in cells if chosen[cell[0] - row0, cell[1] - col0]]
        program_phase(phase, subset, new_targets, new_is_lrs, coarse, fine)

    # errors are compared on the same cells: those no phase found stuck
    stuck = np.zeros((rows, cols), bool)
    for outcomes in results.values():
        for (row, col), outcome in outcomes.items():
            stuck[row - row0, col - col0] |= outcome.stuck
    metrics = {scheme: _scheme_metrics(results[scheme], maps[scheme][box], targets, is_lrs,
                                       stuck, cells, row0, col0) for scheme in SCHEMES}
    metrics["energy_saving"] = _saving(metrics["cf"]["energy_j"], metrics["ff"]["energy_j"])
    metrics["pulse_saving"] = _saving(metrics["cf"]["pulses"], metrics["ff"]["pulses"])
    ff_p95, cf_p95 = metrics["ff"]["lrs_rel_error_p95"], metrics["cf"]["lrs_rel_error_p95"]
    metrics["lrs_p95_ratio"] = cf_p95 / ff_p95 if ff_p95 and cf_p95 is not None else None
    metrics["update"] = _update_metrics(results, maps, box, targets, new_targets, moved,
                                        new_is_lrs, stuck, threshold)
    metrics |= disturb_metrics(watched, disturb_before, disturb_null, read_watched_once(
        bench, run, "disturb/after", watched, v_read, read_scheme, disturb_reads))
    metrics["cells_compared"] = int((~stuck).sum())
    metrics["cells"] = len(cells)
    metrics["lrs_cells"] = int(is_lrs.sum())
    metrics.update(g_lrs=g_lrs, g_hrs=g_hrs, targets="learned" if learned else "given",
                   probe_pulses=probe_pulses)
    run.checkpoint("metrics", json_ready(metrics))  # what the figures read (the engine adds
    plot = save_figures(run, "program-efficient", program_efficient_figures)  # round trips)
    metrics["plot"] = None if plot is None else str(plot)
    return metrics


def _levels_from(found: CellRange) -> tuple[float, float]:
    """(g_lrs, g_hrs) learned from a characterisation (module docstring, 1.)."""
    return LRS_FRACTION * float(np.median(found.lrs)), HRS_MARGIN * float(found.hrs.max())


def _prepare(bench, run, progress, cells, is_lrs, row0, col0, v_init, common, scheme) -> None:
    """One full-strength pulse per cell towards the opposite of its target (not charged)."""
    progress.start(len(cells), f"{scheme}: preparing (every cell to the opposite level)")
    for row, col in cells:
        to_hrs = bool(is_lrs[row - row0, col - col0])
        volts = -abs(v_init) if to_hrs else abs(v_init)
        with signals_held():
            bench.pulse(row, col, volts, common["width"], common["pulse_scheme"],
                        current_limit=common["current_limit"])
            run.record_point(row, col, "reset" if to_hrs else "set", voltage=volts,
                             pulse_width=common["width"])
        progress.advance()


def _program(bench, run, progress, phase, done, cells, targets, settings, common,
             shared) -> dict[tuple[int, int], CellOutcome]:
    """Program each cell through the shared write-verify routine with the setting of its class
    (`settings`: cell -> ("lrs" or "hrs", Setting)). With `shared`, adaptive amplitudes are
    learned per class across the cells of the phase (from scratch in every phase, so LRS cells
    are programmed alike in F-F and C-F); without, every cell starts from its class's first
    amplitude. Each result is a checkpoint; cells with one already (a resumed run) are not
    redone."""
    outcomes: dict[tuple[int, int], CellOutcome] = {}
    memories: dict[tuple[str, Setting], AmplitudeMemory] = {}
    progress.start(len(cells), f"{phase}: programming")
    for cell in cells:
        key = f"{phase}/{cell[0]},{cell[1]}"
        if key in done:
            outcomes[cell] = CellOutcome(**{k: math.nan if v is None else v
                                            for k, v in done[key].items()})
            progress.advance()
            continue
        options = _options(settings[cell][1], common)
        memory = AmplitudeMemory(PulseSettings(**options))
        if shared:
            memory = memories.setdefault(settings[cell], memory)
        started = time.monotonic()
        result = program_cell(bench, cell[0], cell[1], targets[cell], algorithm="adaptive",
                              run=run, memory=memory, **options)
        outcome = CellOutcome(int(result.pulses), int(result.reads), float(result.energy_j),
                              float(result.final_g), bool(result.success), bool(result.stuck),
                              time.monotonic() - started, bool(result.energy_measured))
        run.checkpoint(key, _json_safe(asdict(outcome)))
        outcomes[cell] = outcome
        progress.advance()
    return outcomes


def _options(setting: Setting, common: dict) -> dict:
    """`program_cell` settings (PulseSettings fields) for one class of cells."""
    return {**common, "tolerance": setting.tolerance, "coarse_tolerance": setting.tolerance,
            "v_step": setting.v_step, "v_set_start": setting.v_start,
            "v_reset_start": -setting.v_start}


def _reread(bench, run, progress, phase, done, box, v_read, read_scheme,
            relax_wait) -> np.ndarray:
    """Wait `relax_wait` seconds on the instruments' clock (`programming.hold`), so every cell
    has relaxed at least that long, then re-read the rectangle (recorded) and store it as map
    ``<phase>``."""
    if done.get(f"{phase}/reread"):
        return run.latest_map(phase)
    hold(bench, relax_wait)
    mask = np.zeros((bench.rows, bench.cols), bool)
    mask[box] = True
    conductance = np.full((bench.rows, bench.cols), np.nan)
    progress.start(int(mask.sum()), f"{phase}: re-reading")
    for batch in recorded_batches(run, bench.iter_read_batches(v_read, read_scheme, mask=mask)):
        for r in batch:
            conductance[r.row, r.col] = r.conductance
        progress.advance(len(batch))
    run.record_map(phase, conductance, unit="S")
    run.checkpoint(f"{phase}/reread", True)
    return conductance


def _totals(outcomes: dict[tuple[int, int], CellOutcome], cells) -> dict:
    chosen = [outcomes[cell] for cell in cells]
    return {
        "energy_j": float(sum(o.energy_j for o in chosen if math.isfinite(o.energy_j))),
        "pulses": int(sum(o.pulses for o in chosen)),
        "verify_reads": int(sum(o.reads for o in chosen)),
        "seconds": float(sum(o.seconds for o in chosen)),
        "energy_measured": all(o.energy_measured for o in chosen),
    }


def _scheme_metrics(outcomes, reread, targets, is_lrs, stuck, cells, row0, col0) -> dict:
    """Totals of one scheme, and its re-read errors on the cells no phase found stuck."""
    errors = relative_errors(reread, targets)
    verify = np.full(targets.shape, np.nan)
    for (row, col), outcome in outcomes.items():
        verify[row - row0, col - col0] = outcome.final_g
    verify_errors = relative_errors(verify, targets)
    lrs_cells = [c for c in cells if is_lrs[c[0] - row0, c[1] - col0]]
    hrs_cells = [c for c in cells if not is_lrs[c[0] - row0, c[1] - col0]]
    healthy = [o for o in outcomes.values() if not o.stuck]
    return {
        **_totals(outcomes, cells),
        "lrs_energy_j": _totals(outcomes, lrs_cells)["energy_j"],
        "hrs_energy_j": _totals(outcomes, hrs_cells)["energy_j"],
        "lrs_pulses": _totals(outcomes, lrs_cells)["pulses"],
        "hrs_pulses": _totals(outcomes, hrs_cells)["pulses"],
        "lrs_rel_error_p50": percentile(errors[is_lrs & ~stuck], 50),
        "lrs_rel_error_p95": percentile(errors[is_lrs & ~stuck], 95),
        "hrs_rel_error_p50": percentile(errors[~is_lrs & ~stuck], 50),
        "hrs_rel_error_p95": percentile(errors[~is_lrs & ~stuck], 95),
        "lrs_verify_error_p95": percentile(verify_errors[is_lrs & ~stuck], 95),
        "hrs_verify_error_p95": percentile(verify_errors[~is_lrs & ~stuck], 95),
        "success_rate": sum(o.success for o in healthy) / len(healthy) if healthy else None,
        "stuck_cells": sum(o.stuck for o in outcomes.values()),
    }


def _update_metrics(results, maps, box, old, new, moved, new_is_lrs, stuck,
                    threshold) -> dict:
    """Cost of the thresholded update against programming every cell, and the errors after
    each (re-read, against the new targets, on the cells no phase found stuck)."""
    first, rest = (results[phase] for phase in UPDATE_PHASES)
    thresholded = _totals(first, list(first))
    skipped = _totals(rest, list(rest))
    after = {phase: relative_errors(maps[phase][box], new) for phase in UPDATE_PHASES}
    compared = new_is_lrs & ~stuck
    energy_all = thresholded["energy_j"] + skipped["energy_j"]
    return {
        "threshold": threshold,
        "cells_programmed": int(moved.sum()),
        "cells_skipped": int((~moved).sum()),
        "energy_j_thresholded": thresholded["energy_j"],
        "energy_j_all": energy_all,
        "energy_saving": _saving(thresholded["energy_j"], energy_all),
        "pulses_thresholded": thresholded["pulses"],
        "pulses_all": thresholded["pulses"] + skipped["pulses"],
        "seconds_thresholded": thresholded["seconds"],
        "seconds_all": thresholded["seconds"] + skipped["seconds"],
        "lrs_rel_error_p95_thresholded": percentile(after[UPDATE_PHASES[0]][compared], 95),
        "lrs_rel_error_p95_all": percentile(after[UPDATE_PHASES[1]][compared], 95),
        "max_skipped_target_move": float(
            np.max(np.abs(new - old)[~moved] / old[~moved])) if (~moved).any() else None,
    }


def _saving(cost: float, baseline: float) -> float | None:
    return 1.0 - cost / baseline if baseline > 0 else None


def _json_safe(values: dict) -> dict:
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v
            for k, v in values.items()}


def _figure(metrics, maps, targets, is_lrs, stuck):
    """Bars of energy and pulses per scheme, and the error distributions of F-F and C-F."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(13, 4.2))
    energy_axis, pulse_axis, error_axis = figure.subplots(1, 3)
    names = ["F-F", "C-F", "update\nthresholded", "update\nall"]
    update = metrics["update"]
    energies = [metrics["ff"]["energy_j"], metrics["cf"]["energy_j"],
                update["energy_j_thresholded"], update["energy_j_all"]]
    pulses = [metrics["ff"]["pulses"], metrics["cf"]["pulses"], update["pulses_thresholded"],
              update["pulses_all"]]
    lrs_parts = [metrics["ff"]["lrs_energy_j"], metrics["cf"]["lrs_energy_j"]]
    energy_axis.bar(names, [e * 1e9 for e in energies], color=["0.55", "C0", "C2", "0.75"])
    energy_axis.bar(names[:2], [e * 1e9 for e in lrs_parts], color="none", hatch="//",
                    edgecolor="k", label="LRS-target cells")
    energy_axis.set(title="pulse energy Σ V·I·t", xlabel="scheme", ylabel="energy (nJ)")
    energy_axis.legend(fontsize="small")
    pulse_axis.bar(names, pulses, color=["0.55", "C0", "C2", "0.75"])
    pulse_axis.set(title="programming pulses", xlabel="scheme", ylabel="pulses (count)")
    for scheme, label, colour in (("ff", "F-F", "0.4"), ("cf", "C-F", "C0")):
        errors = relative_errors(maps[scheme], targets)
        for mask, kind, style in ((is_lrs, "LRS", "-"), (~is_lrs, "HRS", ":")):
            values = np.sort(errors[mask & ~stuck & np.isfinite(errors)])
            if values.size:
                error_axis.plot(values, np.arange(1, values.size + 1) / values.size, style,
                                color=colour, label=f"{label} {kind}")
    error_axis.set(title="re-read error", xlabel="|G - target| / target (1)",
                   ylabel="fraction of cells (1)", xscale="log")
    if error_axis.lines:
        error_axis.legend(fontsize="small")
    error_axis.grid(True, alpha=0.3)
    return figure
