"""The default bench (2636B + 707B) through raw VISA commands, against direct physics solves."""

from __future__ import annotations

import numpy as np
import pytest
from simhelpers import k707b_channel as channel
from simhelpers import open_default_quiet, open_instrument
from virtualbenches import reading_quantum
from xbarlab.sim_instruments import UnknownCommand

R_PATH = 2.0  # the default bench's [sim] r_path_row / r_path_col


@pytest.fixture
def default(open_bench):
    return open_default_quiet(open_bench)


def row_output(i):  # default bench: rows on outputs 1-32, columns on 37-68
    return i + 1


def col_output(j):
    return j + 37


def quantum(current: float) -> float:
    """How far a noise-free 2636B reading of `current` may be from it (its range's
    resolution), with room for the last digit."""
    return reading_quantum("2636B", current) * (1 + 1e-6)


def direct(world, v_row, v_col, r_source, r_sense):
    arr = world.array.copy()
    return arr.solve(v_row, v_col, r_source=r_source, r_sense=r_sense, read_noise=False)


def read_cell(smu, matrix, i, j, v, ground_others=False):
    closes = [channel("A", row_output(i)), channel("B", col_output(j))]
    if ground_others:
        closes += [channel("H", row_output(k)) for k in range(32) if k != i]
        closes += [channel("H", col_output(k)) for k in range(32) if k != j]
    matrix.write(f'channel.exclusiveclose("{",".join(closes)}")')
    smu.write(f"smua.source.levelv = {v}")
    smu.write("smub.source.levelv = 0")
    smu.write("smua.source.output = smua.OUTPUT_ON")
    smu.write("smub.source.output = smub.OUTPUT_ON")
    return float(smu.query("print(smua.measure.i())")), float(smu.query("print(smub.measure.i())"))


@pytest.mark.parametrize("i,j", [(0, 0), (5, 17), (31, 31)])
def test_floating_read_matches_direct_solve(default, i, j):
    smu, matrix, world = default
    i_a, i_b = read_cell(smu, matrix, i, j, 0.2)
    v_row = np.full(32, np.nan)
    v_row[i] = 0.2
    v_col = np.full(32, np.nan)
    v_col[j] = 0.0
    sol = direct(world, v_row, v_col, R_PATH, R_PATH)
    # the direct solve's current, to the resolution of the range the 2636B reads it on
    assert i_a == pytest.approx(sol.i_row[i], rel=1e-9, abs=quantum(sol.i_row[i]))
    assert i_b == pytest.approx(-sol.i_col[j], rel=1e-9, abs=quantum(sol.i_col[j]))
    # the floating scheme sees sneak paths: more than the selected cell alone could carry
    g = world.array.conductance()[i, j]
    assert abs(i_a) > 0.2 * g / (1 + 2 * R_PATH * g) * (1 + 1e-6)


def test_grounded_read_matches_direct_solve(default):
    smu, matrix, world = default
    i, j = 3, 9
    i_a, i_b = read_cell(smu, matrix, i, j, 0.2, ground_others=True)
    v_row = np.zeros(32)
    v_row[i] = 0.2
    v_col = np.zeros(32)
    sol = direct(world, v_row, v_col, R_PATH, R_PATH)
    assert i_a == pytest.approx(sol.i_row[i], rel=1e-9, abs=quantum(sol.i_row[i]))
    assert i_b == pytest.approx(-sol.i_col[j], rel=1e-9, abs=quantum(sol.i_col[j]))
    # closing everything to ground changes the answer (sneak currents go to ground instead)
    assert abs(i_a) > abs(i_b)


