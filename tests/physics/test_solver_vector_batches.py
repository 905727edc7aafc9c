"""A batch with one conductance matrix per input vector: G of shape (B, m, n).

Vector b of such a batch is solved with G[b], exactly as a solve of that vector alone:
the batch only shares validation and set-up, never arithmetic, so results are bit-identical.
"""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xbarlab.physics import array as array_module
from xbarlab.physics import solver
from xbarlab.physics.array import CrossbarArray
from xbarlab.physics.presets import preset
from xbarlab.physics.solver import CrossbarSolution, solve_crossbar

FIELDS = ("i_row", "i_col", "v_cell", "v_word", "v_bit")
WIRES = {
    "distributed": dict(r_wire_row=1.0, r_wire_col=2.0),
    "lumped rows": dict(r_wire_row=0.0, r_wire_col=1.0),
    "lumped columns": dict(r_wire_row=1.5, r_wire_col=0.0),
    "lumped": dict(r_wire_row=0.0, r_wire_col=0.0),
}


def assert_loop_of_single_solves(G, v_row, v_col, warm_start=None, **kwargs):
    """The batch equals solve_crossbar(G[b], v_row[b], v_col[b]) for every b, bit for bit."""
    batch = solve_crossbar(G, v_row, v_col, warm_start=warm_start, **kwargs)
    count = G.shape[0]
    rows = np.broadcast_to(v_row, (count, G.shape[1]))
    cols = np.broadcast_to(v_col, (count, G.shape[2]))
    iterations = 0
    for b in range(count):
        one = solve_crossbar(G[b], rows[b], cols[b], warm_start=warm_start, **kwargs)
        for name in FIELDS:
            assert getattr(batch, name).shape == (count,) + getattr(one, name).shape
            assert np.array_equal(getattr(batch, name)[b], getattr(one, name)), (name, b)
        iterations = max(iterations, one.iterations)
    assert batch.iterations == iterations
    return batch


def random_case(rng, count, m, n, zero_fraction=0.0, floating_fraction=0.0):
    G = rng.uniform(0.1e-6, 100e-6, (count, m, n))
    G[rng.random(G.shape) < zero_fraction] = 0.0
    v_row = rng.uniform(-1.0, 1.0, (count, m))
    v_col = rng.uniform(-0.2, 0.2, (count, n))
    v_row[rng.random(v_row.shape) < floating_fraction] = np.nan
    v_col[rng.random(v_col.shape) < floating_fraction] = np.nan
    return G, v_row, v_col


@pytest.mark.parametrize("wires", WIRES.values(), ids=WIRES.keys())
def test_per_vector_conductances_equal_single_solves(rng, wires):
    G, v_row, v_col = random_case(rng, 12, 9, 7, zero_fraction=0.3, floating_fraction=0.2)
    batch = assert_loop_of_single_solves(G, v_row, v_col, r_source=2.0, r_sense=3.0, **wires)
    assert batch.iterations > 0


@pytest.mark.parametrize("wires", WIRES.values(), ids=WIRES.keys())
def test_zero_end_resistances_and_ideal_networks(rng, wires):
    G, v_row, v_col = random_case(rng, 6, 5, 8)
    r_source = np.array([0.0, 1.0, 0.0, 2.0, 0.0])
    assert_loop_of_single_solves(G, v_row, v_col, r_source=r_source, r_sense=0.0, **wires)
    # every resistance 0: currents are the ideal products, vector by vector
    ideal = assert_loop_of_single_solves(G, v_row, v_col)
    expected = np.einsum("bi,bij->bj", v_row, G) - v_col * G.sum(axis=1)
    np.testing.assert_allclose(ideal.i_col, expected, rtol=1e-12, atol=1e-18)


