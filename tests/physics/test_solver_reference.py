"""solve_crossbar against the direct sparse (SuperLU) solve of the same nodal network."""

import numpy as np
import pytest
from solution_checks import relative_deviation

from xbarlab.physics.nodal import solve_crossbar_nodal
from xbarlab.physics.solver import solve_crossbar

TOLERANCE = 1e-9  # the solver's contract: every output within 1e-9 of the direct solve


def random_inputs(rng, m, n, batch, floating_fraction):
    v_row = rng.uniform(0.0, 1.0, (batch, m))
    v_col = rng.uniform(-0.1, 0.1, (batch, n))
    v_row[rng.random((batch, m)) < floating_fraction] = np.nan
    v_col[rng.random((batch, n)) < floating_fraction] = np.nan
    return v_row, v_col


@pytest.mark.parametrize("kappa", [0.01, 0.1, 1.0, 10.0, 100.0])
@pytest.mark.parametrize("floating_fraction", [0.0, 0.3])
def test_matches_direct_solve_across_ir_drop_strength(rng, kappa, floating_fraction):
    """kappa = R_wire G_max N^2 from barely resistive to dominated by the wires."""
    m, n = 40, 40
    r_wire = 1.0
    g_max = kappa / (r_wire * n * n)
    G = rng.uniform(0.01, 1.0, (m, n)) * g_max
    v_row, v_col = random_inputs(rng, m, n, 3, floating_fraction)
    kwargs = dict(r_source=1.0, r_sense=1.0, r_wire_row=r_wire, r_wire_col=r_wire)
    solution = solve_crossbar(G, v_row, v_col, **kwargs)
    assert relative_deviation(solution, solve_crossbar_nodal(G, v_row, v_col, **kwargs)) < TOLERANCE


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(r_source=0.0, r_sense=0.0, r_wire_row=1.0, r_wire_col=1.0),
        dict(r_source=0.0, r_sense=5.0, r_wire_row=2.0, r_wire_col=0.5),
        dict(r_source=5.0, r_sense=0.0, r_wire_row=0.0, r_wire_col=1.0),
        dict(r_source=5.0, r_sense=3.0, r_wire_row=1.0, r_wire_col=0.0),
        dict(r_source=0.0, r_sense=0.0, r_wire_row=0.0, r_wire_col=1.0),
        dict(r_source=2.0, r_sense=2.0, r_wire_row=0.0, r_wire_col=0.0),
        dict(r_source=0.0, r_sense=0.0, r_wire_row=0.0, r_wire_col=0.0),
    ],
    ids=["ideal-ends", "ideal-source", "ideal-rows", "ideal-columns", "ideal-rows-and-ends",
         "ideal-wires", "ideal-all-with-floating"],
)
def test_ideal_limits_match_direct_solve(rng, kwargs):
    m, n = 23, 31
    G = rng.uniform(1e-6, 1e-3, (m, n))
    G[rng.random((m, n)) < 0.1] = 0.0
    v_row, v_col = random_inputs(rng, m, n, 4, 0.25)
    solution = solve_crossbar(G, v_row, v_col, **kwargs)
    assert relative_deviation(solution, solve_crossbar_nodal(G, v_row, v_col, **kwargs)) < TOLERANCE


def test_per_line_source_and_sense_resistances(rng):
    m, n = 19, 26
    G = rng.uniform(1e-5, 1e-4, (m, n))
    r_source = rng.uniform(0.0, 50.0, m)
    r_source[::4] = 0.0
    r_sense = rng.uniform(0.0, 50.0, n)
    r_sense[::3] = 0.0
    v_row, v_col = random_inputs(rng, m, n, 2, 0.2)
    kwargs = dict(r_source=r_source, r_sense=r_sense, r_wire_row=1.5, r_wire_col=2.5)
    solution = solve_crossbar(G, v_row, v_col, **kwargs)
    assert relative_deviation(solution, solve_crossbar_nodal(G, v_row, v_col, **kwargs)) < TOLERANCE


def test_sparse_cells_with_isolated_groups(rng):
    """Many off cells: some floating lines lose every path to a driven end."""
    m, n = 30, 30
    G = rng.uniform(1e-5, 1e-4, (m, n))
    G[rng.random((m, n)) < 0.93] = 0.0
    v_row, v_col = random_inputs(rng, m, n, 5, 0.5)
    kwargs = dict(r_source=1.0, r_sense=1.0, r_wire_row=1.0, r_wire_col=1.0)
    solution = solve_crossbar(G, v_row, v_col, **kwargs)
    reference = solve_crossbar_nodal(G, v_row, v_col, **kwargs)
    assert relative_deviation(solution, reference) < TOLERANCE
    assert np.all(np.isfinite(solution.v_word)) and np.all(np.isfinite(solution.v_bit))


