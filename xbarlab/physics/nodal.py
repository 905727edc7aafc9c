"""Direct sparse nodal analysis of the crossbar network: the independent reference solver.

Same network and conventions as `xbarlab.physics.solver` (see its docstring), built a
different way: every word-line and bit-line node is a graph node; zero-resistance wires merge
nodes into one; a zero-resistance driven end holds its node group at the terminal voltage;
node groups with no path to a driven end are isolated and set to 0 V. The free groups' nodal
matrix is assembled in COO form and factorised by SuperLU (`scipy.sparse.linalg.splu`).

It is exact to rounding and needs O(N^2.4) memory for the LU factors, so it serves as the
reference for tests and as the baseline of ``benchmarks/bench_solver.py`` (up to N = 512).
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix, csc_matrix
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import splu

from xbarlab.physics.solver import CrossbarSolution


def _edges(G: np.ndarray, r_wire_row: float, r_wire_col: float):
    """Conductance edges (a, b, g) and zero-resistance merges (a, b) between node indices.

    Word node (i, j) has index i*n + j, bit node (i, j) has index m*n + i*n + j.
    """
    m, n = G.shape
    word = np.arange(m * n).reshape(m, n)
    bit = word + m * n
    cell = G > 0
    ends_a = [word[cell]]
    ends_b = [bit[cell]]
    conductances = [G[cell]]
    merges_a, merges_b = [], []
    for nodes_a, nodes_b, r in (
        (word[:, :-1], word[:, 1:], r_wire_row),
        (bit[:-1, :], bit[1:, :], r_wire_col),
    ):
        if r > 0:
            ends_a.append(nodes_a.ravel())
            ends_b.append(nodes_b.ravel())
            conductances.append(np.full(nodes_a.size, 1.0 / r))
        else:
            merges_a.append(nodes_a.ravel())
            merges_b.append(nodes_b.ravel())
    edges = (np.concatenate(ends_a), np.concatenate(ends_b), np.concatenate(conductances))
    merges = (
        np.concatenate(merges_a) if merges_a else np.zeros(0, dtype=np.int64),
        np.concatenate(merges_b) if merges_b else np.zeros(0, dtype=np.int64),
    )
    return edges, merges


class NodalNetwork:
    """The crossbar's nodal equations for one pattern of driven and floating line ends.

    ``build`` happens in the constructor, ``factor()`` runs SuperLU, ``solve()`` takes any
    number of input vectors with that pattern. Timing each step separately is what the
    benchmark needs.
    """

    def __init__(self, G, driven_rows, driven_cols, *, r_source, r_sense, r_wire_row,
                 r_wire_col):
        G = np.asarray(G, dtype=np.float64)
        m, n = G.shape
        self.shape = (m, n)
        r_source = np.broadcast_to(np.asarray(r_source, dtype=np.float64), (m,))
        r_sense = np.broadcast_to(np.asarray(r_sense, dtype=np.float64), (n,))
        (edge_a, edge_b, edge_g), (merge_a, merge_b) = _edges(G, r_wire_row, r_wire_col)
        n_nodes = 2 * m * n
        merge_graph = coo_matrix(
            (np.ones(merge_a.size), (merge_a, merge_b)), shape=(n_nodes, n_nodes)
        )
        n_groups, self.group_of_node = connected_components(merge_graph, directed=False)
        self.edge_a = self.group_of_node[edge_a]
        self.edge_b = self.group_of_node[edge_b]
        self.edge_g = edge_g

        # Terminals: rows then columns, each with its end node's group and its conductance
        # (inf for an ideal end); floating ends are left out.
        self.row_terminals = np.flatnonzero(np.asarray(driven_rows))
        self.col_terminals = np.flatnonzero(np.asarray(driven_cols))
        row_end_group = self.group_of_node[self.row_terminals * n]
        col_end_group = self.group_of_node[m * n + (m - 1) * n + self.col_terminals]
        self.terminal_group = np.concatenate([row_end_group, col_end_group])
        terminal_r = np.concatenate([r_source[self.row_terminals], r_sense[self.col_terminals]])
        self.terminal_ideal = terminal_r == 0
        self.terminal_g = np.where(self.terminal_ideal, 0.0,
                                   1.0 / np.where(self.terminal_ideal, 1.0, terminal_r))

        # Held groups carry an ideal terminal; the rest are unknown unless isolated.
        held = np.zeros(n_groups, dtype=bool)
        held[self.terminal_group[self.terminal_ideal]] = True
        ground = n_groups  # a super node joined to every terminal, to find isolated groups
        reach_a = np.concatenate([self.edge_a, self.terminal_group])
        reach_b = np.concatenate([self.edge_b, np.full(self.terminal_group.size, ground)])
        reach = coo_matrix(
            (np.ones(reach_a.size), (reach_a, reach_b)), shape=(n_groups + 1, n_groups + 1)
        )
        _, component = connected_components(reach, directed=False)
        grounded = component[:n_groups] == component[ground]
        free = grounded & ~held
        self.n_groups = n_groups
        self.free_groups = np.flatnonzero(free)
        index_of_free = np.full(n_groups, -1)
        index_of_free[self.free_groups] = np.arange(self.free_groups.size)
        self.index_of_free = index_of_free
        self._assemble(free, index_of_free)
        self.lu = None

    def _assemble(self, free, index_of_free):
        """Matrix of the free groups and the coupling of free groups to held terminals."""
        F = self.free_groups.size
        a, b, g = self.edge_a, self.edge_b, self.edge_g
        rows, cols, vals = [], [], []
        for x, y in ((a, b), (b, a)):
            on_free = free[x]
            rows.append(index_of_free[x[on_free]])
            cols.append(index_of_free[x[on_free]])
            vals.append(g[on_free])
            both = on_free & free[y]
            rows.append(index_of_free[x[both]])
            cols.append(index_of_free[y[both]])
            vals.append(-g[both])
        resistive = ~self.terminal_ideal & free[self.terminal_group]
        rows.append(index_of_free[self.terminal_group[resistive]])
        cols.append(index_of_free[self.terminal_group[resistive]])
        vals.append(self.terminal_g[resistive])
        self.matrix = csc_matrix(
            coo_matrix(
                (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                shape=(F, F),
            )
        )
        # rhs = coupling @ terminal voltages: g*V for resistive ends on free groups, and
        # g_edge * V_held for every edge from a free group to a held group.
        terminal_of_group = np.full(self.n_groups, -1)
        ideal = np.flatnonzero(self.terminal_ideal)
        terminal_of_group[self.terminal_group[ideal]] = ideal
        c_rows = [index_of_free[self.terminal_group[resistive]]]
        c_cols = [np.flatnonzero(resistive)]
        c_vals = [self.terminal_g[resistive]]
        for x, y in ((a, b), (b, a)):
            to_held = free[x] & (terminal_of_group[y] >= 0)
            c_rows.append(index_of_free[x[to_held]])
            c_cols.append(terminal_of_group[y[to_held]])
            c_vals.append(g[to_held])
        self.coupling = csc_matrix(
            coo_matrix(
                (np.concatenate(c_vals), (np.concatenate(c_rows), np.concatenate(c_cols))),
                shape=(F, self.terminal_group.size),
            )
        )
        self.terminal_of_group = terminal_of_group

    def factor(self):
        """LU-factorise the free groups' matrix (SuperLU, COLAMD ordering)."""
        if self.free_groups.size:
            self.lu = splu(self.matrix)
        return self

    def solve(self, v_row, v_col):
        """Solve for (B, m) row and (B, n) column voltages with this network's pattern.

        Returns (i_row, i_col, v_word, v_bit) with a leading batch axis.
        """
        m, n = self.shape
        v_row = np.atleast_2d(np.asarray(v_row, dtype=np.float64))
        v_col = np.atleast_2d(np.asarray(v_col, dtype=np.float64))
        B = v_row.shape[0]
        v_terminal = np.concatenate(
            [v_row[:, self.row_terminals], v_col[:, self.col_terminals]], axis=1
        )
        group_v = np.zeros((B, self.n_groups))
        if self.free_groups.size:
            if self.lu is None:
                self.factor()
            rhs = np.ascontiguousarray(self.coupling @ v_terminal.T)  # (free groups, B)
            group_v[:, self.free_groups] = self.lu.solve(rhs).T
        ideal = np.flatnonzero(self.terminal_ideal)
        group_v[:, self.terminal_group[ideal]] = v_terminal[:, ideal]

        # Terminal currents: resistive ends by Ohm's law, held ends by KCL on their group.
        edge_current = self.edge_g * (group_v[:, self.edge_a] - group_v[:, self.edge_b])
        leaving = np.zeros((B, self.n_groups))
        np.add.at(leaving, (slice(None), self.edge_a), edge_current)
        np.add.at(leaving, (slice(None), self.edge_b), -edge_current)
        into_array = np.where(
            self.terminal_ideal,
            leaving[:, self.terminal_group],
            self.terminal_g * (v_terminal - group_v[:, self.terminal_group]),
        )
        n_rows = self.row_terminals.size
        i_row = np.zeros((B, m))
        i_col = np.zeros((B, n))
        i_row[:, self.row_terminals] = into_array[:, :n_rows]
        i_col[:, self.col_terminals] = -into_array[:, n_rows:]
        node_v = group_v[:, self.group_of_node].reshape(B, 2, m, n)
        return i_row, i_col, node_v[:, 0], node_v[:, 1]


