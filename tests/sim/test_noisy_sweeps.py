"""Buffered list sweeps with read noise on: one solve per sweep, readings like spot reads.

Each point of a sweep is a reading of its own, with its own read-noise draw, exactly as if it
had been read alone; the whole sweep still costs one solve (the swept terminal's unit
response: every point is that response times its level, plus its own noise).
"""

from __future__ import annotations

import numpy as np
import pytest
from simhelpers import count_solves, open_instrument, small_board_text

POINTS = 40
LEVEL = 0.2


def on_707b(row: str, output: int) -> str:
    return f"{(output - 1) // 12 + 1}{row}{(output - 1) % 12 + 1:02d}"


def on_e5250(inp: int, output: int) -> str:
    return f"{(output - 1) // 12 + 1}{inp:02d}{(output - 1) % 12 + 1:02d}"


def sweep_2636b(rm):
    smu = open_instrument(rm, "GPIB0::26::INSTR")
    open_instrument(rm, "GPIB0::18::INSTR").write(
        f'channel.close("{on_707b("A", 4)},{on_707b("B", 45)}")'
    )
    smu.write("format.asciiprecision = 16")
    levels = ",".join([str(LEVEL)] * POINTS)
    for line in (
        f"smua.trigger.source.listv({{{levels}}})",
        f"smua.trigger.count = {POINTS}",
        "smua.trigger.source.action = smua.ENABLE",  # DISABLE after a reset [M]
        "smua.trigger.measure.i(smua.nvbuffer1)",
        "smua.source.output = smua.OUTPUT_ON",
        "smub.source.output = smub.OUTPUT_ON",
    ):
        smu.write(line)

    def run():
        smu.write("smua.trigger.initiate()")
        return smu.query(f"printbuffer(1, {POINTS}, smua.nvbuffer1.readings)").split(", ")

    return run


def sweep_2400(rm):
    k2400 = open_instrument(rm, "GPIB0::25::INSTR")
    k2450 = open_instrument(rm, "GPIB0::24::INSTR")
    open_instrument(rm, "GPIB0::18::INSTR").write(
        f'channel.close("{on_707b("A", 4)},{on_707b("B", 20)}")'
    )
    k2450.write(":OUTP ON")
    for line in (
        ":FORM:ELEM CURR",
        ":SOUR:VOLT:MODE LIST",
        ":SOUR:LIST:VOLT " + ",".join([str(LEVEL)] * POINTS),
        f":TRIG:COUN {POINTS}",
        ":OUTP ON",
    ):
        k2400.write(line)
    return lambda: k2400.query(":READ?").split(",")


def sweep_2450(rm):
    k2450 = open_instrument(rm, "GPIB0::24::INSTR")
    open_instrument(rm, "GPIB0::18::INSTR").write(
        f'channel.close("{on_707b("B", 4)},{on_707b("H", 20)}")'
    )
    k2450.write(":SOUR:LIST:VOLT " + ",".join([str(LEVEL)] * POINTS))
    k2450.write(":SOUR:SWE:VOLT:LIST 1,0.001")

    def run():
        k2450.write(':TRAC:CLE "defbuffer1"')
        k2450.write(":INIT")
        return k2450.query(f':TRAC:DATA? 1,{POINTS},"defbuffer1",READ').split(",")

    return run


def sweep_b2902b(rm):
    smu = open_instrument(rm, "GPIB0::23::INSTR")
    route = f"{on_e5250(1, 4)},{on_e5250(2, 20)}"
    open_instrument(rm, "GPIB0::22::INSTR").write(f":ROUT:CLOS (@{route})")
    for line in (
        ":SOUR1:VOLT:MODE LIST",
        ":SOUR1:LIST:VOLT " + ",".join([str(LEVEL)] * POINTS),
        f":TRIG1:COUN {POINTS}",
        ":OUTP1 ON",
        ":OUTP2 ON",
    ):
        smu.write(line)

    def run():
        smu.write(":INIT (@1)")
        return smu.query(":FETC:ARR? (@1)").split(",")[1::2]

    return run


SWEEPS = {
    "2636B": ("default", sweep_2636b),
    "2400": ("classic", sweep_2400),
    "2450": ("classic", sweep_2450),
    "B2902B": ("keysight", sweep_b2902b),
}


@pytest.mark.parametrize("model", SWEEPS)
def test_noisy_list_sweep_is_one_solve_of_independent_readings(open_bench, model, monkeypatch):
    bench, setup = SWEEPS[model]
    rm, lib = open_bench(bench)  # read noise on, as every embedded bench ships
    run = setup(rm)
    array = lib.world.array
    calls = count_solves(monkeypatch)
    readings = np.array([float(x) for x in run()])
    assert calls == [1]  # the swept terminal's unit response serves every point
    # a draw per point (on the range's resolution some coincide; one draw would be one value)
    assert len(readings) == POINTS and len(set(readings)) > POINTS / 2
    spread = readings.std() / abs(readings.mean())
    assert 1e-3 < spread < 2 * array.params.read_noise


def test_sweep_readings_have_the_statistics_of_spot_readings(open_bench):
    rm, lib = open_bench("default")
    run = sweep_2636b(rm)
    swept = np.array([float(x) for x in run()])
    smu = open_instrument(rm, "GPIB0::26::INSTR")
    smu.write(f"smua.source.levelv = {LEVEL}")
    spot = np.array([float(smu.query("print(smua.measure.i())")) for _ in range(POINTS)])
    assert len(set(spot)) == POINTS
    scale = np.hypot(swept.std(), spot.std()) / np.sqrt(POINTS)
    assert abs(swept.mean() - spot.mean()) < 4 * scale
    assert 0.6 < swept.std() / spot.std() < 1.6


def test_board_measure_all_solves_responses_only_for_a_circuit_read_again(open_bench,
                                                                           monkeypatch):
    """The first MEAS:ALL? of a circuit solves its operating point and re-solves its one noisy
    reading (one vector each: 16 unit responses would cost 16); read again, the circuit's
    unit responses are solved once, in one call, and every later reading only draws noise."""
    rm, lib = open_bench(text=small_board_text(8, 8))
    board = open_instrument(rm, "ASRL1::INSTR")
    board.query("VROW " + ",".join(["0.1", "0"] * 4))
    board.query("VCOL " + ",".join(["0"] * 8))
    calls = count_solves(monkeypatch)
    readings = [board.query("MEAS:ALL?") for _ in range(4)]
    assert calls == [1, 1, 16]
    assert len(set(readings)) == 4


def test_noisy_sweep_with_every_source_at_zero_reads_zero(open_bench):
    """A measure-only sweep (source action off after a reset) at 0 V with read noise on: no
    cell carries current, so no reading carries noise (regression: no source to weigh)."""
    rm, _ = open_bench("default")
    smu = open_instrument(rm, "GPIB0::26::INSTR")
    open_instrument(rm, "GPIB0::18::INSTR").write(
        f'channel.close("{on_707b("A", 4)},{on_707b("B", 45)}")')
    for line in ("smua.trigger.count = 5", "smua.trigger.measure.i(smua.nvbuffer1)",
                 "smua.source.output = smua.OUTPUT_ON", "smub.source.output = smub.OUTPUT_ON",
                 "smua.trigger.initiate()"):
        smu.write(line)
    readings = [float(x) for x in smu.query("printbuffer(1, 5, smua.nvbuffer1.readings)")
                .split(", ")]
    assert readings == [0.0] * 5
