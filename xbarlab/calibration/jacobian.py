"""Sensitivities of measured admittances to the fitted parameters, from the unit responses
(`xbarlab.calibration.model`): dY_st / d log g = g v_s v_t for a cell (the product of its
voltages in the two unit solutions), dY_st / dr = -i_b(s) i_b(t) for a path (the product of
its currents), summed over a line kind's segments for a wire. Used by both ways of fitting
(`fit`, `profiled`).

An entry Y_st depends on the cells of lines s and t at first order and on every other cell
only through products of two small voltages: `line_cell_block` keeps the former (large
arrays), `every_cell_block` every cell (exact).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def line_cell_block(pairs, inv_sigma, g, volts, rows, cols, param, indptr, indices, values,
                offset):
    """Cell entries of the Jacobian rows of one pattern (CSR rows from `offset`): for entry
    (s, t), d Y_st / d log g = g v_s v_t / sigma for every cell on line s or line t
    (``param[i, j]`` its column); a crossing cell once."""
    for k in range(pairs.shape[0]):
        s, t = pairs[k, 0], pairs[k, 1]
        at = indptr[offset + k]
        for q in range(2):
            line = s if q == 0 else t
            if q == 1 and s == t:
                continue  # a self entry: the cells of its one line
            if line < rows:
                for j in range(cols):
                    if q == 1 and s >= rows and j == s - rows:
                        continue
                    indices[at] = param[line, j]
                    values[at] = g[line, j] * volts[s, line, j] * volts[t, line, j] * inv_sigma[k]
                    at += 1
            else:
                j = line - rows
                for i in range(rows):
                    if q == 1 and s < rows and i == s:
                        continue
                    indices[at] = param[i, j]
                    values[at] = g[i, j] * volts[s, i, j] * volts[t, i, j] * inv_sigma[k]
                    at += 1


@njit(cache=True)
def every_cell_block(pairs, inv_sigma, g, volts, param, indptr, indices, values, offset):
    """The exact cell entries of the Jacobian rows of one pattern: every cell for every
    entry (small arrays)."""
    rows, cols = g.shape
    for k in range(pairs.shape[0]):
        s, t = pairs[k, 0], pairs[k, 1]
        at = indptr[offset + k]
        for i in range(rows):
            for j in range(cols):
                indices[at] = param[i, j]
                values[at] = g[i, j] * volts[s, i, j] * volts[t, i, j] * inv_sigma[k]
                at += 1


def cells_per_entry(pairs: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """How many cells each entry (s, t) depends on at first order (lines s and t)."""
    def length(line):
        return np.where(line < rows, cols, rows)

    s, t = pairs[:, 0], pairs[:, 1]
    crossing = (s < rows) != (t < rows)
    return np.where(s == t, length(s), length(s) + length(t) - crossing)


def segment_grams(u, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Sums over the word-line and the bit-line segments of the products of their currents in
    every pair of unit solutions (the wires' sensitivities, before the sign)."""
    seg_r = u.row_segments.reshape(rows + cols, -1)
    seg_c = u.col_segments.reshape(rows + cols, -1)
    return seg_r @ seg_r.T, seg_c @ seg_c.T


def resistance_block(pairs: np.ndarray, inv_sigma: np.ndarray, u, grams) -> np.ndarray:
    """d (Y_st / sigma) / d r of every path (rows', then columns') and of the two wire
    segment resistances, dense: one row per entry (s, t) of `pairs`."""
    s, t = pairs[:, 0], pairs[:, 1]
    return np.concatenate([-u.end_currents[s] * u.end_currents[t],
                           -grams[0][s, t][:, None], -grams[1][s, t][:, None]],
                          axis=1) * inv_sigma[:, None]
