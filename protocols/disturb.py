"""Disturb of the cells a programming protocol leaves alone, measured through the instruments.

Every pulse puts part of its voltage on the half-selected cells of its row and column (V/2 or
V/3) and on the sneak paths of floating lines, and the switching kinetics of oxide RRAM have no
hard threshold (rate exponential in voltage): those cells drift a little with every pulse, more
the higher the write amplitude. A protocol that programs part of a chip measures that drift on
a seeded sample of the cells it does not program: each read `reads` times before the first
pulse and again after the last, the change relative to the first read, with the standard error
of that change from the readings' own scatter.

Read noise has a 1/f part: readings taken in one burst share its slow components, so the
scatter of a burst understates how much two bursts minutes apart differ with no pulse at all.
The watched cells are therefore read a second time ``NULL_WAIT`` seconds after the first, before any
pulse: that change (``disturb_null_rel_median``) is what the noise alone does between two
reads, and a cell counts as disturbed (``disturb_beyond_3se``) only when its change exceeds
three times the larger of its standard error and the robust spread of the null changes.
The sample's readings are points of the run like any other; nothing here looks inside a
virtual bench.
"""

from __future__ import annotations

import math

import numpy as np
from xbarlab.protocols.programming import hold
from xbarlab.protocols.recording import ReadingStats, recorded_batches

from xbarlab.plan import Phase

WATCHED_CELLS = 16
"""Cells sampled outside the programmed set when a protocol does not say [E]."""
HOLD_STEP = 10.0
"""Longest single hold (s): the array board's longest pulse period (drivers/array_board.md)."""
NULL_WAIT = 30.0
"""Seconds between the two reads of the watched cells before any pulse (the noise-only change) [E]:
longer than the slow end of the read noise one expects to matter within a protocol."""


def watched_cells(bench, programmed, count: int = WATCHED_CELLS, seed: int = 0
                ) -> list[tuple[int, int]]:
    """A seeded sample of up to `count` cells of the chip outside `programmed` (and not masked),
    sorted; empty when the protocol programs every cell."""
    taken = np.zeros((bench.rows, bench.cols), bool)
    for cell in programmed:
        taken[cell] = True
    free = [cell for cell in bench.map_cells(~taken)]
    if not free:
        return []
    picked = np.random.default_rng(seed).permutation(len(free))[:count]
    return sorted(free[k] for k in picked)


def disturb_phases(count: int, programmed: int, chip_cells: int, reads: int
                   ) -> tuple[list[Phase], list[Phase]]:
    """The plan of the disturb measurement: (phases before the first pulse, after the last)
    for `count` cells watched outside `programmed` of the chip's `chip_cells`, `reads`
    readings each, the second read before any pulse `NULL_WAIT` seconds after the first."""
    watched = min(count, chip_cells - programmed)
    if not watched:
        return [], []
    return ([Phase("disturb: watched cells read", watched, 0, watched * reads),
             Phase("disturb: read again, no pulse", watched, 0, watched * reads, NULL_WAIT)],
            [Phase("disturb: read after programming", watched, 0, watched * reads)])


def read_watched(bench, run, cells, v_read: float, scheme: str, reads: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """`reads` readings of each of `cells` (recorded as points): (mean conductance, standard
    error of that mean) per cell, in the order of `cells`."""
    stats = ReadingStats((bench.rows, bench.cols))
    mask = np.zeros((bench.rows, bench.cols), bool)
    mask[tuple(np.array(cells).T)] = True
    for batch in recorded_batches(run, bench.iter_read_batches(v_read, scheme, mask=mask,
                                                               count=reads)):
        stats.add(batch)
    index = tuple(np.array(cells).T)
    mean = stats.mean()[index] / v_read
    stderr = np.sqrt(stats.variance_of_mean()[index]) / abs(v_read)
    return mean, stderr


def read_watched_once(bench, run, phase: str, watched, v_read: float, scheme: str, reads: int,
               wait: float = 0.0):
    """The `watched` cells' (mean, standard error) read once per run, `wait` seconds from now (the
    instruments' clock): a checkpoint named `phase` keeps it, so a resumed run does not read
    it again after pulses; None when no cell is watched."""
    if not watched:
        return None
    kept = run.checkpoints().get(phase)
    if kept is None:
        for _ in range(math.ceil(wait / HOLD_STEP)):
            hold(bench, wait / math.ceil(wait / HOLD_STEP))
        kept = [[float(x) if np.isfinite(x) else None for x in values]  # None: unknown
                for values in read_watched(bench, run, watched, v_read, scheme, reads)]
        run.checkpoint(phase, kept)
    return tuple(np.array(values, dtype=float) for values in kept)


def disturb_metrics(cells, before, null, after) -> dict:
    """The measured disturb of the watched `cells` from their (mean, standard error) before, at
    the noise-only re-read (`null`) and after: median and largest relative change, the median
    noise-only change and standard error, and how many cells changed by more than three times
    the larger of their standard error and the robust spread (1.4826 x median absolute) of
    the noise-only changes; and every cell's change ([row, col, relative change])."""
    if not cells:
        return {"disturb_cells": 0, "disturb_rel_median": None, "disturb_rel_max": None,
                "disturb_null_rel_median": None, "disturb_rel_stderr_median": None,
                "disturb_beyond_3se": None, "disturb_changes": []}
    (g0, se0), (gn, _), (g1, se1) = before, null, after
    change = (g1 - g0) / np.abs(g0)
    noise_only = (gn - g0) / np.abs(g0)
    stderr = np.hypot(se0, se1) / np.abs(g0)
    known = np.isfinite(change) & np.isfinite(noise_only) & np.isfinite(stderr)
    if not known.any():  # no reading gave a conductance (e.g. a dry run's recorded bench)
        return {"disturb_cells": len(cells), "disturb_rel_median": None,
                "disturb_rel_max": None, "disturb_null_rel_median": None,
                "disturb_rel_stderr_median": None, "disturb_beyond_3se": None,
                "disturb_changes": [[int(r), int(c), None] for r, c in cells]}
    floor = 1.4826 * float(np.median(np.abs(noise_only[known])))
    beyond = np.abs(change[known]) > 3.0 * np.maximum(stderr[known], floor)
    return {
        "disturb_cells": len(cells),
        "disturb_rel_median": float(np.median(np.abs(change[known]))),
        "disturb_rel_max": float(np.max(np.abs(change[known]))),
        "disturb_null_rel_median": float(np.median(np.abs(noise_only[known]))),
        "disturb_rel_stderr_median": float(np.median(stderr[known])),
        "disturb_beyond_3se": int(np.sum(beyond)),
        "disturb_changes": [[int(r), int(c), float(x) if np.isfinite(x) else None]
                            for (r, c), x in zip(cells, change, strict=True)],
    }


def describe_disturb(metrics: dict) -> str:
    """One line of the measured disturb in `metrics` (`disturb_metrics`' keys), for a report."""
    if not metrics.get("disturb_cells"):
        return "disturb: not measured (every cell of the chip was programmed)"
    return (f"disturb (measured, {metrics['disturb_cells']} cells left alone): median "
            f"{metrics['disturb_rel_median']:.2%}, max {metrics['disturb_rel_max']:.2%}, beside "
            f"{metrics['disturb_null_rel_median']:.2%} with no pulse (30 s apart); "
            f"{metrics['disturb_beyond_3se']} beyond the noise")
