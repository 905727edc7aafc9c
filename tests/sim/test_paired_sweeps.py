"""Lockstep (paired) list sweeps of two channels of one virtual SMU: the 2636B's trigger-model
stimuli and the B2902B's ``:INIT (@1,2)``. Every point applies both levels at once; a quiet sweep
is one batched model call with a read-noise draw per point; each point reads what the two
channels would read held at that point; malformed or unsimulated set-ups are refused with the
manual's error code."""

from __future__ import annotations

import numpy as np
import pytest
from simhelpers import count_solves, open_instrument
from xbarlab.sim_instruments import UnknownCommand

ROW_LEVELS = [0.05, 0.1, 0.15, 0.2]  # row +V/2
COL_LEVELS = [-0.05, -0.1, -0.15, -0.2]  # column -V/2


def lockstep_2636b(rm, row_levels=ROW_LEVELS, col_levels=COL_LEVELS):
    """Row 3 on smub, column 4 on smua, every other line on the ground input; both channels
    loaded with their lists and the lockstep stimuli (smub leads). Returns the SMU session."""
    smu = open_instrument(rm, "GPIB0::26::INSTR")
    matrix = open_instrument(rm, "GPIB0::18::INSTR")
    grounded = [f"{(o - 1) // 12 + 1}H{(o - 1) % 12 + 1:02d}" for o in
                [*range(1, 33), *range(37, 69)] if o not in (4, 41)]
    matrix.write(f'channel.close("1B04,4A05,{",".join(grounded)}")')
    smu.write("format.asciiprecision = 16")
    for ch, levels in (("a", col_levels), ("b", row_levels)):
        for line in (
            f"smu{ch}.trigger.source.listv({{{','.join(map(str, levels))}}})",
            f"smu{ch}.trigger.count = {len(levels)}",
            f"smu{ch}.trigger.source.limiti = 0.001",
            f"smu{ch}.trigger.measure.iv(smu{ch}.nvbuffer1, smu{ch}.nvbuffer2)",
            f"smu{ch}.source.output = smu{ch}.OUTPUT_ON",
        ):
            smu.write(line)
    smu.write("smua.trigger.source.stimulus = smub.trigger.SOURCE_COMPLETE_EVENT_ID")
    smu.write("smub.trigger.measure.stimulus = smua.trigger.SOURCE_COMPLETE_EVENT_ID")
    smu.write("smub.trigger.endpulse.stimulus = smua.trigger.MEASURE_COMPLETE_EVENT_ID")
    return smu


def buffers(smu, n):
    """(row currents, column currents) from one printbuffer of both channels."""
    reply = smu.query(f"printbuffer(1, {n}, smub.nvbuffer1.readings, smub.nvbuffer2.readings, "
                      "smub.nvbuffer1.statuses, smua.nvbuffer1.readings, "
                      "smua.nvbuffer2.readings, smua.nvbuffer1.statuses)")
    values = np.array([float(x) for x in reply.split(", ")]).reshape(n, 6)
    return values[:, 0], values[:, 3]


def test_2636b_lockstep_is_one_batched_call_with_a_draw_per_point(open_bench, monkeypatch):
    rm, lib = open_bench("default")  # read noise on
    smu = lockstep_2636b(rm, [0.1] * 20, [-0.1] * 20)
    calls = count_solves(monkeypatch)
    smu.write("smua.trigger.initiate()")  # the follower waits, armed
    assert calls == []
    smu.write("smub.trigger.initiate()")
    assert calls == [2]  # both terminals' unit responses serve every point
    rows, cols = buffers(smu, 20)
    assert len(set(rows)) > 10  # a draw per point (some coincide on the range's resolution)
    assert (rows > 0).all() and (cols < 0).all()  # into the row, out of the column


def test_2636b_lockstep_points_equal_the_bias_held_point_by_point(open_bench):
    rm, lib = open_bench("default", read_noise="false")
    smu = lockstep_2636b(rm)
    smu.write("smua.trigger.initiate()")
    smu.write("smub.trigger.initiate()")
    assert smu.query("print(errorqueue.count)") == "0.000000000000000e+00"
    assert lib.world.terminal("smu.a").level == 0.0  # idle at the DC level after the sweep
    rows, cols = buffers(smu, len(ROW_LEVELS))
    for k, (row_level, col_level) in enumerate(zip(ROW_LEVELS, COL_LEVELS, strict=True)):
        smu.write(f"smub.source.levelv = {row_level}")
        smu.write(f"smua.source.levelv = {col_level}")
        spot_col = float(smu.query("print(smua.measure.i())"))
        spot_row = float(smu.query("print(smub.measure.i())"))
        assert cols[k] == pytest.approx(spot_col, rel=1e-9)
        assert rows[k] == pytest.approx(spot_row, rel=1e-9)


def test_2636b_leader_started_before_its_follower_is_refused(open_bench):
    rm, lib = open_bench("default")
    smu = lockstep_2636b(rm)
    smu.write("smub.trigger.initiate()")  # the leader: smua would miss its first event
    assert smu.query("print(errorqueue.next())").startswith("-2.22000e+02")


