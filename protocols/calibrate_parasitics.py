"""The ``calibrate-parasitics`` protocol: measure a chip's path and wire resistances through the
instruments, fit the nodal model to them, and store the chip's calibration record.

Source: reference/techniques.md §4 (source, line and neuron resistance, Rs / Rw / Rn). What it
estimates: per row the resistance between the row's end and whatever drives it (driver
output, relay, cable: ``r_source``), per column the same at the sensing end (``r_sense``), and
the word-line and bit-line segment resistances, each with a 95 % interval; and the cells.

The experiment (`xbarlab.calibration.fit` says why it identifies them):

1. Patterns: ``patterns`` seeded random binary patterns, each row with the same number of
   low-resistance cells (a fraction ``density`` of its cells, SET with ``v_set``; the others
   RESET with ``v_reset``; pulses of ``width`` with ``pulse_scheme`` protection) spread so
   that the columns have as equal a number as they can (`balanced_pattern`), each pattern
   followed by ``relax_wait`` seconds for the cells to settle; with ``patterns = 0`` the chip
   as it is (its cells are estimated all the same). Low-resistance cells load the lines: the
   more current a path carries, the more it shows, and a line's path shows in the current
   that passes between two of its low-resistance cells, so every line gets some.
2. For each pattern, one-hot excitations at ``v_read``: one line driven, every other line at
   0 V, and the currents of other lines sensed (``bench.measure_lines``, ``repeats``
   readings each): every row against every column (the cells), every line against itself
   (its load), and each line against ``partners`` lines of its own kind (the current a
   driven line sends through the array into the others, which is what the path resistances
   show). A board senses every line in one measurement; a matrix bench senses as many lines
   as it has SMUs, in groups, with the other lines on its ground input: a cell read of the
   ground scheme with more than the selected column sensed (relays and cables are in the
   path it measures). Every reading of a line crossing the driven one is stored as a point of
   the run (the cell where they cross, its bias in V and its current in A; `cell_points`).
3. The fit (`fit_parasitics`), weighted by the spread of the readings (pooled: variance
   a I^2 + b over all entries); the record (`run.record_calibration`: chip ``[chip] id``,
   this run, the resistances with intervals, the measurement and the fit's figures, the
   chip's cells at the end) is what later runs on the chip correct with.

Each pattern's programming is checkpointed by row and each excitation's readings as they are
taken, so a resumed run programs and measures only what is missing. A dry run (NaN readings)
plays the instrument work and fits nothing.
"""

from __future__ import annotations

import time
from typing import Annotated

import numpy as np
from xbarlab.protocols.parameters import (
    Compliance,
    PulseScheme,
    ResetVoltage,
    Seed,
    SetVoltage,
    VRead,
    Width,
)
from xbarlab.protocols.programming import hold

from xbarlab.benchfile import Line
from xbarlab.calibration import Transfers, fit_parasitics
from xbarlab.calibration.design import balanced_pattern, excitation_plan, partner_offsets
from xbarlab.calibration.record import record_of
from xbarlab.params import Param
from xbarlab.plan import Phase, Plan
from xbarlab.registry import register_protocol
from xbarlab.safety import signals_held

MAX_PATTERNS = 10
VARIANCE_FLOOR_QUANTILE = 5
"""Percentile of |I| below which the pooled variance's additive term is estimated."""
RESOLUTION = 1e-6
"""The least an entry's standard error can be, relative to its own current (a 6 1/2-digit
meter's last digit on the range that holds it; the smallest current measured for an entry of
none): the floor when readings agree exactly (no read noise, or readings rounded to one
value), so no entry weighs infinitely."""


def calibrate_parasitics_plan(values, spec) -> Plan:
    """Per pattern: every cell pulsed to it and the wait after, then every excitation of the
    design (one measurement of its sensed lines, `repeats` readings of each, counts as one)."""
    m, n = spec.chip.rows, spec.chip.cols
    board = any(inst.kind == "board" for inst in spec.instruments.values())
    capacity = m + n if board else sum(len(inst.info.terminals) for inst
                                       in spec.instruments.values() if inst.kind == "smu")
    excitations = len(excitation_plan(m, n, capacity, values["partners"]))
    phases = []
    for p in range(max(values["patterns"], 1)):
        if values["patterns"]:
            phases.append(Phase(f"pattern {p}: programming", m * n, m * n, 0,
                                m * n * values["width"] + values["relax_wait"]))
        phases.append(Phase(f"pattern {p}: excitations", m * n, 0, excitations))
    return Plan.of(phases)


