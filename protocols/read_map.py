"""The ``read-map`` protocol: read every selected cell of the chip and record its conductance map.

Bias schemes (`xbarlab.bench.READ_SCHEMES`) for the unselected lines while cell (i, j) is read
with ``v_read`` on row i and column j sensed at 0 V:

* ``ground``: every other line at 0 V. The sensed column's other cells see 0 V, so the sensed
  current is the selected cell's alone (up to wire drops): the accurate scheme, but every cell
  of the selected row sees the full ``v_read``.
* ``float``: every other line disconnected. Sneak paths through the floating network add to
  the sensed current; nothing can remove them afterwards, so the map is reported as measured
  and its larger error is visible, not hidden.
* ``v/2`` and ``v/3``: unselected rows at u = V/2 (V/3), unselected columns at V/2 (2V/3), so no
  unselected cell sees more than V/2 (V/3) (the half-select schemes of passive arrays: A. Chen,
  IEEE Trans. Electron Devices 60, 1318 (2013)). The sensed column still collects the current of its
  n - 1 half-selected cells, each at u: ``I_ij = g_ij (V - u) + u S_j`` with ``S_j`` the sum of
  column j's conductances. Labs cancel that term by a second measurement of the sensed line
  with the selected line at the unselected level (the difference is ``g_ij (V - u)``). The
  bench's read puts the selected row at V by definition, so this protocol takes the same
  cancellation from the readings of the whole column instead: summing the n equations gives
  ``sum_i I_ij = S_j (V - u + n u)``, hence ``S_j`` and every ``g_ij = (I_ij - u S_j) / (V - u)``
  with one measurement per cell and no extra bias state. It is exact for a linear array without
  wire resistance when every cell of the column is read; a column only partly read (mask) is
  corrected assuming its unread cells average like its read ones. The uncorrected ``I / V`` map
  is recorded too (``conductance_raw``).
  The correction removes the half-selected currents' mean, not their read noise: a cell that
  shares its column with a low-resistance cell keeps that neighbour's noise (u g_k sigma_read),
  which bounds the accuracy of one half-select reading of a high-resistance cell (averaging
  is the remedy: ``precision``).

A reading beyond the sensing SMU's fixed current range (its overflow value: `Reading.overflow`)
says the range is too low, not what the cell conducts: the cell's conductance stays NaN and
is counted in ``cells_overflow`` (autorange, or a higher range, reads it).

Correction: on a chip with a calibration record (`xbarlab.calibration`; ``correct`` true, the
default) every reading comes back corrected by the bench with the calibrated model, whatever
the scheme: sneak currents of floating or half-selected lines and IR drops are removed with
the estimate of the other cells, so the map is g = I / V and the half-select algebra above is
not needed. At the end the whole map is corrected once more from its raw readings, each cell
with the others as this map measured them (`ChipModel.correct_map`): a cell read before its
neighbours was corrected with what the bench knew of them then. ``correct`` false reports
what the instruments sensed, as above.

``reads`` > 1 takes that many readings of each cell under one bias state (`Bench.read_repeated`:
buffered readings of the sensing SMU, a few round trips for thousands) and averages them: read
noise falls as 1/sqrt(reads), the half-selected neighbours' included. They are taken in two
passes over the chip, half each, so that every cell has two bursts apart in time: the standard
errors (``conductance_stderr``) pool the scatter of one reading over cells of similar current
and scale it by the design effect the two passes show on the conductances, which counts the
slow (1/f) noise readings of one burst share (`xbarlab.protocols.error_bars`). Noise slower
than the time between the passes, and biases of the circuit (a ground read's IR drop), are not
in them.

``precision`` > 0 sets a target for every cell: the standard error of its conductance at most
that fraction of the value. The first pass takes at least `SPREAD_READS` readings a cell, so
the spread of the readings is known; each cell's standard error follows from the spreads
(`conductance_estimate`: under V/2 and V/3 it includes the column's other readings, through
the correction); then rounds of further readings, planned for the fewest readings that meet
every target (`_readings_wanted`), up to ``max_reads`` a cell. Under V/2 and V/3 this is what
reading a high-resistance cell beside a low-resistance one takes: that neighbour's read noise
(u g_k sigma_read per reading) can be larger than the cell's own signal, and only averaging
removes it. The maps ``conductance_stderr`` and ``readings`` are recorded, and
``cells_short_of_precision`` counts cells left above the target when they reached
``max_reads``.

Each burst of readings is committed to the run as it arrives, with Ctrl-C and SIGTERM held
between taking it and committing it, so an interrupted map loses nothing it measured and a
resumed run takes only the readings still missing (cells with fewer than ``reads``; with a
precision target, the plan is made again from every stored reading). The maps recorded at the
end cover every cell read in this run, across resumptions, and a PNG heat map goes next to the
run store (`read_map_figures`).

Relays: on a matrix bench the map first has the bench look for relays stuck closed
(`Bench.stuck_closed_relays`, a few measurements), because a line tied to a second input reads
plausibly wrong (a whole column at half or one and a half times its conductance). A cell read
as an open circuit gets its route's relays checked for one stuck open. A cell whose read such a
relay disturbs is stored ``unreachable`` with the relay named (``cells_unreachable``,
``unreachable_routes``), never as a number.

Which cells: ``cells`` (all, one cell or a block; `parse_cells`, shared by the other protocols
of this package), intersected with ``mask``, a file of the chip's shape (``.npy`` of booleans, or
text/CSV of 0/1, true = read; e.g. a defect map), and minus the bench file's masked cells.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Annotated

import numpy as np
from xbarlab.protocols.cells import load_mask, parse_cells, selected_cells
from xbarlab.protocols.error_bars import estimate_design_effect, reading_variance
from xbarlab.protocols.parameters import Cells, Compliance, Correct, Mask, ReadScheme, VRead
from xbarlab.protocols.plots import save_figures, stored_parameters
from xbarlab.protocols.recording import ReadingStats, recorded_batches

from xbarlab.bench import ReadingBatch
from xbarlab.figures import map_figure
from xbarlab.params import Param
from xbarlab.plan import Phase, Plan
from xbarlab.registry import bound_operations, refuse, register_protocol

UNSELECTED_ROW_LEVEL = {"v/2": 1 / 2, "v/3": 1 / 3}
"""Unselected-row level as a fraction of the read voltage (sensed column at 0 V)."""
SPREAD_READS = 8
"""Readings per cell in the first pass of a map with a precision target: enough to estimate the
spread of the readings."""
PRECISION_ROUNDS = 4
"""Rounds of further readings toward a precision target; each re-estimates the spread."""
PRECISION_MARGIN = 1.2
"""Readings taken beyond the estimate of what the precision needs (the spread is estimated)."""
MAX_READS_LIMIT = 1_000_000
"""Largest ``max_reads`` accepted."""


def conductance_estimate(currents: np.ndarray, variances: np.ndarray, v_read: float,
                         scheme: str) -> tuple[np.ndarray, np.ndarray]:
    """Conductances and their standard errors from mean sensed currents (NaN = not read) and
    the variances of those means (NaN = unknown), read with `scheme`.

    ``v/2``, ``v/3``: ``g_ij = (I_ij - u c_j sum_k I_kj) / (V - u)`` with
    ``c_j = n / (count_j (V - u + n u))`` (the module docstring's correction; ``count_j`` of the
    column's n cells read), so the variance adds the column's other readings, weighted by
    ``u c_j``, to the cell's own:
    ``((1 - u c_j)^2 v_ij + (u c_j)^2 sum_{k != i} v_kj) / (V - u)^2``.
    """
    if scheme not in UNSELECTED_ROW_LEVEL:
        return currents / v_read, np.sqrt(variances) / abs(v_read)
    u = UNSELECTED_ROW_LEVEL[scheme] * v_read
    n = currents.shape[0]
    read = np.isfinite(currents)
    count = read.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        weight = np.where(count > 0, n / (np.maximum(count, 1) * (v_read - u + n * u)), np.nan)
        column_sum = np.where(read, currents, 0.0).sum(axis=0)
        g = (currents - u * weight[None, :] * column_sum[None, :]) / (v_read - u)
        own = np.where(read, variances, 0.0)
        others = own.sum(axis=0)[None, :] - own
        uc = u * weight[None, :]
        variance = ((1 - uc) ** 2 * variances + uc**2 * others) / (v_read - u) ** 2
    return g, np.where(read, np.sqrt(variance), np.nan)


def _reads_fit(values, spec) -> None:
    """Cross-check: with a precision target, `max_reads` covers the first pass."""
    first = max(values["reads"], SPREAD_READS) if values["precision"] else values["reads"]
    if values["max_reads"] < first:
        refuse(f"max_reads = {values['max_reads']}: allowed at least {first} (reads, and "
               f"{SPREAD_READS} readings a cell when precision > 0)")


def _planned(values, spec) -> None:
    """Cross-check: cells x readings a cell within the bound of one run."""
    reads = values["max_reads"] if values["precision"] else values["reads"]
    cells = selected_cells(values["cells"], spec)
    bound_operations(cells * reads, f"{cells} cells x {reads} readings")


def read_map_figures(run) -> list:
    """The conductance map (log colour scale), and where they say something the relative
    standard error of each cell and its count of readings."""
    names = set(run.map_names())
    if "conductance" not in names:
        return []
    params = stored_parameters(run)
    g = run.latest_map("conductance")
    read = int(np.isfinite(g).sum())
    figures = [(f"conductance map, {params.get('scheme')} scheme", map_figure(
        g, f"conductance, {params.get('scheme')} scheme, {params.get('v_read'):g} V "
           f"({read} cells)", "S"))]
    stderr = run.latest_map("conductance_stderr") / np.abs(g)
    if np.isfinite(stderr).any():
        figures.append(("standard error of each cell's conductance", map_figure(
            stderr, "standard error / conductance", "1", "relative standard error")))
    counts = run.latest_map("readings")
    finite = counts[np.isfinite(counts)]
    if finite.size and finite.min() != finite.max():
        figures.append(("readings per cell", map_figure(counts, "readings per cell", "1",
                                                        "readings")))
    return [(caption, figure) for caption, figure in figures if figure is not None]


def read_map_plan(values, spec) -> Plan:
    """Every selected cell read `reads` times, or with a precision target up to `max_reads`."""
    reads = values["max_reads"] if values["precision"] else values["reads"]
    cells = selected_cells(values["cells"], spec)
    return Plan.of([Phase(f"reading ({values['scheme']})", cells, 0, cells * reads)])


@register_protocol("read-map", checks=[_reads_fit, _planned],
                   figures=read_map_figures, plan=read_map_plan)
def read_map(
    bench, run, progress, *,
    v_read: VRead = 0.2,
    scheme: ReadScheme = "ground",
    current_limit: Compliance = 1e-3,
    cells: Cells = "all",
    reads: Annotated[int, Param("readings averaged per cell", minimum=1,
                                maximum=MAX_READS_LIMIT)] = 1,
    mask: Mask = "",
    precision: Annotated[float, Param(
        "target standard error of each cell's conductance, relative to it",
        zero="off", minimum=1e-4, maximum=0.5)] = 0.0,
    max_reads: Annotated[int, Param("most readings a cell with a precision target",
                                    minimum=1, maximum=MAX_READS_LIMIT)] = 4096,
    correct: Correct = True,
) -> dict:
    """Read the selected cells' conductance map at `v_read` with bias `scheme`.

    Cells are ``cells`` and ``mask``, minus the chip's masked ones (see the module
    docstring); `reads` readings each, and with `precision` more where a cell's standard error
    is above that fraction of its conductance (up to `max_reads` a cell). Records every
    reading, the conductance map (S), its standard errors and a heat map PNG. Returns
    ``cells``, ``round_trips_per_cell``, ``seconds`` and more."""
    bench.correct = correct
    modelled = "ground" if bench.corrects else scheme  # corrected readings are g V already
    first = max(reads, SPREAD_READS) if precision else reads
    started = time.perf_counter()
    selection = parse_cells(cells, bench.rows, bench.cols)
    if mask:
        selection &= load_mask(mask, bench.rows, bench.cols)
    if bench.matrices:  # a relay stuck closed reads plausibly wrong: find it first
        bench.stuck_closed_relays()
    stats = ReadingStats((bench.rows, bench.cols))
    stats.add(p for p in run.points(operation="read") if selection[p.row, p.col])
    wanted = bench.map_cells(selection)
    taken = ReadingStats((bench.rows, bench.cols))  # this invocation's readings
    reader = _Reader(bench, run, progress, v_read, scheme, current_limit, (stats, taken))
    progress.start(sum(max(first - int(stats.count[cell]), 0) for cell in wanted),
                   f"read map ({scheme}, {v_read:g} V, {first} reading(s) per cell)")
    for upto in (first // 2, first):  # two passes over the chip: each cell's bursts apart
        reader.take({cell: upto - int(stats.count[cell]) for cell in wanted
                     if stats.count[cell] < upto})
    for k in range(PRECISION_ROUNDS if precision else 0):
        more = _readings_wanted(wanted, stats, v_read, modelled, precision, max_reads)
        if not more:
            break
        reader.take(more, f"read map: round {k + 1} to {precision:.2%} standard error "
                          f"({len(more)} cells)")
    currents = stats.mean()
    conductance, stderr, _ = _estimate_with_error_bars(stats, v_read, modelled)
    if bench.corrects and reader.raw.count.any():
        conductance = _corrected_again(bench, reader.raw.mean(), v_read, scheme, conductance)
    run.record_map("conductance", conductance, unit="S")
    run.record_map("conductance_stderr", stderr, unit="S")
    run.record_map("readings", np.where(selection, stats.count, np.nan), unit="1")
    if modelled in UNSELECTED_ROW_LEVEL:
        run.record_map("conductance_raw", currents / v_read, unit="S")
    read = np.isfinite(currents)
    seconds = time.perf_counter() - started  # the map's measuring, not its plot
    plot = save_figures(run, "read-map", read_map_figures)
    trips = bench.round_trips()
    operations = sum(trips.get(op, {"calls": 0})["calls"] for op in ("read", "read_row"))
    round_trips = sum(trips.get(op, {"round_trips": 0})["round_trips"]
                      for op in ("read", "read_row"))
    read_now = int((taken.count > 0).sum())
    finite = conductance[np.isfinite(conductance)]
    relative = (stderr / np.abs(conductance))[read]
    return {
        "cells": int(read.sum()),
        "cells_read": int(read.sum()),
        "cells_read_now": read_now,
        "readings_now": int(taken.count.sum()),
        "cells_in_compliance": len(stats.compliant),
        "cells_overflow": len(stats.overflowed),
        "median_conductance_s": float(np.median(finite)) if finite.size else None,
        "read_operations": operations,
        "round_trips_per_cell": round_trips / read_now if read_now else 0.0,
        "seconds": seconds,
        "scheme": scheme,
        "stderr_rel_median": float(np.nanmedian(relative)) if np.isfinite(relative).any()
        else None,
        "cells_short_of_precision": int(np.sum(~(relative <= precision))) if precision
        else None,
        "plot": None if plot is None else str(plot),
        "cells_unreachable": len(taken.unreachable),
        "unreachable_routes": sorted(set(taken.unreachable.values())),
    }


def _estimate_with_error_bars(stats: ReadingStats, v_read: float, scheme: str):
    """The conductance map, its standard errors and the spread of one reading they count
    (`xbarlab.protocols.error_bars`): each reading's pooled variance, scaled by the design
    effect measured on the conductances of the first two passes (on the readings themselves
    when there were not two)."""
    per_reading, effect = reading_variance(stats)
    measured = estimate_design_effect(
        stats, per_reading, lambda mean, variance: conductance_estimate(mean, variance, v_read,
                                                                        scheme))
    per_reading = per_reading * (effect if measured is None else measured)
    with np.errstate(invalid="ignore", divide="ignore"):
        conductance, stderr = conductance_estimate(stats.mean(), per_reading / stats.count,
                                                   v_read, scheme)
    return conductance, stderr, np.sqrt(per_reading)


def _corrected_again(bench, raw, v_read, scheme, conductance) -> np.ndarray:
    """The map corrected again as a whole from this run's raw readings (`raw`, the mean
    sensed currents; NaN where this run read nothing): row by row where a board read whole
    rows, else cell by cell with the scheme's levels."""
    by_rows = bench.reads_rows(scheme)
    levels_of = None if by_rows else (
        lambda row, col: bench.modelled_levels(scheme, row, col, v_read))
    again = bench.chip_model.correct_map(raw, v_read, levels_of)
    return np.where(np.isfinite(again), again, conductance)


