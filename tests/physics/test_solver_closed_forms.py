"""solve_crossbar against circuits whose answer is known in closed form."""

import numpy as np
import pytest
from solution_checks import relative_deviation

from xbarlab.physics.solver import solve_crossbar


@pytest.mark.parametrize(
    ("r_source", "r_sense"), [(0.0, 0.0), (50.0, 0.0), (0.0, 20.0), (50.0, 20.0)]
)
def test_isolated_cell_obeys_series_resistance(r_source, r_sense):
    G = np.array([[2.5e-5]])
    solution = solve_crossbar(G, [0.3], [0.0], r_source=r_source, r_sense=r_sense,
                              r_wire_row=7.0, r_wire_col=3.0)
    expected = 0.3 / (r_source + 1 / G[0, 0] + r_sense)
    np.testing.assert_allclose(solution.i_col, [expected], rtol=1e-13)
    np.testing.assert_allclose(solution.i_row, [expected], rtol=1e-13)
    np.testing.assert_allclose(solution.v_cell, [[expected / G[0, 0]]], rtol=1e-13)


@pytest.mark.parametrize(("i", "j"), [(0, 0), (3, 5), (6, 0), (0, 8), (6, 8)])
def test_single_conducting_cell_sees_its_wire_path(i, j):
    """Only cell (i, j) conducts: the current crosses j row segments and m-1-i column ones."""
    m, n = 7, 9
    G = np.zeros((m, n))
    G[i, j] = 1e-4
    r_s, r_n, r_wr, r_wc = 11.0, 13.0, 2.0, 3.0
    v_row = np.full(m, np.nan)
    v_row[i] = 0.5
    solution = solve_crossbar(G, v_row, np.zeros(n), r_source=r_s, r_sense=r_n,
                              r_wire_row=r_wr, r_wire_col=r_wc)
    expected = 0.5 / (r_s + j * r_wr + 1e4 + (m - 1 - i) * r_wc + r_n)
    np.testing.assert_allclose(solution.i_col[j], expected, rtol=1e-12)
    np.testing.assert_allclose(solution.i_row[i], expected, rtol=1e-12)
    assert np.abs(np.delete(solution.i_col, j)).max() <= 1e-12 * expected


def test_zero_parasitics_give_exactly_v_row_at_G(rng):
    G = rng.uniform(1e-6, 1e-4, (17, 11))
    v_row = rng.uniform(-1, 1, (5, 17))
    batch = solve_crossbar(G, v_row, np.zeros(11))
    np.testing.assert_array_equal(batch.i_col, v_row @ G)
    single = solve_crossbar(G, v_row[2], np.zeros(11))
    np.testing.assert_array_equal(single.i_col, v_row[2] @ G)
    assert single.i_col.shape == (11,) and single.v_cell.shape == (17, 11)


def test_zero_parasitics_with_column_voltages(rng):
    G = rng.uniform(1e-6, 1e-4, (6, 4))
    v_row, v_col = rng.uniform(-1, 1, 6), rng.uniform(-1, 1, 4)
    solution = solve_crossbar(G, v_row, v_col)
    v_cell = v_row[:, None] - v_col[None, :]
    np.testing.assert_allclose(solution.i_col, (G * v_cell).sum(axis=0), rtol=1e-14, atol=1e-20)
    np.testing.assert_allclose(solution.i_row, (G * v_cell).sum(axis=1), rtol=1e-14, atol=1e-20)
    np.testing.assert_array_equal(solution.v_cell, v_cell)


def ladder_voltages(n, g_cell, r_wire, r_source, v_source):
    """Node voltages of a uniform ladder: source -> r_source -> n shunt cells, r_wire apart.

    Interior nodes obey V[j-1] + V[j+1] = (2 + r_wire g) V[j], and the open far end makes the
    solution symmetric about j = n - 1/2: V[j] = C cosh(theta (j - n + 1/2)) with
    cosh(theta) = 1 + r_wire g / 2. C follows from KCL at the driven node.
    """
    theta = np.arccosh(1 + r_wire * g_cell / 2)
    shape = np.cosh(theta * (np.arange(n) - n + 0.5))
    if r_source == 0:
        return v_source * shape / shape[0]
    # (v_source - V0)/r_source = g V0 + (V0 - V1)/r_wire
    coefficient = v_source / r_source / (
        shape[0] / r_source + g_cell * shape[0] + (shape[0] - shape[1]) / r_wire)
    return coefficient * shape