def test_current_limit_makes_a_current_source(default):
    smu, matrix, world = default
    smu.write("smua.source.limiti = 1e-6")
    i_a, _ = read_cell(smu, matrix, 2, 2, 2.0)
    assert i_a == pytest.approx(1e-6, rel=1e-12)
    assert smu.query("print(smua.source.compliance)") == "true"
    assert smu.query("print(smub.source.compliance)") == "false"
    v_a = float(smu.query("print(smua.measure.v())"))
    assert 0.0 < v_a < 2.0
    # the reported voltage, solved directly, gives exactly the limit current
    v_row = np.full(32, np.nan)
    v_row[2] = v_a
    v_col = np.full(32, np.nan)
    v_col[2] = 0.0
    sol = direct(world, v_row, v_col, R_PATH, R_PATH)
    assert sol.i_row[2] == pytest.approx(1e-6, rel=1e-9)
    # a limit above the load's demand releases compliance
    smu.write("smua.source.limiti = 1e-1")
    assert smu.query("print(smua.source.compliance)") == "false"
    assert float(smu.query("print(smua.measure.v())")) == pytest.approx(2.0, rel=1e-12)


def test_current_source_with_voltage_limit(default):
    smu, matrix, world = default
    matrix.write(f'channel.close("{channel("A", 1)},{channel("B", 37)}")')
    smu.write("smua.source.func = smua.OUTPUT_DCAMPS")
    smu.write("smua.source.leveli = 1e-7")
    smu.write("smua.source.limitv = 1")
    smu.write("smua.source.output = smua.OUTPUT_ON")
    smu.write("smub.source.output = smub.OUTPUT_ON")
    assert float(smu.query("print(smua.measure.i())")) == pytest.approx(1e-7, rel=1e-12)
    assert smu.query("print(smua.source.compliance)") == "false"
    smu.write("smua.source.leveli = 1e-2")  # needs far more than 1 V: voltage limit holds
    assert float(smu.query("print(smua.measure.v())")) == pytest.approx(1.0, rel=1e-12)
    assert smu.query("print(smua.source.compliance)") == "true"
    # into an open circuit a current source runs to its voltage limit
    matrix.write('channel.open("allslots")')
    assert float(smu.query("print(smua.measure.v())")) == pytest.approx(1.0, rel=1e-12)


def test_pulse_moves_cells_as_the_solve_says(default):
    smu, matrix, world = default
    i, j, v, width = 4, 6, 2.5, 1e-6
    matrix.write(f'channel.close("{channel("A", row_output(i))},{channel("B", col_output(j))}")')
    before = world.array.copy()
    g0 = world.array.conductance()
    smu.write(f"smua.source.levelv = {v}")
    smu.write("smua.source.output = smua.OUTPUT_ON")
    smu.write("smub.source.output = smub.OUTPUT_ON")
    smu.write(f"delay({width})")
    smu.write("smua.source.output = smua.OUTPUT_OFF")
    v_row = np.full(32, np.nan)
    v_row[i] = v
    v_col = np.full(32, np.nan)
    v_col[j] = 0.0
    result = before.apply(v_row, v_col, width, r_source=R_PATH, r_sense=R_PATH)
    g1 = world.array.conductance()
    np.testing.assert_array_equal(g1, before.conductance())
    healthy = world.array.defect_map() == 0
    assert healthy[i, j] and g1[i, j] > g0[i, j]  # the selected cell SET
    seen = np.abs(result.solution.v_cell)
    half = np.zeros_like(healthy)
    half[i, :] = half[:, j] = True
    half[i, j] = False
    # with the other lines floating, half-selected cells see more than the threshold: disturb
    assert ((g1 != g0) & half).any()
    assert (seen[g1 != g0] > world.switching_threshold()).all()  # nothing below it moved
    assert world.clock >= width


def test_strict_unknown_command_raises_and_queues(default):
    smu, matrix, _ = default
    with pytest.raises(
        UnknownCommand, match=r"keithley_2636b at GPIB0::26::INSTR.*smua\.source\.levlv"
    ):
        smu.write("smua.source.levlv = 1")
    assert smu.query("print(errorqueue.count)").startswith("1.")
    assert smu.query("print(errorqueue.next())").startswith("-2.85")
    with pytest.raises(UnknownCommand, match="707B|keithley_707b"):
        matrix.write('channel.close("1A01"')


