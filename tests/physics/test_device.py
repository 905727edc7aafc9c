"""Device model: thresholds, bounds, soft-bound nonlinearity, noise, spread, defects, forming."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xbarlab.physics.device import (
    STUCK_OFF,
    STUCK_ON,
    DeviceParams,
    DevicePopulation,
    cell_current,
    chord_conductance,
    kernel_constants,
    nonlinearity_to_a,
    pulse_cells,
    relax_cells,
    sample_population,
    soft_bound_curve,
    soft_bound_inverse,
)
from xbarlab.physics.presets import ANALOG, BINARY, HIGH_R, preset

QUIET = dataclasses.replace(ANALOG, c2c_sigma=0.0)  # analog device without c2c noise
EXACT_CC = dataclasses.replace(ANALOG, cc_sigma=0.0)  # compliance stops exactly at I_cc / V


class Cells:
    """A flat population of n cells sharing one parameter set, for kernel-level tests."""

    def __init__(self, params, n, *, w0=0.0, formed=True, seed=0, defects=False, spread=False):
        self.params = params
        rng = np.random.default_rng(seed)
        if spread:
            self.pop = sample_population(params, (n,), rng, defects=defects)
        else:
            self.pop = DevicePopulation(
                g_lo=np.full(n, params.g_min), g_hi=np.full(n, params.g_max),
                g_pristine=np.full(n, params.pristine_conductance),
                defects=np.zeros(n, dtype=np.int8),
            )
        self.w = np.full(n, float(w0))
        self.formed = np.full(n, formed)
        self.progress = np.zeros(n)
        self.k = kernel_constants(params)

    def pulse(self, v, duration, *, i_cc=None, seed=1, relax_pending=None):
        v = np.broadcast_to(np.asarray(v, dtype=float), self.w.shape)
        pulse_cells(self.w, self.formed, self.progress, self.pop, v, duration, self.k,
                    i_compliance=i_cc, rng=np.random.default_rng(seed),
                    relax_pending=relax_pending)
        return self.w.copy()

    def conductance(self):
        return self.pop.g_lo * (1.0 - self.w) + self.pop.g_hi * self.w


# ---------------------------------------------------------------- thresholds and bounds


@settings(max_examples=60, deadline=None)
@given(
    frac=st.floats(0.0, 1.0),
    w0=st.floats(0.0, 1.0),
    duration=st.floats(1e-9, 1.0),
    which=st.sampled_from(["binary", "analog", "high_r"]),
)
def test_sub_threshold_pulses_never_move_the_state(frac, w0, duration, which):
    params = preset(which)
    v = params.v_reset + frac * (params.v_set - params.v_reset)  # anywhere in [v_reset, v_set]
    cells = Cells(params, 8, w0=w0)
    assert np.array_equal(cells.pulse(v, duration), np.full(8, w0))


@settings(max_examples=60, deadline=None)
@given(
    volts=st.lists(st.floats(-4.0, 4.0), min_size=1, max_size=6),
    log_duration=st.floats(-9.0, -3.0),
    w0=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**31 - 1),
)
def test_state_never_leaves_its_bounds(volts, log_duration, w0, seed):
    cells = Cells(ANALOG, 32, w0=w0, seed=seed, spread=True)
    for k, v in enumerate(volts):
        w = cells.pulse(v, 10.0**log_duration, seed=seed + k)
        assert np.all((w >= 0.0) & (w <= 1.0))
        g = cells.conductance()
        assert np.all((g >= cells.pop.g_lo) & (g <= cells.pop.g_hi))


def test_set_raises_and_reset_lowers_the_state():
    cells = Cells(QUIET, 1, w0=0.5)
    assert cells.pulse(1.0, 100e-9)[0] > 0.5
    before = cells.w[0]
    assert cells.pulse(-1.0, 100e-9)[0] < before


# ---------------------------------------------------------------- update dynamics


def test_step_grows_with_overdrive_and_with_duration():
    steps_v = [Cells(QUIET, 1, w0=0.3).pulse(v, 100e-9)[0] - 0.3 for v in (0.75, 0.9, 1.1, 1.3)]
    assert all(b > a > 0 for a, b in zip(steps_v, steps_v[1:], strict=False))
    steps_t = [Cells(QUIET, 1, w0=0.3).pulse(1.0, t)[0] - 0.3 for t in (10e-9, 50e-9, 200e-9)]
    assert all(b > a > 0 for a, b in zip(steps_t, steps_t[1:], strict=False))
    steps_r = [0.7 - Cells(QUIET, 1, w0=0.7).pulse(v, 100e-9)[0] for v in (-0.75, -1.0, -1.3)]
    assert all(b > a > 0 for a, b in zip(steps_r, steps_r[1:], strict=False))


def test_small_overdrive_gives_small_corrective_steps():
    """Steps shrink continuously toward zero as the amplitude approaches the threshold."""
    steps = [Cells(QUIET, 1, w0=0.5).pulse(QUIET.v_set + dv, 100e-9)[0] - 0.5
             for dv in (0.2, 0.05, 0.01, 0.001)]
    assert all(0 < b < a for a, b in zip(steps, steps[1:], strict=False))
    assert steps[-1] < 1e-6


def test_reference_pulse_moves_one_level_and_levels_span_the_range():
    cells = Cells(QUIET, 1, w0=0.0)
    for _ in range(int(QUIET.levels_set)):
        cells.pulse(QUIET.v_set_ref, QUIET.t_ref)
    assert cells.w[0] == pytest.approx(1.0, abs=1e-9)
    cells = Cells(QUIET, 1, w0=1.0)
    for _ in range(int(QUIET.levels_reset)):
        cells.pulse(QUIET.v_reset_ref, QUIET.t_ref)
    assert cells.w[0] == pytest.approx(0.0, abs=1e-9)


def test_soft_bound_nonlinearity_step_shrinks_toward_the_bound():
    cells = Cells(QUIET, 1, w0=0.0)
    trace = [0.0] + [cells.pulse(1.3, 100e-9)[0] for _ in range(60)]
    steps = np.diff(trace)
    assert np.all(steps > 0) and np.all(np.diff(steps) < 0)
    # NeuroSim NL 2.4: first step about 2.3x the linear step 1/97, and it follows the curve.
    a = nonlinearity_to_a(2.4)
    assert steps[0] == pytest.approx(soft_bound_curve(1 / 97, a), rel=1e-9)
    assert steps[0] > 2.0 / 97
    cells = Cells(QUIET, 1, w0=1.0)
    trace = [1.0] + [cells.pulse(-1.3, 100e-9)[0] for _ in range(60)]
    steps = -np.diff(trace)
    assert np.all(steps > 0) and np.all(np.diff(steps) < 0)


def test_pulses_compose_a_split_pulse_equals_the_whole():
    whole = Cells(QUIET, 1, w0=0.2).pulse(1.1, 400e-9)[0]
    split = Cells(QUIET, 1, w0=0.2)
    for _ in range(4):
        split.pulse(1.1, 100e-9)
    assert split.w[0] == pytest.approx(whole, rel=1e-12)


def test_linear_device_steps_are_equal():
    linear = dataclasses.replace(QUIET, nl_set=0.0, nl_reset=0.0)
    cells = Cells(linear, 1, w0=0.0)
    trace = np.array([cells.pulse(1.3, 100e-9)[0] for _ in range(10)])
    assert np.allclose(np.diff(trace), 1 / 97, rtol=1e-9)


def test_nonlinearity_label_matches_neurosim_table():
    # Normalised A values published with NeuroSim (Nonlinearity-NormA table).
    for nl, a in [(0.01, 126.269), (1.0, 1.251653), (1.51, 0.8195), (3.01, 0.3853),
                  (6.01, 0.1351), (7.51, 0.0702)]:
        assert nonlinearity_to_a(nl) == pytest.approx(a, rel=1e-3)
    assert nonlinearity_to_a(0.0) == math.inf
    for w in (0.0, 0.1, 0.5, 0.99, 1.0):
        assert soft_bound_curve(soft_bound_inverse(w, 0.5), 0.5) == pytest.approx(w, abs=1e-12)


# ---------------------------------------------------------------- noise and randomness


def test_same_seed_same_result_different_seed_differs():
    a = Cells(ANALOG, 200, w0=0.5).pulse(1.3, 100e-9, seed=7)
    b = Cells(ANALOG, 200, w0=0.5).pulse(1.3, 100e-9, seed=7)
    c = Cells(ANALOG, 200, w0=0.5).pulse(1.3, 100e-9, seed=8)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("n_pulses, duration", [(1, 100e-9), (4, 100e-9), (1, 25e-9)])
def test_cycle_to_cycle_noise_magnitude(n_pulses, duration):
    """sigma = 3.5 % of the range x sqrt(reference pulses of movement), on a linear device."""
    linear = dataclasses.replace(ANALOG, nl_set=0.0, nl_reset=0.0)
    n = 20000
    cells = Cells(linear, n, w0=0.4)
    for k in range(n_pulses):
        cells.pulse(1.3, duration, seed=100 + k)
    moved = n_pulses * duration / 100e-9
    expected_mean = 0.4 + moved / 97
    expected_sigma = 0.035 * math.sqrt(moved)
    dev = cells.w - expected_mean
    assert abs(dev.mean()) < 5 * expected_sigma / math.sqrt(n)
    assert dev.std() == pytest.approx(expected_sigma, rel=5 * math.sqrt(0.5 / n))


def test_a_cell_at_its_bound_gets_no_noise():
    cells = Cells(ANALOG, 100, w0=1.0)
    assert np.all(cells.pulse(1.3, 100e-9) == 1.0)
    cells = Cells(ANALOG, 100, w0=0.0)
    assert np.all(cells.pulse(-1.3, 100e-9) == 0.0)


def test_device_to_device_spread_is_lognormal_with_the_preset_sigma():
    pop = sample_population(ANALOG, (200, 200), np.random.default_rng(3))
    n = pop.g_lo.size
    se = 0.1 / math.sqrt(2 * n)
    for g, nominal in ((pop.g_lo, ANALOG.g_min), (pop.g_hi, ANALOG.g_max)):
        theta = np.log(g / nominal)
        assert abs(theta.mean()) < 5 * 0.1 / math.sqrt(n)
        assert abs(theta.std() - 0.1) < 5 * se
    assert np.corrcoef(np.log(pop.g_lo).ravel(), np.log(pop.g_hi).ravel())[0, 1] < 0.05
    assert np.all(pop.g_hi > pop.g_lo)


@pytest.mark.parametrize("params", [BINARY, ANALOG, HIGH_R])
def test_defect_rates_within_binomial_bounds(params):
    shape = (150, 150)
    n = shape[0] * shape[1]
    defects = sample_population(params, shape, np.random.default_rng(11)).defects
    for code, p in ((STUCK_ON, params.p_stuck_on), (STUCK_OFF, params.p_stuck_off)):
        count = int(np.sum(defects == code))
        assert abs(count - n * p) < 3 * math.sqrt(n * p * (1 - p)), (code, count)
    no_defects = sample_population(params, shape, np.random.default_rng(11), defects=False)
    assert not no_defects.defects.any()


def test_stuck_cells_never_move():
    cells = Cells(ANALOG, 4, w0=0.5)
    cells.pop.defects[:] = [STUCK_ON, STUCK_OFF, STUCK_ON, STUCK_OFF]
    for v in (2.5, -2.5, 1.3, -1.3):
        assert np.all(cells.pulse(v, 1e-6) == 0.5)


# ---------------------------------------------------------------- forming and compliance


def test_forming_needs_the_forming_voltage():
    p = ANALOG
    cells = Cells(p, 3, formed=False)
    cells.pulse(p.v_form - 0.01, 1.0)  # one second just below v_form: nothing
    assert not cells.formed.any() and np.all(cells.progress == 0.0)
    cells.pulse(p.v_set_ref, 1.0)  # a SET-strength pulse does not switch a pristine cell
    assert not cells.formed.any() and np.all(cells.w == 0.0)
    # at v_form + slope the forming time is t_form / e
    t_needed = p.t_form / math.e
    cells.pulse(p.v_form + p.v_form_slope, 0.9 * t_needed)
    assert not cells.formed.any()
    cells.pulse(p.v_form + p.v_form_slope, 0.11 * t_needed)
    assert cells.formed.all()
    assert np.all(cells.w == 1.0)  # formed into its LRS without a current limit


def test_forming_under_compliance_stops_at_the_compliance_conductance():
    p = EXACT_CC
    cells = Cells(p, 2, formed=False)
    v = p.v_form + 0.3
    i_cc = 20e-6
    cells.pulse(v, 10 * p.t_form, i_cc=i_cc)
    assert cells.formed.all()
    assert np.allclose(cells.conductance() * v, i_cc, rtol=1e-12)


def test_compliance_limits_set():
    params = dataclasses.replace(EXACT_CC, levels_set=5.0)  # strong pulses: would hit g_max
    v, i_cc = 1.3, 20e-6  # stops at G = i_cc / v = 15.4 µS
    cells = Cells(params, 500, w0=0.0)
    for k in range(20):
        cells.pulse(v, 100e-9, i_cc=i_cc, seed=k)
    current = cells.conductance() * v
    assert np.all(current <= i_cc * (1 + 1e-12))
    assert np.median(current) == pytest.approx(i_cc, rel=1e-9)  # most cells sit at the limit
    # without compliance the same pulses go much further
    free = Cells(params, 500, w0=0.0)
    for k in range(20):
        free.pulse(v, 100e-9, seed=k)
    assert np.median(free.conductance() * v) > 2 * i_cc


def test_compliance_with_sinh_iv_uses_the_nonlinear_current():
    params = dataclasses.replace(EXACT_CC, levels_set=5.0, c2c_sigma=0.0, iv_v0=0.5)
    v, i_cc = 1.3, 30e-6
    cells = Cells(params, 1, w0=0.0)
    for _ in range(20):
        cells.pulse(v, 100e-9, i_cc=i_cc)
    i = cell_current(cells.conductance(), np.array([v]), params.iv_v0)
    assert i[0] == pytest.approx(i_cc, rel=1e-9)


@pytest.mark.parametrize("cc_sigma", [ANALOG.cc_sigma, 0.1])
@pytest.mark.parametrize("stop", ["set", "forming"])
def test_compliance_stop_lands_with_the_cc_sigma_spread(cc_sigma, stop):
    """Where the limiter stops SET or forming, G = (I_cc/V)(1 + cc_sigma xi), xi ~ N(0, 1)."""
    params = dataclasses.replace(ANALOG, levels_set=1.0, cc_sigma=cc_sigma)
    n, i_cc = 20000, 20e-6  # G_cc = 15.4 µS at 1.3 V, 1.5 µS at 2.3 V: far from both bounds
    if stop == "set":
        v, cells = 1.3, Cells(params, n, w0=0.0)
        cells.pulse(v, 100e-9, i_cc=i_cc, seed=5)  # one pulse would overshoot to g_max
    else:
        v, cells = params.v_form + 0.3, Cells(params, n, formed=False)
        cells.pulse(v, 10 * params.t_form, i_cc=i_cc, seed=5)
        assert cells.formed.all()
    ratio = cells.conductance() * v / i_cc
    assert abs(ratio.mean() - 1.0) < 5 * cc_sigma / math.sqrt(n)
    assert ratio.std() == pytest.approx(cc_sigma, rel=5 * math.sqrt(0.5 / n))
    # seeded from the pulse stream: the same seed lands every cell at the same place again
    again = Cells(params, n, w0=0.0) if stop == "set" else Cells(params, n, formed=False)
    again.pulse(v, 100e-9 if stop == "set" else 10 * params.t_form, i_cc=i_cc, seed=5)
    assert np.array_equal(again.w, cells.w)


def test_compliance_spread_ratchets_up_cells_that_landed_below_the_limit():
    """A further pulse at the same compliance re-lands only the cells still below I_cc / V."""
    params = dataclasses.replace(ANALOG, levels_set=1.0)
    v, i_cc = 1.3, 20e-6
    cells = Cells(params, 4000, w0=0.0)
    first = cells.pulse(v, 100e-9, i_cc=i_cc, seed=1)
    above = cells.conductance() * v >= i_cc
    assert 0.4 < above.mean() < 0.6
    second = cells.pulse(v, 100e-9, i_cc=i_cc, seed=2)
    assert np.array_equal(second[above], first[above])
    assert np.all(second[~above] != first[~above])
    assert (cells.conductance() * v >= i_cc).mean() > 0.7


def test_cell_above_compliance_is_not_changed_by_set():
    cells = Cells(ANALOG, 50, w0=0.9)
    assert np.all(cells.pulse(1.3, 100e-9, i_cc=10e-6) == 0.9)


# ---------------------------------------------------------------- I-V


@given(v=st.floats(-2.0, 2.0), v0=st.floats(0.05, 2.0))
def test_sinh_iv_and_its_chord_conductance(v, v0):
    g = np.array([10e-6])
    i = cell_current(g, np.array([v]), v0)[0]
    assert i == pytest.approx(g[0] * v0 * math.sinh(v / v0), rel=1e-12, abs=1e-30)
    chord = chord_conductance(g, np.array([v]), v0)[0]
    assert chord * v == pytest.approx(i, rel=1e-12, abs=1e-30)
    assert chord >= g[0] * (1 - 1e-15)  # sinh is super-linear: never below small-signal G


def test_linear_iv_is_ohmic():
    g = np.array([1e-6, 5e-5])
    v = np.array([0.2, -0.3])
    assert np.array_equal(cell_current(g, v, 0.0), g * v)
    assert np.array_equal(chord_conductance(g, v, 0.0), g)


# ---------------------------------------------------------------- parameters and presets


@pytest.mark.parametrize(
    "field, value",
    [("g_min", -1e-6), ("g_max", 1.5e-6), ("v_set", -0.5), ("v_reset", 0.3),
     ("v_set_ref", 0.4), ("c2c_sigma", 0.9), ("p_stuck_on", 1.5), ("read_noise", -0.01),
     ("t_ref", 0.0), ("v_form", 0.4),
     ("v_efold_set", 0.0), ("v_efold_reset", float("inf")), ("g_pristine", 5e-6),
     ("d2d_sigma", float("nan")),
     ("cc_sigma", 0.6), ("cc_sigma", -0.01), ("relax_tau", 0.0), ("relax_t_sigma", 0.0),
     ("relax_poly", (-0.01,)), ("relax_poly", (0.0, 0.0, 0.0, 0.0, 0.0, 0.1)),
     ("relax_poly", ()), ("relax_poly", [0.01]), ("relax_poly", (float("nan"),)),
     ("relax_poly", (0.0, 1.0)), ("relax_poly", ("a",)), ("relax_move_scale", 0.0),
     ("relax_move_scale", -0.1), ("relax_move_scale", 1.5),
     ("relax_move_scale", float("nan"))],
)
def test_invalid_parameters_raise_naming_field_and_range(field, value):
    with pytest.raises(ValueError, match=rf"DeviceParams\.{field} .*allowed range"):
        dataclasses.replace(ANALOG, **{field: value})


def test_spread_too_large_for_the_on_off_ratio_raises():
    with pytest.raises(ValueError, match="d2d_sigma"):
        DeviceParams(g_min=1e-6, g_max=3e-6, v_set=0.7, v_reset=-0.7, d2d_sigma=0.2)


def test_presets_carry_the_cited_values():
    assert (BINARY.g_min, BINARY.g_max) == (1e-6, 100e-6)
    assert (ANALOG.g_min, ANALOG.g_max) == (1e-6, 40e-6)
    assert (HIGH_R.g_min, HIGH_R.g_max) == (0.1e-6, 10e-6)
    for p in (BINARY, ANALOG, HIGH_R):
        assert (p.nl_set, p.nl_reset, p.c2c_sigma) == (2.4, -4.88, 0.035)
        assert (p.p_stuck_on, p.p_stuck_off, p.read_noise, p.d2d_sigma) == (
            0.0175, 0.0904, 0.01, 0.10)
        assert (p.v_set, p.v_reset) == (0.45, -0.45)  # the kinetics floor [E]
        # Stanford-PKU field term kT L / (gamma a0 q), gamma = 16 - 0.8 * 1.7**3, 298 K
        v_k = 1.380649e-23 * 298.0 / 1.602176634e-19 * 5.0 / 0.25 / (16 - 0.8 * 1.7**3)
        assert p.v_efold_set == p.v_efold_reset == pytest.approx(v_k, rel=2e-3)
        assert p.t_ref == 100e-9
    assert (ANALOG.levels_set, ANALOG.levels_reset) == (97.0, 100.0)
    assert ANALOG.cc_sigma == 0.04  # Milo 2021 IGVVA-100 spread at 100 µS, 3.9 %
    # aihwkit ReRamWan2022 1 s fit, µS at g_max = 40 µS: the analog preset reproduces it exactly
    x = np.linspace(0.0, 1.0, 11)
    wan_us = np.polynomial.polynomial.polyval(x, [0.348, 16.030, -43.853, 45.393, -16.815])
    assert np.allclose(ANALOG.relaxation_sigma(x * 40e-6) * 1e6, wan_us, rtol=1e-12)
    assert 1.0 < ANALOG.relaxation_sigma(40e-6) * 1e6 < ANALOG.relaxation_sigma(12e-6) * 1e6 < 2.31
    for p in (BINARY, ANALOG, HIGH_R):  # [E]: a move across the range redraws 99.3 %
        assert p.relax_move_scale == 0.2
    for p in (BINARY, HIGH_R):  # [E]: the same shape scaled by the device's own g_max
        ratio = p.relaxation_sigma(x * p.g_max) / p.g_max
        assert np.allclose(ratio, wan_us / 40.0, rtol=1e-12)
    with pytest.raises(ValueError, match="preset"):
        preset("memristor")


def test_binary_device_switches_with_one_reference_pulse():
    cells = Cells(dataclasses.replace(BINARY, c2c_sigma=0.0), 1, w0=0.0)
    assert cells.pulse(1.3, 100e-9)[0] == pytest.approx(1.0)
    assert cells.pulse(-1.3, 100e-9)[0] == pytest.approx(0.0)


def test_invalid_pulse_inputs_raise():
    cells = Cells(ANALOG, 2)
    with pytest.raises(ValueError, match="duration"):
        cells.pulse(1.0, -1e-9)
    with pytest.raises(ValueError, match="i_compliance"):
        cells.pulse(1.0, 1e-9, i_cc=0.0)
    with pytest.raises(ValueError, match="non-finite"):
        cells.pulse(np.array([1.0, np.nan]), 1e-9)
    with pytest.raises(ValueError, match="relax_pending"):
        cells.pulse(1.0, 1e-9, relax_pending=np.zeros(3))


def test_pulse_updates_pending_relaxation_only_for_cells_it_moves():
    cells = Cells(ANALOG, 6, w0=0.5)
    pending = np.full(6, 0.01)
    cells.pulse(np.array([1.3, 1.3, 0.3, -0.3, -1.3, 0.0]), 100e-9, relax_pending=pending)
    moved = np.array([True, True, False, False, True, False])
    assert np.all(pending[~moved] == 0.01)
    assert np.all(pending[moved] != 0.01)
    relax_cells(cells.w, pending, 1.0, ANALOG.relax_tau)
    assert np.all((cells.w >= 0.0) & (cells.w <= 1.0))


def test_binary_switching_pulse_draws_the_full_relaxation_spread():
    """One reference pulse switches a binary cell across its range: a full switching event."""
    params = dataclasses.replace(BINARY, c2c_sigma=0.0)
    n = 20000
    cells = Cells(params, n, w0=0.0)
    pending = np.zeros(n)
    cells.pulse(params.v_set_ref, params.t_ref, relax_pending=pending)
    assert np.all(cells.w == 1.0)
    # the filament's offset is drawn with the cited sigma (to sqrt(1 - exp(-1 / scale)) from a
    # settled cell); at the LRS bound only its inward half will be carried out (relax_cells)
    sigma_w = float(params.relaxation_sigma(params.g_max)) / (params.g_max - params.g_min)
    sigma_w *= kernel_constants(params).relax_scale
    sigma_w *= math.sqrt(-math.expm1(-1.0 / params.relax_move_scale))
    assert pending.std() == pytest.approx(sigma_w, rel=5 * math.sqrt(0.5 / n))
    assert abs(pending.mean()) < 5 * sigma_w / math.sqrt(n)
    relax_cells(cells.w, pending, 100 * params.relax_tau, params.relax_tau)
    drop = 1.0 - cells.w
    assert np.all(drop >= 0.0)
    assert np.mean(drop > 0.0) == pytest.approx(0.5, abs=5 * math.sqrt(0.25 / n))
