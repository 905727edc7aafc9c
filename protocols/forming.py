"""The ``forming`` protocol: feedback electroforming of pristine cells, one, a block or all.

In the spirit of ArC Instruments' FormFinder / AutoFormer (ArC ONE control software,
https://github.com/arc-instruments/arc1_pyqt, "FormFinder" module): pulses of rising width and
then rising amplitude, each followed by a read, stopping as soon as the cell has formed. For each
cell:

1. Survey: every selected cell read once at ``v_read`` (``ground`` scheme: the sensed current
   is the cell's alone), the fastest way the bench has (a whole row per measurement on an array
   board). A cell below ``r_formed`` is formed already (a pristine cell sits orders of
   magnitude above the HRS; by default two decades above ``r_target``, `FORMED_SPAN`):
   skipped, never pulsed. Each other cell, in turn, is read
   again first (its neighbours' forming may have moved it; a cell formed meanwhile is skipped
   the same way), then:
2. For each amplitude from ``v_start`` to ``v_stop`` in ``v_step`` steps, pulse widths from
   ``width_start`` multiplying by ``width_factor`` up to ``width_stop``; after every pulse a read.
3. Stop when the resistance is below ``r_target`` or has fallen to ``(1 - drop)`` of the initial
   value (both are forming signatures: a pristine cell sits orders of magnitude above the HRS).
   A cell still not formed after the last pulse is reported as failed.
4. A formed cell gets one RESET pulse at ``reset_after`` volts (0 skips it) and a read, taking
   it toward its HRS (``r_after_reset``): in its LRS it would load the lines of every later
   cell with a half-selected current (about 100 uA per cell at V/2 on the binary preset), until
   a source's compliance holds the lines below the forming voltage and later cells fail.
   Half-select disturb of later pulses can SET it again (V/2 above v_set from 1.8 V on the
   binary preset; V/3 from 2.7 V). Measured on a pristine copy of ``default`` (32 x 32, 1 mA,
   whole array, before its V/2 bias pulsed with the row): yield 76 % with ``v/2`` and no
   RESET, 78 % with ``v/2`` and the RESET, 98.3 % with ``v/3`` and the RESET (871 formed, 15
   failed, 138 stuck cells skipped): use ``v/3`` where the bench has the sources for it.

Every pulse runs under ``compliance`` (the current limit of the pulsing source; on a 1T1R or
series-resistor setup it caps the filament; the virtual passive array forms to its LRS under
any SMU limit, as fast filament growth outruns an SMU's limiter); unselected lines
follow ``scheme`` (``v/2`` default: half-selected cells see at most v_stop / 2, below the
forming threshold of pristine neighbours). Formed neighbours may switch: on a matrix bench
whose V/2 bias is not on a second channel of the pulsing SMU (which pulses it with the row),
the pulsed row rests at 0 V around its pulses while the unselected columns sit at V/2, so the
row's other cells see -V/2 meanwhile, a RESET above 2 |v_reset|; they stay formed, and a
formed cell in its HRS is still below ``r_formed``, so it is skipped when forming runs again.
Pulses and reads are stored as measured (``form``, ``read``); each finished cell's result is
a checkpoint (``forming r,c``), so a resumed run skips finished cells, and an interrupted cell
starts over with its read (it is skipped if it formed meanwhile). Maps of the initial and final
resistance and the forming amplitude, and a PNG of the forming amplitude, are saved.
"""

from __future__ import annotations

import math
import time
from typing import Annotated

import numpy as np
from xbarlab.protocols.cells import parse_cells, selected_cells
from xbarlab.protocols.parameters import Cells, Compliance, PulseScheme, VRead
from xbarlab.protocols.plots import save_figures

from xbarlab.figures import map_figures
from xbarlab.params import Param
from xbarlab.plan import Phase, Plan
from xbarlab.registry import bound_operations, register_protocol
from xbarlab.safety import signals_held

CHECKPOINT = "forming {row},{col}"
FORMED_SPAN = 100.0
"""``r_formed`` by default, in units of ``r_target``: a cell within two decades of the
resistance that counts as formed is formed already. Forming lowers a cell's resistance by
orders of magnitude, from a pristine oxide to a filament whose HRS lies within a decade or
two of its LRS; the user's ``r_target`` says where formed cells are, so nothing is assumed of
a particular device."""


def ramp(v_start: float, v_stop: float, v_step: float, width_start: float, width_stop: float,
         width_factor: float) -> list[tuple[float, float]]:
    """(amplitude, width) of every pulse in order: widths rise at each amplitude."""
    count = int(np.floor((v_stop - v_start) / v_step + 1e-9)) + 1
    amplitudes = np.round(v_start + v_step * np.arange(count), 9)
    widths = []
    width = width_start
    while width <= width_stop * (1 + 1e-9):
        widths.append(width)
        width *= width_factor
    return [(float(v), w) for v in amplitudes for w in widths]


