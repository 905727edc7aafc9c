"""Exact DC solve of a resistive crossbar with every line parasitic, by line-preconditioned CG.

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

Method (physics.md §3.4): conjugate gradients on the nodal equations of the free nodes,
preconditioned by the same matrix without the row-column cell couplings (cell conductances
kept on the diagonal). That preconditioner is m + n independent tridiagonal line systems,
solved exactly by the Thomas algorithm. Each line is eliminated from its far end towards its
terminal end, so the elimination does not depend on how the end is connected and is shared by
every input vector; only the final pivot takes the end's conductance. Pivots are carried as
the excess over the wire conductance (``s``), which avoids cancellation when cells are 10^5
times weaker than wires. CG stops when the L1 norm of the residual (a sum of node current
errors in amperes, which bounds the error of every terminal current) falls below
``RESIDUAL_RTOL`` times the largest terminal current.

Memory is O(m·n·B); no dense matrix is formed. Kernels run in parallel over lines and input
vectors and are cached on disk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

# CG stops when sum(|node current residual|) <= RESIDUAL_RTOL * (largest terminal current).
RESIDUAL_RTOL = 1e-12
# Floor of the stopping scale, relative to max|V| x largest line conductance sum, for inputs
# whose true currents are all ~0 (e.g. every terminal at the same voltage).
CURRENT_FLOOR = 1e-6
MAX_ITERATIONS = 5000
# Columns handled together by one worker in column-wise kernels (contiguous in memory).
COLUMN_CHUNK = 32
# Input vectors of a batch are solved in blocks whose CG arrays fit in this many bytes (cache).
WORKING_SET_BYTES = 4 * 2**20
_WORK_ARRAYS = 10  # x, r, z, p, A·p for word and bit lines

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


@njit(parallel=True, cache=True)
def _row_pivots(G, g_wire, lumped, s_end, inv_pivot):
    """Thomas elimination of every word line from its far end (j = n-1) to its source end.

    ``inv_pivot[i, j] = 1 / (g_wire + s_j)`` for j >= 1 and ``s_end[i] = s_0``, where
    ``s_j`` is the pivot's excess over the wire conductance (the end conductance is added to
    ``s_0`` per input vector). Lumped lines: ``s_end`` is the row's total cell conductance.
    """
    m, n = G.shape
    for i in prange(m):
        if lumped:
            total = 0.0
            for j in range(n):
                total += G[i, j]
            s_end[i] = total
            continue
        s = G[i, n - 1]
        for j in range(n - 2, -1, -1):
            inv_pivot[i, j + 1] = 1.0 / (g_wire + s)
            s = G[i, j] + g_wire * s / (g_wire + s)
        s_end[i] = s


@njit(cache=True)
def _column_pivots(G, g_wire, lumped, s_end, inv_pivot):
    """Thomas elimination of every bit line from its far end (i = 0) to its sense end.

    Same convention as `_row_pivots`: ``inv_pivot[i, j]`` for i <= m-2, ``s_end[j]`` at the
    sense end; lumped lines get the column's total cell conductance.
    """
    m, n = G.shape
    if lumped:
        for j in range(n):
            s_end[j] = 0.0
        for i in range(m):
            for j in range(n):
                s_end[j] += G[i, j]
        return
    for j in range(n):
        s_end[j] = G[0, j]
    for i in range(1, m):
        for j in range(n):
            s = s_end[j]
            inv_pivot[i - 1, j] = 1.0 / (g_wire + s)
            s_end[j] = G[i, j] + g_wire * s / (g_wire + s)


# --------------------------------------------------------------------------- CG kernels


@njit(parallel=True, cache=True)
def _apply_nodal(G, pU, pW, g_row, g_col, lump_row, lump_col, ge_row, ge_col, state_row,
                 state_col, active, yU, yW):
    """y = A p for the nodal matrix A of the free nodes (outputs at held nodes are 0).

    Inputs at held nodes are used as given, so applying it to a vector holding the terminal
    voltages at held nodes gives the currents that the residual needs.
    """
    B, m, n = pU.shape
    for k in prange(B * m):
        b = k // m
        i = k - b * m
        if not active[b]:
            continue
        # word line i
        if lump_row:
            u = pU[b, i, 0]
            acc = ge_row[b, i] * u
            for j in range(n):
                w = pW[b, m - 1, j] if lump_col else pW[b, i, j]
                acc += G[i, j] * (u - w)
            yU[b, i, 0] = acc if state_row[b, i] == FREE else 0.0
        elif state_row[b, i] == ISOLATED:
            for j in range(n):
                yU[b, i, j] = 0.0
        else:
            for j in range(n):
                u = pU[b, i, j]
                w = pW[b, m - 1, j] if lump_col else pW[b, i, j]
                acc = G[i, j] * (u - w)
                if j > 0:
                    acc += g_row * (u - pU[b, i, j - 1])
                if j < n - 1:
                    acc += g_row * (u - pU[b, i, j + 1])
                yU[b, i, j] = acc
            if state_row[b, i] == END_FIXED:
                yU[b, i, 0] = 0.0
            else:
                yU[b, i, 0] += ge_row[b, i] * pU[b, i, 0]
        # bit-line nodes of row i (distributed bit lines only)
        if not lump_col:
            for j in range(n):
                w = pW[b, i, j]
                u = pU[b, i, 0] if lump_row else pU[b, i, j]
                acc = G[i, j] * (w - u)
                if i > 0:
                    acc += g_col * (w - pW[b, i - 1, j])
                if i < m - 1:
                    acc += g_col * (w - pW[b, i + 1, j])
                else:
                    acc += ge_col[b, j] * w
                st = state_col[b, j]
                if st == ISOLATED or (st == END_FIXED and i == m - 1):
                    acc = 0.0
                yW[b, i, j] = acc
    if lump_col:
        for b in prange(B):
            if not active[b]:
                continue
            for j in range(n):
                yW[b, m - 1, j] = ge_col[b, j] * pW[b, m - 1, j]
            for i in range(m):
                for j in range(n):
                    u = pU[b, i, 0] if lump_row else pU[b, i, j]
                    yW[b, m - 1, j] += G[i, j] * (pW[b, m - 1, j] - u)
            for j in range(n):
                if state_col[b, j] != FREE:
                    yW[b, m - 1, j] = 0.0


@njit(parallel=True, cache=True)
def _precondition_rows(rU, zU, g_row, lump_row, s_end, inv_pivot, ge_row, state_row, active):
    """zU = M_row^-1 rU: exact solve of every word line's tridiagonal system."""
    B, m, n = rU.shape
    for k in prange(B * m):
        b = k // m
        i = k - b * m
        if not active[b]:
            continue
        st = state_row[b, i]
        if lump_row:
            zU[b, i, 0] = rU[b, i, 0] / (s_end[i] + ge_row[b, i]) if st == FREE else 0.0
            continue
        if st == ISOLATED:
            for j in range(n):
                zU[b, i, j] = 0.0
            continue
        y = rU[b, i, n - 1]
        zU[b, i, n - 1] = y
        for j in range(n - 2, -1, -1):
            y = rU[b, i, j] + g_row * inv_pivot[i, j + 1] * y
            zU[b, i, j] = y
        z = y / (s_end[i] + ge_row[b, i]) if st == FREE else 0.0
        zU[b, i, 0] = z
        for j in range(1, n):
            z = inv_pivot[i, j] * (zU[b, i, j] + g_row * z)
            zU[b, i, j] = z