@pytest.mark.parametrize("r_source", [0.0, 25.0])
def test_single_word_line_is_a_cosh_ladder(r_source):
    n, g, r_w = 60, 2e-3, 1.5
    v = ladder_voltages(n, g, r_w, r_source, 0.8)
    solution = solve_crossbar(np.full((1, n), g), [0.8], np.zeros(n), r_source=r_source,
                              r_wire_row=r_w, r_wire_col=4.0)
    np.testing.assert_allclose(solution.i_col, g * v, rtol=1e-11)
    np.testing.assert_allclose(solution.i_row, [g * v.sum()], rtol=1e-11)


def test_single_bit_line_is_a_cosh_ladder():
    """One column, every row driven at 0 V, the column terminal at -0.4 V through r_sense."""
    m, g, r_w, r_n = 45, 1e-3, 2.0, 10.0
    v = ladder_voltages(m, g, r_w, r_n, -0.4)[::-1]
    solution = solve_crossbar(np.full((m, 1), g), np.zeros(m), [-0.4], r_sense=r_n,
                              r_wire_col=r_w, r_wire_row=3.0)
    np.testing.assert_allclose(solution.v_cell[:, 0], -v, rtol=1e-11)
    np.testing.assert_allclose(solution.i_row, -g * v, rtol=1e-11)


def test_uniform_potential_carries_no_current():
    G = np.full((12, 10), 5e-5)
    solution = solve_crossbar(G, np.full(12, 0.7), np.full(10, 0.7), r_source=3.0,
                              r_sense=2.0, r_wire_row=1.0, r_wire_col=1.0)
    assert np.abs(solution.i_col).max() < 1e-15
    np.testing.assert_allclose(solution.v_word, 0.7, rtol=1e-12)
    np.testing.assert_allclose(solution.v_bit, 0.7, rtol=1e-12)


def test_everything_floating_is_zero_and_finite():
    G = np.full((5, 6), 1e-5)
    solution = solve_crossbar(G, np.full(5, np.nan), np.full(6, np.nan), r_source=1.0,
                              r_sense=1.0, r_wire_row=1.0, r_wire_col=1.0)
    for field in (solution.i_row, solution.i_col, solution.v_word, solution.v_bit):
        np.testing.assert_array_equal(field, 0.0)


def test_disconnected_floating_row_is_zero_and_leaves_the_rest_alone(rng):
    """A floating row whose cells are all off carries nothing and sits at 0 V."""
    G = rng.uniform(1e-6, 1e-4, (8, 7))
    G[3] = 0.0
    v_row = rng.uniform(0, 1, 8)
    v_row[3] = np.nan
    kwargs = dict(r_source=2.0, r_sense=3.0, r_wire_row=1.0, r_wire_col=1.0)
    solution = solve_crossbar(G, v_row, np.zeros(7), **kwargs)
    assert solution.i_row[3] == 0.0
    np.testing.assert_array_equal(solution.v_word[3], 0.0)
    # The off row only interrupts nothing: columns still pass through its wire segments.
    reference = solve_crossbar(G, np.where(np.isnan(v_row), 0.0, v_row), np.zeros(7), **kwargs)
    np.testing.assert_allclose(solution.i_col, reference.i_col, rtol=1e-10)


