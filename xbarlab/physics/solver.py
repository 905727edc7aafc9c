"""Exact DC solve of a resistive crossbar with every line parasitic, by line-based CG.

The network (reference/physics.md §3.2). Cell (i, j) joins word-line node U[i, j] to bit-line
node W[i, j] with conductance G[i, j]. Neighbouring nodes of word line i are joined by wire
segments of ``r_wire_row``, those of bit line j by ``r_wire_col``. Row i is driven at its left
end (node U[i, 0]) by a source at ``v_row[i]`` through ``r_source[i]``; column j ends at its
bottom node W[m-1, j], which reaches a terminal at ``v_col[j]`` through ``r_sense[j]``.

Ideal limits are taken exactly, never approximated by small resistances:

- ``r_wire_* = 0``: every line of that direction is a single node ("lumped" line).
- ``r_source[i] = 0`` / ``r_sense[j] = 0`` on a driven end: the end node is held at the
  terminal voltage (a Dirichlet node), and the terminal current is the current leaving it.
- NaN in ``v_row`` / ``v_col``: that line end is unconnected (floating); the line still carries
  sneak currents through its cells.
- A group of lines joined by non-zero cells with no driven end anywhere (everything floating,
  or a floating line whose cells are all G = 0) carries no current. Its node voltages are
  defined as 0 V: the limit of a vanishing leak from every node to ground.

Method. The nodal matrix of the free nodes is A = [[R, -C], [-C^T, K]]: R holds the word
lines and K the bit lines, each line a tridiagonal system with its cell conductances on the
diagonal (physics.md §3.4), and C the cells joining them. R is eliminated exactly, one Thomas
solve per word line, and conjugate gradients runs on the bit-line nodes with the Schur
complement S = K - C^T R^-1 C, preconditioned by K (the bit-line tridiagonals). Because A
is 2-cyclic, this takes about half the iterations of CG on A preconditioned by all its line
tridiagonals, for the same work per iteration. The word lines follow from the final bit
lines by one more set of line solves; the residual left at the bit nodes is then the
residual of the whole network. Each line is eliminated from its
far end towards its terminal end, so the elimination does not depend on how the end is
connected and is shared by every input vector; only the final pivot takes the end's
conductance. Pivots are carried as the excess over the wire conductance (``s``), which
avoids cancellation when cells are 10^5 times weaker than wires. CG stops when the L1 norm
of the residual (a sum of node current errors in amperes, which bounds the error of every
terminal current) falls below ``RESIDUAL_RTOL`` times the largest terminal current, and the
bit lines' own correction K^-1 r (volts) below ``RESIDUAL_RTOL`` times the largest terminal
voltage: a node hanging on weak cells can hold a voltage error whose current is negligible.

Accuracy: iteration error below 1e-10 of the largest terminal current. Past that, double
precision sets the floor for this and any other nodal solve (SuperLU included): current
errors of about eps·V·g_max, g_max being the strongest conductance (a wire or an end),
and up to ~1e3 times that in the worst random networks tried (measured against long-double
iterative refinement; this solver was as close as SuperLU or closer). That exceeds 1e-9 of
the largest current only when that current is tiny next to g_max·V, e.g. one 10 MΩ path
behind 0.1 Ω sources. Likewise the voltage of a floating group of lines that reaches the
rest of the array only through a very weak cell is known to (rounding residual) / (that
cell's conductance): up to ~1e-8 of V in the worst random networks tried, for SuperLU too
(sometimes better, sometimes worse than this solver). In the usual regimes (κ from 0.01 to
100, physics.md §3) outputs agree with SuperLU and ngspice to ~1e-11.

Memory is O(m·n·B); no dense matrix is formed. One vector's solve runs in a single numba
function (two fused sweeps over the array per iteration, no Python in the loop); the
vectors of a batch run on numba's thread count at once (the kernels release the GIL).
Kernels are cached on disk.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from numba import get_num_threads, njit

# CG stops when sum(|node current residual|) <= RESIDUAL_RTOL * (largest terminal current).
# That sum bounds the error of every terminal current (a residual current injected at a node
# splits among the terminals), so this guarantees 10x margin on the 1e-9 accuracy contract;
# below it the deviation from SuperLU or ngspice is rounding, not iteration.
RESIDUAL_RTOL = 1e-10
# Floor of the stopping scale, relative to max|V| x largest line conductance sum, for inputs
# whose true currents are all ~0 (e.g. every terminal at the same voltage).
CURRENT_FLOOR = 1e-6
MAX_ITERATIONS = 5000
# A batch is spread over threads only with at least this many nodes per thread (a thread
# hand-off costs about as much as solving this many nodes).
PARALLEL_MIN_NODES = 2**17

# End states of a line, per input vector.
FREE = 0  # floating or driven through a resistance: every node of the line is unknown
END_FIXED = 1  # driven through zero resistance: the end node is held at the terminal voltage
ISOLATED = 2  # no path to any driven end: no current, every node at 0 V


@dataclass(frozen=True)
class CrossbarSolution:
    """Solution of one crossbar network for one or a batch of input vectors.

    Shapes follow the inputs: leading batch axis only when ``v_row`` or ``v_col`` had one.

    - ``i_row``: current delivered by each row source into the array (A); 0 when floating.
    - ``i_col``: current flowing out of each column into its terminal (A); 0 when floating.
    - ``v_cell``: voltage across every cell, word-line minus bit-line node (V), (..., m, n).
    - ``v_word`` / ``v_bit``: node voltages of word and bit lines (V), (..., m, n); a later
      solve can start from them (``warm_start=``).
    - ``iterations``: CG iterations taken (the largest over the batch).
    """

    i_row: np.ndarray
    i_col: np.ndarray
    v_cell: np.ndarray
    v_word: np.ndarray
    v_bit: np.ndarray
    iterations: int


# --------------------------------------------------------------------------- validation


def _validated_conductances(G) -> np.ndarray:
    G = np.ascontiguousarray(G, dtype=np.float64)
    if G.ndim != 2 or G.shape[0] < 1 or G.shape[1] < 1:
        raise ValueError(f"G must be a non-empty (m, n) array, got shape {G.shape}")
    if not np.all(np.isfinite(G)):
        raise ValueError("G must be finite (siemens, >= 0)")
    if np.any(G < 0):
        raise ValueError(f"G must be >= 0 siemens, got minimum {G.min()!r}")
    return G


def _validated_voltages(v, length: int, name: str) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    if v.ndim not in (1, 2) or v.shape[-1] != length:
        raise ValueError(f"{name} must have shape ({length},) or (B, {length}), got {v.shape}")
    if np.any(np.isinf(v)):
        raise ValueError(f"{name} must be finite volts or NaN (floating), got an infinity")
    return v


def _validated_line_resistance(r, length: int, name: str) -> np.ndarray:
    r = np.asarray(r, dtype=np.float64)
    if r.ndim == 0:
        r = np.full(length, float(r))
    if r.shape != (length,):
        raise ValueError(f"{name} must be a scalar or shape ({length},), got {r.shape}")
    if not np.all(np.isfinite(r)) or np.any(r < 0):
        raise ValueError(f"{name} must be finite and >= 0 ohm, got {r!r}")
    return r


def _validated_wire_resistance(r, name: str) -> float:
    r_array = np.asarray(r, dtype=np.float64)
    if r_array.ndim != 0:
        raise ValueError(f"{name} must be a scalar (ohm per segment), got shape {r_array.shape}")
    value = float(r_array)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and >= 0 ohm, got {value!r}")
    return value


# --------------------------------------------------------------------------- line set-up


@njit(cache=True)
def _line_pivots(G, g_row, g_col, lump_row, lump_col, s_end_row, inv_row, s_end_col, inv_col):
    """Thomas elimination of every line from its far end towards its terminal end.

    Word line i runs from j = n-1 to its source end j = 0, bit line j from i = 0 to its sense
    end i = m-1. ``inv_*`` holds 1 / (g_wire + s) at every node but the end (word lines
    j >= 1, bit lines i <= m-2) and ``s_end_*`` the end's s, where s is the pivot's excess
    over the wire conductance; the end conductance is added to ``s_end`` per input vector.
    Lumped lines: ``s_end`` is the line's total cell conductance.
    """
    m, n = G.shape
    for i in range(m):
        if lump_row:
            total = 0.0
            for j in range(n):
                total += G[i, j]
            s_end_row[i] = total
            continue
        s = G[i, n - 1]
        for j in range(n - 2, -1, -1):
            inv_row[i, j + 1] = 1.0 / (g_row + s)
            s = G[i, j] + g_row * s / (g_row + s)
        s_end_row[i] = s
    for j in range(n):
        s_end_col[j] = G[0, j] if not lump_col else 0.0
    if lump_col:
        for i in range(m):
            for j in range(n):
                s_end_col[j] += G[i, j]
        return
    for i in range(1, m):
        for j in range(n):
            s = s_end_col[j]
            inv_col[i - 1, j] = 1.0 / (g_col + s)
            s_end_col[j] = G[i, j] + g_col * s / (g_col + s)


# --------------------------------------------------------------------------- CG kernels
#
# `_pcg_vectors` solves a range of input vectors one after the other, serially; a batch is
# spread over threads range by range, so each thread keeps one vector's working set in cache
# and threads meet once per batch, not once per step. Arrays of one vector are (m, n); line
# data is (m,) or (n,). Lumped lines keep their single node at the end node (word: j = 0,
# bit: i = m-1) and zeros elsewhere. Small helpers and those called once are inlined at
# numba's level (``inline="always"``), so LLVM optimizes them once, inside their caller:
# that keeps the first compile near 4 s.


@njit(cache=True, nogil=True)
def _bit_row_product(i, G, pU, pW, g_col, lump_row, ge_col, state_col, yW):
    """yW[i] = (A p) at the bit-line nodes of row i (distributed bit lines; 0 at held nodes)."""
    m, n = G.shape
    step = 0 if lump_row else 1  # a lumped word line is its node j = 0
    for j in range(n):
        w = pW[i, j]
        acc = G[i, j] * (w - pU[i, j * step])
        if i > 0:
            acc += g_col * (w - pW[i - 1, j])
        if i < m - 1:
            acc += g_col * (w - pW[i + 1, j])
        else:
            acc += ge_col[j] * w
        state = state_col[j]
        yW[i, j] = 0.0 if state == ISOLATED or (state == END_FIXED and i == m - 1) else acc


@njit(cache=True, nogil=True, inline="always")
def _update_direction_row(i, beta, z, p):
    """p[i] = z[i] + beta p[i]."""
    for j in range(z.shape[1]):
        p[i, j] = z[i, j] + beta * p[i, j]


@njit(cache=True, nogil=True)
def _solve_word_line(rhs, out, g_row, lump_row, s_end, inv_pivot, ge, state):
    """out = R_i^-1 rhs for one word line (Thomas, eliminated from the far end; the held
    end node and isolated lines get 0). rhs and out may be the same array."""
    n = rhs.shape[0]
    if lump_row:
        out[0] = rhs[0] / (s_end + ge) if state == FREE else 0.0
        return
    if state == ISOLATED:
        for j in range(n):
            out[j] = 0.0
        return
    y = rhs[n - 1]
    out[n - 1] = y
    for j in range(n - 2, -1, -1):
        y = rhs[j] + g_row * inv_pivot[j + 1] * y
        out[j] = y
    z = y / (s_end + ge) if state == FREE else 0.0
    out[0] = z
    for j in range(1, n):
        z = inv_pivot[j] * (out[j] + g_row * z)
        out[j] = z


@njit(cache=True, nogil=True, inline="always")
def _cells_from_bits(i, G, w, lump_row, lump_col, out):
    """out = C w for word line i: the current each cell would push into its word-line node
    from bit-line voltages w with the word line at 0 V (summed for a lumped line)."""
    m, n = G.shape
    bit_row = m - 1 if lump_col else i
    if lump_row:
        acc = 0.0
        for j in range(n):
            acc += G[i, j] * w[bit_row, j]
        out[0] = acc
        return
    for j in range(n):
        out[j] = G[i, j] * w[bit_row, j]


@njit(cache=True, nogil=True)
def _residual_with_free_word_nodes_at_zero(G, xU, xW, rU, rW, g_row, g_col, lump_row,
                                           lump_col, ge_row, ge_col, state_row, state_col,
                                           v_end_row, v_end_col):
    """r = b - A x at every free node (0 at held nodes) for x whose free word-line nodes are
    0 V: there the word part is C W plus the source injection (or, next to a held end
    node, its pull through the first wire segment)."""
    m, n = G.shape
    step = 0 if lump_row else 1
    for i in range(m):
        _cells_from_bits(i, G, xW, lump_row, lump_col, rU[i])
        if state_row[i] == FREE:
            rU[i, 0] += ge_row[i] * v_end_row[i]
        elif state_row[i] == END_FIXED and not lump_row and n > 1:
            rU[i, 1] += g_row * xU[i, 0]
        if not lump_col:
            _bit_row_product(i, G, xU, xW, g_col, lump_row, ge_col, state_col, rW)
            for j in range(n):
                rW[i, j] = -rW[i, j]
    for j in range(n):
        if lump_col:
            acc = ge_col[j] * xW[m - 1, j]
            for i in range(m):
                acc += G[i, j] * (xW[m - 1, j] - xU[i, j * step])
            rW[m - 1, j] = -acc if state_col[j] == FREE else 0.0
        if state_col[j] == FREE:
            rW[m - 1, j] += ge_col[j] * v_end_col[j]


@njit(cache=True, nogil=True, inline="always")
def _schur_direction_and_product(beta, z, p, q, t, line, G, g_row, g_col, lump_row, lump_col,
                                 s_end_row, inv_row, ge_row, ge_col, state_row, state_col):
    """p = z + beta p, then q = S p with S = K - C^T R^-1 C; returns p·q.

    Row by row: t[i] = R_i^-1 (C p)[i] (word line i answering the bit-line direction), then
    q[i] = K p - C^T t at the bit nodes of row i. q may share memory with z: row i of z is
    consumed (p[i] updated) before q[i] is written, and row i+1 just before q[i] needs it.
    Lumped bit lines live in row m-1, which every row needs, so that row is updated first.
    """
    m, n = G.shape
    step = 0 if lump_row else 1
    if lump_col:
        _update_direction_row(m - 1, beta, z, p)
        for j in range(n):
            q[m - 1, j] = ge_col[j] * p[m - 1, j]
    else:
        _update_direction_row(0, beta, z, p)
    p_q = 0.0
    for i in range(m):
        if not lump_col and i + 1 < m:
            _update_direction_row(i + 1, beta, z, p)
        _cells_from_bits(i, G, p, lump_row, lump_col, line)
        _solve_word_line(line, t[i], g_row, lump_row, s_end_row[i], inv_row[i], ge_row[i],
                         state_row[i])
        if lump_col:
            for j in range(n):
                q[m - 1, j] += G[i, j] * (p[m - 1, j] - t[i, j * step])
        else:
            _bit_row_product(i, G, t, p, g_col, lump_row, ge_col, state_col, q)
            for j in range(n):
                p_q += p[i, j] * q[i, j]
    if lump_col:
        for j in range(n):
            if state_col[j] != FREE:
                q[m - 1, j] = 0.0
            p_q += p[m - 1, j] * q[m - 1, j]
    return p_q


@njit(cache=True, nogil=True, inline="always")
def _step_and_precondition(alpha, x, p, r, z, g_col, lump_col, s_end_col, inv_col, ge_col,
                           state_col):
    """x += alpha p; r -= alpha q (q held in z); then z = K^-1 r.

    Returns (|r|_1, r·z, max|z|); z is the bit lines' own correction to their voltages, the
    local error estimate of a node that hangs on weak cells.

    One sweep down the rows updates row i and advances every bit line's forward elimination
    (from its far end, row 0) by one row; a sweep back up finishes the bit lines.
    """
    m, n = x.shape
    residual = 0.0
    r_z = 0.0
    z_max = 0.0
    for i in range(m):
        for j in range(n):
            x[i, j] += alpha * p[i, j]
            value = r[i, j] - alpha * z[i, j]
            r[i, j] = value
            residual += abs(value)
        if not lump_col:
            for j in range(n):
                z[i, j] = r[i, j] + (g_col * inv_col[i - 1, j] * z[i - 1, j] if i > 0 else 0.0)
    for j in range(n):
        if state_col[j] == FREE:
            zj = (r[m - 1, j] if lump_col else z[m - 1, j]) / (s_end_col[j] + ge_col[j])
        else:
            zj = 0.0
        z[m - 1, j] = zj
        r_z += zj * r[m - 1, j]
        z_max = max(z_max, abs(zj))
    if not lump_col:
        for i in range(m - 2, -1, -1):
            for j in range(n):
                value = 0.0
                if state_col[j] != ISOLATED:
                    value = inv_col[i, j] * (z[i, j] + g_col * z[i + 1, j])
                z[i, j] = value
                r_z += value * r[i, j]
                z_max = max(z_max, abs(value))
    return residual, r_z, z_max


@njit(cache=True, nogil=True, inline="always")
def _largest_terminal_current(G, u_end, u_next, u_last, xW, g_row, g_col, lump_row, lump_col,
                              ge_row, ge_col, v_end_row, v_end_col, state_row, state_col):
    """Largest |terminal current| from the end nodes, with word-line voltages tracked only
    where the ends need them (u_end = U[:, 0], u_next = U[:, 1], u_last = U[m-1, :]).

    It only scales the stopping test (reported currents are line sums of cell currents).
    Held lumped lines, whose current needs every node, are left out: a smaller scale only
    makes the test stricter.
    """
    m, n = G.shape
    largest = 0.0
    for i in range(m):
        state = state_row[i]
        current = 0.0
        if state == FREE:
            current = ge_row[i] * (v_end_row[i] - u_end[i])
        elif state == END_FIXED and not lump_row:
            current = G[i, 0] * (u_end[i] - (xW[m - 1, 0] if lump_col else xW[i, 0]))
            if n > 1:
                current += g_row * (u_end[i] - u_next[i])
        largest = max(largest, abs(current))
    for j in range(n):
        state = state_col[j]
        current = 0.0
        if state == FREE:
            current = ge_col[j] * (xW[m - 1, j] - v_end_col[j])
        elif state == END_FIXED and not lump_col:
            current = G[m - 1, j] * ((u_last[0] if lump_row else u_last[j]) - xW[m - 1, j])
            if m > 1:
                current += g_col * (xW[m - 2, j] - xW[m - 1, j])
        largest = max(largest, abs(current))
    return largest


@njit(cache=True, nogil=True, inline="always")
def _track_word_ends(scale, t, u_end, u_next, u_last):
    """u += scale * t at the word-line nodes the terminal currents need."""
    m, n = t.shape
    for i in range(m):
        u_end[i] += scale * t[i, 0]
        if n > 1:
            u_next[i] += scale * t[i, 1]
    for j in range(n):
        u_last[j] += scale * t[m - 1, j]


@njit(cache=True, nogil=True)
def _pcg_vectors(start, stop, G, g_row, g_col, lump_row, lump_col, s_end_row, inv_row,
                 s_end_col, inv_col, ge_rows, ge_cols, state_rows, state_cols, v_end_rows,
                 v_end_cols, current_floors, xUs, xWs, work, rtol, max_iterations, taken):
    """Solve input vectors start..stop-1 of a batch; ``taken[b]`` gets the CG iterations,
    or -1 if ``max_iterations`` did not suffice.

    x holds the held node values (and any warm start of the bit lines) on entry and the
    solution on return. ``work`` is (5, m, n) scratch allocated by the caller (so memory
    profilers see it). Releases the GIL: threads run several ranges at once.

    The word lines are eliminated exactly (block Gaussian elimination with the line solves
    R^-1): CG runs on the bit-line nodes with the Schur complement S = K - C^T R^-1 C,
    preconditioned by the bit-line tridiagonals K. On this two-block system that takes about
    half the iterations of block-Jacobi CG on all nodes, for the same work per iteration.
    """
    m, n = G.shape
    line = np.zeros(n)
    for b in range(start, stop):
        ge_row, ge_col = ge_rows[b], ge_cols[b]
        state_row, state_col = state_rows[b], state_cols[b]
        v_end_row, v_end_col = v_end_rows[b], v_end_cols[b]
        current_floor, xU, xW = current_floors[b], xUs[b], xWs[b]
        step = 0 if lump_row else 1
        # Voltages converge with currents, except behind weak cells (a floating line on one
        # 10 MΩ cell holds a 1 nV error with a 1e-16 A residual): also require the bit
        # lines' own correction z below rtol of the largest terminal voltage.
        v_scale = 0.0
        for i in range(m):
            v_scale = max(v_scale, abs(v_end_row[i]))
        for j in range(n):
            v_scale = max(v_scale, abs(v_end_col[j]))
        if v_scale == 0.0:  # every terminal at 0 V (or floating): every node is at 0 V
            xU[:] = 0.0
            xW[:] = 0.0
            taken[b] = 0
            continue
        work[:] = 0.0
        rU, r, p, z, t = work[0], work[1], work[2], work[3], work[4]
        # Residual of the full system with the free word-line nodes at 0 V, then the reduced
        # right-hand side r = r_W + C^T R^-1 r_U; t = R^-1 r_U starts the word-line voltages.
        for i in range(m):
            for j in range(n):
                if not (lump_row and j > 0):
                    xU[i, j] = xU[i, j] if (j == 0 and state_row[i] == END_FIXED) else 0.0
        _residual_with_free_word_nodes_at_zero(G, xU, xW, rU, r, g_row, g_col, lump_row,
                                               lump_col, ge_row, ge_col, state_row, state_col,
                                               v_end_row, v_end_col)
        for i in range(m):
            _solve_word_line(rU[i], t[i], g_row, lump_row, s_end_row[i], inv_row[i], ge_row[i],
                             state_row[i])
            for j in range(n):
                cell = G[i, j] * t[i, j * step]
                if lump_col:
                    if state_col[j] == FREE:
                        r[m - 1, j] += cell
                elif state_col[j] == FREE or (state_col[j] == END_FIXED and i < m - 1):
                    r[i, j] += cell
        u_end = xU[:, 0].copy()
        u_next = xU[:, min(1, n - 1)].copy()
        u_last = xU[m - 1].copy()
        _track_word_ends(1.0, t, u_end, u_next, u_last)

        alpha = 0.0
        r_z_previous = 0.0
        iterations = 0
        while True:
            residual, r_z, z_max = _step_and_precondition(alpha, xW, p, r, z, g_col, lump_col,
                                                          s_end_col, inv_col, ge_col, state_col)
            largest = _largest_terminal_current(G, u_end, u_next, u_last, xW, g_row, g_col,
                                                lump_row, lump_col, ge_row, ge_col, v_end_row,
                                                v_end_col, state_row, state_col)
            currents_converged = residual <= rtol * max(largest, current_floor)
            if (currents_converged and z_max <= rtol * v_scale) or r_z <= 0.0:
                break
            if iterations >= max_iterations:
                iterations = -1
                break
            beta = r_z / r_z_previous if iterations > 0 else 0.0
            r_z_previous = r_z
            p_q = _schur_direction_and_product(beta, z, p, z, t, line, G, g_row, g_col, lump_row,
                                               lump_col, s_end_row, inv_row, ge_row, ge_col,
                                               state_row, state_col)
            if p_q <= 0.0:
                break
            alpha = r_z / p_q
            _track_word_ends(alpha, t, u_end, u_next, u_last)
            iterations += 1

        # Word lines from the final bit lines: U = R^-1 (b_U + C W), exactly.
        _residual_with_free_word_nodes_at_zero(G, xU, xW, rU, r, g_row, g_col, lump_row,
                                               lump_col, ge_row, ge_col, state_row, state_col,
                                               v_end_row, v_end_col)
        for i in range(m):
            _solve_word_line(rU[i], t[i], g_row, lump_row, s_end_row[i], inv_row[i], ge_row[i],
                             state_row[i])
            for j in range(1 if lump_row else n):
                xU[i, j] += t[i, j]
        taken[b] = iterations


# --------------------------------------------------------------------------- network set-up


def _end_conditions(v_end: np.ndarray, r_end: np.ndarray):
    """Per input vector and line: end conductance, state, and terminal voltage (0 if floating)."""
    driven = ~np.isnan(v_end)
    resistive = r_end > 0
    with np.errstate(divide="ignore"):
        g_end = np.where(resistive, 1.0 / np.where(resistive, r_end, 1.0), 0.0)
    ge = np.where(driven, g_end[None, :], 0.0)
    state = np.where(driven & ~resistive[None, :], END_FIXED, FREE).astype(np.int8)
    voltage = np.where(driven, v_end, 0.0)
    return driven, ge, state, voltage


@njit(cache=True, inline="always")
def _root(parent, k):
    """Root of k in a union-find forest, halving the path on the way."""
    while parent[k] != k:
        parent[k] = parent[parent[k]]
        k = parent[k]
    return k


@njit(cache=True)
def _line_groups(G):
    """Group label of every line (rows 0..m-1, then columns m..m+n-1): lines joined by cells
    with G > 0 share a label (union-find, O(m·n))."""
    m, n = G.shape
    parent = np.arange(m + n)
    for i in range(m):
        for j in range(n):
            if G[i, j] > 0:
                a, b = _root(parent, i), _root(parent, m + j)
                if a != b:
                    parent[a] = b
    labels = np.empty(m + n, dtype=np.int64)
    for k in range(m + n):
        labels[k] = _root(parent, k)
    return labels


def _isolated_lines(G: np.ndarray, driven_rows: np.ndarray, driven_cols: np.ndarray):
    """Lines (B, m) and (B, n) whose connected group of lines has no driven end in that vector.

    Lines are joined by cells with G > 0; a line is always connected along itself.
    """
    m, n = G.shape
    driven = np.concatenate([driven_rows, driven_cols], axis=1)
    if driven.all():
        return np.zeros_like(driven_rows), np.zeros_like(driven_cols)
    labels = np.zeros(m + n, dtype=np.int64) if G.min() > 0 else _line_groups(G)
    driven_per_group = np.zeros((driven.shape[0], m + n))
    np.add.at(driven_per_group, (slice(None), labels), driven)
    isolated = driven_per_group[:, labels] == 0
    return isolated[:, :m], isolated[:, m:]


def _broadcast_inputs(v_row: np.ndarray, v_col: np.ndarray):
    batched = v_row.ndim == 2 or v_col.ndim == 2
    rows = v_row if v_row.ndim == 2 else v_row[None, :]
    cols = v_col if v_col.ndim == 2 else v_col[None, :]
    if rows.shape[0] != cols.shape[0]:
        if rows.shape[0] == 1 and v_row.ndim == 1:
            rows = np.broadcast_to(rows, (cols.shape[0], rows.shape[1]))
        elif cols.shape[0] == 1 and v_col.ndim == 1:
            cols = np.broadcast_to(cols, (rows.shape[0], cols.shape[1]))
        else:
            raise ValueError(
                f"v_row and v_col batch sizes differ: {v_row.shape} and {v_col.shape}"
            )
    return np.ascontiguousarray(rows), np.ascontiguousarray(cols), batched


def _ideal_solution(G, v_row, v_col, batched) -> CrossbarSolution:
    """All resistances 0 and every end driven: currents are exactly v_row @ G (minus v_col)."""
    i_col = v_row @ G - v_col * G.sum(axis=0)
    i_row = v_row * G.sum(axis=1) - v_col @ G.T
    v_word = np.broadcast_to(v_row[:, :, None], (v_row.shape[0],) + G.shape).copy()
    v_bit = np.broadcast_to(v_col[:, None, :], (v_col.shape[0],) + G.shape).copy()
    return _package(i_row, i_col, v_word - v_bit, v_word, v_bit, 0, batched)


def _package(i_row, i_col, v_cell, v_word, v_bit, iterations, batched) -> CrossbarSolution:
    if not batched:
        i_row, i_col, v_cell, v_word, v_bit = i_row[0], i_col[0], v_cell[0], v_word[0], v_bit[0]
    return CrossbarSolution(
        i_row=i_row,
        i_col=i_col,
        v_cell=v_cell,
        v_word=v_word,
        v_bit=v_bit,
        iterations=int(iterations),
    )


def _initial_guess(warm_start, shape, batched, lump_col):
    """Node voltages to start from: zeros, or a previous solution's bit lines (the word lines
    are eliminated, so only the bit lines seed CG)."""
    xU = np.zeros(shape)
    xW = np.zeros(shape)
    if warm_start is None:
        return xU, xW
    if not isinstance(warm_start, CrossbarSolution):
        raise TypeError(f"warm_start must be a CrossbarSolution, got {type(warm_start).__name__}")
    previous_bit = warm_start.v_bit if batched else warm_start.v_bit[None]
    if previous_bit.shape != shape:
        raise ValueError(
            f"warm_start has node voltages of shape {warm_start.v_bit.shape}, "
            f"this solve needs {shape if batched else shape[1:]}"
        )
    if lump_col:
        xW[:, -1, :] = previous_bit[:, -1, :]
    else:
        xW[:] = previous_bit
    return xU, xW


def _clip_to_terminal_range(xW, v_row, v_col):
    """Bring a warm start inside the range of this solve's terminal voltages.

    By the maximum principle every node of a resistive network lies between its lowest and
    highest driven terminal voltage, so clipping the start there only moves it closer to the
    answer. It matters when the previous solve was at a far larger voltage: CG's residual,
    computed from node voltages of that size, would lose every digit of the small currents.
    """
    ends = np.concatenate([v_row, v_col], axis=1)
    driven = ~np.isnan(ends)
    low = np.where(driven, ends, np.inf).min(axis=1, initial=np.inf)
    high = np.where(driven, ends, -np.inf).max(axis=1, initial=-np.inf)
    low = np.where(np.isfinite(low), low, 0.0)[:, None, None]
    high = np.where(np.isfinite(high), high, 0.0)[:, None, None]
    np.clip(xW, low, high, out=xW)


def _hold_fixed_nodes(xU, xW, state_row, state_col, v_end_row, v_end_col):
    """Write terminal voltages into held end nodes and 0 V into isolated lines."""
    xU[:, :, 0] = np.where(state_row == END_FIXED, v_end_row, xU[:, :, 0])
    xW[:, -1, :] = np.where(state_col == END_FIXED, v_end_col, xW[:, -1, :])
    xU *= (state_row != ISOLATED)[:, :, None]
    xW *= (state_col != ISOLATED)[:, None, :]


_thread_pool: ThreadPoolExecutor | None = None


def _shared_pool(threads: int) -> ThreadPoolExecutor:
    """One pool for the process (starting threads costs ~1 ms: more than a small solve)."""
    global _thread_pool
    if _thread_pool is None or _thread_pool._max_workers != threads:
        _thread_pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="xbar-solve")
    return _thread_pool


def _run_spread_over_threads(solve_range, count: int, nodes_per_vector: int):
    """Call ``solve_range(start, stop)`` over 0..count-1 in chunks, on numba's thread count.

    The kernels release the GIL, so plain threads run them in parallel; a few chunks per
    thread balance vectors that need different numbers of iterations. Batches smaller than
    ``PARALLEL_MIN_NODES`` per thread run on the calling thread.
    """
    threads = min(get_num_threads(), count, count * nodes_per_vector // PARALLEL_MIN_NODES)
    if threads <= 1:
        solve_range(0, count)
        return
    chunk = max(1, count // (4 * threads))
    starts = range(0, count, chunk)
    pool = _shared_pool(threads)
    list(pool.map(lambda start: solve_range(start, min(start + chunk, count)), starts))


def _expand_lumped(xU, xW, lump_row, lump_col):
    v_word = np.repeat(xU[:, :, :1], xU.shape[2], axis=2) if lump_row else xU
    v_bit = np.repeat(xW[:, -1:, :], xW.shape[1], axis=1) if lump_col else xW
    return v_word, v_bit


# --------------------------------------------------------------------------- public API


def solve_crossbar(
    G,
    v_row,
    v_col,
    *,
    r_source=0.0,
    r_sense=0.0,
    r_wire_row=0.0,
    r_wire_col=0.0,
    warm_start: CrossbarSolution | None = None,
) -> CrossbarSolution:
    """Solve the crossbar network exactly for one or a batch of input vectors.

    Parameters
    ----------
    G : (m, n) cell conductances in siemens (>= 0; 0 disconnects the cell).
    v_row : (m,) or (B, m) row source voltages; NaN leaves that row end floating.
    v_col : (n,) or (B, n) column terminal voltages (0 = virtual ground); NaN = floating.
    r_source : source resistance, scalar or (m,), ohm (0 = ideal source).
    r_sense : sense resistance, scalar or (n,), ohm (0 = ideal terminal).
    r_wire_row, r_wire_col : resistance of each wire segment between neighbouring cells,
        ohm (0 = ideal line).
    warm_start : a previous solution of the same shape; CG starts from its bit-line node
        voltages (for repeated solves after small changes of G or of the inputs).

    Returns a `CrossbarSolution`; batched inputs give batched outputs. Raises ValueError on
    invalid inputs (naming the field) and RuntimeError if CG does not converge.
    """
    G = _validated_conductances(G)
    m, n = G.shape
    v_row, v_col, batched = _broadcast_inputs(
        _validated_voltages(v_row, m, "v_row"), _validated_voltages(v_col, n, "v_col")
    )
    r_source = _validated_line_resistance(r_source, m, "r_source")
    r_sense = _validated_line_resistance(r_sense, n, "r_sense")
    r_wire_row = _validated_wire_resistance(r_wire_row, "r_wire_row")
    r_wire_col = _validated_wire_resistance(r_wire_col, "r_wire_col")

    all_driven = not (np.isnan(v_row).any() or np.isnan(v_col).any())
    no_parasitics = r_wire_row == 0 and r_wire_col == 0 and not r_source.any() and not r_sense.any()
    if all_driven and no_parasitics:
        return _ideal_solution(G, v_row, v_col, batched)

    lump_row, lump_col = r_wire_row == 0, r_wire_col == 0
    g_row = 0.0 if lump_row else 1.0 / r_wire_row
    g_col = 0.0 if lump_col else 1.0 / r_wire_col
    driven_row, ge_row, state_row, v_end_row = _end_conditions(v_row, r_source)
    driven_col, ge_col, state_col, v_end_col = _end_conditions(v_col, r_sense)
    isolated_row, isolated_col = _isolated_lines(G, driven_row, driven_col)
    state_row[isolated_row] = ISOLATED
    state_col[isolated_col] = ISOLATED

    s_end_row = np.empty(m)
    s_end_col = np.empty(n)
    inv_pivot_row = np.zeros((m, n))
    inv_pivot_col = np.zeros((m, n))
    _line_pivots(G, g_row, g_col, lump_row, lump_col, s_end_row, inv_pivot_row, s_end_col,
                 inv_pivot_col)

    line_conductance = max(G.sum(axis=0).max(), G.sum(axis=1).max())
    v_scale = np.maximum(np.abs(v_end_row).max(axis=1), np.abs(v_end_col).max(axis=1))
    current_floor = CURRENT_FLOOR * v_scale * line_conductance

    B = v_row.shape[0]
    xU, xW = _initial_guess(warm_start, (B, m, n), batched, lump_col)
    _clip_to_terminal_range(xW, v_row, v_col)
    _hold_fixed_nodes(xU, xW, state_row, state_col, v_end_row, v_end_col)
    iterations = np.zeros(B, dtype=np.int64)

    def solve_range(start, stop):
        _pcg_vectors(start, stop, G, g_row, g_col, lump_row, lump_col, s_end_row, inv_pivot_row,
                     s_end_col, inv_pivot_col, ge_row, ge_col, state_row, state_col, v_end_row,
                     v_end_col, current_floor, xU, xW, np.empty((5, m, n)), RESIDUAL_RTOL,
                     MAX_ITERATIONS, iterations)

    _run_spread_over_threads(solve_range, B, m * n)
    if np.any(iterations < 0):
        raise RuntimeError(f"solve_crossbar: CG did not converge in {MAX_ITERATIONS} iterations")

    v_word, v_bit = _expand_lumped(xU, xW, lump_row, lump_col)
    v_cell = v_word - v_bit
    # Terminal currents as the sum of each line's cell currents (KCL over the whole line):
    # equal to the end-node currents at convergence, but never a difference of nearly equal
    # node voltages across a wire or end conductance, so the rounding is eps·V·sum(G)
    # instead of eps·V·g_wire. Floating ends and isolated lines deliver nothing.
    i_row = np.einsum("ij,bij->bi", G, v_cell)
    i_col = np.einsum("ij,bij->bj", G, v_cell)
    i_row[np.isnan(v_row) | (state_row == ISOLATED)] = 0.0
    i_col[np.isnan(v_col) | (state_col == ISOLATED)] = 0.0
    return _package(i_row, i_col, v_cell, v_word, v_bit, iterations.max(), batched)