def test_out_of_range_queues_data_error_and_keeps_value(default):
    smu, matrix, _ = default
    smu.write("smua.source.levelv = 1.5")
    smu.write("smua.source.levelv = 250")
    assert float(smu.query("print(smua.source.levelv)")) == 1.5
    code, message = smu.query("print(errorqueue.next())").split("\t")[:2]
    assert (float(code), message) == (-222.0, "Parameter data out of range")
    matrix.write('channel.close("7A01")')  # no slot 7
    matrix.write('channel.close("1J01")')  # no row J
    assert matrix.query('print(channel.getclose("allslots"))') == "nil"
    assert matrix.query("print(errorqueue.count)") == "2.00000e+00"


def test_getclose_lists_sorted_channels(default):
    _, matrix, _ = default
    matrix.write('channel.close("2B03,1A01")')
    matrix.write('channel.close("1C01:1C03")')
    assert matrix.query('print(channel.getclose("allslots"))') == "1A01;1C01;1C02;1C03;2B03"
    assert matrix.query('print(channel.getclose("slot2"))') == "2B03"
    matrix.write('channel.exclusiveclose("6H12")')
    assert matrix.query('print(channel.getclose("allslots"))') == "6H12"
    matrix.write('channel.open("allslots")')
    assert matrix.query('print(channel.getclose("allslots"))') == "nil"


def test_buffered_readings_and_chunked_read(default):
    smu, matrix, world = default
    read_cell(smu, matrix, 1, 1, 0.1)
    smu.write("smua.measure.count = 40")
    smu.write("smua.nvbuffer1.clear()")
    clock = world.clock
    smu.write("smua.measure.i(smua.nvbuffer1)")
    assert world.clock == pytest.approx(clock + 40 * 1 / 50)
    assert smu.query("print(smua.nvbuffer1.n)") == f"{40:.15e}"
    smu.chunk_size = 7
    values = smu.query("printbuffer(1, smua.nvbuffer1.n, smua.nvbuffer1.readings)").split(", ")
    single = float(smu.query("print(smua.measure.i())"))
    assert len(values) == 40 and all(float(x) == pytest.approx(single, rel=1e-12) for x in values)


def test_clear_and_status_byte(default):
    smu, _, _ = default
    smu.write("*IDN?")
    assert smu.read_stb() & 16  # message available
    smu.clear()
    assert not smu.read_stb() & 16
    with pytest.raises(UnknownCommand):
        smu.write("bogus")
    assert smu.read_stb() & 4  # error queue not empty
    smu.write("*CLS")
    assert smu.read_stb() == 0


def test_reset_restores_initial_state(default):
    smu, matrix, world = default
    g_initial = world.array.conductance()
    read_cell(smu, matrix, 4, 6, 2.5)
    smu.write("delay(1e-5)")
    assert not np.array_equal(world.array.conductance(), g_initial)
    smu.write("reset()")
    matrix.write("reset()")
    assert matrix.query('print(channel.getclose("allslots"))') == "nil"
    assert smu.query("print(smua.source.output)") == "0.00000e+00"
    assert smu.query("print(smua.source.levelv)") == "0.00000e+00"
    # the whole bench (array included) back to its file's state
    rm_lib = smu.visalib
    rm_lib.reset()
    assert np.array_equal(rm_lib.world.array.conductance(), g_initial)
    assert smu.query("*IDN?").startswith("Keithley Instruments Inc., Model 2636B")


def test_two_benches_are_independent(open_bench):
    rm1, lib1 = open_bench("default")
    rm2, lib2 = open_bench("default")
    m1 = open_instrument(rm1, "GPIB0::18::INSTR")
    m2 = open_instrument(rm2, "GPIB0::18::INSTR")
    m1.write('channel.close("1A01")')
    assert m1.query('print(channel.getclose("allslots"))') == "1A01"
    assert m2.query('print(channel.getclose("allslots"))') == "nil"
    assert lib1.world is not lib2.world
    np.testing.assert_array_equal(lib1.world.array.conductance(), lib2.world.array.conductance())


def test_read_noise_is_seeded(open_bench):
    readings = []
    for _ in range(2):
        rm, _ = open_bench("default")
        smu = open_instrument(rm, "GPIB0::26::INSTR")
        matrix = open_instrument(rm, "GPIB0::18::INSTR")
        readings.append([read_cell(smu, matrix, 0, 0, 0.2)[0] for _ in range(3)])
    assert readings[0] == readings[1]
    assert len(set(readings[0])) == 3  # every reading draws new noise