def test_floating_lines_and_isolated_groups_differ_between_matrices(rng):
    # The cells that are zero differ from matrix to matrix, so a line is cut off from every
    # driven end in some vectors only.
    G, v_row, v_col = random_case(rng, 10, 6, 6, zero_fraction=0.6, floating_fraction=0.4)
    G[3] = 0.0  # one matrix with every cell open: no current anywhere
    G[4, 2, :] = 0.0
    G[4, :, 1] = 0.0
    batch = assert_loop_of_single_solves(G, v_row, v_col, r_source=1.0, r_sense=1.0,
                                         r_wire_row=1.0, r_wire_col=1.0)
    assert not batch.i_row[3].any() and not batch.i_col[3].any()
    # the same open cells in every matrix (a gate, or read noise on a fixed pattern)
    G[:] = G[4] * rng.uniform(0.9, 1.1, G.shape)
    assert_loop_of_single_solves(G, v_row, v_col, r_source=1.0, r_sense=1.0,
                                 r_wire_row=1.0, r_wire_col=1.0)


def test_unbatched_inputs_serve_every_matrix_and_warm_starts(rng):
    G, v_row, v_col = random_case(rng, 5, 4, 6, zero_fraction=0.1)
    kwargs = dict(r_source=1.0, r_sense=2.0, r_wire_row=1.0, r_wire_col=1.0)
    assert_loop_of_single_solves(G, v_row[0], v_col[0], **kwargs)
    assert_loop_of_single_solves(G, v_row, v_col[0], **kwargs)
    assert_loop_of_single_solves(G, v_row[0], v_col, **kwargs)
    previous = solve_crossbar(G[0] * 1.2, v_row[0], v_col[0], **kwargs)
    assert_loop_of_single_solves(G, v_row, v_col, warm_start=previous, **kwargs)  # one start
    starts = solve_crossbar(G * 0.9, v_row, v_col, **kwargs)
    batch = solve_crossbar(G, v_row, v_col, warm_start=starts, **kwargs)  # one per vector
    for b in range(5):
        one = solve_crossbar(G[b], v_row[b], v_col[b],
                             warm_start=CrossbarSolution(starts.i_row[b], starts.i_col[b],
                                                         starts.v_cell[b], starts.v_word[b],
                                                         starts.v_bit[b], 0), **kwargs)
        assert np.array_equal(batch.i_col[b], one.i_col)


def test_batches_spread_over_threads_give_the_same_answers(rng, monkeypatch):
    G, v_row, v_col = random_case(rng, 40, 8, 8, zero_fraction=0.1, floating_fraction=0.1)
    kwargs = dict(r_source=1.0, r_sense=1.0, r_wire_row=1.0, r_wire_col=1.0)
    serial = solve_crossbar(G, v_row, v_col, **kwargs)
    monkeypatch.setattr(solver, "PARALLEL_MIN_NODES", 1)  # every batch on every thread
    spread = solve_crossbar(G, v_row, v_col, **kwargs)
    for name in FIELDS:
        assert np.array_equal(getattr(serial, name), getattr(spread, name))


@settings(max_examples=30, deadline=None, derandomize=True)
@given(
    count=st.integers(1, 5),
    m=st.integers(1, 5),
    n=st.integers(1, 5),
    wires=st.sampled_from(list(WIRES.values())),
    r_end=st.sampled_from([0.0, 0.5, 3.0]),
    zero_fraction=st.sampled_from([0.0, 0.3, 0.8]),
    floating_fraction=st.sampled_from([0.0, 0.3]),
    seed=st.integers(0, 2**16),
)
def test_property_per_vector_batch_is_a_loop_of_single_solves(
    count, m, n, wires, r_end, zero_fraction, floating_fraction, seed
):
    rng = np.random.default_rng(seed)
    G, v_row, v_col = random_case(rng, count, m, n, zero_fraction, floating_fraction)
    assert_loop_of_single_solves(G, v_row, v_col, r_source=r_end, r_sense=1.0 - r_end / 3,
                                 **wires)


