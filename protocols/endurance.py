"""The ``endurance`` protocol: SET/RESET cycles with a read after each pulse, until the ON/OFF
window closes.

Endurance is the number of switching cycles a cell survives with a usable window (Lanza et al.,
"Recommended methods to study resistive switching devices", Adv. Electron. Mater. 5, 1800143
(2019), §4: pulsed cycling with a read of both states every cycle, not DC sweeps). Per cell,
per cycle: a SET pulse (``v_set``, ``width``, under ``compliance``), a read (G_on), a RESET pulse
(``v_reset``), a read (G_off); window = G_on / G_off. The cell's window has closed when it stays
below ``min_window`` for ``patience`` consecutive cycles; its endurance is the cycle where that
streak began (the number of good cycles before it). A cell that never closes within ``cycles``
is reported as surviving them (a lower bound on its endurance). Stuck cells close at once.

Pulses and reads are stored as measured (``set``, ``reset``, ``read``); after every cycle the
cell's state (G_on and G_off so far) is a checkpoint (``endurance r,c``), so a resumed run
continues each cell at its next cycle. Unselected lines follow ``pulse_scheme`` (``v/2``
default) during pulses and ``read_scheme`` (``ground``) during reads. A PNG of G_on and G_off
against the cycle is saved.
"""

from __future__ import annotations

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

from xbarlab.figures import curves_figure
from xbarlab.params import Param
from xbarlab.plan import Phase, Plan
from xbarlab.registry import bound_operations, register_protocol
from xbarlab.safety import signals_held

CHECKPOINT = "endurance {row},{col}"
PLOTTED_CELLS = 4


def _planned(values, spec) -> None:
    """Cross-check: cells x cycles x (two pulses and two reads) within the bound of a run."""
    cells = selected_cells(values["cells"], spec)
    bound_operations(cells * values["cycles"] * 4,
                     f"{cells} cells x {values['cycles']} cycles x 4 operations")


def endurance_plan(values, spec) -> Plan:
    """Every selected cell through every cycle (a SET and a RESET pulse, each read), at most:
    a cell stops earlier only when its window closes."""
    cells = selected_cells(values["cells"], spec)
    cycles = cells * values["cycles"]
    return Plan.of([Phase("endurance", cells, 2 * cycles, 2 * cycles,
                          2 * cycles * values["width"])])


def endurance_figures(run) -> list:
    """G_on read after each SET and G_off after each RESET against the cycle, for the first
    `PLOTTED_CELLS` cells (log conductance axis; the legend beside the axes)."""
    series = []
    prefix = CHECKPOINT.split(" ")[0] + " "
    cells = [(key, value) for key, value in run.checkpoints().items() if key.startswith(prefix)]
    for key, cell in cells[:PLOTTED_CELLS]:
        cycle = np.arange(1, len(cell["g_on"]) + 1)
        for kind, values in (("after SET", cell["g_on"]), ("after RESET", cell["g_off"])):
            series.append((f"({key[len(prefix):]}) {kind}", cycle,
                           [np.nan if v is None else v for v in values]))
    if not series:
        return []
    closed = sum(cell["closed_at"] is not None for _, cell in cells)
    return [("conductance read after each SET and RESET pulse", curves_figure(
        series, f"endurance: {closed} of {len(cells)} windows closed", "cycle (count)",
        "conductance (S)", logy=True, style=".", legend_outside=True))]


@register_protocol("endurance", checks=[_planned],
                   figures=endurance_figures, plan=endurance_plan)
