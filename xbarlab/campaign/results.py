"""A campaign's results: one row per task (CSV and HDF5) and plots of each metric against each
swept value, with the spread over seeds.

A row holds the task's key, run id and status, its value of every swept axis, and every
metric its run stored that is a single value (nested metrics flattened as ``outer/inner``).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

FIXED_COLUMNS = ("task", "run_id", "status")
MOST_PLOTTED_METRICS = 8
"""Metrics plotted when the campaign file names none (the first numeric ones, in order)."""


def flat_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Single-valued metrics (numbers, bools, text, None), nested ones as ``outer/inner``;
    lists and plot paths are left out."""
    flat: dict[str, Any] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flat_metrics(value, f"{name}/"))
        elif (value is None or isinstance(value, (bool, int, float, str))) and key != "plot":
            flat[name] = value
    return flat


def result_columns(rows: Sequence[Mapping[str, Any]], axes: Sequence[str]) -> list[str]:
    """Column order: the fixed columns, the axes, then every metric in order of appearance."""
    columns = [*FIXED_COLUMNS, *axes]
    for row in rows:
        columns += [key for key in row if key not in columns]
    return columns


def write_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], path: Path) -> Path:
    """The table as CSV (an empty field: not given; floats in their shortest exact form)."""
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_text(row.get(column)) for column in columns])
    return path


def write_hdf5(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], path: Path,
               attributes: Mapping[str, Any]) -> Path:
    """The table as HDF5: group ``/results`` with one dataset per column (numbers as float64
    with NaN where a row has none, text as UTF-8 strings); `attributes` on the root."""
    import h5py

    with h5py.File(path, "w") as file:
        for key, value in attributes.items():
            file.attrs[key] = value
        group = file.create_group("results")
        for column in columns:
            values = [row.get(column) for row in rows]
            group.create_dataset(column.replace("/", "."),
                                 data=_column_array(values, h5py.string_dtype()))
    return path


def _column_array(values: list[Any], text_dtype: Any) -> np.ndarray:
    """Numbers as float64 (NaN where absent), anything else as text."""
    given = [v for v in values if v is not None]
    if given and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in given):
        return np.array([math.nan if v is None else float(v) for v in values], np.float64)
    return np.array(["" if v is None else str(v) for v in values], dtype=text_dtype)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def numeric_metrics(rows: Sequence[Mapping[str, Any]], columns: Sequence[str],
                    axes: Sequence[str]) -> list[str]:
    """Metric columns worth a plot: numbers in every row that has them, not the same in every
    row, and not instrument round-trip counts."""
    chosen = []
    for column in columns:
        if column in FIXED_COLUMNS or column in axes or column.startswith("round_trips"):
            continue
        values = [row.get(column) for row in rows if row.get(column) is not None]
        if (values and len(set(values)) > 1
                and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                        for v in values)):
            chosen.append(column)
    return chosen


def metric_figure(rows: Sequence[Mapping[str, Any]], metric: str, axis: str,
                  axes: Sequence[str]) -> Any:
    """`metric` against the values of `axis`: the mean over seeds with a bar of one standard
    deviation, one line per combination of the other swept values."""
    from matplotlib.figure import Figure

    others = [a for a in axes if a not in (axis, "seed")]
    xs = sorted({row[axis] for row in rows if axis in row}, key=_order)
    numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs)
    position = {x: (float(x) if numeric else k) for k, x in enumerate(xs)}
    figure = Figure(figsize=(6.4, 4.4))
    plot = figure.add_subplot()
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for row in rows:
        if isinstance(row.get(metric), (int, float)) and row.get(axis) is not None:
            groups.setdefault(tuple(row.get(a) for a in others), []).append(row)
    for group, members in sorted(groups.items(), key=lambda item: str(item[0])):
        points = []
        for x in xs:
            values = [float(m[metric]) for m in members if m.get(axis) == x]
            if values:
                points.append((position[x], np.mean(values), np.std(values), len(values)))
        if not points:
            continue
        px, mean, spread, _ = (np.array(column) for column in zip(*points, strict=True))
        label = ", ".join(f"{a}={v}" for a, v in zip(others, group, strict=True)) or metric
        plot.errorbar(px, mean, yerr=spread, marker="o", capsize=3, label=label)
    plot.set(xlabel=axis, ylabel=metric,
             title=f"{metric} against {axis} (mean ± 1 s.d. over seeds)")
    if not numeric:
        plot.set_xticks(range(len(xs)), [str(x) for x in xs])
    plot.grid(True, alpha=0.3)
    if len(groups) > 1 or not others:
        plot.legend(fontsize="small")
    return figure


def _order(value: Any) -> tuple:
    return (0, float(value), "") if isinstance(value, (int, float)) else (1, 0.0, str(value))