def test_trigger_sweep_fills_buffers_with_compliance_statuses(default):
    smu, matrix, world = default
    i, j = 7, 11
    matrix.write(f'channel.close("{channel("A", row_output(i))},{channel("B", col_output(j))}")')
    smu.write("smub.source.output = smub.OUTPUT_ON")
    smu.write("smua.source.output = smua.OUTPUT_ON")
    v_row = np.full(32, np.nan)
    v_col = np.full(32, np.nan)
    v_col[j] = 0.0
    v_row[i] = 0.2
    limit = float(0.5 * direct(world, v_row, v_col, R_PATH, R_PATH).i_row[i])  # 0.2 V hits it
    smu.write("smua.trigger.source.listv({0.05,0.2,-0.05})")
    smu.write(f"smua.trigger.source.limiti = {limit!r}")
    smu.write("smua.trigger.measure.iv(smua.nvbuffer1, smua.nvbuffer2)")
    smu.write("smua.trigger.count = 3")
    smu.write("smua.trigger.source.action = smua.ENABLE")  # DISABLE after a reset [M]
    smu.write("smua.trigger.initiate()")
    values = smu.query(
        "printbuffer(1, 3, smua.nvbuffer1.readings, smua.nvbuffer2.readings, "
        "smua.nvbuffer1.statuses)"
    ).split(", ")
    points = [tuple(float(x) for x in values[3 * k : 3 * k + 3]) for k in range(3)]
    for (current, volts, status), level in zip(points, (0.05, 0.2, -0.05), strict=True):
        if status:
            assert status == 64 and current == pytest.approx(limit, rel=1e-12)
            assert 0 < volts < level
        else:
            v_row[i] = level
            assert volts == level
            expected = direct(world, v_row, v_col, R_PATH, R_PATH).i_row[i]
            assert current == pytest.approx(expected, rel=1e-9, abs=quantum(expected))
    assert [p[2] for p in points] == [0.0, 64.0, 0.0]


def test_pulse_v_measure_i_matches_pulses_applied_directly(default):
    smu, matrix, world = default
    i, j = 2, 20
    matrix.write(f'channel.close("{channel("A", row_output(i))},{channel("B", col_output(j))}")')
    smu.write("smua.source.limiti = 0.01")
    smu.write("smub.source.output = smub.OUTPUT_ON")
    twin = world.array.copy()
    smu.write("PulseVMeasureI(smua, 0.0, 2.5, 1e-06, 1e-05, 2)")
    readings = [
        float(x) for x in smu.query("printbuffer(1, 2, smua.nvbuffer1.readings)").split(", ")
    ]
    v_row = np.full(32, np.nan)
    v_row[i] = 2.5
    v_col = np.full(32, np.nan)
    v_col[j] = 0.0
    for reading in readings:
        twin.apply(v_row, v_col, 1e-6, r_source=R_PATH, r_sense=R_PATH)
        expected = twin.solve(v_row, v_col, r_source=R_PATH, r_sense=R_PATH, read_noise=False)
        assert reading == pytest.approx(expected.i_row[i], rel=1e-9,
                                        abs=quantum(expected.i_row[i]))
        twin.advance_time(1e-5)  # toff at the bias: the pulsed cells relax
    np.testing.assert_array_equal(world.array.conductance(), twin.conductance())
    assert float(smu.query("print(smua.source.levelv)")) == 0.0  # back at the bias