@njit(parallel=True, cache=True)
def _precondition_columns(rW, zW, g_col, lump_col, s_end, inv_pivot, ge_col, state_col,
                          active, chunk):
    """zW = M_col^-1 rW: exact solve of every bit line's tridiagonal system.

    Bit lines run across rows, so each worker sweeps a chunk of neighbouring columns together
    (contiguous in memory) from the far end (row 0) to the sense end (row m-1) and back.
    """
    B, m, n = rW.shape
    n_chunks = (n + chunk - 1) // chunk
    for k in prange(B * n_chunks):
        b = k // n_chunks
        if not active[b]:
            continue
        j0 = (k - b * n_chunks) * chunk
        j1 = min(j0 + chunk, n)
        if lump_col:
            for j in range(j0, j1):
                if state_col[b, j] == FREE:
                    zW[b, m - 1, j] = rW[b, m - 1, j] / (s_end[j] + ge_col[b, j])
                else:
                    zW[b, m - 1, j] = 0.0
            continue
        for j in range(j0, j1):
            zW[b, 0, j] = rW[b, 0, j]
        for i in range(1, m):
            for j in range(j0, j1):
                zW[b, i, j] = rW[b, i, j] + g_col * inv_pivot[i - 1, j] * zW[b, i - 1, j]
        for j in range(j0, j1):
            if state_col[b, j] == FREE:
                zW[b, m - 1, j] = zW[b, m - 1, j] / (s_end[j] + ge_col[b, j])
            else:
                zW[b, m - 1, j] = 0.0
        for i in range(m - 2, -1, -1):
            for j in range(j0, j1):
                if state_col[b, j] == ISOLATED:
                    zW[b, i, j] = 0.0
                else:
                    zW[b, i, j] = inv_pivot[i, j] * (zW[b, i, j] + g_col * zW[b, i + 1, j])


