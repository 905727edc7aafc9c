"""Several commands in one message, parsed as the instruments do: a TSP message is one Lua chunk
of ';'-separated statements (a run-time error ends it; a malformed one runs nothing); a SCPI
message is ';'-separated program message units with the header path rules (an execution error
does not stop the units after it; an empty unit is a syntax error and nothing runs)."""

from __future__ import annotations

import importlib.resources

import pytest
from simhelpers import open_instrument, tomllib
from xbarlab.sim_instruments import UnknownCommand

TSP_SMU = "GPIB0::26::INSTR"  # 2636B on the default bench
TSP_MATRIX = "GPIB0::18::INSTR"  # 707B on the default bench
B2902B = "GPIB0::23::INSTR"  # on the keysight bench
E5250A = "GPIB0::22::INSTR"  # on the keysight bench
SYNTAX = "-2.85000e+02"
TSP_DATA = "-2.22000e+02"

CATALOG = tomllib.loads(
    importlib.resources.files("xbarlab.drivers").joinpath("commands.toml").read_text()
)
MESSAGE_TABLES = {"keithley2600": ("default", TSP_SMU), "keithley707b": ("default", TSP_MATRIX),
                  "keysight_b2900": ("keysight", B2902B)}


def tsp(open_bench, address=TSP_SMU):
    rm, lib = open_bench("default")
    return open_instrument(rm, address), lib.devices[address]


def scpi(open_bench, address=B2902B):
    rm, lib = open_bench("keysight")
    return open_instrument(rm, address), lib.devices[address]


def levels(smu) -> tuple[float, float]:
    return (float(smu.query("print(smua.source.levelv)")),
            float(smu.query("print(smua.source.limiti)")))


def test_every_catalogued_message_example_is_accepted_without_an_error(open_bench):
    assert set(MESSAGE_TABLES) == {t for t, v in CATALOG.items() if "message" in v}
    for table, (bench, address) in MESSAGE_TABLES.items():
        rm, lib = open_bench(bench)
        inst, device = open_instrument(rm, address), lib.devices[address]
        example = CATALOG[table]["message"]["example"]
        if example.endswith("?"):
            assert inst.query(example).endswith('+0,"No error"'), example
        else:
            inst.write(example)
        assert device.error_count() == 0, example


def test_tsp_chunk_runs_its_statements_in_order(open_bench):
    smu, device = tsp(open_bench)
    smu.write("smua.source.limiti = 0.002; smua.source.levelv = 0.3; smua.source.levelv = 0.2;")
    assert levels(smu) == (0.2, 0.002)  # in order; one ';' may end the last statement
    assert device.error_count() == 0


def test_707b_chunk_opens_before_it_closes_and_a_refused_open_closes_nothing(open_bench):
    matrix, device = tsp(open_bench, TSP_MATRIX)
    matrix.write('channel.close("1A01")')
    matrix.write('channel.open("1A01"); channel.close("1B01")')
    assert matrix.query('print(channel.getclose("allslots"))') == "1B01"
    matrix.write('channel.open("1A13"); channel.close("1C01")')  # no column 13: a data error
    assert matrix.query('print(channel.getclose("allslots"))') == "1B01"
    assert device.error_count() == 1


def test_tsp_run_time_error_ends_the_chunk(open_bench):
    smu, device = tsp(open_bench)
    smu.write("smua.source.levelv = 0.3; smua.source.limiti = 5; smua.source.levelv = 0.4; "
              "smua.source.output = smua.OUTPUT_ON")
    assert levels(smu)[0] == 0.3  # ran up to the failing limit, nothing after it
    assert smu.query("print(smua.source.output)") == "0.00000e+00"
    assert device.error_count() == 1
    assert smu.query("print(errorqueue.next())").startswith(TSP_DATA)


@pytest.mark.parametrize("chunk", [
    "smua.source.levelv = 0.3;; smua.source.levelv = 0.4",  # empty statement
    "; smua.source.levelv = 0.3",  # leading ';'
    "smua.source.levelv = 0.3; smua.trigger.source.listv({0.1, 0.2); smua.source.levelv = 0.4",
    "smua.source.levelv = 0.3; smua.source.bogus = 1",  # a statement no rule accepts
])
def test_tsp_malformed_chunk_runs_nothing_and_queues_a_syntax_error(open_bench, chunk):
    smu, device = tsp(open_bench)
    with pytest.raises(UnknownCommand, match=TSP_SMU.replace(":", r"\:")):
        smu.write(chunk)
    assert levels(smu)[0] == 0.0  # nothing of it ran
    assert device.error_count() == 1
    assert smu.query("print(errorqueue.next())").startswith(SYNTAX)


