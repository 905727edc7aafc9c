"""1T1R gate voltages: off below threshold, SET compliance by the square law, masks as before."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from xbarlab.physics.array import CrossbarArray
from xbarlab.physics.presets import ANALOG, BINARY

EXACT = dataclasses.replace(BINARY, cc_sigma=0.0, relax_poly=(0.0,), c2c_sigma=0.0)


def test_defaults_give_the_default_compliance_at_the_default_gate():
    # 100 uA at 1.5 V with V_t 0.5 V: K = 100 uA / (1 V)^2
    from xbarlab.physics.transistor import saturation_current

    assert saturation_current(1.5, BINARY) == pytest.approx(100e-6, rel=1e-12)
    assert saturation_current([0.5, 0.2, 1.0], BINARY).tolist() == pytest.approx(
        [0.0, 0.0, 100e-6 * 0.25], rel=1e-12)


def test_gates_below_threshold_carry_no_current_and_above_it_the_cells_conduct():
    arr = CrossbarArray(4, 3, ANALOG, seed=2, one_transistor=True, defects=False,
                        r_wire_row=0.0, r_wire_col=0.0)
    arr.set_state(0.5)
    v = np.full(4, 0.2)
    gates = np.array([0.0, 0.49, 0.51, 3.0])  # threshold 0.5 V
    sol = arr.solve(v, np.zeros(3), gate=gates, read_noise=False)
    g = arr.conductance()
    assert np.all(sol.i_row[:2] == 0.0)
    assert np.allclose(sol.i_row[2:], 0.2 * g[2:].sum(axis=1), rtol=1e-12)


def test_a_mask_is_gate_voltages_at_the_default_gate_and_zero():
    mask = np.array([True, False, True])
    volts = np.where(mask, BINARY.v_gate_set, 0.0)
    results = []
    for gate in (mask, volts):
        arr = CrossbarArray(3, 3, BINARY, seed=4, one_transistor=True)
        arr.apply(np.array([1.4, 0.7, 1.4]), np.array([0.0, 0.7, 0.7]), 1e-6, gate=gate)
        read = arr.solve(np.full(3, 0.2), np.zeros(3), gate=gate)
        results.append((arr.state(), read.i_col))
    assert np.array_equal(results[0][0], results[1][0])
    assert np.array_equal(results[0][1], results[1][1])


@pytest.mark.parametrize("v_gate", [0.8, 1.1, 1.5, 2.0])
def test_set_stops_where_the_cell_current_is_the_saturation_current_of_its_gate(v_gate):
    arr = CrossbarArray(2, 2, EXACT, seed=0, one_transistor=True, defects=False,
                        r_wire_row=0.0, r_wire_col=0.0)
    arr.set_state(0.0)
    gates = np.array([v_gate, 0.0])
    result = arr.apply(np.array([1.3, 0.0]), np.zeros(2), 1e-3, gate=gates)
    v_seen = result.solution.v_cell[0, 0]
    i_sat = 100e-6 / (1.5 - 0.5) ** 2 * (v_gate - 0.5) ** 2  # the square law, by hand
    g = arr.conductance()
    _, g_hi = arr.bounds()
    expected = min(i_sat, g_hi[0, 0] * v_seen)  # a large gate: the cell's LRS comes first
    assert g[0, 0] * v_seen == pytest.approx(expected, rel=1e-9)
    assert np.array_equal(arr.state()[1], np.zeros(2))  # the gated-off row never moved


def test_a_pulse_compliance_below_the_transistors_wins():
    arr = CrossbarArray(1, 1, EXACT, seed=0, one_transistor=True, defects=False,
                        r_wire_row=0.0, r_wire_col=0.0)
    arr.set_state(0.0)
    result = arr.apply(np.array([1.3]), np.zeros(1), 1e-3, gate=np.array([2.5]),
                       i_compliance=20e-6)
    assert arr.conductance()[0, 0] * result.solution.v_cell[0, 0] == pytest.approx(20e-6,
                                                                                    rel=1e-9)


def test_gate_voltages_are_checked():
    arr = CrossbarArray(2, 2, BINARY, one_transistor=True)
    with pytest.raises(ValueError, match="gate voltages"):
        arr.solve(np.zeros(2), np.zeros(2), gate=np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="shape"):
        arr.solve(np.zeros(2), np.zeros(2), gate=np.array([1.0]))
