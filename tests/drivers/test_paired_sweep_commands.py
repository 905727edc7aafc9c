"""Paired (lockstep) list sweeps of two channels of one SMU: exact conversations on the fake
transport (every command listed in commands.toml), checks before anything is sent, and a run on
the virtual bench."""

import numpy as np
import pytest
from virtualbenches import reading_sigma
from xbarlab.drivers.errors import InstrumentError
from xbarlab.drivers.keithley2600 import Keithley2600
from xbarlab.drivers.keysight_b2900 import KeysightB2900

from xbarlab.interfaces import PairedSweep

TSP_IDN = "Keithley Instruments Inc., Model 2636B, 4308079, 3.2.2"
TSP_NONE = "0.00000e+00"
B2900_IDN = "Keysight Technologies,B2902B,MY59000229,5.0.2041.2001"
NO_ERROR = '+0,"No error"'


def tsp_ok(command):
    return [(command, None), ("print(errorqueue.count)", TSP_NONE)]


def tsp_load(ch, levels, limit="0.001", count=2, end="SOURCE_IDLE"):
    """The statements that set one 2600B channel up for its part of a pair."""
    return [
        f"{ch}.nvbuffer1.clear()", f"{ch}.nvbuffer2.clear()", f"{ch}.measure.delay = 0.0",
        f"{ch}.trigger.source.listv({{{levels}}})", f"{ch}.trigger.source.limiti = {limit}",
        f"{ch}.trigger.measure.iv({ch}.nvbuffer1, {ch}.nvbuffer2)",
        f"{ch}.trigger.measure.action = {ch}.ENABLE",
        f"{ch}.trigger.endpulse.action = {ch}.SOURCE_HOLD",
        f"{ch}.trigger.endsweep.action = {ch}.{end}",
        f"{ch}.trigger.count = {count}", f"{ch}.trigger.source.action = {ch}.ENABLE",
        f"{ch}.source.output = {ch}.OUTPUT_ON",
    ]


STIMULI_ON = ["smua.trigger.source.stimulus = smub.trigger.SOURCE_COMPLETE_EVENT_ID",
              "smub.trigger.measure.stimulus = smua.trigger.SOURCE_COMPLETE_EVENT_ID",
              "smub.trigger.endpulse.stimulus = smua.trigger.MEASURE_COMPLETE_EVENT_ID"]
STIMULI_OFF = ["smua.trigger.source.stimulus = 0", "smub.trigger.measure.stimulus = 0",
               "smub.trigger.endpulse.stimulus = 0"]
PAIR_CHUNK = "; ".join(
    tsp_load("smub", "0.5,0.75") + tsp_load("smua", "-0.5,-0.75") + STIMULI_ON
    + ["smua.trigger.initiate()", "smub.trigger.initiate()", "waitcomplete()"] + STIMULI_OFF)
PAIR_BUFFER = ("printbuffer(1, 2, smub.nvbuffer1.readings, smub.nvbuffer2.readings, "
               "smub.nvbuffer1.statuses, smua.nvbuffer1.readings, smua.nvbuffer2.readings, "
               "smua.nvbuffer1.statuses)")
PAIR_READINGS = ("1.00000e-06, 5.00000e-01, 0.00000e+00, -1.00000e-06, -5.00000e-01, 0.00000e+00, "
                 "1.00000e-03, 7.10000e-01, 6.40000e+01, -1.00000e-03, -7.50000e-01, 0.00000e+00")
TSP_REQUESTS = [("print(smub.source.func)", "1.00000e+00"), ("print(smub.source.limiti)", "1e-03"),
                ("print(smua.source.func)", "1.00000e+00"), ("print(smua.source.limiti)", "1e-03")]


def test_2636b_pair_runs_in_lockstep_with_named_events_and_one_printbuffer(expected_protocol):
    """One chunk (both trigger models, each sweep limit before its output, the named events,
    both starts, waitcomplete, the stimuli back to immediate), one error check, one
    printbuffer."""
    pairs = (
        [("*IDN?", TSP_IDN), ("errorqueue.clear()", None)] + TSP_REQUESTS
        + tsp_ok(PAIR_CHUNK) + [(PAIR_BUFFER, PAIR_READINGS)]
    )
    with expected_protocol(Keithley2600, pairs) as smu:
        assert isinstance(smu, PairedSweep)
        rows, cols = smu.sweep_pair("b", [0.5, 0.75], "a", [-0.5, -0.75], 0.0)
    assert [(r.voltage, r.current, r.compliance) for r in rows] == [
        (0.5, 1e-6, False), (0.71, 1e-3, True)]
    assert [(r.voltage, r.current, r.compliance) for r in cols] == [
        (-0.5, -1e-6, False), (-0.75, -1e-3, False)]


