"""The adaptive algorithm's response curve (`AmplitudeMemory`): what amplitude it asks for a
wanted change, from the changes it measured, and the non-decreasing fit under it; and the stuck
probe, on a scripted one-cell bench."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from xbarlab.protocols.programming import (
    MOVE_FRACTION,
    STEP_OUT,
    AmplitudeMemory,
    PulseSettings,
    _nondecreasing,
    program_cell,
)

from xbarlab.bench.readings import CellReading
from xbarlab.params import ParameterError


def taught(pulses) -> AmplitudeMemory:
    """A memory that saw `pulses`: (volts, measured change in siemens) pairs."""
    memory = AmplitudeMemory(PulseSettings())
    for volts, moved in pulses:
        memory.learn(volts, moved)
    return memory


def test_nothing_measured_starts_at_the_start_amplitudes_and_unknown_errors_get_v_max():
    config = PulseSettings(v_set_start=0.85, v_reset_start=-0.75, v_max=1.2)
    memory = AmplitudeMemory(config)
    assert memory.amplitude(1, 1e-6) == 0.85
    assert memory.amplitude(-1, 1e-6) == 0.75
    assert memory.amplitude(1, math.nan) == 1.2


def test_the_amplitude_is_interpolated_where_the_curve_reaches_the_wanted_change():
    # ln|dG| rises by ln(10) from 0.80 V to 0.90 V
    memory = taught([(0.80, 1e-7), (0.90, 1e-6)])
    wanted = math.sqrt(1e-7 * 1e-6) / MOVE_FRACTION  # half way up in ln|dG|
    assert memory.amplitude(1, wanted) == pytest.approx(0.85, abs=1e-9)
    assert memory.amplitude(1, 1e-7 / MOVE_FRACTION * 1.0000001) == pytest.approx(0.80, abs=1e-6)
    assert memory.amplitude(-1, wanted) == 0.8  # RESET has learned nothing yet


def test_beyond_the_curve_it_steps_out_at_the_curves_slope_within_step_out_v_steps():
    memory = taught([(0.80, 1e-7), (0.90, 1e-6)])  # slope ln(10) / 0.1 V = 23 per volt
    slope = math.log(10) / 0.1
    one_e_fold_up = math.e * 1e-6 / MOVE_FRACTION
    assert memory.amplitude(1, one_e_fold_up) == pytest.approx(0.90 + 1 / slope)
    far_up = 1e3 * 1e-6 / MOVE_FRACTION
    assert memory.amplitude(1, far_up) == pytest.approx(0.90 + STEP_OUT * PulseSettings().v_step)
    barely_down = 0.999 * 1e-7 / MOVE_FRACTION
    assert memory.amplitude(1, barely_down) == pytest.approx(0.80 - 2e-3)


def test_the_amplitude_never_exceeds_v_max():
    memory = taught([(1.29, 1e-9)])
    assert memory.amplitude(1, 1e-3) == PulseSettings().v_max


def test_a_larger_pulse_that_happened_to_move_less_is_pooled_not_believed():
    # 0.85 V moved less than 0.80 V by chance: the fit pools them, the curve stays monotone
    memory = taught([(0.80, 4e-7), (0.85, 1e-7), (0.90, 2e-6)])
    volts, fit = memory.curve(1)
    assert volts == pytest.approx([0.80, 0.85, 0.90])
    assert fit[0] == fit[1] == pytest.approx(0.5 * (math.log(4e-7) + math.log(1e-7)))
    assert fit[2] == pytest.approx(math.log(2e-6))


def test_the_curve_of_a_cell_follows_the_responses_of_cells_at_its_conductance():
    # soft bound: the same RESET amplitude moves a 64 uS cell 8 x more than an 8 uS one
    memory = AmplitudeMemory(PulseSettings())
    for volts in (0.9, 1.0):
        for g, scale in ((64e-6, 8.0), (8e-6, 1.0)):
            memory.learn(-volts, -scale * 1e-6 * math.exp(10 * (volts - 0.9)), g)
    for g, scale in ((64e-6, 8.0), (8e-6, 1.0)):
        volts, fit = memory.curve(-1, g)
        assert fit[0] == pytest.approx(math.log(scale * 1e-6), abs=0.05)
    # asked for the same change, the low cell gets the larger amplitude
    error = 2e-6 / MOVE_FRACTION
    assert memory.amplitude(-1, error, 8e-6) > memory.amplitude(-1, error, 64e-6) + 0.05


def test_a_non_finite_change_teaches_nothing():
    memory = taught([(0.8, math.nan), (0.8, math.inf)])
    assert memory.curve(1) == ([], [])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(-50, 50), st.floats(0.1, 10)), min_size=1, max_size=40))
def test_the_fit_is_non_decreasing_and_keeps_the_weighted_mean(pairs):
    values = [v for v, _ in pairs]
    weights = [w for _, w in pairs]
    fit = _nondecreasing(values, weights)
    assert len(fit) == len(values)
    assert all(b >= a - 1e-9 for a, b in zip(fit, fit[1:], strict=False))
    assert np.dot(fit, weights) == pytest.approx(np.dot(values, weights), abs=1e-6)
    if values == sorted(values):
        assert fit == pytest.approx(values)


def test_forget_takes_back_exactly_what_learn_was_told():
    memory = taught([(0.80, 1e-7), (0.90, 1e-6), (-0.85, 3e-7)])
    before = memory.curve(1), memory.curve(-1)
    memory.learn(0.90, 5e-9)
    memory.learn(0.95, 1e-9)
    memory.forget(0.95, 1e-9)
    memory.forget(0.90, 5e-9)
    for direction, (volts, fit) in zip((1, -1), before, strict=True):
        assert memory.curve(direction)[0] == volts
        assert memory.curve(direction)[1] == pytest.approx(fit, abs=1e-12)
    assert sorted(volts for volts, _ in memory.bins[1]) == [800, 900]


class ScriptedCell:
    """A bench with one cell whose conductance after each pulse is scripted (S), read exactly."""

    def __init__(self, g: float, after_pulses: list[float]):
        self.g, self.after = g, list(after_pulses)
        self.spec = SimpleNamespace(instruments={}, limits=SimpleNamespace(
            max_voltage=5.0, max_compliance=0.01, max_pulse_width=1.0, max_read_voltage=0.45))
        self.pulses: list[float] = []
        self.last_pulse_energy = None  # no instrument measures it: program_cell estimates

    def read_repeated(self, row, col, volts, scheme, count):
        return [CellReading(row, col, volts, self.g * volts, False, 0.0)] * count

    def pulse(self, row, col, volts, width, scheme, current_limit=None, count=1, period=None):
        if volts:
            self.pulses.append(volts)
            self.g = self.after.pop(0) if self.after else self.g


def test_a_cell_at_its_bound_that_fails_to_switch_twice_is_probed_again_not_called_stuck():
    # at its HRS bound (1 uS) with a 20 uS target: two SET pulses at v_max clip back (no
    # change), the RESET probe cannot move it; the last SET of the probe answers
    bench = ScriptedCell(1e-6, [1e-6, 1e-6, 1e-6, 8e-6])
    result = program_cell(bench, 0, 0, 20e-6, v_set_start=1.3, max_pulses=5)
    assert bench.pulses[:4] == [1.3, 1.3, -1.3, 1.3]
    assert not result.stuck


def test_a_cell_that_answers_no_pulse_either_way_is_stuck():
    bench = ScriptedCell(1e-6, [])
    result = program_cell(bench, 0, 0, 20e-6, v_set_start=1.3)
    assert result.stuck and result.pulses == 4
    assert bench.pulses == [1.3, 1.3, -1.3, 1.3]


@pytest.mark.parametrize("stuck_pulses", [1, 2, 5])
def test_a_stuck_cell_is_found_within_max_pulses_whatever_stuck_pulses(stuck_pulses):
    # the probe's own unanswered pulses never start another probe (no recursion)
    bench = ScriptedCell(1e-6, [])
    result = program_cell(bench, 0, 0, 20e-6, v_set_start=1.3, stuck_pulses=stuck_pulses)
    assert result.stuck and result.pulses == stuck_pulses + 2
    assert bench.pulses == [1.3] * stuck_pulses + [-1.3, 1.3]


def test_a_probe_cut_short_by_max_pulses_ends_the_cell_failed_not_stuck():
    bench = ScriptedCell(1e-6, [])
    result = program_cell(bench, 0, 0, 20e-6, v_set_start=1.3, stuck_pulses=1, max_pulses=2)
    assert result.pulses == 2 and not result.stuck and not result.success


@pytest.mark.parametrize(("arguments", "message"), [
    ({"tolerence": 0.01}, r"'tolerence' is not a parameter of program_cell \(did you mean "
                          r"tolerance, coarse_tolerance\?\)"),
    ({"target": 0.0}, r"target = 0.0 S: allowed a number >= 1e-12 S and <= 1 S"),
    ({"algorithm": "fast"}, "algorithm = 'fast': allowed one of adaptive, ispva, coarse-fine"),
    ({"v_max": 9.0}, r"v_max = 9.0 V: allowed .* <= limits.max_voltage \(5 V\)"),
])
def test_program_cell_refuses_a_bad_argument_before_any_pulse(arguments, message):
    bench = ScriptedCell(1e-6, [])
    arguments = {"target": 20e-6, **arguments}
    with pytest.raises(ParameterError, match=message):
        program_cell(bench, 0, 0, **arguments)
    assert bench.pulses == []