@njit(parallel=True, cache=True)
def _row_dots(aU, aW, cU, cW, active, out):
    """out[b, i] = sum over row i of aU*cU + aW*cW (partial sums of a batched dot product)."""
    B, m, n = aU.shape
    for k in prange(B * m):
        b = k // m
        i = k - b * m
        acc = 0.0
        if active[b]:
            for j in range(n):
                acc += aU[b, i, j] * cU[b, i, j] + aW[b, i, j] * cW[b, i, j]
        out[b, i] = acc


@njit(parallel=True, cache=True)
def _step(alpha, xU, xW, pU, pW, rU, rW, yU, yW, active, abs_residual):
    """x += alpha p; r -= alpha y; abs_residual[b, i] = sum over row i of |r|."""
    B, m, n = xU.shape
    for k in prange(B * m):
        b = k // m
        i = k - b * m
        acc = 0.0
        if active[b]:
            a = alpha[b]
            for j in range(n):
                xU[b, i, j] += a * pU[b, i, j]
                xW[b, i, j] += a * pW[b, i, j]
                ru = rU[b, i, j] - a * yU[b, i, j]
                rw = rW[b, i, j] - a * yW[b, i, j]
                rU[b, i, j] = ru
                rW[b, i, j] = rw
                acc += abs(ru) + abs(rw)
        abs_residual[b, i] = acc


@njit(parallel=True, cache=True)
def _new_direction(beta, zU, zW, pU, pW, active):
    """p = z + beta p."""
    B, m, n = zU.shape
    for k in prange(B * m):
        b = k // m
        i = k - b * m
        if active[b]:
            bt = beta[b]
            for j in range(n):
                pU[b, i, j] = zU[b, i, j] + bt * pU[b, i, j]
                pW[b, i, j] = zW[b, i, j] + bt * pW[b, i, j]


@njit(parallel=True, cache=True)
def _terminal_currents(G, xU, xW, g_row, g_col, lump_row, lump_col, ge_row, ge_col, v_end_row,
                       v_end_col, state_row, state_col, i_row, i_col):
    """Current into the array at every row source and out of every column to its terminal."""
    B, m, n = xU.shape
    for b in prange(B):
        for i in range(m):
            st = state_row[b, i]
            if st == ISOLATED:
                i_row[b, i] = 0.0
            elif st == FREE:
                i_row[b, i] = ge_row[b, i] * (v_end_row[b, i] - xU[b, i, 0])
            elif lump_row:
                u = xU[b, i, 0]
                acc = 0.0
                for j in range(n):
                    w = xW[b, m - 1, j] if lump_col else xW[b, i, j]
                    acc += G[i, j] * (u - w)
                i_row[b, i] = acc
            else:
                u = xU[b, i, 0]
                w = xW[b, m - 1, 0] if lump_col else xW[b, i, 0]
                acc = G[i, 0] * (u - w)
                if n > 1:
                    acc += g_row * (u - xU[b, i, 1])
                i_row[b, i] = acc
        for j in range(n):
            st = state_col[b, j]
            if st == ISOLATED:
                i_col[b, j] = 0.0
            elif st == FREE:
                i_col[b, j] = ge_col[b, j] * (xW[b, m - 1, j] - v_end_col[b, j])
            elif lump_col:
                w = xW[b, m - 1, j]
                acc = 0.0
                for i in range(m):
                    u = xU[b, i, 0] if lump_row else xU[b, i, j]
                    acc += G[i, j] * (u - w)
                i_col[b, j] = acc
            else:
                w = xW[b, m - 1, j]
                u = xU[b, m - 1, 0] if lump_row else xU[b, m - 1, j]
                acc = G[m - 1, j] * (u - w)
                if m > 1:
                    acc += g_col * (xW[b, m - 2, j] - w)
                i_col[b, j] = acc