@register_protocol("calibrate-parasitics", plan=calibrate_parasitics_plan)
def calibrate_parasitics(
    bench, run, progress, *,
    v_read: VRead = 0.2,
    current_limit: Compliance = 5e-3,
    patterns: Annotated[int, Param("random binary patterns programmed and measured",
                                   zero="the chip as it is, not programmed", minimum=1,
                                   maximum=MAX_PATTERNS)] = 1,
    density: Annotated[float, Param("fraction of low-resistance cells in a pattern",
                                    minimum=0.01, maximum=0.99)] = 0.25,
    seed: Seed = 0,
    repeats: Annotated[int, Param("readings per excitation (their spread weighs the fit)",
                                  minimum=2, maximum=1000)] = 4,
    partners: Annotated[int, Param("lines of its own kind each line is measured against",
                                   minimum=1, maximum=4096)] = 8,
    v_set: SetVoltage = 1.3,
    v_reset: ResetVoltage = -1.3,
    width: Width = 1e-4,
    pulse_scheme: PulseScheme = "v/2",
    relax_wait: Annotated[float, Param("wait after programming a pattern", unit="s",
                                       minimum=0.0, maximum=60.0)] = 1.0,
) -> dict:
    """Measure the chip's path and wire resistances through the instruments and store its
    calibration record (see the module docstring). Returns the resistances (medians over
    lines, with 95 % intervals, and per line), the record's id and the fit's figures."""
    started = time.perf_counter()
    m, n = bench.rows, bench.cols
    rng = np.random.default_rng(seed)
    plan = excitation_plan(m, n, bench.sense_capacity, partners)
    measured = []
    progress.plan(max(patterns, 1) * (2 if patterns else 1))  # programming, excitations
    for p in range(max(patterns, 1)):
        lrs = balanced_pattern(m, n, density, rng)
        if patterns:
            _program(bench, run, progress, p, lrs, v_set, v_reset, width, pulse_scheme)
            if not run.checkpoints().get(f"pattern{p}/settled"):
                hold(bench, relax_wait)
                run.checkpoint(f"pattern{p}/settled", True)
        measured.append(_measure(bench, run, progress, p, plan, v_read, current_limit,
                                 repeats))
    measurement = {"patterns": patterns, "density": density if patterns else None,
                   "seed": seed, "v_read": v_read, "repeats": repeats, "partners": partners,
                   "excitations": len(plan), "sensed_at_once": bench.sense_capacity,
                   "bench": bench.spec.name}
    if not all(np.all(np.isfinite(entries[:, 2])) for entries in measured):
        return {"fitted": False, "excitations": len(plan) * len(measured),
                "seconds": time.perf_counter() - started}
    data = [transfers(entries, v_read, repeats, m, n, partners) for entries in measured]
    fit = fit_parasitics(data, m, n)
    record = record_of(fit, measurement)
    done = run.checkpoints()
    calibration_id = done.get("calibration_id")
    if calibration_id is None:
        with signals_held():
            for p, g in enumerate(fit.conductances):
                run.record_map(f"conductance-p{p}", g, unit="S")
            calibration_id = run.record_calibration(bench.spec.chip.id, record,
                                                    fit.conductances[-1])
            run.checkpoint("calibration_id", calibration_id)
    intervals = record["intervals"]
    return {
        "fitted": True,
        "calibration_id": calibration_id,
        "chip": bench.spec.chip.id,
        **{name: intervals[name] for name in ("r_source", "r_sense", "r_wire_row",
                                              "r_wire_col")},
        "chi2_reduced": fit.chi2_reduced,
        "data_count": fit.data_count,
        "fit_evaluations": fit.evaluations,
        "excitations": len(plan) * len(measured),
        "seconds": time.perf_counter() - started,
    }


def _line(terminal: int, rows: int) -> Line:
    return Line("row", terminal) if terminal < rows else Line("col", terminal - rows)


def _program(bench, run, progress, p, lrs, v_set, v_reset, width, scheme) -> None:
    """SET the pattern's low-resistance cells and RESET the others, row by row; the rows done
    are checkpointed."""
    key = f"pattern{p}/rows programmed"
    first = run.checkpoints().get(key, 0)
    progress.start((bench.rows - first) * bench.cols, f"pattern {p}: programming")
    for i in range(first, bench.rows):
        for j in range(bench.cols):
            bench.pulse(i, j, v_set if lrs[i, j] else v_reset, width, scheme)
            progress.advance()
        run.checkpoint(key, i + 1)


