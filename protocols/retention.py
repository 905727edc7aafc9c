"""The ``retention`` protocol: program cells, then read them at log-spaced times.

Retention (and the short-term relaxation that precedes it: Wan et al., Nature 608, 504 (2022),
NeuRRAM; techniques.md §5, D5) is the conductance of a programmed cell as a function of the
time since programming. This protocol:

1. programs every selected cell with one pulse (``program = set``: ``v_set``; ``reset``:
   ``v_reset``; ``none``: leaves the cells as they are) of ``width`` under ``compliance``;
2. reads every selected cell at ``points`` times log-spaced from ``t_first`` to ``t_last``
   seconds after programming, recording each reading as it arrives and one ``conductance``
   map per time.

Waiting is the instruments' job, so the same code waits on a real bench (wall time) and on the
virtual bench (its clock advances by exactly the instrument time): between reads the bench
holds with a 0 V pulse train (`hold`) on the first selected cell with every other line
floating, each pulse ``hold_width`` wide and at most ``hold_period`` apart (a hold of T
seconds is ceil(T / hold_period) pulses: raise ``hold_period`` for very long waits, within the
pulse count and period the SMU allows). The bench has no
wait operation of its own; this is the instrument-timed hold available through `Bench.pulse`.
Times are the schedule's (sum of the holds); the few milliseconds a read map takes are not
counted.

Resume: programming and every finished time point are checkpoints; a resumed run does not
program again and continues with the next time point, holding the rest of the schedule from
the moment it resumes (time spent interrupted is not known to the protocol). A PNG of
conductance against time is saved.
"""

from __future__ import annotations

import math
import time
from typing import Annotated

import numpy as np
from xbarlab.protocols.cells import parse_cells, selected_cells
from xbarlab.protocols.parameters import (
    Cells,
    Compliance,
    PulseScheme,
    ReadScheme,
    ResetVoltage,
    SetVoltage,
    VRead,
    Width,
)
from xbarlab.protocols.plots import save_figures
from xbarlab.protocols.recording import recorded_batches

from xbarlab.figures import curves_figure
from xbarlab.params import Param
from xbarlab.plan import Phase, Plan
from xbarlab.registry import refuse, register_protocol
from xbarlab.safety import signals_held

PROGRAMS = ("set", "reset", "none")
PLOTTED_CELLS = 8


def hold(bench, cell: tuple[int, int], seconds: float, width: float, period: float) -> None:
    """Let `seconds` pass on the instruments' clock: 0 V pulses `width` wide, evenly spread at
    most `period` apart, on `cell` with every other line floating (no cell sees a voltage)."""
    if seconds <= 0:
        return
    count = max(1, math.ceil(seconds / period))
    bench.pulse(cell[0], cell[1], 0.0, width, "float", count=count, period=seconds / count)


def read_cells(bench, run, mask, v_read, scheme, current_limit) -> np.ndarray:
    """Read the cells of `mask` (each reading recorded as it arrives); conductance map, NaN
    elsewhere."""
    g = np.full(mask.shape, np.nan)
    batches = bench.iter_read_batches(v_read, scheme, mask, current_limit=current_limit)
    for batch in recorded_batches(run, batches):
        for r in batch:
            g[r.row, r.col] = r.conductance
    return g


def _schedule_fits(values, spec) -> None:
    """Cross-check: the hold pulses fit the schedule (each hold is at least two pulses wide)."""
    width, period = values["hold_width"], values["hold_period"]
    first, last, points = values["t_first"], values["t_last"], values["points"]
    if width >= period:
        refuse(f"hold_width = {width!r} s: allowed < hold_period ({period:g} s)")
    if first < 2 * width:
        refuse(f"t_first = {first!r} s: allowed >= 2 x hold_width ({2 * width:g} s)")
    if last <= first:
        refuse(f"t_last = {last!r} s: allowed > t_first ({first:g} s)")
    times = np.geomspace(first, last, points)
    if times[1] - times[0] < 2 * width:
        refuse(f"points = {points}: the first interval, {times[1] - times[0]:.3g} s, must be "
               f">= 2 x hold_width = {2 * width:g} s; allowed: fewer points, a later t_last "
               "or a shorter hold_width")


def retention_figures(run) -> list:
    """Conductance against the time since programming (log time axis) of the first
    `PLOTTED_CELLS` cells read and the median of all, the legend beside the axes."""
    times, maps = retention_maps(run)
    if not times.size:
        return []
    read = np.argwhere(np.isfinite(maps).any(axis=0))
    g = maps[:, read[:, 0], read[:, 1]]
    series = [(f"cell ({r}, {c})", times, g[:, k])
              for k, (r, c) in enumerate(read[:PLOTTED_CELLS].tolist())]
    if len(read) > 1:
        series.append((f"median of {len(read)} cells", times, np.nanmedian(g, axis=1)))
    return [("conductance against time since programming", curves_figure(
        series, f"retention of {len(read)} cells", "time since programming (s)",
        "conductance (S)", logx=True, style=".-", legend_outside=True))]