def _planned(values, spec) -> None:
    """Cross-check: cells x amplitude steps x width steps (a pulse and a read each)."""
    amplitudes = (values["v_stop"] - values["v_start"]) / values["v_step"] + 1
    widths = math.log(values["width_stop"] / values["width_start"]) / math.log(
        values["width_factor"]) + 1
    cells = selected_cells(values["cells"], spec)
    bound_operations(cells * amplitudes * widths * 2,
                     f"{cells} cells x {amplitudes:.4g} amplitudes x {widths:.4g} widths x 2")


def forming_plan(values, spec) -> Plan:
    """A survey read of every selected cell, then every cell through the whole ramp (a read
    after each pulse) and its RESET, at most."""
    v = values
    cells = selected_cells(v["cells"], spec)
    pulses = ramp(v["v_start"], v["v_stop"], v["v_step"], v["width_start"], v["width_stop"],
                  v["width_factor"])
    reset = 1 if v["reset_after"] else 0
    seconds = sum(width for _, width in pulses) + reset * v["width_start"]
    return Plan.of([Phase("survey", cells, 0, cells),
                    Phase("forming", cells, cells * (len(pulses) + reset),
                          cells * (len(pulses) + 1 + reset), cells * seconds)])


def forming_figures(run) -> list:
    """The forming amplitude of each formed cell, and the resistance before and after."""
    return map_figures(run, [name for name in ("v_form", "r_initial", "r_final")
                             if name in run.map_names()])


@register_protocol("forming", checks=[_planned],
                   figures=forming_figures, plan=forming_plan)
def forming(
    bench, run, progress, *,
    cells: Cells = "all",
    v_start: Annotated[float, Param("first forming amplitude", unit="V", above=0.0,
                                    maximum="v_stop")] = 1.5,
    v_stop: Annotated[float, Param("last forming amplitude", unit="V", above=0.0,
                                   maximum="limits.max_voltage")] = 3.5,
    v_step: Annotated[float, Param("amplitude step", unit="V", above=0.0,
                                   maximum="limits.max_voltage")] = 0.1,
    width_start: Annotated[float, Param("first pulse width", unit="s", above=0.0,
                                        maximum="width_stop")] = 1e-3,
    width_stop: Annotated[float, Param("last pulse width", unit="s", above=0.0,
                                       maximum="limits.max_pulse_width")] = 1e-1,
    width_factor: Annotated[float, Param("width growth per step", above=1.0,
                                         maximum=1e3)] = 10.0,
    compliance: Compliance = 1e-3,
    r_target: Annotated[float, Param("resistance that counts as formed", unit="ohm",
                                     above=0.0, maximum=1e15)] = 1e5,
    drop: Annotated[float, Param("fraction of the initial resistance lost that counts as "
                                 "formed", above=0.0, below=1.0)] = 0.99,
    r_formed: Annotated[float, Param("resistance below which a cell is already formed",
                                     unit="ohm", zero=f"{FORMED_SPAN:g} x r_target",
                                     minimum="r_target", maximum=1e15)] = 0.0,
    reset_after: Annotated[float, Param("RESET amplitude after forming", unit="V",
                                        zero="leave formed cells in their LRS",
                                        minimum="-limits.max_voltage", below=0.0)] = -1.3,
    v_read: VRead = 0.2,
    scheme: PulseScheme = "v/2",
) -> dict:
    """Form the selected cells with an amplitude/width ramp and read-back feedback (see the
    module docstring); returns counts of formed, already formed and failed cells."""
    r_formed = r_formed or FORMED_SPAN * r_target
    pulses = ramp(v_start, v_stop, v_step, width_start, width_stop, width_factor)
    selected = bench.map_cells(parse_cells(cells, bench.rows, bench.cols))
    done = run.checkpoints()
    todo = [cell for cell in selected if CHECKPOINT.format(row=cell[0], col=cell[1]) not in done]
    progress.plan(2)
    todo = _survey(bench, run, progress, todo, v_read, compliance, 1 / r_formed)
    progress.start(len(todo), f"forming ({len(todo)} cells, up to {len(pulses)} pulses each)")
    for row, col in todo:
        result = _form_cell(bench, run, row, col, pulses, compliance, 1 / r_target, drop,
                            1 / r_formed, v_read, scheme)
        if result["v_form"] is not None and reset_after:
            with signals_held():
                result["energy_bound_j"] += bench.pulse(row, col, reset_after, width_start,
                                                        scheme, current_limit=compliance)
                run.record_point(row, col, "reset", reset_after, None, pulse_width=width_start,
                                 t=time.time())
            result["r_after_reset"] = _ohms(_read(bench, run, row, col, v_read, compliance))
        run.checkpoint(CHECKPOINT.format(row=row, col=col), result)
        progress.advance()
    return _summary(bench, run, selected)