def test_tsp_matrix_takes_a_chunk_too(open_bench):
    matrix, device = tsp(open_bench, TSP_MATRIX)
    matrix.write('channel.close("1A01"); channel.close("1B02")')
    assert matrix.query('print(channel.getclose("allslots"))') == "1A01;1B02"
    assert device.error_count() == 0


def test_scpi_units_answer_in_one_joined_reply(open_bench):
    smu, device = scpi(open_bench)
    reply = smu.query(":SOUR1:FUNC:MODE VOLT;:SOUR1:VOLT:MODE FIX;:SENS1:CURR:PROT 0.002;"
                      ":SOUR1:VOLT 0.25;*OPC?;:SOUR1:VOLT?;:SENS1:CURR:PROT?;:SYST:ERR?")
    assert reply == '1;+2.500000E-01;+2.000000E-03;+0,"No error"'
    assert device.error_count() == 0


def test_scpi_header_path_rules(open_bench):
    """A unit without the root colon continues the previous unit's path, across common
    commands (B2961A/B2962A SCPI Command Reference Ed. 6 p. 1-7; IEEE 488.2 §7.4)."""
    smu, device = scpi(open_bench)
    assert smu.query(":SOUR2:FUNC:MODE VOLT;*OPC?;SHAP DC;:SYST:ERR?") == '1;+0,"No error"'
    smu.write(":SENS1:CURR:PROT 0.002;RANG:AUTO OFF")  # = :SENS1:CURR:RANG:AUTO OFF
    assert smu.query(":SENS1:CURR:PROT?;RANG:AUTO?") == "+2.000000E-03;0"
    with pytest.raises(UnknownCommand, match=r":SENS1:CURR:RANG:PROT\?"):
        smu.query(":SENS1:CURR:RANG:AUTO?;PROT?")  # the path is now :SENS1:CURR:RANG:
    assert smu.query(":SYST:ERR?") == '-113,"Undefined header"'
    smu.clear()
    # :SOUR1:VOLT:MODE LIST;LIST:VOLT ... means :SOUR1:VOLT:LIST:VOLT: undefined
    with pytest.raises(UnknownCommand, match=r":SOUR1:VOLT:LIST:VOLT 0\.1"):
        smu.write(":SOUR1:VOLT:MODE LIST;LIST:VOLT 0.1")
    assert smu.query(":SYST:ERR?") == '-113,"Undefined header"'


def test_scpi_execution_error_leaves_the_later_units_running(open_bench):
    smu, device = scpi(open_bench)
    reply = smu.query(":SENS1:CURR:PROT 5;:SOUR1:VOLT 0.25;:SOUR1:VOLT?;:SYST:ERR?")
    assert reply == '+2.500000E-01;-222,"Data out of range"'
    assert device.error_count() == 0


@pytest.mark.parametrize("message", [
    ":SOUR1:VOLT 0.3;;:SOUR1:VOLT 0.4", ";:SOUR1:VOLT 0.3", ":SOUR1:VOLT 0.3;",
])
def test_scpi_empty_unit_runs_nothing_and_is_a_syntax_error(open_bench, message):
    smu, device = scpi(open_bench)
    with pytest.raises(UnknownCommand, match="empty program message unit"):
        smu.write(message)
    assert device.error_count() == 1
    assert smu.query(":SYST:ERR?") == '-102,"Syntax error"'
    assert smu.query(":SOUR1:VOLT?") == "+0.000000E+00"


def test_e5250a_takes_the_manual_s_compound_connection_setup(open_bench):
    """`:ROUT:CONN:RULE ALL,FREE;SEQ ALL,BBM` (E5250A User's Guide Ed. 11 p. 6-4)."""
    matrix, device = scpi(open_bench, E5250A)
    matrix.write(":ROUT:CONN:RULE ALL,FREE;SEQ ALL,BBM")
    assert matrix.query(":SYST:ERR?") == '+0,"No error"'
    assert device.error_count() == 0
