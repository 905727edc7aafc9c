"""Physical laws every solution of a passive resistive network must obey (hypothesis)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from xbarlab.physics.solver import solve_crossbar

RESISTANCE = st.one_of(st.just(0.0), st.floats(0.05, 200.0))
PROPERTY_SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)


@st.composite
def networks(draw):
    """A random crossbar: shape, log-uniform conductances with some cells off, parasitics,
    and a pattern of floating line ends (always at least one driven end)."""
    m = draw(st.integers(1, 9))
    n = draw(st.integers(1, 9))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    G = 10.0 ** rng.uniform(-7, -2, (m, n))
    G[rng.random((m, n)) < draw(st.sampled_from([0.0, 0.2, 0.6]))] = 0.0
    floating_fraction = draw(st.sampled_from([0.0, 0.3, 0.7]))
    floating_rows = rng.random(m) < floating_fraction
    floating_cols = rng.random(n) < floating_fraction
    floating_rows[rng.integers(m)] = False
    resistances = dict(
        r_source=draw(RESISTANCE), r_sense=draw(RESISTANCE), r_wire_row=draw(RESISTANCE),
        r_wire_col=draw(RESISTANCE),
    )
    return G, floating_rows, floating_cols, resistances, rng


def random_voltages(rng, floating_rows, floating_cols, batch):
    v_row = rng.uniform(-1, 1, (batch, floating_rows.size))
    v_col = rng.uniform(-1, 1, (batch, floating_cols.size))
    v_row[:, floating_rows] = np.nan
    v_col[:, floating_cols] = np.nan
    return v_row, v_col


def largest_conductance(G, resistances):
    """The strongest conductance of the network: it sets the double-precision floor."""
    strongest = [1.0 / np.min(r[r > 0]) for r in map(np.atleast_1d, resistances.values())
                 if np.any(r > 0)]
    return max([G.max(), *strongest])


def current_scale(G, resistances, v_row, v_col, *solutions):
    """Largest terminal current, floored where every current is ~0 (all terminals at one
    voltage, say) at 1e-6 of what a full line of cells would carry, and at the rounding
    floor of any double-precision nodal solve, ~1e3 eps x V x (strongest conductance)."""
    largest = max(max(np.abs(s.i_row).max(), np.abs(s.i_col).max()) for s in solutions)
    v_max = max(np.nanmax(np.abs(v_row)), np.nanmax(np.abs(v_col), initial=0.0))
    line = max(G.sum(axis=0).max(), G.sum(axis=1).max())
    return max(largest, 1e-6 * v_max * line, 1e-3 * v_max * largest_conductance(G, resistances))


@PROPERTY_SETTINGS
@given(networks(), st.floats(-3.0, 3.0))
def test_superposition(network, scale):
    """Currents and voltages are linear in the terminal voltages."""
    G, floating_rows, floating_cols, resistances, rng = network
    v_row, v_col = random_voltages(rng, floating_rows, floating_cols, 2)
    first = solve_crossbar(G, v_row[0], v_col[0], **resistances)
    second = solve_crossbar(G, v_row[1], v_col[1], **resistances)
    combined = solve_crossbar(G, v_row[0] + scale * v_row[1], v_col[0] + scale * v_col[1],
                              **resistances)
    tolerance = 1e-9 * current_scale(G, resistances, v_row, v_col, first, second,
                                     combined) * (
        1 + abs(scale))
    np.testing.assert_allclose(combined.i_col, first.i_col + scale * second.i_col, rtol=0,
                               atol=tolerance)
    np.testing.assert_allclose(combined.i_row, first.i_row + scale * second.i_row, rtol=0,
                               atol=tolerance)


@PROPERTY_SETTINGS
@given(networks())
def test_reciprocity(network):
    """The admittance matrix between driven terminals is symmetric (a passive network is
    reciprocal): the current into terminal a for 1 V on terminal b equals the current into
    b for 1 V on a, every other driven terminal at 0 V."""
    G, floating_rows, floating_cols, resistances, _ = network
    m, n = G.shape
    unit = np.eye(m + n)
    v_row, v_col = unit[:, :m].copy(), unit[:, m:].copy()
    v_row[:, floating_rows] = np.nan
    v_col[:, floating_cols] = np.nan
    solution = solve_crossbar(G, v_row, v_col, **resistances)
    into_network = np.concatenate([solution.i_row, -solution.i_col], axis=1)  # [source, terminal]
    driven = np.concatenate([~floating_rows, ~floating_cols])
    admittance = into_network[np.ix_(driven, driven)].T
    # Floors as in current_scale (at 1 V): a full line's 1e-6, and the rounding floor.
    line = max(G.sum(axis=0).max(), G.sum(axis=1).max())
    floor = max(1e-6 * line, 1e-3 * largest_conductance(G, resistances))
    tolerance = 1e-9 * max(np.abs(admittance).max(), floor)
    np.testing.assert_allclose(admittance, admittance.T, rtol=0, atol=tolerance)
    # Passive and connected through positive conductances: no negative self-admittance.
    assert np.all(np.diag(admittance) >= -tolerance)


@PROPERTY_SETTINGS
@given(networks())
def test_kcl_and_energy_balance(network):
    """Current in equals current out; power delivered by the terminals equals the power
    dissipated in cells, wire segments and end resistances, and is never negative."""
    G, floating_rows, floating_cols, resistances, rng = network
    v_row, v_col = random_voltages(rng, floating_rows, floating_cols, 3)
    solution = solve_crossbar(G, v_row, v_col, **resistances)
    scale = current_scale(G, resistances, v_row, v_col, solution)
    np.testing.assert_allclose(solution.i_row.sum(axis=1), solution.i_col.sum(axis=1), rtol=0,
                               atol=1e-9 * scale * (G.shape[0] + G.shape[1]))

    delivered = np.nansum(v_row * solution.i_row, axis=1) - np.nansum(v_col * solution.i_col,
                                                                       axis=1)
    dissipated = (G * solution.v_cell**2).sum(axis=(1, 2))
    if resistances["r_wire_row"] > 0:
        dissipated += (np.diff(solution.v_word, axis=2) ** 2).sum(axis=(1, 2)) / resistances[
            "r_wire_row"]
    if resistances["r_wire_col"] > 0:
        dissipated += (np.diff(solution.v_bit, axis=1) ** 2).sum(axis=(1, 2)) / resistances[
            "r_wire_col"]
    dissipated += resistances["r_source"] * (solution.i_row**2).sum(axis=1)
    dissipated += resistances["r_sense"] * (solution.i_col**2).sum(axis=1)
    power_scale = scale * max(np.nanmax(np.abs(v_row)), np.nanmax(np.abs(v_col), initial=0.0))
    assert np.all(delivered >= -1e-9 * power_scale)
    np.testing.assert_allclose(delivered, dissipated, rtol=0, atol=1e-8 * power_scale)


@PROPERTY_SETTINGS
@given(networks())
def test_node_voltages_stay_within_the_terminal_voltages(network):
    """Maximum principle: with no internal sources, no node is driven beyond the extreme
    terminal voltages (isolated groups sit at 0 V, also inside that range here)."""
    G, floating_rows, floating_cols, resistances, rng = network
    v_row, v_col = random_voltages(rng, floating_rows, floating_cols, 2)
    solution = solve_crossbar(G, v_row, v_col, **resistances)
    for b in range(2):
        terminals = np.concatenate([v_row[b], v_col[b], [0.0]])
        low, high = np.nanmin(terminals), np.nanmax(terminals)
        slack = 1e-9 * (high - low + 1e-300)
        for nodes in (solution.v_word[b], solution.v_bit[b]):
            assert nodes.min() >= low - slack and nodes.max() <= high + slack


@PROPERTY_SETTINGS
@given(networks())
def test_duality_of_word_and_bit_lines(network):
    """Mapping word node (i, j) to bit node (n-1-j, m-1-i) turns source ends into sense ends
    and the array into the one with G' = G[::-1, ::-1].T, line resistances swapped: the
    dual's solution is the original's mirrored, with currents reversed in sign. This checks
    the word-line and bit-line paths of the solver against each other."""
    G, floating_rows, floating_cols, resistances, rng = network
    m, n = G.shape
    v_row, v_col = random_voltages(rng, floating_rows, floating_cols, 2)
    r_source = np.broadcast_to(resistances["r_source"], (m,))
    r_sense = np.broadcast_to(resistances["r_sense"], (n,))
    solution = solve_crossbar(G, v_row, v_col, **resistances)
    dual = solve_crossbar(G[::-1, ::-1].T, v_col[:, ::-1], v_row[:, ::-1],
                          r_source=r_sense[::-1], r_sense=r_source[::-1],
                          r_wire_row=resistances["r_wire_col"],
                          r_wire_col=resistances["r_wire_row"])
    tolerance = 1e-9 * current_scale(G, resistances, v_row, v_col, solution, dual)
    np.testing.assert_allclose(dual.i_row, -solution.i_col[:, ::-1], rtol=0, atol=tolerance)
    np.testing.assert_allclose(dual.i_col, -solution.i_row[:, ::-1], rtol=0, atol=tolerance)
    v_max = max(np.nanmax(np.abs(v_row)), np.nanmax(np.abs(v_col), initial=0.0))
    np.testing.assert_allclose(dual.v_cell, -solution.v_cell[:, ::-1, ::-1].transpose(0, 2, 1),
                               rtol=0, atol=1e-9 * v_max)