def test_2636b_second_pair_uses_the_function_and_limits_it_knows(expected_protocol):
    """A branch after the first costs three round trips: chunk, error check, printbuffer."""
    pairs = (
        [("*IDN?", TSP_IDN), ("errorqueue.clear()", None)] + TSP_REQUESTS
        + tsp_ok(PAIR_CHUNK) + [(PAIR_BUFFER, PAIR_READINGS)]
        + tsp_ok(PAIR_CHUNK) + [(PAIR_BUFFER, PAIR_READINGS)]
    )
    with expected_protocol(Keithley2600, pairs) as smu:
        for _ in range(2):
            rows, _ = smu.sweep_pair("b", [0.5, 0.75], "a", [-0.5, -0.75], 0.0)
            assert rows[1].compliance


def test_2636b_pair_error_aborts_restores_the_stimuli_and_forgets_what_it_knew(expected_protocol):
    """An error in the chunk: both channels are aborted and the stimuli go back to immediate
    (one more chunk), the error names the chunk, and the next pair asks for function and limits
    again."""
    failed = [
        (PAIR_CHUNK, None), ("print(errorqueue.count)", "1.00000e+00"),
        ("print(errorqueue.next())", "-2.22000e+02\tParameter data out of range\t2.00000e+00\t0"),
        ("print(errorqueue.count)", TSP_NONE),
    ]
    pairs = (
        [("*IDN?", TSP_IDN), ("errorqueue.clear()", None)] + TSP_REQUESTS + failed
        + tsp_ok("; ".join(["smub.abort()", "smua.abort()", *STIMULI_OFF])) + TSP_REQUESTS
        + tsp_ok(PAIR_CHUNK) + [(PAIR_BUFFER, PAIR_READINGS)]
    )
    with expected_protocol(Keithley2600, pairs) as smu:
        with pytest.raises(InstrumentError) as info:
            smu.sweep_pair("b", [0.5, 0.75], "a", [-0.5, -0.75], 0.0)
        assert info.value.code == -222 and info.value.command == PAIR_CHUNK
        rows, _ = smu.sweep_pair("b", [0.5, 0.75], "a", [-0.5, -0.75], 0.0)
    assert rows[0].current == 1e-6


def test_2636b_pair_of_150_points_runs_in_two_chunks_into_one_buffer(expected_protocol):
    """100 points with the sources held at the end, then the next 50 (lists and counts only,
    the stimuli kept) ending idle with the stimuli back to immediate; one printbuffer."""
    rows = [k / 200 for k in range(150)]
    cols = [-v for v in rows]

    def text(values):
        return ",".join(repr(v) if v else "0.0" for v in values)

    first = "; ".join(
        tsp_load("smub", text(rows[:100]), count=100, end="SOURCE_HOLD")
        + tsp_load("smua", text(cols[:100]), count=100, end="SOURCE_HOLD") + STIMULI_ON
        + ["smua.trigger.initiate()", "smub.trigger.initiate()", "waitcomplete()"])
    second = "; ".join(
        [f"smub.trigger.source.listv({{{text(rows[100:])}}})", "smub.trigger.count = 50",
         "smub.trigger.endsweep.action = smub.SOURCE_IDLE",
         f"smua.trigger.source.listv({{{text(cols[100:])}}})", "smua.trigger.count = 50",
         "smua.trigger.endsweep.action = smua.SOURCE_IDLE",
         "smua.trigger.initiate()", "smub.trigger.initiate()", "waitcomplete()", *STIMULI_OFF])
    buffer = PAIR_BUFFER.replace("printbuffer(1, 2,", "printbuffer(1, 150,")
    reply = ", ".join(f"{v * 1e-6:.5e}, {v:.5e}, 0.00000e+00, {-v * 1e-6:.5e}, {-v:.5e}, "
                      "0.00000e+00" for v in rows)
    pairs = ([("*IDN?", TSP_IDN), ("errorqueue.clear()", None)] + TSP_REQUESTS
             + tsp_ok(first) + tsp_ok(second) + [(buffer, reply)])
    with expected_protocol(Keithley2600, pairs) as smu:
        lead, follow = smu.sweep_pair("b", rows, "a", cols, 0.0)
    assert [r.voltage for r in lead] == pytest.approx(rows)
    assert [r.voltage for r in follow] == pytest.approx(cols)


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


def b2900_checked(message, reply=NO_ERROR):
    """A program message ending with the error query, and its reply."""
    return [(message + ";:SYST:ERR?", reply)]


B2900_LOAD = (":SOUR2:VOLT:MODE LIST;:SOUR2:LIST:VOLT 0.5,0.75;:TRIG2:SOUR AINT;:TRIG2:COUN 2;"
              ":SOUR1:VOLT:MODE LIST;:SOUR1:LIST:VOLT -0.5,-0.75;:TRIG1:SOUR AINT;:TRIG1:COUN 2")
B2900_RESTORE = (":TRIG2:COUN 1;:TRIG2:SOUR AINT;:SOUR2:VOLT:MODE FIX;"
                 ":TRIG1:COUN 1;:TRIG1:SOUR AINT;:SOUR1:VOLT:MODE FIX")
