"""Each driver runs a full configure -> measure -> sweep -> pulse -> shutdown cycle against the
virtual bench (`@xbarsim`, strict grammar: any command it does not know raises at once).

The checks are physical, not echoes: the current measured at the row terminal comes back out of the
column terminal (Kirchhoff), a higher read voltage gives a higher current, a tight limit puts the
source in compliance at that limit, and shutdown leaves outputs off and relays open.
"""

from __future__ import annotations

import numpy as np
import pytest
from xbarlab.drivers.array_board import ArrayBoard
from xbarlab.drivers.errors import InstrumentError
from xbarlab.drivers.keithley707b import Keithley707B
from xbarlab.drivers.keithley2400 import Keithley2400
from xbarlab.drivers.keithley2450 import Keithley2450
from xbarlab.drivers.keithley2600 import Keithley2600
from xbarlab.drivers.keysight_b2900 import KeysightB2900
from xbarlab.drivers.keysight_e5250a import KeysightE5250A

from xbarlab.interfaces import LineState


def read_cell_cycle(row_smu, column_smu):
    """Configure both terminals, then measure, sweep, check compliance, pulse, and shut down."""
    row_smu.source_voltage(0.0, current_limit=1e-3)
    column_smu.source_voltage(0.0, current_limit=1e-3)
    row_smu.set_nplc(1)
    row_smu.set_current_range(None)
    row_smu.output_on()
    column_smu.output_on()
    assert row_smu.output_enabled()

    row_smu.source_voltage(0.2, current_limit=1e-3)
    into_row, out_of_column = row_smu.measure(), column_smu.measure()
    assert into_row.voltage == pytest.approx(0.2, abs=1e-3)
    assert into_row.current > 0 and not into_row.compliance
    assert out_of_column.current == pytest.approx(-into_row.current, rel=0.05)

    readings = row_smu.sweep([0.05, 0.1, 0.2], delay=1e-3)
    assert [r.voltage for r in readings] == pytest.approx([0.05, 0.1, 0.2], abs=1e-3)
    currents = [r.current for r in readings]
    assert currents[0] < currents[1] < currents[2]
    assert not any(r.compliance for r in readings)

    row_smu.source_voltage(1.0, current_limit=1e-7)
    limited = row_smu.measure()
    assert limited.compliance
    assert abs(limited.current) == pytest.approx(1e-7, rel=0.02)

    row_smu.source_voltage(0.0, current_limit=1e-3)
    return readings


def finish(row_smu, column_smu):
    row_smu.shutdown()
    column_smu.shutdown()
    assert not row_smu.output_enabled() and not column_smu.output_enabled()


def test_keithley2600_and_707b_on_the_default_bench(virtual_bench):
    rm = virtual_bench("default")
    smu = Keithley2600(rm.open_resource("GPIB0::26::INSTR"))
    matrix = Keithley707B(rm.open_resource("GPIB0::18::INSTR"))
    row, column = matrix.crosspoint(1, 1), matrix.crosspoint(2, 37)  # row 0, column 0
    matrix.set_forbidden([matrix.crosspoint(1, 2)])
    matrix.exclusive_close([row, column])
    assert matrix.closed() == {row, column}
    read_cell_cycle(smu.channel("a"), smu.channel("b"))
    smu.smua.pulse(1.0, width=1e-3, count=2, period=5e-3)
    finish(smu.smua, smu.smub)
    matrix.shutdown()
    assert matrix.closed() == frozenset()
    smu.disconnect()
    matrix.disconnect()


def test_keithley2400_2450_and_707b_on_the_classic_bench(virtual_bench):
    rm = virtual_bench("classic")
    row_smu = Keithley2400(rm.open_resource("GPIB0::25::INSTR"))
    column_smu = Keithley2450(rm.open_resource("GPIB0::24::INSTR"))
    matrix = Keithley707B(rm.open_resource("GPIB0::18::INSTR"), cards=3)
    row, column = matrix.crosspoint(1, 1), matrix.crosspoint(2, 17)
    matrix.exclusive_close([row, column])
    read_cell_cycle(row_smu, column_smu)
    with pytest.raises(NotImplementedError, match="2400 has no pulse mode"):
        row_smu.pulse(1.0, width=1e-3)
    column_smu.pulse(-1.0, width=2e-3, count=2, period=1e-2)
    finish(row_smu, column_smu)
    matrix.shutdown()
    assert matrix.closed() == frozenset()
    for driver in (row_smu, column_smu, matrix):
        driver.disconnect()


