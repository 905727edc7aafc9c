"""A 1T1R chip on the array board: gates closed on unselected rows, compliance by gate, safety.

The World is reached only to set up the chip and to check against its truth (true
conductances, gate voltages after the bench closed), never to produce a measurement.
"""

from __future__ import annotations

import importlib.resources
import math

import numpy as np
import pytest
import pyvisa

from xbarlab.bench import open_bench
from xbarlab.benches import with_sim
from xbarlab.safety import LimitError

V_T, K = 0.5, 1e-4  # the bench file's transistor datasheet (and the binary preset's truth)


@pytest.fixture
def bench_path(tmp_path):
    text = importlib.resources.files("xbarlab.benches").joinpath("board_1t1r.toml").read_text()
    path = tmp_path / "board_1t1r.toml"
    path.write_text(with_sim(text, defects=False))
    return path


def world_of(path):
    return pyvisa.ResourceManager(f"{path}@xbarsim").visalib.world


def test_closed_gates_remove_the_sneak_paths_of_a_read(bench_path):
    with open_bench(str(bench_path)) as bench:
        world = world_of(bench_path)
        state = np.ones((16, 16))
        state[5, 7] = 0.0  # one HRS cell among LRS cells: the worst case for sneak paths
        world.array.set_state(state)
        world.changed()
        truth = world.array.conductance()[5, 7]
        gated = bench.read(5, 7, 0.2).current / 0.2
        assert world.gate_voltages().tolist() == [3.3 if r == 5 else 0.0 for r in range(16)]
        board = bench.boards["board"]
        board.set_all_gates(3.3)  # every transistor on: the chip as a passive crossbar
        passive = board.read_one(5, 7, 0.2).current / 0.2
    gated_error, passive_error = abs(gated / truth - 1), abs(passive / truth - 1)
    assert gated_error < 0.05  # read noise (1 % at g_max) and path resistance only
    assert passive_error > 20 * gated_error and passive_error > 1.0


def test_set_compliance_is_the_saturation_current_of_the_gate_the_bench_chose(bench_path):
    compliances = {36e-6: range(0, 8), 64e-6: range(8, 16)}
    with open_bench(str(bench_path)) as bench:
        world = world_of(bench_path)
        world.array.set_state(0.0)
        world.changed()
        board = bench.boards["board"]
        ratios = {}
        for amperes, rows in compliances.items():
            gate = V_T + math.sqrt(amperes / K)  # the square law, by hand: 1.1 V and 1.3 V
            for row in rows:
                bench.pulse(row, row, 1.3, 1e-5, current_limit=amperes)
                assert board.gate(row) == pytest.approx(gate, abs=5e-4)  # 1 mV resolution
            g = world.array.conductance()[list(rows), list(rows)]
            ratios[amperes] = g * 1.3 / amperes  # the cell current at the pulse, per I_cc
    for ratio in ratios.values():
        # each landing spreads by cc_sigma = 4 %; eight cells average to 1.4 %
        assert np.all(np.abs(ratio - 1.0) < 0.2)
        assert ratio.mean() == pytest.approx(1.0, abs=0.05)
    # a linear law of the gate would give (1.3 - 0.5) / (1.1 - 0.5) = 1.33 instead of 1.78
    assert ratios[64e-6].mean() * 64 / (ratios[36e-6].mean() * 36) == pytest.approx(
        64 / 36, rel=0.05)


def test_a_gate_above_the_limit_is_refused_before_anything_is_sent(bench_path):
    with open_bench(str(bench_path)) as bench:
        bench.read(0, 0, 0.2)
        before = bench.io.total
        with pytest.raises(LimitError, match="limits.max_gate_voltage"):
            bench.pulse(2, 3, 1.3, 1e-5, current_limit=1e-3)  # needs 0.5 + sqrt(10) = 3.66 V
        with pytest.raises(LimitError, match="limits.max_gate_voltage"):
            bench.boards["board"].set_gate(0, 4.0)
        assert bench.io.total == before


def test_every_gate_is_off_after_the_bench_closes_even_on_an_error(bench_path):
    with pytest.raises(RuntimeError, match="boom"), open_bench(str(bench_path)) as bench:
        world = world_of(bench_path)
        bench.pulse(1, 1, -1.3, 1e-5)  # a RESET opens its row fully
        assert world.gate_voltages()[1] == pytest.approx(3.3)
        raise RuntimeError("boom")
    assert not world.gate_voltages().any()
    assert {world.board_level("board", ch) for ch in range(1, 33)} == {"F"}


def test_an_mvm_opens_every_row_in_one_command_and_reads_the_true_product(bench_path):
    with open_bench(str(bench_path)) as bench:
        world = world_of(bench_path)
        bench.read(0, 0, 0.2)
        v = np.linspace(0.0, 0.2, 16)
        result = bench.mvm(v)
        assert set(world.gate_voltages()) == {3.3}
        ideal = v @ world.array.conductance()
    assert np.max(np.abs(result.currents - ideal)) / np.max(ideal) < 0.05
