"""The ``iv-sweep`` protocol: bipolar DC staircase on one cell, a block or all cells; hysteresis
loops and SET/RESET voltage extraction.

One cycle is four branches, 0 -> +v_set_max -> 0 -> v_reset_max -> 0, in steps of ``step``
volts (zero itself is not measured: a cell carries no current there). Each point holds its level
with the current limited to ``compliance`` (the limiter is what stops a SET, as in every
compliance-controlled DC sweep, e.g. Waser et al., Adv. Mater. 21, 2632 (2009)); the cell sees
the level for the instrument's integration time. The negative branches have their own limit,
``reset_compliance``: a RESET must pass more current than the SET compliance let the cell
reach, so a limit set for SET would hold the cell's voltage below the RESET threshold (the
usual practice: SET limited, RESET with a higher limit). Unselected lines follow ``scheme``: ``v/2``
(default) or ``v/3`` keep every other cell at or below |V|/2 (|V|/3), below the switching
threshold, so only the selected cell switches.

Where the bench has an SMU that sweeps two channels together (a 2600B's smua and smub, a
B2900's channels 1 and 2), each branch is one cell sweep (`Bench.sweep_cell`): the selected row
and column on those two channels as lockstep list sweeps, every other line at 0 V, the readings
of the whole branch in one round trip (``float``, ``ground`` and ``v/2``; a list longer than the
instrument's takes a few). Elsewhere (separate SMUs, a board, ``v/3``) each point is one bench
read, several round trips a point. The metrics say which (``paired_sweeps``) and what a branch
cost (``round_trips_per_branch``).

Half-selected currents: the sensed column also carries its other cells' current, u * S' with u
the unselected-row level (V/2 or V/3) and S' the sum of the column's other conductances. Before
each cell's sweep two reads at ``v_read`` measure S' once: a ``ground`` read (sensed current
g v_read, exactly the cell's) and a read in ``scheme`` (g v_read + u S'). Every sweep point is
then corrected by u(V) S' (valid while the half-selected cells stay below their thresholds and
ohmic). ``ground`` needs no correction but drives the selected row's other cells at full V;
``float`` cannot be corrected (sneak paths) and is reported as measured.

Extraction (per cell, per cycle): on the rising positive branch the SET voltage is the first
level at which the conductance I/V passes the geometric mean of its values at the branch's
first and last levels; on the rising negative branch the RESET voltage likewise (falling).
A branch whose conductance changes by less than ``min_ratio`` has no switching voltage.
The low-|V| ends of the falling branches give the ON and OFF conductances of the loop.

Every point is stored as measured (a swept branch as it arrives; operation ``set`` for V > 0,
``reset`` for V < 0, ``read`` for the two reference reads); each finished cell's results are a
checkpoint (``iv-sweep r,c``), so a resumed run skips finished cells and re-sweeps an
interrupted one.
Maps ``v_set`` and ``v_reset`` (NaN where none, every finished cell) and a PNG of the loops of
the first 8 cells swept by this invocation are saved.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from xbarlab.protocols.cells import parse_cells, selected_cells
from xbarlab.protocols.parameters import Cells, Compliance, ReadScheme, VRead
from xbarlab.protocols.plots import save_figures, stored_parameters
from xbarlab.protocols.read_map import UNSELECTED_ROW_LEVEL
from xbarlab.protocols.recording import reading_points

from xbarlab.bench import BenchError
from xbarlab.figures import curves_figure, map_figures
from xbarlab.params import Param
from xbarlab.plan import Phase, Plan
from xbarlab.registry import bound_operations, refuse, register_protocol
from xbarlab.safety import signals_held

CHECKPOINT = "iv-sweep {row},{col}"
PLOTTED_CELLS = 8


def staircase(v_set_max: float, v_reset_max: float, step: float) -> list[float]:
    """One bipolar cycle without the zero points: the branches of `branches` in order."""
    return [v for branch in branches(v_set_max, v_reset_max, step) for v in branch]


def branches(v_set_max: float, v_reset_max: float, step: float) -> list[list[float]]:
    """The branches of one cycle: up to v_set_max, back towards 0, down to v_reset_max, back
    towards 0 (each extreme once, zero never; a branch with no level is left out). Levels are
    rounded to 1 nV (0.3, not 0.30000000000000004, so that V/2 levels stay exact multiples)."""
    up = np.round(np.arange(1, int(round(v_set_max / step)) + 1) * step, 9)
    down = -np.round(np.arange(1, int(round(-v_reset_max / step)) + 1) * step, 9)
    parts = (up, up[-2::-1], down, down[-2::-1])
    return [[float(v) for v in part] for part in parts if part.size]


def extract(volts: np.ndarray, amps: np.ndarray, min_ratio: float) -> dict:
    """SET/RESET voltages and ON/OFF conductances of one cycle (see the module docstring)."""
    g = np.abs(amps / volts)
    positive, negative = volts > 0, volts < 0
    peak_p = int(np.argmax(np.where(positive, volts, -np.inf)))
    peak_n = int(np.argmin(np.where(negative, volts, np.inf)))
    rising_p = np.flatnonzero(positive)[np.flatnonzero(positive) <= peak_p]
    rising_n = np.flatnonzero(negative)[np.flatnonzero(negative) <= peak_n]
    falling_p = np.flatnonzero(positive)[np.flatnonzero(positive) > peak_p]
    falling_n = np.flatnonzero(negative)[np.flatnonzero(negative) > peak_n]

    def crossing(branch: np.ndarray, upward: bool) -> float | None:
        values = g[branch]
        if branch.size < 2 or not np.isfinite(values).all() or (values <= 0).any():
            return None
        first, last = values[0], values[-1]
        if (last / first if upward else first / last) < min_ratio:
            return None
        middle = np.sqrt(first * last)
        passed = values >= middle if upward else values <= middle
        return float(volts[branch[np.argmax(passed)]])

    def end(branch: np.ndarray) -> float | None:
        value = g[branch[-1]] if branch.size else np.nan
        return float(value) if np.isfinite(value) else None

    g_on, g_off = end(falling_p), end(falling_n)
    return {
        "v_set": crossing(rising_p, upward=True),
        "v_reset": crossing(rising_n, upward=False),
        "g_on": g_on,
        "g_off": g_off,
        "on_off_ratio": g_on / g_off if g_on and g_off else None,
    }


MAX_LEVELS_PER_CELL = 1_000_000
"""Most staircase levels of one cell (all its cycles): its curve is kept in memory to extract
the switching voltages."""


def _step_fits(values, spec) -> None:
    """Cross-check: the step is no larger than the smaller sweep extreme."""
    largest = min(values["v_set_max"], -values["v_reset_max"])
    if values["step"] > largest:
        refuse(f"step = {values['step']!r} V: allowed <= {largest:g} V (the smaller sweep "
               "extreme)")


def _planned(values, spec) -> None:
    """Cross-check: cells x cycles x staircase points within the bound of one run."""
    points = 2 * (values["v_set_max"] - values["v_reset_max"]) / values["step"] + 4
    if values["cycles"] * points > MAX_LEVELS_PER_CELL:  # each cell's curve is held in memory
        refuse(f"step = {values['step']!r} V and cycles = {values['cycles']}: "
               f"{values['cycles'] * points:.4g} levels a cell; allowed at most "
               f"{MAX_LEVELS_PER_CELL:.3g} (a larger step or fewer cycles)")
    cells = selected_cells(values["cells"], spec)
    bound_operations(cells * values["cycles"] * points,
                     f"{cells} cells x {values['cycles']} cycles x {points:.4g} levels")


def iv_sweep_plan(values, spec) -> Plan:
    """Every selected cell: two reads (with a scheme that needs its half-selected load), then
    every staircase level of every cycle, a reading each."""
    cells = selected_cells(values["cells"], spec)
    levels = sum(len(branch) for branch in branches(values["v_set_max"], values["v_reset_max"],
                                                    values["step"])) * values["cycles"]
    extra = 2 if UNSELECTED_ROW_LEVEL.get(values["scheme"], 0.0) else 0
    return Plan.of([Phase(f"IV sweep ({values['scheme']})", cells, 0,
                          cells * (levels + extra))])


def iv_figures(run) -> list:
    """The IV loops of the first `PLOTTED_CELLS` cells swept (|I| on a log axis, half-selected
    currents removed as the extraction did), and the SET and RESET voltage maps when more than
    one cell was swept."""
    params = stored_parameters(run)
    fraction = UNSELECTED_ROW_LEVEL.get(params["scheme"], 0.0)
    sweep_points = params["cycles"] * len(staircase(params["v_set_max"], params["v_reset_max"],
                                                    params["step"]))
    results = {key: value for key, value in run.checkpoints().items()
               if key.startswith(CHECKPOINT.split(" ")[0] + " ")}
    series = []
    for key, result in list(results.items())[:PLOTTED_CELLS]:
        row, col = (int(part) for part in key.split(" ")[1].split(","))
        swept = [p for p in run.points(row=row, col=col)
                 if p.operation in ("set", "reset")][-sweep_points:]  # the last, whole sweep
        volts = np.array([p.voltage for p in swept])
        amps = np.array([np.nan if p.current is None else p.current for p in swept])
        series.append((f"cell ({row}, {col})", volts,
                       amps - fraction * volts * (result.get("half_selected_s") or 0.0)))
    if not series:
        return []
    figures = [(f"IV loops of {len(series)} cell(s)", curves_figure(
        series, f"IV loops ({params['scheme']}, half-selected currents removed)",
        "voltage (V)", "|current| (A)", logy=True, legend_outside=len(series) > 4))]
    if len(results) > 1:
        figures += map_figures(run, ["v_set", "v_reset"])
    return figures


@register_protocol("iv-sweep", checks=[_step_fits, _planned],
                   figures=iv_figures, plan=iv_sweep_plan)
def iv_sweep(
    bench, run, progress, *,
    cells: Cells = "0,0",
    v_set_max: Annotated[float, Param("positive sweep extreme", unit="V", above=0.0,
                                      maximum="limits.max_voltage")] = 1.5,
    v_reset_max: Annotated[float, Param("negative sweep extreme", unit="V",
                                        minimum="-limits.max_voltage", below=0.0)] = -1.5,
    step: Annotated[float, Param("staircase step", unit="V", minimum=1e-4,
                                 maximum="limits.max_voltage")] = 0.05,
    compliance: Compliance = 1e-3,
    reset_compliance: Compliance = 1e-3,
    scheme: ReadScheme = "v/2",
    cycles: Annotated[int, Param("loops per cell", minimum=1, maximum=10**5)] = 1,
    v_read: VRead = 0.2,
    min_ratio: Annotated[float, Param("smallest ON/OFF ratio that counts as switching",
                                      above=1.0, maximum=1e9)] = 2.0,
) -> dict:
    """Bipolar staircase IV loops of the selected cells (see the module docstring); returns
    the median SET/RESET voltages, ON/OFF ratio and per-cell results."""
    cycle = branches(v_set_max, v_reset_max, step)
    per_cycle = sum(len(branch) for branch in cycle)
    selected = bench.map_cells(parse_cells(cells, bench.rows, bench.cols))
    done = run.checkpoints()
    todo = [cell for cell in selected if CHECKPOINT.format(row=cell[0], col=cell[1]) not in done]
    progress.start(len(todo) * (per_cycle * cycles + 2), f"IV sweep ({scheme}, {len(todo)} cells)")
    fraction = UNSELECTED_ROW_LEVEL.get(scheme, 0.0)
    sweeper = BranchSweeper(bench, run, progress, scheme)
    for row, col in todo:
        half_selected = 0.0  # S', the column's other conductances, when the scheme needs it
        if fraction:
            with signals_held():
                exact = bench.read(row, col, v_read, "ground", compliance)
                loaded = bench.read(row, col, v_read, scheme, compliance)
                run.record_points(reading_points([exact, loaded]))
            half_selected = (loaded.current - exact.current) / (fraction * v_read)
        progress.advance(2)
        volts, amps = [], []
        for branch in cycle * cycles:
            limit = compliance if branch[0] > 0 else reset_compliance
            for reading in sweeper.sweep(row, col, branch, limit):
                volts.append(reading.voltage)
                amps.append(reading.current - fraction * reading.voltage * half_selected)
        volts_a, amps_a = np.array(volts), np.array(amps)
        loops = [extract(volts_a[k:k + per_cycle], amps_a[k:k + per_cycle], min_ratio)
                 for k in range(0, len(volts), per_cycle)]
        run.checkpoint(CHECKPOINT.format(row=row, col=col),
                       {"half_selected_s": half_selected if np.isfinite(half_selected) else None,
                        "cycles": loops})
    return _summary(bench, run, selected) | sweeper.metrics()


class BranchSweeper:
    """Measures branches of one cell's staircase and stores their points: as one cell sweep
    per branch while the bench can run one, else (and from the first `BenchError` on) one
    read per point; keeps what each branch cost in round trips."""

    def __init__(self, bench, run, progress, scheme: str):
        self.bench, self.run, self.progress, self.scheme = bench, run, progress, scheme
        self.paired = True
        self.round_trips: list[int] = []

    def sweep(self, row: int, col: int, branch: list[float], limit: float) -> list:
        """The readings of `branch` on cell (row, col) under current limit `limit`, stored."""
        before = self.bench.io.total
        readings = self._swept(row, col, branch, limit) if self.paired else None
        if readings is None:
            readings = [self._read(row, col, v, limit) for v in branch]
        self.round_trips.append(self.bench.io.total - before)
        return readings

    def _swept(self, row: int, col: int, branch: list[float], limit: float) -> list | None:
        """One cell sweep of the branch, stored as it arrives; None (and reads from now on)
        when the bench cannot run one (it refuses before sending anything)."""
        try:
            with signals_held():
                readings = self.bench.sweep_cell(row, col, branch, self.scheme, limit)
                self.run.record_points(reading_points(readings, _operation(branch[0])))
        except BenchError:
            self.paired = False
            return None
        self.progress.advance(len(branch))
        return readings

    def _read(self, row: int, col: int, v: float, limit: float):
        """One point as one bench measurement (`sweep_point`), stored as measured."""
        with signals_held():
            reading = self.bench.sweep_point(row, col, v, self.scheme, limit)
            self.run.record_points(reading_points([reading], _operation(v)))
        self.progress.advance()
        return reading

    def metrics(self) -> dict:
        """Whether branches ran as cell sweeps, and their mean round trips (None: none ran)."""
        trips = self.round_trips
        return {"paired_sweeps": self.paired and bool(trips),
                "round_trips_per_branch": float(np.mean(trips)) if trips else None}


def _operation(volts: float) -> str:
    """The stored operation of a staircase point: ``set`` above 0 V, ``reset`` below."""
    return "set" if volts > 0 else "reset"


def _summary(bench, run, selected) -> dict:
    """Maps, PNG and metrics over every finished cell (this run and resumed ones)."""
    results = run.checkpoints()
    v_set = np.full((bench.rows, bench.cols), np.nan)
    v_reset = np.full((bench.rows, bench.cols), np.nan)
    loops = []
    for row, col in selected:
        for loop in results[CHECKPOINT.format(row=row, col=col)]["cycles"]:
            loops.append(loop)
            if loop["v_set"] is not None:
                v_set[row, col] = loop["v_set"]
            if loop["v_reset"] is not None:
                v_reset[row, col] = loop["v_reset"]
    run.record_map("v_set", v_set, unit="V")
    run.record_map("v_reset", v_reset, unit="V")
    plot = save_figures(run, "iv-sweep", iv_figures)

    def median(key: str) -> float | None:
        values = [loop[key] for loop in loops if loop[key] is not None]
        return float(np.median(values)) if values else None

    switched = [loop["v_set"] is not None and loop["v_reset"] is not None for loop in loops]
    return {
        "cells": len(selected),
        "loops": len(loops),
        "switching_fraction": float(np.mean(switched)) if loops else 0.0,
        "v_set_median": median("v_set"),
        "v_reset_median": median("v_reset"),
        "on_off_ratio_median": median("on_off_ratio"),
        "plot": None if plot is None else str(plot),
    }
