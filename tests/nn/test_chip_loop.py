"""Chip-in-the-loop training on the physics model: recovery, pulse savings, defect awareness.

The chip is `xbarlab.nn.bench_chip.BenchChip` over `model_bench.ModelBench`: a
`CrossbarArray` with ideal lines read cell by cell (the switch-matrix path of
`BenchForward`: each tile read once, programmed cells re-read), so that a test takes a second
or two; board matrix-vector products, parasitics and the full data are in
benchmarks/bench_nn_chip_model.py. The network is put on the array by
setting the states directly (programming by pulses is tested in test_inference.py); every
update afterwards is a real pulse. Tests look inside the array for the truth (defect map,
conductances); the training code never does.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from model_bench import ModelBench

from xbarlab.nn.bench_chip import BenchChip
from xbarlab.nn.chip_loop import ChipLoopConfig, ChipTrainer, DefectAwareness, train_on_chip
from xbarlab.nn.inference import BenchForward
from xbarlab.nn.mapping import ON, ConductanceLevels, cell_targets
from xbarlab.nn.network import QuantizedMLP
from xbarlab.nn.placement import place_layers
from xbarlab.nn.quantize import Quantizer
from xbarlab.nn.training import TrainingConfig, train_software
from xbarlab.nn.updates import NEURON_AWARE, SYNAPSE_AWARE
from xbarlab.physics import BINARY, CrossbarArray, with_stuck_fraction

SIZES = (64, 32, 10)
SHAPE = (100, 84)
TRAIN, TEST = 600, 200  # chip-in-the-loop samples (the software net saw all 1438)
LEVELS = ConductanceLevels(BINARY.g_max, BINARY.g_min)
PLACEMENT = place_layers(SIZES, *SHAPE)
LOOP = ChipLoopConfig(epochs=2, learning_rate=0.003)


@pytest.fixture(scope="module")
def nets(digits):
    return {name: train_software(SIZES, Quantizer(name), digits.x_train, digits.y_train,
                                 TrainingConfig(epochs=10, learning_rate=0.01))
            for name in ("binary", "ternary")}


@pytest.fixture(scope="module")
def net(nets):
    return nets["binary"]


def programmed_bench(net, rate: float, seed: int = 3, **device) -> ModelBench:
    """A board holding `net`, with stuck cells at `rate` (stuck-on : stuck-off as in the
    binary preset)."""
    params = dataclasses.replace(with_stuck_fraction(BINARY, rate), **device)
    array = CrossbarArray(*SHAPE, params, seed=seed, r_wire_row=0.0, r_wire_col=0.0)
    array.set_state(cell_targets(PLACEMENT, [q[0] for q in net.quantized()]) == ON)
    return ModelBench(array, board=False)


def chip_on(bench: ModelBench) -> BenchChip:
    return BenchChip(BenchForward(bench, PLACEMENT, LEVELS, 0.2), bench.one_pulse_programmer())


@pytest.fixture(scope="module")
def defective(net):
    """(bench with 15 % stuck cells, snapshot of its programmed array)."""
    bench = programmed_bench(net, 0.15)
    return bench, bench.array.snapshot()


@pytest.fixture(scope="module")
def every_change(net, digits, defective):
    """(ex-situ accuracy, result, accuracy after, pulses the bench saw) of chip-in-the-loop
    training that reprograms every changed weight, on the defective bench."""
    bench, snapshot = defective
    bench.array.restore(snapshot)
    chip = chip_on(bench)
    x, y = digits.x_test[:TEST], digits.y_test[:TEST]
    ex_situ = net.accuracy(x, y, chip.forward)
    pulses_before = bench.pulses
    result = train_on_chip(chip, net, digits.x_train[:TRAIN], digits.y_train[:TRAIN], LOOP)
    return (ex_situ, result, result.net.accuracy(x, y, chip.forward),
            bench.pulses - pulses_before)


def test_chip_in_the_loop_wins_back_what_stuck_cells_cost_ex_situ(net, digits, every_change):
    x, y = digits.x_test[:TEST], digits.y_test[:TEST]
    software = net.accuracy(x, y)
    ex_situ_healthy = net.accuracy(x, y, chip_on(programmed_bench(net, 0.0)).forward)
    ex_situ, result, recovered, pulsed = every_change
    assert ex_situ_healthy >= software - 0.05  # device spread and read noise only
    assert ex_situ <= ex_situ_healthy - 0.08  # stuck cells cost accuracy ex situ
    assert recovered >= ex_situ + 0.08 and recovered >= software - 0.04
    assert result.pulses == result.writes == pulsed > 0 and result.energy > 0


def test_thresholded_and_gated_updates_use_half_the_pulses_and_still_recover(
        net, digits, defective, every_change):
    bench, snapshot = defective
    ex_situ, every, *_ = every_change
    bench.array.restore(snapshot)
    chip = chip_on(bench)
    result = train_on_chip(chip, net, digits.x_train[:TRAIN], digits.y_train[:TRAIN],
                           dataclasses.replace(LOOP, threshold=0.01, gate_fraction=0.5))
    assert result.pulses <= 0.5 * every.pulses
    assert result.net.accuracy(digits.x_test[:TEST], digits.y_test[:TEST],
                               chip.forward) >= ex_situ + 0.08


def test_synapse_aware_training_never_pulses_a_stuck_cell_and_unaware_training_does(
        net, digits, defective):
    bench, snapshot = defective
    stuck = bench.array.defect_map() != 0
    hits = {}
    for aware in (False, True):
        bench.array.restore(snapshot)
        pulsed = []
        program = bench.one_pulse_programmer()

        def recording(row, col, on, pulsed=pulsed, program=program):
            pulsed.append((row, col))
            return program(row, col, on)

        chip = BenchChip(BenchForward(bench, PLACEMENT, LEVELS, 0.2), recording)
        awareness = DefectAwareness.from_map(PLACEMENT, bench.array.defect_map(),
                                             severe=SIZES[1:], moderate=(0, 0))
        train_on_chip(chip, net, digits.x_train[:300], digits.y_train[:300],
                      dataclasses.replace(LOOP, epochs=1), awareness=awareness if aware
                      else None)
        hits[aware] = sum(stuck[r, c] for r, c in pulsed)
    assert hits[True] == 0 and hits[False] > 0


def test_neuron_aware_training_retrains_only_its_neurons_digital_gain_and_offset(
        net, digits, defective):
    bench, snapshot = defective
    bench.array.restore(snapshot)
    defects = bench.array.defect_map()
    awareness = DefectAwareness.from_map(PLACEMENT, defects, severe=(2, 1), moderate=(5, 2))
    result = train_on_chip(chip_on(bench), net, digits.x_train[:200], digits.y_train[:200],
                           dataclasses.replace(LOOP, epochs=1), awareness=awareness)
    for k, groups in enumerate(awareness.groups):
        changed = (result.net.gains[k] != 1.0) | (result.net.offsets[k] != 0.0)
        assert np.array_equal(changed, groups == NEURON_AWARE)
    tile = PLACEMENT.tiles[0]
    rows = list(tile.rows)
    per_neuron = np.array([(defects[rows, p] != 0).sum() + (defects[rows, m] != 0).sum()
                           for p, m in zip(tile.plus_cols, tile.minus_cols, strict=True)])
    severe = np.flatnonzero(awareness.groups[0] == SYNAPSE_AWARE)
    assert sorted(per_neuron[severe]) == sorted(per_neuron)[-2:]
    known = awareness.plus_codes[0] != 0
    assert set(np.flatnonzero(known.any(axis=0))) <= set(severe)  # codes only where severe
    assert awareness.bits() == 2 * 2 * (65 * 2 + 33 * 1) + 16 * (5 + 2)


class SoftwareChip:
    """The `Chip` interface computed exactly in numpy: products of the programmed levels."""

    def __init__(self, levels):
        self.levels = [np.array(lv) for lv in levels]
        self.energy = 0.0

    def forward(self, layer, inputs):
        return inputs @ self.levels[layer]

    def apply(self, writes):
        plus, minus = self.levels[writes.layer] > 0, self.levels[writes.layer] < 0
        for row, neuron, side, on in zip(writes.rows, writes.neurons, writes.sides,
                                         writes.set_on, strict=True):
            (plus if side > 0 else minus)[row, neuron] = on
        self.levels[writes.layer] = plus.astype(float) - minus
        return len(writes)


@pytest.mark.parametrize("kind", ["binary", "ternary"])
def test_an_ideal_chip_trains_exactly_like_the_software_model_of_the_chip(nets, digits, kind):
    """No defects, spread, noise or line resistance, and pulses that switch fully: measured
    products are x @ levels, so training on the chip follows the software model step by
    step (techniques.md §2.4: with 0 % defects, defect-aware training is ordinary training)."""
    net = nets[kind]
    # ideal: no spread, noise or relaxation, and a kinetics floor above V/2 (0.65 V) so the
    # half-selected cells of a 1.3 V pulse do not drift
    ideal = dict(d2d_sigma=0.0, read_noise=0.0, relax_poly=(0.0,), c2c_sigma=0.0, v_set=0.7,
                 v_reset=-0.7)
    bench = programmed_bench(net, 0.0, **ideal)
    model = SoftwareChip([levels for levels, _ in net.quantized()])
    config = dataclasses.replace(LOOP, epochs=1, gate_fraction=0.5)
    x, y = digits.x_train[:300], digits.y_train[:300]
    on_chip = train_on_chip(chip_on(bench), net, x, y, config)
    in_software = train_on_chip(model, net, x, y, config)
    assert on_chip.writes > 0
    assert [e.writes for e in on_chip.epochs] == [e.writes for e in in_software.epochs]
    for a, b in zip(on_chip.programmed, in_software.programmed, strict=True):
        assert np.array_equal(a, b)
    for a, b in zip(on_chip.net.weights, in_software.net.weights, strict=True):
        assert np.allclose(a, b, rtol=0, atol=1e-9)
    g = bench.array.conductance()
    assert np.array_equal(g > 50e-6, cell_targets(PLACEMENT, on_chip.programmed) == ON)


def test_a_run_checkpointed_after_an_epoch_resumes_to_the_same_result(net, digits):
    x, y = digits.x_train[:200], digits.y_train[:200]
    config = dataclasses.replace(LOOP, epochs=2, gate_fraction=0.5, threshold=0.005)
    straight_chip = SoftwareChip([levels for levels, _ in net.quantized()])
    straight = train_on_chip(straight_chip, net, x, y, config)
    chip = SoftwareChip([levels for levels, _ in net.quantized()])
    first = ChipTrainer(chip, net, x, y, config)
    first.run_epoch()
    saved = json.loads(json.dumps(first.state()))  # as a run store would keep it
    resumed = ChipTrainer(chip, net, x, y, config)
    resumed.load_state(saved)
    resumed.run_epoch()
    result = resumed.result()
    assert straight.writes > 0 and result.epochs == straight.epochs
    for a, b in zip(result.net.weights + result.programmed,
                    straight.net.weights + straight.programmed, strict=True):
        assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="saved weights do not fit this network"):
        ChipTrainer(chip, QuantizedMLP.initialised((64, 8, 10), Quantizer("binary"), 0), x,
                    y).load_state(saved)


def test_bad_settings_and_a_float_network_are_refused(net, digits):
    with pytest.raises(ValueError, match="gate_fraction = 1.5: allowed 0 < f <= 1"):
        ChipLoopConfig(gate_fraction=1.5)
    with pytest.raises(ValueError, match="threshold = -0.1: allowed >= 0"):
        ChipLoopConfig(threshold=-0.1)
    floating = net.copy()
    floating.quantizer = Quantizer("float")
    with pytest.raises(ValueError, match="needs a binary or ternary network; got 'float'"):
        train_on_chip(SoftwareChip(net.weights), floating, digits.x_train[:2],
                      digits.y_train[:2])
