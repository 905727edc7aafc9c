"""CrossbarArray: reads, pulses through the circuit, half-select, IR drop, 1T1R, energy, seeds."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xbarlab.physics.array import CrossbarArray
from xbarlab.physics.device import (
    HARDER_READ_NOISE,
    STUCK_OFF,
    STUCK_ON,
    cell_current,
    nonlinearity_to_a,
)
from xbarlab.physics.presets import ANALOG, BINARY, HIGH_R

QUIET_ANALOG = dataclasses.replace(ANALOG, c2c_sigma=0.0)
QUIET_BINARY = dataclasses.replace(BINARY, c2c_sigma=0.0)
HARDER = dataclasses.replace(ANALOG, **HARDER_READ_NOISE)  # the optional read noise


def exact_compliance(params):
    """``params`` whose compliance stops land exactly at I_cc / V and never relax."""
    return dataclasses.replace(params, cc_sigma=0.0, relax_poly=(0.0,))


def half_select(m, n, i, j, v):
    """V/2 scheme: selected row at v, selected column at 0, every other line at v/2."""
    v_row = np.full(m, v / 2)
    v_col = np.full(n, v / 2)
    v_row[i] = v
    v_col[j] = 0.0
    return v_row, v_col


def third_select(m, n, i, j, v):
    """V/3 scheme: selected row v, selected column 0, other rows v/3, other columns 2v/3."""
    v_row = np.full(m, v / 3)
    v_col = np.full(n, 2 * v / 3)
    v_row[i] = v
    v_col[j] = 0.0
    return v_row, v_col


# ---------------------------------------------------------------- construction and inspection


def test_fresh_array_sits_in_hrs_with_defects_at_their_bounds():
    arr = CrossbarArray(40, 40, "analog", seed=5)
    g_lo, g_hi = arr.bounds()
    d = arr.defect_map()
    g = arr.conductance()
    assert np.array_equal(g[d == 0], g_lo[d == 0])
    assert np.array_equal(g[d == STUCK_ON], g_hi[d == STUCK_ON])
    assert np.array_equal(g[d == STUCK_OFF], g_lo[d == STUCK_OFF])
    assert (arr.rows, arr.cols, arr.params) == (40, 40, ANALOG)


def test_defect_map_rates_within_binomial_bounds_and_can_be_disabled():
    arr = CrossbarArray(120, 120, "binary", seed=9)
    d = arr.defect_map()
    n = d.size
    for code, p in ((STUCK_ON, 0.0175), (STUCK_OFF, 0.0904)):
        assert abs(np.sum(d == code) - n * p) < 3 * math.sqrt(n * p * (1 - p))
    assert d.dtype == np.int8
    assert not CrossbarArray(50, 50, "binary", seed=9, defects=False).defect_map().any()


def test_same_seed_same_array_different_seed_differs():
    def run(seed):
        arr = CrossbarArray(6, 6, "analog", seed=seed)
        for k in range(5):
            arr.apply(*half_select(6, 6, k, k + 1, 1.3), 100e-9)
        return arr.conductance(), arr.solve(np.full(6, 0.2), np.zeros(6)).i_col

    (g1, i1), (g2, i2), (g3, i3) = run(3), run(3), run(4)
    assert np.array_equal(g1, g2) and np.array_equal(i1, i2)
    assert not np.array_equal(g1, g3) and not np.array_equal(i1, i3)


def test_reads_do_not_change_states_or_the_programming_noise():
    a = CrossbarArray(5, 5, "analog", seed=2)
    b = CrossbarArray(5, 5, "analog", seed=2)
    for k in range(4):
        pulse = half_select(5, 5, k, 4 - k, 1.3)
        a.apply(*pulse, 100e-9)
        before = b.conductance()
        b.solve(np.full(5, 0.2), np.zeros(5))  # a read between pulses
        assert np.array_equal(b.conductance(), before)
        b.apply(*pulse, 100e-9)
    assert np.array_equal(a.conductance(), b.conductance())


@pytest.mark.parametrize("bad", [dict(rows=0), dict(cols=2.5), dict(r_wire_row=-1.0),
                                 dict(r_wire_col=float("nan")), dict(preset="ohmic")])
def test_invalid_construction_raises_naming_the_field(bad):
    kwargs = dict(rows=3, cols=3, preset="binary") | bad
    field = next(iter(bad))
    with pytest.raises(ValueError, match=field):
        CrossbarArray(**kwargs)


# ---------------------------------------------------------------- reads


def test_noiseless_read_of_an_ideal_array_is_the_matrix_product():
    arr = CrossbarArray(7, 5, "analog", seed=1, r_wire_row=0.0, r_wire_col=0.0)
    arr.set_state(np.random.default_rng(0).random((7, 5)))
    v = np.random.default_rng(1).uniform(0, 0.2, 7)
    sol = arr.solve(v, np.zeros(5), read_noise=False)
    assert np.allclose(sol.i_col, v @ arr.conductance(), rtol=1e-12, atol=0)


def noise_ratios(arr, reads: int, wait: float) -> np.ndarray:
    """ln(I / I_true) of `reads` noisy reads of a 1 x n array, `wait` seconds apart."""
    g = arr.conductance()
    out = []
    for _ in range(reads):
        out.append(np.log(arr.solve(np.array([0.2]), np.zeros(arr.cols)).i_col / (0.2 * g)))
        arr.advance_time(wait)
    return np.array(out)


def test_default_read_noise_is_one_percent_white():
    """By default: 1 % lognormal per reading, the same at every conductance, independent from
    reading to reading with no time passing."""
    arr = CrossbarArray(1, 400, "analog", seed=4, r_wire_row=0.0, r_wire_col=0.0,
                        defects=False)
    arr.set_state(np.linspace(0.0, 1.0, 400)[None, :])
    together = noise_ratios(arr, 25, 0.0) / 0.01
    n = together.size
    assert abs(together.mean()) < 5 / math.sqrt(n)
    assert together.std() == pytest.approx(1.0, rel=5 * math.sqrt(0.5 / n))
    assert together.mean(axis=0).std() == pytest.approx(math.sqrt(1 / 25), rel=0.2)


def test_harder_read_noise_grows_toward_the_hrs_and_half_of_it_is_1_over_f():
    """sigma(g) = 1 % (g_max / g)^0.5: written out here, not the model's function. Reads far
    apart in time (10^3 s, past the slowest 10 s component) are independent with all of it;
    reads in one instant share the 1/f half, so only the white half varies between them."""
    arr = CrossbarArray(1, 400, HARDER, seed=4, r_wire_row=0.0, r_wire_col=0.0,
                        defects=False)
    arr.set_state(np.linspace(0.0, 1.0, 400)[None, :])
    g = arr.conductance()
    sigma = 0.01 * np.sqrt(40e-6 / g)
    apart = noise_ratios(arr, 25, 1e3) / sigma
    n = apart.size
    assert abs(apart.mean()) < 5 / math.sqrt(n)
    assert apart.std() == pytest.approx(1.0, rel=5 * math.sqrt(0.5 / n))
    together = noise_ratios(arr, 25, 0.0) / sigma
    within = together - together.mean(axis=0)  # the shared 1/f part removed
    assert within.std() * math.sqrt(25 / 24) == pytest.approx(math.sqrt(0.5),
                                                             rel=5 * math.sqrt(0.5 / n))
    assert together.mean(axis=0).std() == pytest.approx(math.sqrt(0.5 + 0.5 / 25), rel=0.2)
    assert np.array_equal(arr.conductance(), g)


def test_1_over_f_noise_decorrelates_at_its_time_constants():
    """The 1/f part of two readings dt apart correlates by the mean of exp(-dt / tau) over
    the four components (1e-5 ... 10 s): 1 at dt = 0, about 1/2 at 3 ms, 0 at 10^3 s."""
    arr = CrossbarArray(1, 20000, HARDER, seed=5, r_wire_row=0.0, r_wire_col=0.0,
                        defects=False)
    arr.set_state(1.0)
    sigma = 0.01 * math.sqrt(0.5)  # the 1/f part's share at g_max
    for dt in (0.0, 3e-3, 1e3):
        f = np.log1p(arr.read_noise_factors(2, interval=dt)) / sigma
        # each reading: white N(0, 1) plus 1/f N(0, 1); the white parts do not correlate
        corr = np.mean(f[0] * f[1])  # the white parts (variance 1 each) do not correlate
        expected = np.mean(np.exp(-dt / np.array([1e-5, 1e-3, 1e-1, 1e1])))
        assert corr == pytest.approx(expected, abs=0.03)


def test_solve_accepts_a_batch_of_input_vectors():
    arr = CrossbarArray(4, 3, "binary", seed=0)
    v = np.random.default_rng(2).uniform(0, 0.2, (6, 4))
    batch = arr.solve(v, np.zeros(3), read_noise=False)
    for b in range(6):
        one = arr.solve(v[b], np.zeros(3), read_noise=False)
        assert np.allclose(batch.i_col[b], one.i_col, rtol=1e-9, atol=1e-15)


def test_self_consistent_sinh_iv():
    params = dataclasses.replace(ANALOG, iv_v0=0.3)
    # ideal lines: every cell sees v_row - v_col exactly, current G V0 sinh(V/V0)
    ideal = CrossbarArray(4, 4, params, seed=1, r_wire_row=0.0, r_wire_col=0.0)
    ideal.set_state(0.8)
    v = np.array([0.1, 0.3, 0.5, 0.7])
    sol = ideal.solve(v, np.zeros(4), read_noise=False)
    expected = cell_current(ideal.conductance(), np.broadcast_to(v[:, None], (4, 4)), 0.3)
    assert np.allclose(sol.i_col, expected.sum(axis=0), rtol=1e-9)
    # with wires: each column's terminal current is the sum of its cells' sinh currents
    arr = CrossbarArray(8, 8, params, seed=1, r_wire_row=50.0, r_wire_col=50.0)
    arr.set_state(0.9)
    sol = arr.solve(np.full(8, 1.0), np.zeros(8), r_source=100.0, r_sense=100.0,
                    read_noise=False)
    i_cells = cell_current(arr.conductance(), sol.v_cell, 0.3)
    assert np.allclose(sol.i_col, i_cells.sum(axis=0), rtol=1e-8)
    assert np.allclose(sol.i_row, i_cells.sum(axis=1), rtol=1e-8)
    linear = CrossbarArray(8, 8, "analog", seed=1, r_wire_row=50.0, r_wire_col=50.0)
    linear.set_state(0.9)
    lin = linear.solve(np.full(8, 1.0), np.zeros(8), r_source=100.0, r_sense=100.0,
                       read_noise=False)
    assert np.all(sol.i_col > lin.i_col)  # sinh conducts more than its small-signal G


@pytest.mark.parametrize("v0, r_wire, r_end, volts", [(0.2, 10.0, 100.0, 1.0),
                                                       (0.1, 10.0, 0.0, 1.3),
                                                       (0.05, 50.0, 1000.0, 1.3)])
def test_sinh_iv_converges_under_strong_ir_drop(v0, r_wire, r_end, volts):
    arr = CrossbarArray(16, 16, dataclasses.replace(BINARY, iv_v0=v0), seed=1,
                        r_wire_row=r_wire, r_wire_col=r_wire)
    arr.set_state(1.0)
    sol = arr.solve(np.full(16, volts), np.zeros(16), r_source=r_end, r_sense=r_end,
                    read_noise=False)
    i_cells = cell_current(arr.conductance(), sol.v_cell, v0)
    assert np.allclose(sol.i_col, i_cells.sum(axis=0), rtol=1e-8)
    assert np.allclose(sol.i_row, i_cells.sum(axis=1), rtol=1e-8)


# ---------------------------------------------------------------- pulses through the circuit


def kinetic_move(w0, v, params):
    """State after a 100 ns pulse of cell voltage `v` from `w0`, written out from the cited
    kinetics (rate sinh(v / v_k), normalised at the reference pulse) and the NeuroSim curve."""
    up = v > 0
    v_k = np.where(up, params.v_efold_set, params.v_efold_reset)
    v_ref = np.where(up, params.v_set_ref, -params.v_reset_ref)
    pulses = np.sinh(np.abs(v) / v_k) / np.sinh(v_ref / v_k) * 100e-9 / params.t_ref
    pulses = np.where((v > params.v_set) | (v < params.v_reset), pulses, 0.0)
    levels = np.where(up, params.levels_set, params.levels_reset)
    a = np.where(up, nonlinearity_to_a(params.nl_set), nonlinearity_to_a(params.nl_reset))
    start = np.where(up, w0, 1.0 - w0)
    x = -a * np.log1p(start * np.expm1(-1.0 / a)) + pulses / levels
    moved = np.expm1(-np.minimum(x, 1.0) / a) / np.expm1(-1.0 / a)
    return np.where(up, moved, 1.0 - moved)


@pytest.mark.parametrize("params", [QUIET_BINARY, QUIET_ANALOG, HIGH_R])
def test_a_v3_pulse_moves_the_selected_cell_only(params):
    """V/3 puts 0.43 V on the unselected cells of a 1.3 V pulse: below the kinetics floor."""
    arr = CrossbarArray(3, 3, params, seed=0, defects=False)
    arr.set_state(0.2)
    arr.apply(*third_select(3, 3, 1, 2, 1.3), 100e-9)
    w = arr.state()
    assert w[1, 2] > 0.2
    others = np.ones((3, 3), bool)
    others[1, 2] = False
    assert np.all(w[others] == 0.2)


@pytest.mark.parametrize("params", [QUIET_BINARY, QUIET_ANALOG])
@pytest.mark.parametrize("volts", [1.3, -1.3, 1.8])
def test_half_selected_cells_drift_by_the_kinetics_of_the_voltage_they_see(params, volts):
    """V/2: the half-selected cells see about V/2 and move by the sinh kinetics of exactly the
    voltage the solve gives them (2.4e-7 of a level at 0.65 V, 6.4e-5 at 0.9 V); cells on
    neither selected line see 0 V and stay."""
    arr = CrossbarArray(3, 3, params, seed=0, defects=False, r_wire_row=0.0, r_wire_col=0.0)
    arr.set_state(0.5)
    result = arr.apply(*half_select(3, 3, 1, 2, volts), 100e-9)
    expected = kinetic_move(0.5, result.solution.v_cell, params)
    w = arr.state()
    half = np.zeros((3, 3), bool)
    half[1, :] = half[:, 2] = True
    half[1, 2] = False
    assert np.allclose(w, expected, rtol=0.0, atol=1e-12)
    assert np.all(np.sign(w[half] - 0.5) == np.sign(volts))  # every half-selected cell drifts
    assert np.all(w[~half & (np.arange(9).reshape(3, 3) != 5)] == 0.5)


def test_half_selected_cells_above_threshold_are_disturbed():
    """A 2 V pulse puts 1 V on half-selected cells: 8.7e-4 of a level per pulse."""
    arr = CrossbarArray(3, 3, dataclasses.replace(QUIET_BINARY, levels_set=20.0), seed=0,
                        defects=False)
    arr.apply(*half_select(3, 3, 1, 1, 2.0), 100e-9)
    w = arr.state()
    half = np.zeros((3, 3), bool)
    half[1, :] = half[:, 1] = True
    half[1, 1] = False
    assert np.all(w[half] > 0.0)  # disturbed by physics
    assert np.all(w[~half & ~np.eye(3, dtype=bool)] == 0.0)  # unselected cells see 0 V
    assert w[1, 1] > w[half].max()


def test_wire_resistance_weakens_programming_of_the_far_cell():
    def moved(r_wire):
        arr = CrossbarArray(3, 3, QUIET_ANALOG, seed=0, defects=False, r_wire_row=r_wire,
                            r_wire_col=r_wire)
        arr.set_state(0.7)
        result = arr.apply(*half_select(3, 3, 0, 2, 1.3), 100e-9)
        return arr.state()[0, 2] - 0.7, result.solution.v_cell[0, 2]

    step_ideal, v_ideal = moved(0.0)
    step_weak, v_weak = moved(2000.0)
    assert v_weak < v_ideal - 0.01  # IR drop along the lines takes part of the pulse
    assert 0 < step_weak < step_ideal


def test_ir_drop_can_push_the_selected_cell_below_threshold():
    """1.0 V at the source is above the 0.45 V kinetics floor, but the cell sees less."""
    arr = CrossbarArray(3, 3, QUIET_ANALOG, seed=0, defects=False, r_wire_row=0.0,
                        r_wire_col=0.0)
    arr.set_state(1.0)  # 40 µS cells: 25 kΩ each
    v_row, v_col = half_select(3, 3, 0, 0, 1.0)
    result = arr.apply(v_row, v_col, 100e-9, r_source=10e3, r_sense=10e3)
    assert result.solution.v_cell[0, 0] < QUIET_ANALOG.v_set
    assert np.all(arr.state() == 1.0)
    arr.set_state(0.5)
    arr.apply(v_row, v_col, 100e-9)  # the same pulse without the series resistance switches
    assert arr.state()[0, 0] > 0.5


def test_pulse_with_floating_unselected_lines_moves_cells_by_their_sneak_voltages():
    arr = CrossbarArray(4, 4, QUIET_ANALOG, seed=0, defects=False)
    arr.set_state(0.5)
    v_row = np.array([1.3, np.nan, np.nan, np.nan])
    v_col = np.array([0.0, np.nan, np.nan, np.nan])
    result = arr.apply(v_row, v_col, 100e-9)
    v = result.solution.v_cell
    w = arr.state()
    assert w[0, 0] > 0.5
    moved = w != 0.5
    assert np.array_equal(moved, (v > QUIET_ANALOG.v_set) | (v < QUIET_ANALOG.v_reset))
    # the one driven row delivers V * I for the pulse (the solve at the pulse's start)
    assert result.energy_total == pytest.approx(1.3 * result.solution.i_row[0] * 100e-9,
                                                rel=1e-9)
    assert result.energy_total >= result.energy_cells.sum() * (1 - 1e-9)


def test_substeps_equal_repeated_short_pulses_and_make_set_self_limiting():
    def fresh():
        arr = CrossbarArray(3, 3, dataclasses.replace(QUIET_BINARY, levels_set=4.0), seed=0,
                            defects=False)
        return arr

    pulse = half_select(3, 3, 0, 0, 1.3)
    split, repeated = fresh(), fresh()
    r_split = split.apply(*pulse, 200e-9, r_source=20e3, substeps=4)
    energies = [repeated.apply(*pulse, 50e-9, r_source=20e3) for _ in range(4)]
    assert np.array_equal(split.state(), repeated.state())
    assert r_split.energy_total == pytest.approx(sum(e.energy_total for e in energies), rel=1e-12)
    assert np.allclose(r_split.energy_cells, sum(e.energy_cells for e in energies), rtol=1e-12)
    # one solve at the pre-pulse (HRS) conductance ignores the IR drop the rising cell builds
    single = fresh()
    single.apply(*pulse, 200e-9, r_source=20e3)
    assert 0 < split.state()[0, 0] < single.state()[0, 0]
    with pytest.raises(ValueError, match="substeps"):
        fresh().apply(*pulse, 1e-7, substeps=0)


def test_apply_returns_cell_and_total_energy():
    arr = CrossbarArray(3, 3, QUIET_ANALOG, seed=0, defects=False, r_wire_row=0.0,
                        r_wire_col=0.0)
    arr.set_state(0.5)
    g = arr.conductance()
    v_row, v_col = half_select(3, 3, 1, 1, 1.3)
    result = arr.apply(v_row, v_col, 100e-9)
    v = v_row[:, None] - v_col[None, :]
    assert np.allclose(result.energy_cells, v * v * g * 100e-9, rtol=1e-12)
    assert result.energy_total == pytest.approx(result.energy_cells.sum(), rel=1e-9)
    lossy = CrossbarArray(3, 3, QUIET_ANALOG, seed=0, defects=False, r_wire_row=500.0,
                          r_wire_col=500.0)
    lossy.set_state(0.5)
    r = lossy.apply(v_row, v_col, 100e-9, r_source=100.0, r_sense=100.0)
    # what the sources deliver is what the cells, the wire segments, the source resistances
    # (row source to the word line's first node) and the sense resistances (last bit-line
    # node to the column terminal) dissipate: energy conservation, from the node voltages
    s = r.solution
    wires = (np.sum(np.diff(s.v_word, axis=1) ** 2) + np.sum(np.diff(s.v_bit, axis=0) ** 2)) / 500
    ends = (np.sum((v_row - s.v_word[:, 0]) ** 2) + np.sum((s.v_bit[-1, :] - v_col) ** 2)) / 100
    dissipated = r.energy_cells.sum() + (wires + ends) * 100e-9
    assert r.energy_total == pytest.approx(dissipated, rel=1e-9)
    assert (wires + ends) * 100e-9 > 0.01 * r.energy_total  # a share the check would see


def test_apply_with_compliance_limits_set():
    params = dataclasses.replace(exact_compliance(ANALOG), levels_set=4.0)
    arr = CrossbarArray(2, 2, params, seed=3, defects=False, r_wire_row=0.0, r_wire_col=0.0)
    for _ in range(10):
        arr.apply(*half_select(2, 2, 0, 0, 1.3), 100e-9, i_compliance=10e-6)
    assert arr.conductance()[0, 0] * 1.3 <= 10e-6 * (1 + 1e-12)
    assert arr.conductance()[0, 0] * 1.3 == pytest.approx(10e-6, rel=1e-9)


def test_one_transistor_gate_isolates_rows():
    arr = CrossbarArray(4, 3, QUIET_ANALOG, seed=1, one_transistor=True, defects=False,
                        r_wire_row=0.0, r_wire_col=0.0)
    arr.set_state(0.6)
    gate = np.array([True, False, True, False])
    v = np.array([0.2, 0.2, 0.2, 0.2])
    sol = arr.solve(v, np.zeros(3), gate=gate, read_noise=False)
    assert np.all(sol.i_row[~gate] == 0.0)
    assert np.allclose(sol.i_col, v[gate] @ arr.conductance()[gate], rtol=1e-12)
    before = arr.state()
    arr.apply(np.full(4, 1.3), np.zeros(3), 100e-9, gate=gate)
    after = arr.state()
    assert np.all(after[~gate] == before[~gate])
    assert np.all(after[gate] > before[gate])
    with pytest.raises(ValueError, match="gate"):
        CrossbarArray(2, 2, "analog").solve(np.zeros(2), np.zeros(2), gate=np.ones(2, bool))


def test_one_transistor_array_applies_the_default_compliance():
    params = dataclasses.replace(exact_compliance(BINARY), i_compliance_1t1r=50e-6)
    arr = CrossbarArray(2, 2, params, seed=0, one_transistor=True, defects=False,
                        r_wire_row=0.0, r_wire_col=0.0)
    arr.apply(np.array([1.3, 0.0]), np.zeros(2), 100e-9, gate=np.array([True, False]))
    assert np.all(arr.conductance()[0] * 1.3 <= 50e-6 * (1 + 1e-12))


def test_forming_through_the_array_needs_the_forming_voltage():
    arr = CrossbarArray(3, 3, exact_compliance(BINARY), seed=0, pristine=True, defects=False,
                        one_transistor=True)
    g0 = arr.conductance()
    g_lo, _ = arr.bounds()
    assert np.all(g0 < g_lo / 50)  # pristine cells sit far below the HRS
    gate = np.ones(3, bool)
    arr.apply(*half_select(3, 3, 1, 1, 1.3), 1e-3, gate=gate)  # a SET pulse does not form
    assert not arr.formed().any() and np.array_equal(arr.conductance(), g0)
    result = arr.apply(*half_select(3, 3, 1, 1, 2.5), 10e-6, gate=gate)  # V/2 = 1.25 V
    formed = arr.formed()
    assert formed[1, 1] and formed.sum() == 1
    g = arr.conductance()
    assert g[1, 1] > g_lo[1, 1]
    v_seen = result.solution.v_cell[1, 1]
    assert g[1, 1] * v_seen == pytest.approx(BINARY.i_compliance_1t1r, rel=1e-9)  # transistor


@settings(max_examples=25, deadline=None)
@given(
    pulses=st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 3), st.floats(-2.5, 2.5),
                  st.floats(-8.0, -5.0)),
        min_size=1, max_size=5,
    ),
    seed=st.integers(0, 1000),
)
def test_conductances_stay_within_cell_bounds_under_any_pulse_train(pulses, seed):
    arr = CrossbarArray(4, 4, "analog", seed=seed, r_wire_row=5.0, r_wire_col=5.0)
    g_lo, g_hi = arr.bounds()
    for i, j, v, log_t in pulses:
        arr.apply(*half_select(4, 4, i, j, v), 10.0**log_t, r_source=10.0)
        g = arr.conductance()
        assert np.all((g >= g_lo) & (g <= g_hi))
        w = arr.state()
        assert np.all((w >= 0) & (w <= 1))


# ---------------------------------------------------------------- setting and restoring


def test_set_conductance_round_trips_and_rejects_out_of_range_targets():
    arr = CrossbarArray(5, 5, "analog", seed=3)
    g_lo, g_hi = arr.bounds()
    target = g_lo + 0.37 * (g_hi - g_lo)
    arr.set_conductance(target)
    healthy = arr.defect_map() == 0
    assert np.allclose(arr.conductance()[healthy], target[healthy], rtol=1e-12)
    with pytest.raises(ValueError, match=r"G_target\[.*allowed range"):
        arr.set_conductance(np.full((5, 5), 1e-3))
    with pytest.raises(ValueError, match="allowed range"):
        arr.set_state(1.5)


def test_snapshot_restore_replays_exactly_and_copy_is_independent():
    arr = CrossbarArray(4, 4, "analog", seed=8)
    snap = arr.snapshot()
    twin = arr.copy()

    def program(a):
        for k in range(4):
            a.apply(*half_select(4, 4, k, 3 - k, 1.3), 100e-9)
        return a.conductance(), a.solve(np.full(4, 0.2), np.zeros(4)).i_col

    g1, i1 = program(arr)
    arr.restore(snap)
    g2, i2 = program(arr)
    g3, i3 = program(twin)
    assert np.array_equal(g1, g2) and np.array_equal(i1, i2)
    assert np.array_equal(g1, g3) and np.array_equal(i1, i3)
    assert not np.array_equal(g1, CrossbarArray(4, 4, "analog", seed=8).conductance())


def test_apply_rejects_a_batch_and_bad_durations():
    arr = CrossbarArray(2, 2, "binary")
    with pytest.raises(ValueError, match="one pulse"):
        arr.apply(np.zeros((3, 2)), np.zeros(2), 1e-7)
    with pytest.raises(ValueError, match="duration"):
        arr.apply(np.zeros(2), np.zeros(2), -1.0)


def test_batch_with_noise_per_vector_is_single_reads_in_a_row():
    batched = CrossbarArray(6, 5, "analog", seed=8)
    batched.set_state(np.random.default_rng(3).random((6, 5)))
    single = batched.copy()
    v = np.random.default_rng(4).uniform(0, 0.2, (7, 6))
    sol = batched.solve(v, np.zeros(5), r_source=2.0, r_sense=3.0, noise_per_vector=True)
    assert sol.i_col.shape == (7, 5) and sol.v_cell.shape == (7, 6, 5)
    for k in range(7):
        one = single.solve(v[k], np.zeros(5), r_source=2.0, r_sense=3.0)
        np.testing.assert_allclose(sol.i_col[k], one.i_col, rtol=1e-12, atol=0)
        np.testing.assert_allclose(sol.v_cell[k], one.v_cell, rtol=1e-12, atol=1e-15)
    # both read streams have moved on by the same seven draws
    after = (np.full(6, 0.1), np.zeros(5))
    assert np.array_equal(batched.solve(*after).i_col, single.solve(*after).i_col)


def test_noise_per_vector_draws_are_independent_with_single_read_statistics():
    arr = CrossbarArray(1, 400, "analog", seed=4, r_wire_row=0.0, r_wire_col=0.0,
                        defects=False)
    arr.set_state(0.5)
    g = arr.conductance()
    shared = arr.solve(np.full((25, 1), 0.2), np.zeros(400)).i_col
    assert np.all(shared == shared[0])  # the default: one draw for the whole batch
    ratios = arr.solve(np.full((25, 1), 0.2), np.zeros(400), noise_per_vector=True).i_col
    ratios = ratios / (0.2 * g)
    assert len({tuple(r) for r in ratios}) == 25
    n = ratios.size
    assert abs(ratios.mean() - 1.0) < 5 * 0.01 / math.sqrt(n) + 1e-4
    assert ratios.std() == pytest.approx(0.01, rel=5 * math.sqrt(0.5 / n))
    # without noise the keyword changes nothing
    quiet = arr.solve(np.full((3, 1), 0.2), np.zeros(400), read_noise=False,
                      noise_per_vector=True).i_col
    np.testing.assert_allclose(quiet, 0.2 * np.broadcast_to(g, (3, 400)), rtol=1e-12)


def test_the_sinh_preset_reads_the_stanford_iv():
    """`binary_sinh`: I = G V0 sinh(V / V0), V0 = 0.25 V, checked on a cell alone (no wires)."""
    arr = CrossbarArray(1, 1, "binary_sinh", seed=3, r_wire_row=0.0, r_wire_col=0.0,
                        defects=False)
    arr.set_state(1.0)
    g = arr.conductance()[0, 0]
    for v in (0.2, 1.0):
        i = arr.solve(np.array([v]), np.zeros(1), read_noise=False).i_col[0]
        assert i == pytest.approx(g * 0.25 * math.sinh(v / 0.25), rel=1e-9)
