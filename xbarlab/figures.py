"""Figures shared by protocols, ``xbarlab plot`` and ``xbarlab report``: a heat map of an array
map and labelled curves, drawn on matplotlib's Agg canvas.

Figures are `matplotlib.figure.Figure` objects (never pyplot), so drawing works without a
display, touches no global backend state and is safe from any thread. `save` writes a PNG file,
`png_bytes` gives the PNG for embedding (a self-contained HTML report). matplotlib is imported
when a figure is drawn, not when this module is.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def heatmap_figure(data: np.ndarray, title: str, unit: str, log: bool = False,
                   xlabel: str = "column", ylabel: str = "row",
                   first: tuple[int, int] = (0, 0)) -> Any:
    """An (m, n) map as a heat map with a colour bar labelled in `unit`; `first` is the
    (row, column) of its top-left cell on the chip (a part of a map keeps its line numbers).

    NaN cells (masked or not read) are grey. `log` uses a logarithmic colour scale over the
    positive finite values (conductance maps of binary devices span decades); values at or
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
    row0, col0 = first
    image = axis.imshow(np.ma.masked_invalid(data), norm=norm, interpolation="nearest",
                        cmap=colormaps["viridis"].with_extremes(bad="0.75"),
                        aspect="auto" if rows * 4 < cols else "equal",
                        extent=(col0 - 0.5, col0 + cols - 0.5, row0 + rows - 0.5, row0 - 0.5))
    axis.set(title=title, xlabel=xlabel, ylabel=ylabel)
    figure.colorbar(image, ax=axis, label=unit)
    return figure


def curves_figure(series: Sequence[tuple[str, Sequence[float], Sequence[float]]], title: str,
                  xlabel: str, ylabel: str, logx: bool = False, logy: bool = False,
                  style: str = ".-") -> Any:
    """Labelled x/y series (``(label, x, y)`` each) on one set of axes.

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
    return figure


def save(figure: Any, path: str | os.PathLike) -> Path:
    """Write `figure` as a PNG at `path` (folders created); the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path


def png_bytes(figure: Any, dpi: int = 100) -> bytes:
    """`figure` as PNG bytes."""
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
