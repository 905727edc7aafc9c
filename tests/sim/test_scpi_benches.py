"""The classic (2400 + 2450 + 707B) and keysight (B2902B + E5250A) benches against direct solves."""

from __future__ import annotations

import numpy as np
import pytest
from simhelpers import open_instrument
from virtualbenches import reading_quantum

R_PATH = 2.0


def name(row: str, output: int) -> str:
    """707B channel of a matrix input and a bench output number."""
    return f"{(output - 1) // 12 + 1}{row}{(output - 1) % 12 + 1:02d}"


def e5250(inp: int, output: int) -> str:
    """E5250A channel of an input and a bench output number."""
    return f"{(output - 1) // 12 + 1}{inp:02d}{(output - 1) % 12 + 1:02d}"


def expected_pair(world, i, j, v, n=16):
    """Row i at v through R_PATH, column j at 0 V through R_PATH, all else floating."""
    v_row = np.full(n, np.nan)
    v_row[i] = v
    v_col = np.full(n, np.nan)
    v_col[j] = 0.0
    arr = world.array.copy()
    return arr.solve(v_row, v_col, r_source=R_PATH, r_sense=R_PATH, read_noise=False)


@pytest.fixture
def classic(open_bench):
    rm, lib = open_bench("classic", read_noise="false")
    return (
        open_instrument(rm, "GPIB0::25::INSTR"),
        open_instrument(rm, "GPIB0::24::INSTR"),
        open_instrument(rm, "GPIB0::18::INSTR"),
        lib.world,
    )


@pytest.fixture
def keysight(open_bench):
    rm, lib = open_bench("keysight", read_noise="false")
    return (
        open_instrument(rm, "GPIB0::23::INSTR"),
        open_instrument(rm, "GPIB0::22::INSTR"),
        lib.world,
    )


def quantum(model: str, current: float) -> float:
    """How far a noise-free reading of `current` on `model` may be from it: half its range's
    resolution, with room for the last digit printed."""
    return reading_quantum(model, current) * (1 + 1e-6)


def test_classic_list_sweep_is_one_round_trip(classic):
    k2400, k2450, matrix, world = classic
    i, j = 3, 12
    matrix.write(f'channel.close("{name("A", 1 + i)},{name("B", 17 + j)}")')
    k2450.write(":SOUR:VOLT 0")
    k2450.write(":OUTP ON")
    k2400.write(":FORM:ELEM VOLT,CURR,STAT")
    k2400.write(":SOUR:VOLT:LEV 0.25")  # the DC level the source returns to after the list
    k2400.write(":SOUR:VOLT:MODE LIST")
    k2400.write(":SOUR:LIST:VOLT 0.1,0.2,0.3")
    k2400.write(":TRIG:COUN 3")
    k2400.write(":OUTP ON")
    clock = world.clock
    values = [float(x) for x in k2400.query(":READ?").split(",")]
    assert len(values) == 9
    assert world.clock == pytest.approx(clock + 3 * (0.001 + 1 / 50))
    for k, v in enumerate((0.1, 0.2, 0.3)):
        sol = expected_pair(world, i, j, v)
        assert values[3 * k] == pytest.approx(v, rel=1e-6)
        assert values[3 * k + 1] == pytest.approx(sol.i_row[i], rel=1e-6,
                                                  abs=quantum("2400", sol.i_row[i]))
        assert values[3 * k + 2] == 0.0
    # back at 0.25 V DC; the 2450 at 0 V on the column sinks the column current
    sunk = float(k2450.query(':READ? "defbuffer1",READ,SOUR').split(",")[0])
    column = expected_pair(world, i, j, 0.25).i_col[j]
    assert sunk == pytest.approx(-column, rel=1e-6, abs=quantum("2450", column))


def test_2400_compliance_bit_and_2450_trip(classic):
    k2400, k2450, matrix, world = classic
    matrix.write('channel.close("1A01,2B05")')  # row 0 and column 0 (output 17)
    k2400.write(":SENS:CURR:PROT 1e-07")
    k2400.write(":SOUR:VOLT:LEV 2.0")
    k2400.write(":FORM:ELEM CURR,STAT")
    k2400.write(":OUTP ON")
    k2450.write(":OUTP ON")
    current, status = (float(x) for x in k2400.query(":READ?").split(","))
    assert current == pytest.approx(1e-7, rel=1e-6)
    assert int(status) & 8
    assert float(k2450.query(':READ? "defbuffer1",READ,SOUR').split(",")[0]) == pytest.approx(
        -1e-7, rel=1e-6
    )
    assert k2450.query(":SOUR:VOLT:ILIM:TRIP?") == "0"
    k2450.write(":SOUR:VOLT:ILIM 1e-08")
    k2450.write(":SOUR:VOLT -1.0")
    assert k2450.query(":SOUR:VOLT:ILIM:TRIP?") == "1"


