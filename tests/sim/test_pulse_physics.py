"""Time and compliance as physics, through raw instrument commands on the default bench.

Relaxation: a programmed cell keeps drifting toward where its pulse left it to settle while
virtual time passes between commands. Compliance: a source at its current limit during a
pulse holds the current, so the cell's voltage sags and a SET stops itself.
"""

from __future__ import annotations

import numpy as np
import pytest
from simhelpers import open_instrument

CELL = (4, 6)  # a healthy cell of the default bench (seed 2026); checked below


def channel(row: str, output: int) -> str:
    slot, col = divmod(output - 1, 12)
    return f"{slot + 1}{row}{col + 1:02d}"


@pytest.fixture
def default(open_bench):
    rm, lib = open_bench("default", read_noise="false")
    smu = open_instrument(rm, "GPIB0::26::INSTR")
    matrix = open_instrument(rm, "GPIB0::18::INSTR")
    smu.write("format.asciiprecision = 16")
    i, j = CELL
    assert lib.world.array.defect_map()[i, j] == 0
    matrix.write(f'channel.close("{channel("A", i + 1)},{channel("B", j + 37)}")')
    return smu, lib.world


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