def _measure(bench, run, progress, p, plan, v_read, current_limit, repeats) -> np.ndarray:
    """Every excitation of `plan` on pattern `p` (those a resumed run has are read back):
    rows of (sensed, driven, mean current, variance of one reading, compliance)."""
    m, n = bench.rows, bench.cols
    lines = [_line(k, m) for k in range(m + n)]
    done = run.checkpoints()
    entries = []
    progress.start(len(plan), f"pattern {p}: {len(plan)} excitations at {v_read:g} V")
    for k, (driven, sensed) in enumerate(plan):
        key = f"pattern{p}/x{k}"
        if key not in done:
            levels = {line: 0.0 for line in lines}
            levels[lines[driven]] = v_read
            with signals_held():
                readings = bench.measure_lines(levels, [lines[s] for s in sensed],
                                               current_limit, repeats)
                run.record_points(cell_points(driven, readings, v_read, m))
                done[key] = [[s, _finite(np.mean(r.currents)),
                              _finite(np.var(r.currents, ddof=1)), bool(r.compliance.any())]
                             for s, r in zip(sensed, readings.values(), strict=True)]
                run.checkpoint(key, done[key])
        entries += [[s, driven, np.nan if mean is None else mean,
                     np.nan if var is None else var, limited]
                    for s, mean, var, limited in done[key]]
        progress.advance()
    return np.array(entries, dtype=float).reshape(-1, 5)


def cell_points(driven: int, readings: dict, v_read: float, rows: int) -> list[dict]:
    """Run-store points of one excitation's readings of the lines that cross the driven one
    (terminal `driven`, at `v_read`): each reading of such a line is a ``read`` point of the
    cell where the two lines cross, with the cell's bias (row level minus column level, V) and
    the current from its row to its column (A) as the sensed instrument measured it. Readings
    of lines of the driven line's own kind cross it at no cell and stay in the checkpoints
    (their means and spreads)."""
    points = []
    for line, reading in readings.items():
        if (line.kind == "row") == (driven < rows):
            continue
        if line.kind == "col":  # a row driven: the column's instrument takes its cells' current
            row, col, voltage, sign = driven, line.index, v_read, -1.0
        else:  # a column driven: the row's instrument sends its cells' current
            row, col, voltage, sign = line.index, driven - rows, -v_read, 1.0
        points += [{"row": row, "col": col, "operation": "read", "voltage": voltage,
                    "current": sign * float(current), "compliance": bool(limited),
                    "t": reading.timestamp}
                   for current, limited in zip(reading.currents, reading.compliance,
                                               strict=True)]
    return points


def transfers(entries: np.ndarray, v_read: float, repeats: int, rows: int, cols: int,
              partners: int) -> Transfers:
    """The fit's data from measured entries: admittances (current / v_read) of the pairs
    the fit uses (every row-column pair, every self entry, the same-kind pairs of the partner
    offsets), without readings at a limit, weighted by the pooled spread a I^2 + b of one
    reading (a, b from all entries) over `repeats`."""
    s, t = entries[:, 0].astype(int), entries[:, 1].astype(int)
    mean, var, limited = entries[:, 2], entries[:, 3], entries[:, 4].astype(bool)
    keep = ~limited & np.isfinite(mean) & _wanted(s, t, rows, cols, partners)
    scale = mean**2
    big = scale > np.percentile(scale, VARIANCE_FLOOR_QUANTILE)
    a = float(np.median(var[big] / scale[big])) if big.any() else 0.0
    b = float(np.median(var[~big])) if (~big).any() else 0.0
    sigma = np.sqrt((a * scale + b) / repeats)
    size = np.abs(np.where(np.isfinite(mean), mean, 0.0))
    least = float(np.min(size[size > 0], initial=1.0))
    sigma = np.maximum(sigma, RESOLUTION * np.maximum(size, least)) / abs(v_read)
    return Transfers(np.stack([s[keep], t[keep]], axis=1), mean[keep] / v_read,
                     sigma[keep]).reciprocal_mean()


def _wanted(s, t, rows: int, cols: int, partners: int) -> np.ndarray:
    """Which (sensed, driven) pairs the fit uses."""
    is_row_s, is_row_t = s < rows, t < rows
    cross = is_row_s != is_row_t
    wanted = cross | (s == t)
    for same, size in ((is_row_s & is_row_t, rows), (~is_row_s & ~is_row_t, cols)):
        offset = (s - t) % size
        offset = np.minimum(offset, size - offset)
        wanted |= same & np.isin(offset, partner_offsets(size, partners)) & (s != t)
    return wanted


def _finite(value) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None
