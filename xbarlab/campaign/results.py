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


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def seed_statistics(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str],
                    axes: Sequence[str], pooled: str | None = "seed") -> list[dict[str, Any]]:
    """One entry per combination of the swept values but `pooled` (the seed), in sweep
    order: those values, the number of tasks, and each metric's mean, standard deviation and
    count over the tasks that stored it as a number (a metric none of them stored is left
    out)."""
    swept = [axis for axis in axes if axis != pooled]
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row.get(axis) for axis in swept), []).append(row)
    entries = []
    for values, members in sorted(groups.items(),
                                  key=lambda item: [_order(v) for v in item[0]]):
        entry: dict[str, Any] = dict(zip(swept, values, strict=True))
        entry["tasks"] = len(members)
        for metric in metrics:
            found = [float(m[metric]) for m in members if _number(m.get(metric))]
            if found:
                entry[metric] = {"mean": float(np.mean(found)), "std": float(np.std(found)),
                                 "n": len(found)}
        entries.append(entry)
    return entries


def metric_figure(rows: Sequence[Mapping[str, Any]], metric: str, axis: str,
                  axes: Sequence[str]) -> Any:
    """`metric` against the values of `axis`: the mean over seeds with a bar of one standard
    deviation (`seed_statistics`), one line per combination of the other swept values."""
    from matplotlib.figure import Figure

    others = [a for a in axes if a not in (axis, "seed")]
    xs = sorted({row[axis] for row in rows if axis in row}, key=_order)
    numeric = all(_number(x) for x in xs)
    position = {x: (float(x) if numeric else k) for k, x in enumerate(xs)}
    figure = Figure(figsize=(6.4, 4.4))
    plot = figure.add_subplot()
    lines: dict[tuple, list[tuple]] = {}
    pooled = None if axis == "seed" else "seed"
    for entry in seed_statistics(rows, [metric], axes, pooled):
        if metric in entry and entry[axis] in position:
            stats = entry[metric]
            lines.setdefault(tuple(entry[a] for a in others), []).append(
                (position[entry[axis]], stats["mean"], stats["std"]))
    for group, points in sorted(lines.items(), key=lambda item: str(item[0])):
        px, mean, spread = (np.array(column) for column in zip(*points, strict=True))
        label = ", ".join(f"{a}={v}" for a, v in zip(others, group, strict=True)) or metric
        plot.errorbar(px, mean, yerr=spread, marker="o", capsize=3, label=label)
    plot.set(xlabel=axis, ylabel=metric,
             title=f"{metric} against {axis} (mean ± 1 s.d. over seeds)")
    if not numeric:
        plot.set_xticks(range(len(xs)), [str(x) for x in xs])
    plot.grid(True, alpha=0.3)
    if len(lines) > 1 or not others:
        plot.legend(fontsize="small")
    return figure


def _order(value: Any) -> tuple:
    return (0, float(value), "") if isinstance(value, (int, float)) else (1, 0.0, str(value))
