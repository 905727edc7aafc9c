"""The ``read-map`` protocol: read every selected cell of the chip and record its conductance map.

Bias schemes (`xbarlab.bench.READ_SCHEMES`) for the unselected lines while cell (i, j) is read
with ``v_read`` on row i and column j sensed at 0 V:

* ``ground``: every other line at 0 V. The sensed column's other cells see 0 V, so the sensed
  current is the selected cell's alone (up to wire drops): the accurate scheme, but every cell
  of the selected row sees the full ``v_read``.
* ``float``: every other line disconnected. Sneak paths through the floating network add to
  the sensed current; nothing can remove them afterwards, so the map is reported as measured
  and its larger error is visible, not hidden.
* ``v/2`` and ``v/3``: unselected rows at u = V/2 (V/3), unselected columns at V/2 (2V/3), so no
  unselected cell sees more than V/2 (V/3) (the half-select schemes of passive arrays: A. Chen,
  IEEE Trans. Electron Devices 60, 1318 (2013)). The sensed column still collects the current of its
  n - 1 half-selected cells, each at u: ``I_ij = g_ij (V - u) + u S_j`` with ``S_j`` the sum of
  column j's conductances. Labs cancel that term by a second measurement of the sensed line
  with the selected line at the unselected level (the difference is ``g_ij (V - u)``). The
  bench's read puts the selected row at V by definition, so this protocol takes the same
  cancellation from the readings of the whole column instead: summing the n equations gives
  ``sum_i I_ij = S_j (V - u + n u)``, hence ``S_j`` and every ``g_ij = (I_ij - u S_j) / (V - u)``
  with one measurement per cell and no extra bias state. It is exact for a linear array without
  wire resistance when every cell of the column is read; a column only partly read (mask) is
  corrected assuming its unread cells average like its read ones. The uncorrected ``I / V`` map
  is recorded too (``conductance_raw``).
  The correction removes the half-selected currents' mean, not their read noise: a cell that
  shares its column with a low-resistance cell keeps that neighbour's noise (u g_k sigma_read),
  which bounds the accuracy of any half-select read of a high-resistance cell.

``reads`` > 1 reads the map that many times (pass by pass) and averages each cell's current:
read noise falls as 1/sqrt(reads), the half-selected neighbours' included.

Each reading is committed to the run as it arrives, with Ctrl-C and SIGTERM held between taking
it and committing it, so an interrupted map loses nothing it measured and a resumed run takes
only the readings still missing (cells with fewer than ``reads``). The maps recorded at the
end cover every cell read in this run, across resumptions, and a PNG heat map goes next to the
run store (`plots.run_plot_path`).

Which cells: ``cells`` (all, one cell or a block; `parse_cells`, shared by the other protocols
of this package), intersected with ``mask``, a file of the chip's shape (``.npy`` of booleans, or
text/CSV of 0/1, true = read; e.g. a defect map), and minus the bench file's masked cells.
"""

from __future__ import annotations

import time
from collections import Counter

import numpy as np
from xbarlab.protocols.plots import run_plot_path, save_heatmap
from xbarlab.protocols.recording import recorded_batches

from xbarlab.bench import READ_SCHEMES
from xbarlab.bench.protocols import register_protocol

UNSELECTED_ROW_LEVEL = {"v/2": 1 / 2, "v/3": 1 / 3}
"""Unselected-row level as a fraction of the read voltage (sensed column at 0 V)."""


def parse_cells(text: str, rows: int, cols: int, parameter: str = "cells") -> np.ndarray:
    """Boolean (rows, cols) selection from ``"all"`` or ``"ROWS,COLS"``.

    ROWS and COLS are each an index (``3``), an inclusive range (``0-7``) or ``*`` (every one),
    e.g. ``"3,4"`` (one cell), ``"0-7,0-3"`` (a block), ``"*,5"`` (column 5).
    """
    selection = np.zeros((rows, cols), bool)
    text = text.strip().lower()
    if text == "all":
        selection[:] = True
        return selection
    parts = text.split(",")
    allowed = (f"'all' or 'ROWS,COLS' with each an index, a range a-b or '*' "
               f"(rows 0..{rows - 1}, columns 0..{cols - 1})")
    if len(parts) != 2:
        raise ValueError(f"{parameter} = {text!r}: allowed {allowed}")
    spans = []
    for part, size in zip(parts, (rows, cols), strict=True):
        part = part.strip()
        if part == "*":
            spans.append(slice(0, size))
            continue
        first, dash, last = part.partition("-")
        try:
            low, high = int(first), int(last) if dash else int(first)
        except ValueError:
            raise ValueError(f"{parameter} = {text!r}: allowed {allowed}") from None
        if not 0 <= low <= high < size:
            raise ValueError(f"{parameter} = {text!r}: {part!r} is out of range; allowed {allowed}")
        spans.append(slice(low, high + 1))
    selection[spans[0], spans[1]] = True
    return selection