@njit(parallel=True, cache=True)
def _line_cell_currents(G, xU, xW, lump_row, lump_col, state_row, state_col, i_row, i_col):
    """Terminal currents as the sum of a line's cell currents (KCL over the whole line).

    Equal to `_terminal_currents` at convergence, but it never subtracts nearly equal node
    voltages across a wire or end conductance, so its rounding error is eps·V·sum(G)
    instead of eps·V·g_wire: the accurate form for the reported currents.
    """
    B, m, n = xU.shape
    for k in prange(B * m):
        b = k // m
        i = k - b * m
        acc = 0.0
        if state_row[b, i] != ISOLATED:
            for j in range(n):
                u = xU[b, i, 0] if lump_row else xU[b, i, j]
                w = xW[b, m - 1, j] if lump_col else xW[b, i, j]
                acc += G[i, j] * (u - w)
        i_row[b, i] = acc
    for b in prange(B):
        for j in range(n):
            i_col[b, j] = 0.0
        for i in range(m):
            for j in range(n):
                u = xU[b, i, 0] if lump_row else xU[b, i, j]
                w = xW[b, m - 1, j] if lump_col else xW[b, i, j]
                i_col[b, j] += G[i, j] * (u - w)
        for j in range(n):
            if state_col[b, j] == ISOLATED:
                i_col[b, j] = 0.0


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


def _isolated_lines(G: np.ndarray, driven_rows: np.ndarray, driven_cols: np.ndarray):
    """Lines (B, m) and (B, n) whose connected group of lines has no driven end in that vector.

    Lines are joined by cells with G > 0; a line is always connected along itself.
    """
    m, n = G.shape
    driven = np.concatenate([driven_rows, driven_cols], axis=1)
    if driven.all():
        return np.zeros_like(driven_rows), np.zeros_like(driven_cols)
    if G.min() > 0:
        labels = np.zeros(m + n, dtype=np.int64)
        n_groups = 1
    else:
        rows, cols = np.nonzero(G)
        graph = coo_matrix((np.ones(rows.size), (rows, m + cols)), shape=(m + n, m + n))
        n_groups, labels = connected_components(graph, directed=False)
    driven_per_group = np.zeros((driven.shape[0], n_groups))
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
    return _package(i_row, i_col, v_word, v_bit, 0, batched)


def _package(i_row, i_col, v_word, v_bit, iterations, batched) -> CrossbarSolution:
    if not batched:
        i_row, i_col, v_word, v_bit = i_row[0], i_col[0], v_word[0], v_bit[0]
    return CrossbarSolution(
        i_row=i_row,
        i_col=i_col,
        v_cell=v_word - v_bit,
        v_word=v_word,
        v_bit=v_bit,
        iterations=int(iterations),
    )


def _initial_guess(warm_start, shape, batched, lump_row, lump_col):
    xU = np.zeros(shape)
    xW = np.zeros(shape)
    if warm_start is None:
        return xU, xW
    if not isinstance(warm_start, CrossbarSolution):
        raise TypeError(f"warm_start must be a CrossbarSolution, got {type(warm_start).__name__}")
    previous_word = warm_start.v_word if batched else warm_start.v_word[None]
    previous_bit = warm_start.v_bit if batched else warm_start.v_bit[None]
    if previous_word.shape != shape:
        raise ValueError(
            f"warm_start has node voltages of shape {warm_start.v_word.shape}, "
            f"this solve needs {shape if batched else shape[1:]}"
        )
    if lump_row:
        xU[:, :, 0] = previous_word[:, :, 0]
    else:
        xU[:] = previous_word
    if lump_col:
        xW[:, -1, :] = previous_bit[:, -1, :]
    else:
        xW[:] = previous_bit
    return xU, xW


