"""PNG plots shared by the protocols: a heat map of an array map and a set of labelled curves,
drawn by `xbarlab.figures` (matplotlib's Agg canvas, imported only when a plot is drawn). Each
function writes one PNG next to the run store and returns its path.

`run_plot_path` names a run's plot ``run-<id>-<name>.png`` in the run store's data directory,
beside ``runs.sqlite3`` (the CLI's ``xbarlab plot RUN`` writes ``run-<id>.png``; a protocol's own
figures sit next to it under the same prefix).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from xbarlab.figures import curves_figure, heatmap_figure, save


def run_plot_path(run, name: str) -> Path | None:
    """``<store data dir>/run-<id>-<name>.png`` for a run of the run store; None for a run of a
    store in memory (a dry run draws nothing)."""
    return None if run.data_dir is None else run.data_dir / f"run-{run.run_id}-{name}.png"


def save_heatmap(
    path: str | os.PathLike | None,
    data: np.ndarray,
    title: str,
    unit: str,
    log: bool = False,
    xlabel: str = "column",
    ylabel: str = "row",
) -> Path | None:
    """Save `xbarlab.figures.heatmap_figure` of an (m, n) map as a PNG (nothing for a None
    `path`: a dry run's)."""
    if path is None:
        return None
    return save(heatmap_figure(data, title, unit, log, xlabel, ylabel), path)


def save_curves(
    path: str | os.PathLike | None,
    series: Sequence[tuple[str, Sequence[float], Sequence[float]]],
    title: str,
    xlabel: str,
    ylabel: str,
    logx: bool = False,
    logy: bool = False,
    style: str = ".-",
) -> Path | None:
    """Save `xbarlab.figures.curves_figure` of labelled x/y series as a PNG (nothing for a None
    `path`)."""
    if not series:
        raise ValueError("series is empty: allowed one or more (label, x, y) series")
    if path is None:
        return None
    return save(curves_figure(series, title, xlabel, ylabel, logx, logy, style), path)