class _Reader:
    """Takes bursts of readings for a read map, commits each as it arrives and folds it into
    the statistics (`raw`: the sensed currents of corrected readings)."""

    def __init__(self, bench, run, progress, v_read, scheme, current_limit, stats):
        self.bench, self.run, self.progress = bench, run, progress
        self.v_read, self.scheme, self.current_limit = v_read, scheme, current_limit
        self.stats = stats
        self.raw = ReadingStats((bench.rows, bench.cols))
        self.passes = 0
        """Passes over the chip so far: each cell's readings of one pass are one burst."""

    def take(self, wanted: dict[tuple[int, int], int], label: str = "") -> None:
        """`wanted[cell]` more readings of each cell, in one pass over the chip: a phase of
        the progress of its own when `label` names it, else more of the present phase."""
        if not wanted:
            return
        self.passes += 1
        if label:
            self.progress.start(sum(wanted.values()), label)
        chosen = np.zeros((self.bench.rows, self.bench.cols), bool)
        chosen[tuple(np.array(list(wanted)).T)] = True
        batches = self.bench.iter_read_batches(self.v_read, self.scheme, chosen,
                                               current_limit=self.current_limit, count=wanted)
        for batch in recorded_batches(self.run, batches):
            for stats in self.stats:
                stats.add(batch, burst=self.passes)
            if isinstance(batch, ReadingBatch):
                if batch.raw_current is not None:  # corrected: those with a raw current
                    kept = ~np.isnan(batch.raw_current)
                    self.raw.add_columns(batch.row[kept], batch.col[kept],
                                         batch.raw_current[kept], batch.compliance[kept])
            else:
                self.raw.add(replace(r, current=r.raw_current) for r in batch if r.corrected)
            self.progress.advance(len(batch))


