"""PNG plots shared by the protocols: a heat map of an array map and a set of labelled curves.

Figures are drawn on matplotlib's Agg canvas through `matplotlib.figure.Figure` (never pyplot),
so saving a plot works without a display, touches no global backend state and is safe from any
thread. Each function writes one PNG and returns its path.

`run_plot_path` names a run's plot ``run-<id>-<name>.png`` in the run store's data directory,
beside ``runs.sqlite3`` (the CLI's ``xbarlab plot RUN`` writes ``run-<id>.png``; a protocol's own
figures sit next to it under the same prefix).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # matplotlib is imported when a plot is drawn, not with the protocols
    from matplotlib.figure import Figure


def run_plot_path(run, name: str) -> Path:
    """``<store data dir>/run-<id>-<name>.png`` for a run of the run store."""
    return run.data_dir / f"run-{run.run_id}-{name}.png"


def save_heatmap(
    path: str | os.PathLike,
    data: np.ndarray,
    title: str,
    unit: str,
    log: bool = False,
    xlabel: str = "column",
    ylabel: str = "row",
) -> Path:
    """Save an (m, n) map as a heat map PNG with a colour bar labelled in `unit`.

    NaN cells (masked or not read) are drawn grey. `log` uses a logarithmic colour scale over
    the positive finite values (conductance maps of binary devices span decades); values at or
    below zero (a noisy corrected reading) are grey on it too.
    """
    from matplotlib import colormaps
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    data = np.asarray(data, float)
    if data.ndim != 2:
        raise ValueError(f"data has shape {data.shape}: allowed a 2-D (rows, cols) map")
    finite = data[np.isfinite(data)]
    norm = None
    if log:
        positive = finite[finite > 0]
        if positive.size:
            norm = LogNorm(vmin=positive.min(), vmax=max(positive.max(), positive.min() * 1.001))
        data = np.where(data > 0, data, np.nan)
    rows, cols = data.shape
    figure = Figure(figsize=(5.6, 4.6 * max(0.35, min(1.0, rows / cols))))
    axis = figure.add_subplot()
    image = axis.imshow(np.ma.masked_invalid(data), norm=norm, interpolation="nearest",
                        cmap=colormaps["viridis"].with_extremes(bad="0.75"),
                        aspect="auto" if rows * 4 < cols else "equal")
    axis.set(title=title, xlabel=xlabel, ylabel=ylabel)
    figure.colorbar(image, ax=axis, label=unit)
    return _save(figure, path)


def save_curves(
    path: str | os.PathLike,
    series: Sequence[tuple[str, Sequence[float], Sequence[float]]],
    title: str,
    xlabel: str,
    ylabel: str,
    logx: bool = False,
    logy: bool = False,
    style: str = ".-",
) -> Path:
    """Save labelled x/y series (``(label, x, y)`` each) on one set of axes as a PNG.

    Axis labels carry the units (``"voltage (V)"``). With `logy` the magnitude |y| is drawn
    (currents of both polarities on one log axis; say so in `ylabel`, ``"|current| (A)"``); a
    legend is drawn for up to 12 series.
    """
    from matplotlib.figure import Figure

    if not series:
        raise ValueError("series is empty: allowed one or more (label, x, y) series")
    figure = Figure(figsize=(6.4, 4.4))
    axis = figure.add_subplot()
    for label, x, y in series:
        x, y = np.asarray(x, float), np.asarray(y, float)
        if x.shape != y.shape:
            raise ValueError(f"series {label!r}: x has shape {x.shape}, y {y.shape}; "
                             "allowed: equal shapes")
        axis.plot(x, np.abs(y) if logy else y, style, markersize=3, linewidth=1, label=label)
    axis.set(title=title, xlabel=xlabel, ylabel=ylabel,
             xscale="log" if logx else "linear", yscale="log" if logy else "linear")
    axis.grid(True, alpha=0.3)
    if len(series) <= 12:
        axis.legend(fontsize="small")
    return _save(figure, path)


def _save(figure: Figure, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path