def test_output_off_states(default):
    """2600B output off: NORMAL (default) holds 0 V limited to offlimiti; HIGH_Z opens the
    relay (the line floats); ZERO holds 0 V with the output-on limit (2600B User's Manual)."""
    smu, matrix, world = default
    i_on, _ = read_cell(smu, matrix, 6, 9, 0.2)  # smub on at 0 V
    smu.write("smub.source.output = smub.OUTPUT_OFF")  # NORMAL off: still 0 V
    assert float(smu.query("print(smua.measure.i())")) == pytest.approx(i_on, rel=1e-12)
    smu.write("smub.source.offlimiti = 1e-07")  # now the off state limits the column current
    assert float(smu.query("print(smua.measure.i())")) == pytest.approx(1e-7, rel=1e-9)
    smu.write("smub.source.offmode = smub.OUTPUT_HIGH_Z")  # relay open: no return path
    assert abs(float(smu.query("print(smua.measure.i())"))) < 1e-15
    smu.write("smub.source.offmode = smub.OUTPUT_ZERO")  # 0 V with limiti (0.1 A default)
    assert float(smu.query("print(smua.measure.i())")) == pytest.approx(i_on, rel=1e-12)
    assert smu.query("print(smub.source.offmode)") == f"{1:.15e}"


@pytest.mark.parametrize("scheme", ["v/2", "v/3"])
def test_bias_scheme_with_every_level_on_its_own_terminal(open_bench, scheme):
    """Selected row at V on smu.a, selected column at 0 V on smu.b, unselected rows and columns
    on the second 2636B (V/2 on smu2.a for both; or V/3 on smu2.a and 2V/3 on smu2.b)."""
    rm, lib = open_bench("default", read_noise="false")
    smu, smu2 = open_instrument(rm, "GPIB0::26::INSTR"), open_instrument(rm, "GPIB0::27::INSTR")
    matrix = open_instrument(rm, "GPIB0::18::INSTR")
    world = lib.world
    i, j, v = 3, 9, 0.4  # below the 0.45 V kinetics floor: a read, nothing moves
    v_rows, v_cols, col_input = (v / 2, v / 2, "C") if scheme == "v/2" else (v / 3, 2 * v / 3, "D")
    closes = [channel("A", row_output(i)), channel("B", col_output(j))]
    closes += [channel("C", row_output(k)) for k in range(32) if k != i]
    closes += [channel(col_input, col_output(k)) for k in range(32) if k != j]
    matrix.write(f'channel.close("{",".join(closes)}")')
    for inst, line in (
        (smu, f"smua.source.levelv = {v}"),
        (smu2, f"smua.source.levelv = {v_rows}"),
        (smu2, f"smub.source.levelv = {v_cols}"),
        (smu, "smua.source.output = smua.OUTPUT_ON"),
        (smu, "smub.source.output = smub.OUTPUT_ON"),
        (smu2, "smua.source.output = smua.OUTPUT_ON"),
        (smu2, "smub.source.output = smub.OUTPUT_ON"),
    ):
        inst.write(line)
    smu.write("format.asciiprecision = 16")
    smu2.write("format.asciiprecision = 16")
    v_row = np.full(32, v_rows)
    v_row[i] = v
    v_col = np.full(32, v_cols)
    v_col[j] = 0.0
    sol = direct(world, v_row, v_col, R_PATH, R_PATH)
    others_r = np.arange(32) != i
    others_c = np.arange(32) != j
    measured = {
        "smu.a": float(smu.query("print(smua.measure.i())")),
        "smu.b": float(smu.query("print(smub.measure.i())")),
        "smu2.a": float(smu2.query("print(smua.measure.i())")),
        "smu2.b": float(smu2.query("print(smub.measure.i())")),
    }
    expected = {
        "smu.a": sol.i_row[i],
        "smu.b": -sol.i_col[j],
        "smu2.a": sol.i_row[others_r].sum()
        - (sol.i_col[others_c].sum() if col_input == "C" else 0.0),
        "smu2.b": 0.0 if col_input == "C" else -sol.i_col[others_c].sum(),
    }
    for key, value in expected.items():
        assert measured[key] == pytest.approx(value, rel=1e-9, abs=quantum(value)), key
    # Kirchhoff: the four terminals' currents sum to zero, to their ranges' resolutions
    assert abs(sum(measured.values())) <= sum(quantum(x) for x in measured.values())
    # no unselected cell sees more than about V/2 (or V/3; IR drop adds a little)
    seen = np.abs(sol.v_cell)
    seen[i, j] = 0.0
    assert seen.max() <= (v / 2 if scheme == "v/2" else v / 3) * 1.02