def _readings_wanted(cells, stats: ReadingStats, v_read, scheme, precision, max_reads) -> dict:
    """More readings per cell so that every cell's standard error is at most `precision` x
    |g|, planned from the spread of the readings so far (`conductance_estimate`'s variance).

    Per column, with w the correction's weight (0 outside V/2 and V/3) and s_k the spread of
    one reading of cell k: the column's shared term w^2 sum_k s_k^2 / N_k is held to a quarter
    of the smallest target variance at the fewest readings (N_k in proportion to s_k), then
    each cell gets what its own term needs on top: N_i = (1 - w)^2 s_i^2 / (T_i - shared_i).
    A margin covers the spreads being estimated from few readings; no cell passes
    `max_reads`."""
    g, _, spread = _estimate_with_error_bars(stats, v_read, scheme)  # spread of one reading
    planned = stats.count.copy()
    chosen = np.zeros(planned.shape, bool)
    for cell in cells:
        chosen[cell] = True
    u = UNSELECTED_ROW_LEVEL.get(scheme, 0.0) * v_read
    n_rows = planned.shape[0]
    for j in np.flatnonzero(chosen.any(axis=0)):
        rows = np.flatnonzero(np.isfinite(spread[:, j]) & chosen[:, j])
        if rows.size == 0:
            continue
        w = u * n_rows / (rows.size * (v_read - u + n_rows * u)) if u else 0.0
        s, counts = spread[rows, j], planned[rows, j]
        target = (precision * np.abs(g[rows, j]) * abs(v_read - u)) ** 2 / PRECISION_MARGIN
        if w and target.min() > 0:
            shared_budget = target.min() / 4
            counts = np.maximum(counts, np.ceil(w**2 * s * s.sum() / shared_budget))
        counts = np.minimum(counts, max_reads)
        v = s**2 / counts
        shared = w**2 * (v.sum() - v)
        with np.errstate(divide="ignore", invalid="ignore"):
            own = np.where(target > shared, (1 - w) ** 2 * s**2 / (target - shared), np.inf)
        planned[rows, j] = np.minimum(np.maximum(counts, np.ceil(own)), max_reads)
    extra = planned - stats.count
    return {(int(r), int(c)): int(extra[r, c]) for r, c in np.argwhere(extra > 0)}
