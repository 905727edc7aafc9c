"""Paired (lockstep) list sweeps of two channels of one SMU: exact conversations on the fake
transport (every command listed in commands.toml), checks before anything is sent, and a run on
the virtual bench."""

import pytest
from xbarlab.drivers.keithley2600 import Keithley2600
from xbarlab.drivers.keysight_b2900 import KeysightB2900

from xbarlab.interfaces import PairedSweep

TSP_IDN = "Keithley Instruments Inc., Model 2636B, 4308079, 3.2.2"
TSP_NONE = "0.00000e+00"
B2900_IDN = "Keysight Technologies,B2902B,MY59000229,5.0.2041.2001"
NO_ERROR = '+0,"No error"'


def tsp_ok(command):
    return [(command, None), ("print(errorqueue.count)", TSP_NONE)]


def tsp_load(ch, levels, limit="0.001"):
    """What `_load_sweep` sends for one 2600B channel."""
    return (
        tsp_ok(f"{ch}.nvbuffer1.clear()") + tsp_ok(f"{ch}.nvbuffer2.clear()")
        + tsp_ok(f"{ch}.measure.delay = 0.0")
        + tsp_ok(f"{ch}.trigger.source.listv({{{levels}}})")
        + tsp_ok(f"{ch}.trigger.source.limiti = {limit}")
        + tsp_ok(f"{ch}.trigger.measure.iv({ch}.nvbuffer1, {ch}.nvbuffer2)")
        + tsp_ok(f"{ch}.trigger.measure.action = {ch}.ENABLE")
        + tsp_ok(f"{ch}.trigger.endpulse.action = {ch}.SOURCE_HOLD")
        + tsp_ok(f"{ch}.trigger.endsweep.action = {ch}.SOURCE_IDLE")
        + tsp_ok(f"{ch}.trigger.count = 2")
        + tsp_ok(f"{ch}.trigger.source.action = {ch}.ENABLE")
        + tsp_ok(f"{ch}.source.output = {ch}.OUTPUT_ON")
    )


STIMULI_OFF = (tsp_ok("smua.trigger.source.stimulus = 0")
               + tsp_ok("smub.trigger.measure.stimulus = 0")
               + tsp_ok("smub.trigger.endpulse.stimulus = 0"))


def test_2636b_pair_runs_in_lockstep_with_named_events_and_one_printbuffer(expected_protocol):
    requests = [("print(smub.source.func)", "1.00000e+00"), ("print(smub.source.limiti)", "1e-03"),
                ("print(smua.source.func)", "1.00000e+00"), ("print(smua.source.limiti)", "1e-03")]
    pairs = (
        [("*IDN?", TSP_IDN), ("errorqueue.clear()", None)] + requests
        + tsp_load("smub", "0.5,0.75") + tsp_load("smua", "-0.5,-0.75")
        + tsp_ok("smua.trigger.source.stimulus = smub.trigger.SOURCE_COMPLETE_EVENT_ID")
        + tsp_ok("smub.trigger.measure.stimulus = smua.trigger.SOURCE_COMPLETE_EVENT_ID")
        + tsp_ok("smub.trigger.endpulse.stimulus = smua.trigger.MEASURE_COMPLETE_EVENT_ID")
        + [("smua.trigger.initiate()", None), ("smub.trigger.initiate()", None),
           ("waitcomplete()", None), ("print(errorqueue.count)", TSP_NONE)]
        + [("printbuffer(1, 2, smub.nvbuffer1.readings, smub.nvbuffer2.readings, "
            "smub.nvbuffer1.statuses, smua.nvbuffer1.readings, smua.nvbuffer2.readings, "
            "smua.nvbuffer1.statuses)",
            "1.00000e-06, 5.00000e-01, 0.00000e+00, -1.00000e-06, -5.00000e-01, 0.00000e+00, "
            "1.00000e-03, 7.10000e-01, 6.40000e+01, -1.00000e-03, -7.50000e-01, 0.00000e+00")]
        + STIMULI_OFF
    )
    with expected_protocol(Keithley2600, pairs) as smu:
        assert isinstance(smu, PairedSweep)
        rows, cols = smu.sweep_pair("b", [0.5, 0.75], "a", [-0.5, -0.75], 0.0)
    assert [(r.voltage, r.current, r.compliance) for r in rows] == [
        (0.5, 1e-6, False), (0.71, 1e-3, True)]
    assert [(r.voltage, r.current, r.compliance) for r in cols] == [
        (-0.5, -1e-6, False), (-0.75, -1e-3, False)]


def test_2636b_pair_of_unequal_lists_is_refused_before_configuring(expected_protocol):
    requests = [("print(smua.source.func)", "1.00000e+00"), ("print(smua.source.limiti)", "1e-03"),
                ("print(smub.source.func)", "1.00000e+00"), ("print(smub.source.limiti)", "1e-03")]
    pairs = [("*IDN?", TSP_IDN), ("errorqueue.clear()", None)] + requests
    with (
        expected_protocol(Keithley2600, pairs) as smu,
        pytest.raises(ValueError, match="second_levels has 1 levels: allowed 2"),
    ):
        smu.sweep_pair("a", [0.1, 0.2], "b", [0.0], 0.0)