def test_2400_read_with_output_off_queues_an_error(classic):
    k2400, _, _, _ = classic
    k2400.write(":READ?")
    assert k2400.query(":SYST:ERR?") == '803,"Output disabled"'


def test_2450_block_program_is_a_pulse_train(classic):
    _, k2450, matrix, world = classic
    matrix.write('channel.close("1B01,2H05")')  # 2450 on row 0, column 0 grounded
    k2450.write(":SOUR:VOLT 2.5")
    k2450.write(":SOUR:VOLT:ILIM 0.01")  # well above what the cells draw: no compliance
    k2450.write(':TRIG:LOAD "Empty"')
    k2450.write(":TRIG:BLOC:SOUR:STAT 1,ON")
    k2450.write(":TRIG:BLOC:DEL:CONS 2,1e-06")
    k2450.write(":TRIG:BLOC:SOUR:STAT 3,OFF")
    k2450.write(":TRIG:BLOC:DEL:CONS 4,1e-05")
    k2450.write(":TRIG:BLOC:BRAN:COUN 5,3,1")
    before = world.array.copy()
    g0 = world.array.conductance()
    k2450.write(":INIT")
    assert world.clock == pytest.approx(3 * (1e-6 + 1e-5) + 0.003 * 1)
    v_row = np.full(16, np.nan)
    v_row[0] = 2.5
    v_col = np.full(16, np.nan)
    v_col[0] = 0.0
    for _ in range(3):
        before.apply(v_row, v_col, 1e-6, r_source=R_PATH, r_sense=R_PATH)
        before.advance_time(1e-5)  # output off between pulses: the cells relax
    np.testing.assert_array_equal(world.array.conductance(), before.conductance())
    assert not np.array_equal(world.array.conductance(), g0)
    assert k2450.query(":OUTP?") == "0"


def test_2450_list_sweep_to_buffer(classic):
    _, k2450, matrix, world = classic
    matrix.write('channel.close("1B02,2H06")')
    k2450.write(':TRAC:CLE "defbuffer1"')
    k2450.write(":SOUR:LIST:VOLT 0.1,0.2")
    k2450.write(":SOUR:LIST:VOLT:APP 0.3")
    k2450.write(":SOUR:SWE:VOLT:LIST 1,0.001")
    k2450.write(":INIT")
    values = [float(x) for x in k2450.query(':TRAC:DATA? 1,3,"defbuffer1",READ,SOUR').split(",")]
    assert values[1::2] == [0.1, 0.2, 0.3]
    v_row = np.full(16, np.nan)
    v_col = np.full(16, np.nan)
    v_col[1] = 0.0
    for k, v in enumerate((0.1, 0.2, 0.3)):
        v_row[1] = v
        sol = world.array.copy().solve(
            v_row, v_col, r_source=R_PATH, r_sense=R_PATH, read_noise=False
        )
        assert values[2 * k] == pytest.approx(sol.i_row[1], rel=1e-6,
                                              abs=quantum("2450", sol.i_row[1]))