def solve_crossbar_nodal(G, v_row, v_col, *, r_source=0.0, r_sense=0.0, r_wire_row=0.0,
                         r_wire_col=0.0) -> CrossbarSolution:
    """Reference solve with `solve_crossbar`'s signature and conventions (no validation).

    Input vectors are grouped by their pattern of floating ends; each pattern is factorised
    once.
    """
    G = np.asarray(G, dtype=np.float64)
    m, n = G.shape
    v_row = np.asarray(v_row, dtype=np.float64)
    v_col = np.asarray(v_col, dtype=np.float64)
    batched = v_row.ndim == 2 or v_col.ndim == 2
    B = max(np.atleast_2d(v_row).shape[0], np.atleast_2d(v_col).shape[0])
    rows = np.broadcast_to(np.atleast_2d(v_row), (B, m))
    cols = np.broadcast_to(np.atleast_2d(v_col), (B, n))
    pattern = np.concatenate([np.isnan(rows), np.isnan(cols)], axis=1)
    i_row, i_col = np.zeros((B, m)), np.zeros((B, n))
    v_word, v_bit = np.zeros((B, m, n)), np.zeros((B, m, n))
    for floating in np.unique(pattern, axis=0):
        members = np.flatnonzero((pattern == floating).all(axis=1))
        network = NodalNetwork(
            G, ~floating[:m], ~floating[m:], r_source=r_source, r_sense=r_sense,
            r_wire_row=r_wire_row, r_wire_col=r_wire_col,
        ).factor()
        result = network.solve(np.nan_to_num(rows[members]), np.nan_to_num(cols[members]))
        i_row[members], i_col[members], v_word[members], v_bit[members] = result
    if not batched:
        i_row, i_col, v_word, v_bit = i_row[0], i_col[0], v_word[0], v_bit[0]
    return CrossbarSolution(i_row=i_row, i_col=i_col, v_cell=v_word - v_bit, v_word=v_word,
                            v_bit=v_bit, iterations=0)
