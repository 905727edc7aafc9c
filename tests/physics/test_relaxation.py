"""Post-programming relaxation: cited spread at 1 s, time-driven, bounded, seeded."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xbarlab.physics.array import CrossbarArray
from xbarlab.physics.device import (
    DevicePopulation,
    kernel_constants,
    pulse_cells,
    relax_cells,
    soft_bound_inverse,
)
from xbarlab.physics.presets import ANALOG, BINARY, HIGH_R

# aihwkit ReRamWan2022NoiseModel, 1 s after programming: sigma in µS at g_max = 40 µS.
WAN_1S_US = [0.348, 16.030, -43.853, 45.393, -16.815]

# Analog device with no other randomness: every cell is programmed to exactly the same state.
PLAIN_ANALOG = dataclasses.replace(ANALOG, c2c_sigma=0.0, d2d_sigma=0.0)


def ideal_array(params, size=100, seed=0):
    """Array without wire resistance or defects: every cell sees v_row - v_col exactly."""
    return CrossbarArray(size, size, params, seed=seed, defects=False, r_wire_row=0.0,
                         r_wire_col=0.0)


FULL_SWITCH = (2.0, 1e-6)  # 101.6 reference pulses: across the whole range either way


def program_all(arr, w0):
    """Program every cell to w0 the way a cell is programmed from scratch: settled at the near
    bound, switched fully to the far one, then one reference-amplitude pulse back to w0 (a
    noiseless cell lands exactly there). Returns the time the two pulses took (s)."""
    k = kernel_constants(arr.params)
    if w0 >= 0.5:  # far bound: HRS; come back up with SET
        start, switch, v = 1.0, -FULL_SWITCH[0], arr.params.v_set_ref
        width = soft_bound_inverse(w0, k.a_set) * k.levels_set * k.t_ref
    else:
        start, switch, v = 0.0, FULL_SWITCH[0], arr.params.v_reset_ref
        width = soft_bound_inverse(1.0 - w0, k.a_reset) * k.levels_reset * k.t_ref
    arr.set_state(start)
    arr.apply(np.full(arr.rows, switch), np.zeros(arr.cols), FULL_SWITCH[1])
    if arr.params.c2c_sigma == 0.0:
        assert np.all(arr.state() == 1.0 - start)
    arr.apply(np.full(arr.rows, v), np.zeros(arr.cols), width)
    return FULL_SWITCH[1] + width


@pytest.mark.parametrize("w0", [0.2, 0.28, 0.5, 0.8])  # >= 3.9 sigma from both bounds
def test_spread_one_second_after_programming_is_the_cited_polynomial(w0):
    arr = ideal_array(PLAIN_ANALOG)
    program_all(arr, w0)
    g0 = arr.conductance()
    # all cells programmed alike, but for the 1e-5 of the switch's relaxation carried out
    # during the second pulse
    assert np.ptp(g0) < 1e-5 * g0.mean()
    arr.advance_time(1.0)
    delta = (arr.conductance() - g0).ravel()
    n = delta.size
    sigma = np.polynomial.polynomial.polyval(g0[0, 0] / 40e-6, WAN_1S_US) * 1e-6
    assert delta.std() == pytest.approx(sigma, rel=5 * math.sqrt(0.5 / n))
    assert abs(delta.mean()) < 5 * sigma / math.sqrt(n)


def test_spread_follows_the_polynomial_per_cell_with_device_spread_and_noise():
    """Full analog preset (d2d spread, c2c noise): relaxation / sigma(g_programmed) is N(0, 1)
    for the cells that landed away from the bounds."""
    arr = ideal_array(ANALOG, size=120, seed=3)
    program_all(arr, 0.4)
    g0 = arr.conductance()
    w = arr.state()
    keep = (w >= 0.25) & (w <= 0.75)
    assert keep.sum() > 8000
    arr.advance_time(1.0)
    z = ((arr.conductance() - g0) / ANALOG.relaxation_sigma(g0))[keep]
    assert abs(z.mean()) < 5 / math.sqrt(z.size)
    assert z.std() == pytest.approx(1.0, rel=5 * math.sqrt(0.5 / z.size))


def test_cells_at_a_bound_relax_inward_only():
    arr = ideal_array(PLAIN_ANALOG, size=40)
    arr.set_state(0.0)
    arr.apply(np.full(40, FULL_SWITCH[0]), np.zeros(40), FULL_SWITCH[1])  # all to g_max
    g_lo, g_hi = arr.bounds()
    assert np.array_equal(arr.conductance(), g_hi)
    arr.advance_time(1.0)
    drop = g_hi - arr.conductance()
    assert np.all(drop >= 0.0)
    assert 0.4 < np.mean(drop > 0.0) < 0.6  # the half that drew an outward offset stays put
    # a cell sitting exactly at the HRS bound after a full RESET relaxes upward only
    arr.apply(np.full(40, -2.0), np.zeros(40), 1e-6)
    assert np.array_equal(arr.conductance(), g_lo)
    arr.advance_time(1.0)
    assert np.all(arr.conductance() >= g_lo) and np.any(arr.conductance() > g_lo)


def test_a_verify_read_right_after_the_pulse_sees_almost_none_of_it():
    arr = ideal_array(PLAIN_ANALOG, size=40)
    program_all(arr, 0.5)
    g0 = arr.conductance()
    sigma = ANALOG.relaxation_sigma(g0[0, 0])
    arr.advance_time(10e-6)  # the time of a verify read
    assert np.abs(arr.conductance() - g0).max() < 1e-3 * sigma
    arr.advance_time(1.0)
    assert np.abs(arr.conductance() - g0).max() > 2 * sigma
    # after many time constants the cells have settled where relaxed_conductance() said
    arr.advance_time(100 * ANALOG.relax_tau)
    assert np.allclose(arr.conductance(), arr.relaxed_conductance(), rtol=1e-12, atol=0)
    settled = arr.conductance()
    arr.advance_time(1e4)
    assert np.allclose(arr.conductance(), settled, rtol=1e-12, atol=0)


def test_no_time_no_relaxation():
    arr = ideal_array(ANALOG, size=20)
    width = program_all(arr, 0.5)
    g0 = arr.conductance()
    assert not np.array_equal(arr.relaxed_conductance(), g0)  # relaxation is pending
    arr.advance_time(0.0)
    arr.solve(np.full(20, 0.2), np.zeros(20))  # reads take no time
    arr.apply(np.full(20, 1.3), np.zeros(20), 0.0)  # nor does a zero-width pulse
    arr.apply(np.full(20, 0.3), np.zeros(20), 0.0)
    assert np.array_equal(arr.conductance(), g0)
    assert arr.elapsed_time == width


def test_settled_cells_never_relax():
    arr = ideal_array(ANALOG, size=20)
    arr.set_state(np.random.default_rng(1).random((20, 20)))
    g0 = arr.conductance()
    arr.advance_time(10.0)
    arr.apply(np.full(20, 0.4), np.zeros(20), 1.0)  # below the kinetics floor: nothing moves
    assert np.array_equal(arr.conductance(), g0)
    assert arr.elapsed_time == 11.0


def test_time_split_into_parts_gives_the_same_relaxation():
    whole, parts = ideal_array(ANALOG, size=30, seed=4), ideal_array(ANALOG, size=30, seed=4)
    program_all(whole, 0.3)
    program_all(parts, 0.3)
    whole.advance_time(0.25)
    for dt in (0.01, 0.04, 0.2):
        parts.advance_time(dt)
    assert np.allclose(whole.conductance(), parts.conductance(), rtol=1e-12, atol=0)
    assert whole.elapsed_time == pytest.approx(parts.elapsed_time, rel=1e-15)


def test_a_pulse_updates_the_relaxation_of_the_cells_it_moves_only():
    arr = ideal_array(ANALOG, size=4)
    program_all(arr, 0.3)
    target = arr.relaxed_conductance()
    v_row = np.array([1.3, 0.433, 0.433, 0.433])  # V/3 scheme on cell (0, 0)
    v_col = np.array([0.0, 0.867, 0.867, 0.867])
    arr.apply(v_row, v_col, 100e-9)
    after = arr.relaxed_conductance()
    others = np.ones((4, 4), bool)
    others[0, 0] = False
    assert after[0, 0] != target[0, 0]
    assert np.allclose(after[others], target[others], rtol=1e-9, atol=0)  # 100 ns of relaxing


def test_same_seed_same_relaxation_different_seed_differs():
    def run(seed):
        arr = ideal_array(ANALOG, size=8, seed=seed)
        for k in range(3):
            program_all(arr, 0.2 * (k + 1))
            arr.advance_time(0.05 * (k + 1))
        return arr.conductance()

    assert np.array_equal(run(5), run(5))
    assert not np.array_equal(run(5), run(6))


def test_snapshot_restore_and_copy_carry_pending_relaxation_and_time():
    arr = ideal_array(ANALOG, size=6, seed=2)
    width = program_all(arr, 0.5)
    snap = arr.snapshot()
    twin = arr.copy()
    arr.advance_time(1.0)
    g1 = arr.conductance()
    arr.restore(snap)
    assert arr.elapsed_time == width
    arr.advance_time(1.0)
    twin.advance_time(1.0)
    assert np.array_equal(arr.conductance(), g1) and np.array_equal(twin.conductance(), g1)


def test_set_conductance_settles_the_cells():
    arr = ideal_array(ANALOG, size=6)
    program_all(arr, 0.5)
    g_lo, g_hi = arr.bounds()
    arr.set_conductance(g_lo + 0.6 * (g_hi - g_lo))
    g0 = arr.conductance()
    arr.advance_time(5.0)
    assert np.array_equal(arr.conductance(), g0)


def test_relaxation_can_be_switched_off():
    arr = ideal_array(dataclasses.replace(ANALOG, relax_poly=(0.0,)), size=10)
    program_all(arr, 0.5)
    g0 = arr.conductance()
    arr.advance_time(10.0)
    assert np.array_equal(arr.conductance(), g0)


def test_invalid_time_raises():
    arr = ideal_array(ANALOG, size=2)
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="seconds .*allowed range"):
            arr.advance_time(bad)
    with pytest.raises(ValueError, match="seconds"):
        relax_cells(np.zeros(2), np.zeros(2), -1e-9, 0.1)


# A device whose relaxation spread is as large as the validator allows (50 % of g_max).
WILD = dataclasses.replace(ANALOG, relax_poly=(0.5,), relax_tau=1e-3)


@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 3), st.floats(-2.5, 2.5),
                  st.floats(-8.0, -5.0), st.floats(-9.0, 3.0)),
        min_size=1, max_size=6,
    ),
    which=st.sampled_from([WILD, ANALOG, BINARY, HIGH_R]),
    seed=st.integers(0, 1000),
)
def test_relaxation_never_crosses_the_cell_bounds(steps, which, seed):
    arr = CrossbarArray(4, 4, which, seed=seed, r_wire_row=2.0, r_wire_col=2.0)
    g_lo, g_hi = arr.bounds()
    for i, j, v, log_width, log_wait in steps:
        v_row = np.full(4, v / 2)
        v_col = np.full(4, v / 2)
        v_row[i], v_col[j] = v, 0.0
        arr.apply(v_row, v_col, 10.0**log_width, r_source=10.0)
        for later in (arr.relaxed_conductance(), arr.conductance()):
            assert np.all((later >= g_lo) & (later <= g_hi))
        arr.advance_time(10.0**log_wait)
        g = arr.conductance()
        assert np.all((g >= g_lo) & (g <= g_hi))
        w = arr.state()
        assert np.all((w >= 0.0) & (w <= 1.0))


# ---------------------------------------------------------------- relaxation against the move

N_CELLS = 20000


class FlatCells:
    """n identical noiseless analog cells at the kernel level, each pulsed at its own voltage."""

    def __init__(self, w0, n=N_CELLS, params=PLAIN_ANALOG):
        self.params = params
        self.k = kernel_constants(params)
        self.pop = DevicePopulation(
            g_lo=np.full(n, params.g_min), g_hi=np.full(n, params.g_max),
            g_pristine=np.full(n, params.pristine_conductance),
            defects=np.zeros(n, dtype=np.int8))
        self.w = np.full(n, float(w0))
        self.formed = np.ones(n, bool)
        self.progress = np.ones(n)
        self.pending = np.zeros(n)
        self.rng = np.random.default_rng(17)

    def move_to(self, target):
        """One t_ref pulse per cell whose amplitude lands it exactly at ``target`` (no noise)."""
        k, w = self.k, self.w
        target = np.broadcast_to(target, w.shape)
        x = np.array([soft_bound_inverse(t, k.a_set) - soft_bound_inverse(s, k.a_set)
                      for s, t in zip(w, target, strict=True)]) * k.levels_set
        y = np.array([soft_bound_inverse(1 - t, k.a_reset) - soft_bound_inverse(1 - s, k.a_reset)
                      for s, t in zip(w, target, strict=True)]) * k.levels_reset
        # invert pulses = sinh(v / v_k) / sinh(v_ref / v_k) for the amplitude
        up = k.v_efold_set * np.arcsinh(np.maximum(x, 1e-300) * np.sinh(k.v_set_ref
                                                                        / k.v_efold_set))
        down = -k.v_efold_reset * np.arcsinh(np.maximum(y, 1e-300) * np.sinh(
            -k.v_reset_ref / k.v_efold_reset))
        v = np.where(target > w, up, 0.0)
        v = np.where(target < w, down, v)
        pulse_cells(self.w, self.formed, self.progress, self.pop, v, k.t_ref, k,
                    i_compliance=None, rng=self.rng, relax_pending=self.pending)

    def settle(self):
        relax_cells(self.w, self.pending, 100 * self.params.relax_tau, self.params.relax_tau)

    def sigma_w(self, w):
        """Cited 1 s spread at state w, in units of the range (the kernel's scale included)."""
        g = self.params.g_min + w * (self.params.g_max - self.params.g_min)
        return float(self.params.relaxation_sigma(g)) * self.k.relax_scale / (
            self.params.g_max - self.params.g_min)


def fresh(move):
    """Fraction of the cited spread a move adds to a settled cell."""
    return math.sqrt(-math.expm1(-move / PLAIN_ANALOG.relax_move_scale))


@pytest.mark.parametrize("move", [0.01, 0.05, 0.2])
def test_a_small_move_of_a_settled_cell_leaves_a_proportionally_small_spread(move):
    """sigma_move = sigma(g) sqrt(1 - exp(-d / relax_move_scale)) ~ sigma(g) sqrt(d / scale)."""
    cells = FlatCells(0.28)
    cells.move_to(0.28 + move)
    assert np.allclose(cells.w, 0.28 + move, rtol=0, atol=1e-12)
    expected = cells.sigma_w(0.28 + move) * fresh(move)
    assert expected < cells.sigma_w(0.28 + move) * math.sqrt(
        move / PLAIN_ANALOG.relax_move_scale)
    assert cells.pending.std() == pytest.approx(expected, rel=5 * math.sqrt(0.5 / N_CELLS))
    assert abs(cells.pending.mean()) < 5 * expected / math.sqrt(N_CELLS)


@pytest.mark.parametrize("move", [0.05, 0.5])
def test_a_move_keeps_part_of_the_pending_relaxation_rescaled_to_the_new_conductance(move):
    """z' = exp(-d / 2 scale) z + sqrt(1 - exp(-d / scale)) xi, with p = s sigma_w(w) z."""
    cells = FlatCells(0.8)
    cells.pending[:] = 0.03
    cells.move_to(0.8 - move)
    z_before = 0.03 / cells.sigma_w(0.8)
    keep = math.exp(-0.5 * move / PLAIN_ANALOG.relax_move_scale)
    sigma = cells.sigma_w(0.8 - move)
    spread = sigma * fresh(move)
    assert abs(cells.pending.mean() - keep * z_before * sigma) < 5 * spread / math.sqrt(N_CELLS)
    assert cells.pending.std() == pytest.approx(spread, rel=5 * math.sqrt(0.5 / N_CELLS))


def test_a_move_made_in_two_parts_relaxes_like_the_whole_move():
    whole, parts = FlatCells(0.28), FlatCells(0.28)
    whole.move_to(0.36)
    parts.move_to(0.31)
    parts.move_to(0.36)
    expected = whole.sigma_w(0.36) * fresh(0.08)
    for cells in (whole, parts):
        assert cells.pending.std() == pytest.approx(expected, rel=5 * math.sqrt(0.5 / N_CELLS))


def test_many_small_moves_adding_up_to_a_switching_event_give_the_cited_spread():
    """Variance-preserving: 100 moves of 0.04 back and forth (20 x relax_move_scale in all)
    leave the cited spread at the final conductance, as after an iterative write-verify."""
    cells = FlatCells(0.28)
    for k in range(100):
        cells.move_to(0.32 if k % 2 == 0 else 0.28)
    assert cells.pending.std() == pytest.approx(cells.sigma_w(0.28),
                                                rel=5 * math.sqrt(0.5 / N_CELLS))


def test_corrections_after_relaxation_converge():
    """Program by a switching event, let it relax, correct every cell back onto its target
    with one exact pulse, relax again, ...: each correction moves the cell only by its relaxed
    error, so the spread left after relaxation shrinks round by round, far below sigma(g)
    (here at the peak of the Wan 2022 polynomial, the worst level)."""
    cells = FlatCells(0.0)
    cells.move_to(1.0)  # a full SET, then a RESET across 0.72 of the range to the level
    cells.move_to(0.28)
    sigma = cells.sigma_w(0.28)
    spreads = []
    for _ in range(5):
        cells.settle()
        error = cells.w - 0.28
        spreads.append(error.std() / sigma)
        assert abs(error.mean()) < 5 * spreads[-1] * sigma / math.sqrt(N_CELLS)
        cells.move_to(0.28)
        assert np.allclose(cells.w, 0.28, rtol=0, atol=1e-12)
    cells.settle()
    spreads.append((cells.w - 0.28).std() / sigma)
    assert spreads[0] == pytest.approx(1.0, rel=5 * math.sqrt(0.5 / N_CELLS))
    assert all(b < a for a, b in zip(spreads[:4], spreads[1:4], strict=False))
    assert spreads[-1] < 0.3, spreads


@pytest.mark.parametrize("spread", [0.0, 0.5])
def test_a_spread_of_time_constants_is_lognormal_about_relax_tau(spread):
    """With ``relax_tau_spread`` each cell relaxes exponentially with a time constant of its
    own, lognormal about relax_tau: from one cell's states right after programming, at t and
    once settled, its fraction relaxed f gives tau = t / -ln(1 - f); the logs of those are
    normal with mean ln(relax_tau) and standard deviation `spread` (0: every cell alike)."""
    params = dataclasses.replace(PLAIN_ANALOG, relax_tau_spread=spread)
    arr = ideal_array(params, seed=3)
    program_all(arr, 0.5)
    w0 = arr.state()
    settled = arr.copy()
    settled.advance_time(1e4 * params.relax_tau * math.exp(6 * spread))
    t = params.relax_tau
    arr.advance_time(t)
    total, done = settled.state() - w0, arr.state() - w0
    moving = (np.abs(total) > 1e-6) & (settled.state() > 0) & (settled.state() < 1)
    fraction = done[moving] / total[moving]
    log_tau = np.log(t / -np.log1p(-fraction))
    assert moving.sum() > 5000
    if spread == 0.0:
        np.testing.assert_allclose(log_tau, math.log(params.relax_tau), atol=1e-6)
    else:
        n = log_tau.size
        assert log_tau.mean() == pytest.approx(math.log(params.relax_tau), abs=4 * spread / n**0.5)
        assert log_tau.std() == pytest.approx(spread, abs=4 * spread / (2 * n) ** 0.5)


def test_the_relaxation_spread_is_a_bench_option(tmp_path):
    """``[sim] relaxation_spread`` gives the World's chip that spread (and nothing else of it
    changes: the same cells, the same population)."""
    from xbarlab.sim_instruments.world import World

    from xbarlab.benches import with_sim
    from xbarlab.benchfile import load_bench, parse_bench

    text = load_bench("analog").text
    plain = World(parse_bench(text))
    spread = World(parse_bench(with_sim(text, relaxation_spread=0.5)))
    assert spread.array.params.relax_tau_spread == 0.5
    assert plain.array.params.relax_tau_spread == 0.0
    np.testing.assert_array_equal(plain.array.bounds()[0], spread.array.bounds()[0])
