"""The array board's word-line gates (array_board.md §6.6) on the simulated board."""

from __future__ import annotations

import numpy as np
import pytest
from simhelpers import embedded_text, open_instrument

from xbarlab.benchfile import BenchFileError, parse_bench


@pytest.fixture
def board(open_bench):
    rm, lib = open_bench("board_1t1r", read_noise="false", defects="false")
    return open_instrument(rm, "ASRL3::INSTR"), lib.world


def test_gates_are_set_realised_to_a_millivolt_and_reach_the_chip_rows(board):
    inst, world = board
    assert inst.query("GATE? 3") == "0.000000e+00"  # power-on: every transistor off
    assert inst.query("GATE 3,1.23456") == "OK"
    assert inst.query("GATE? 3") == "1.235000e+00"
    assert world.gate_voltages()[3] == 1.235
    assert inst.query("GATE:ALL 2.5") == "OK"
    assert set(world.gate_voltages()) == {2.5}
    assert inst.query("IDLE FLOAT") == "OK"  # idle: every gate at 0 V
    assert not world.gate_voltages().any()


@pytest.mark.parametrize("command, code", [
    ("GATE 3,5.001", 208), ("GATE 3,-0.1", 208), ("GATE:ALL 6", 208), ("GATE 16,1.0", 103),
    ("GATE R3,1.0", 101), ("GATE 3,1.0,2", 102), ("GATE 3,abc", 101), ("GATE? 16", 103),
])
def test_out_of_range_and_malformed_gates_are_refused_without_effect(board, command, code):
    inst, world = board
    inst.query("GATE:ALL 1.0")
    reply = inst.query(command)
    assert reply.startswith(f"ERR {code},")
    assert set(world.gate_voltages()) == {1.0}
    assert inst.query("ERR?").startswith(f"{code},")


def test_a_closed_row_carries_no_current_and_an_open_one_its_cells(board):
    inst, world = board
    world.array.set_state(np.full((16, 16), 0.5))
    world.changed()
    inst.query("VROW " + ",".join(["0.2"] * 16))
    inst.query("VCOL " + ",".join(["0"] * 16))
    inst.query("GATE 2,3.3")
    rows = np.array([float(x) for x in inst.query("MEAS:ROW?").split(";")[0].split(",")])
    assert np.all(rows[np.arange(16) != 2] == 0.0)
    g = world.array.conductance()[2]
    assert rows[2] == pytest.approx(0.2 * g.sum(), rel=0.01)  # path and wire drops only


def test_the_driver_refuses_a_gate_the_board_cannot_set():
    from xbarlab.drivers.array_board import GATE_VOLTAGE

    with pytest.raises(ValueError, match="row 0 gate voltage"):
        GATE_VOLTAGE("row 0 gate voltage", 5.5)


def test_bench_files_say_which_chips_have_gates():
    text = embedded_text("board_1t1r")
    with pytest.raises(BenchFileError, match="gate_gain"):
        parse_bench(text.replace("gate_gain = 1e-4", ""))
    with pytest.raises(BenchFileError, match="max_gate_voltage"):
        parse_bench(text.replace("max_gate_voltage = 3.3", ""))
    passive = embedded_text("board")
    with pytest.raises(BenchFileError, match="1t1r"):
        parse_bench(passive.replace("max_energy = 1e-3",
                                    "max_energy = 1e-3\nmax_gate_voltage = 3.0"))