@pytest.mark.parametrize(
    ("G_shape", "v_row_shape", "v_col_shape", "match"),
    [
        ((3, 4, 5), (2, 4), (5,), r"v_row must have shape \(4,\) or \(3, 4\) to match G"),
        ((3, 4, 5), (4,), (1, 5), r"v_col must have shape \(5,\) or \(3, 5\) to match G"),
        ((3, 4, 5), (3, 5), (5,), r"v_row must have shape \(4,\) or \(B, 4\)"),
        ((3, 4, 5), (3, 4), (3, 4), r"v_col must have shape \(5,\) or \(B, 5\)"),
        ((0, 4, 5), (4,), (5,), r"G must be a non-empty \(m, n\) array, or \(B, m, n\)"),
        ((2, 3, 4, 5), (4,), (5,), r"G must be .*\(B, m, n\).*got shape \(2, 3, 4, 5\)"),
    ],
)
def test_shape_errors_name_the_field_and_the_allowed_shapes(G_shape, v_row_shape, v_col_shape,
                                                           match):
    with pytest.raises(ValueError, match=match):
        solve_crossbar(np.full(G_shape, 1e-5), np.zeros(v_row_shape), np.zeros(v_col_shape),
                       r_source=1.0)


def test_warm_start_of_another_shape_is_refused():
    G = np.full((3, 4, 5), 1e-5)
    other = solve_crossbar(np.full((2, 4, 5), 1e-5), np.ones(4), np.zeros(5), r_source=1.0)
    with pytest.raises(ValueError, match=r"warm_start .* needs \(4, 5\) or \(3, 4, 5\)"):
        solve_crossbar(G, np.ones(4), np.zeros(5), r_source=1.0, warm_start=other)


def test_invalid_conductances_are_refused_in_any_matrix():
    G = np.full((3, 2, 2), 1e-5)
    G[2, 1, 0] = -1e-6
    with pytest.raises(ValueError, match="G must be >= 0"):
        solve_crossbar(G, np.ones(2), np.zeros(2), r_source=1.0)
    G[2, 1, 0] = np.nan
    with pytest.raises(ValueError, match="G must be finite"):
        solve_crossbar(G, np.ones(2), np.zeros(2), r_source=1.0)


# --------------------------------------------------------------------------- the array


@pytest.mark.parametrize("one_transistor", [False, True])
def test_noisy_batch_read_is_one_solve_of_per_vector_matrices(monkeypatch, one_transistor):
    arr = CrossbarArray(5, 4, "analog", seed=3, one_transistor=one_transistor)
    arr.set_state(np.random.default_rng(1).random((5, 4)))
    single = arr.copy()
    gate = np.array([True, False, True, True, False]) if one_transistor else None
    calls = []

    def counted(G, *args, **kwargs):
        calls.append(np.shape(G))
        return solve_crossbar(G, *args, **kwargs)

    monkeypatch.setattr(array_module, "solve_crossbar", counted)
    v = np.random.default_rng(2).uniform(0.0, 0.2, (6, 5))
    sol = arr.solve(v, np.zeros(4), r_source=1.0, r_sense=1.0, gate=gate, noise_per_vector=True)
    assert calls == [(6, 5, 4)]  # one call, a matrix per vector
    for k in range(6):
        one = single.solve(v[k], np.zeros(4), r_source=1.0, r_sense=1.0, gate=gate)
        np.testing.assert_allclose(sol.i_col[k], one.i_col, rtol=1e-12, atol=0)
        np.testing.assert_allclose(sol.v_cell[k], one.v_cell, rtol=1e-12, atol=1e-15)
    if one_transistor:
        assert not sol.i_row[:, [1, 4]].any()
    # the next single read starts from the batch's last vector, as after single reads
    after = arr.solve(v[0], np.zeros(4), r_source=1.0, r_sense=1.0, gate=gate)
    again = single.solve(v[0], np.zeros(4), r_source=1.0, r_sense=1.0, gate=gate)
    np.testing.assert_allclose(after.i_col, again.i_col, rtol=1e-12, atol=0)


def test_nonlinear_noisy_batch_still_reads_vector_by_vector():
    arr = CrossbarArray(4, 3, replace(preset("analog"), iv_v0=0.1), seed=5)
    arr.set_state(0.5)
    single = arr.copy()
    v = np.random.default_rng(6).uniform(0.0, 0.3, (4, 4))
    sol = arr.solve(v, np.zeros(3), r_source=1.0, r_sense=1.0, noise_per_vector=True)
    for k in range(4):
        one = single.solve(v[k], np.zeros(3), r_source=1.0, r_sense=1.0)
        assert np.array_equal(sol.i_col[k], one.i_col)
