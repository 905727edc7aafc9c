"""``train``: the defect map against the World's hidden one, defect-aware placement, ex-situ
accuracy against the accuracy the chip's true conductances give, chip-in-the-loop training with
thresholded updates against reprogramming every change, the pulse account, resume, the
figures, a switch-matrix bench and parameter errors.

The benches are small (a 40 x 40 array board with 10 % stuck cells, a 10 x 28 switch-matrix
bench) and the network small (the digits pooled to 4 x 4 or 2 x 2, a few hidden neurons), so
every run takes seconds; tests look inside the World for the truth, the protocol never does.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from boards import write_board
from dryruns import dry_report
from xbarlab.protocols.train_figures import train_figures

from xbarlab.nn.data import load_digits_split, pooled
from xbarlab.nn.defects import STUCK_OFF, STUCK_ON, UNRESPONSIVE, effective_levels
from xbarlab.nn.mapping import OFF, ON, cell_targets
from xbarlab.nn.network import QuantizedMLP
from xbarlab.nn.placement import Placement, place_layers
from xbarlab.nn.quantize import Quantizer
from xbarlab.physics.device import HEALTHY as WORLD_HEALTHY
from xbarlab.physics.device import STUCK_OFF as WORLD_STUCK_OFF
from xbarlab.physics.device import STUCK_ON as WORLD_STUCK_ON
from xbarlab.store import RunStore

SMALL = {"quantizer": "ternary", "pool": 2, "hidden": 8, "train_epochs": 40,
         "loop_samples": 40, "test_samples": 60, "seed": 3}
"""A 16-8-10 network: tiles of 17 x 16 and 9 x 20 cells, spare lines on a 40 x 40 board."""


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    return write_board(tmp_path_factory.mktemp("train-board"), 40, 11, stuck_fraction=0.1)


@pytest.fixture(scope="module")
def compared(board, run_named, tmp_path_factory):
    """Two epochs on the chip with thresholded, gated updates, then the same from the ex-situ
    chip reprogramming every change."""
    return run_named("train", board, tmp_path_factory.mktemp("compared") / "store",
                        loop_epochs=2, compare=True, learning_rate=0.01, threshold=0.02,
                     gate_fraction=0.5, **SMALL)


@pytest.fixture(scope="module")
def resumed(board, run_named, stop_after, tmp_path_factory):
    """Two epochs on the chip, interrupted after the first and resumed: (the checkpoints when
    it stopped, the resumed run's outcome)."""
    store = tmp_path_factory.mktemp("resumed") / "store"
    params = {**SMALL, "loop_epochs": 2}
    with pytest.raises(KeyboardInterrupt):
        run_named("train", board, store, progress=stop_after(5), **params)  # after epoch 1
    with RunStore(store) as runs:
        before = runs.open_run(1).checkpoints()
    return before, run_named("train", board, store, resume=1, **params)


def _stored(outcome):
    with RunStore(outcome.store) as store:
        run = store.open_run(outcome.run_id)
        return run.checkpoints(), run.latest_map("defects"), run.points()


def _cells_on(world, placement: Placement, levels) -> np.ndarray:
    """Per array cell: True where the World's hidden conductance is nearer g_on than g_off
    (geometric mean of the preset's window), as the weights' cells see it."""
    g = world.conductance()
    targets = cell_targets(placement, levels)
    on, off = np.median(g[targets == ON]), np.median(g[targets == OFF])
    return g > math.sqrt(on * off)


def _held_levels(on: np.ndarray, placement: Placement) -> list[np.ndarray]:
    """The weights the chip holds: (plus cell on) - (minus cell on), tile by tile."""
    out = []
    for tile in placement.tiles:
        rows, plus, minus = tile.cells()
        out.append(on[rows, plus].astype(float) - on[rows, minus].astype(float))
    return out


def _true_products(world, placement: Placement, checkpoints):
    """Products from the World's hidden conductances, decoded with the run's measured levels:
    the measurement without the array's wires and read noise."""
    g = world.conductance()
    g_on, g_off = checkpoints["placement"]["levels"]

    def products(k: int, inputs: np.ndarray) -> np.ndarray:
        rows, plus, minus = placement.tiles[k].cells()
        return inputs @ (g[rows, plus] - g[rows, minus]) / (g_on - g_off)

    return products


def _software_net(checkpoints, quantizer: str = "ternary") -> QuantizedMLP:
    weights = [np.asarray(w) for w in checkpoints["software"]["weights"]]
    sizes = [weights[0].shape[0] - 1, *(w.shape[1] for w in weights)]
    return QuantizedMLP(sizes, Quantizer(quantizer), weights)


def _test_images(count: int, pool: int = 2):
    split = pooled(load_digits_split(), pool)
    return split.x_test[:count], split.y_test[:count]


def test_the_measured_defect_map_names_only_true_defects_and_finds_every_stuck_on_cell(resumed):
    outcome = resumed[1]
    checkpoints, defects, _ = _stored(outcome)
    truth = outcome.world.array.defect_map()  # a resumed run's World: the same seed, defects
    assert np.isfinite(defects).all()  # the characterisation read every cell of the chip
    assert (truth == WORLD_STUCK_ON).sum() > 20 and (truth == WORLD_STUCK_OFF).sum() > 20
    assert np.all(truth[defects == STUCK_ON] == WORLD_STUCK_ON)
    assert np.all(truth[defects == STUCK_OFF] == WORLD_STUCK_OFF)
    assert np.all(defects[truth == WORLD_STUCK_ON] == STUCK_ON)
    # stuck-off shows only when a cell is asked to switch on: every one the tiles wanted on
    placement = Placement.from_dict(checkpoints["placement"]["placement"])
    levels = [q[0] for q in _software_net(checkpoints).quantized()]
    wanted_on = cell_targets(placement, levels) == ON
    assert np.all(defects[(truth == WORLD_STUCK_OFF) & wanted_on] == STUCK_OFF)
    assert not np.any(defects == UNRESPONSIVE)
    m = outcome.metrics["defects"]
    assert m["stuck_on"] == int((truth == WORLD_STUCK_ON).sum())
    assert m["examined"] == 40 * 40


def test_defect_aware_placement_holds_fewer_true_defects_than_the_first_placement(resumed):
    outcome = resumed[1]
    checkpoints, _, _ = _stored(outcome)
    truth = outcome.world.array.defect_map() != WORLD_HEALTHY
    placement = Placement.from_dict(checkpoints["placement"]["placement"])
    first = place_layers(_software_net(checkpoints).sizes, 40, 40)

    def defective(p: Placement) -> int:
        return sum(int(truth[np.ix_(t.rows, t.cols)].sum()) for t in p.tiles)

    assert defective(placement) < defective(first)
    assert outcome.metrics["placement"] == placement.to_dict()


def test_the_chip_holds_the_trained_levels_around_its_true_defects(resumed):
    outcome = resumed[1]
    checkpoints, _, _ = _stored(outcome)
    placement = Placement.from_dict(checkpoints["placement"]["placement"])
    levels = [np.asarray(v) for v in checkpoints["loop"]["state"]["levels"]]
    held = _held_levels(_cells_on(outcome.world, placement, levels), placement)
    truth = outcome.world.array.defect_map()
    codes = np.select([truth == WORLD_STUCK_ON, truth == WORLD_STUCK_OFF], [STUCK_ON, STUCK_OFF],
                      0)
    for tile, level, have in zip(placement.tiles, levels, held, strict=True):
        rows, plus, minus = tile.cells()
        assert np.array_equal(have, effective_levels(level, codes[rows, plus],
                                                     codes[rows, minus]))


def test_every_pulse_is_a_point_of_the_run_and_counted_in_its_phase(compared):
    _, _, points = _stored(compared)
    m = compared.metrics
    pulses = [p for p in points if p.operation in ("set", "reset")]
    assert m["pulses"] == len(pulses) > 0
    assert m["pulses"] == sum(phase["pulses"] for phase in m["phases"].values())
    assert {"characterise", "program", "ex_situ", "loop", "baseline"} <= set(m["phases"])
    # the board measured every pulse's delivered energy: nothing estimated, and each phase's
    # share adds up to the total
    assert m["energy_measured"] is True
    assert m["energy_j"] == pytest.approx(sum(p["energy_j"] for p in m["phases"].values()),
                                          rel=1e-12)
    assert 0 < m["bench_time_s"] <= sum(p["wall_s"] for p in m["phases"].values())
    assert sum(r["pulses"] for r in m["epochs"]) == m["phases"]["loop"]["pulses"]


def test_thresholded_gated_updates_use_fewer_pulses_than_reprogramming_every_change(compared):
    c = compared.metrics["comparison"]
    assert 0 < c["pulses_efficient"] < c["pulses_every_change"]
    assert c["pulse_saving"] == pytest.approx(
        1 - c["pulses_efficient"] / c["pulses_every_change"])
    assert c["energy_j_efficient"] < c["energy_j_every_change"]
    assert len(c["epochs_every_change"]) == 2 and len(compared.metrics["epochs"]) == 2


def test_an_interrupted_run_resumes_from_its_last_epoch(resumed):
    before, outcome = resumed
    assert len(before["loop"]["state"]["records"]) == 1
    m = outcome.metrics
    assert m["epochs"][0] == before["loop"]["state"]["records"][0]
    assert [r["epoch"] for r in m["epochs"]] == [0, 1] and "restore" in m["phases"]
    assert m["accuracy_ex_situ"] == before["ex_situ"]
    assert m["phases"]["program"] == before["ledger"]["program"]  # not programmed again


def test_chip_in_the_loop_accuracy_is_what_the_trained_weights_give_on_the_true_chip(resumed):
    _, outcome = resumed
    checkpoints, _, _ = _stored(outcome)
    placement = Placement.from_dict(checkpoints["placement"]["placement"])
    state = checkpoints["loop"]["state"]
    net = _software_net(checkpoints)
    x, y = _test_images(SMALL["test_samples"])
    assert outcome.metrics["accuracy_software"] == pytest.approx(net.accuracy(x, y), abs=1e-12)
    for name in ("weights", "gains", "offsets"):
        for target, saved in zip(getattr(net, name), state[name], strict=True):
            target[...] = np.asarray(saved)
    # the chip's true conductances in software: what the measured products give, up to the
    # wires' IR drop, read noise and the drift of half-selected cells
    expected = net.accuracy(x, y, _true_products(outcome.world, placement, checkpoints))
    m = outcome.metrics
    # three images of the test set (two before the kinetics lost their hard threshold; the
    # drift's share is not separated out)
    assert m["accuracy_chip_in_loop"] == pytest.approx(expected, abs=3.01 / len(y))
    assert m["accuracy_chip_in_loop"] >= m["accuracy_ex_situ"] - 0.05


def test_the_figures_are_drawn_from_the_stored_run(compared):
    with RunStore(compared.store) as store:
        figures = dict(train_figures(store.open_run(compared.run_id)))
    assert len(figures) == 3
    accuracy = next(f for caption, f in figures.items() if caption.startswith("accuracy"))
    lines = accuracy.axes[0].get_lines()
    assert {line.get_label() for line in lines} >= {"efficient updates: training images",
                                                   "every change: training images"}


def test_it_runs_unchanged_on_a_switch_matrix_bench(bench_file, run_named, tmp_path):
    path = bench_file(rows=10, cols=28, seed=5)
    outcome = run_named("train", path, tmp_path / "store", quantizer="ternary", pool=4,
                        hidden=4, train_epochs=40, loop_epochs=1, loop_samples=20,
                        test_samples=30, seed=1, width=1e-4)
    m = outcome.metrics
    assert m["inference"] == "read" and m["network"] == "4-4-10"
    assert m["pulses"] > 0 and math.isfinite(m["accuracy_ex_situ"])
    assert len(m["epochs"]) == 1 and math.isfinite(m["accuracy_chip_in_loop"])


def test_dry_run_pulses_within_the_bench_limits_and_stops_where_nothing_is_measured(board):
    report = dry_report("train", str(board), **{**SMALL, "loop_epochs": 1})
    summary = report.summary()
    assert not summary["violations"] and summary["max_abs_voltage"] == pytest.approx(1.6)
    assert summary["pulses"] > 16  # the probe cells and every on cell of the tiles


@pytest.mark.parametrize(("params", "message"), [
    ({"hidden": 30}, r"hidden = 30: a 16-30-10 network does not fit the chip's 40 x 40 cells"),
    ({"pool": 3}, r"pool = 3: allowed 1, 2, 4 or 8"),
    ({"quantizer": "float"}, r"quantizer = 'float'.*allowed.*binary, ternary"),
    ({"mode": "in-situ"}, r"mode = 'in-situ'.*allowed.*ex-situ, chip-in-the-loop"),
    ({"loop_epochs": 0}, r"loop_epochs = 0: allowed an integer >= 1"),
])
def test_bad_parameters_are_refused_before_any_pulse(board, run_named, tmp_path, params,
                                                     message):
    with pytest.raises(ValueError, match=message):
        run_named("train", board, tmp_path / "store", **{**SMALL, **params})
    with RunStore(tmp_path / "store") as runs:
        assert runs.open_run(1).points() == []
