"""Time and compliance as physics, through raw instrument commands on the default bench.

Relaxation: a programmed cell keeps drifting toward where its pulse left it to settle while
virtual time passes between commands. Compliance: a source at its current limit during a
pulse holds the current, so the cell's voltage sags and a SET stops itself.
"""

from __future__ import annotations

import numpy as np
import pytest
from simhelpers import k707b_channel as channel
from simhelpers import open_default_quiet, open_instrument, small_board_text

CELL = (4, 6)  # a healthy cell of the default bench (seed 2026); checked below


@pytest.fixture
def default(open_bench):
    smu, matrix, world = open_default_quiet(open_bench)
    i, j = CELL
    assert world.array.defect_map()[i, j] == 0
    matrix.write(f'channel.close("{channel("A", i + 1)},{channel("B", j + 37)}")')
    return smu, world


def read(smu) -> float:
    return float(smu.query("print(smub.measure.i())"))


def test_programmed_cell_relaxes_while_virtual_time_passes(default):
    smu, world = default
    i, j = CELL
    for line in (
        "smua.measure.nplc = 0.001",  # a 20 us reading: relaxation (tau 0.1 s) is negligible
        "smub.measure.nplc = 0.001",
        "smua.source.levelv = 1.1",  # partial SET: the cell lands mid-range
        "smua.source.output = smua.OUTPUT_ON",
        "smub.source.output = smub.OUTPUT_ON",
        "delay(3e-7)",
        "smua.source.levelv = 0.2",
    ):
        smu.write(line)
    programmed = world.array.conductance()
    settles_at = world.array.relaxed_conductance()[i, j]
    assert 2e-6 < programmed[i, j] < 90e-6
    assert abs(settles_at - programmed[i, j]) > 0.2e-6  # this pulse drew a visible drift
    right_after = read(smu)

    elapsed = world.array.elapsed_time
    smu.write("delay(0)")  # no time, no drift
    np.testing.assert_array_equal(world.array.conductance(), world.conductance())
    assert world.array.elapsed_time == elapsed
    again = read(smu)

    smu.write("delay(1)")
    after_wait = read(smu)
    assert world.array.elapsed_time == pytest.approx(world.clock, rel=1e-12)
    assert world.conductance()[i, j] == pytest.approx(settles_at, rel=1e-4)
    drift = after_wait - right_after  # smub sinks: its current is minus the cell's
    assert np.sign(drift) == -np.sign(settles_at - programmed[i, j])
    assert abs(drift) == pytest.approx(0.2 * abs(settles_at - programmed[i, j]), rel=0.05)
    assert abs(again - right_after) < 1e-3 * abs(drift)


def set_pulse(smu, world, limit: float) -> tuple[str, str, float]:
    """A 1.5 V, 1 us SET of CELL from the HRS under ``limit`` amps: smua's compliance before
    and at the end of the pulse, and its voltage at the end (looked up in the World, which
    takes no time)."""
    for line in (
        f"smua.source.limiti = {limit}",
        "smua.source.levelv = 1.5",
        "smua.source.output = smua.OUTPUT_ON",
        "smub.source.output = smub.OUTPUT_ON",
    ):
        smu.write(line)
    at_start = smu.query("print(smua.source.compliance)")
    smu.write("delay(1e-6)")
    at_end = smu.query("print(smua.source.compliance)")
    v_end = world.measure("smu.a", noise=False)[0]
    smu.write("smua.source.levelv = 0")
    return at_start, at_end, v_end


def read_after(smu) -> float:
    """The cell's read current at 0.2 V under a generous limit."""
    smu.write("smua.source.limiti = 0.1")
    smu.write("smua.source.levelv = 0.2")
    return -read(smu)


@pytest.fixture
def twin_benches(open_bench):
    """Two identical default benches (same seed), CELL wired to smua and smub on each."""
    benches = []
    for _ in range(2):
        rm, lib = open_bench("default", read_noise="false")
        smu = open_instrument(rm, "GPIB0::26::INSTR")
        matrix = open_instrument(rm, "GPIB0::18::INSTR")
        i, j = CELL
        matrix.write(f'channel.close("{channel("A", i + 1)},{channel("B", j + 37)}")')
        benches.append((smu, lib.world))
    return benches


def test_current_limit_reached_during_a_set_stops_it(twin_benches):
    (low, world_low), (high, world_high) = twin_benches
    i, j = CELL
    g0 = world_low.array.conductance()[i, j]
    assert g0 < 2e-6  # starts in its HRS; at 1.5 V the array draws ~24 uA (sneak paths)
    at_start, at_end, v_low = set_pulse(low, world_low, 5e-5)
    assert (at_start, at_end) == ("false", "true")  # the limit is reached during the SET
    assert set_pulse(high, world_high, 0.1)[:2] == ("false", "false")
    g_low = world_low.array.conductance()[i, j]
    g_high = world_high.array.conductance()[i, j]
    assert g_high > 80e-6  # unlimited: a full SET
    assert 10 * g0 < g_low < 0.5 * g_high  # limited: it started, then the sag stopped it
    # where it stopped, the limited source had sagged to the voltage at which the rest of
    # the pulse is worth about a level of SET (the kinetics, rate sinh(v / v_k)): no further
    p = world_low.array.params
    levels = np.sinh(v_low / p.v_efold_set) / np.sinh(p.v_set_ref / p.v_efold_set) * 5e-5 / p.t_ref
    assert 1.0 < v_low < 1.45 and 0.05 < levels < 5.0
    i_low, i_high = read_after(low), read_after(high)
    assert 0 < i_low < 0.6 * i_high


def test_board_latches_a_limit_reached_during_a_pulse(open_bench):
    rm, lib = open_bench(text=small_board_text(4, 4), read_noise="false")
    board = open_instrument(rm, "ASRL1::INSTR")
    world = lib.world
    assert world.array.defect_map()[0, 0] == 0 and world.array.conductance()[0, 0] < 2e-6
    assert board.query("ILIM 1e-05") == "OK"
    assert board.query("MEAS:ALL?").endswith(";0000;0000")  # nothing driven, nothing limited
    assert board.query("PULSE 1e-06,R0=1.5,C0=0") == "OK"
    # both drivers carry the same current; the row driver is the one that holds the limit
    assert board.query("LIMIT?") == "1000;0000"
    assert world.array.conductance()[0, 0] * world.array.params.v_set < 1e-5