B2900_RUN = (":OUTP2 ON;:OUTP1 ON;:INIT (@1,2);*OPC?;:FETC:ARR? (@2);:FETC:ARR? (@1);"
             + B2900_RESTORE)
B2900_DATA = "1;+5.0E-01,+1.0E-06,+7.1E-01,+1.0E-03;-5.0E-01,-1.0E-06,-7.5E-01,-1.0E-03;"
B2900_REQUESTS = [(":SOUR2:FUNC:MODE?", "VOLT"), (":SENS2:CURR:PROT?", "+1.000000E-03"),
                  (":SOUR1:FUNC:MODE?", "VOLT"), (":SENS1:CURR:PROT?", "+1.000000E-03")]


def b2900_connect():
    ok = [(":SYST:ERR?", NO_ERROR)]
    return ([("*IDN?", B2900_IDN), ("*CLS", None), (":FORM:ELEM:SENS VOLT,CURR", None)] + ok
            + [(':SENS1:FUNC "VOLT","CURR"', None)] + ok
            + [(':SENS2:FUNC "VOLT","CURR"', None)] + ok)


def test_b2902_pair_starts_both_channels_on_one_trigger(expected_protocol):
    """Two program messages: the lists and triggers; then (once those reported no error) the
    outputs, one start of both channels, *OPC?, both fetches and the restore; each ends with
    the error query."""
    pairs = (
        b2900_connect() + B2900_REQUESTS
        + b2900_checked(B2900_LOAD) + b2900_checked(B2900_RUN, B2900_DATA + NO_ERROR)
    )
    with expected_protocol(KeysightB2900, pairs) as smu:
        assert isinstance(smu, PairedSweep)
        rows, cols = smu.sweep_pair(2, [0.5, 0.75], 1, [-0.5, -0.75], 0.0)
    assert [(r.voltage, r.current, r.compliance) for r in rows] == [
        (0.5, 1e-6, False), (0.71, 1e-3, True)]
    assert [r.current for r in cols] == [-1e-6, -1e-3]


def test_b2902_second_pair_uses_the_function_and_limits_it_knows(expected_protocol):
    pairs = (
        b2900_connect() + B2900_REQUESTS
        + b2900_checked(B2900_LOAD) + b2900_checked(B2900_RUN, B2900_DATA + NO_ERROR)
        + b2900_checked(B2900_LOAD) + b2900_checked(B2900_RUN, B2900_DATA + NO_ERROR)
    )
    with expected_protocol(KeysightB2900, pairs) as smu:
        for _ in range(2):
            rows, _ = smu.sweep_pair(2, [0.5, 0.75], 1, [-0.5, -0.75], 0.0)
            assert rows[1].compliance


def test_b2902_pair_load_error_never_turns_an_output_on(expected_protocol):
    """An error in the lists: no output-on or start is sent, the channels go back to one
    automatic trigger in fixed mode, and the next pair asks for function and limits again."""
    pairs = (
        b2900_connect() + B2900_REQUESTS
        + b2900_checked(B2900_LOAD, '-222,"Data out of range"') + [(":SYST:ERR?", NO_ERROR)]
        + b2900_checked(B2900_RESTORE) + B2900_REQUESTS
        + b2900_checked(B2900_LOAD) + b2900_checked(B2900_RUN, B2900_DATA + NO_ERROR)
    )
    with expected_protocol(KeysightB2900, pairs) as smu:
        with pytest.raises(InstrumentError) as info:
            smu.sweep_pair(2, [0.5, 0.75], 1, [-0.5, -0.75], 0.0)
        assert info.value.code == -222 and info.value.command.startswith(B2900_LOAD)
        rows, _ = smu.sweep_pair(2, [0.5, 0.75], 1, [-0.5, -0.75], 0.0)
    assert rows[0].current == 1e-6


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
    # cells see up to 0.3 V: below the 0.45 V kinetics floor, so no cell moves
    rows, cols = smu.sweep_pair("b", [0.05, 0.1, 0.15], "a", [-0.05, -0.1, -0.15], 0.0)
    smu.check_errors("paired sweep")
    assert [r.voltage for r in rows] == pytest.approx([0.05, 0.1, 0.15])
    for row, col in zip(rows, cols, strict=True):  # one circuit; two meters' own errors
        tolerance = 5 * np.sqrt(2) * reading_sigma("2636B", row.current)
        assert row.current > 0 and col.current == pytest.approx(-row.current, abs=tolerance)
    currents = [r.current for r in rows]
    assert currents[2] == pytest.approx(3 * currents[0], rel=1e-2)  # ohmic at read levels
    # the stimuli are immediate again: each channel sweeps alone as before
    alone = smu.smub.sweep([0.1, 0.2], 0.0)  # the same cell voltages, column at 0 V
    assert [r.current for r in alone] == pytest.approx(currents[:2], rel=1e-2)
    smu.check_errors("single sweep after a pair")
    smu.disconnect()