def _survey(bench, run, progress, cells, v_read, compliance, g_formed) -> list[tuple[int, int]]:
    """Read every cell of `cells` once, the fastest way the bench has (a whole row per
    measurement on a board, cell by cell through a matrix), and finish the ones already formed
    there (checkpointed as skipped, never pulsed); return the others, in order, to be formed."""
    if not cells:
        return []
    progress.start(len(cells), f"survey ({len(cells)} cells)")
    mask = np.zeros((bench.rows, bench.cols), bool)
    mask[tuple(np.array(cells).T)] = True
    pristine = set()
    for batch in bench.iter_read_batches(v_read, "ground", mask=mask, current_limit=compliance):
        with signals_held():
            run.record_points({"row": r.row, "col": r.col, "operation": "read",
                               "voltage": r.voltage, "current": r.current,
                               "compliance": r.compliance, "t": r.timestamp} for r in batch)
            for reading in batch:
                g = reading.current / reading.voltage
                if g >= g_formed:
                    run.checkpoint(CHECKPOINT.format(row=reading.row, col=reading.col),
                                   _already_formed(g))
                else:
                    pristine.add((reading.row, reading.col))
        progress.advance(len(batch))
    return [cell for cell in cells if cell in pristine]


def _already_formed(g: float) -> dict:
    """The result of a cell found formed by its first read."""
    return {"r_initial": _ohms(g), "r_final": _ohms(g), "pulses": 0, "energy_bound_j": 0.0,
            "v_form": None, "width_form": None, "skipped": True, "formed": True}


def _form_cell(bench, run, row, col, pulses, compliance, g_target, drop, g_formed, v_read,
               scheme) -> dict:
    g_initial = _read(bench, run, row, col, v_read, compliance)
    if g_initial >= g_formed:
        return _already_formed(g_initial)
    result = {"r_initial": _ohms(g_initial), "pulses": 0, "energy_bound_j": 0.0,
              "v_form": None, "width_form": None, "skipped": False}
    g = g_initial
    g_drop = g_initial / (1 - drop) if g_initial > 0 else np.inf
    for v, width in pulses:
        with signals_held():
            result["energy_bound_j"] += bench.pulse(row, col, v, width, scheme,
                                                    current_limit=compliance)
            run.record_point(row, col, "form", v, None, pulse_width=width, t=time.time())
        result["pulses"] += 1
        g = _read(bench, run, row, col, v_read, compliance)
        if g >= g_target or g >= g_drop:
            result["v_form"], result["width_form"] = v, width
            break
    result["r_final"] = _ohms(g)
    result["formed"] = result["v_form"] is not None
    return result


def _read(bench, run, row, col, v_read, compliance) -> float:
    with signals_held():
        reading = bench.read(row, col, v_read, "ground", compliance)
        run.record_point(row, col, "read", reading.voltage, reading.current,
                         compliance=reading.compliance, t=reading.timestamp)
    return reading.current / reading.voltage


def _ohms(g: float) -> float | None:
    """Resistance from a read conductance; None when the read gave none (NaN, <= 0)."""
    return float(1 / g) if np.isfinite(g) and g > 0 else None


def _summary(bench, run, selected) -> dict:
    """Maps, PNG and metrics over every finished cell (this run and resumed ones)."""
    results = run.checkpoints()
    maps = {name: np.full((bench.rows, bench.cols), np.nan)
            for name in ("r_initial", "r_final", "v_form")}
    counts = {"formed": 0, "already_formed": 0, "failed": 0}
    pulses, energy, voltages = 0, 0.0, []
    for row, col in selected:
        result = results[CHECKPOINT.format(row=row, col=col)]
        for name, data in maps.items():
            if result[name] is not None:
                data[row, col] = result[name]
        kind = ("already_formed" if result["skipped"] else
                "formed" if result["formed"] else "failed")
        counts[kind] += 1
        pulses += result["pulses"]
        energy += result["energy_bound_j"]
        if result["v_form"] is not None:
            voltages.append(result["v_form"])
    for name, data in maps.items():
        run.record_map(name, data, unit="V" if name == "v_form" else "ohm")
    plot = save_figures(run, "forming", forming_figures)
    attempted = counts["formed"] + counts["failed"]
    return {
        "cells": len(selected),
        **counts,
        "forming_yield": counts["formed"] / attempted if attempted else None,
        "v_form_median": float(np.median(voltages)) if voltages else None,
        "pulses": pulses,
        "mean_pulses": pulses / attempted if attempted else 0.0,
        "energy_bound_j": energy,
        "plot": None if plot is None else str(plot),
    }
