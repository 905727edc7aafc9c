"""Honest standard errors of mean readings, from the readings alone.

A cell's readings taken back to back (a burst) share whatever varies slower than the burst:
the slow part of 1/f noise, the instrument's drift. Their scatter then understates how far
their mean can be from the truth, and a cell read eight times has a scatter known only to
within a factor of two (a standard error from seven degrees of freedom makes
error / standard error scatter like Student's t: 1.18 times wider than it should). So:

* the scatter of one reading is pooled over cells of similar sensed current (`POOL_HALF_WIDTH`
  cells on each side, ranked by the mean's magnitude), relative to the squared mean: the noise
  of a reading is a smooth function of what is read (device noise ~ current, an instrument's
  floor per range), and pooling turns seven degrees of freedom into hundreds;
* a map read in several passes over the chip gives each cell several bursts, minutes apart on
  a large chip: the spread of the burst means against what the scatter within bursts predicts
  (an F ratio per cell, averaged over all cells: the design effect) says how much the slow
  noise adds, and every variance is scaled by it. Where the value reported is made of several
  cells' readings (a half-select correction), the effect is measured on that value itself,
  made from each pass alone (`estimate_design_effect`): readings of one column share their
  neighbours' slow noise, which the correction partly cancels.

What no measurement of a map can show (noise slower than the time between its passes, a bias
of the circuit such as a ground read's IR drop) is not in these error bars.
"""

from __future__ import annotations

import numpy as np

POOL_HALF_WIDTH = 16
"""Cells on each side (by the magnitude of their mean reading) whose scatter is pooled with a
cell's own."""
POOL_SPAN = 2.0
"""Largest ratio of mean readings pooled: a conducting cell among a few is not pooled with the
many that barely conduct (whose relative noise differs)."""


def reading_variance(stats) -> tuple[np.ndarray, float]:
    """The variance of one reading of every cell, pooled over cells of similar current (NaN
    where unknown), and the design effect of the bursts on the readings' mean (1 when no cell
    was read in two bursts)."""
    shape = stats.count.shape
    if not stats.bursts:
        return np.full(shape, np.nan), 1.0
    keys = np.array(list(stats.bursts), dtype=np.int64)
    sums = np.array(list(stats.bursts.values()), dtype=float)
    cell = keys[:, 0] * shape[1] + keys[:, 1]
    n_b, burst_mean = sums[:, 0], sums[:, 1] / sums[:, 0]
    within_b = np.maximum(sums[:, 2] - n_b * burst_mean**2, 0.0)
    size = shape[0] * shape[1]
    n = np.bincount(cell, n_b, size)
    bursts = np.bincount(cell, minlength=size).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(cell, sums[:, 1], size) / n
        between = np.bincount(cell, n_b * (burst_mean - mean[cell]) ** 2, size)
        within = np.bincount(cell, within_b, size)
        scale = mean**2
        per_reading = _pooled(within, n - bursts, scale)
        if not np.isfinite(per_reading).any():  # bursts of one reading: their spread alone
            per_reading = _pooled(between, bursts - 1, scale)
            effect = 1.0
        else:
            effect = _design_effect(between, bursts, per_reading)
        own = (within + between) / np.maximum(n - 1, 1)  # a cell reading exactly 0 A
        per_reading = np.where(np.isfinite(per_reading), per_reading, own)
    return np.where(n >= 2, per_reading, np.nan).reshape(shape), effect


def estimate_design_effect(stats, per_reading: np.ndarray, estimate,
                           first: int = 1, second: int = 2) -> float | None:
    """The design effect of an estimate made of several cells' readings (a half-select
    correction subtracts a column's readings from a cell's): `estimate(mean currents,
    variances of those means)` -> (values, standard errors) made from bursts `first` and
    `second` alone (two passes over the chip), and the spread of their difference against the
    standard errors `per_reading` (one reading's variance) predicts; None when no cell has both.
    Readings of one pass share slow noise, and an estimate may cancel part of it (cells of
    one column, seconds apart): measured on the estimate, the effect includes that."""
    parts = [_burst_means(stats, burst) for burst in (first, second)]
    (g1, s1), (g2, s2) = (estimate(mean, per_reading / count) for mean, count in parts)
    both = np.isfinite(g1) & np.isfinite(g2) & (s1 > 0) & (s2 > 0)
    if not both.any():
        return None
    return float(np.mean((g1 - g2)[both] ** 2 / (s1[both] ** 2 + s2[both] ** 2)))


def _burst_means(stats, burst: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean reading and count of every cell in `burst` (NaN and 0 where it has none)."""
    mean = np.full(stats.count.shape, np.nan)
    count = np.zeros(stats.count.shape)
    for (row, col, b), (n, total, _) in stats.bursts.items():
        if b == burst:
            mean[row, col], count[row, col] = total / n, n
    return mean, count


def _pooled(squares: np.ndarray, dof: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Variance of one reading of every cell: `squares` (its sums of squared deviations, with
    `dof` degrees of freedom) pooled relative to `scale` (its squared mean) over the cells
    nearest in scale; NaN where the scale is zero or nothing is pooled."""
    usable = np.flatnonzero((scale > 0) & np.isfinite(scale))
    pooled = np.full(scale.shape, np.nan)
    if usable.size == 0:
        return pooled
    order = usable[np.argsort(scale[usable], kind="stable")]
    relative = np.concatenate([[0.0], np.cumsum(squares[order] / scale[order])])
    freedom = np.concatenate([[0.0], np.cumsum(np.maximum(dof[order], 0.0))])
    rank = np.arange(order.size)
    logs = np.log(scale[order])
    span = 2 * np.log(POOL_SPAN)  # scale is the squared mean
    low = np.maximum(rank - POOL_HALF_WIDTH, np.searchsorted(logs, logs - span, "left"))
    high = np.minimum(rank + POOL_HALF_WIDTH + 1, np.searchsorted(logs, logs + span, "right"))
    dof_window = freedom[high] - freedom[low]
    with np.errstate(invalid="ignore", divide="ignore"):
        pooled[order] = np.where(dof_window > 0,
                                 (relative[high] - relative[low]) / dof_window, np.nan)
    return pooled * scale


def _design_effect(between: np.ndarray, bursts: np.ndarray, per_reading: np.ndarray) -> float:
    """How much wider the burst means scatter than the scatter within bursts predicts,
    averaged over the cells read in two bursts or more (1 when none was)."""
    several = (bursts >= 2) & np.isfinite(per_reading) & (per_reading > 0)
    if not several.any():
        return 1.0
    return float((between[several] / per_reading[several]).sum()
                 / (bursts[several] - 1).sum())