def endurance(
    bench, run, progress, *,
    cells: Cells = "0,0",
    cycles: Annotated[int, Param("most SET/RESET cycles per cell", minimum=1,
                                 maximum=10**7)] = 100,
    v_set: SetVoltage = 1.3,
    v_reset: ResetVoltage = -1.3,
    width: Width = 1e-3,
    compliance: Compliance = 1e-3,
    pulse_scheme: PulseScheme = "v/2",
    v_read: VRead = 0.2,
    read_scheme: ReadScheme = "ground",
    min_window: Annotated[float, Param("smallest ON/OFF conductance ratio of an open window",
                                       above=1.0, maximum=1e9)] = 2.0,
    patience: Annotated[int, Param("cycles in a row below min_window that close the window",
                                   minimum=1, maximum=10**6)] = 3,
) -> dict:
    """Cycle the selected cells until their window closes (see the module docstring).

    Returns how many closed, their median endurance and the windows of the first and last
    cycles."""
    selected = bench.map_cells(parse_cells(cells, bench.rows, bench.cols))
    state = run.checkpoints()
    cells_state = {cell: state.get(CHECKPOINT.format(row=cell[0], col=cell[1]),
                                   {"g_on": [], "g_off": [], "closed_at": None})
                   for cell in selected}
    left = sum(0 if s["closed_at"] is not None else cycles - len(s["g_on"])
               for s in cells_state.values())
    progress.start(left, f"endurance ({len(selected)} cells, up to {cycles} cycles)")
    for (row, col), cell in cells_state.items():
        while cell["closed_at"] is None and len(cell["g_on"]) < cycles:
            g_on = _pulse_and_read(bench, run, row, col, "set", v_set, width, compliance,
                                   pulse_scheme, v_read, read_scheme)
            g_off = _pulse_and_read(bench, run, row, col, "reset", v_reset, width, compliance,
                                    pulse_scheme, v_read, read_scheme)
            cell["g_on"].append(g_on)
            cell["g_off"].append(g_off)
            cell["closed_at"] = closed_at(cell["g_on"], cell["g_off"], min_window, patience)
            run.checkpoint(CHECKPOINT.format(row=row, col=col), cell)
            progress.advance()
        if cell["closed_at"] is not None:
            progress.advance(cycles - len(cell["g_on"]))
    return _summary(run, cells_state, cycles)


def closed_at(g_on: list, g_off: list, min_window: float, patience: int) -> int | None:
    """First cycle (0-based) of `patience` consecutive cycles with G_on / G_off below
    `min_window`, or None. A cycle whose reads gave no conductance (None: nothing measured, as
    in a dry run) is no evidence of closure and breaks a streak, so a dry run plays every
    cycle (its worst case)."""
    streak = 0
    for k, (on, off) in enumerate(zip(g_on, g_off, strict=True)):
        unknown = on is None or off is None or off <= 0
        streak = 0 if unknown or on / off >= min_window else streak + 1
        if streak >= patience:
            return k - patience + 1
    return None


def _pulse_and_read(bench, run, row, col, operation, level, width, compliance, pulse_scheme,
                    v_read, read_scheme) -> float | None:
    with signals_held():
        bench.pulse(row, col, level, width, pulse_scheme, current_limit=compliance)
        run.record_point(row, col, operation, level, None, pulse_width=width, t=time.time())
    with signals_held():
        reading = bench.read(row, col, v_read, read_scheme, compliance)
        run.record_point(row, col, "read", reading.voltage, reading.current,
                         compliance=reading.compliance, t=reading.timestamp)
    g = reading.conductance
    return float(g) if np.isfinite(g) else None


def _summary(run, cells_state, cycles) -> dict:
    closed = [s["closed_at"] for s in cells_state.values() if s["closed_at"] is not None]

    def window(cell, k):
        on, off = cell["g_on"][k], cell["g_off"][k]
        return on / off if on is not None and off not in (None, 0) else None

    def median_window(k):
        values = [w for s in cells_state.values() if s["g_on"]
                  for w in [window(s, k)] if w is not None]
        return float(np.median(values)) if values else None

    plot = save_figures(run, "endurance", endurance_figures)
    return {
        "cells": len(cells_state),
        "cycles_run": int(sum(len(s["g_on"]) for s in cells_state.values())),
        "cells_closed": len(closed),
        "endurance_median_cycles": float(np.median(closed)) if closed else None,
        "survived_all_cycles": len(cells_state) - len(closed),
        "cycles_requested": cycles,
        "window_first_cycle_median": median_window(0),
        "window_last_cycle_median": median_window(-1),
        "plot": None if plot is None else str(plot),
    }