def test_2636b_pair_needs_two_channels_and_the_model_s_levels(expected_protocol):
    pairs = [("*IDN?", TSP_IDN), ("errorqueue.clear()", None)]
    with (
        expected_protocol(Keithley2600, pairs) as smu,
        pytest.raises(ValueError, match="allowed two different channels"),
    ):
        smu.sweep_pair("a", [0.1], "smua", [0.1], 0.0)
    pairs += [("print(smua.source.func)", "1.00000e+00")]
    with (
        expected_protocol(Keithley2600, pairs) as smu,
        pytest.raises(ValueError, match="sweep level = 250.0 V is outside"),
    ):
        smu.sweep_pair("a", [250.0], "b", [0.0], 0.0)


def b2900_ok(command):
    return [(command, None), (":SYST:ERR?", NO_ERROR)]


def b2900_load(n, levels):
    return (b2900_ok(f":SOUR{n}:VOLT:MODE LIST") + b2900_ok(f":SOUR{n}:LIST:VOLT {levels}")
            + b2900_ok(f":TRIG{n}:SOUR AINT") + b2900_ok(f":TRIG{n}:COUN 2")
            + b2900_ok(f":OUTP{n} ON"))


def b2900_restore(n):
    return (b2900_ok(f":TRIG{n}:COUN 1") + b2900_ok(f":TRIG{n}:SOUR AINT")
            + b2900_ok(f":SOUR{n}:VOLT:MODE FIX"))


def test_b2902_pair_starts_both_channels_on_one_trigger(expected_protocol):
    connect = [("*IDN?", B2900_IDN), ("*CLS", None)] + b2900_ok(":FORM:ELEM:SENS VOLT,CURR")
    connect += b2900_ok(':SENS1:FUNC "VOLT","CURR"') + b2900_ok(':SENS2:FUNC "VOLT","CURR"')
    pairs = (
        connect
        + [(":SOUR2:FUNC:MODE?", "VOLT"), (":SENS2:CURR:PROT?", "+1.000000E-03"),
           (":SOUR1:FUNC:MODE?", "VOLT"), (":SENS1:CURR:PROT?", "+1.000000E-03")]
        + b2900_load(2, "0.5,0.75") + b2900_load(1, "-0.5,-0.75")
        + b2900_ok(":INIT (@1,2)") + [("*OPC?", "1")]
        + [(":FETC:ARR? (@2)", "+5.0E-01,+1.0E-06,+7.1E-01,+1.0E-03")] + b2900_restore(2)
        + [(":FETC:ARR? (@1)", "-5.0E-01,-1.0E-06,-7.5E-01,-1.0E-03")] + b2900_restore(1)
    )
    with expected_protocol(KeysightB2900, pairs) as smu:
        assert isinstance(smu, PairedSweep)
        rows, cols = smu.sweep_pair(2, [0.5, 0.75], 1, [-0.5, -0.75], 0.0)
    assert [(r.voltage, r.current, r.compliance) for r in rows] == [
        (0.5, 1e-6, False), (0.71, 1e-3, True)]
    assert [r.current for r in cols] == [-1e-6, -1e-3]


def test_pairs_on_the_virtual_bench_drive_the_cell_from_both_ends(virtual_bench):
    """Row 0 at +V/2 on one channel, column 0 at -V/2 on the other, every other line floating:
    the current goes in at the row and out at the column, ohmic at read levels."""
    rm = virtual_bench("default")
    smu = Keithley2600.connect("GPIB0::26::INSTR", rm)
    matrix = rm.open_resource("GPIB0::18::INSTR", read_termination="\n",
                              write_termination="\n")
    matrix.write('channel.close("1B01,4A01")')  # row 0 on smub, col 0 on smua
    for channel in (smu.smua, smu.smub):
        channel.source_voltage(0.0, 1e-3)
    rows, cols = smu.sweep_pair("b", [0.1, 0.2, 0.3], "a", [-0.1, -0.2, -0.3], 0.0)
    smu.check_errors("paired sweep")
    assert [r.voltage for r in rows] == pytest.approx([0.1, 0.2, 0.3])
    for row, col in zip(rows, cols, strict=True):
        assert row.current > 0 and col.current == pytest.approx(-row.current, rel=1e-6)
    currents = [r.current for r in rows]
    assert currents[2] == pytest.approx(3 * currents[0], rel=1e-2)  # ohmic at read levels
    # the stimuli are immediate again: each channel sweeps alone as before
    alone = smu.smub.sweep([0.2, 0.4], 0.0)  # the same cell voltages, column at 0 V
    assert [r.current for r in alone] == pytest.approx(currents[:2], rel=1e-2)
    smu.check_errors("single sweep after a pair")
    smu.disconnect()