def _hold_fixed_nodes(xU, xW, state_row, state_col, v_end_row, v_end_col):
    """Write terminal voltages into held end nodes and 0 V into isolated lines."""
    xU[:, :, 0] = np.where(state_row == END_FIXED, v_end_row, xU[:, :, 0])
    xW[:, -1, :] = np.where(state_col == END_FIXED, v_end_col, xW[:, -1, :])
    xU *= (state_row != ISOLATED)[:, :, None]
    xW *= (state_col != ISOLATED)[:, None, :]


def _expand_lumped(xU, xW, lump_row, lump_col):
    v_word = np.repeat(xU[:, :, :1], xU.shape[2], axis=2) if lump_row else xU
    v_bit = np.repeat(xW[:, -1:, :], xW.shape[1], axis=1) if lump_col else xW
    return v_word, v_bit


class _Network:
    """What every input vector shares: conductances, wires and the line eliminations."""

    def __init__(self, G, g_row, g_col, lump_row, lump_col, s_end_row, s_end_col,
                 inv_pivot_row, inv_pivot_col):
        self.G, self.g_row, self.g_col = G, g_row, g_col
        self.lump_row, self.lump_col = lump_row, lump_col
        self.s_end_row, self.s_end_col = s_end_row, s_end_col
        self.inv_pivot_row, self.inv_pivot_col = inv_pivot_row, inv_pivot_col


class _Ends:
    """Per input vector and line: end conductance, state, terminal voltage; stopping floor."""

    def __init__(self, ge_row, ge_col, state_row, state_col, v_end_row, v_end_col,
                 current_floor):
        self.ge_row, self.ge_col = ge_row, ge_col
        self.state_row, self.state_col = state_row, state_col
        self.v_end_row, self.v_end_col = v_end_row, v_end_col
        self.current_floor = current_floor

    def block(self, part: slice) -> _Ends:
        return _Ends(self.ge_row[part], self.ge_col[part], self.state_row[part],
                     self.state_col[part], self.v_end_row[part], self.v_end_col[part],
                     self.current_floor[part])


class _Workspace:
    """CG work arrays (residual, preconditioned residual, direction, A·direction)."""

    def __init__(self, shape):
        self.rU, self.rW, self.zU, self.zW, self.pU, self.pW, self.yU, self.yW = (
            np.zeros(shape) for _ in range(8)
        )
        self.partial = np.zeros(shape[:2])

    def view(self, size: int):
        """The first ``size`` vectors of every array, zeroed."""
        arrays = [a[:size] for a in (self.rU, self.rW, self.zU, self.zW, self.pU, self.pW,
                                     self.yU, self.yW, self.partial)]
        for a in arrays:
            a.fill(0.0)
        return arrays