def test_keysight_read_and_pulsed_list(keysight):
    smu, matrix, world = keysight
    i, j = 5, 9
    route = f"{e5250(1, 1 + i)},{e5250(2, 17 + j)}"
    matrix.write(f":ROUT:CLOS (@{route})")
    assert matrix.query(":ROUT:CLOS:CARD? 0") == f"(@{route})"
    smu.write(":SOUR1:VOLT 0.2")
    smu.write(":OUTP1 ON")
    smu.write(":OUTP2 ON")
    v, current = (float(x) for x in smu.query(":MEAS? (@1)").split(","))
    sol = expected_pair(world, i, j, 0.2)
    assert (v, current) == (pytest.approx(0.2), pytest.approx(
        sol.i_row[i], rel=1e-6, abs=quantum("B2902B", sol.i_row[i])))
    _, current2 = (float(x) for x in smu.query(":MEAS? (@2)").split(","))
    assert current2 == pytest.approx(-sol.i_col[j], rel=1e-6,
                                     abs=quantum("B2902B", sol.i_col[j]))
    # pulsed list: base 0.2 V, pulses to 0.1/0.3 V, each measured over its top (aperture)
    smu.write(":SENS1:CURR:APER 0.0001")
    smu.write(":SOUR1:FUNC:SHAP PULS")
    smu.write(":SOUR1:VOLT:MODE LIST")
    smu.write(":SOUR1:LIST:VOLT 0.1,0.3")
    smu.write(":SOUR1:PULS:WIDT 0.0001")
    smu.write(":TRIG1:SOUR TIM")
    smu.write(":TRIG1:TIM 0.01")
    smu.write(":TRIG1:COUN 2")
    clock = world.clock
    smu.write(":INIT (@1)")
    assert world.clock == pytest.approx(clock + 0.02)
    values = [float(x) for x in smu.query(":FETC:ARR? (@1)").split(",")]
    for k, level in enumerate((0.1, 0.3)):
        assert values[2 * k] == pytest.approx(level)
        current = expected_pair(world, i, j, level).i_row[i]
        assert values[2 * k + 1] == pytest.approx(current, rel=1e-6,
                                                  abs=quantum("B2902B", current))
    assert float(smu.query(":SOUR1:VOLT?")) == 0.2


def test_e5250a_single_route_rule_opens_the_old_path(keysight):
    _, matrix, _ = keysight
    matrix.write(":ROUT:CONN:RULE ALL,SROU")
    matrix.write(":ROUT:CLOS (@10101)")
    matrix.write(":ROUT:CLOS (@10102)")  # same input 1: the route to output 1 opens
    assert matrix.query(":ROUT:CLOS? (@10101,10102)") == "0,1"
    matrix.write(":ROUT:CONN:RULE ALL,FREE")
    matrix.write(":ROUT:CLOS (@10201)")
    matrix.write(":ROUT:CLOS (@10301)")
    assert matrix.query(":ROUT:CLOS:CARD? 1") == "(@10102,10201,10301)"
    matrix.write(":ROUT:OPEN:CARD ALL")
    assert matrix.query(":ROUT:CLOS:CARD? 1") == "(@)"
    matrix.write(":ROUT:CLOS (@14101)")  # no card 4 installed
    assert matrix.query(":SYST:ERR?") == '-222,"Data out of range"'


def test_compound_scpi_message_gets_one_joined_reply(classic):
    k2400, _, _, _ = classic
    k2400.write(":SOUR:VOLT:LEV 0.5;:SENS:CURR:PROT 1e-05")
    assert k2400.query(":SOUR:VOLT:LEV?;:SENS:CURR:PROT?") == "+5.000000E-01;+1.000000E-05"
    assert k2400.query("*IDN?;:SYST:ERR?").endswith(';0,"No error"')


def test_scpi_output_off_states(classic, keysight):
    """2400 NORM off: 0 V at 0.5 % of the current range; HIMP: relay open (manual p. 18-59).
    B2900 NORM off opens the output relay; ZERO holds 0 V (User's Guide table 6-1)."""
    k2400, k2450, matrix, _ = classic
    matrix.write('channel.close("1B01,2A05")')  # 2450 on row 0, (off) 2400 on column 0
    k2450.write(":SOUR:VOLT 1.0")
    k2450.write(":SOUR:VOLT:ILIM 0.01")
    k2450.write(":OUTP ON")
    current = float(k2450.query(':READ? "defbuffer1",READ,SOUR').split(",")[0])
    assert current == pytest.approx(0.005 * 1.05e-4, rel=1e-9)  # the 2400's off-state limit
    k2400.write(":OUTP:SMOD HIMP")
    assert abs(float(k2450.query(':READ? "defbuffer1",READ,SOUR').split(",")[0])) < 1e-15
    smu, e5250, _ = keysight
    e5250.write(":ROUT:CLOS (@10101,20205)")  # smu 1 on row 0, (off) smu 2 on column 0
    smu.write(":SOUR1:VOLT 0.2")
    smu.write(":OUTP1 ON")
    assert abs(float(smu.query(":MEAS? (@1)").split(",")[1])) < 1e-15
    smu.write(":OUTP2:OFF:MODE ZERO")
    assert float(smu.query(":MEAS? (@1)").split(",")[1]) > 1e-8
