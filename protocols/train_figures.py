"""The report's figures of a ``train`` run (`xbarlab report RUN`): accuracy per epoch, pulses
and energy per phase, the measured defect map beside the placement.

Each is drawn from what the run stored (its checkpoints and maps), so a report of an
interrupted run shows what it had done.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from xbarlab.figures import curves_figure

DEFECT_NAMES = ("healthy", "stuck-on", "stuck-off", "unresponsive")
DEFECT_COLOURS = ("#e8e8e8", "#d62728", "#1f77b4", "#ff7f0e")


def train_figures(run) -> Iterator[tuple[str, Any]]:
    """(caption, figure) pairs of a stored ``train`` run (module docstring)."""
    done = run.checkpoints()
    accuracy = _accuracy_figure(done)
    if accuracy is not None:
        yield "accuracy per epoch: training images measured on the chip during each epoch, " \
              "test images on the chip before (ex situ) and after training", accuracy
    if done.get("ledger"):
        yield "pulses and their energy per phase", _costs_figure(done["ledger"])
    maps = {record.name for record in run.maps()}
    if {"defects", "placement"} <= maps:
        yield "measured defect map and the placement of the tiles", _defects_figure(
            run.latest_map("defects"), run.latest_map("placement"))


def _accuracy_figure(done: dict) -> Any:
    series = []
    for phase, label in (("loop", "efficient updates"), ("baseline", "every change")):
        records = (done.get(phase) or {}).get("state", {}).get("records", [])
        if not records:
            continue
        epochs = [r["epoch"] + 1 for r in records]
        series.append((f"{label}: training images", epochs,
                       [100 * r["train_accuracy"] for r in records]))
        test = done.get(f"{phase}/accuracy")
        if test is not None and "ex_situ" in done:
            series.append((f"{label}: test images", [0, epochs[-1]],
                           [100 * done["ex_situ"], 100 * test]))
    software = (done.get("metrics") or {}).get("accuracy_software")
    if software is not None and series:
        last = max(max(x) for _, x, _ in series)
        series.append(("software (test images)", [0, last], [100 * software] * 2))
    if not series:
        return None
    from matplotlib.ticker import MaxNLocator

    figure = curves_figure(series, "accuracy on the chip", "epoch (0: ex situ)", "accuracy (%)")
    figure.axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))
    return figure


def _costs_figure(ledger: dict) -> Any:
    from matplotlib.figure import Figure

    phases = [name for name, tally in ledger.items() if tally["pulses"] or tally["bench_s"]]
    figure = Figure(figsize=(10, 3.8))
    pulse_axis, energy_axis, time_axis = figure.subplots(1, 3)
    positions = np.arange(len(phases))
    for axis, key, scale, title, unit in (
            (pulse_axis, "pulses", 1, "pulses", "pulses (count)"),
            (energy_axis, "energy_j", 1e9, "pulse energy", "energy (nJ)"),
            (time_axis, "bench_s", 1, "bench time", "time (s)")):
        axis.bar(positions, [ledger[p][key] * scale for p in phases], color="C0")
        axis.set_xticks(positions, phases, rotation=45, ha="right", fontsize="small")
        axis.set(title=title, xlabel="phase", ylabel=unit)
    return figure


def _defects_figure(defects: np.ndarray, placement: np.ndarray) -> Any:
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    figure = Figure(figsize=(11, 4.8))
    defect_axis, tile_axis = figure.subplots(1, 2)
    colours = ListedColormap(DEFECT_COLOURS).with_extremes(bad="0.55")
    defect_axis.imshow(np.ma.masked_invalid(defects), cmap=colours, vmin=-0.5, vmax=3.5,
                       interpolation="nearest")
    defect_axis.set(title="defects (grey: not examined)", xlabel="column", ylabel="row")
    defect_axis.legend(handles=[Patch(color=c, label=n) for c, n in zip(
        DEFECT_COLOURS, DEFECT_NAMES, strict=True)], fontsize="small", loc="lower left")
    tiles = int(np.nanmax(placement)) if np.isfinite(placement).any() else 0
    tile_colours = ListedColormap([f"C{k}" for k in range(max(tiles, 1))]).with_extremes(
        bad="white")
    tile_axis.imshow(np.ma.masked_invalid(placement), cmap=tile_colours, vmin=0.5,
                     vmax=max(tiles, 1) + 0.5, interpolation="nearest", alpha=0.45)
    stuck = np.argwhere(np.isfinite(placement) & np.isin(defects, (1, 2, 3)))
    tile_axis.plot(stuck[:, 1], stuck[:, 0], "k.", markersize=1.5,
                   label="defective cells in the tiles")
    tile_axis.set(title=f"placement ({tiles} tiles)", xlabel="column", ylabel="row")
    tile_axis.legend(fontsize="small", loc="lower left")
    return figure
