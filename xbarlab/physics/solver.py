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

Memory is O(m·n·B); no dense matrix is formed. One vector's solve runs in a single call into
numba (two fused sweeps over the array per iteration, no Python in the loop); the vectors of
a batch run on numba's thread count at once (the kernels release the GIL).
Kernels are compiled on first use, once per combination of lumped and distributed word and
bit lines (only that combination's code), and cached on disk.

Batches. The vectors of a batch share one G (m, n), whose lines are eliminated once, or each
has its own: a G of shape (B, m, n) solves vector b with G[b] (e.g. a read-noise draw per
reading). Validation, end conditions and set-up then still run once for the whole batch;
per vector runs only what depends on G[b] (its line elimination, isolated lines and current
scale), in the same compiled kernels, just before its CG, on the batch's threads. Either
way the vectors share no arithmetic: vector b gives bit for bit what a solve of it alone
(with the same G[b] and warm start) gives.
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
# Word lines whose pivots are computed side by side (their rows' cache lines stay in L1).
LINE_BLOCK = 8

# End states of a line, per input vector.
FREE = 0  # floating or driven through a resistance: every node of the line is unknown
END_FIXED = 1  # driven through zero resistance: the end node is held at the terminal voltage
ISOLATED = 2  # no path to any driven end: no current, every node at 0 V


@dataclass(frozen=True)
class CrossbarSolution:
    """Solution of one crossbar network for one or a batch of input vectors.

    Shapes follow the inputs: leading batch axis only when ``v_row``, ``v_col`` or ``G`` had one.

    - ``i_row``: current delivered by each row source into the array (A); 0 when floating.
    - ``i_col``: current flowing out of each column into its terminal (A); 0 when floating.
    - ``v_cell``: voltage across every cell, word-line minus bit-line node (V), (..., m, n);
      None when the solve was asked for terminal currents only (``CrossbarSolver.solve``
      with ``cells=False``).
    - ``v_word`` / ``v_bit``: node voltages of word and bit lines (V), (..., m, n); a later
      solve can start from them (``warm_start=``).
    - ``iterations``: CG iterations taken (the largest over the batch).
    """

    i_row: np.ndarray
    i_col: np.ndarray
    v_cell: np.ndarray | None
    v_word: np.ndarray
    v_bit: np.ndarray
    iterations: int


# --------------------------------------------------------------------------- validation


def _validated_conductances(G) -> np.ndarray:
    """G as a C-contiguous float array, (m, n) shared by every vector or (B, m, n) per vector."""
    G = np.ascontiguousarray(G, dtype=np.float64)
    if G.ndim not in (2, 3) or 0 in G.shape:
        raise ValueError(
            f"G must be a non-empty (m, n) array, or (B, m, n) for one matrix per input vector, "
            f"got shape {G.shape}"
        )
    low, high = G.min(), G.max()  # NaN and infinities reach both or one of them
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError("G must be finite (siemens, >= 0)")
    if low < 0:
        raise ValueError(f"G must be >= 0 siemens, got minimum {low!r}")
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


# --------------------------------------------------------------------------- kernels
#
# `_pcg_vectors` solves a range of input vectors one after the other, serially; a batch is
# spread over threads range by range, so each thread keeps one vector's working set in cache
# and threads meet once per batch, not once per step. Arrays of one vector are (m, n); line
# data is (m,) or (n,). A lumped bit line keeps its single node at its end node (i = m-1)
# and zeros elsewhere; a lumped word line holds its single node's voltage at every j of its
# row, so word-line accesses are the same for both kinds of line.
#
# Wire conductances are passed as ``g_row`` / ``g_col``, or None for lumped lines (zero wire
# resistance: the line is one node). Every test for a lumped line is written ``g is None``
# directly in a condition: numba drops the other branch before typing (dead-branch pruning
# on None arguments), so a solve compiles only the code of its kinds of lines, each
# combination once, on first use.
#
# The first use's compile time is set by how much code numba types and LLVM optimizes, so
# inner loops have no branch on a loop-invariant condition (LLVM would copy and vectorize the
# loop once per combination of them): a missing neighbour or an unused term enters with an
# exact zero weight instead.


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _line_pivots(G, g_row, g_col, s_end_row, inv_row, s_end_col, inv_col):
    """Thomas elimination of every line from its far end towards its terminal end.

    Word line i runs from j = n-1 to its source end j = 0, bit line j from i = 0 to its sense
    end i = m-1. ``inv_*`` holds 1 / (g_wire + s) at every node but the end (word lines
    j >= 1, bit lines i <= m-2) and ``s_end_*`` the end's s, where s is the pivot's excess
    over the wire conductance; the end conductance is added to ``s_end`` per input vector.
    Lumped lines: ``s_end`` is the line's total cell conductance. Lines are eliminated side
    by side (bit lines all at once, word lines ``LINE_BLOCK`` at a time), one node of each
    per step: the recurrences are independent, so their divisions overlap instead of each
    waiting on the last.
    """
    m, n = G.shape
    if g_row is None:
        for i in range(m):
            g_i = G[i]
            total = 0.0
            for j in range(n):
                total += g_i[j]
            s_end_row[i] = total
    else:
        for first in range(0, m, LINE_BLOCK):
            last = min(first + LINE_BLOCK, m)
            for i in range(first, last):
                s_end_row[i] = G[i, n - 1]
            for j in range(n - 2, -1, -1):
                for i in range(first, last):
                    s = s_end_row[i]
                    inv_row[i, j + 1] = 1.0 / (g_row + s)
                    s_end_row[i] = G[i, j] + g_row * s / (g_row + s)
    for j in range(n):
        s_end_col[j] = G[0, j]
    for i in range(1, m):
        g_i = G[i]
        if g_col is None:
            for j in range(n):
                s_end_col[j] += g_i[j]
        else:
            inv_up = inv_col[i - 1]
            for j in range(n):
                s = s_end_col[j]
                inv_up[j] = 1.0 / (g_col + s)
                s_end_col[j] = g_i[j] + g_col * s / (g_col + s)


# Helpers called from several kernels are compiled once, without the wrappers that only a
# call from Python needs; tiny helpers and those called once are inlined at numba's level.
_helper = njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
_inlined = njit(cache=True, nogil=True, inline="always")


@_helper
def _bit_row_product(i, G, u, w, g_col, ge_col, state_col, y):
    """y[i] = (A [u; w]) at the bit-line nodes of row i (distributed bit lines; 0 at held and
    isolated nodes). Rows 0 and m-1 miss a neighbour, which enters with conductance 0; the
    end conductance enters with weight 1 in row m-1 only (adding exact zeros changes no sum).
    """
    m, n = G.shape
    last = i == m - 1
    up = i - 1 if i > 0 else 0
    down = i if last else i + 1
    g_up = g_col if i > 0 else 0.0
    g_down = 0.0 if last else g_col
    at_end = 1.0 if last else 0.0
    held = END_FIXED if last else ISOLATED  # the held state of this row's nodes
    g_i, u_i, w_i, w_up, w_down, y_i = G[i], u[i], w[i], w[up], w[down], y[i]
    for j in range(n):
        wj = w_i[j]
        acc = (g_i[j] * (wj - u_i[j]) + g_up * (wj - w_up[j]) + g_down * (wj - w_down[j])
               + at_end * ge_col[j] * wj)
        state = state_col[j]
        y_i[j] = acc if state != ISOLATED and state != held else 0.0


@_helper
def _word_line_from_bits(i, G, w, g_row, g_col, s_end, inv_pivot, ge, state, b_end, b_next,
                         out):
    """out = R_i^-1 (C w + b) for word line i: its node voltages for bit-line voltages w (row
    m-1 of w for lumped bit lines) with b_end injected at its end node (j = 0) and b_next at
    j = 1. Thomas, eliminated from the far end; the held end node and isolated lines get 0,
    and a lumped line's one value fills the row."""
    m, n = G.shape
    g_i, w_i = G[i], w[m - 1 if g_col is None else i]
    if g_row is None:
        acc = 0.0
        for j in range(n):
            acc += g_i[j] * w_i[j]
        value = (acc + b_end) / (s_end + ge) if state == FREE else 0.0
        for j in range(n):
            out[j] = value
        return
    if state == ISOLATED:
        for j in range(n):
            out[j] = 0.0
        return
    for j in range(n):
        out[j] = g_i[j] * w_i[j]
    out[0] += b_end
    if n > 1:
        out[1] += b_next
    y = out[n - 1]
    for j in range(n - 2, -1, -1):
        y = out[j] + g_row * inv_pivot[j + 1] * y
        out[j] = y
    z = y / (s_end + ge) if state == FREE else 0.0
    out[0] = z
    for j in range(1, n):
        z = inv_pivot[j] * (out[j] + g_row * z)
        out[j] = z


@_helper
def _word_lines_from_bits(G, xU, xW, rW, t, g_row, g_col, s_end_row, inv_row, ge_row, ge_col,
                          state_row, state_col, v_end_row, v_end_col):
    """Word-line voltages that satisfy KCL at every free word-line node for bit lines xW.

    x has its free word-line nodes at 0 V. rW = b - A x at the bit nodes (0 at held nodes)
    and t = R^-1 r_U, where r_U is the word part of b - A x: C W plus the source injection
    (or, next to a held end node, its pull through the first wire segment). x + t is then
    exact on the word lines.
    """
    m, n = G.shape
    for i in range(m):
        state = state_row[i]
        b_end = ge_row[i] * v_end_row[i] if state == FREE else 0.0
        b_next = 0.0
        if state == END_FIXED and g_row is not None:
            b_next = g_row * xU[i, 0]
        _word_line_from_bits(i, G, xW, g_row, g_col, s_end_row[i], inv_row[i], ge_row[i], state,
                             b_end, b_next, t[i])
        if g_col is not None:
            _bit_row_product(i, G, xU, xW, g_col, ge_col, state_col, rW)
            r_i = rW[i]
            for j in range(n):
                r_i[j] = -r_i[j]
    w_last, r_last = xW[m - 1], rW[m - 1]
    if g_col is None:
        for j in range(n):
            acc = ge_col[j] * w_last[j]
            for i in range(m):
                acc += G[i, j] * (w_last[j] - xU[i, j])
            r_last[j] = -acc if state_col[j] == FREE else 0.0
    for j in range(n):
        if state_col[j] == FREE:
            r_last[j] += ge_col[j] * v_end_col[j]


@_inlined
def _update_direction_row(i, beta, z, p):
    """p[i] = z[i] + beta p[i]."""
    p_i, z_i = p[i], z[i]
    for j in range(p_i.shape[0]):
        p_i[j] = z_i[j] + beta * p_i[j]


@_inlined
def _schur_direction_and_product(beta, z, p, q, t, G, g_row, g_col, s_end_row, inv_row, ge_row,
                                 ge_col, state_row, state_col):
    """p = z + beta p, then q = S p with S = K - C^T R^-1 C; returns p·q.

    Row by row: t[i] = R_i^-1 (C p)[i] (word line i answering the bit-line direction), then
    q[i] = K p - C^T t at the bit nodes of row i. q may share memory with z: row i of z is
    consumed (p[i] updated) before q[i] is written, and row i+1 just before q[i] needs it.
    Lumped bit lines live in row m-1, which every row needs: that row is updated first, and
    their q summed over all rows of t at the end.
    """
    m, n = G.shape
    _update_direction_row(m - 1 if g_col is None else 0, beta, z, p)
    p_q = 0.0
    for i in range(m):
        if g_col is not None and i + 1 < m:
            _update_direction_row(i + 1, beta, z, p)
        _word_line_from_bits(i, G, p, g_row, g_col, s_end_row[i], inv_row[i], ge_row[i],
                             state_row[i], 0.0, 0.0, t[i])
        if g_col is not None:
            _bit_row_product(i, G, t, p, g_col, ge_col, state_col, q)
            p_i, q_i = p[i], q[i]
            for j in range(n):
                p_q += p_i[j] * q_i[j]
    if g_col is None:
        p_last, q_last = p[m - 1], q[m - 1]
        for j in range(n):
            q_last[j] = ge_col[j] * p_last[j]
        for i in range(m):
            g_i, t_i = G[i], t[i]
            for j in range(n):
                q_last[j] += g_i[j] * (p_last[j] - t_i[j])
        for j in range(n):
            if state_col[j] != FREE:
                q_last[j] = 0.0
            p_q += p_last[j] * q_last[j]
    return p_q


@_inlined
def _step_and_precondition(alpha, x, p, r, z, g_col, s_end_col, inv_col, ge_col, state_col):
    """x += alpha p; r -= alpha q (q held in z); then z = K^-1 r.

    Returns (|r|_1, r·z, max|z|); z is the bit lines' own correction to their voltages, the
    local error estimate of a node that hangs on weak cells.

    One sweep down the rows updates row i and advances every bit line's forward elimination
    (from its far end, row 0) by one row (row 0 has no row above: weight 0); a sweep back up
    finishes the bit lines.
    """
    m, n = x.shape
    residual = 0.0
    r_z = 0.0
    z_max = 0.0
    for i in range(m):
        x_i, p_i, r_i, z_i = x[i], p[i], r[i], z[i]
        for j in range(n):
            x_i[j] += alpha * p_i[j]
            value = r_i[j] - alpha * z_i[j]
            r_i[j] = value
            residual += abs(value)
        if g_col is not None:
            up = i - 1 if i > 0 else 0
            g_up = g_col if i > 0 else 0.0
            inv_up, z_up = inv_col[up], z[up]
            for j in range(n):
                z_i[j] = r_i[j] + g_up * inv_up[j] * z_up[j]
    r_last, z_last = r[m - 1], z[m - 1]
    for j in range(n):
        zj = 0.0
        if state_col[j] == FREE:
            zj = (r_last[j] if g_col is None else z_last[j]) / (s_end_col[j] + ge_col[j])
        z_last[j] = zj
        r_z += zj * r_last[j]
        z_max = abs(zj) if abs(zj) > z_max else z_max
    if g_col is not None:
        for i in range(m - 2, -1, -1):
            r_i, z_i, z_down, inv_i = r[i], z[i], z[i + 1], inv_col[i]
            for j in range(n):
                value = 0.0
                if state_col[j] != ISOLATED:
                    value = inv_i[j] * (z_i[j] + g_col * z_down[j])
                z_i[j] = value
                r_z += value * r_i[j]
                z_max = abs(value) if abs(value) > z_max else z_max
    return residual, r_z, z_max


@_inlined
def _largest_terminal_current(G, ends, xW, g_row, g_col, ge_row, ge_col, v_end_row, v_end_col,
                              state_row, state_col):
    """Largest |terminal current| from the end nodes, with word-line voltages tracked only
    where the ends need them (``ends`` rows: U[:, 0], U[:, 1], U[m-1, :]).

    It only scales the stopping test (reported currents are line sums of cell currents).
    Held lumped lines, whose current needs every node, are left out: a smaller scale only
    makes the test stricter.
    """
    m, n = G.shape
    u_end, u_next, u_last = ends[0], ends[1], ends[2]
    largest = 0.0
    for i in range(m):
        state = state_row[i]
        current = 0.0
        if state == FREE:
            current = ge_row[i] * (v_end_row[i] - u_end[i])
        elif state == END_FIXED and g_row is not None:
            current = G[i, 0] * (u_end[i] - xW[m - 1 if g_col is None else i, 0])
            if n > 1:
                current += g_row * (u_end[i] - u_next[i])
        largest = abs(current) if abs(current) > largest else largest
    g_last, w_last, w_above = G[m - 1], xW[m - 1], xW[m - 2 if m > 1 else 0]
    for j in range(n):
        state = state_col[j]
        current = 0.0
        if state == FREE:
            current = ge_col[j] * (w_last[j] - v_end_col[j])
        elif state == END_FIXED and g_col is not None:
            current = g_last[j] * (u_last[j] - w_last[j])
            if m > 1:
                current += g_col * (w_above[j] - w_last[j])
        largest = abs(current) if abs(current) > largest else largest
    return largest


@_helper
def _track_word_ends(scale, u, ends):
    """ends += scale * u at the word-line nodes the terminal currents need (U[:, 0], U[:, 1]
    and U[m-1, :]; U[:, 0] again when a line has one node)."""
    m, n = u.shape
    second = 1 if n > 1 else 0
    u_last = u[m - 1]
    u_end, u_next, tracked_last = ends[0], ends[1], ends[2]
    for i in range(m):
        u_end[i] += scale * u[i, 0]
        u_next[i] += scale * u[i, second]
    for j in range(n):
        tracked_last[j] += scale * u_last[j]


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _pcg_vectors(start, stop, G, g_row, g_col, s_end_row, inv_row, s_end_col, inv_col, ge_rows,
                 ge_cols, state_rows, state_cols, v_end_rows, v_end_cols, v_scales,
                 current_floors, xUs, xWs, work, ends, rtol, max_iterations, taken):
    """Solve input vectors start..stop-1 of a batch; ``taken[b]`` gets the CG iterations,
    or -1 if ``max_iterations`` did not suffice.

    x holds the held node values (and any warm start of the bit lines) on entry and the
    solution on return; a vector whose terminals are all at 0 V (``v_scales[b] == 0``) must
    come with every node at 0 V, and is left as it is. ``work`` is (4, m, n) and ``ends``
    (3, max(m, n)) scratch allocated by the caller (so memory profilers see it). Releases
    the GIL: threads run several ranges at once.

    The word lines are eliminated exactly (block Gaussian elimination with the line solves
    R^-1): CG runs on the bit-line nodes with the Schur complement S = K - C^T R^-1 C,
    preconditioned by the bit-line tridiagonals K. On this two-block system that takes about
    half the iterations of block-Jacobi CG on all nodes, for the same work per iteration.
    """
    m, n = G.shape
    r, p, z, t = work[0], work[1], work[2], work[3]
    for b in range(start, stop):
        ge_row, ge_col = ge_rows[b], ge_cols[b]
        state_row, state_col = state_rows[b], state_cols[b]
        v_end_row, v_end_col = v_end_rows[b], v_end_cols[b]
        xU, xW = xUs[b], xWs[b]
        # Voltages converge with currents, except behind weak cells (a floating line on one
        # 10 MΩ cell holds a 1 nV error with a 1e-16 A residual): also require the bit
        # lines' own correction z below rtol of the largest terminal voltage.
        v_scale = v_scales[b]
        if v_scale == 0.0:
            taken[b] = 0
            continue
        for k in range(4):
            for i in range(m):
                work_i = work[k, i]
                for j in range(n):
                    work_i[j] = 0.0
        # Free word-line nodes to 0 V (a lumped line's held voltage fills its row), the
        # residual of the full system there, then the reduced right-hand side
        # r = r_W + C^T R^-1 r_U; t = R^-1 r_U starts the word-line voltages.
        for i in range(m):
            u_i = xU[i]
            u_held = u_i[0] if state_row[i] == END_FIXED else 0.0
            u_rest = u_held if g_row is None else 0.0
            u_i[0] = u_held
            for j in range(1, n):
                u_i[j] = u_rest
        _word_lines_from_bits(G, xU, xW, r, t, g_row, g_col, s_end_row, inv_row, ge_row, ge_col,
                              state_row, state_col, v_end_row, v_end_col)
        for i in range(m):
            bit_row = m - 1 if g_col is None else i
            held = END_FIXED if bit_row == m - 1 else ISOLATED
            g_i, t_i, r_i = G[i], t[i], r[bit_row]
            for j in range(n):
                state = state_col[j]
                if state != ISOLATED and state != held:
                    r_i[j] += g_i[j] * t_i[j]
        for k in range(3):
            ends_k = ends[k]
            for j in range(ends_k.shape[0]):
                ends_k[j] = 0.0
        _track_word_ends(1.0, xU, ends)
        _track_word_ends(1.0, t, ends)

        alpha = 0.0
        r_z_previous = 0.0
        iterations = 0
        while True:
            residual, r_z, z_max = _step_and_precondition(alpha, xW, p, r, z, g_col, s_end_col,
                                                          inv_col, ge_col, state_col)
            largest = _largest_terminal_current(G, ends, xW, g_row, g_col, ge_row, ge_col,
                                                v_end_row, v_end_col, state_row, state_col)
            floor = current_floors[b]
            currents_converged = residual <= rtol * (floor if floor > largest else largest)
            if (currents_converged and z_max <= rtol * v_scale) or r_z <= 0.0:
                break
            if iterations >= max_iterations:
                iterations = -1
                break
            beta = r_z / r_z_previous if iterations > 0 else 0.0
            r_z_previous = r_z
            p_q = _schur_direction_and_product(beta, z, p, z, t, G, g_row, g_col, s_end_row,
                                               inv_row, ge_row, ge_col, state_row, state_col)
            if p_q <= 0.0:
                break
            alpha = r_z / p_q
            _track_word_ends(alpha, t, ends)
            iterations += 1

        # Word lines from the final bit lines: U = R^-1 (b_U + C W), exactly.
        _word_lines_from_bits(G, xU, xW, r, t, g_row, g_col, s_end_row, inv_row, ge_row, ge_col,
                              state_row, state_col, v_end_row, v_end_col)
        for i in range(m):
            u_i, t_i = xU[i], t[i]
            for j in range(n):
                u_i[j] += t_i[j]
        taken[b] = iterations


# --------------------------------------------------------------------------- network set-up


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


def _group_labels(G3: np.ndarray) -> np.ndarray:
    """Group labels (``_line_groups``) of each matrix of a (B, m, n) G: (1, m+n) when every
    matrix connects its lines alike (always when no cell is 0: one group), else (B, m+n)."""
    m, n = G3.shape[1:]
    if G3.min() > 0:
        return np.zeros((1, m + n), dtype=np.int64)
    # Groups depend only on which cells are non-zero: usually the same in every matrix (read
    # noise scales cells, gates zero whole rows), then found once.
    connected = G3 > 0
    if (connected == connected[0]).all():
        return _line_groups(G3[0])[None, :]
    return np.stack([_line_groups(g) for g in G3])


@njit(cache=True, nogil=True)
def _prepare_vectors(v_row, v_col, g_end_row, g_end_col, resistive_row, resistive_col, labels,
                     line_conductance, warm, lump_col, ge_row, ge_col, state_row, state_col,
                     v_end_row, v_end_col, v_scale, current_floor, xU, xW, driven_count):
    """Per input vector: every line end's conductance, state (floating and driven-through-a-
    resistance ends are FREE, ideal driven ends END_FIXED, lines whose group of lines has no
    driven end ISOLATED) and terminal voltage (0 when floating); the stopping scales; and the
    node voltages CG starts from (``xU`` and ``xW`` come in zeroed).

    The start: the warm start's bit lines (row m-1 only for lumped bit lines), brought inside
    the range of the vector's driven terminal voltages (by the maximum principle every node
    lies there, so that only moves it closer; a start from a far larger voltage would make
    CG's residual lose every digit of small currents), held end nodes at their terminal
    voltage, isolated lines at 0 V, and every node at 0 V when every terminal is (CG is then
    skipped). ``labels`` has one row shared by every vector or one per vector, and so do
    ``line_conductance`` and ``warm`` (None: a cold start).
    """
    count, m = v_row.shape
    n = v_col.shape[1]
    for b in range(count):
        low, high, scale, driven_any = np.inf, -np.inf, 0.0, False
        for i in range(m):
            v = v_row[b, i]
            if v != v:  # NaN: a floating end
                ge_row[b, i], state_row[b, i], v_end_row[b, i] = 0.0, FREE, 0.0
                continue
            ge_row[b, i] = g_end_row[i]
            state_row[b, i] = FREE if resistive_row[i] else END_FIXED
            v_end_row[b, i] = v
            low, high, scale, driven_any = min(low, v), max(high, v), max(scale, abs(v)), True
        for j in range(n):
            v = v_col[b, j]
            if v != v:
                ge_col[b, j], state_col[b, j], v_end_col[b, j] = 0.0, FREE, 0.0
                continue
            ge_col[b, j] = g_end_col[j]
            state_col[b, j] = FREE if resistive_col[j] else END_FIXED
            v_end_col[b, j] = v
            low, high, scale, driven_any = min(low, v), max(high, v), max(scale, abs(v)), True
        if not driven_any:
            low = high = 0.0
        v_scale[b] = scale
        current_floor[b] = CURRENT_FLOOR * scale * line_conductance[
            b if line_conductance.shape[0] > 1 else 0]
        label = labels[b if labels.shape[0] > 1 else 0]
        for k in range(m + n):
            driven_count[k] = 0
        for i in range(m):
            if v_row[b, i] == v_row[b, i]:
                driven_count[label[i]] += 1
        for j in range(n):
            if v_col[b, j] == v_col[b, j]:
                driven_count[label[m + j]] += 1
        for i in range(m):
            if driven_count[label[i]] == 0:
                state_row[b, i] = ISOLATED
        for j in range(n):
            if driven_count[label[m + j]] == 0:
                state_col[b, j] = ISOLATED
        w = xW[b]
        if warm is not None:
            start = warm[b if warm.shape[0] > 1 else 0]
            for i in range(m - 1 if lump_col else 0, m):
                for j in range(n):
                    w[i, j] = start[i, j]
        for i in range(m):
            for j in range(n):
                w[i, j] = min(max(w[i, j], low), high)
        u = xU[b]
        for i in range(m):
            if state_row[b, i] == END_FIXED:
                u[i, 0] = v_end_row[b, i]
            elif state_row[b, i] == ISOLATED:
                for j in range(n):
                    u[i, j] = 0.0
        for j in range(n):
            if state_col[b, j] == END_FIXED:
                w[m - 1, j] = v_end_col[b, j]
            elif state_col[b, j] == ISOLATED:
                for i in range(m):
                    w[i, j] = 0.0
        if scale == 0.0:
            for i in range(m):
                for j in range(n):
                    u[i, j] = 0.0
                    w[i, j] = 0.0


@njit(cache=True, nogil=True)
def _terminal_currents(G3, xU, xW, lump_col, state_row, state_col, v_row, v_col, i_row, i_col,
                       v_cell):
    """Terminal currents as the sum of each line's cell currents (KCL over the whole line):
    equal to the end-node currents at convergence, but never a difference of nearly equal
    node voltages across a wire or end conductance, so the rounding is eps·V·sum(G) instead of
    eps·V·g_wire. Floating ends and isolated lines deliver nothing. ``G3`` is (1, m, n) for a
    shared G or (B, m, n); ``i_row`` and ``i_col`` come in zeroed; ``v_cell`` (None: not
    wanted) gets every cell's voltage."""
    count, m, n = xU.shape
    for b in range(count):
        g = G3[b if G3.shape[0] > 1 else 0]
        for i in range(m):
            u_i, w_i, g_i = xU[b, i], xW[b, m - 1 if lump_col else i], g[i]
            row_sum = 0.0
            for j in range(n):
                drop = u_i[j] - w_i[j]
                current = g_i[j] * drop
                row_sum += current
                i_col[b, j] += current
                if v_cell is not None:
                    v_cell[b, i, j] = drop
            i_row[b, i] = row_sum
        for i in range(m):
            if v_row[b, i] != v_row[b, i] or state_row[b, i] == ISOLATED:
                i_row[b, i] = 0.0
        for j in range(n):
            if v_col[b, j] != v_col[b, j] or state_col[b, j] == ISOLATED:
                i_col[b, j] = 0.0


@njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _pcg_each_matrix(start, stop, G3, g_row, g_col, s_end_row, inv_row, s_end_col, inv_col,
                     ge_rows, ge_cols, state_rows, state_cols, v_end_rows, v_end_cols, v_scales,
                     current_floors, xUs, xWs, work, ends, rtol, max_iterations, taken):
    """Vectors start..stop-1 of a batch with one matrix per vector: the line elimination of
    G3[b], then its one vector (the same two kernels, with the same argument types, as for a
    shared G), in this thread's scratch."""
    for b in range(start, stop):
        g = G3[b]
        _line_pivots(g, g_row, g_col, s_end_row, inv_row, s_end_col, inv_col)
        _pcg_vectors(b, b + 1, g, g_row, g_col, s_end_row, inv_row, s_end_col, inv_col, ge_rows,
                     ge_cols, state_rows, state_cols, v_end_rows, v_end_cols, v_scales,
                     current_floors, xUs, xWs, work, ends, rtol, max_iterations, taken)


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


def _broadcast_to_conductances(v_row: np.ndarray, v_col: np.ndarray, count: int):
    """(B, m) and (B, n) inputs for a (B, m, n) G: a single vector serves every matrix."""
    m, n = v_row.shape[-1], v_col.shape[-1]
    for v, name, length in ((v_row, "v_row", m), (v_col, "v_col", n)):
        if v.ndim == 2 and v.shape[0] != count:
            raise ValueError(
                f"{name} must have shape ({length},) or ({count}, {length}) to match G of shape "
                f"({count}, {m}, {n}) (one matrix per vector), got {v.shape}"
            )
    rows = np.ascontiguousarray(np.broadcast_to(v_row, (count, m)))
    cols = np.ascontiguousarray(np.broadcast_to(v_col, (count, n)))
    return rows, cols


def _ideal_solution(G, v_row, v_col, batched) -> CrossbarSolution:
    """All resistances 0 and every end driven: currents are exactly v_row @ G (minus v_col)."""
    if G.ndim == 2:
        i_col = v_row @ G - v_col * G.sum(axis=0)
        i_row = v_row * G.sum(axis=1) - v_col @ G.T
    else:  # vector b with G[b]: the same products, one matrix per vector
        i_col = np.matmul(v_row[:, None, :], G)[:, 0] - v_col * G.sum(axis=1)
        i_row = v_row * G.sum(axis=2) - np.matmul(v_col[:, None, :], G.transpose(0, 2, 1))[:, 0]
    shape = (v_row.shape[0],) + G.shape[-2:]
    v_word = np.broadcast_to(v_row[:, :, None], shape).copy()
    v_bit = np.broadcast_to(v_col[:, None, :], shape).copy()
    return _package(i_row, i_col, v_word - v_bit, v_word, v_bit, 0, batched)


def _package(i_row, i_col, v_cell, v_word, v_bit, iterations, batched) -> CrossbarSolution:
    if not batched:
        i_row, i_col, v_word, v_bit = i_row[0], i_col[0], v_word[0], v_bit[0]
        v_cell = None if v_cell is None else v_cell[0]
    return CrossbarSolution(
        i_row=i_row,
        i_col=i_col,
        v_cell=v_cell,
        v_word=v_word,
        v_bit=v_bit,
        iterations=int(iterations),
    )


def _warm_bits(warm_start, shape, batched) -> np.ndarray | None:
    """The bit-line node voltages a solve starts from: (1, m, n) starts every vector, (B, m, n)
    one each; None for a cold start (the word lines are eliminated, so only the bit lines seed
    CG)."""
    if warm_start is None:
        return None
    if isinstance(warm_start, CrossbarSolution):
        previous = warm_start.v_bit
    elif isinstance(warm_start, np.ndarray):
        previous = warm_start
    else:
        raise TypeError(f"warm_start must be a CrossbarSolution or an array of bit-line node "
                        f"voltages, got {type(warm_start).__name__}")
    bits = previous[None] if previous.shape == shape[1:] else previous
    if bits.shape[1:] != shape[1:] or bits.shape[0] not in (1, shape[0]):
        raise ValueError(
            f"warm_start has node voltages of shape {previous.shape}, "
            f"this solve needs {shape[1:]}" + (f" or {shape}" if batched else "")
        )
    return np.ascontiguousarray(bits, dtype=np.float64)


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
    most = count * nodes_per_vector // PARALLEL_MIN_NODES
    threads = min(get_num_threads(), count, most) if most > 1 else 1
    if threads <= 1:
        solve_range(0, count)
        return
    chunk = max(1, count // (4 * threads))
    starts = range(0, count, chunk)
    pool = _shared_pool(threads)
    list(pool.map(lambda start: solve_range(start, min(start + chunk, count)), starts))


# --------------------------------------------------------------------------- public API


class CrossbarSolver:
    """One crossbar network (conductances and every parasitic resistance), checked and set up
    once, then solved for any number of input vectors: `solve_crossbar` without repeating its
    checks and set-up on every call.

    What depends only on the network is done here once: validation of G and the resistances,
    the end conductances, the groups of lines that cells join (for floating ends) and, for a
    shared G, the elimination of every line (``_line_pivots``). A call of `solve` then
    validates its voltages and runs the kernels. The solver keeps G by reference: do not
    change it in place while solving with this solver.

    Parameters are those of `solve_crossbar`. Example::

        solver = CrossbarSolver(G, r_source=2.0, r_sense=2.0, r_wire_row=1.0, r_wire_col=1.0)
        first = solver.solve(v_row, v_col)
        again = solver.solve(v_row_2, v_col, warm_start=first, cells=False)  # currents only
    """

    def __init__(self, G, *, r_source=0.0, r_sense=0.0, r_wire_row=0.0, r_wire_col=0.0):
        self.G = _validated_conductances(G)
        self.per_vector = self.G.ndim == 3  # vector b solved with G[b]
        self.shape = m, n = self.G.shape[-2:]
        r_source = _validated_line_resistance(r_source, m, "r_source")
        r_sense = _validated_line_resistance(r_sense, n, "r_sense")
        wire_row = _validated_wire_resistance(r_wire_row, "r_wire_row")
        wire_col = _validated_wire_resistance(r_wire_col, "r_wire_col")
        self._no_parasitics = (wire_row == 0 and wire_col == 0 and not r_source.any()
                               and not r_sense.any())
        self._g_row = None if wire_row == 0 else 1.0 / wire_row  # None: lumped lines
        self._g_col = None if wire_col == 0 else 1.0 / wire_col
        self._lump_col = wire_col == 0
        self._resistive_row, self._resistive_col = r_source > 0, r_sense > 0
        with np.errstate(divide="ignore"):
            self._g_end_row = np.where(self._resistive_row, 1.0 / r_source, 0.0)
            self._g_end_col = np.where(self._resistive_col, 1.0 / r_sense, 0.0)
        self._G3 = self.G if self.per_vector else self.G[None]
        self._line_conductance = np.maximum(self._G3.sum(axis=1).max(axis=1),
                                            self._G3.sum(axis=2).max(axis=1))
        self._labels: np.ndarray | None = None  # found on the first solve with a floating end
        self._pivots: tuple | None = None  # a shared G's line elimination, on the first solve

    def _group_labels(self) -> np.ndarray:
        if self._labels is None:
            self._labels = _group_labels(self._G3)
        return self._labels

    def _line_pivots(self) -> tuple:
        """Per-line elimination data of the shared G (``_line_pivots``), computed once."""
        if self._pivots is None:
            m, n = self.shape
            pivots = (np.empty(m), np.zeros((m, n)), np.empty(n), np.zeros((m, n)))
            _line_pivots(self.G, self._g_row, self._g_col, *pivots)
            self._pivots = pivots
        return self._pivots

    def solve(self, v_row, v_col, *, warm_start=None, cells: bool = True) -> CrossbarSolution:
        """Solve for one or a batch of input vectors (see `solve_crossbar` for every argument).

        ``warm_start`` may also be an array of bit-line node voltages, (m, n) for every vector
        or (B, m, n) one per vector. ``cells=False`` leaves ``v_cell`` out (None): for callers
        that need the terminal currents (and node voltages) only.
        """
        m, n = self.shape
        v_row = _validated_voltages(v_row, m, "v_row")
        v_col = _validated_voltages(v_col, n, "v_col")
        if self.per_vector:
            v_row, v_col = _broadcast_to_conductances(v_row, v_col, self.G.shape[0])
            batched = True
        else:
            v_row, v_col, batched = _broadcast_inputs(v_row, v_col)
        if self._no_parasitics and not (np.isnan(v_row).any() or np.isnan(v_col).any()):
            return _ideal_solution(self.G, v_row, v_col, batched)
        count = v_row.shape[0]
        warm = _warm_bits(warm_start, (count, m, n), batched)
        ge_row, ge_col = np.empty((count, m)), np.empty((count, n))
        state_row = np.empty((count, m), dtype=np.int8)
        state_col = np.empty((count, n), dtype=np.int8)
        v_end_row, v_end_col = np.empty((count, m)), np.empty((count, n))
        v_scale, current_floor = np.empty(count), np.empty(count)
        xU, xW = np.zeros((count, m, n)), np.zeros((count, m, n))
        _prepare_vectors(v_row, v_col, self._g_end_row, self._g_end_col, self._resistive_row,
                         self._resistive_col, self._group_labels(), self._line_conductance, warm,
                         self._lump_col, ge_row, ge_col, state_row, state_col, v_end_row,
                         v_end_col, v_scale, current_floor, xU, xW, np.empty(m + n, np.int64))
        iterations = np.zeros(count, dtype=np.int64)
        # per vector: end conductances, states and voltages of every line; stopping scales
        per_vector_ends = (ge_row, ge_col, state_row, state_col, v_end_row, v_end_col, v_scale,
                           current_floor)
        g_row, g_col = self._g_row, self._g_col

        def scratch():
            return (xU, xW, np.empty((4, m, n)), np.empty((3, max(m, n))), RESIDUAL_RTOL,
                    MAX_ITERATIONS, iterations)

        if self.per_vector:
            def solve_range(start, stop):
                lines = (np.empty(m), np.zeros((m, n)), np.empty(n), np.zeros((m, n)))
                _pcg_each_matrix(start, stop, self.G, g_row, g_col, *lines, *per_vector_ends,
                                 *scratch())
        else:
            pivots = self._line_pivots()

            def solve_range(start, stop):
                _pcg_vectors(start, stop, self.G, g_row, g_col, *pivots, *per_vector_ends,
                             *scratch())

        _run_spread_over_threads(solve_range, count, m * n)
        if np.any(iterations < 0):
            raise RuntimeError(
                f"solve_crossbar: CG did not converge in {MAX_ITERATIONS} iterations")
        i_row, i_col = np.zeros((count, m)), np.zeros((count, n))
        v_cell = np.empty((count, m, n)) if cells else None
        _terminal_currents(self._G3, xU, xW, self._lump_col, state_row, state_col, v_row, v_col,
                           i_row, i_col, v_cell)
        v_bit = np.repeat(xW[:, -1:, :], m, axis=1) if self._lump_col else xW
        return _package(i_row, i_col, v_cell, xU, v_bit, iterations.max(), batched)


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
    G : cell conductances in siemens (>= 0; 0 disconnects the cell): (m, n), shared by every
        input vector, or (B, m, n), one matrix per input vector (vector b is solved with
        G[b], e.g. a read-noise draw per reading).
    v_row : (m,) or (B, m) row source voltages; NaN leaves that row end floating.
    v_col : (n,) or (B, n) column terminal voltages (0 = virtual ground); NaN = floating.
        With a (B, m, n) G, a (B, ...) input must have the same B, and an unbatched one
        serves every matrix.
    r_source : source resistance, scalar or (m,), ohm (0 = ideal source).
    r_sense : sense resistance, scalar or (n,), ohm (0 = ideal terminal).
    r_wire_row, r_wire_col : resistance of each wire segment between neighbouring cells,
        ohm (0 = ideal line).
    warm_start : a previous solution of the same shape; CG starts from its bit-line node
        voltages (for repeated solves after small changes of G or of the inputs). An
        unbatched solution starts every vector of a batch.

    Returns a `CrossbarSolution`; batched inputs (or a (B, m, n) G) give batched outputs.
    Vector b of a batch gives exactly what a solve of that vector alone gives (with G[b] for
    a (B, m, n) G, and warm-started from the same solution): the vectors share no arithmetic.
    Raises ValueError on invalid inputs (naming the field and the shapes it allows) and
    RuntimeError if CG does not converge. Many solves of one network: `CrossbarSolver`.
    """
    solver = CrossbarSolver(G, r_source=r_source, r_sense=r_sense, r_wire_row=r_wire_row,
                            r_wire_col=r_wire_col)
    return solver.solve(v_row, v_col, warm_start=warm_start)
