"""solve_crossbar against the network solved beyond double precision.

The reference is the SuperLU solution polished by iterative refinement with long-double
residuals, so it is accurate well past the rounding floor of any double-precision solve.
Two claims are checked: in the usual regimes every current is within 1e-9 of the largest;
in networks with extreme conductance ratios the error stays within the double-precision
floor (1e-12 V x strongest conductance) documented in the solver.
"""

import numpy as np
import pytest

from xbarlab.physics.nodal import NodalNetwork
from xbarlab.physics.solver import solve_crossbar

pytestmark = pytest.mark.skipif(np.finfo(np.longdouble).eps > 1e-18,
                                reason="long double is not wider than double here")


def refined_currents(G, v_row, v_col, resistances):
    """Terminal currents (long double) of one input vector, by iterative refinement."""
    m, n = G.shape
    network = NodalNetwork(G, ~np.isnan(v_row), ~np.isnan(v_col), **resistances).factor()
    v_terminal = np.concatenate([v_row[network.row_terminals], v_col[network.col_terminals]])
    wide = np.longdouble
    coupling = network.coupling.tocoo()
    rhs = np.zeros(network.free_groups.size, dtype=wide)
    np.add.at(rhs, coupling.row, coupling.data.astype(wide) * v_terminal[coupling.col])
    matrix = network.matrix.tocoo()
    x = network.lu.solve(rhs.astype(float)).astype(wide)
    for _ in range(5):
        product = np.zeros_like(rhs)
        np.add.at(product, matrix.row, matrix.data.astype(wide) * x[matrix.col])
        x += network.lu.solve((rhs - product).astype(float)).astype(wide)
    group_v = np.zeros(network.n_groups, dtype=wide)
    group_v[network.free_groups] = x
    held = np.flatnonzero(network.terminal_ideal)
    group_v[network.terminal_group[held]] = v_terminal[held]
    node_v = group_v[network.group_of_node].reshape(2, m, n)
    cell = G.astype(wide) * (node_v[0] - node_v[1])
    i_row, i_col = cell.sum(axis=1), cell.sum(axis=0)
    i_row[np.isnan(v_row)] = 0
    i_col[np.isnan(v_col)] = 0
    return i_row, i_col


def current_error(solution, reference):
    i_row, i_col = reference
    return float(max(np.abs(solution.i_row - i_row).max(), np.abs(solution.i_col - i_col).max()))


@pytest.mark.parametrize("kappa", [0.01, 1.0, 100.0])
def test_usual_regimes_are_within_1e_9_of_the_largest_current(rng, kappa):
    n = 24
    G = rng.uniform(0.01, 1.0, (n, n)) * kappa / n**2
    v_row = rng.uniform(0, 1, n)
    v_row[rng.random(n) < 0.3] = np.nan
    v_col = np.zeros(n)
    resistances = dict(r_source=1.0, r_sense=1.0, r_wire_row=1.0, r_wire_col=1.0)
    reference = refined_currents(G, v_row, v_col, resistances)
    largest = float(max(np.abs(reference[0]).max(), np.abs(reference[1]).max()))
    solution = solve_crossbar(G, v_row, v_col, **resistances)
    assert current_error(solution, reference) <= 1e-9 * largest


@pytest.mark.parametrize("seed", range(6))
def test_extreme_networks_stay_within_the_rounding_floor(seed):
    """Five decades of cell conductance, sub-ohm sources, most lines floating."""
    rng = np.random.default_rng(seed)
    m, n = rng.integers(5, 25, 2)
    G = 10.0 ** rng.uniform(-7, -2, (m, n))
    G[rng.random((m, n)) < 0.5] = 0.0
    v_row, v_col = rng.uniform(-1, 1, m), rng.uniform(-1, 1, n)
    v_row[rng.random(m) < 0.6] = np.nan
    v_col[rng.random(n) < 0.6] = np.nan
    v_row[0] = 0.5
    resistances = dict(r_source=rng.uniform(0.05, 2.0, m), r_sense=0.1, r_wire_row=2.0,
                       r_wire_col=0.5)
    reference = refined_currents(G, v_row, v_col, resistances)
    largest = float(max(np.abs(reference[0]).max(), np.abs(reference[1]).max()))
    strongest = max(G.max(), 1 / resistances["r_source"].min(), 10.0, 2.0)
    solution = solve_crossbar(G, v_row, v_col, **resistances)
    assert current_error(solution, reference) <= 1e-9 * largest + 1e-12 * strongest
