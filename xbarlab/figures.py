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
    from matplotlib.ticker import MaxNLocator

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
    for scale in (axis.xaxis, axis.yaxis):  # line numbers: whole numbers only
        scale.set_major_locator(MaxNLocator(integer=True))
    figure.colorbar(image, ax=axis, label=unit)
    return figure


def curves_figure(series: Sequence[tuple[str, Sequence[float], Sequence[float]]], title: str,
                  xlabel: str, ylabel: str, logx: bool = False, logy: bool = False,
                  style: str = ".-", legend_outside: bool = False) -> Any:
    """Labelled x/y series (``(label, x, y)`` each) on one set of axes.

    Axis labels carry the units (``"voltage (V)"``). With `logy` the magnitude |y| is drawn
    (currents of both polarities on one log axis; say so in `ylabel`, ``"|current| (A)"``); a
    legend is drawn for up to 12 series, beside the axes with `legend_outside` (so that it
    never covers the data).
    """
    from matplotlib.figure import Figure

    if not series:
        raise ValueError("series is empty: allowed one or more (label, x, y) series")
    figure = Figure(figsize=(8.4 if legend_outside else 6.4, 4.4))
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
        if legend_outside:
            axis.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0),
                        borderaxespad=0.0)
        else:
            axis.legend(fontsize="small")
    return figure


QUANTITIES = {"S": "conductance", "V": "voltage", "A": "current", "ohm": "resistance",
              "s": "time", "1": "count"}
"""What a value in each unit is, for colour-bar and axis labels."""


def unit_label(unit: str, quantity: str | None = None) -> str:
    """An axis or colour-bar label with its unit: ``conductance (S)``, ``readings (1)``."""
    return f"{quantity or QUANTITIES.get(unit, 'value')} ({unit or 'unit not stated'})"


def map_figure(data: np.ndarray, title: str, unit: str, quantity: str | None = None) -> Any:
    """A stored map as a heat map cropped to the cells that have a value, labelled with its
    unit; a logarithmic colour scale for conductances and resistances (they span decades) and
    for any positive map spanning more than 30x. None when no cell has a value (no empty
    panel)."""
    known = np.argwhere(np.isfinite(data))
    if not known.size:
        return None
    (r0, c0), (r1, c1) = known.min(axis=0), known.max(axis=0) + 1
    part = data[r0:r1, c0:c1]
    finite = part[np.isfinite(part)]
    positive = bool((finite > 0).all())
    log = positive and (unit in ("S", "ohm") or finite.max() > 30 * finite.min())
    return heatmap_figure(part, title, unit_label(unit, quantity), log=log,
                          first=(int(r0), int(c0)))


def map_figures(run, names: Sequence[str] | None = None) -> list[tuple[str, Any]]:
    """The latest map of each name (or of `names`) as heat maps, leaving out maps with no value
    and counts that are the same everywhere (nothing to see)."""
    figures = []
    for name in names if names is not None else run.map_names():
        records = run.maps(name)
        if not records:
            continue
        record = records[-1]
        finite = record.data[np.isfinite(record.data)]
        if record.unit == "1" and finite.size and finite.min() == finite.max():
            continue
        figure = map_figure(record.data, name, record.unit)
        if figure is not None:
            figures.append((f"map '{name}' (latest of its name)", figure))
    return figures


MOST_POINTS_PLOTTED = 50_000
"""Points drawn in the points-over-time figure (a longer run is sampled evenly)."""


def points_figure(run, count: int) -> Any:
    """|current| of every point (an even sample of a long run) against time, per operation;
    None when no point has a current."""
    columns = run.point_arrays(every=max(1, -(-count // MOST_POINTS_PLOTTED)))
    t0 = columns["t"].min() if columns["t"].size else 0.0
    series = []
    for operation in dict.fromkeys(columns["operation"]):
        chosen = (columns["operation"] == operation) & np.isfinite(columns["current"]) & (
            columns["current"] != 0)
        if chosen.any():
            series.append((str(operation), columns["t"][chosen] - t0,
                           np.abs(columns["current"][chosen])))
    if not series:
        return None
    return curves_figure(series, "points over time", "time since the first point (s)",
                         "|current| (A)", logy=True, style=".")


def run_figures(run) -> list[tuple[str, Any]]:
    """A stored run's figures: those its protocol declares (`register_protocol(figures=)`),
    else its maps and its points over time."""
    from xbarlab.registry import available_protocols

    info = run.info
    protocol = available_protocols().get(info.protocol)
    if protocol is not None and protocol.figures is not None:
        return list(protocol.figures(run))
    figures = map_figures(run)
    points = points_figure(run, info.n_points) if info.n_points else None
    if points is not None:
        figures.append(("every point's current over time", points))
    return figures


def save_run_figures(run, figures: Sequence[tuple[str, Any]], name: str,
                     directory: str | os.PathLike | None = None) -> list[Path]:
    """Write `figures` as PNGs ``run-<id>-<name>.png`` (then ``-2``, ``-3`` ...) into
    `directory`, by default the run store's folder beside the run; none for a run of a store
    in memory (a dry run's)."""
    folder = Path(directory) if directory is not None else run.data_dir
    if folder is None:
        return []
    return [save(figure, folder / f"run-{run.run_id}-{name}{'' if k == 0 else f'-{k + 1}'}.png")
            for k, (_, figure) in enumerate(figures)]


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