def test_2450_on_the_row_side_sweeps_and_pulses(virtual_bench):
    rm = virtual_bench("classic")
    column_smu = Keithley2400(rm.open_resource("GPIB0::25::INSTR"))
    row_smu = Keithley2450(rm.open_resource("GPIB0::24::INSTR"))
    matrix = Keithley707B(rm.open_resource("GPIB0::18::INSTR"), cards=3)
    matrix.exclusive_close([matrix.crosspoint(2, 1), matrix.crosspoint(1, 17)])
    read_cell_cycle(row_smu, column_smu)
    finish(row_smu, column_smu)
    for driver in (row_smu, column_smu, matrix):
        driver.disconnect()


def test_keysight_b2900_and_e5250a_on_the_keysight_bench(virtual_bench):
    rm = virtual_bench("keysight")
    smu = KeysightB2900(rm.open_resource("GPIB0::23::INSTR"))
    matrix = KeysightE5250A(rm.open_resource("GPIB0::22::INSTR"), cards=3)
    row, column = matrix.crosspoint(1, 1), matrix.crosspoint(2, 17)
    matrix.exclusive_close([row, column])
    assert matrix.closed() == {row, column}
    with pytest.raises(ValueError, match="two sources on one line"):
        matrix.close(matrix.crosspoint(2, 1))
    read_cell_cycle(smu.channel(1), smu.channel(2))
    smu.channel(1).pulse(1.0, width=1e-4, count=3, period=1e-3)
    finish(smu.channel(1), smu.channel(2))
    matrix.shutdown()
    assert matrix.closed() == frozenset()
    smu.disconnect()
    matrix.disconnect()


def test_array_board_on_the_board_bench(virtual_bench):
    rm = virtual_bench("board")
    board = ArrayBoard(rm.open_resource("ASRL1::INSTR"))
    assert (board.rows, board.columns) == (128, 128)
    board.set_voltage_limit(5.0)
    board.set_current_limit(1e-3)
    board.set_integration_time(1e-4)
    floating = [LineState.FLOAT] * 127

    board.set_rows([0.2, *floating])
    board.set_columns([0.0] * 128)
    everything = board.measure_currents()
    assert everything.row_currents[0] > 0 and np.isnan(everything.row_currents[1:]).all()
    assert everything.column_currents.sum() == pytest.approx(-everything.row_currents[0], rel=0.02)
    assert not everything.row_compliance.any() and not everything.column_compliance.any()

    board.set_columns([0.0, *floating])
    alone = board.measure_currents().row_currents[0]
    assert board.read_one(0, 0, 0.2).current == pytest.approx(alone, rel=0.05)
    assert board.line_levels()[1][1] is LineState.FLOAT  # read_one restored the levels

    board.set_current_limit(1e-7)
    board.set_rows([2.0, *floating])
    limited = board.measure_currents()  # one series path: whichever driver limits, it is flagged
    assert limited.row_compliance[0] or limited.column_compliance[0]
    assert limited.row_currents[0] == pytest.approx(1e-7, rel=0.02)
    assert limited.column_currents[0] == pytest.approx(-1e-7, rel=0.02)
    board.set_current_limit(1e-3)

    board.set_rows([LineState.FLOAT] * 128)
    board.set_lines(rows={0: 0.0})
    board.pulse(1e-5, rows={0: 1.0}, columns={0: 0.0})
    board.pulse(1e-5, rows={0: 1.0}, columns={0: 0.0}, count=3, period=1e-4)
    rows, columns = board.limit_flags()
    assert rows.shape == (128,) and columns.shape == (128,)

    with pytest.raises(InstrumentError) as info:
        board._set("VROW 0.0")  # one level for 128 rows: the board's own check, code 102
    assert (info.value.code, info.value.message) == (102, "Wrong number of values")
    assert board.error_count() == 0

    board.set_idle_mode(LineState.GROUND)
    board.shutdown()
    rows, columns = board.line_levels()
    assert set(rows) == set(columns) == {LineState.GROUND}
    board.disconnect()