def load_mask(path: str, rows: int, cols: int) -> np.ndarray:
    """Boolean (rows, cols) mask from a ``.npy`` file or a text/CSV file of 0/1 values."""
    try:
        if path.endswith(".npy"):
            data = np.load(path, allow_pickle=False)
        else:
            data = np.loadtxt(path, delimiter="," if path.endswith(".csv") else None, ndmin=2)
    except (OSError, ValueError) as error:
        raise ValueError(f"mask = {path!r} cannot be read ({error}); allowed: a .npy file or "
                         f"a text/CSV file of 0/1, shape ({rows}, {cols})") from None
    if data.shape != (rows, cols):
        raise ValueError(f"mask = {path!r} has shape {data.shape}; allowed ({rows}, {cols})")
    return np.asarray(data, bool)


def half_select_corrected(currents: np.ndarray, v_read: float, scheme: str) -> np.ndarray:
    """Conductances from a map of sensed currents (NaN = not read) read with `scheme`.

    ``ground`` and ``float``: I / V. ``v/2`` and ``v/3``: each column's half-selected currents
    removed as the module docstring derives; columns with no reading stay NaN.
    """
    if scheme not in UNSELECTED_ROW_LEVEL:
        return currents / v_read
    u = UNSELECTED_ROW_LEVEL[scheme] * v_read
    n = currents.shape[0]
    read = np.isfinite(currents)
    count = read.sum(axis=0)
    column_sum = np.where(read, currents, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        read_sum_g = column_sum / (v_read - u + n * u)
        total_g = np.where(count > 0, read_sum_g * n / np.maximum(count, 1), np.nan)
    return (currents - u * total_g[None, :]) / (v_read - u)


@register_protocol("read-map")
def read_map(bench, run, progress, v_read: float = 0.2, scheme: str = "ground",
             current_limit: float = 1e-3, cells: str = "all", reads: int = 1,
             mask: str = "") -> dict:
    """Read the selected cells (``cells`` and ``mask``, minus the chip's masked ones; see the
    module docstring) `reads` times each at `v_read` volts with bias `scheme` (ground, float,
    v/2, v/3); record every reading, the conductance map (S) of the mean current and a heat map
    PNG. Returns ``cells``, ``round_trips_per_cell``, ``seconds`` and more."""
    if scheme not in READ_SCHEMES:
        raise ValueError(f"scheme = {scheme!r}: allowed {', '.join(READ_SCHEMES)}")
    if not v_read or not np.isfinite(v_read):
        raise ValueError(f"v_read = {v_read!r}: allowed a non-zero voltage within the bench's "
                         f"limit of ±{bench.spec.limits.max_voltage:g} V")
    if reads < 1:
        raise ValueError(f"reads = {reads!r}: allowed 1 or more (readings averaged per cell)")
    started = time.perf_counter()
    selection = parse_cells(cells, bench.rows, bench.cols)
    if mask:
        selection &= load_mask(mask, bench.rows, bench.cols)
    counts = Counter((p.row, p.col) for p in run.points(operation="read"))
    wanted = bench.map_cells(selection)
    to_read = [cell for cell in wanted if counts[cell] < reads]
    progress.start(sum(reads - min(counts[cell], reads) for cell in wanted),
                   f"read map ({scheme}, {v_read:g} V, {reads} read(s) per cell)")
    for k in range(reads):  # pass k reads every cell that has fewer than k + 1 readings
        skip = {cell for cell, n in counts.items() if n > k}
        batches = bench.iter_read_batches(v_read, scheme, selection, skip=skip,
                                          current_limit=current_limit)
        for batch in recorded_batches(run, batches):
            counts.update((r.row, r.col) for r in batch)
            progress.advance(len(batch))
    sums = np.zeros((bench.rows, bench.cols))
    n = np.zeros((bench.rows, bench.cols))
    compliant = set()
    for point in run.points(operation="read"):
        if selection[point.row, point.col]:
            sums[point.row, point.col] += point.current
            n[point.row, point.col] += 1
            if point.compliance:
                compliant.add((point.row, point.col))
    with np.errstate(invalid="ignore"):
        currents = np.where(n > 0, sums / np.maximum(n, 1), np.nan)
    conductance = half_select_corrected(currents, v_read, scheme)
    run.record_map("conductance", conductance)
    if scheme in UNSELECTED_ROW_LEVEL:
        run.record_map("conductance_raw", currents / v_read)
    read = np.isfinite(currents)
    plot = save_heatmap(run_plot_path(run, "read-map"), conductance,
                        f"conductance, {scheme} scheme, {v_read:g} V ({int(read.sum())} cells)",
                        "conductance (S)", log=True)
    trips = bench.round_trips()
    reads = sum(trips.get(op, {"calls": 0})["calls"] for op in ("read", "read_row"))
    round_trips = sum(trips.get(op, {"round_trips": 0})["round_trips"]
                      for op in ("read", "read_row"))
    finite = conductance[np.isfinite(conductance)]
    return {
        "cells": int(read.sum()),
        "cells_read": int(read.sum()),
        "cells_read_now": len(to_read),
        "cells_in_compliance": len(compliant),
        "median_conductance_s": float(np.median(finite)) if finite.size else None,
        "read_operations": reads,
        "round_trips_per_cell": round_trips / len(to_read) if to_read else 0.0,
        "seconds": time.perf_counter() - started,
        "scheme": scheme,
        "plot": str(plot),
    }
