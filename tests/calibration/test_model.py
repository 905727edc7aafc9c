"""The parasitic model's unit responses: admittances and their derivatives against independent
computations (finite differences of the solver, superposition of a direct solve)."""

from __future__ import annotations

import numpy as np
import pytest

from xbarlab.calibration.model import Parasitics, terminal_currents, unit_responses
from xbarlab.physics import solve_crossbar

ROWS, COLS = 4, 5


@pytest.fixture
def network():
    rng = np.random.default_rng(12)
    G = rng.uniform(1e-5, 1e-4, (ROWS, COLS))
    parasitics = Parasitics(rng.uniform(50, 150, ROWS), rng.uniform(50, 150, COLS), 3.0, 5.0)
    return G, parasitics


def admittance(G, parasitics):
    return unit_responses(G, parasitics)[0].admittance


def test_admittance_is_symmetric_and_gives_any_driven_excitation(network):
    G, parasitics = network
    Y = admittance(G, parasitics)
    assert np.abs(Y - Y.T).max() < 1e-12 * np.abs(Y).max()
    levels = np.random.default_rng(3).uniform(-0.3, 0.3, ROWS + COLS)
    solution = solve_crossbar(G, levels[:ROWS], levels[ROWS:], r_source=parasitics.r_source,
                              r_sense=parasitics.r_sense, r_wire_row=3.0, r_wire_col=5.0)
    direct = np.concatenate([solution.i_row, -solution.i_col])
    assert np.allclose(levels @ Y, direct, rtol=1e-9, atol=1e-15)


def finite_difference(G, parasitics, change) -> np.ndarray:
    """Central difference of Y along a change of (G, parasitics vector)."""
    dG, dr = change
    r = parasitics.as_vector()
    plus = admittance(G + dG, Parasitics.from_vector(r + dr, ROWS, COLS))
    minus = admittance(G - dG, Parasitics.from_vector(r - dr, ROWS, COLS))
    return (plus - minus) / 2


def test_derivatives_are_products_of_unit_responses(network):
    """dY/dg = v_s v_t for a cell; dY/dr = -i_s i_t for a path or wire resistance."""
    G, parasitics = network
    u, _ = unit_responses(G, parasitics)
    zeros_r = np.zeros(ROWS + COLS + 2)
    step_g = 1e-9
    dG = np.zeros_like(G)
    dG[2, 3] = step_g
    numeric = finite_difference(G, parasitics, (dG, zeros_r)) / step_g
    analytic = np.outer(u.cell_volts[:, 2, 3], u.cell_volts[:, 2, 3])
    assert np.allclose(numeric, analytic, rtol=1e-5, atol=1e-8 * np.abs(analytic).max())
    step_r = 1e-3
    checks = {ROWS - 1: u.end_currents[:, ROWS - 1],  # a row's source path
              ROWS + 1: u.end_currents[:, ROWS + 1]}  # a column's sense path
    for index, branch in checks.items():
        dr = zeros_r.copy()
        dr[index] = step_r
        numeric = finite_difference(G, parasitics, (np.zeros_like(G), dr)) / step_r
        analytic = -np.outer(branch, branch)
        assert np.allclose(numeric, analytic, rtol=1e-5, atol=1e-6 * np.abs(analytic).max())
    for index, segments in ((ROWS + COLS, u.row_segments), (ROWS + COLS + 1, u.col_segments)):
        dr = zeros_r.copy()
        dr[index] = step_r
        numeric = finite_difference(G, parasitics, (np.zeros_like(G), dr)) / step_r
        flat = segments.reshape(ROWS + COLS, -1)
        analytic = -flat @ flat.T
        assert np.allclose(numeric, analytic, rtol=1e-5, atol=1e-6 * np.abs(analytic).max())


def test_terminal_currents_are_into_the_array(network):
    G, parasitics = network
    v_row, v_col = np.full(ROWS, 0.2), np.zeros(COLS)
    currents = parasitics.terminal_currents(G, v_row, v_col)[0]
    assert np.all(currents[:ROWS] > 0) and np.all(currents[ROWS:] < 0)
    assert abs(currents.sum()) < 1e-12 * np.abs(currents).max()  # what goes in comes out
    solution = parasitics.solve(G, v_row, v_col)
    assert np.allclose(terminal_currents(solution)[0, ROWS:], -solution.i_col)


@pytest.mark.parametrize("field, value", [("r_source", [-1.0] * ROWS),
                                          ("r_wire_row", float("nan"))])
def test_resistances_are_checked(field, value):
    values = {"r_source": np.ones(ROWS), "r_sense": np.ones(COLS), "r_wire_row": 1.0,
              "r_wire_col": 1.0, field: value}
    with pytest.raises(ValueError, match=field):
        Parasitics(**values)