def _conjugate_gradients(net: _Network, ends: _Ends, xU, xW, i_row, i_col, work) -> int:
    """Run preconditioned CG on a block of vectors from x (held nodes already set).

    Updates x in place and returns the iterations taken. ``i_row`` / ``i_col`` receive the
    end-formula terminal currents that scale the stopping test.
    """
    G = net.G
    B = xU.shape[0]
    rU, rW, zU, zW, pU, pW, yU, yW, partial = work.view(B)
    active = np.ones(B, dtype=np.bool_)
    _apply_nodal(G, xU, xW, net.g_row, net.g_col, net.lump_row, net.lump_col, ends.ge_row,
                 ends.ge_col, ends.state_row, ends.state_col, active, rU, rW)
    np.negative(rU, out=rU)
    np.negative(rW, out=rW)
    # Sources driven through a resistance inject ge * V at their end node.
    rU[:, :, 0] += np.where(ends.state_row == FREE, ends.ge_row * ends.v_end_row, 0.0)
    rW[:, -1, :] += np.where(ends.state_col == FREE, ends.ge_col * ends.v_end_col, 0.0)
    residual_l1 = np.abs(rU).sum(axis=(1, 2)) + np.abs(rW).sum(axis=(1, 2))
    rz = np.zeros(B)
    iterations = 0
    while True:
        _terminal_currents(G, xU, xW, net.g_row, net.g_col, net.lump_row, net.lump_col,
                           ends.ge_row, ends.ge_col, ends.v_end_row, ends.v_end_col,
                           ends.state_row, ends.state_col, i_row, i_col)
        largest = np.maximum(np.abs(i_row).max(axis=1), np.abs(i_col).max(axis=1))
        active &= residual_l1 > RESIDUAL_RTOL * np.maximum(largest, ends.current_floor)
        if not active.any():
            return iterations
        if iterations >= MAX_ITERATIONS:
            raise RuntimeError(
                f"solve_crossbar: CG did not converge in {MAX_ITERATIONS} iterations "
                f"(residual {residual_l1.max():.3e} A)"
            )
        _precondition_rows(rU, zU, net.g_row, net.lump_row, net.s_end_row, net.inv_pivot_row,
                           ends.ge_row, ends.state_row, active)
        _precondition_columns(rW, zW, net.g_col, net.lump_col, net.s_end_col,
                              net.inv_pivot_col, ends.ge_col, ends.state_col, active,
                              COLUMN_CHUNK)
        _row_dots(zU, zW, rU, rW, active, partial)
        rz_new = partial.sum(axis=1)
        beta = np.where(iterations > 0, rz_new / np.where(rz > 0, rz, 1.0), 0.0)
        rz = rz_new
        _new_direction(beta, zU, zW, pU, pW, active)
        _apply_nodal(G, pU, pW, net.g_row, net.g_col, net.lump_row, net.lump_col, ends.ge_row,
                     ends.ge_col, ends.state_row, ends.state_col, active, yU, yW)
        _row_dots(pU, pW, yU, yW, active, partial)
        p_a_p = partial.sum(axis=1)
        alpha = np.where(p_a_p > 0, rz / np.where(p_a_p > 0, p_a_p, 1.0), 0.0)
        # A zero step means r is already exactly 0 for that vector.
        active &= alpha != 0
        _step(alpha, xU, xW, pU, pW, rU, rW, yU, yW, active, partial)
        residual_l1 = np.where(active, partial.sum(axis=1), 0.0)
        iterations += 1


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
    warm_start : a previous solution of the same shape; CG starts from its node voltages.

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
    _row_pivots(G, g_row, lump_row, s_end_row, inv_pivot_row)
    _column_pivots(G, g_col, lump_col, s_end_col, inv_pivot_col)

    network = _Network(G, g_row, g_col, lump_row, lump_col, s_end_row, s_end_col, inv_pivot_row,
                       inv_pivot_col)
    line_conductance = max(G.sum(axis=0).max(), G.sum(axis=1).max())
    v_scale = np.maximum(np.abs(v_end_row).max(axis=1), np.abs(v_end_col).max(axis=1))
    ends = _Ends(ge_row, ge_col, state_row, state_col, v_end_row, v_end_col,
                 CURRENT_FLOOR * v_scale * line_conductance)

    B = v_row.shape[0]
    xU, xW = _initial_guess(warm_start, (B, m, n), batched, lump_row, lump_col)
    _hold_fixed_nodes(xU, xW, state_row, state_col, v_end_row, v_end_col)
    i_row, i_col = np.zeros((B, m)), np.zeros((B, n))
    # Vectors are solved in blocks whose working set stays in cache.
    block = max(1, WORKING_SET_BYTES // (_WORK_ARRAYS * 8 * m * n))
    work = _Workspace((min(block, B), m, n))
    iterations = 0
    for start in range(0, B, block):
        part = slice(start, min(start + block, B))
        taken = _conjugate_gradients(network, ends.block(part), xU[part], xW[part], i_row[part],
                                     i_col[part], work)
        iterations = max(iterations, taken)

    _line_cell_currents(G, xU, xW, lump_row, lump_col, state_row, state_col, i_row, i_col)
    # A floating end delivers nothing (its line's cell currents sum to 0 up to the residual).
    i_row[np.isnan(v_row)] = 0.0
    i_col[np.isnan(v_col)] = 0.0
    v_word, v_bit = _expand_lumped(xU, xW, lump_row, lump_col)
    return _package(i_row, i_col, v_word, v_bit, iterations, batched)