def retention_plan(values, spec) -> Plan:
    """The programming pulse of every selected cell, then every cell read at each of the
    `points` times, the last `t_last` after programming."""
    cells = selected_cells(values["cells"], spec)
    pulses = 0 if values["program"] == "none" else cells
    return Plan.of([Phase(f"programming ({values['program']})", cells, pulses, 0,
                          pulses * values["width"]),
                    Phase(f"reading at {values['points']} times", cells, 0,
                          cells * values["points"], values["t_last"])])


@register_protocol("retention", checks=[_schedule_fits], figures=retention_figures,
                   plan=retention_plan)
def retention(
    bench, run, progress, *,
    cells: Cells = "0-3,0-3",
    program: Annotated[str, Param("programming pulse before the reads", choices=PROGRAMS)]
    = "set",
    v_set: SetVoltage = 1.3,
    v_reset: ResetVoltage = -1.3,
    width: Width = 1e-3,
    compliance: Compliance = 1e-3,
    pulse_scheme: PulseScheme = "v/2",
    v_read: VRead = 0.2,
    read_scheme: ReadScheme = "ground",
    t_first: Annotated[float, Param("first read after programming", unit="s", above=0.0,
                                    maximum=1e7)] = 0.01,
    t_last: Annotated[float, Param("last read after programming", unit="s", above=0.0,
                                   maximum=1e7)] = 1000.0,
    points: Annotated[int, Param("read times, log-spaced", minimum=2, maximum=1000)] = 11,
    tolerance: Annotated[float, Param("drift counted as retained, relative", above=0.0,
                                      maximum=10.0)] = 0.1,
    hold_width: Annotated[float, Param("width of the 0 V pulses that hold time", unit="s",
                                       above=0.0, maximum="limits.max_pulse_width")] = 1e-3,
    hold_period: Annotated[float, Param("longest period of the hold pulses", unit="s",
                                        above=0.0, maximum=1e4)] = 10.0,
) -> dict:
    """Program the selected cells, read them at log-spaced times (see the module docstring).

    One ``conductance`` map per time point (checkpoints ``retention maps`` and ``retention
    times`` pair each map with its time since programming); returns drift statistics at the
    last time and the fraction within `tolerance`."""
    times = np.geomspace(t_first, t_last, points)
    mask = parse_cells(cells, bench.rows, bench.cols)
    selected = bench.map_cells(mask)
    state = run.checkpoints()
    done = state.get("retention times", [])
    progress.start(len(selected) * (0 if "retention programmed" in state else 1)
                   + len(selected) * (points - len(done)), f"retention ({len(selected)} cells)")
    if "retention programmed" not in state:
        if program != "none":
            level = v_set if program == "set" else v_reset
            for row, col in selected:
                with signals_held():
                    bench.pulse(row, col, level, width, pulse_scheme, current_limit=compliance)
                    run.record_point(row, col, program, level, None, pulse_width=width,
                                     t=time.time())
                progress.advance()
        run.checkpoint("retention programmed", program)
    elapsed = done[-1] if done else 0.0
    seqs = state.get("retention maps", [])[:len(done)]
    for t in times[len(done):]:
        hold(bench, selected[0], float(t) - elapsed, hold_width, hold_period)
        elapsed = float(t)
        g = read_cells(bench, run, mask, v_read, read_scheme, compliance)
        seqs = [*seqs, run.record_map("conductance", g, unit="S")]
        done = [*done, elapsed]
        run.checkpoint("retention maps", seqs)
        run.checkpoint("retention times", done)
        progress.advance(len(selected))
    return _summary(run, selected, np.array(done), tolerance)


def retention_maps(run) -> tuple[np.ndarray, np.ndarray]:
    """The times since programming (s) of the finished time points and their conductance maps
    (times, rows, cols); a map whose time point was not checkpointed is superseded."""
    state = run.checkpoints()
    by_seq = {record.seq: record.data for record in run.maps("conductance")}
    seqs = state.get("retention maps", [])
    times = np.array(state.get("retention times", [])[:len(seqs)], float)
    return times, np.array([by_seq[seq] for seq in seqs[:len(times)]])


def _summary(run, selected, times, tolerance) -> dict:
    """Drift statistics and the PNG from the stored maps (`retention_maps`)."""
    times, maps = retention_maps(run)
    rows, cols = np.array(selected).T
    g = maps[:, rows, cols]  # (times, cells)
    with np.errstate(invalid="ignore", divide="ignore"):
        drift = g[-1] / g[0] - 1
    finite = np.isfinite(drift)
    plot = save_figures(run, "retention", retention_figures)
    return {
        "cells": len(selected),
        "time_points": len(times),
        "t_last_s": float(times[-1]),
        "median_g_first_s": float(np.nanmedian(g[0])) if finite.any() else None,
        "median_g_last_s": float(np.nanmedian(g[-1])) if finite.any() else None,
        "median_drift": float(np.median(drift[finite])) if finite.any() else None,
        "max_abs_drift": float(np.abs(drift[finite]).max()) if finite.any() else None,
        "retained_fraction": float(np.mean(np.abs(drift[finite]) <= tolerance))
        if finite.any() else None,
        "plot": None if plot is None else str(plot),
    }