@pytest.mark.parametrize(("m", "n"), [(1, 1), (1, 17), (17, 1), (2, 64), (64, 3)])
def test_degenerate_shapes(rng, m, n):
    G = rng.uniform(1e-5, 1e-3, (m, n))
    v_row, v_col = random_inputs(rng, m, n, 3, 0.2)
    v_row[:, 0] = 0.5  # keep something driven
    kwargs = dict(r_source=3.0, r_sense=1.0, r_wire_row=1.0, r_wire_col=2.0)
    solution = solve_crossbar(G, v_row, v_col, **kwargs)
    assert relative_deviation(solution, solve_crossbar_nodal(G, v_row, v_col, **kwargs)) < TOLERANCE


def test_batch_equals_one_vector_at_a_time(rng):
    m, n = 20, 24
    G = rng.uniform(1e-6, 1e-4, (m, n))
    v_row, v_col = random_inputs(rng, m, n, 6, 0.3)
    kwargs = dict(r_source=1.0, r_sense=2.0, r_wire_row=1.0, r_wire_col=1.0)
    batch = solve_crossbar(G, v_row, v_col, **kwargs)
    for b in range(6):
        single = solve_crossbar(G, v_row[b], v_col[b], **kwargs)
        np.testing.assert_allclose(batch.i_col[b], single.i_col, rtol=0, atol=1e-12 * np.abs(
            single.i_col).max())
        assert single.i_row.shape == (m,)


def test_shared_column_voltages_broadcast_over_the_batch(rng):
    G = rng.uniform(1e-6, 1e-4, (10, 12))
    v_row = rng.uniform(0, 1, (4, 10))
    v_col = rng.uniform(-0.1, 0.1, 12)
    kwargs = dict(r_source=1.0, r_sense=2.0, r_wire_row=1.0, r_wire_col=1.0)
    solution = solve_crossbar(G, v_row, v_col, **kwargs)
    assert solution.i_col.shape == (4, 12) and solution.v_cell.shape == (4, 10, 12)
    reference = solve_crossbar_nodal(G, v_row, np.tile(v_col, (4, 1)), **kwargs)
    assert relative_deviation(solution, reference) < TOLERANCE


def test_large_batch_spread_over_threads_matches_direct_solve(rng, monkeypatch):
    """Several chunks per thread, each vector with its own floating pattern (threads forced
    on: this batch is below the size where they pay off)."""
    from xbarlab.physics import solver

    monkeypatch.setattr(solver, "PARALLEL_MIN_NODES", 1)
    m, n = 16, 18
    G = rng.uniform(1e-6, 1e-4, (m, n))
    v_row, v_col = random_inputs(rng, m, n, 37, 0.3)
    kwargs = dict(r_source=1.0, r_sense=2.0, r_wire_row=1.0, r_wire_col=1.5)
    solution = solve_crossbar(G, v_row, v_col, **kwargs)
    assert relative_deviation(solution, solve_crossbar_nodal(G, v_row, v_col, **kwargs)) < TOLERANCE


def test_running_out_of_iterations_raises(rng, monkeypatch):
    from xbarlab.physics import solver

    monkeypatch.setattr(solver, "MAX_ITERATIONS", 2)
    G = rng.uniform(1e-5, 1e-3, (30, 30))
    with pytest.raises(RuntimeError, match="did not converge"):
        solve_crossbar(G, rng.uniform(0, 1, 30), np.zeros(30), r_source=1.0, r_sense=1.0,
                       r_wire_row=1.0, r_wire_col=1.0)


@pytest.mark.parametrize("previous_volts", [-6e17, 1e3, 1e-150])
def test_warm_start_from_a_far_solution_gives_the_cold_answer(rng, previous_volts):
    m, n = 32, 32
    G = rng.uniform(1e-6, 1e-4, size=(m, n))
    parasitics = dict(r_source=2.0, r_sense=2.0, r_wire_row=1.0, r_wire_col=1.0)
    v_col = np.full(n, np.nan)
    v_col[0] = 0.0
    v_row = np.full(m, np.nan)
    v_row[0] = previous_volts
    previous = solve_crossbar(G, v_row, v_col, **parasitics)
    v_row[0] = 0.1
    warm = solve_crossbar(G, v_row, v_col, warm_start=previous, **parasitics)
    reference = solve_crossbar_nodal(G, v_row, v_col, **parasitics)
    assert relative_deviation(warm, reference) < 1e-9


def test_one_terminal_at_a_tiny_voltage_carries_no_current(rng):
    G = rng.uniform(1e-6, 1e-4, size=(32, 32))
    v_row = np.full(32, np.nan)
    v_col = np.full(32, np.nan)
    v_col[3] = 3.5e-155
    solution = solve_crossbar(G, v_row, v_col, r_source=2.0, r_sense=2.0, r_wire_row=1.0,
                              r_wire_col=1.0)
    assert np.abs(solution.i_col).max() <= 1e-160
    np.testing.assert_allclose(solution.v_word, 3.5e-155, rtol=1e-9)