def test_2636b_only_the_lockstep_pattern_runs_two_channels(open_bench):
    rm, lib = open_bench("default")
    smu = lockstep_2636b(rm)
    smu.write("smub.trigger.endpulse.stimulus = 0")  # the leader would not wait for smua
    smu.write("smua.trigger.initiate()")
    smu.write("smub.trigger.initiate()")
    assert smu.query("print(errorqueue.next())").startswith("-2.22000e+02")


@pytest.mark.parametrize("command", [
    "smub.trigger.measure.stimulus = smua.trigger.SOURCE_DONE_EVENT_ID",
    "smub.trigger.measure.stimulus = 45",
    "smub.trigger.arm.stimulus = smua.trigger.SOURCE_COMPLETE_EVENT_ID",
    "smub.trigger.measure.stimulus = smuc.trigger.SOURCE_COMPLETE_EVENT_ID",
])
def test_2636b_malformed_or_unsimulated_stimulus_is_a_syntax_error(open_bench, command):
    rm, lib = open_bench("default")
    smu = open_instrument(rm, "GPIB0::26::INSTR")
    with pytest.raises(UnknownCommand, match="GPIB0::26::INSTR"):
        smu.write(command)
    assert smu.query("print(errorqueue.next())").startswith("-2.85000e+02")


def lockstep_b2902b(rm, row_levels=ROW_LEVELS, col_levels=COL_LEVELS):
    """Row 3 on channel 2, column 4 on channel 1, every other line on ground (input 10)."""
    smu = open_instrument(rm, "GPIB0::23::INSTR")
    matrix = open_instrument(rm, "GPIB0::22::INSTR")

    def channel(inp, output):
        return f"{(output - 1) // 12 + 1}{inp:02d}{(output - 1) % 12 + 1:02d}"

    grounded = [channel(10, o) for o in range(1, 33) if o not in (4, 21)]
    matrix.write(f":ROUT:CLOS (@{channel(2, 4)},{channel(1, 21)},{','.join(grounded)})")
    for n, levels in ((1, col_levels), (2, row_levels)):
        for line in (f":SOUR{n}:VOLT:MODE LIST",
                     f":SOUR{n}:LIST:VOLT {','.join(map(str, levels))}",
                     f":TRIG{n}:COUN {len(levels)}", f":SENS{n}:CURR:PROT 0.001", f":OUTP{n} ON"):
            smu.write(line)
    return smu


def test_b2902b_init_both_is_one_batched_call_equal_to_held_points(open_bench, monkeypatch):
    rm, lib = open_bench("keysight", read_noise="false")
    smu = lockstep_b2902b(rm)
    calls = count_solves(monkeypatch)
    smu.write(":INIT (@1,2)")
    assert calls == [2]  # both terminals' unit responses serve every point
    assert smu.query(":SYST:ERR?").startswith("+0")
    cols = [float(x) for x in smu.query(":FETC:ARR? (@1)").split(",")[1::2]]
    rows = [float(x) for x in smu.query(":FETC:ARR? (@2)").split(",")[1::2]]
    for n in (1, 2):
        smu.write(f":SOUR{n}:VOLT:MODE FIX")
    for k, (row_level, col_level) in enumerate(zip(ROW_LEVELS, COL_LEVELS, strict=True)):
        smu.write(f":SOUR2:VOLT {row_level}")
        smu.write(f":SOUR1:VOLT {col_level}")
        assert cols[k] == pytest.approx(float(smu.query(":MEAS? (@1)").split(",")[1]), rel=1e-6)
        assert rows[k] == pytest.approx(float(smu.query(":MEAS? (@2)").split(",")[1]), rel=1e-6)


def test_b2902b_init_both_ignores_a_timer_period_it_does_not_use(open_bench):
    rm, lib = open_bench("keysight")
    smu = lockstep_b2902b(rm)
    smu.write(":TRIG1:TIM 0.01")  # left by an earlier timed sweep; both trigger on AINT
    smu.write(":INIT (@1,2)")
    assert smu.query(":SYST:ERR?").startswith("+0")
    assert len(smu.query(":FETC:ARR? (@2)").split(",")) == 2 * len(ROW_LEVELS)


def test_b2902b_init_both_of_unequal_counts_is_a_data_error(open_bench):
    rm, lib = open_bench("keysight")
    smu = lockstep_b2902b(rm, ROW_LEVELS, COL_LEVELS[:2])
    smu.write(":INIT (@1,2)")
    assert smu.query(":SYST:ERR?").startswith("-222")


@pytest.mark.parametrize("command", [":INIT (@1,3)", ":INIT (@1,2", ":INIT (@2,1)"])
def test_b2902b_malformed_channel_list_is_an_undefined_header(open_bench, command):
    rm, lib = open_bench("keysight")
    smu = open_instrument(rm, "GPIB0::23::INSTR")
    with pytest.raises(UnknownCommand, match="GPIB0::23::INSTR"):
        smu.write(command)
    assert smu.query(":SYST:ERR?").startswith("-113")