@pytest.mark.parametrize("r_wire_col", [0.0, 1.0])
def test_floating_columns_on_weak_cells_follow_their_word_nodes(r_wire_col):
    """A floating column joined to the array by one 10 MΩ cell carries no current, so it sits
    exactly at its word-line node: zero volts across that cell (a 1e-16 A residual there
    would still allow a nanovolt error; the solver must converge the voltage too)."""
    G = np.array([[1.5e-4, 2.2e-6, 1.0e-7, 1.2e-7, 1.2e-3, 3.7e-3]])
    v_col = np.array([np.nan, -0.4, np.nan, 0.9, 0.2, np.nan])
    solution = solve_crossbar(G, [0.8], v_col, r_wire_row=1.0, r_wire_col=r_wire_col)
    floating = np.isnan(v_col)
    assert np.abs(solution.v_cell[0, floating]).max() <= 1e-12


def test_driven_row_with_all_cells_off_sits_at_its_source_voltage(rng):
    """A 1T1R row whose gate is off: no current, every word-line node at the source voltage."""
    G = rng.uniform(1e-6, 1e-4, (6, 5))
    G[2] = 0.0
    solution = solve_crossbar(G, np.full(6, 0.4), np.zeros(5), r_source=5.0, r_sense=5.0,
                              r_wire_row=1.0, r_wire_col=1.0)
    assert abs(solution.i_row[2]) < 1e-12 * np.abs(solution.i_row).max()
    np.testing.assert_allclose(solution.v_word[2], 0.4, rtol=1e-12)


def test_ideal_lines_make_every_node_of_a_line_equal(rng):
    G = rng.uniform(1e-5, 1e-3, (9, 8))
    solution = solve_crossbar(G, rng.uniform(0, 1, 9), np.zeros(8), r_source=100.0,
                              r_sense=50.0)
    np.testing.assert_array_equal(solution.v_word, solution.v_word[:, :1].repeat(8, axis=1))
    np.testing.assert_array_equal(solution.v_bit, solution.v_bit[-1:].repeat(9, axis=0))


def test_warm_start_reaches_the_same_answer_in_fewer_iterations(rng):
    G = rng.uniform(1e-5, 1e-3, (48, 48))  # kappa ~ 5: several iterations from scratch
    v_row = rng.uniform(0, 0.3, (4, 48))
    kwargs = dict(r_source=1.0, r_sense=1.0, r_wire_row=2.0, r_wire_col=2.0)
    first = solve_crossbar(G, v_row, np.zeros(48), **kwargs)
    again = solve_crossbar(G, v_row, np.zeros(48), warm_start=first, **kwargs)
    assert again.iterations == 0
    assert relative_deviation(again, first) < 1e-12
    G[10, 20] *= 1.5  # one programming pulse later
    cold = solve_crossbar(G, v_row, np.zeros(48), **kwargs)
    warm = solve_crossbar(G, v_row, np.zeros(48), warm_start=first, **kwargs)
    assert relative_deviation(warm, cold) < 1e-10
    assert warm.iterations < cold.iterations


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        (dict(G=-np.ones((2, 2))), "G"),
        (dict(G=np.full((2, 2), np.nan)), "G"),
        (dict(v_row=[np.inf, 0.0]), "v_row"),
        (dict(v_col=[0.0, 0.0, 0.0]), "v_col"),
        (dict(r_source=-1.0), "r_source"),
        (dict(r_sense=[1.0, 2.0, 3.0]), "r_sense"),
        (dict(r_wire_row=np.nan), "r_wire_row"),
        (dict(r_wire_col=[1.0, 1.0]), "r_wire_col"),
    ],
)
def test_invalid_inputs_raise_naming_the_field(kwargs, field):
    arguments = dict(G=np.ones((2, 2)) * 1e-5, v_row=[0.1, 0.2], v_col=[0.0, 0.0])
    arguments.update(kwargs)
    G = arguments.pop("G")
    with pytest.raises(ValueError, match=field):
        solve_crossbar(G, arguments.pop("v_row"), arguments.pop("v_col"), **arguments)


def test_warm_start_of_another_shape_is_rejected():
    G = np.full((3, 3), 1e-5)
    previous = solve_crossbar(G, np.ones((2, 3)), np.zeros(3), r_wire_row=1.0)
    with pytest.raises(ValueError, match="warm_start"):
        solve_crossbar(G, np.ones(3), np.zeros(3), r_wire_row=1.0, warm_start=previous)
